"""Losses fused with their gradients; sums are accumulated in float64.

All take 2-D arrays (M rows, K outputs), write dC/d(input) into ``grad`` and
return the loss averaged over the M rows.
"""

from __future__ import annotations

import math

from dlrun.kernels._jit import kernel
from dlrun.kernels.activations import exp_shifted_row


@kernel
def quadratic(o, t, grad):
    """C = 1/M sum_i 1/2 sum_k (t_ik - o_ik)^2;  dC/do = (o - t) / M."""
    m, k = o.shape
    total = 0.0
    inv = 1.0 / m
    for i in range(m):
        for j in range(k):
            d = o[i, j] - t[i, j]
            total += 0.5 * d * d
            grad[i, j] = d * inv
    return total * inv


@kernel
def softmax_cross_entropy(z, labels, grad):
    """Softmax + cross-entropy on logits z with integer labels.

    o = softmax(z), C = -1/M sum_i ln o_i,label_i = 1/M sum_i (logsumexp(z_i) - z_i,label_i),
    dC/dz = (o - onehot(label)) / M.  Subtracting max z_i keeps exp from overflowing.
    """
    m, k = z.shape
    total = 0.0
    inv = 1.0 / m
    for i in range(m):
        top, s = exp_shifted_row(z, i, grad)
        lab = labels[i]
        total += math.log(s) + top - z[i, lab]
        scale = inv / s
        for j in range(k):
            grad[i, j] *= scale
        grad[i, lab] -= inv
    return total * inv


@kernel
def sigmoid_binary_cross_entropy(z, t, grad):
    """Sigmoid + binary cross-entropy on logits z, targets t in [0, 1].

    o = sigmoid(z), C = -1/M sum (t ln o + (1 - t) ln(1 - o))
      = 1/M sum (max(z, 0) - t z + ln(1 + e^-|z|)),   dC/dz = (o - t) / M.
    """
    m, k = z.shape
    total = 0.0
    inv = 1.0 / m
    for i in range(m):
        for j in range(k):
            x = z[i, j]
            total += max(x, 0.0) - t[i, j] * x + math.log1p(math.exp(-abs(x)))
            if x >= 0:
                o = 1.0 / (1.0 + math.exp(-x))
            else:
                e = math.exp(x)
                o = e / (1.0 + e)
            grad[i, j] = (o - t[i, j]) * inv
    return total * inv
