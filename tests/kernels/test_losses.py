import numpy as np
import pytest

from dlrun.kernels import losses as K
from tests import naive


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1), (5, 3), (64, 10)])
def test_quadratic(dtype, shape):
    rng = np.random.default_rng(0)
    o, t = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    grad = np.empty_like(o)
    value = K.quadratic(o, t, grad)
    ref, ref_grad = naive.quadratic(o.astype(np.float64), t.astype(np.float64))
    assert value == pytest.approx(ref, rel=1e-6)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 2), (5, 3), (64, 10)])
def test_softmax_cross_entropy(dtype, shape):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    labels = rng.integers(0, shape[1], size=shape[0])
    grad = np.empty_like(z)
    value = K.softmax_cross_entropy(z, labels, grad)
    ref, ref_grad = naive.cross_entropy_from_logits(z, labels)
    assert value == pytest.approx(ref, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-7)


def test_cross_entropy_is_stable_for_large_logits():
    z = np.array([[1000.0, 0.0, -1000.0], [-1000.0, 1000.0, 0.0]], dtype=np.float32)
    grad = np.empty_like(z)
    value = K.softmax_cross_entropy(z, np.array([0, 0]), grad)
    # first row right with certainty (loss 0); second wrong by a margin of 2000
    assert np.isfinite(value) and value == pytest.approx(1000.0, rel=1e-6)
    assert np.isfinite(grad).all()
    np.testing.assert_allclose(grad, [[0, 0, 0], [-0.5, 0.5, 0]], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_binary_cross_entropy(dtype):
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((8, 2)) * 3).astype(dtype)
    t = rng.uniform(size=z.shape).astype(dtype)
    grad = np.empty_like(z)
    value = K.sigmoid_binary_cross_entropy(z, t, grad)
    ref, ref_grad = naive.binary_cross_entropy_from_logits(z, t)
    assert value == pytest.approx(ref, rel=1e-5)
    np.testing.assert_allclose(grad, ref_grad, rtol=1e-4, atol=1e-7)
    big = np.array([[500.0, -500.0]])
    g = np.empty_like(big)
    assert np.isfinite(K.sigmoid_binary_cross_entropy(big, np.array([[0.0, 1.0]]), g))
