"""Plain NumPy reference implementations: slow, obvious, used only by the tests."""

from __future__ import annotations

import numpy as np


def activation(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    if name == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "softsign":
        return z / (1 + np.abs(z))
    if name == "relu":
        return np.maximum(z, 0)
    if name == "leaky_relu":
        return np.where(z > 0, z, slope * z)
    if name == "softplus":
        return np.log1p(np.exp(z))
    if name == "sign":
        return np.where(z >= 0, 1.0, -1.0).astype(z.dtype)
    if name == "identity":
        return z
    raise KeyError(name)


def activation_grad(name: str, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
    """f'(z) written with the input z (the kernels use the output)."""
    if name == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "softsign":
        return 1 / (1 + np.abs(z)) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name == "leaky_relu":
        return np.where(z > 0, 1.0, slope).astype(z.dtype)
    if name == "softplus":
        return 1 / (1 + np.exp(-z))
    if name == "sign":
        return np.zeros_like(z)
    if name == "identity":
        return np.ones_like(z)
    raise KeyError(name)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def dense_forward(x, W, b, act="identity", slope=0.01):
    z = x @ W + b
    return z, activation(act, z, slope)


def dense_backward(x, W, z, dy, act="identity", slope=0.01):
    dz = dy * activation_grad(act, z, slope)
    return dz @ W.T, x.T @ dz, dz.sum(axis=0)


def quadratic(o, t):
    m = o.shape[0]
    return 0.5 * np.sum((t - o) ** 2) / m, (o - t) / m


def cross_entropy_from_logits(z, labels):
    """-1/M sum ln softmax(z)[label], computed the textbook way (in float64)."""
    m = z.shape[0]
    p = softmax(z.astype(np.float64))
    onehot = np.eye(z.shape[1])[labels]
    return -np.sum(onehot * np.log(p)) / m, (p - onehot) / m


def binary_cross_entropy_from_logits(z, t):
    m = z.shape[0]
    o = 1 / (1 + np.exp(-z.astype(np.float64)))
    return -np.sum(t * np.log(o) + (1 - t) * np.log(1 - o)) / m, (o - t) / m
