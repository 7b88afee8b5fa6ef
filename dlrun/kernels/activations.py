"""Elementwise activations and their derivatives, fused with the bias add.

Each activation has an integer code. Its derivative is written as a function
of the OUTPUT y = f(z), so the backward pass needs only y:

    sigmoid   y = 1 / (1 + e^-z)          f' = y (1 - y)
    tanh      y = tanh z                  f' = 1 - y^2
    softsign  y = z / (1 + |z|)           f' = 1 / (1 + |z|)^2 = (1 - |y|)^2
    relu      y = max(0, z)               f' = 1 if y > 0 else 0
    leaky     y = z if z > 0 else s z     f' = 1 if y > 0 else s      (slope s > 0)
    softplus  y = ln(1 + e^z)             f' = sigmoid(z) = 1 - e^-y
    sign      y = +1 if z >= 0 else -1    f' = 0 (everywhere but 0)
    identity  y = z                       f' = 1
"""

from __future__ import annotations

import math

import numpy as np

from dlrun.kernels._jit import inline, kernel

IDENTITY, SIGMOID, TANH, SOFTSIGN, RELU, LEAKY_RELU, SOFTPLUS, SIGN = range(8)


@inline
def act(code, z, slope):
    """y = f(z) for the activation ``code`` (``slope`` is used by leaky ReLU)."""
    if code == SIGMOID:
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        e = math.exp(z)
        return e / (1.0 + e)
    if code == TANH:
        return math.tanh(z)
    if code == SOFTSIGN:
        return z / (1.0 + abs(z))
    if code == RELU:
        return z if z > 0 else 0.0 * z
    if code == LEAKY_RELU:
        return z if z > 0 else slope * z
    if code == SOFTPLUS:
        # ln(1 + e^z) = max(z, 0) + ln(1 + e^-|z|): no overflow for large z
        return max(z, 0.0) + math.log1p(math.exp(-abs(z)))
    if code == SIGN:
        return 1.0 if z >= 0 else -1.0
    return z


@inline
def act_grad(code, y, slope):
    """f'(z) written with the output y = f(z)."""
    if code == SIGMOID:
        return y * (1.0 - y)
    if code == TANH:
        return 1.0 - y * y
    if code == SOFTSIGN:
        s = 1.0 - abs(y)
        return s * s
    if code == RELU:
        return 1.0 if y > 0 else 0.0
    if code == LEAKY_RELU:
        return 1.0 if y > 0 else slope
    if code == SOFTPLUS:
        return -math.expm1(-y)
    if code == SIGN:
        return 0.0
    return 1.0


@kernel
def bias_act_forward(z, b, code, slope, out):
    """out[i, j] = f(z[i, j] + b[j]).  z, out: (M, N); b: (N,). ``out`` may be ``z``.

    ReLU and identity get loops of their own: with no branch on ``code`` inside,
    LLVM turns them into SIMD code (measured 3-5x faster than the generic loop).
    """
    m, n = z.shape
    zero = z.dtype.type(0.0)  # a float literal would turn float32 arithmetic into float64
    if code == RELU:
        for i in range(m):
            for j in range(n):
                v = z[i, j] + b[j]
                out[i, j] = v if v > 0 else zero * v  # 0 * NaN keeps a NaN visible
    elif code == IDENTITY:
        for i in range(m):
            for j in range(n):
                out[i, j] = z[i, j] + b[j]
    else:
        for i in range(m):
            for j in range(n):
                out[i, j] = act(code, z[i, j] + b[j], slope)


@kernel
def act_forward(z, code, slope, out):
    """out = f(z) elementwise over 1-D views (M,)."""
    zero = z.dtype.type(0.0)
    if code == RELU:
        for i in range(z.shape[0]):
            out[i] = z[i] if z[i] > 0 else zero * z[i]
    else:
        for i in range(z.shape[0]):
            out[i] = act(code, z[i], slope)


@kernel
def act_backward(dy, y, code, slope, out):
    """out = dy * f'(z), from the output y.  All 1-D views (M,)."""
    zero = dy.dtype.type(0.0)
    if code == RELU:
        for i in range(dy.shape[0]):
            out[i] = dy[i] if y[i] > 0 else zero * dy[i]
    else:
        for i in range(dy.shape[0]):
            out[i] = dy[i] * act_grad(code, y[i], slope)


@kernel
def act_backward_bias(dy, y, code, slope, dz, db):
    """dz = dy * f'(z) and db[j] = sum_i dz[i, j] in one pass.  (M, N) and (N,)."""
    m, n = dy.shape
    db[:] = 0.0
    zero = dy.dtype.type(0.0)  # in dy's dtype: float32 lanes (2x faster than float64's)
    if code == RELU:  # branch-free loops vectorise (see bias_act_forward)
        for i in range(m):
            for j in range(n):
                g = dy[i, j] if y[i, j] > 0 else zero * dy[i, j]
                dz[i, j] = g
                db[j] += g
    elif code == IDENTITY:
        for i in range(m):
            for j in range(n):
                dz[i, j] = dy[i, j]
                db[j] += dy[i, j]
    else:
        for i in range(m):
            for j in range(n):
                g = dy[i, j] * act_grad(code, y[i, j], slope)
                dz[i, j] = g
                db[j] += g


@inline
def exp_shifted_row(z, i, out):
    """out[i, j] = exp(z[i, j] - max_j z[i, j]); returns (max_j z[i, j], sum_j out[i, j]).

    The unnormalised softmax of row i: subtracting the maximum keeps exp from
    overflowing. Shared by :func:`softmax_rows` and the fused softmax cross-entropy.
    """
    k = z.shape[1]
    top = z[i, 0]
    for j in range(1, k):
        top = max(top, z[i, j])
    total = 0.0
    for j in range(k):
        e = math.exp(z[i, j] - top)
        out[i, j] = e
        total += e
    return top, total


@kernel
def softmax_rows(z, out):
    """out[i] = exp(z[i] - max z[i]) / sum exp(z[i] - max z[i]).  (M, K)."""
    m, k = z.shape
    for i in range(m):
        _, total = exp_shifted_row(z, i, out)
        inv = 1.0 / total
        for j in range(k):
            out[i, j] *= inv


@kernel
def softmax_backward(dy, y, out):
    """dz_j = y_j (dy_j - sum_k dy_k y_k), the softmax Jacobian applied row-wise.  (M, K)."""
    m, k = dy.shape
    for i in range(m):
        s = 0.0
        for j in range(k):
            s += dy[i, j] * y[i, j]
        for j in range(k):
            out[i, j] = y[i, j] * (dy[i, j] - s)


def as_rows(a: np.ndarray) -> np.ndarray:
    """View of ``a`` as (rows, last axis) without copying."""
    return a.reshape(-1, a.shape[-1])
