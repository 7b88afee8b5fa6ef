"""Pooling kernels over planes: ``x`` (R, H, W) with R = N*C independent planes.

A window of kh x kw pixels slides with strides (sh, sw) and no padding; the
output has Ho = (H - kh) // sh + 1 rows and Wo = (W - kw) // sw + 1 columns
(pixels past the last full window are not pooled, as in PyTorch and Keras).

Max pooling::

    y[r, oy, ox] = max_{i, j} x[r, oy*sh + i, ox*sw + j]
    dx[r, iy, ix] = sum of dy[r, oy, ox] over the windows whose maximum is (iy, ix)

Ties go to the FIRST maximum in row-major window order (smallest i, then
smallest j): the comparison is a strict ``>``. ``arg`` keeps the winner's flat
index ``iy * W + ix`` in its plane for the backward pass.

Average pooling::

    y[r, oy, ox] = 1/(kh*kw) * sum_{i, j} x[r, oy*sh + i, ox*sw + j]
    dx[r, iy, ix] = 1/(kh*kw) * sum of dy[r, oy, ox] over the windows holding (iy, ix)

Each kernel loops with ``prange`` over planes, which are independent.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from dlrun.kernels._jit import parallel_kernel

# Indices are known to be >= 0: cast to unsigned, Numba skips its wraparound test.
U = np.uintp


@parallel_kernel
def maxpool_forward(
    x: np.ndarray, kh: int, kw: int, sh: int, sw: int, y: np.ndarray, arg: np.ndarray
) -> None:
    """Window maxima of ``x`` (R, H, W) into ``y`` (R, Ho, Wo); their flat indices into ``arg``."""
    n_planes, _, w = x.shape
    _, ho, wo = y.shape
    for r in prange(n_planes):
        for oy in range(ho):
            for ox in range(wo):
                y0 = oy * sh
                x0 = ox * sw
                best = x[U(r), U(y0), U(x0)]
                where = y0 * w + x0
                for i in range(kh):
                    for j in range(kw):
                        v = x[U(r), U(y0 + i), U(x0 + j)]
                        if v > best:  # strict: a tie keeps the first maximum
                            best = v
                            where = (y0 + i) * w + x0 + j
                y[U(r), U(oy), U(ox)] = best
                arg[U(r), U(oy), U(ox)] = where


@parallel_kernel
def maxpool_forward_2x2(x: np.ndarray, y: np.ndarray, code: np.ndarray) -> None:
    """:func:`maxpool_forward` for non-overlapping 2 x 2 windows: ``code`` (R, Ho, Wo)
    uint8 holds the winner's place in its window, 0 1 / 2 3 (a quarter of the memory of
    a flat index), with the same ties (the first maximum) and the same NaN behaviour."""
    n_planes = x.shape[0]
    _, ho, wo = y.shape
    for r in prange(n_planes):
        for oy in range(ho):
            for ox in range(wo):
                best = x[U(r), U(2 * oy), U(2 * ox)]
                k = 0
                v = x[U(r), U(2 * oy), U(2 * ox + 1)]
                if v > best:
                    best, k = v, 1
                v = x[U(r), U(2 * oy + 1), U(2 * ox)]
                if v > best:
                    best, k = v, 2
                v = x[U(r), U(2 * oy + 1), U(2 * ox + 1)]
                if v > best:
                    best, k = v, 3
                y[U(r), U(oy), U(ox)] = best
                code[U(r), U(oy), U(ox)] = k


@parallel_kernel
def maxpool_backward_2x2(dy: np.ndarray, code: np.ndarray, dx: np.ndarray) -> None:
    """Backward of :func:`maxpool_forward_2x2`: zero ``dx``, then put each dy on its
    window's winner (windows do not overlap: a store, not a sum). Measured 1.5x faster
    than :func:`maxpool_backward`, and 3-4x faster than writing all four pixels."""
    n_planes = dx.shape[0]
    _, ho, wo = dy.shape
    for r in prange(n_planes):
        dx[r] = 0.0
        for oy in range(ho):
            for ox in range(wo):
                k = code[U(r), U(oy), U(ox)]
                dx[U(r), U(2 * oy + (k >> 1)), U(2 * ox + (k & 1))] = dy[U(r), U(oy), U(ox)]


@parallel_kernel
def maxpool_backward(dy: np.ndarray, arg: np.ndarray, dx: np.ndarray) -> None:
    """Route each ``dy[r, oy, ox]`` to the pixel that won its window; ``dx`` is overwritten."""
    n_planes, _, w = dx.shape
    _, ho, wo = dy.shape
    for r in prange(n_planes):
        dx[r] = 0.0
        for oy in range(ho):
            for ox in range(wo):
                k = arg[U(r), U(oy), U(ox)]
                dx[U(r), U(k // w), U(k % w)] += dy[U(r), U(oy), U(ox)]


@parallel_kernel
def avgpool_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, y: np.ndarray) -> None:
    """Window means of ``x`` (R, H, W) into ``y`` (R, Ho, Wo)."""
    n_planes = x.shape[0]
    _, ho, wo = y.shape
    scale = 1.0 / (kh * kw)
    for r in prange(n_planes):
        for oy in range(ho):
            for ox in range(wo):
                s = 0.0
                for i in range(kh):
                    for j in range(kw):
                        s += x[U(r), U(oy * sh + i), U(ox * sw + j)]
                y[U(r), U(oy), U(ox)] = s * scale


@parallel_kernel
def avgpool_backward(dy: np.ndarray, kh: int, kw: int, sh: int, sw: int, dx: np.ndarray) -> None:
    """Spread each ``dy[r, oy, ox] / (kh*kw)`` over its window; ``dx`` is overwritten."""
    n_planes = dx.shape[0]
    _, ho, wo = dy.shape
    scale = 1.0 / (kh * kw)
    for r in prange(n_planes):
        dx[r] = 0.0
        for oy in range(ho):
            for ox in range(wo):
                g = dy[U(r), U(oy), U(ox)] * scale
                for i in range(kh):
                    for j in range(kw):
                        dx[U(r), U(oy * sh + i), U(ox * sw + j)] += g
