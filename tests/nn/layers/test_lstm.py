"""The lstm layer against the NumPy reference, gradient checks, truncation, stacking."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.errors import BuildError
from dlrun.nn.gradcheck import check_layer
from dlrun.nn.layers.lstm import LSTM
from tests import naive_recurrent as naive


def make(dtype=np.float64, steps=5, features=3, units=4, seed=0, **config):
    layer = LSTM(LSTM.Config(units=units, **config))
    layer.build((steps, features), np.random.default_rng(seed), dtype)
    rng = np.random.default_rng(seed + 1)
    for key in ("h0", "c0"):
        if key in layer.params:
            layer.params[key][...] = rng.standard_normal(units)
    layer.params["b"][...] += 0.1 * rng.standard_normal(4 * units)
    return layer


def reference_args(layer):
    p = layer.params
    zeros = np.zeros(layer.config.units)
    return p["W"], p["b"], p.get("h0", zeros), p.get("c0", zeros)


CASES = [
    dict(),
    dict(return_sequences=True),
    dict(return_sequences=True, candidate_activation="sigmoid"),
    dict(initial_state="learned"),
    dict(return_sequences=True, initial_state="learned", bptt_steps=2),
    dict(initial_state="learned", bptt_steps=2),
    dict(return_sequences=True, initial_state="learned", bptt_steps=1),
    dict(return_sequences=True, bptt_steps=6),  # k = T: full BPTT
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
    cand = config.get("candidate_activation", "tanh")
    hs, _ = naive.lstm_forward(x.astype(np.float64), *args, candidate=cand)
    expected = hs if config.get("return_sequences") else hs[:, -1]
    assert y.dtype == dtype and y.shape == (3, *layer.output_shape)
    np.testing.assert_allclose(y, expected, atol=tol, rtol=tol)

    dy = rng.standard_normal(y.shape).astype(dtype)
    grads_before = dict(layer.grads)
    dx = layer.backward(dy)
    dH = dy.astype(np.float64)
    if not config.get("return_sequences"):
        dH = np.zeros((3, steps, dy.shape[1]))
        dH[:, -1] = dy
    ref = naive.lstm_backward(
        x.astype(np.float64), *args, dH, candidate=cand, k=config.get("bptt_steps")
    )
    dx_ref, dW, db, dh0, dc0, norms = ref
    t = tol * 10
    np.testing.assert_allclose(dx, dx_ref, atol=t, rtol=t)
    np.testing.assert_allclose(layer.grads["W"], dW, atol=t, rtol=t)
    np.testing.assert_allclose(layer.grads["b"], db, atol=t, rtol=t)
    if "h0" in layer.grads:
        np.testing.assert_allclose(layer.grads["h0"], dh0, atol=t, rtol=t)
        np.testing.assert_allclose(layer.grads["c0"], dc0, atol=t, rtol=t)
    np.testing.assert_allclose(layer.state_grad_norms, norms, atol=t, rtol=t)
    for key, g in layer.grads.items():  # filled in place, never rebound
        assert g is grads_before[key]


@pytest.mark.parametrize("example", LSTM.example)
def test_gradcheck_examples(example):
    layer = LSTM(LSTM.Config(**example["config"]))
    report = check_layer(layer, example["input_shape"], batch=2, seed=0)
    assert report.passed, report.text()


@pytest.mark.parametrize("return_sequences", [False, True])
def test_gradcheck_through_60_steps(return_sequences):
    config = LSTM.Config(units=2, return_sequences=return_sequences, initial_state="learned")
    report = check_layer(LSTM(config), (60, 2), batch=2, seed=1)
    assert report.passed, report.text()


def test_forget_bias_initialisation():
    layer = make(np.float32, units=3, seed=0)
    fresh = LSTM(LSTM.Config(units=3))
    fresh.build((5, 2), np.random.default_rng(0), np.float32)
    np.testing.assert_array_equal(fresh.params["b"], [1, 1, 1] + [0] * 9)
    other = LSTM(LSTM.Config(units=2, forget_bias=0.0))
    other.build((5, 2), np.random.default_rng(0), np.float32)
    assert not other.params["b"].any()
    assert layer.params["W"].shape == (3 + 3, 12)


def test_truncation_cuts_the_gradient_after_k_steps():
    steps, k = 7, 2
    layer = make(np.float64, steps=steps, bptt_steps=k)
    x = np.random.default_rng(0).standard_normal((2, steps, 3))
    layer.forward(x, True)
    dx = layer.backward(np.ones((2, 4)))
    assert np.all(dx[:, : steps - 1 - k] == 0.0)
    assert np.all(np.abs(dx[:, steps - 1 - k :]).sum(axis=-1) > 0)


def test_stacked_layers_match_the_reference_composition():
    """Two LSTMs, the first with return_sequences, backward through both."""
    steps = 5
    first = make(np.float64, steps=steps, features=3, units=4, return_sequences=True)
    second = make(np.float64, steps=steps, features=4, units=2, seed=5)
    x = np.random.default_rng(2).standard_normal((3, steps, 3))
    y = second.forward(first.forward(x, True), True)
    h1, _ = naive.lstm_forward(x, *reference_args(first))
    h2, _ = naive.lstm_forward(h1, *reference_args(second))
    np.testing.assert_allclose(y, h2[:, -1], atol=1e-12)
    dy = np.random.default_rng(4).standard_normal(y.shape)
    dx = first.backward(second.backward(dy))
    dH2 = np.zeros((3, steps, 2))
    dH2[:, -1] = dy
    dh1 = naive.lstm_backward(h1, *reference_args(second), dH2)[0]
    ref = naive.lstm_backward(x, *reference_args(first), dh1)
    np.testing.assert_allclose(dx, ref[0], atol=1e-11)
    np.testing.assert_allclose(first.grads["W"], ref[1], atol=1e-11)


def test_forget_gate_keeps_gradient_alive_longer_than_rnn_like_cell():
    """With forget bias 1 the gradient reaching step 0 is larger than with forget bias -3."""
    steps = 40
    norms = {}
    for fb in (1.0, -3.0):
        layer = LSTM(LSTM.Config(units=8, forget_bias=fb))
        layer.build((steps, 3), np.random.default_rng(0), np.float64)
        x = np.random.default_rng(1).standard_normal((4, steps, 3))
        y = layer.forward(x, True)
        layer.backward(np.ones_like(y))
        norms[fb] = layer.state_grad_norms[0] / layer.state_grad_norms[-1]
    assert norms[1.0] > 100 * norms[-3.0]


def test_sequence_input_required():
    with pytest.raises(BuildError, match="lstm"):
        LSTM(LSTM.Config(units=3)).build((1, 28, 28), np.random.default_rng(0), np.float32)


def test_config_rejects_bad_values():
    with pytest.raises(ValidationError, match="sigmoid"):
        LSTM.Config(units=3, candidate_activation="relu")
    with pytest.raises(ValidationError):
        LSTM.Config(units=0)


def test_any_sequence_length_at_run_time():
    """Sampling feeds growing contexts: a layer built for T = 6 runs on T = 1 .. 9."""
    layer = make(np.float64, steps=6, return_sequences=True)
    for steps in (1, 3, 9):
        x = np.random.default_rng(steps).standard_normal((2, steps, 3))
        hs, _ = naive.lstm_forward(x, *reference_args(layer))
        np.testing.assert_allclose(layer.forward(x, False), hs, atol=1e-12)


def test_evaluation_goes_through_in_chunks_and_keeps_nothing():
    from dlrun.nn.layers.lstm import EVAL_ROWS

    rng = np.random.default_rng(9)
    layer = LSTM(LSTM.Config(units=4, return_sequences=True))
    layer.build((5, 3), rng, np.float64)
    x = rng.standard_normal((2 * EVAL_ROWS + 7, 5, 3))
    full = layer.forward(x, True)  # one pass over every row, kept for backward
    assert layer._gates is not None
    chunked = layer.forward(x, False)
    np.testing.assert_allclose(chunked, full, rtol=1e-12, atol=1e-14)
    assert layer._gates is None  # evaluation lets the training arrays go


def test_backward_after_evaluation_only_is_a_clear_error():
    layer = make(np.float64)
    with pytest.raises(RuntimeError, match="training forward"):
        layer.backward(np.zeros((2, 4)))
