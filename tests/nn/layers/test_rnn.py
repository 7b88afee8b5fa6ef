"""The rnn layer against the NumPy reference, gradient checks, truncated BPTT."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.errors import BuildError
from dlrun.nn.gradcheck import check_layer
from dlrun.nn.layers.rnn import RNN
from tests import naive_recurrent as naive


def make(dtype=np.float64, steps=5, features=3, units=4, seed=0, **config):
    layer = RNN(RNN.Config(units=units, **config))
    layer.build((steps, features), np.random.default_rng(seed), dtype)
    rng = np.random.default_rng(seed + 1)
    if "h0" in layer.params:
        layer.params["h0"][...] = rng.standard_normal(units)
    layer.params["b"][...] = 0.1 * rng.standard_normal(units)
    return layer


def reference_args(layer):
    p = layer.params
    h0 = p.get("h0", np.zeros_like(p["b"]))
    return p["U"], p["W"], p["b"], h0


def full_output_grad(layer, dy, steps):
    """dy of the layer as dC/dS_t for every t (zeros except the last without sequences)."""
    if layer.config.return_sequences:
        return dy
    dS = np.zeros((dy.shape[0], steps, dy.shape[1]), dtype=dy.dtype)
    dS[:, -1] = dy
    return dS


CASES = [
    dict(),
    dict(return_sequences=True),
    dict(return_sequences=True, activation="sigmoid"),
    dict(initial_state="learned"),
    dict(return_sequences=True, initial_state="learned", bptt_steps=2),
    dict(initial_state="learned", bptt_steps=2),
    dict(return_sequences=True, initial_state="learned", bptt_steps=1),
    dict(return_sequences=True, bptt_steps=5),  # k = T: full BPTT
]


@pytest.mark.parametrize("dtype,tol", [(np.float64, 1e-11), (np.float32, 2e-5)])
@pytest.mark.parametrize("config", CASES)
def test_matches_numpy_reference(config, dtype, tol, time_loop):
    steps = 6
    layer = make(dtype, steps=steps, **config)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, steps, 3)).astype(dtype)
    y = layer.forward(x, training=True)
    args = [a.astype(np.float64) for a in reference_args(layer)]
    act = config.get("activation", "tanh")
    S = naive.rnn_forward(x.astype(np.float64), *args, activation=act)
    expected = S if config.get("return_sequences") else S[:, -1]
    assert y.dtype == dtype and y.shape == (3, *layer.output_shape)
    np.testing.assert_allclose(y, expected, atol=tol, rtol=tol)

    dy = rng.standard_normal(y.shape).astype(dtype)
    grads_before = {k: g for k, g in layer.grads.items()}
    dx = layer.backward(dy)
    dS = full_output_grad(layer, dy.astype(np.float64), steps)
    k = config.get("bptt_steps")
    ref = naive.rnn_backward(x.astype(np.float64), *args, dS, activation=act, k=k)
    dx_ref, dU, dW, db, dh0, norms = ref
    np.testing.assert_allclose(dx, dx_ref, atol=tol * 10, rtol=tol * 10)
    np.testing.assert_allclose(layer.grads["U"], dU, atol=tol * 10, rtol=tol * 10)
    np.testing.assert_allclose(layer.grads["W"], dW, atol=tol * 10, rtol=tol * 10)
    np.testing.assert_allclose(layer.grads["b"], db, atol=tol * 10, rtol=tol * 10)
    if "h0" in layer.grads:
        np.testing.assert_allclose(layer.grads["h0"], dh0, atol=tol * 10, rtol=tol * 10)
    np.testing.assert_allclose(layer.state_grad_norms, norms, atol=tol * 10, rtol=tol * 10)
    assert layer.state_grad_norms.shape == (steps,)
    for key, g in layer.grads.items():  # filled in place, never rebound
        assert g is grads_before[key]


@pytest.mark.parametrize("example", RNN.example)
def test_gradcheck_examples(example):
    layer = RNN(RNN.Config(**example["config"]))
    report = check_layer(layer, example["input_shape"], batch=2, seed=0)
    assert report.passed, report.text()


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradcheck_through_60_steps(return_sequences):
    layer = RNN(RNN.Config(units=3, return_sequences=return_sequences, initial_state="learned"))
    report = check_layer(layer, (60, 2), batch=2, seed=1)
    assert report.passed, report.text()


def test_truncation_cuts_the_gradient_after_k_steps():
    steps, k = 8, 3
    layer = make(np.float64, steps=steps, bptt_steps=k)
    full = make(np.float64, steps=steps)
    x = np.random.default_rng(0).standard_normal((2, steps, 3))
    dy = np.ones((2, 4))
    layer.forward(x, True)
    dx = layer.backward(dy)
    full.forward(x, True)
    dx_full = full.backward(dy)
    # many-to-one: only the last k + 1 inputs get a gradient
    assert np.all(dx[:, : steps - 1 - k] == 0.0)
    assert np.all(np.abs(dx[:, steps - 1 - k :]) > 0)
    np.testing.assert_allclose(dx[:, steps - 1 - k :], dx_full[:, steps - 1 - k :])
    assert np.all(layer.state_grad_norms[: steps - 1 - k] == 0.0)
    assert not np.allclose(layer.grads["W"], full.grads["W"])


def test_state_grad_norms_vanish_in_time_with_small_weights():
    steps = 30
    layer = make(np.float64, steps=steps, units=8)
    layer.params["W"][...] *= 0.3
    x = np.random.default_rng(0).standard_normal((4, steps, 3))
    y = layer.forward(x, True)
    layer.backward(np.ones_like(y))
    norms = layer.state_grad_norms
    assert norms[-1] > 0 and norms[0] < 1e-6 * norms[-1]


def test_sequence_input_required():
    layer = RNN(RNN.Config(units=3))
    with pytest.raises(BuildError, match="needs sequences"):
        layer.build((12,), np.random.default_rng(0), np.float32)


def test_config_rejects_bad_values():
    with pytest.raises(ValidationError, match="tanh"):
        RNN.Config(units=3, activation="relu")
    with pytest.raises(ValidationError):
        RNN.Config(units=3, bptt_steps=0)
    with pytest.raises(ValidationError, match="zero"):
        RNN.Config(units=3, initial_state="random")


def test_float32_by_default_shapes():
    layer = make(np.float32, steps=4, features=2, units=5, return_sequences=True)
    y = layer.forward(np.zeros((7, 4, 2), dtype=np.float32), True)
    assert y.shape == (7, 4, 5) and y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).shape == (7, 4, 2)
