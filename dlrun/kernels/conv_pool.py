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
from dlrun.kernels.conv import add_column_dots, copy_into_padding

U = np.uintp


@inline
def pooled_grad(
    dy: np.ndarray, y: np.ndarray, relu: bool, n: int, f: int, oy: int, ox: int
) -> float:
    """dy at one pooled position, times ReLU's derivative [y > 0] (0 * NaN stays NaN)."""
    g = dy[U(n), U(f), U(oy), U(ox)]
    if relu and not y[U(n), U(f), U(oy), U(ox)] > 0:
        g = dy.dtype.type(0.0) * g
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
    zero = y.dtype.type(0.0)
    for n in prange(n_batch):
        z = np.empty(2 * wo, dtype=y.dtype)  # two rows of act(yt + b): one row of windows
        for f in range(n_filt):
            bf = b[f]
            for oy in range(hp):
                top = n * p + 2 * oy * wo
                for q in range(2 * wo):
                    v = yt[U(f), U(top + q)] + bf
                    z[U(q)] = v if not relu or v > 0 else zero * v
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


# ------------------------------------------------------------- phase-ordered columns
# For even Ho and Wo, the four pixels of every pooling window can be put in four
# separate blocks of Q = Ho*Wo/4 columns: column n*P + (2a + b)*Q + oy*(Wo/2) + ox of
# ``cols`` holds pixel (2*oy + a, 2*ox + b) of image n (the window's "phase" 2a + b is
# the winner code of the max-pool). The matrix products do not care in which order
# the columns come, and the pool then compares four contiguous blocks instead of
# neighbouring pixels, and a window's gradient fills four contiguous blocks: loops
# that vectorise, without the scattered writes of unpooling into the (Ho, Wo) layout.


@parallel_kernel
def im2col_phased(
    x: np.ndarray,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    ho: int,
    wo: int,
    cols: np.ndarray,
) -> None:
    """``kernels.conv.im2col`` with each image's columns in phase order (Ho, Wo even):
    ``cols[(c*kh + i)*kw + j, n*P + (2a + b)*Q + oy*(Wo/2) + ox]`` =
    ``x[n, c, (2*oy + a)*sh - ph + i, (2*ox + b)*sw - pw + j]`` (0 in the padding)."""
    n_batch, n_chan = x.shape[0], x.shape[1]
    p = ho * wo
    hq, wq = ho // 2, wo // 2
    q = hq * wq
    hp, wp = (ho - 1) * sh + kh, (wo - 1) * sw + kw
    for n in prange(n_batch):
        pad = np.zeros((hp, wp), dtype=x.dtype)
        for c in range(n_chan):
            copy_into_padding(x[n, c], ph, pw, pad)
            for i in range(kh):
                for j in range(kw):
                    dst = cols[U((c * kh + i) * kw + j), U(n * p) : U((n + 1) * p)]
                    for a in range(2):
                        for b in range(2):
                            for oy in range(hq):
                                src = pad[U((2 * oy + a) * sh + i)]
                                base = (2 * a + b) * q + oy * wq
                                for ox in range(wq):
                                    dst[U(base + ox)] = src[U((2 * ox + b) * sw + j)]


@parallel_kernel
def phased_to_pooled(
    yt: np.ndarray, b: np.ndarray, relu: bool, y: np.ndarray, code: np.ndarray
) -> None:
    """:func:`rows_to_pooled` for phase-ordered columns: ``y[n, f, q]`` = the maximum
    over the phases k of act(yt[f, n*4Q + k*Q + q] + b[f]), ``code`` its phase (the first
    maximum); y and code (N, F, Q), yt (F, N*4Q). Selects, not branches."""
    n_batch, n_filt, q = y.shape
    zero = yt.dtype.type(0.0)
    for n in prange(n_batch):
        base = n * 4 * q
        for f in range(n_filt):
            bf = b[f]
            row = yt[U(f), U(base) : U(base + 4 * q)]
            for k in range(q):
                v0 = row[U(k)] + bf
                v1 = row[U(q + k)] + bf
                v2 = row[U(2 * q + k)] + bf
                v3 = row[U(3 * q + k)] + bf
                if relu:
                    v0 = v0 if v0 > 0 else zero * v0
                    v1 = v1 if v1 > 0 else zero * v1
                    v2 = v2 if v2 > 0 else zero * v2
                    v3 = v3 if v3 > 0 else zero * v3
                c1 = v1 > v0
                best = v1 if c1 else v0
                w = np.uint8(1) if c1 else np.uint8(0)
                c2 = v2 > best
                best = v2 if c2 else best
                w = np.uint8(2) if c2 else w
                c3 = v3 > best
                best = v3 if c3 else best
                w = np.uint8(3) if c3 else w
                y[U(n), U(f), U(k)] = best
                code[U(n), U(f), U(k)] = w


@parallel_reduction
def phased_weight_grad(
    dy: np.ndarray,
    y: np.ndarray,
    code: np.ndarray,
    relu: bool,
    cols: np.ndarray,
    dw: np.ndarray,
    db: np.ndarray,
) -> None:
    """:func:`pooled_weight_grad` for phase-ordered columns: dy, y, code (N, F, Q),
    cols (K, N*4Q), dw (F, K), db (F,).

    Per sample, each of a block of 8 filters gets its unpooled gradient g (4Q) in
    cache: phase k of window q holds dy (times [y > 0] with ReLU) if k won, else 0.
    Then each row of the sample's columns is read once for the 8 dot products. The
    dot products per sample are summed in the input dtype, the bias gradient and the
    sums across samples in float64, in a fixed order.
    """
    n_batch, n_filt, q = dy.shape
    n_k = cols.shape[0]
    zero = dy.dtype.type(0.0)
    for first in prange((n_filt + 7) // 8):
        f0 = first * 8
        nf = min(8, n_filt - f0)
        g = np.zeros((8, 4 * q), dtype=dy.dtype)  # rows past nf stay 0
        masked = np.empty(q, dtype=dy.dtype)
        acc = np.zeros((8, n_k + 1))  # dW row, then db, per filter
        for n in range(n_batch):
            for r in range(nf):
                f = U(f0 + r)
                s = 0.0
                for k in range(q):
                    v = dy[U(n), f, U(k)]
                    if relu:
                        v = v if y[U(n), f, U(k)] > 0 else zero * v
                    masked[U(k)] = v
                    s += v
                acc[r, n_k] += s
                for phase in range(4):  # one output stream per loop: these vectorise
                    for k in range(q):
                        v = masked[U(k)]
                        g[U(r), U(phase * q + k)] = v if code[U(n), f, U(k)] == phase else zero
            for kk in range(n_k):
                src = cols[U(kk), U(n * 4 * q) : U((n + 1) * 4 * q)]
                s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
                for k in range(4 * q):
                    c = src[U(k)]
                    s0 += g[0, U(k)] * c
                    s1 += g[1, U(k)] * c
                    s2 += g[2, U(k)] * c
                    s3 += g[3, U(k)] * c
                    s4 += g[4, U(k)] * c
                    s5 += g[5, U(k)] * c
                    s6 += g[6, U(k)] * c
                    s7 += g[7, U(k)] * c
                acc[0, kk] += s0
                acc[1, kk] += s1
                acc[2, kk] += s2
                acc[3, kk] += s3
                acc[4, kk] += s4
                acc[5, kk] += s5
                acc[6, kk] += s6
                acc[7, kk] += s7
        for r in range(nf):
            for kk in range(n_k):
                dw[f0 + r, kk] = acc[r, kk]
            db[f0 + r] = acc[r, n_k]
