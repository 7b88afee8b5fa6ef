"""Training steps: a run of dense layers runs as one DenseStack step (one kernel call
forward, one backward), with the same results to the bit as the layers one by one."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.config.resolve import resolve
from dlrun.kernels import blas
from dlrun.nn.fused.dense_stack import DenseStack
from dlrun.nn.network import Network
from tests.conftest import small_config

pytestmark = pytest.mark.skipif(not blas.available(), reason="NumPy's BLAS is not ILP64 OpenBLAS")

MIXED = [  # every kind of dense layer the stack must carry
    {"type": "dense", "units": 16, "activation": "tanh"},
    {"type": "dense", "units": 8, "activation": "leaky_relu", "slope": 0.2},
    {"type": "dense", "units": 5, "activation": "relu", "bias": False},
    {"type": "dense", "units": 7, "activation": "softplus"},
    {"type": "dense", "units": 3},
]


def build(layers, shape, dtype=np.float64, loss="cross_entropy"):
    last = [{"type": "softmax"}] if loss == "cross_entropy" else []
    cfg = small_config(model={"type": "sequential", "layers": layers + last}, loss=loss)
    net = Network.from_config(resolve(cfg))
    net.build(shape, np.random.default_rng(0), dtype)
    return net


def kinds(net):
    return [type(s).__name__ for s in net.steps]


def test_runs_of_two_or_more_dense_layers_become_one_step():
    net = build([{"type": "flatten"}, *MIXED], (2, 3))
    assert kinds(net) == ["Flatten", "DenseStack"]
    assert net.first_step == 1 and net.steps[1].layers == tuple(net.layers[1:6])
    assert not net.steps[1].input_grad  # nothing needs dC/d(data)
    split = build([MIXED[0], {"type": "dropout", "rate": 0.5}, MIXED[1], MIXED[4]], (4,))
    assert kinds(split) == ["Dense", "Dropout", "DenseStack"]
    assert kinds(build([MIXED[4]], (4,))) == ["Dense"]


def test_without_blas_from_kernels_the_layers_run_one_by_one(monkeypatch):
    monkeypatch.setattr(blas, "available", lambda: False)
    assert kinds(build(MIXED, (4,))) == ["Dense"] * 5


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("rows", [2, 5, 64])
def test_fused_training_pass_equals_layer_by_layer(dtype, rows):
    fused, plain = build(MIXED, (4,), dtype), build(MIXED, (4,), dtype)
    plain.plan_training(fuse=False)
    assert kinds(fused) == ["DenseStack"] and kinds(plain) == ["Dense"] * 5
    rng = np.random.default_rng(rows)
    x = rng.standard_normal((rows, 4)).astype(dtype)
    t = rng.integers(0, 3, size=rows)
    for _ in range(3):  # through a few updates: the two stay together
        value_f, out_f = fused.train_step_grads(x, t)
        value_p, out_p = plain.train_step_grads(x, t)
        assert value_f == value_p
        np.testing.assert_array_equal(out_f, out_p)
        np.testing.assert_array_equal(fused.grads, plain.grads)
        assert np.abs(fused.grads).min() < np.abs(fused.grads).max()  # not all zero
        for net in (fused, plain):
            net.params -= 0.1 * net.grads
    np.testing.assert_array_equal(fused.predict(x), plain.predict(x))


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 1e-5)])
def test_one_row_agrees_within_rounding(dtype, tol):
    """For a single row np.dot takes a matrix-vector routine, the stack the matrix one:
    the same sums, in another order (online SGD, batch_size 1)."""
    fused, plain = build(MIXED, (4,), dtype), build(MIXED, (4,), dtype)
    plain.plan_training(fuse=False)
    x = np.random.default_rng(0).standard_normal((1, 4)).astype(dtype)
    value_f, out_f = fused.train_step_grads(x, np.array([2]))
    value_p, out_p = plain.train_step_grads(x, np.array([2]))
    assert value_f == pytest.approx(value_p, rel=tol)
    np.testing.assert_allclose(out_f, out_p, rtol=tol, atol=tol)
    np.testing.assert_allclose(fused.grads, plain.grads, rtol=tol, atol=tol)
    assert np.abs(fused.grads).max() > 0


def test_input_gradient_and_sequences_equal_layer_by_layer():
    """A stack whose dC/dx is needed (it follows a trained layer), on (N, T, features)
    inputs: the dense layers apply at every step, as one by one."""
    net = build(MIXED, (6, 4), loss="quadratic")
    layers = net.layers
    for layer in layers:
        layer.input_grad = True
    starts = {(l, k): int(s) for (l, k, _), s in zip(net.param_items(), net.bounds)}
    stack = DenseStack(list(layers), net.params, net.grads, starts)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 4))
    dy = rng.standard_normal((2, 6, 3))
    y = stack.forward(x, True)
    dx = stack.backward(dy)
    grads = net.grads.copy()
    want = net.forward(x, True)
    for layer in reversed(layers):
        dy = layer.backward(dy)
    assert y.shape == want.shape == (2, 6, 3)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(dx, dy)
    np.testing.assert_array_equal(grads, net.grads)


def test_end_to_end_gradient_check_runs_through_the_stack(monkeypatch):
    """check_network's end-to-end check runs the training steps: the stack's dW, db and
    dC/dx against central differences (float64)."""
    from dlrun.nn import gradcheck

    seen = []
    forward = DenseStack.forward
    monkeypatch.setattr(
        DenseStack, "forward", lambda s, x, t: (seen.append(s), forward(s, x, t))[1]
    )
    smooth = [{**spec, "activation": "tanh"} if "activation" in spec else spec for spec in MIXED]
    cfg = resolve(
        small_config(model={"type": "sequential", "layers": [*smooth, {"type": "softmax"}]})
    )
    reports = gradcheck.check_network(cfg, (4,), batch=3, seed=0)
    assert seen and all(r.passed for r in reports)
