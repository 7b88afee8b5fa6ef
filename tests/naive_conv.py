"""Plain NumPy references for convolution and pooling: slow, obviously correct loops.

Layout NCHW. ``pad`` is (top, bottom, left, right) zero padding. Everything is
computed in float64 from the definitions, never from the kernels under test.
"""

from __future__ import annotations

import numpy as np


def padded(x: np.ndarray, pad: tuple[int, int, int, int]) -> np.ndarray:
    top, bottom, left, right = pad
    return np.pad(x.astype(np.float64), ((0, 0), (0, 0), (top, bottom), (left, right)))


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    b: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> np.ndarray:
    """y[n, f, oy, ox] = b[f] + sum_{c,i,j} w[f, c, i, j] * xpad[n, c, oy*sh + i, ox*sw + j]."""
    xp = padded(x, pad)
    n_batch, n_chan, h, wd = xp.shape
    n_filt, _, kh, kw = w.shape
    sh, sw = stride
    ho, wo = (h - kh) // sh + 1, (wd - kw) // sw + 1
    y = np.zeros((n_batch, n_filt, ho, wo))
    for n in range(n_batch):
        for f in range(n_filt):
            for oy in range(ho):
                for ox in range(wo):
                    window = xp[n, :, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw]
                    y[n, f, oy, ox] = np.sum(window * w[f]) + b[f]
    return y


def conv2d_backward(
    x: np.ndarray,
    w: np.ndarray,
    dy: np.ndarray,
    stride: tuple[int, int] = (1, 1),
    pad: tuple[int, int, int, int] = (0, 0, 0, 0),
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dw, db) of L = sum(y * dy): each output scatters dy into its window."""
    xp = padded(x, pad)
    n_batch, _, h, wd = xp.shape
    n_filt, _, kh, kw = w.shape
    sh, sw = stride
    _, _, ho, wo = dy.shape
    dxp = np.zeros_like(xp)
    dw = np.zeros(w.shape)
    for n in range(n_batch):
        for f in range(n_filt):
            for oy in range(ho):
                for ox in range(wo):
                    g = dy[n, f, oy, ox]
                    ys, xs = slice(oy * sh, oy * sh + kh), slice(ox * sw, ox * sw + kw)
                    dw[f] += g * xp[n, :, ys, xs]
                    dxp[n, :, ys, xs] += g * w[f]
    top, _, left, _ = pad
    dx = dxp[:, :, top : top + x.shape[2], left : left + x.shape[3]]
    db = dy.sum(axis=(0, 2, 3))
    return dx, dw, db


def maxpool2d(
    x: np.ndarray, size: tuple[int, int], stride: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """(y, where): window maxima and, per output, the (iy, ix) of its first maximum."""
    n_batch, n_chan, h, w = x.shape
    kh, kw = size
    sh, sw = stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n_batch, n_chan, ho, wo))
    where = np.zeros((n_batch, n_chan, ho, wo, 2), dtype=int)
    for n in range(n_batch):
        for c in range(n_chan):
            for oy in range(ho):
                for ox in range(wo):
                    window = x[n, c, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw]
                    i, j = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                    y[n, c, oy, ox] = window[i, j]
                    where[n, c, oy, ox] = (oy * sh + i, ox * sw + j)
    return y, where


def maxpool2d_backward(dy: np.ndarray, where: np.ndarray, input_shape: tuple) -> np.ndarray:
    dx = np.zeros(input_shape)
    n_batch, n_chan, ho, wo = dy.shape
    for n in range(n_batch):
        for c in range(n_chan):
            for oy in range(ho):
                for ox in range(wo):
                    iy, ix = where[n, c, oy, ox]
                    dx[n, c, iy, ix] += dy[n, c, oy, ox]
    return dx


def avgpool2d(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    n_batch, n_chan, h, w = x.shape
    kh, kw = size
    sh, sw = stride
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    y = np.zeros((n_batch, n_chan, ho, wo))
    for oy in range(ho):
        for ox in range(wo):
            y[:, :, oy, ox] = x[:, :, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw].mean(
                axis=(2, 3)
            )
    return y


def avgpool2d_backward(
    dy: np.ndarray, size: tuple[int, int], stride: tuple[int, int], input_shape: tuple
) -> np.ndarray:
    kh, kw = size
    sh, sw = stride
    dx = np.zeros(input_shape)
    _, _, ho, wo = dy.shape
    for oy in range(ho):
        for ox in range(wo):
            dx[:, :, oy * sh : oy * sh + kh, ox * sw : ox * sw + kw] += dy[
                :, :, oy, ox, None, None
            ] / (kh * kw)
    return dx


def central_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """d f(x) / dx for a scalar function f of a float64 array, by central differences."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for k in range(flat.size):
        old = flat[k]
        flat[k] = old + eps
        up = f()
        flat[k] = old - eps
        down = f()
        flat[k] = old
        gflat[k] = (up - down) / (2 * eps)
    return g
