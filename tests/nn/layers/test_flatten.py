"""flatten layer: (C, H, W) -> (C*H*W,) and back."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.errors import BuildError
from dlrun.nn.gradcheck import check_layer
from dlrun.nn.layers.flatten import Flatten


@pytest.mark.parametrize(
    "input_shape, output_shape", [((64, 7, 7), (3136,)), ((5, 3), (15,)), ((4,), (4,))]
)
def test_flatten_round_trip(input_shape, output_shape):
    layer = Flatten()
    assert layer.build(input_shape, np.random.default_rng(0), np.float32) == output_shape
    x = np.random.default_rng(1).standard_normal((3, *input_shape)).astype(np.float32)
    y = layer.forward(x, True)
    assert y.shape == (3, *output_shape)
    np.testing.assert_array_equal(y[1], x[1].reshape(-1))  # row-major (C, H, W) order
    dx = layer.backward(y * 2)
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dx, x * 2)


def test_flatten_gradcheck():
    report = check_layer(Flatten(), Flatten.example["input_shape"])
    assert report.passed, report.text()


def test_flatten_of_scalars_is_a_build_error():
    with pytest.raises(BuildError, match="flatten"):
        Flatten().build((), np.random.default_rng(0), np.float32)
