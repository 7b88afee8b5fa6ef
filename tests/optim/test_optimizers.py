"""Optimizers: update rules vs plain NumPy, descent on test functions, checkpoints, config."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.config.registry import optimizers
from dlrun.errors import CheckpointError
from dlrun.optim.optimizers import Optimizer
from tests.crosscheck.common import import_torch
from tests.naive_optim import REFERENCES

NAMES = ["gd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam"]


def make(name: str, size: int, dtype=np.float64, **settings) -> Optimizer:
    cls = optimizers.get(name)
    return cls(cls.Config(name=name, **settings), size, dtype)


def run(opt: Optimizer, w0: np.ndarray, grads, lrs) -> np.ndarray:
    w = w0.astype(opt.dtype)
    for g, lr in zip(grads, lrs, strict=True):
        opt.step(w, g.astype(opt.dtype), lr)
    return w


def random_steps(n_steps: int = 6, size: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    w0 = rng.standard_normal(size)
    # gradients of mixed scales, some exactly zero (tests eps and max with 0)
    grads = [
        rng.standard_normal(size) * rng.choice([1e-3, 1.0, 10.0], size) for _ in range(n_steps)
    ]
    for g in grads:
        g[:3] = 0.0
    lrs = list(np.linspace(0.05, 0.01, n_steps))  # a changing rate, as a schedule gives
    return w0, grads, lrs


def test_all_nine_registered_with_a_description():
    assert set(NAMES) <= set(optimizers.names())
    for name in NAMES:
        assert optimizers.describe(optimizers.get(name)), name


VARIANTS = [(name, {}) for name in NAMES] + [
    ("momentum", {"alpha": 0.5}),
    ("adagrad", {"eps_inside_sqrt": True}),
    ("adagrad", {"initial_accumulator": 0.1}),
    ("adadelta", {"rho": 0.9}),
    ("rmsprop", {"eps_inside_sqrt": True, "beta": 0.99}),
    ("adam", {"eps_inside_sqrt": True}),
    ("adam", {"beta1": 0.0, "beta2": 0.5}),
    ("nadam", {"momentum_schedule": False}),
    ("nadam", {"momentum_decay": 0.1}),
]


@pytest.mark.parametrize(("name", "settings"), VARIANTS)
def test_matches_numpy_reference_float64(name, settings):
    w0, grads, lrs = random_steps()
    got = run(make(name, w0.size, **settings), w0, grads, lrs)
    want = REFERENCES[name](w0, grads, lrs, **settings)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert not np.array_equal(got, w0)


@pytest.mark.parametrize("name", NAMES)
def test_float32_stays_float32_and_close_to_float64(name):
    w0, grads, lrs = random_steps()
    opt = make(name, w0.size, np.float32)
    got = run(opt, w0, grads, lrs)
    assert got.dtype == np.float32
    assert all(a.dtype == np.float32 for a in opt.state.values())
    want = REFERENCES[name](w0, grads, lrs)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_nesterov_lookahead_form_equals_classical_nag():
    """Stored parameters are w + alpha v of the classical form (Sutskever et al., 2013)."""
    a = np.array([1.0, 4.0, 0.5])  # f(w) = 1/2 sum a w^2, grad = a w
    lr, alpha = 0.1, 0.9
    w = np.array([1.0, -2.0, 3.0])
    v = np.zeros(3)
    opt = make("nesterov", 3, alpha=alpha)
    stored = w.copy()
    for _ in range(20):
        v = alpha * v - lr * a * (w + alpha * v)  # gradient at the look-ahead point
        w = w + v
        opt.step(stored, a * stored, lr)
        np.testing.assert_allclose(stored, w + alpha * v, rtol=1e-12, atol=1e-14)


# -- descent on test functions ------------------------------------------------------
#: learning rates that suit each optimizer on these small problems
BOWL_LR = {"gd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5, "adadelta": 1.0,
           "rmsprop": 0.01, "adam": 0.05, "adamax": 0.05, "nadam": 0.05}  # fmt: skip
ROSEN_LR = {"gd": 1e-3, "momentum": 5e-4, "nesterov": 5e-4, "adagrad": 0.1, "adadelta": 1.0,
            "rmsprop": 1e-3, "adam": 0.01, "adamax": 0.01, "nadam": 0.01}  # fmt: skip


def bowl(w):
    """f(w) = 1/2 sum a_i w_i^2, an elongated bowl with its minimum 0 at the origin."""
    a = np.array([1.0, 10.0])
    return 0.5 * float(np.sum(a * w * w)), a * w


def rosenbrock(w):
    """f(x, y) = (1 - x)^2 + 100 (y - x^2)^2, minimum 0 at (1, 1)."""
    x, y = w
    f = (1 - x) ** 2 + 100 * (y - x * x) ** 2
    grad = np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])
    return float(f), grad


def descend(name, fn, w0, lr, n_steps):
    opt = make(name, 2)
    w = np.array(w0, dtype=np.float64)
    losses = []
    for _ in range(n_steps):
        loss, grad = fn(w)
        losses.append(loss)
        opt.step(w, grad, lr)
    return losses, fn(w)[0]


@pytest.mark.parametrize("name", NAMES)
def test_lowers_loss_on_quadratic_bowl(name):
    losses, final = descend(name, bowl, [2.0, -1.5], BOWL_LR[name], 1000)
    assert np.isfinite(final)
    assert final < 1e-3 * losses[0], (losses[0], final)


@pytest.mark.parametrize("name", NAMES)
def test_lowers_loss_on_rosenbrock(name):
    losses, final = descend(name, rosenbrock, [-1.2, 1.0], ROSEN_LR[name], 3000)
    assert np.isfinite(final)
    assert final < 0.05 * losses[0], (losses[0], final)


# -- checkpoints ------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_state_dict_round_trip_continues_bit_identically(name, tmp_path):
    w0, grads, lrs = random_steps(n_steps=8)
    grads32 = [g.astype(np.float32) for g in grads]

    uninterrupted = make(name, w0.size, np.float32)
    w_full = run(uninterrupted, w0, grads32, lrs)

    first = make(name, w0.size, np.float32)
    w_half = run(first, w0, grads32[:4], lrs[:4])
    views = first.state_dict(copy=False)  # what a checkpoint writes: the live arrays
    for key, array in first.state.items():
        assert np.shares_memory(views[key], array)
        assert not np.shares_memory(first.state_dict()[key], array)
    np.savez(tmp_path / "opt.npz", params=w_half, **views)

    with np.load(tmp_path / "opt.npz", allow_pickle=False) as saved:
        state = {k: saved[k] for k in saved.files if k != "params"}
        w_resumed = saved["params"].copy()
    second = make(name, w0.size, np.float32)
    second.load_state_dict(state)
    assert second.t == 4
    for g, lr in zip(grads32[4:], lrs[4:], strict=True):
        second.step(w_resumed, g, lr)

    assert np.array_equal(w_resumed, w_full)
    for key, value in uninterrupted.state_dict().items():
        assert np.array_equal(second.state_dict()[key], value), key


def test_state_dict_holds_copies_and_step_count():
    opt = make("adam", 5)
    opt.step(np.zeros(5), np.ones(5), 0.1)
    state = opt.state_dict()
    assert state["step"].shape == () and int(state["step"]) == 1
    state["m"][:] = 123.0
    assert not np.any(opt.state["m"] == 123.0)


def test_load_state_dict_rejects_wrong_shape_and_keys():
    opt = make("adam", 5)
    good = opt.state_dict()
    with pytest.raises(CheckpointError, match=r"'m' has shape \(4,\), expected \(5,\)"):
        opt.load_state_dict({**good, "m": np.zeros(4)})
    with pytest.raises(CheckpointError, match="missing \\['v'\\]"):
        opt.load_state_dict({k: v for k, v in good.items() if k != "v"})
    with pytest.raises(CheckpointError, match="unexpected \\['velocity'\\]"):
        opt.load_state_dict({**good, "velocity": np.zeros(5)})
    with pytest.raises(CheckpointError, match="'step' must be a scalar"):
        opt.load_state_dict({**good, "step": np.zeros(2)})


def test_step_rejects_wrong_dtype_or_size():
    opt = make("gd", 4, np.float32)
    with pytest.raises(ValueError, match="float32 array of shape \\(4,\\)"):
        opt.step(np.zeros(4), np.zeros(4), 0.1)
    with pytest.raises(ValueError, match="grads"):
        opt.step(np.zeros(4, np.float32), np.zeros(3, np.float32), 0.1)


# -- config validation -------------------------------------------------------------
BAD = [(name, "lr", -0.1) for name in NAMES] + [
    ("momentum", "alpha", 1.0),
    ("nesterov", "alpha", -0.5),
    ("adagrad", "eps", 0.0),
    ("adadelta", "rho", 1.0),
    ("rmsprop", "beta", 1.0),
    ("adam", "beta1", 1.0),
    ("adam", "beta2", 1.5),
    ("adamax", "beta2", 1.0),
    ("nadam", "beta1", 1.0),
    ("adam", "lr", 0.0),
    ("adam", "nonsense", 1.0),
]


@pytest.mark.parametrize(("name", "key", "value"), BAD)
def test_bad_config_values_are_validation_errors(name, key, value):
    with pytest.raises(ValidationError, match=key):
        optimizers.get(name).Config(name=name, **{key: value})


def test_defaults_from_the_papers():
    adam = optimizers.get("adam").Config()
    assert (adam.lr, adam.beta1, adam.beta2, adam.eps) == (0.001, 0.9, 0.999, 1e-8)
    assert optimizers.get("adagrad").Config().eps == 1e-7
    assert optimizers.get("gd").Config().name == "gd"


# -- cross-check with torch.optim where the formulation is the same ----------------
TORCH_SAME = ["gd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "nadam"]


@pytest.mark.parametrize("name", TORCH_SAME)
def test_agrees_with_torch_optim(name):
    torch = import_torch()  # a test-only extra: skips without it, except in CI
    w0, grads, _ = random_steps()
    lr = 0.02  # constant: torch's momentum keeps eta outside the velocity
    opt = make(name, w0.size)
    c = opt.config
    p = torch.nn.Parameter(torch.tensor(w0))
    o = torch.optim
    ref = {
        "gd": lambda: o.SGD([p], lr=lr),
        "momentum": lambda: o.SGD([p], lr=lr, momentum=c.alpha),
        "nesterov": lambda: o.SGD([p], lr=lr, momentum=c.alpha, nesterov=True),
        "adagrad": lambda: o.Adagrad([p], lr=lr, eps=c.eps),
        "adadelta": lambda: o.Adadelta([p], lr=lr, rho=c.rho, eps=c.eps),
        "rmsprop": lambda: o.RMSprop([p], lr=lr, alpha=c.beta, eps=c.eps),
        "adam": lambda: o.Adam([p], lr=lr, betas=(c.beta1, c.beta2), eps=c.eps),
        "nadam": lambda: o.NAdam([p], lr=lr, betas=(c.beta1, c.beta2), eps=c.eps),
    }[name]()
    w = w0.copy()
    for g in grads:
        opt.step(w, g, lr)
        p.grad = torch.tensor(g)
        ref.step()
    # torch keeps NAdam's product of momentum factors in float32
    rtol = 1e-7 if name == "nadam" else 1e-10
    np.testing.assert_allclose(w, p.detach().numpy(), rtol=rtol, atol=1e-12)
