"""Norm kernels: sums of |w| and w^2, their gradients, small-weight counts.

Used by the L1/L2 penalties (:mod:`dlrun.optim.regularizers`) and by gradient
clipping (:mod:`dlrun.optim.clipping`). Arrays are 1-D (callers pass flat views).

Sums are accumulated in float64, in SIMD lanes (see
:data:`dlrun.kernels._jit.reduction`): the result does not depend on threads or
timing.
"""

from __future__ import annotations

import numpy as np

from dlrun.kernels._jit import kernel, reduction


@reduction
def sum_squares(x):
    """sum_i x_i^2, in float64."""
    total = 0.0
    for i in range(x.shape[0]):
        v = np.float64(x[i])
        total += v * v
    return total


@reduction
def sum_abs(x):
    """sum_i |x_i|, in float64."""
    total = 0.0
    for i in range(x.shape[0]):
        total += abs(np.float64(x[i]))
    return total


@kernel
def add_l1_grad(w, g, alpha):
    """g <- g + alpha sign(w)   (sign(0) = 0: the subgradient at the kink)."""
    for i in range(w.shape[0]):
        wi = w[i]
        if wi > 0:
            g[i] += alpha
        elif wi < 0:
            g[i] -= alpha


@kernel
def add_l2_grad(w, g, alpha):
    """g <- g + alpha w."""
    for i in range(w.shape[0]):
        g[i] += alpha * w[i]


@kernel
def count_small(x, tol):
    """Number of entries with |x_i| < tol."""
    count = 0
    for i in range(x.shape[0]):
        if abs(x[i]) < tol:
            count += 1
    return count


@kernel
def segment_sum_squares(x, bounds, out):
    """out[s] = sum of x[i]^2 over bounds[s] <= i < bounds[s + 1] (float64), one pass."""
    for s in range(out.shape[0]):
        out[s] = sum_squares(x[bounds[s] : bounds[s + 1]])
