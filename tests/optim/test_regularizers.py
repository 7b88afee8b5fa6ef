"""L1/L2 penalties: values and gradients vs NumPy and finite differences; sparsity."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.config.registry import regularizers
from dlrun.optim.regularizers import sparsity


def make(name: str, alpha: float, **settings):
    cls = regularizers.get(name)
    return cls(cls.Config(name=name, alpha=alpha, **settings))


def arrays(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    # odd sizes exercise the 8-lane loop's remainder
    return [rng.standard_normal(s).astype(dtype) for s in [(5, 3), (7,), (2, 3, 4), (1,)]]


NUMPY_OMEGA = {
    "l1": lambda ws: sum(np.abs(w).sum() for w in ws),
    "l2": lambda ws: 0.5 * sum((w**2).sum() for w in ws),
}
NUMPY_GRAD = {"l1": np.sign, "l2": lambda w: w}


@pytest.mark.parametrize("name", ["l1", "l2"])
def test_penalty_matches_numpy(name):
    ws = arrays()
    assert make(name, 0.3).penalty(ws) == pytest.approx(0.3 * NUMPY_OMEGA[name](ws), rel=1e-13)


@pytest.mark.parametrize("name", ["l1", "l2"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_grad_adds_alpha_times_derivative_in_place(name, dtype):
    ws = arrays(dtype)
    ws[0][0, 0] = 0.0  # sign(0) = 0
    base = [np.full_like(w, 0.25) for w in ws]
    grads = [b.copy() for b in base]
    make(name, 0.1).add_grad(ws, grads)
    for w, g, b in zip(ws, grads, base, strict=True):
        assert g.dtype == dtype
        want = b.astype(np.float64) + 0.1 * NUMPY_GRAD[name](w.astype(np.float64))
        np.testing.assert_allclose(g, want, rtol=1e-6 if dtype == np.float32 else 1e-14)
    assert grads[0][0, 0] == 0.25


@pytest.mark.parametrize("name", ["l1", "l2"])
def test_gradient_matches_central_differences(name):
    ws = arrays()
    for w in ws:  # keep L1 away from its kink at 0
        w[np.abs(w) < 1e-2] = 0.5
    reg = make(name, 0.7)
    grads = [np.zeros_like(w) for w in ws]
    reg.add_grad(ws, grads)
    h = 1e-6
    for w, g in zip(ws, grads, strict=True):
        flat_w = w.reshape(-1)
        for i in range(flat_w.size):
            old = flat_w[i]
            flat_w[i] = old + h
            up = reg.penalty(ws)
            flat_w[i] = old - h
            down = reg.penalty(ws)
            flat_w[i] = old
            assert (up - down) / (2 * h) == pytest.approx(g.reshape(-1)[i], rel=1e-6, abs=1e-8)


def test_l2_with_gd_is_weight_decay():
    """w <- w - eta (g + alpha w) = (1 - eta alpha) w - eta g."""
    w = np.array([1.0, -2.0])
    g = np.zeros(2)
    make("l2", 0.5).add_grad([w], [g])
    np.testing.assert_allclose(w - 0.1 * g, (1 - 0.1 * 0.5) * w)


def test_alpha_zero_changes_nothing():
    ws = arrays()
    grads = [np.ones_like(w) for w in ws]
    reg = make("l1", 0.0)
    reg.add_grad(ws, grads)
    assert reg.penalty(ws) == 0.0
    assert all(np.all(g == 1.0) for g in grads)


def test_mismatched_or_non_contiguous_grads_are_errors():
    reg = make("l2", 0.1)
    w = np.ones((4, 4))
    with pytest.raises(ValueError, match="1 weight arrays but 2"):
        reg.add_grad([w], [w, w])
    with pytest.raises(ValueError, match="grads\\[0\\]"):
        reg.add_grad([w], [np.ones((4, 3))])
    with pytest.raises(ValueError, match="C-contiguous"):
        reg.add_grad([w[:, :2]], [np.ones((4, 4))[:, :2]])


def test_penalty_of_non_contiguous_view():
    w = np.arange(12.0).reshape(3, 4)
    assert make("l1", 1.0).penalty([w[:, ::2]]) == pytest.approx(np.abs(w[:, ::2]).sum())


def test_sparsity():
    ws = [np.array([0.0, 5e-4, -5e-4, 0.1]), np.array([[2e-3, -1.0], [0.0, 1e-3]])]
    assert sparsity(ws) == pytest.approx(4 / 8)
    assert sparsity(ws, tol=0.2) == pytest.approx(7 / 8)
    assert sparsity([np.zeros(0)]) == 0.0
    assert sparsity([w.astype(np.float32) for w in ws]) == pytest.approx(4 / 8)


def test_l1_training_makes_weights_sparse():
    """Least squares with two irrelevant inputs: L1 drives their weights to ~0, L2 does not."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 4))
    y = x @ np.array([2.0, -1.0, 0.0, 0.0]) + 0.5 * rng.standard_normal(200)
    result = {}
    for name in ["l1", "l2"]:
        reg = make(name, 0.1)
        w = np.full(4, 0.5)
        for _ in range(2000):
            g = x.T @ (x @ w - y) / len(x)
            reg.add_grad([w], [g])
            w -= 0.01 * g
        # L1 leaves the irrelevant weights oscillating within eta alpha = 1e-3 of 0
        result[name] = sparsity([w], tol=2e-3)
    assert result["l1"] == 0.5
    assert result["l2"] == 0.0


@pytest.mark.parametrize(
    ("settings", "key"),
    [({"alpha": -0.1}, "alpha"), ({}, "alpha"), ({"alpha": 0.1, "strength": 1}, "strength")],
)
def test_bad_config(settings, key):
    with pytest.raises(ValidationError, match=key):
        regularizers.get("l2").Config(name="l2", **settings)


def test_config_fields():
    c = regularizers.get("l1").Config(name="l1", alpha=0.1, layers=["dense1"], include_biases=True)
    assert c.layers == ["dense1"] and c.include_biases
    assert regularizers.get("l2").Config(alpha=0.2).name == "l2"


def test_add_grad_writes_through_views_of_a_flat_buffer():
    """The network's grads are reshaped views of one flat buffer: writes must reach it."""
    params = np.arange(1.0, 11.0)
    grads = np.zeros(10)
    weights = [params[:6].reshape(2, 3), params[6:].reshape(4, 1)]
    grad_views = [grads[:6].reshape(2, 3), grads[6:].reshape(4, 1)]
    make("l2", 0.5).add_grad(weights, grad_views)
    np.testing.assert_array_equal(grads, 0.5 * params)
