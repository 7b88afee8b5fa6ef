"""Optimizer update kernels: one fused, in-place pass over flat arrays.

Every kernel takes the flat parameter buffer ``p`` and gradient buffer ``g``
(1-D, same length and dtype), the optimizer's state arrays (same shape), and
scalars already cast to the arrays' dtype by the caller, so that float32
arithmetic stays float32 and the loop vectorises (``one_minus_rho``, ``c1 = 1 - beta1``,
``c2 = 1 - beta2`` are passed in for the same reason: ``1 - x`` in the kernel would
mix an integer with a float32 and promote the loop to float64). Anything that depends only
on the step count (bias corrections, Nadam's momentum schedule) is computed
once per step in Python and passed in as a scalar.

``eps_in`` / ``eps_out`` place epsilon inside or outside the square root:
``denom = sqrt(r + eps_in) + eps_out``; the caller sets one of them to zero.
"""

from __future__ import annotations

import numpy as np

from dlrun.kernels._jit import kernel


@kernel
def gd_step(p, g, lr):
    """w <- w - lr g."""
    for i in range(p.shape[0]):
        p[i] -= lr * g[i]


@kernel
def momentum_step(p, g, v, lr, alpha):
    """v <- alpha v - lr g ;  w <- w + v."""
    for i in range(p.shape[0]):
        vi = alpha * v[i] - lr * g[i]
        v[i] = vi
        p[i] += vi


@kernel
def nesterov_step(p, g, v, lr, alpha):
    """v <- alpha v - lr g ;  w <- w + alpha v - lr g  (look-ahead form)."""
    for i in range(p.shape[0]):
        step = lr * g[i]
        vi = alpha * v[i] - step
        v[i] = vi
        p[i] += alpha * vi - step


@kernel
def adagrad_step(p, g, r, lr, eps_in, eps_out):
    """r <- r + g^2 ;  w <- w - lr g / (sqrt(r + eps_in) + eps_out)."""
    for i in range(p.shape[0]):
        gi = g[i]
        ri = r[i] + gi * gi
        r[i] = ri
        p[i] -= lr * gi / (np.sqrt(ri + eps_in) + eps_out)


@kernel
def adadelta_step(p, g, r, s, lr, rho, one_minus_rho, eps):
    """r <- rho r + (1-rho) g^2 ;  d = sqrt(s + eps) / sqrt(r + eps) g ;
    s <- rho s + (1-rho) d^2 ;  w <- w - lr d."""
    for i in range(p.shape[0]):
        gi = g[i]
        ri = rho * r[i] + one_minus_rho * gi * gi
        r[i] = ri
        d = np.sqrt(s[i] + eps) / np.sqrt(ri + eps) * gi
        s[i] = rho * s[i] + one_minus_rho * d * d
        p[i] -= lr * d


@kernel
def rmsprop_step(p, g, r, lr, beta, one_minus_beta, eps_in, eps_out):
    """r <- beta r + (1-beta) g^2 ;  w <- w - lr g / (sqrt(r + eps_in) + eps_out)."""
    for i in range(p.shape[0]):
        gi = g[i]
        ri = beta * r[i] + one_minus_beta * gi * gi
        r[i] = ri
        p[i] -= lr * gi / (np.sqrt(ri + eps_in) + eps_out)


@kernel
def adam_step(p, g, m, v, step_size, beta1, c1, beta2, c2, inv_bc2, eps_in, eps_out):
    """m <- b1 m + (1-b1) g ;  v <- b2 v + (1-b2) g^2 ;
    w <- w - step_size m / (sqrt(v inv_bc2 + eps_in) + eps_out),

    with step_size = lr / (1 - b1^t) and inv_bc2 = 1 / (1 - b2^t)."""
    for i in range(p.shape[0]):
        gi = g[i]
        mi = beta1 * m[i] + c1 * gi
        vi = beta2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= step_size * mi / (np.sqrt(vi * inv_bc2 + eps_in) + eps_out)


@kernel
def adamax_step(p, g, m, u, step_size, beta1, c1, beta2, eps):
    """m <- b1 m + (1-b1) g ;  u <- max(b2 u, |g|) ;  w <- w - step_size m / (u + eps),

    with step_size = lr / (1 - b1^t)."""
    for i in range(p.shape[0]):
        gi = g[i]
        mi = beta1 * m[i] + c1 * gi
        ui = max(beta2 * u[i], abs(gi))
        m[i] = mi
        u[i] = ui
        p[i] -= step_size * mi / (ui + eps)


@kernel
def nadam_step(p, g, m, v, coef_g, coef_m, beta1, c1, beta2, c2, inv_bc2, eps_in, eps_out):
    """m <- b1 m + (1-b1) g ;  v <- b2 v + (1-b2) g^2 ;
    w <- w - (coef_g g + coef_m m) / (sqrt(v inv_bc2 + eps_in) + eps_out),

    with coef_g = lr (1 - mu_t) / (1 - prod_{i<=t} mu_i) and
    coef_m = lr mu_{t+1} / (1 - prod_{i<=t+1} mu_i)."""
    for i in range(p.shape[0]):
        gi = g[i]
        mi = beta1 * m[i] + c1 * gi
        vi = beta2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        p[i] -= (coef_g * gi + coef_m * mi) / (np.sqrt(vi * inv_bc2 + eps_in) + eps_out)
