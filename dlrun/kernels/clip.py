"""Gradient clipping kernels (in place, 1-D arrays).

The norms come from :func:`dlrun.kernels.penalties.sum_squares`.
"""

from __future__ import annotations

from dlrun.kernels._jit import kernel


@kernel
def clip_values(x, limit):
    """x_i <- min(max(x_i, -limit), limit); NaN stays NaN."""
    for i in range(x.shape[0]):
        v = x[i]
        if v > limit:
            x[i] = limit
        elif v < -limit:
            x[i] = -limit


@kernel
def scale(x, factor):
    """x <- factor x."""
    for i in range(x.shape[0]):
        x[i] *= factor
