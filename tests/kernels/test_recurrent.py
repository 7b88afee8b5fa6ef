"""The recurrent step kernels against plain NumPy, and the tanh approximation's error bound."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.kernels import recurrent as K
from tests.naive_recurrent import act, act_grad_from_output, sigmoid


def test_rational_tanh_error_bound_float32():
    x = np.linspace(-20, 20, 400_001).astype(np.float32)
    out = np.empty_like(x)
    K.tanh_approx(x, out, K.constants(np.float32))
    ref = np.tanh(x.astype(np.float64))
    assert np.abs(out - ref).max() < 3.5e-7  # a few float32 ulp (measured 3.1e-7)
    np.testing.assert_array_equal(out, -out[::-1])  # odd
    assert np.all(out[x >= K.TANH_CLIP] == 1.0) and np.all(np.abs(out) <= 1.0)
    tiny = np.float32([1e-3, 1e-6, -1e-6])
    K.tanh_approx(tiny, out[:3], K.constants(np.float32))
    np.testing.assert_allclose(out[:3], tiny, rtol=1e-6)


def test_rational_tanh_fit_in_exact_arithmetic():
    """The fit inside the clip points; beyond them exactly +-1 (1 - tanh(9) = 3e-8): within
    float32's half ulp at 1 everywhere."""
    x = np.linspace(-20, 20, 200_001)
    out = np.empty_like(x)
    K.tanh_approx(x, out, K.constants(np.float64))
    inside = np.abs(x) < K.TANH_CLIP
    assert np.abs(out - np.tanh(x))[np.abs(x) < 9].max() < 2.5e-8  # the fitted range
    assert np.abs(out - np.tanh(x)).max() < 2.98e-8
    np.testing.assert_array_equal(out[~inside], np.sign(x[~inside]))


def test_approximation_only_in_float32():
    assert K.use_approximation(np.float32) and not K.use_approximation(np.float64)


def blocks(rng, dtype, n=3, h=5):
    return [
        rng.standard_normal(s).astype(dtype) for s in ((n, 4 * h), (n, 4 * h), (4 * h,), (n, h))
    ]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-14), (np.float32, 1e-6)])
@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_rnn_step_forward(name, dtype, tol):
    rng = np.random.default_rng(0)
    zx, zh, b = (rng.standard_normal(s).astype(dtype) * 3 for s in ((3, 5), (3, 5), (5,)))
    out = np.empty_like(zh)
    approx = K.use_approximation(dtype)
    K.rnn_step_forward(zx, zh, b, out, K.ACTIVATION_CODES[name], approx, K.constants(dtype))
    np.testing.assert_allclose(out, act(name, (zx + zh + b).astype(np.float64)), atol=tol)


@pytest.mark.parametrize("name", ["tanh", "sigmoid"])
def test_rnn_step_backward_two_slots(name):
    rng = np.random.default_rng(1)
    s = act(name, rng.standard_normal((3, 5)))
    ds = rng.standard_normal((2, 3, 5))
    dz, dz_sum = np.empty_like(ds), np.empty((3, 5))
    norm = K.rnn_step_backward(ds, s, K.ACTIVATION_CODES[name], dz, dz_sum)
    expected = ds * act_grad_from_output(name, s)
    np.testing.assert_allclose(dz, expected, rtol=1e-14)
    np.testing.assert_allclose(dz_sum, expected.sum(axis=0), rtol=1e-14)
    assert norm == pytest.approx(np.linalg.norm(ds.sum(axis=0)))


def lstm_reference(gx, gh, b, c_prev, cand):
    h = c_prev.shape[1]
    z = (gx + gh + b).astype(np.float64)
    f, i, o = sigmoid(z[:, :h]), sigmoid(z[:, h : 2 * h]), sigmoid(z[:, 2 * h : 3 * h])
    g = act(cand, z[:, 3 * h :])
    c = f * c_prev + i * g
    return np.concatenate([f, i, o, g], axis=1), c, np.tanh(c), o * np.tanh(c)


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-14), (np.float32, 2e-6)])
@pytest.mark.parametrize("cand", ["tanh", "sigmoid"])
def test_lstm_step_forward(cand, dtype, tol):
    gx, gh, b, c_prev = blocks(np.random.default_rng(2), dtype)
    gates = gx + gh  # the step's product [h_{t-1}, x_t] W
    c, tc = np.empty_like(c_prev), np.empty_like(c_prev)
    # h_t goes into the first H columns of the next step's [h, x] rows; x stays
    h_next = np.full((c_prev.shape[0], c_prev.shape[1] + 2), 7.0, dtype=dtype)
    code = K.ACTIVATION_CODES[cand]
    approx = K.use_approximation(dtype)
    K.lstm_step_forward(gates, b, c_prev, c, tc, h_next, code, approx, K.constants(dtype))
    h = h_next[:, : c_prev.shape[1]]
    for got, want in zip((gates, c, tc, h), lstm_reference(gx, gh, b, c_prev, cand), strict=True):
        np.testing.assert_allclose(got, want, atol=tol)
    assert (h_next[:, c_prev.shape[1] :] == 7.0).all()


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
@pytest.mark.parametrize("cand", ["tanh", "sigmoid"])
def test_lstm_step_backward_is_the_course_formula(cand, dtype, tol):
    rng = np.random.default_rng(3)
    gx, gh, b, c_prev = blocks(rng, np.float64)
    gates, c, tc, _ = lstm_reference(gx, gh, b, c_prev, cand)
    f, i, o, g = np.split(gates, 4, axis=1)
    dh = rng.standard_normal((3, 5))
    dc = rng.standard_normal((3, 5))
    dct = dc + dh * o * (1 - tc**2)
    want = np.concatenate(
        [
            dct * c_prev * f * (1 - f),
            dct * g * i * (1 - i),
            dh * tc * o * (1 - o),
            dct * i * act_grad_from_output(cand, g),
        ],
        axis=1,
    )
    gates, c_prev, tc, dh = (x.astype(dtype) for x in (gates, c_prev, tc, dh))
    dc_io, da, db = dc.astype(dtype), np.empty((3, 20), dtype), np.full(20, 9.0, dtype)
    code = K.ACTIVATION_CODES[cand]
    norm = K.lstm_step_backward(dh, dc_io, gates, c_prev, tc, code, da, db, dtype(1.0))
    assert da.dtype == dtype
    np.testing.assert_allclose(da, want, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, want.sum(axis=0), rtol=tol, atol=tol)  # overwritten
    np.testing.assert_allclose(dc_io, dct * f, rtol=tol, atol=tol)
    assert norm == pytest.approx(np.linalg.norm(dh.astype(np.float64)), rel=tol)
