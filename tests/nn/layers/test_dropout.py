import numpy as np
import pytest

from dlrun.nn.layers.dropout import Dropout


def test_evaluation_is_the_identity():
    layer = Dropout(Dropout.Config(rate=0.5))
    layer.build((10,), np.random.default_rng(0), np.float32)
    x = np.random.default_rng(1).standard_normal((4, 10)).astype(np.float32)
    assert layer.forward(x, False) is x


def test_training_drops_the_rate_and_keeps_the_mean():
    layer = Dropout(Dropout.Config(rate=0.3))
    layer.build((1000,), np.random.default_rng(0), np.float64)
    layer.set_rng(np.random.default_rng(5))
    x = np.ones((50, 1000))
    y = layer.forward(x, True)
    dropped = np.mean(y == 0)
    assert dropped == pytest.approx(0.3, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.02)  # inverted: 1/(1-rate) scaling
    np.testing.assert_array_equal(np.unique(y), [0.0, 1 / 0.7])
    dy = np.full_like(x, 2.0)
    np.testing.assert_array_equal(layer.backward(dy) == 0, y == 0)


def test_same_stream_same_mask():
    a, b = Dropout(), Dropout()
    for layer in (a, b):
        layer.build((20,), np.random.default_rng(0), np.float32)
        layer.set_rng(np.random.default_rng(7))
    x = np.ones((3, 20), np.float32)
    np.testing.assert_array_equal(a.forward(x, True), b.forward(x, True))
