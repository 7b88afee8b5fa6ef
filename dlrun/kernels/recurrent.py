"""Kernels of the recurrent layers: one time step each, and whole passes through time.

A step kernel does what lies between two matrix products: add the pieces, apply the gate
nonlinearities, update the cell, and (backward) multiply by the derivatives.
``rnn_forward``/``rnn_backward`` and ``lstm_forward``/``lstm_backward`` run all steps in
one call, each step's product through :func:`blas.gemm` (the BLAS routine chosen for its
shape, ``lib``, called from the kernel). The layers call those; the step kernels are what they loop over.

Backward kernels work on ``A`` "slots" of gradient at once, shape (A, N, H): with
truncated BPTT each slot carries the gradient of one output time step (which must stop
after k steps), so all live chains go through one product. Full BPTT uses a single slot.

Nonlinearities. Numba without Intel SVML calls the scalar libm ``exp``/``tanh`` once per
element and cannot vectorise the loop. In float32 the kernels therefore use a rational
approximation that vectorises:

    tanh(x) ~= a P(a^2) / Q(a^2),  a = clip(x, -c, c),   deg P = deg Q = 4
    sigmoid(x) = (1 + tanh(x / 2)) / 2

fitted (weighted least squares, ``TANH_P``/``TANH_Q``) to a maximum absolute error of
2e-8 on (-9, 9). The fit reaches 1 at 9.035, so with c = 9.05 and the result clamped to
[-1, 1] it is exactly +-1 from c on. Evaluated in float32 with fused multiply-adds it
stays within 3.2e-7 (5 ulp) of ``np.tanh``. The derivatives are taken from the outputs
(1 - t^2, s (1 - s)) as for the exact functions. float64 uses the exact libm functions
(``approx=False``), so float64 results match NumPy to rounding and gradient checks are
exact.
"""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import numpy as np

from dlrun.kernels._jit import fused_multiply_add, inline, kernel
from dlrun.kernels.activations import SIGMOID, TANH
from dlrun.kernels.blas import gemm
from dlrun.kernels.penalties import sum_squares

#: Numerator and denominator coefficients of the tanh approximation, in powers of a^2.
TANH_P = (9.99999907e-01, 1.33731534e-01, 3.48652777e-03, 2.04708945e-05, 1.31828783e-08)
TANH_Q = (1.0, 4.67064503e-01, 2.58417770e-02, 3.27129471e-04, 7.70212091e-07)
#: The clip point c: the fit is >= 1 from |x| = 9.035 on, so clamped it is exactly +-1 from c.
TANH_CLIP = 9.05

ACTIVATION_CODES = {"tanh": TANH, "sigmoid": SIGMOID}


@cache
def constants(dtype: Any) -> tuple:
    """The approximation's constants as scalars of ``dtype`` (so float32 stays float32).

    Layout: P[0..4], Q[0..4], clip, 0.5, 1.0.
    """
    t = np.dtype(dtype).type
    return tuple(t(v) for v in (*TANH_P, *TANH_Q, TANH_CLIP, 0.5, 1.0))


def use_approximation(dtype: Any) -> bool:
    """The rational tanh/sigmoid are used in float32, exact libm functions in float64."""
    return np.dtype(dtype) == np.float32


@inline
def _tanh(x, approx, k):
    if not approx:
        return math.tanh(x)
    a = min(max(x, -k[10]), k[10])
    z = a * a
    p = k[0] + z * (k[1] + z * (k[2] + z * (k[3] + z * k[4])))
    q = k[5] + z * (k[6] + z * (k[7] + z * (k[8] + z * k[9])))
    return min(max(a * p / q, -k[12]), k[12])  # |tanh| <= 1; exactly 1 from the clip on


@inline
def _sigmoid(x, approx, k):
    if not approx:
        return k[12] / (k[12] + math.exp(-x))
    return k[11] * _tanh(k[11] * x, approx, k) + k[11]


@fused_multiply_add
def tanh_approx(x, out, k):
    """out = the rational tanh of x (exposed for tests of its error bound)."""
    flat_x = x.ravel()
    flat_out = out.ravel()
    for j in range(flat_x.size):
        flat_out[j] = _tanh(flat_x[j], True, k)


# ---------------------------------------------------------------------------- rnn


@fused_multiply_add
def rnn_step_forward(zx, zh, b, s_out, act, approx, k):
    """S_t = f(zx + zh + b), f = tanh (act TANH) or sigmoid (act SIGMOID).

    zx: (N, H) the input projection X_t U; zh: (N, H) the recurrent S_{t-1} W;
    b: (H,); s_out: (N, H) (may be zh itself).
    """
    n, h = zh.shape
    for r in range(n):
        if act == TANH:
            for j in range(h):
                s_out[r, j] = _tanh(zx[r, j] + zh[r, j] + b[j], approx, k)
        else:
            for j in range(h):
                s_out[r, j] = _sigmoid(zx[r, j] + zh[r, j] + b[j], approx, k)


@kernel
def rnn_step_backward(ds, s, act, dz, dz_sum):
    """dC/dz = dC/dS_t * f'(z), with f' from the output: 1 - S^2 (tanh), S (1 - S) (sigmoid).

    ds: (A, N, H) gradient slots at S_t; s: (N, H) S_t; dz: (A, N, H) out;
    dz_sum: (N, H) out, the sum over slots. Returns ||sum over slots of ds||_2.
    """
    a_n, n, h = ds.shape
    sq = 0.0
    for r in range(n):
        for j in range(h):
            sj = s[r, j]
            d = 1.0 - sj * sj if act == TANH else sj * (1.0 - sj)
            tot = 0.0
            dtot = 0.0
            for a in range(a_n):
                g = ds[a, r, j]
                dtot += g
                v = g * d
                dz[a, r, j] = v
                tot += v
            dz_sum[r, j] = tot
            sq += dtot * dtot
    return math.sqrt(sq)


@inline
def _add_row(out, row):
    """out += row (a bias gradient's or an output gradient's row, while it is in cache)."""
    for j in range(out.shape[0]):
        out[j] += row[j]


@kernel
def rnn_forward(zx, W, b, s, act, approx, k, lib):
    """All T steps of the RNN forward in one call: S_t = f(zx[t] + S_{t-1} W + b), the
    product through :func:`blas.gemm`, then :func:`rnn_step_forward`.

    zx: (T, N, H) the input projections X_t U; W: (H, H); b: (H,);
    s: (T + 1, N, H) with s[0] = S_{-1} on entry; each step writes S_t into s[t + 1].
    lib: the BLAS of the (N, H) @ (H, H) products (``blas.lib_for_shape``).
    """
    for t in range(zx.shape[0]):
        gemm(s[t], W, s[t + 1], lib)
        rnn_step_forward(zx[t], s[t + 1], b, s[t + 1], act, approx, k)


@kernel
def rnn_backward(dy_steps, WT, s, act, ds, dz, dz_all, norms, to_initial, lib):
    """Full backpropagation through time in one call, t = T-1 .. 0: dC/dS_t += dy_t;
    :func:`rnn_step_backward`; dC/dS_{t-1} = dC/dz_t W^T.

    dy_steps: (T, N, H) output gradients of every step, or (0, N, H) when the only
    output is S_{T-1}, whose gradient the caller puts in ds. WT: (H, H) W transposed;
    s: the states kept by :func:`rnn_forward`. ds, dz: (1, N, H), one gradient slot;
    ds holds dC/dS_{-1} on exit when ``to_initial`` (a learned initial state), else the
    product of step 0 is skipped. Writes dz_all: (T, N, H) dC/dz, norms: (T,) ||dC/dS_t||.
    lib: the BLAS of the (N, H) @ (H, H) products.
    """
    steps, n = dz_all.shape[0], dz_all.shape[1]
    every = dy_steps.shape[0] > 0
    for t in range(steps - 1, -1, -1):
        if every:
            for r in range(n):
                _add_row(ds[0, r], dy_steps[t, r])
        norms[t] = rnn_step_backward(ds, s[t + 1], act, dz, dz_all[t])
        if t > 0 or to_initial:
            gemm(dz[0], WT, ds[0], lib)


# --------------------------------------------------------------------------- lstm


@fused_multiply_add
def lstm_step_forward(gates, b, c_prev, c_out, tc_out, h_next, cand, approx, k):
    """One LSTM step, gate columns in the order f, i, o, C~ (blocks of H).

    gates: (N, 4H) holds the pre-activations [h_{t-1}, x_t] W on entry and the
    activated gates on exit; b: (4H,).
        f = sigma(.), i = sigma(.), o = sigma(.), C~ = tanh(.) (cand TANH) or sigma(.) (cand SIGMOID)
        C_t = f * C_{t-1} + i * C~;   h_t = o * tanh(C_t)
    c_out, tc_out (= tanh(C_t)): (N, H). h_t goes into the first H columns of
    h_next: (N, >= H), the rows [h_t, x_{t+1}] of the next step's product. The
    three sigmoid gates are adjacent so that they are one vectorised loop (two
    loops over separate sigmoid blocks measured 3x slower).
    """
    n, h = c_prev.shape
    for r in range(n):
        # a literal ``approx`` in each call: the inlined loops then carry no branch
        h_r = h_next[r][:h]
        if approx:
            _lstm_row(gates[r], b, c_prev[r], c_out[r], tc_out[r], h_r, cand, True, k)
        else:
            _lstm_row(gates[r], b, c_prev[r], c_out[r], tc_out[r], h_r, cand, False, k)


@inline
def _lstm_row(gates, b, cp, c_r, t_r, h_r, cand, approx, k):
    """One row of :func:`lstm_step_forward`. Every loop runs from 0 over slices: a loop
    from 3h would keep Numba's negative-index test and not vectorise (3.5x slower)."""
    h = cp.shape[0]
    g = gates[: 3 * h]
    for j in range(3 * h):
        g[j] = _sigmoid(g[j] + b[j], approx, k)
    cc, bc = gates[3 * h :], b[3 * h :]
    if cand == TANH:
        for j in range(h):
            cc[j] = _tanh(cc[j] + bc[j], approx, k)
    else:
        for j in range(h):
            cc[j] = _sigmoid(cc[j] + bc[j], approx, k)
    f, i, o = gates[:h], gates[h : 2 * h], gates[2 * h : 3 * h]
    for j in range(h):
        c_r[j] = f[j] * cp[j] + i[j] * cc[j]
    for j in range(h):
        t_r[j] = _tanh(c_r[j], approx, k)
    for j in range(h):
        h_r[j] = o[j] * t_r[j]


@kernel
def lstm_step_backward(dh, dc, gates, c_prev, tc, cand, da, db, one):
    """Backward through one LSTM step, for one chain of gradients:

        dC_t  = dc + dh * o * (1 - tanh(C_t)^2)
        do    = dh * tanh(C_t)          dA_o = do * o (1 - o)
        df    = dC_t * C_{t-1}          dA_f = df * f (1 - f)
        di    = dC_t * C~               dA_i = di * i (1 - i)
        dC~   = dC_t * i                dA_c = dC~ * (1 - C~^2)   (C~ (1 - C~) for sigma)
        dC_{t-1} = dC_t * f

    dh: (N, H) dC/dh_t; dc: (N, H) dC/dC_t from step t+1 on entry, dC/dC_{t-1} on exit;
    gates: (N, 4H) activated f, i, o, C~; c_prev: C_{t-1}; tc: tanh(C_t). Writes
    da: (N, 4H) dC/d(pre-activations) and db: (4H,) the sum of da over the rows
    (added row by row while each row is in cache); ``one`` is 1 in the arrays' dtype
    (a float literal would turn float32 arithmetic into float64). Each loop touches
    at most four arrays, few enough for the compiler's overlap tests, so every loop
    runs in SIMD lanes; dC_t is kept in ``dc`` itself (a separate row array for it took
    1.35x as long), which is why dC_{t-1} = dC_t * f comes last. Returns ||dh||_2.
    """
    n, h = dh.shape
    db[:] = 0.0
    for r in range(n):
        f, i = gates[r, :h], gates[r, h : 2 * h]
        o, g = gates[r, 2 * h : 3 * h], gates[r, 3 * h :]
        da_f, da_i = da[r, :h], da[r, h : 2 * h]
        da_o, da_g = da[r, 2 * h : 3 * h], da[r, 3 * h :]
        dh_r, dc_r, t_r, cp = dh[r], dc[r], tc[r], c_prev[r]
        for j in range(h):  # dC_t, in place
            dc_r[j] = dc_r[j] + dh_r[j] * o[j] * (one - t_r[j] * t_r[j])
        for j in range(h):
            da_o[j] = dh_r[j] * t_r[j] * (o[j] * (one - o[j]))
        for j in range(h):
            da_i[j] = dc_r[j] * g[j] * (i[j] * (one - i[j]))
        if cand == TANH:
            for j in range(h):
                da_g[j] = dc_r[j] * i[j] * (one - g[j] * g[j])
        else:
            for j in range(h):
                da_g[j] = dc_r[j] * i[j] * (g[j] * (one - g[j]))
        for j in range(h):
            da_f[j] = dc_r[j] * cp[j] * (f[j] * (one - f[j]))
        for j in range(h):  # dC_{t-1}
            dc_r[j] = dc_r[j] * f[j]
        _add_row(db, da[r])
    return math.sqrt(sum_squares(dh.ravel()))


@kernel
def lstm_forward(hx, W, b, gates, cs, tc, cand, approx, k, lib):
    """All T steps of the LSTM forward in one call: per step the product z = hx[t] W
    (through :func:`blas.gemm`) and :func:`lstm_step_forward`.

    hx: (T + 1, N, H + F), rows [h_{t-1}, x_t] (hx[0] holds h_{-1}; each step writes
    h_t into hx[t + 1]); W: (H + F, 4H); b: (4H,); gates: (T, N, 4H) activated gates;
    cs: (T + 1, N, H) cell states (cs[0] = C_{-1}); tc: (T, N, H) tanh(C_t).
    The same work as the layer's Python loop, without its per-step call overhead.
    lib: the BLAS of the (N, H + F) @ (H + F, 4H) products (``blas.lib_for_shape``).
    """
    for t in range(gates.shape[0]):
        gemm(hx[t], W, gates[t], lib)
        lstm_step_forward(gates[t], b, cs[t], cs[t + 1], tc[t], hx[t + 1], cand, approx, k)


@kernel
def lstm_backward(dy_steps, WhT, gates, cs, tc, cand, dh, dc, da, db, norms, to_initial, lib):
    """Full backpropagation through time over all T steps in one call, t = T-1 .. 0:
    dC/dh_t += dy_t; :func:`lstm_step_backward`; dC/dh_{t-1} = dC/dz_t W_h^T.

    dy_steps: (T, N, H) output gradients of every step (``return_sequences``), or
    (0, N, H) when the only output is h_{T-1}, whose gradient the caller puts in dh.
    WhT: (4H, H) the recurrent rows of W, transposed; gates, cs, tc as kept by
    :func:`lstm_forward`. dh, dc: (N, H) dC/dh_{T-1} and dC/dC_{T-1} on entry;
    dC/dh_{-1} and dC/dC_{-1} on exit when ``to_initial`` (a learned initial state),
    else the product of step 0 is skipped. Writes da: (T, N, 4H) dC/dz, db: (T, 4H)
    its row sums, norms: (T,) ||dC/dh_t||_2. lib: the BLAS of the (N, 4H) @ (4H, H) products.
    """
    steps, n = tc.shape[0], tc.shape[1]
    one = gates.dtype.type(1.0)
    every = dy_steps.shape[0] > 0
    for t in range(steps - 1, -1, -1):
        if every:
            for r in range(n):
                _add_row(dh[r], dy_steps[t, r])
        norms[t] = lstm_step_backward(dh, dc, gates[t], cs[t], tc[t], cand, da[t], db[t], one)
        if t > 0 or to_initial:
            gemm(da[t], WhT, dh, lib)
