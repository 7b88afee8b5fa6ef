"""A convolution's output (optionally through ReLU) and the 2x2 max-pool after it, in one pass.

The convolution's matrix product leaves its result in the GEMM layout ``yt``
(F, N*P), P = Ho*Wo (see :mod:`dlrun.kernels.conv`). The unfused layers then
write the feature maps z = act(yt + b) as (N, F, Ho, Wo), the pool reads them
back, and backward writes dC/dz in full (zero except at each window's winner)
for the convolution to read again. Fused, only the pooled maps are written::

    y[n, f, oy, ox] = max_{i, j in {0, 1}} act(yt[f, n*P + (2*oy + i)*Wo + 2*ox + j] + b[f])
    code[n, f, oy, ox] = 2*i + j of the winner (the first maximum, as the max-pool)

and backward puts each pooled gradient straight back on its winner, in the GEMM
layout, with ReLU's derivative [y > 0] (the winner's value is the pooled one)::

    dyt[f, n*P + winner] = dy[n, f, oy, ox] * [y[n, f, oy, ox] > 0]      (0 elsewhere)

act is ReLU (max(0, v), 0 * NaN keeping a NaN visible) or the identity. The
values and winners are exactly those of ``rows_to_nchw`` then
``maxpool_forward_2x2``. A row or column of the feature maps past the last
full window (odd Ho or Wo) is dropped by the pool: its gradient is 0.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from dlrun.kernels._jit import inline, parallel_kernel, parallel_reduction
from dlrun.kernels.conv import add_column_dots

U = np.uintp


@inline
def pooled_grad(
    dy: np.ndarray, y: np.ndarray, relu: bool, n: int, f: int, oy: int, ox: int
) -> float:
    """dy at one pooled position, times ReLU's derivative [y > 0] (0 * NaN stays NaN)."""
    g = dy[U(n), U(f), U(oy), U(ox)]
    if relu and not y[U(n), U(f), U(oy), U(ox)] > 0:
        g = 0.0 * g
    return g


@inline
def winner(code: np.ndarray, n: int, f: int, oy: int, ox: int, wo: int) -> int:
    """Offset in its (Ho, Wo) map of the pixel that won pooled position (oy, ox)."""
    k = code[U(n), U(f), U(oy), U(ox)]
    return (2 * oy + (k >> 1)) * wo + 2 * ox + (k & 1)


@parallel_kernel
def rows_to_pooled(
    yt: np.ndarray, b: np.ndarray, relu: bool, wo: int, y: np.ndarray, code: np.ndarray
) -> None:
    """Pooled feature maps ``y`` and winners ``code`` (uint8), both (N, F, Ho//2, Wo//2),
    from the product ``yt`` (F, N*Ho*Wo) and the bias ``b`` (F,)."""
    n_batch, n_filt, hp, wp = y.shape
    p = yt.shape[1] // n_batch
    for n in prange(n_batch):
        z = np.empty(2 * wo, dtype=y.dtype)  # two rows of act(yt + b): one row of windows
        for f in range(n_filt):
            bf = b[f]
            for oy in range(hp):
                top = n * p + 2 * oy * wo
                for q in range(2 * wo):
                    v = yt[U(f), U(top + q)] + bf
                    z[U(q)] = v if not relu or v > 0 else 0.0 * v
                for ox in range(wp):
                    best = z[U(2 * ox)]
                    k = 0
                    v = z[U(2 * ox + 1)]
                    if v > best:
                        best, k = v, 1
                    v = z[U(wo + 2 * ox)]
                    if v > best:
                        best, k = v, 2
                    v = z[U(wo + 2 * ox + 1)]
                    if v > best:
                        best, k = v, 3
                    y[U(n), U(f), U(oy), U(ox)] = best
                    code[U(n), U(f), U(oy), U(ox)] = k


@parallel_kernel
def pooled_to_rows(
    dy: np.ndarray,
    y: np.ndarray,
    code: np.ndarray,
    relu: bool,
    ho: int,
    wo: int,
    dyt: np.ndarray,
    db: np.ndarray,
) -> None:
    """dC/d(yt) in the GEMM layout ``dyt`` (F, N*Ho*Wo) from the pooled gradient ``dy``
    (N, F, Ho//2, Wo//2), and ``db[f]``, its sum (float64, in a fixed order)."""
    n_batch, n_filt, hp, wp = dy.shape
    p = ho * wo
    for f in prange(n_filt):
        s = 0.0
        for n in range(n_batch):
            base = n * p
            dyt[U(f), U(base) : U(base + p)] = 0.0
            for oy in range(hp):
                for ox in range(wp):
                    g = pooled_grad(dy, y, relu, n, f, oy, ox)
                    dyt[U(f), U(base + winner(code, n, f, oy, ox, wo))] = g
                    s += g
        db[f] = s


@parallel_reduction
def pooled_weight_grad(
    dy: np.ndarray,
    y: np.ndarray,
    code: np.ndarray,
    relu: bool,
    ho: int,
    wo: int,
    cols: np.ndarray,
    dw: np.ndarray,
    db: np.ndarray,
) -> None:
    """``dw = dyt @ cols.T`` (F, K) and ``db`` without writing ``dyt`` out: each sample's
    gradient map is unpooled into a scratch row that stays in cache, then dotted with
    the K rows of its columns. For a first layer (no dC/dx needed) with few rows K in
    ``cols``. Filters go in blocks of 8 per task; each filter's sums are one thread's,
    per sample in the input dtype and across samples in float64, in a fixed order."""
    n_batch, n_filt, hp, wp = dy.shape
    p = ho * wo
    n_k = cols.shape[0]
    block = 8
    for first in prange((n_filt + block - 1) // block):
        f0, f1 = first * block, min((first + 1) * block, n_filt)
        g = np.zeros(p, dtype=dy.dtype)
        acc = np.zeros((f1 - f0, n_k + 1))  # dW row, then db, per filter
        for n in range(n_batch):
            for f in range(f0, f1):
                s = 0.0
                for oy in range(hp):
                    for ox in range(wp):
                        v = pooled_grad(dy, y, relu, n, f, oy, ox)
                        g[U(winner(code, n, f, oy, ox, wo))] = v
                        s += v
                acc[f - f0, n_k] += s
                add_column_dots(g, cols, n * p, acc[f - f0])
                for oy in range(hp):  # back to zeros for the next map
                    for ox in range(wp):
                        g[U(winner(code, n, f, oy, ox, wo))] = 0.0
        for f in range(f0, f1):
            for kk in range(n_k):
                dw[f, kk] = acc[f - f0, kk]
            db[f] = acc[f - f0, n_k]
