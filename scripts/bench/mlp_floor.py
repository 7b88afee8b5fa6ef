"""The MLP benchmark's epoch as ONE Numba call: the lowest time dlrun's design could reach.

Per batch it does the work a dlrun training step must do, with dlrun's own kernels and
NumPy's BLAS called from inside Numba (``kernels/blas.py``), and no Python, layers,
trainer, progress or metrics rows between them:

    x = X[idx] / 255                               gather_rows
    a1 = relu(x W1 + b1), a2 = relu(a1 W2 + b2),   stack_forward (the dense step's kernel)
    z = a2 W3 + b3
    C and dC/dz                                    softmax_cross_entropy
    dC/dW_l, dC/db_l, dz_{l-1}                     stack_backward
    sum g^2 per tensor; stop if not finite         segment_sum_squares (the divergence guard,
                                                   which also gives the per-layer norms)
    w <- w - lr g                                  gd_step
    hits += argmax == label                        argmax_hits

So ``floor epoch / torch epoch`` is the ratio an ideal implementation of dlrun's
training step (guard before the update, per-layer gradient norms) reaches with this BLAS.
``python scripts/bench.py mlp`` times it in every round, after :func:`check` has shown
that it computes the same epoch as plain NumPy.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from dlrun.kernels import blas
from dlrun.kernels.activations import IDENTITY, RELU
from dlrun.kernels.data import gather_rows
from dlrun.kernels.dense import stack_backward, stack_forward
from dlrun.kernels.losses import softmax_cross_entropy
from dlrun.kernels.metrics import argmax_hits
from dlrun.kernels.optim import gd_step
from dlrun.kernels.penalties import segment_sum_squares


@njit(cache=True, nogil=True)
def _epoch(x, scale, offset, y, perm, params, grads, bounds, layout, libs, lr, batch, norms):
    """One epoch of gd on a run of dense layers (``layout`` as in ``kernels.dense``)
    ending in softmax + cross-entropy.

    x: (n, features), any dtype, seen as x * scale + offset (float32); y: (n,) int64;
    params, grads: flat float32 buffers holding W1, b1, W2, b2, ... in that order
    (``bounds`` as in ``Network.bounds``); libs: (2, L, 3) the BLAS of the products
    (``kernels.dense``) of a full batch, then of a shorter last one. Adds each batch's per-layer ||dC/dW|| to
    ``norms``. Returns (summed loss, hits, batches), or batches = -1 if a gradient was
    not finite.
    """
    f32 = np.float32
    n_layers = layout.shape[0]
    n_out = layout[n_layers - 1, 3]
    width = layout[:, 3].sum()
    xb = np.empty((batch, layout[0, 2]), f32)
    acts = np.empty(batch * width, f32)
    dy = np.empty((batch, n_out), f32)
    zeros = np.zeros(layout[:, 3].max(), f32)  # biases of layers without one (none here)
    scratch = np.empty_like(zeros)
    slopes = np.zeros(n_layers)
    no_dx = np.empty((0, layout[0, 2]), f32)
    squares = np.empty(bounds.shape[0] - 1)
    labels = np.empty(batch, np.int64)
    total, hits, steps = 0.0, 0, 0
    for start in range(0, perm.shape[0], batch):
        idx = perm[start : start + batch]
        m = idx.shape[0]
        for i in range(m):
            labels[i] = y[idx[i]]
        gather_rows(x, idx, scale, offset, scale != 1, offset != 0, xb[:m])
        lib = libs[0] if m == batch else libs[1]
        stack_forward(xb[:m], params, zeros, layout, slopes, lib, acts[: m * width])
        logits = acts[m * (width - n_out) : m * width].reshape((m, n_out))
        total += softmax_cross_entropy(logits, labels[:m], dy[:m]) * m
        hits += argmax_hits(logits, labels[:m])
        stack_backward(
            xb[:m], params, grads, scratch, layout, slopes, lib, acts[: m * width], dy[:m], no_dx
        )
        segment_sum_squares(grads, bounds, squares)
        if not math.isfinite(squares.sum()):
            return total, hits, -1
        for l in range(n_layers):
            norms[l] += math.sqrt(squares[2 * l])
        gd_step(params, grads, lr)
        steps += 1
    return total, hits, steps


def fused_epoch(
    x: np.ndarray,
    y: np.ndarray,
    perm: np.ndarray,
    params: list[np.ndarray],
    scale: float = 1.0 / 255.0,
    offset: float = 0.0,
    lr: float = 0.1,
    batch: int = 64,
) -> tuple[float, dict]:
    """Seconds for one epoch of :func:`_epoch`, and its results. ``params``: [W1, b1, W2, ...]
    float32 arrays (updated in place); x: (n, ...) inputs, seen as ``x * scale + offset``;
    y: (n,) labels."""
    if not blas.available():
        raise RuntimeError("the floor needs NumPy's ILP64 OpenBLAS (kernels/blas.py)")
    bounds = np.cumsum([0] + [p.size for p in params]).astype(np.int64)
    codes = [RELU] * (len(params) // 2 - 1) + [IDENTITY]
    layout = np.array(
        [
            (lo, hi, *w.shape, c)
            for w, lo, hi, c in zip(params[0::2], bounds[0::2], bounds[1::2], codes)
        ],
        np.int64,
    )
    flat = np.concatenate([p.ravel() for p in params]).astype(np.float32)
    grads = np.zeros_like(flat)
    norms = np.zeros(len(layout))
    x2 = np.ascontiguousarray(x.reshape(len(x), -1))
    libs = np.array([stack_libs(layout, m) for m in (batch, len(x) % batch or batch)])
    start = time.perf_counter()
    f32 = np.float32
    total, hits, steps = _epoch(
        x2, f32(scale), f32(offset), y.astype(np.int64), perm.astype(np.int64),
        flat, grads, bounds, layout, libs, f32(lr), batch, norms,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    for p, lo, hi in zip(params, bounds[:-1], bounds[1:]):
        p[...] = flat[lo:hi].reshape(p.shape)
    result = {"loss": total / len(x), "accuracy": hits / len(x), "steps": steps}
    result["grad_norms"] = list(norms / max(steps, 1))
    return seconds, result


def stack_libs(layout: np.ndarray, m: int) -> np.ndarray:
    """(L, 3) the BLAS chosen for each layer's products with ``m`` rows, as the dense
    step's (forward x W; backward x^T dz and, past the first layer, dz W^T)."""
    libs = np.zeros((len(layout), 3), np.int64)
    for i, (n_in, n_out) in enumerate(layout[:, 2:4].tolist()):
        libs[i, 0] = blas.lib_for_shape(m, n_in, n_out, False, False, np.dtype(np.float32))
        libs[i, 1] = blas.lib_for_shape(n_in, m, n_out, True, False, np.dtype(np.float32))
        if i > 0:
            libs[i, 2] = blas.lib_for_shape(m, n_out, n_in, False, True, np.dtype(np.float32))
    return libs


def numpy_epoch(x, y, perm, params, lr, batch):
    """gd on relu layers + softmax cross-entropy, float64, the layers' formulas as written:
    (parameters, mean loss, accuracy, mean per-layer ||dC/dW||)."""
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


def check() -> None:
    """Fail unless :func:`fused_epoch` is the NumPy epoch on small random networks (same
    parameters, loss, accuracy and gradient norms over three batches of 64 and one of 8),
    and leaves the parameters untouched once a gradient is not finite."""
    rng = np.random.default_rng(1)

    def params(sizes):
        return [
            a
            for n_in, n_out in zip(sizes, sizes[1:])
            for a in (
                (rng.standard_normal((n_in, n_out)) * math.sqrt(2 / n_in)).astype(np.float32),
                np.zeros(n_out, np.float32),
            )
        ]

    for sizes in ((12, 8, 6, 3), (20, 5, 4)):
        x = rng.integers(0, 256, (200, sizes[0]), dtype=np.uint8)
        y = rng.integers(0, sizes[-1], 200)
        perm = rng.permutation(200)
        ps = params(sizes)
        want, loss, acc, norms = numpy_epoch(x, y, perm, ps, 0.1, 64)
        _, got = fused_epoch(x, y, perm, ps, lr=0.1, batch=64)
        np.testing.assert_equal((got["steps"], got["accuracy"]), (4, acc))
        for p, w in zip(ps, want):
            np.testing.assert_allclose(p, w, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
        np.testing.assert_allclose(got["grad_norms"], norms, rtol=1e-4)
    ps = params((6, 4, 3))
    ps[0][0, :] = np.inf
    before = [p.copy() for p in ps]
    x = rng.integers(1, 256, (64, 6), dtype=np.uint8)
    _, got = fused_epoch(x, rng.integers(0, 3, 64), np.arange(64), ps)
    np.testing.assert_equal(got["steps"], -1)
    for p, b in zip(ps, before):
        np.testing.assert_array_equal(p, b)
