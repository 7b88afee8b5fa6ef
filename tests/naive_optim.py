"""Plain NumPy reference optimizers, written from the papers' formulas.

Slow and obviously correct: whole-array float64 arithmetic, one line per
formula, the bias corrections written out. Each function runs the update for
a sequence of gradients ``grads`` and learning rates ``lrs`` (one per step)
from parameters ``w0`` and returns the final parameters.
"""

from __future__ import annotations

import numpy as np


def gd(w0, grads, lrs):
    w = w0.astype(np.float64)
    for g, lr in zip(grads, lrs, strict=True):
        w = w - lr * g
    return w


def momentum(w0, grads, lrs, alpha=0.9):
    w = w0.astype(np.float64)
    delta = np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        delta = -lr * g + alpha * delta
        w = w + delta
    return w


def nesterov(w0, grads, lrs, alpha=0.9):
    """Look-ahead form: v = alpha v - lr g; w = w + alpha v - lr g."""
    w = w0.astype(np.float64)
    v = np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        v = alpha * v - lr * g
        w = w + alpha * v - lr * g
    return w


def adagrad(w0, grads, lrs, eps=1e-7, eps_inside_sqrt=False, initial_accumulator=0.0):
    w = w0.astype(np.float64)
    r = np.full_like(w, initial_accumulator)
    for g, lr in zip(grads, lrs, strict=True):
        r = r + g**2
        denom = np.sqrt(r + eps) if eps_inside_sqrt else eps + np.sqrt(r)
        w = w - lr / denom * g
    return w


def adadelta(w0, grads, lrs, rho=0.95, eps=1e-6):
    w = w0.astype(np.float64)
    eg2 = np.zeros_like(w)
    edx2 = np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        eg2 = rho * eg2 + (1 - rho) * g**2
        dx = -np.sqrt(edx2 + eps) / np.sqrt(eg2 + eps) * g
        edx2 = rho * edx2 + (1 - rho) * dx**2
        w = w + lr * dx
    return w


def rmsprop(w0, grads, lrs, beta=0.9, eps=1e-8, eps_inside_sqrt=False):
    w = w0.astype(np.float64)
    r = np.zeros_like(w)
    for g, lr in zip(grads, lrs, strict=True):
        r = beta * r + (1 - beta) * g**2
        denom = np.sqrt(r + eps) if eps_inside_sqrt else np.sqrt(r) + eps
        w = w - lr * g / denom
    return w


def adam(w0, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-8, eps_inside_sqrt=False):
    w = w0.astype(np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)
        v_hat = v / (1 - beta2**t)
        denom = np.sqrt(v_hat + eps) if eps_inside_sqrt else np.sqrt(v_hat) + eps
        w = w - lr * m_hat / denom
    return w


def adamax(w0, grads, lrs, beta1=0.9, beta2=0.999, eps=1e-8):
    w = w0.astype(np.float64)
    m = np.zeros_like(w)
    u = np.zeros_like(w)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        m = beta1 * m + (1 - beta1) * g
        u = np.maximum(beta2 * u, np.abs(g))
        w = w - (lr / (1 - beta1**t)) * m / (u + eps)
    return w


def nadam(
    w0,
    grads,
    lrs,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    eps_inside_sqrt=False,
    momentum_schedule=True,
    momentum_decay=0.004,
):
    def mu(t):
        if not momentum_schedule:
            return beta1
        return beta1 * (1 - 0.5 * 0.96 ** (t * momentum_decay))

    w = w0.astype(np.float64)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, (g, lr) in enumerate(zip(grads, lrs, strict=True), start=1):
        prod_t = np.prod([mu(i) for i in range(1, t + 1)])
        prod_next = prod_t * mu(t + 1)
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_bar = (1 - mu(t)) * g / (1 - prod_t) + mu(t + 1) * m / (1 - prod_next)
        v_hat = v / (1 - beta2**t)
        denom = np.sqrt(v_hat + eps) if eps_inside_sqrt else np.sqrt(v_hat) + eps
        w = w - lr * m_bar / denom
    return w


REFERENCES = {
    "gd": gd,
    "momentum": momentum,
    "nesterov": nesterov,
    "adagrad": adagrad,
    "adadelta": adadelta,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamax": adamax,
    "nadam": nadam,
}
