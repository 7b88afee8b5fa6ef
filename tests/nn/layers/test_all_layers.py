"""Every registered layer, through its examples: build, shapes, gradcheck, config round trip."""

import numpy as np
import pytest

from dlrun.config.registry import layers
from dlrun.nn.gradcheck import check_layer, layer_examples

CASES = [
    pytest.param(name, i, ex, id=f"{name}-{i}")
    for name, cls in layers.items()
    for i, ex in enumerate(layer_examples(cls))
]


@pytest.mark.parametrize("name,i,example", CASES)
def test_layer_shapes_and_dtypes(name, i, example):
    cls = layers.get(name)
    for dtype in (np.float32, np.float64):
        layer = cls(cls.Config(**example["config"]), name=name)
        out_shape = layer.build(tuple(example["input_shape"]), np.random.default_rng(0), dtype)
        x = np.random.default_rng(1).standard_normal((3, *example["input_shape"])).astype(dtype)
        layer.set_rng(np.random.default_rng(2))
        y = layer.forward(x, True)
        assert y.shape == (3, *out_shape)
        assert y.dtype == dtype
        dx = layer.backward(np.ones_like(y))
        assert dx.shape == x.shape
        for key, p in layer.params.items():
            assert layer.grads[key].shape == p.shape and p.dtype == dtype


@pytest.mark.parametrize("name,i,example", CASES)
def test_layer_gradcheck(name, i, example):
    cls = layers.get(name)
    report = check_layer(
        cls(cls.Config(**example["config"]), name=name), tuple(example["input_shape"])
    )
    assert report.passed, report.text()


@pytest.mark.parametrize("name,i,example", CASES)
def test_layer_config_round_trip(name, i, example):
    cls = layers.get(name)
    layer = cls(cls.Config(**example["config"]), name=name)
    spec = layer.get_config()
    assert spec["type"] == name
    again = cls(cls.Config(**{k: v for k, v in spec.items() if k != "type"}))
    assert again.get_config() == spec
