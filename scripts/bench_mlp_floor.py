"""The MLP benchmark's epoch as ONE Numba call: the lowest time dlrun's design could reach.

    python scripts/bench.py mlp      # prints this floor in every round, beside torch's epoch

Per batch it does the work a dlrun training step must do, with dlrun's own kernels and
NumPy's BLAS called from inside Numba (``kernels/blas.py``), and no Python, layers,
trainer, progress or metrics rows between them:

    x = X[idx] / 255                               gather_rows
    a1 = relu(x W1 + b1), a2 = relu(a1 W2 + b2)    sgemm + bias_act_forward
    z = a2 W3 + b3, C and dC/dz                    sgemm + bias_act_forward + softmax_cross_entropy
    dC/dW_l = a_{l-1}^T dz_l, dC/db_l, dz_{l-1}    sgemm (transposed operands) + act_backward_bias
    sum g^2 per tensor; stop if not finite         segment_sum_squares (the divergence guard,
                                                   which also gives the per-layer norms)
    w <- w - lr g                                  gd_step
    hits += argmax == label                        argmax_hits

So ``floor epoch / torch epoch`` is the ratio an ideal implementation of dlrun's
training step (guard before the update, per-layer gradient norms) reaches with this BLAS.
``tests/test_bench_floor.py`` checks that it computes the same epoch as plain NumPy.
"""

from __future__ import annotations

import math
import time

import numpy as np
from numba import njit

from dlrun.kernels import blas
from dlrun.kernels.activations import IDENTITY, RELU, act_backward_bias, bias_act_forward
from dlrun.kernels.data import gather_rows
from dlrun.kernels.losses import softmax_cross_entropy
from dlrun.kernels.metrics import argmax_hits
from dlrun.kernels.optim import gd_step
from dlrun.kernels.penalties import segment_sum_squares

_ROW_MAJOR, _N, _T = 101, 111, 112


@njit(cache=True, nogil=True)
def _mm(trans_a, trans_b, a, b, c):
    """c = op(a) @ op(b) (float32, C-contiguous 2-D arrays; op transposes when asked)."""
    m, n = c.shape
    k = a.shape[0] if trans_a == _T else a.shape[1]
    blas._sgemm(
        _ROW_MAJOR, trans_a, trans_b, m, n, k, np.float32(1.0),
        a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], np.float32(0.0), c.ctypes.data, n,
    )  # fmt: skip


@njit(cache=True, nogil=True)
def _epoch(x, scale, offset, y, perm, params, grads, bounds, sizes, lr, batch, norms):
    """One epoch of gd on a dense ReLU network ending in softmax + cross-entropy.

    x: (n, features), any dtype, seen as x * scale + offset (float32); y: (n,) int64; params, grads: flat float32 buffers holding
    W1, b1, W2, b2, ... in that order (``bounds`` as in ``Network.bounds``); sizes:
    (features, units_1, ..., classes). Adds each batch's per-layer ||dC/dW|| to ``norms``.
    Returns (summed loss, hits, batches), or batches = -1 if a gradient was not finite.
    """
    f32 = np.float32
    n_layers = sizes.shape[0] - 1
    acts = [np.empty((batch, sizes[l]), f32) for l in range(n_layers + 1)]
    deltas = [np.empty((batch, sizes[l]), f32) for l in range(n_layers + 1)]  # [0]: unused
    w = [
        params[bounds[2 * l] : bounds[2 * l + 1]].reshape((sizes[l], sizes[l + 1]))
        for l in range(n_layers)
    ]
    gw = [
        grads[bounds[2 * l] : bounds[2 * l + 1]].reshape((sizes[l], sizes[l + 1]))
        for l in range(n_layers)
    ]
    b = [params[bounds[2 * l + 1] : bounds[2 * l + 2]] for l in range(n_layers)]
    gb = [grads[bounds[2 * l + 1] : bounds[2 * l + 2]] for l in range(n_layers)]
    squares = np.empty(2 * n_layers)
    labels = np.empty(batch, np.int64)
    total, hits, steps = 0.0, 0, 0
    for start in range(0, perm.shape[0], batch):
        idx = perm[start : start + batch]
        m = idx.shape[0]
        a = [t[:m] for t in acts]
        d = [t[:m] for t in deltas]
        for i in range(m):
            labels[i] = y[idx[i]]
        gather_rows(x, idx, scale, offset, scale != 1, offset != 0, a[0])
        for l in range(n_layers):
            _mm(_N, _N, a[l], w[l], a[l + 1])
            code = IDENTITY if l == n_layers - 1 else RELU
            bias_act_forward(a[l + 1], b[l], code, f32(0.0), a[l + 1])
        total += softmax_cross_entropy(a[n_layers], labels[:m], d[n_layers]) * m
        hits += argmax_hits(a[n_layers], labels[:m])
        for l in range(n_layers - 1, -1, -1):
            if l < n_layers - 1:  # the loss gave dC/dy of the last layer
                _mm(_N, _T, d[l + 2], w[l + 1], d[l + 1])
            code = IDENTITY if l == n_layers - 1 else RELU
            act_backward_bias(d[l + 1], a[l + 1], code, f32(0.0), d[l + 1], gb[l])
            _mm(_T, _N, a[l], d[l + 1], gw[l])
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
    sizes = np.array([params[0].shape[0]] + [p.shape[1] for p in params[0::2]], np.int64)
    bounds = np.cumsum([0] + [p.size for p in params]).astype(np.int64)
    flat = np.concatenate([p.ravel() for p in params]).astype(np.float32)
    grads = np.zeros_like(flat)
    norms = np.zeros(len(sizes) - 1)
    x2 = np.ascontiguousarray(x.reshape(len(x), -1))
    start = time.perf_counter()
    f32 = np.float32
    total, hits, steps = _epoch(
        x2, f32(scale), f32(offset), y.astype(np.int64), perm.astype(np.int64),
        flat, grads, bounds, sizes, f32(lr), batch, norms,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    for p, lo, hi in zip(params, bounds[:-1], bounds[1:]):
        p[...] = flat[lo:hi].reshape(p.shape)
    result = {"loss": total / len(x), "accuracy": hits / len(x), "steps": steps}
    result["grad_norms"] = list(norms / max(steps, 1))
    return seconds, result


def mlp_params(sizes=(784, 256, 128, 10), seed: int = 0) -> list[np.ndarray]:
    """He-normal weights and zero biases for a dense network of these sizes."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        out.append((rng.standard_normal((n_in, n_out)) * math.sqrt(2.0 / n_in)).astype(np.float32))
        out.append(np.zeros(n_out, np.float32))
    return out
