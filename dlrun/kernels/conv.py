"""Convolution kernels: im2col / col2im around one BLAS matrix product.

A 2-D convolution (a cross-correlation, as in deep-learning libraries) of a
batch ``x`` (N, C, H, W) with filters ``W`` (F, C, kh, kw), strides (sh, sw)
and top/left padding (ph, pw)::

    y[n, f, oy, ox] = b[f] + sum_{c, i, j} W[f, c, i, j] * x[n, c, oy*sh - ph + i, ox*sw - pw + j]

where ``x`` reads as 0 outside its H x W picture (zero padding; the
bottom/right padding is implied by the output size Ho x Wo).

:func:`im2col` copies every receptive field into one column of
``cols`` (C*kh*kw, N*Ho*Wo), so the whole batch is one matrix product done by
BLAS in the layer::

    Y (F, N*Ho*Wo) = W.reshape(F, C*kh*kw) @ cols

and the backward pass is two more products and a scatter back (:func:`col2im`)::

    dW = dY @ cols.T        dcols = W.T @ dY        dx = col2im(dcols)

Rows of ``cols`` are ordered (c, i, j), like ``W.reshape(F, -1)``; columns are
ordered (n, oy, ox). For a first layer with few rows in ``cols`` (one 3x3 input
channel), :func:`masked_weight_grad` computes dW and db straight from dy, without
the dY layout. Every kernel loops with ``prange`` over samples (or
filters), which write disjoint parts of their output, so results do not depend
on the number of threads.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from dlrun.kernels._jit import inline, parallel_kernel, parallel_reduction


@inline
def valid_range(pad: int, tap: int, stride: int, size: int, n_out: int) -> tuple[int, int]:
    """Outputs ``o`` in [lo, hi) whose input ``o*stride - pad + tap`` lies in [0, size)."""
    lo = 0
    if pad - tap > 0:
        lo = (pad - tap + stride - 1) // stride
    hi = 0
    if size - 1 + pad - tap >= 0:
        hi = min(n_out, (size - 1 + pad - tap) // stride + 1)
    return lo, max(lo, hi)


# Indices are cast to unsigned (``U``) where they are known to be >= 0: Numba then
# skips its negative-index wraparound test, and the copy loops vectorise (3-5x faster).
U = np.uintp


@inline
def copy_into_padding(plane: np.ndarray, ph: int, pw: int, pad: np.ndarray) -> None:
    """``pad[iy + ph, ix + pw] = plane[iy, ix]`` for the pixels of ``plane`` (H, W) that fall
    inside ``pad``; the rest of ``pad`` (its zero border) is left as it is."""
    h_in = min(plane.shape[0], pad.shape[0] - ph)
    w_in = min(plane.shape[1], pad.shape[1] - pw)
    for iy in range(h_in):
        for ix in range(w_in):
            pad[U(iy + ph), U(ix + pw)] = plane[U(iy), U(ix)]


@parallel_kernel
def im2col(
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
    """Receptive fields of ``x`` (N, C, H, W) as columns of ``cols`` (C*kh*kw, N*ho*wo).

    ``cols[(c*kh + i)*kw + j, (n*ho + oy)*wo + ox] = x[n, c, oy*sh - ph + i, ox*sw - pw + j]``
    (0 where that index falls in the padding).

    Each plane is first copied into a zero-padded plane just large enough for the
    windows, so every column row is then a plain copy with no padding tests (25% faster
    than testing the valid range of each output row, for the CNN's second convolution).
    """
    n_batch, n_chan = x.shape[0], x.shape[1]
    p = ho * wo
    hp, wp = (ho - 1) * sh + kh, (wo - 1) * sw + kw  # the padded plane the windows cover
    for n in prange(n_batch):
        pad = np.zeros((hp, wp), dtype=x.dtype)
        for c in range(n_chan):
            copy_into_padding(x[n, c], ph, pw, pad)
            for i in range(kh):
                for j in range(kw):
                    dst = cols[U((c * kh + i) * kw + j), U(n * p) : U((n + 1) * p)]
                    for oy in range(ho):
                        src = pad[U(oy * sh + i)]
                        base = oy * wo
                        for ox in range(wo):
                            dst[U(base + ox)] = src[U(ox * sw + j)]


@parallel_kernel
def col2im(
    dcols: np.ndarray,
    kh: int,
    kw: int,
    sh: int,
    sw: int,
    ph: int,
    pw: int,
    ho: int,
    wo: int,
    dx: np.ndarray,
) -> None:
    """Adjoint of :func:`im2col`: add every column of ``dcols`` back onto ``dx`` (N, C, H, W).

    ``dx`` is overwritten. An input pixel inside several receptive fields
    (overlapping windows) receives the sum of their gradients; entries that
    fall in the padding are dropped. Each sample is summed serially in a fixed
    order, so the result is deterministic.
    """
    n_batch, n_chan, h, w = dx.shape
    p = ho * wo
    for n in prange(n_batch):
        dx[n] = 0.0
        for c in range(n_chan):
            for i in range(kh):
                oy0, oy1 = valid_range(ph, i, sh, h, ho)
                for j in range(kw):
                    ox0, ox1 = valid_range(pw, j, sw, w, wo)
                    row = U((c * kh + i) * kw + j)
                    for oy in range(oy0, oy1):
                        iy = U(oy * sh - ph + i)
                        base = n * p + oy * wo
                        for ox in range(ox0, ox1):
                            dx[U(n), U(c), iy, U(ox * sw - pw + j)] += dcols[row, U(base + ox)]


@parallel_kernel
def rows_to_nchw(yt: np.ndarray, b: np.ndarray, y: np.ndarray, relu: bool = False) -> None:
    """``y[n, f, p] = yt[f, n*P + p] + b[f]``: the GEMM result (F, N*P) back to (N, F, P).

    With ``relu``, y = max(0, .) in the same pass (0 * NaN keeps a NaN visible).
    """
    n_batch, n_filt, p = y.shape
    zero = y.dtype.type(0.0)
    for n in prange(n_batch):
        for f in range(n_filt):
            bf = b[f]
            if relu:
                for q in range(p):
                    v = yt[U(f), U(n * p + q)] + bf
                    y[U(n), U(f), U(q)] = v if v > 0 else zero * v
            else:
                for q in range(p):
                    y[U(n), U(f), U(q)] = yt[U(f), U(n * p + q)] + bf


@parallel_kernel
def nchw_to_rows(
    dy: np.ndarray, y: np.ndarray, relu: bool, dyt: np.ndarray, db: np.ndarray
) -> None:
    """``dyt[f, n*P + p] = dy[n, f, p]`` and ``db[f] = sum_{n, p} dy[n, f, p]``.

    With ``relu``, dy is first multiplied by [y > 0] (the fused ReLU's derivative,
    from its output y; 0 * NaN keeps a NaN visible), in the same pass. All (N, F, P).
    The bias gradient is summed in float64 in a fixed order (four running sums
    over p mod 4, added at the end), so it is deterministic.
    """
    n_batch, n_filt, p = dy.shape
    zero = dy.dtype.type(0.0)
    for f in prange(n_filt):
        s0 = s1 = s2 = s3 = 0.0
        for n in range(n_batch):
            base = n * p
            if relu:
                for q in range(p):
                    g = dy[U(n), U(f), U(q)]
                    dyt[U(f), U(base + q)] = g if y[U(n), U(f), U(q)] > 0 else zero * g
                src = dyt[U(f), U(base) : U(base + p)]  # sum what was written
            else:
                src = dy[U(n), U(f)]
            for q in range(0, p - 3, 4):
                v0 = src[U(q)]
                v1 = src[U(q + 1)]
                v2 = src[U(q + 2)]
                v3 = src[U(q + 3)]
                if not relu:
                    dyt[U(f), U(base + q)] = v0
                    dyt[U(f), U(base + q + 1)] = v1
                    dyt[U(f), U(base + q + 2)] = v2
                    dyt[U(f), U(base + q + 3)] = v3
                s0 += v0
                s1 += v1
                s2 += v2
                s3 += v3
            for q in range(p - p % 4, p):
                v = src[U(q)]
                if not relu:
                    dyt[U(f), U(base + q)] = v
                s0 += v
        db[f] = (s0 + s1) + (s2 + s3)


@inline
def add_column_dots(g: np.ndarray, cols: np.ndarray, start: int, acc: np.ndarray) -> None:
    """``acc[k] += sum_q g[q] * cols[k, start + q]`` for every row k of ``cols``: one
    sample's share of dW = dY @ cols.T (each dot in g's dtype; vectorised where the caller
    allows reassociation)."""
    p = g.shape[0]
    for k in range(cols.shape[0]):
        src = cols[U(k), U(start) : U(start + p)]
        s = g.dtype.type(0.0)
        for q in range(p):
            s += g[U(q)] * src[U(q)]
        acc[k] += s


@parallel_reduction
def masked_weight_grad(
    dy: np.ndarray, y: np.ndarray, relu: bool, cols: np.ndarray, dw: np.ndarray, db: np.ndarray
) -> None:
    """``dw[f, k] = sum_{n, p} g[n, f, p] * cols[k, n*P + p]`` and ``db[f] = sum_{n, p} g``.

    ``g = dy``, or with ``relu`` ``dy * [y > 0]`` (0 * NaN keeps a NaN visible). dy and y
    (N, F, P), cols (K, N*P), dw (F, K), db (F,). The same dW as ``nchw_to_rows`` then
    ``dY @ cols.T``, in one pass that never writes dY: for a layer that needs no dC/dx
    and whose K is small. For the Fashion-MNIST CNN's first convolution (K = 9, batch 64)
    it took 0.55-0.75x the time of the two steps, for K = 27 1.3x
    (``python scripts/bench.py cnn --what conv``). Filters go in blocks of 8 per task, so
    a sample's columns are read from cache once per block. Each filter's
    sums are one thread's, per sample in the input dtype and across samples in float64,
    in a fixed order.
    """
    n_batch, n_filt, p = dy.shape
    n_k = cols.shape[0]
    block = 8  # filters per task: a sample's columns are read once per block, from cache
    for first in prange((n_filt + block - 1) // block):
        f0, f1 = first * block, min((first + 1) * block, n_filt)
        g = np.empty(p, dtype=dy.dtype)
        acc = np.zeros((f1 - f0, n_k + 1))  # dW row, then db, per filter
        for n in range(n_batch):
            for f in range(f0, f1):
                s = dy.dtype.type(0.0)
                for q in range(p):
                    v = dy[U(n), U(f), U(q)]
                    if relu and not y[U(n), U(f), U(q)] > 0:
                        v = dy.dtype.type(0.0) * v
                    g[U(q)] = v
                    s += v
                acc[f - f0, n_k] += s
                add_column_dots(g, cols, n * p, acc[f - f0])
        for f in range(f0, f1):
            for k in range(n_k):
                dw[f, k] = acc[f - f0, k]
            db[f] = acc[f - f0, n_k]
