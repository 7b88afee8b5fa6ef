"""Image augmentation kernel: one affine transform per image, bilinear sampling.

For every output pixel (row i, column j) of image n, the *inverse* transform
gives the point of the input it comes from::

    col = a[n] * j + b[n] * i + tx[n]
    row = c[n] * j + d[n] * i + ty[n]          inv[n] = (a, b, tx, c, d, ty)

and the output is the bilinear blend of the four input pixels around it,
pixels outside the image reading ``fill``::

    x0 = floor(col), y0 = floor(row), u = col - x0, v = row - y0
    out = (1-v) * ((1-u) * x[y0, x0]   + u * x[y0, x0+1])
        +    v  * ((1-u) * x[y0+1, x0] + u * x[y0+1, x0+1])

Sampling the inverse (rather than pushing input pixels forward) leaves no
holes. An identity transform returns the input exactly (u = v = 0). The same
transform is applied to every channel of an image. Shapes: x, out (N, C, H, W);
inv (N, 6) float64.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from dlrun.kernels._jit import inline, parallel_kernel


@inline
def _pixel(img, row, col, height, width, fill):
    """img[row, col], or ``fill`` outside the image."""
    if row < 0 or row >= height or col < 0 or col >= width:
        return fill
    return img[row, col]


@parallel_kernel
def affine_bilinear(x, inv, fill, out):
    """out[n, :] = x[n, :] resampled through the inverse affine map inv[n] (see module doc)."""
    n_images, channels, height, width = x.shape
    for n in prange(n_images):
        a, b, tx, c, d, ty = inv[n, 0], inv[n, 1], inv[n, 2], inv[n, 3], inv[n, 4], inv[n, 5]
        for i in range(height):
            for j in range(width):
                col = a * j + b * i + tx
                row = c * j + d * i + ty
                x0 = np.floor(col)
                y0 = np.floor(row)
                u = col - x0
                v = row - y0
                c0 = int(x0)
                r0 = int(y0)
                for ch in range(channels):
                    img = x[n, ch]
                    top = (1.0 - u) * _pixel(img, r0, c0, height, width, fill)
                    if u != 0.0:
                        top += u * _pixel(img, r0, c0 + 1, height, width, fill)
                    value = (1.0 - v) * top
                    if v != 0.0:
                        bottom = (1.0 - u) * _pixel(img, r0 + 1, c0, height, width, fill)
                        if u != 0.0:
                            bottom += u * _pixel(img, r0 + 1, c0 + 1, height, width, fill)
                        value += v * bottom
                    out[n, ch, i, j] = value
