"""Plain NumPy reference implementations of the recurrent layers (slow, obviously correct).

Sequences are (N, T, F); weights in the layers' row-vector layout. Backward
runs one separate chain per output time step (the course's double loop), so
truncation to k steps is literal: the chain of output t visits S_t .. S_{t-k}.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def act(name: str, z: np.ndarray) -> np.ndarray:
    return np.tanh(z) if name == "tanh" else sigmoid(z)


def act_grad_from_output(name: str, s: np.ndarray) -> np.ndarray:
    return 1.0 - s**2 if name == "tanh" else s * (1.0 - s)


def _reaches(t: int, s: int, k: int | None) -> bool:
    """Does the chain of output t reach state s (s = -1: the initial state)?"""
    return k is None or t - s <= k


# ---------------------------------------------------------------------------- rnn


def rnn_forward(x, U, W, b, h0, activation="tanh"):
    """All states S: (N, T, H); S_t = f(X_t U + S_{t-1} W + b), S_{-1} = h0 (H,)."""
    n, steps, _ = x.shape
    s_prev = np.broadcast_to(h0, (n, len(b))).astype(x.dtype)
    out = []
    for t in range(steps):
        s_prev = act(activation, x[:, t] @ U + s_prev @ W + b)
        out.append(s_prev)
    return np.stack(out, axis=1)


def rnn_backward(x, U, W, b, h0, dS, activation="tanh", k=None):
    """Gradients for dC/dS_t = dS[:, t] (N, T, H): dx, dU, dW, db, dh0, norms (T,)."""
    n, steps, _ = x.shape
    S = rnn_forward(x, U, W, b, h0, activation)
    S_prev = np.concatenate([np.broadcast_to(h0, (n, 1, len(b))), S[:, :-1]], axis=1)
    dx, dU, dW = np.zeros_like(x), np.zeros_like(U), np.zeros_like(W)
    db, dh0 = np.zeros_like(b), np.zeros(len(b), dtype=x.dtype)
    state_grad = np.zeros_like(S)
    for t in range(steps):  # one chain per output
        delta = dS[:, t].copy()
        for s in range(t, -1, -1):
            if not _reaches(t, s, k):
                break
            state_grad[:, s] += delta
            dz = delta * act_grad_from_output(activation, S[:, s])
            dU += x[:, s].T @ dz
            dW += S_prev[:, s].T @ dz
            db += dz.sum(axis=0)
            dx[:, s] += dz @ U.T
            delta = dz @ W.T
            if s == 0 and _reaches(t, -1, k):
                dh0 += delta.sum(axis=0)
    norms = np.sqrt((state_grad**2).sum(axis=(0, 2)))
    return dx, dU, dW, db, dh0, norms


# --------------------------------------------------------------------------- lstm


def lstm_forward(x, W, b, h0, c0, candidate="tanh"):
    """h: (N, T, H) and a cache; W: (H + F, 4H) acting on [h_{t-1}, x_t], blocks f, i, o, C~."""
    n, steps, _ = x.shape
    H = len(b) // 4
    h_prev = np.broadcast_to(h0, (n, H)).astype(x.dtype)
    c_prev = np.broadcast_to(c0, (n, H)).astype(x.dtype)
    cache = []
    hs = []
    for t in range(steps):
        hx = np.concatenate([h_prev, x[:, t]], axis=1)
        z = hx @ W + b
        f = sigmoid(z[:, :H])
        i = sigmoid(z[:, H : 2 * H])
        o = sigmoid(z[:, 2 * H : 3 * H])
        g = act(candidate, z[:, 3 * H :])
        c = f * c_prev + i * g
        h = o * np.tanh(c)
        cache.append((hx, f, i, g, o, c_prev, c))
        hs.append(h)
        h_prev, c_prev = h, c
    return np.stack(hs, axis=1), cache


def lstm_backward(x, W, b, h0, c0, dH, candidate="tanh", k=None):
    """Gradients for dC/dh_t = dH[:, t]: dx, dW, db, dh0, dc0, norms (T,) of dC/dh_t."""
    n, steps, F = x.shape
    H = len(b) // 4
    hs, cache = lstm_forward(x, W, b, h0, c0, candidate)
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros_like(b)
    dh0, dc0 = np.zeros(H, dtype=x.dtype), np.zeros(H, dtype=x.dtype)
    state_grad = np.zeros_like(hs)
    for t in range(steps):
        dh = dH[:, t].copy()
        dc = np.zeros((n, H), dtype=x.dtype)
        for s in range(t, -1, -1):
            if not _reaches(t, s, k):
                break
            state_grad[:, s] += dh
            hx, f, i, g, o, c_prev, c = cache[s]
            tc = np.tanh(c)
            dc = dc + dh * o * (1 - tc**2)
            dz = np.concatenate(
                [
                    dc * c_prev * f * (1 - f),
                    dc * g * i * (1 - i),
                    dh * tc * o * (1 - o),
                    dc * i * act_grad_from_output(candidate, g),
                ],
                axis=1,
            )
            dW += hx.T @ dz
            db += dz.sum(axis=0)
            dhx = dz @ W.T
            dx[:, s] += dhx[:, H:]
            dh = dhx[:, :H]
            dc = dc * f
            if s == 0 and _reaches(t, -1, k):
                dh0 += dh.sum(axis=0)
                dc0 += dc.sum(axis=0)
    norms = np.sqrt((state_grad**2).sum(axis=(0, 2)))
    return dx, dW, db, dh0, dc0, norms
