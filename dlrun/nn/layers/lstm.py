"""Long short-term memory layer (Hochreiter & Schmidhuber 1997, with the forget
gate of Gers et al. 2000): the course's gates and cell update, with two deliberate
differences, the tanh candidate C~_t and the forget-gate bias starting at 1.

Forward, for a sequence x of shape (N, T, F), with [h_{t-1}, x_t] the
concatenation (N, H + F) and one weight matrix per gate:

    f_t  = sigma(W_f [h_{t-1}, x_t] + b_f)          forget gate
    i_t  = sigma(W_i [h_{t-1}, x_t] + b_i)          input gate
    C~_t = tanh (W_C [h_{t-1}, x_t] + b_C)          candidate: the course writes sigma
                                                    (``candidate_activation: sigmoid``);
                                                    tanh, as in the standard LSTM, lets
                                                    the cell add and subtract
    C_t  = f_t * C_{t-1} + i_t * C~_t               cell state
    o_t  = sigma(W_o [h_{t-1}, x_t] + b_o)          output gate
    h_t  = o_t * tanh(C_t)

Stored as one matrix W: (H + F, 4H), row-vector convention z = [h, x] W + b:
rows [:H] act on h_{t-1}, rows [H:] on x_t; columns are the blocks f, i, o, C~
(the three sigmoid gates side by side, so one vectorised loop computes them).
The rows [h_{t-1}, x_t] of every step lie side by side in one buffer hx: (T + 1, N, H + F),
so each step is one BLAS product hx[t] W (x_t and h_{t-1} together), the step writes
h_t into hx[t + 1], and dC/dW = sum_t hx[t]^T dC/dz is one product over all steps.
h_{-1}, C_{-1} are zeros, or learned parameters h0, c0 (``initial_state: learned``).
Output: all h_t (N, T, H) with ``return_sequences``, else h_{T-1}: (N, H).
Stack layers by giving every one but the last ``return_sequences: true``.

Backward (BPTT), t = T-1 .. 0, given dC/dh_t (output part + from step t+1)
and dC/dC_t from step t+1:

    dC/dC_t  += dC/dh_t * o_t * (1 - tanh^2 C_t)
    dC/do_t   = dC/dh_t * tanh C_t     dC/dz_o = dC/do_t * o_t (1 - o_t)
    dC/df_t   = dC/dC_t * C_{t-1}      dC/dz_f = dC/df_t * f_t (1 - f_t)
    dC/di_t   = dC/dC_t * C~_t         dC/dz_i = dC/di_t * i_t (1 - i_t)
    dC/dC~_t  = dC/dC_t * i_t          dC/dz_C = dC/dC~_t * (1 - C~_t^2)
    dC/dC_{t-1} = dC/dC_t * f_t
    [dC/dh_{t-1}, dC/dx_t] = dC/dz W^T,   dC/dW = sum_t [h_{t-1}, x_t]^T dC/dz,
    dC/db = sum_t dC/dz

The forget-gate bias starts at ``forget_bias`` = 1.0 (a deliberate difference from
the course; ``forget_bias: 0`` starts it at 0 like the other biases): with b_f = 0 the forget
gate starts near sigma(0) = 0.5 and the cell halves its content every step, so
the gradient through C vanishes like 0.5^t before anything is learned; b_f = 1
(f ~ 0.73) makes the cell remember by default early in training (Gers et al.
2000; Jozefowicz et al. 2015 found it closes most of the gap to the GRU).

Truncated BPTT (``bptt_steps: k``), ``state_grad_norms`` (||dC/dh_t||_2 of the
(N, H) array, per step: the hidden state h_t, not the cell state C_t) and the way
the steps run (one kernel call, or the same loop in Python) work as in the ``rnn``
layer; the step kernels are ``lstm_step_forward`` and ``lstm_step_backward`` in
``dlrun.kernels.recurrent``.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from dlrun.config.registry import layers
from dlrun.kernels import blas
from dlrun.kernels import recurrent as K
from dlrun.nn.layers.base import Layer, Shape
from dlrun.nn.layers.rnn import (
    RecurrentConfig,
    Truncation,
    output_grads,
    sequence_shape,
    step_grads,
)

#: Rows per pass in evaluation mode: bounds the work memory of a big predict batch.
EVAL_ROWS = 64


@layers.register("lstm")
class LSTM(Layer):
    """Long short-term memory: gated cell state C_t = f * C_{t-1} + i * C~, h_t = o * tanh(C_t)."""

    class Config(RecurrentConfig):
        candidate_activation: Literal["tanh", "sigmoid"] = Field(
            "tanh", description="nonlinearity of the candidate C~ (the course writes sigma)"
        )
        forget_bias: float = Field(1.0, description="initial forget-gate bias b_f")

    example = [
        {"config": {"units": 3}, "input_shape": (4, 2)},
        {
            "config": {"units": 2, "return_sequences": True, "candidate_activation": "sigmoid"},
            "input_shape": (3, 2),
        },
        {
            "config": {"units": 2, "return_sequences": True, "initial_state": "learned"},
            "input_shape": (3, 2),
        },
    ]
    output_range = (-1.0, 1.0)

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        c = self.config
        steps, features = sequence_shape(self, input_shape)
        h = c.units
        self.input_shape = (steps, features)
        self.output_shape = (steps, h) if c.return_sequences else (h,)
        self.dtype = np.dtype(dtype)
        W = np.empty((h + features, 4 * h), dtype=dtype)
        W[:h] = self.init_array((h, 4 * h), h + features, h, rng, dtype, c.recurrent_init)
        W[h:] = self.init_array((features, 4 * h), h + features, h, rng, dtype, c.init)
        self.add_param("W", W)
        b = np.zeros(4 * h, dtype=dtype)
        b[:h] = c.forget_bias
        self.add_param("b", b)
        if c.initial_state == "learned":
            self.add_param("h0", np.zeros(h, dtype=dtype))
            self.add_param("c0", np.zeros(h, dtype=dtype))
        self.state_grad_norms = np.zeros(steps)
        self._gates: np.ndarray | None = None  # kept by a training forward for backward
        return self.output_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            # nothing is kept for backward (the last training batch's arrays are let go),
            # and a large batch goes through in chunks: memory bounded by EVAL_ROWS
            self._hx = self._gates = self._cs = self._tc = None
            if len(x) > EVAL_ROWS:
                return np.concatenate(
                    [self._forward(x[i : i + EVAL_ROWS]) for i in range(0, len(x), EVAL_ROWS)]
                )
            return self._forward(x)
        return self._forward(x, keep=True)

    def _forward(self, x: np.ndarray, keep: bool = False) -> np.ndarray:
        c = self.config
        n, steps, features = x.shape
        h = c.units
        W, b = self.params["W"], self.params["b"]
        # hx[t] = [h_{t-1}, x_t]; hx[steps, :, :h] = h_{T-1} (its x part is never read)
        hx = np.empty((steps + 1, n, h + features), dtype=self.dtype)
        hx[:steps, :, h:] = x.transpose(1, 0, 2)
        learned = c.initial_state == "learned"
        hx[0, :, :h] = self.params["h0"] if learned else 0.0
        gates = np.empty((steps, n, 4 * h), dtype=self.dtype)  # then the activated gates
        cs = np.empty((steps + 1, n, h), dtype=self.dtype)  # cs[0] = C_{-1}
        tc = np.empty((steps, n, h), dtype=self.dtype)  # tanh(C_t)
        cs[0] = self.params["c0"] if learned else 0.0
        cand = K.ACTIVATION_CODES[c.candidate_activation]
        approx, k = K.use_approximation(self.dtype), K.constants(self.dtype)
        if blas.available():  # the same steps, in one kernel call
            lib = blas.lib_for_shape(n, h + features, 4 * h, False, False, self.dtype)
            K.lstm_forward(hx, W, b, gates, cs, tc, cand, approx, k, lib)
        else:
            for t in range(steps):
                blas.matmul(hx[t], W, out=gates[t])
                K.lstm_step_forward(
                    gates[t], b, cs[t], cs[t + 1], tc[t], hx[t + 1], cand, approx, k
                )
        if keep:
            self._hx, self._gates, self._cs, self._tc = hx, gates, cs, tc
        if c.return_sequences:
            return np.ascontiguousarray(hx[1:, :, :h].transpose(1, 0, 2))
        return hx[steps, :, :h].copy()

    def backward(self, dy: np.ndarray) -> np.ndarray:
        c = self.config
        if self._gates is None:
            raise RuntimeError(f"layer '{self.name}': backward needs a training forward first")
        hx, gates, cs, tc = self._hx, self._gates, self._cs, self._tc
        h = c.units
        steps, n, features = hx.shape[0] - 1, hx.shape[1], hx.shape[2] - h
        W = self.params["W"]
        WhT = np.ascontiguousarray(W[:h].T)  # C order: ~5% faster products than the view
        trunc = Truncation(c.bptt_steps, steps, c.return_sequences)
        a = trunc.slots
        dy = np.asarray(dy, dtype=self.dtype)
        dh = np.zeros((a, n, h), dtype=self.dtype)  # dC/dh_t per slot
        dc = np.zeros((a, n, h), dtype=self.dtype)  # dC/dC_t per slot
        da = np.empty((a, n, 4 * h), dtype=self.dtype) if a > 1 else None
        # dC/dz summed over slots; steps before trunc.first get no gradient
        da_all = np.empty((steps, n, 4 * h), dtype=self.dtype)
        da_all[: trunc.first] = 0.0
        db = np.zeros((steps, 4 * h), dtype=self.dtype)  # per step: dC/dz summed over rows
        norms = np.zeros(steps)
        cand = K.ACTIVATION_CODES[c.candidate_activation]
        learned = c.initial_state == "learned"
        one = self.dtype.type(1.0)
        if not trunc.truncated and blas.available():  # full BPTT: the loop below, in one call
            if not c.return_sequences:
                dh[0] = dy
            dy_steps = step_grads(dy, c.return_sequences)
            lib = blas.lib_for_shape(n, 4 * h, h, False, False, self.dtype)
            K.lstm_backward(
                dy_steps, WhT, gates, cs, tc, cand, dh[0], dc[0], da_all, db, norms, learned, lib
            )
        else:  # truncated BPTT, or no BLAS callable from Numba: the same steps from Python
            dy_at = output_grads(dy, steps, c.return_sequences)
            db_slots = np.empty((a, 4 * h), dtype=self.dtype)
            for t in range(steps - 1, trunc.first - 1, -1):
                trunc.inject(dh, t, dy_at(t))
                if trunc.ring:
                    dc[t % a] = 0.0  # a new chain starts with no cell gradient
                if a == 1:  # one chain: written straight into this step's share
                    norms[t] = K.lstm_step_backward(
                        dh[0], dc[0], gates[t], cs[t], tc[t], cand, da_all[t], db[t], one
                    )
                    da_t = da_all[t]
                else:  # one chain per live output, each through the same step kernel
                    norms[t] = np.sqrt(np.sum(dh.sum(axis=0, dtype=np.float64) ** 2))
                    for i in range(a):
                        K.lstm_step_backward(
                            dh[i], dc[i], gates[t], cs[t], tc[t], cand, da[i], db_slots[i], one
                        )
                    np.sum(da, axis=0, out=da_all[t])
                    np.sum(db_slots, axis=0, out=db[t])
                    da_t = da
                if t > 0 or learned:
                    blas.matmul(da_t.reshape(a * n, 4 * h), WhT, out=dh.reshape(a * n, h))
        self.state_grad_norms = norms
        da2 = da_all.reshape(steps * n, 4 * h)
        blas.matmul(hx[:steps].reshape(steps * n, h + features).T, da2, out=self.grads["W"])
        self.grads["b"][...] = db.sum(axis=0, dtype=np.float64)
        if learned:
            d_h0 = trunc.initial(dh)
            d_c0 = trunc.initial(dc)
            if d_h0 is None:
                self.grads["h0"][...] = 0.0
                self.grads["c0"][...] = 0.0
            else:
                np.sum(d_h0, axis=0, out=self.grads["h0"])
                np.sum(d_c0, axis=0, out=self.grads["c0"])
        if not self.input_grad:
            return None  # type: ignore[return-value]
        dx = blas.matmul(da2, W[h:].T).reshape(steps, n, features)
        return np.ascontiguousarray(dx.transpose(1, 0, 2))
