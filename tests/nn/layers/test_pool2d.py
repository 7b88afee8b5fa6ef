"""maxpool2d and avgpool2d layers: shapes, values, ties, gradients, errors."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.errors import BuildError
from dlrun.nn.gradcheck import check_layer
from dlrun.nn.layers.pool2d import AvgPool2D, MaxPool2D
from tests import naive_conv


def built(cls, input_shape, dtype=np.float64, **config):
    layer = cls(cls.Config(**config))
    layer.build(input_shape, np.random.default_rng(0), dtype)
    return layer


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
@pytest.mark.parametrize(
    "config, input_shape, output_shape",
    [
        ({}, (32, 28, 28), (32, 14, 14)),
        ({"size": 2}, (3, 7, 5), (3, 3, 2)),
        ({"size": 3, "stride": 1}, (1, 5, 6), (1, 3, 4)),
        ({"size": [2, 3], "stride": [2, 1]}, (2, 6, 6), (2, 3, 4)),
    ],
)
def test_output_shape(cls, config, input_shape, output_shape):
    layer = built(cls, input_shape, **config)
    assert layer.output_shape == output_shape
    assert layer.params == {}
    y = layer.forward(np.zeros((2, *input_shape)), True)
    assert y.shape == (2, *output_shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, stride", [((2, 2), None), ((3, 2), (1, 2))])
def test_maxpool_matches_naive(size, stride, dtype):
    shape = (2, 3, 7, 6)
    layer = built(MaxPool2D, shape[1:], dtype, size=list(size), stride=stride and list(stride))
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = layer.forward(x, True)
    expected, where = naive_conv.maxpool2d(x, size, stride or size)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, expected.astype(dtype))
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.dtype == dtype and dx.shape == shape
    np.testing.assert_allclose(dx, naive_conv.maxpool2d_backward(dy, where, shape), atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size, stride", [((2, 2), None), ((3, 2), (1, 2))])
def test_avgpool_matches_naive(size, stride, dtype):
    shape = (2, 3, 7, 6)
    layer = built(AvgPool2D, shape[1:], dtype, size=list(size), stride=stride and list(stride))
    x = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    y = layer.forward(x, True)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y, naive_conv.avgpool2d(x, size, stride or size), atol=tol)
    dy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
    expected = naive_conv.avgpool2d_backward(dy, size, stride or size, shape)
    np.testing.assert_allclose(layer.backward(dy), expected, atol=tol)


def test_maxpool_ties_send_the_gradient_to_the_first_maximum():
    layer = built(MaxPool2D, (1, 2, 4), size=2)
    x = np.array([[[[7.0, 7.0, 1.0, 2.0], [7.0, 7.0, 2.0, 2.0]]]])
    np.testing.assert_array_equal(layer.forward(x, True), [[[[7.0, 2.0]]]])
    dx = layer.backward(np.array([[[[1.0, 1.0]]]]))
    np.testing.assert_array_equal(dx, [[[[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]]]])


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_gradcheck_examples(cls):
    for example in cls.example:
        layer = cls(cls.Config(**example["config"]))
        report = check_layer(layer, example["input_shape"], batch=2, seed=0)
        assert report.passed, report.text()


def test_maxpool_has_kinks_avgpool_does_not():
    assert MaxPool2D.has_kinks and not AvgPool2D.has_kinks


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_window_larger_than_input_is_a_build_error(cls):
    layer = cls(cls.Config(size=3), name="pool3")
    with pytest.raises(BuildError, match=r"pool3.*3x3.*larger than.*2x2.*\(8, 2, 2\)"):
        layer.build((8, 2, 2), np.random.default_rng(0), np.float32)


@pytest.mark.parametrize("cls", [MaxPool2D, AvgPool2D])
def test_flat_input_is_a_build_error(cls):
    layer = cls(cls.Config(), name="pool1")
    with pytest.raises(BuildError, match=r"pool1.*\(784,\)") as info:
        layer.build((784,), np.random.default_rng(0), np.float32)
    assert "(channels, height, width)" in str(info.value)


@pytest.mark.parametrize("bad", [{"size": 0}, {"stride": 0}, {"size": [2, 2, 2]}, {"pool": 2}])
def test_bad_settings_are_rejected(bad):
    with pytest.raises(ValidationError):
        MaxPool2D.Config(**bad)
