"""The benchmark's one-call MLP epoch (scripts/bench_mlp_floor.py) computes the same epoch as
plain NumPy: otherwise the floor it reports would not be the floor of dlrun's work."""

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

from dlrun.kernels import blas  # noqa: E402

floor = pytest.importorskip("bench_mlp_floor")
pytestmark = pytest.mark.skipif(not blas.available(), reason="needs NumPy's ILP64 OpenBLAS")


def numpy_epoch(x, y, perm, params, lr, batch):
    """gd on relu layers + softmax cross-entropy, float64, the layers' formulas as written."""
    ps = [p.astype(np.float64) for p in params]
    total = hits = 0.0
    norms = np.zeros(len(ps) // 2)
    for start in range(0, len(perm), batch):
        idx = perm[start : start + batch]
        a = [x[idx].reshape(len(idx), -1) / 255.0]
        for l in range(0, len(ps), 2):
            z = a[-1] @ ps[l] + ps[l + 1]
            a.append(z if l == len(ps) - 2 else np.maximum(z, 0))
        z = a[-1]
        e = np.exp(z - z.max(axis=1, keepdims=True))
        o = e / e.sum(axis=1, keepdims=True)
        t = y[idx]
        total += -np.log(o[np.arange(len(t)), t]).sum()
        hits += (z.argmax(axis=1) == t).sum()
        dz = o.copy()
        dz[np.arange(len(t)), t] -= 1
        dz /= len(t)
        grads = [None] * len(ps)
        for l in range(len(ps) - 2, -1, -2):
            grads[l], grads[l + 1] = a[l // 2].T @ dz, dz.sum(axis=0)
            norms[l // 2] += np.linalg.norm(grads[l])
            if l:
                dz = (dz @ ps[l].T) * (a[l // 2] > 0)
        ps = [p - lr * g for p, g in zip(ps, grads)]
    steps = -(-len(perm) // batch)
    return ps, total / len(perm), hits / len(perm), norms / steps


@pytest.mark.parametrize("sizes", [(12, 8, 6, 3), (20, 5, 4)])
def test_floor_epoch_is_the_numpy_epoch(sizes):
    rng = np.random.default_rng(1)
    n = 200  # three batches of 64 and one of 8
    x = rng.integers(0, 256, (n, sizes[0]), dtype=np.uint8)
    y = rng.integers(0, sizes[-1], n)
    perm = rng.permutation(n)
    params = floor.mlp_params(sizes, seed=2)
    want, loss, acc, norms = numpy_epoch(x, y, perm, params, 0.1, 64)
    _, got = floor.fused_epoch(x, y, perm, params, lr=0.1, batch=64)
    assert got["steps"] == 4
    for p, w in zip(params, want):
        np.testing.assert_allclose(p, w, rtol=1e-4, atol=1e-5)
    assert got["loss"] == pytest.approx(loss, rel=1e-5)
    assert got["accuracy"] == acc
    np.testing.assert_allclose(got["grad_norms"], norms, rtol=1e-4)


def test_floor_epoch_stops_before_a_non_finite_update():
    rng = np.random.default_rng(3)
    x = rng.integers(1, 256, (64, 6), dtype=np.uint8)
    y = rng.integers(0, 3, 64)
    params = floor.mlp_params((6, 4, 3), seed=4)
    params[0][0, :] = np.inf
    before = [p.copy() for p in params]
    _, got = floor.fused_epoch(x, y, np.arange(64), params)
    assert got["steps"] == -1
    for p, b in zip(params, before):
        np.testing.assert_array_equal(p, b)
