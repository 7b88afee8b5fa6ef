import numpy as np
import pytest

from dlrun.errors import BuildError
from dlrun.nn.layers.dense import Dense
from tests import naive


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ["identity", "relu", "sigmoid", "tanh", "leaky_relu"])
@pytest.mark.parametrize("shape", [(1, 3), (16, 7), (4, 5, 6)])
def test_dense_matches_numpy(dtype, act, shape):
    rng = np.random.default_rng(0)
    layer = Dense(Dense.Config(units=4, activation=act, slope=0.1))
    layer.build(shape[1:], rng, dtype)
    layer.params["b"][...] = rng.standard_normal(4)
    x = rng.standard_normal(shape).astype(dtype)
    y = layer.forward(x, True)
    x2 = x.reshape(-1, shape[-1])
    z, ref = naive.dense_forward(x2, layer.params["W"], layer.params["b"], act, 0.1)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.reshape(-1, 4), ref, rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    rdx, rdw, rdb = naive.dense_backward(x2, layer.params["W"], z, dy.reshape(-1, 4), act, 0.1)
    assert dx.shape == x.shape
    np.testing.assert_allclose(dx.reshape(-1, shape[-1]), rdx, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(layer.grads["W"], rdw, rtol=10 * tol, atol=10 * tol)
    np.testing.assert_allclose(layer.grads["b"], rdb, rtol=10 * tol, atol=10 * tol)


def test_dense_without_bias_and_with_initializer():
    rng = np.random.default_rng(0)
    layer = Dense(Dense.Config(units=3, bias=False, init="zeros"))
    layer.build((5,), rng, np.float64)
    assert set(layer.params) == {"W"} and not layer.params["W"].any()


def test_softmax_cannot_be_fused_into_dense():
    layer = Dense(Dense.Config(units=3, activation="softmax"), name="out")
    with pytest.raises(BuildError, match="separate layer"):
        layer.build((4,), np.random.default_rng(0), np.float32)


def test_dense_after_images_needs_flatten():
    layer = Dense(Dense.Config(units=3), name="fc")
    with pytest.raises(BuildError, match=r"'fc' \(dense\).*\(8, 7, 7\).*") as exc:
        layer.build((8, 7, 7), np.random.default_rng(0), np.float32)
    assert "flatten" in exc.value.hint
