"""Norm kernels: sums of |w| and w^2, their gradients, small-weight counts.

Used by the L1/L2 penalties (:mod:`dlrun.regularizers`) and by gradient
clipping (:mod:`dlrun.clipping`). Arrays are 1-D (callers pass flat views).

Sums are accumulated in float64 over eight fixed partial sums that are
combined in a fixed order: the result does not depend on threads or timing,
and the independent accumulators let the loop run several lanes at once
without ``fastmath`` (a single running sum would be strictly sequential).
"""

from __future__ import annotations

import numpy as np

from dlrun.kernels._jit import kernel


@kernel
def sum_squares(x):
    """sum_i x_i^2, in float64."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    n = x.shape[0]
    m = n - n % 8
    for i in range(0, m, 8):
        v0, v1 = np.float64(x[i]), np.float64(x[i + 1])
        v2, v3 = np.float64(x[i + 2]), np.float64(x[i + 3])
        v4, v5 = np.float64(x[i + 4]), np.float64(x[i + 5])
        v6, v7 = np.float64(x[i + 6]), np.float64(x[i + 7])
        a0 += v0 * v0
        a1 += v1 * v1
        a2 += v2 * v2
        a3 += v3 * v3
        a4 += v4 * v4
        a5 += v5 * v5
        a6 += v6 * v6
        a7 += v7 * v7
    total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    for i in range(m, n):
        v = np.float64(x[i])
        total += v * v
    return total


@kernel
def sum_abs(x):
    """sum_i |x_i|, in float64."""
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0.0
    n = x.shape[0]
    m = n - n % 8
    for i in range(0, m, 8):
        a0 += abs(np.float64(x[i]))
        a1 += abs(np.float64(x[i + 1]))
        a2 += abs(np.float64(x[i + 2]))
        a3 += abs(np.float64(x[i + 3]))
        a4 += abs(np.float64(x[i + 4]))
        a5 += abs(np.float64(x[i + 5]))
        a6 += abs(np.float64(x[i + 6]))
        a7 += abs(np.float64(x[i + 7]))
    total = ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7))
    for i in range(m, n):
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
