import numpy as np
import pytest

from dlrun.kernels import activations as K
from dlrun.nn import activations as acts
from tests import naive

ELEMENTWISE = ["sigmoid", "tanh", "softsign", "relu", "leaky_relu", "softplus", "sign", "identity"]
SHAPES = [(1, 1), (7, 3), (64, 33)]


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", SHAPES)
def test_bias_activation_matches_numpy(name, dtype, shape):
    rng = np.random.default_rng(0)
    z = (rng.standard_normal(shape) * 3).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    out = np.empty_like(z)
    K.bias_act_forward(z, b, acts.SPECS[name].code, 0.2, out)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, naive.activation(name, z + b, 0.2), rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backward_from_output_matches_derivative(name, dtype):
    rng = np.random.default_rng(1)
    z = (rng.standard_normal((9, 5)) * 3).astype(dtype)
    z[np.abs(z) < 1e-3] = 0.5  # keep away from the kink
    y = naive.activation(name, z, 0.2).astype(dtype)
    dy = rng.standard_normal(z.shape).astype(dtype)
    dz = np.empty_like(z)
    db = np.empty(z.shape[1], dtype)
    K.act_backward_bias(dy, y, acts.SPECS[name].code, 0.2, dz, db)
    expected = dy * naive.activation_grad(name, z, 0.2)
    tol = 2e-5 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(dz, expected, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, expected.sum(0), rtol=tol, atol=10 * tol)


def test_extreme_inputs_do_not_overflow():
    z = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    for name in ("sigmoid", "softplus", "tanh", "softsign"):
        out = np.empty_like(z)
        with np.errstate(all="raise"):
            K.bias_act_forward(z, np.zeros(5), acts.SPECS[name].code, 0.01, out)
        assert np.isfinite(out).all(), name
    out = np.empty_like(z)
    K.bias_act_forward(z, np.zeros(5), acts.SPECS["softplus"].code, 0.01, out)
    assert out[0, 4] == 1000.0 and out[0, 0] == 0.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_rows_and_backward(dtype):
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((6, 4)) * 5).astype(dtype)
    y = np.empty_like(z)
    K.softmax_rows(z, y)
    np.testing.assert_allclose(y, naive.softmax(z), rtol=1e-5)
    dy = rng.standard_normal(z.shape).astype(dtype)
    dz = np.empty_like(z)
    K.softmax_backward(dy, y, dz)
    # full Jacobian, row by row
    for i in range(len(z)):
        jac = np.diag(y[i]) - np.outer(y[i], y[i])
        np.testing.assert_allclose(dz[i], jac @ dy[i], rtol=1e-4, atol=1e-6)


def test_leaky_relu_course_parameter_maps_to_slope():
    from dlrun.nn.layers.activation import LeakyReLU

    assert LeakyReLU.Config(a=100).slope == pytest.approx(0.01)
    assert LeakyReLU.Config(slope=0.2).slope == 0.2
    assert LeakyReLU.Config().slope == 0.01


def test_relu_fast_paths_keep_nan_visible():
    # the divergence guard must see a NaN, not a ReLU that quietly turns it into 0
    z = np.array([[np.nan, -1.0, 2.0]], dtype=np.float32)
    out = np.empty_like(z)
    K.bias_act_forward(z, np.zeros(3, np.float32), K.RELU, 0.0, out)
    assert np.isnan(out[0, 0]) and out[0, 1] == 0.0 and out[0, 2] == 2.0
    dz, db = np.empty_like(z), np.empty(3, np.float32)
    K.act_backward_bias(
        np.array([[1.0, np.nan, 1.0]], np.float32), np.zeros_like(z), K.RELU, 0.0, dz, db
    )
    assert np.isnan(dz[0, 1])
