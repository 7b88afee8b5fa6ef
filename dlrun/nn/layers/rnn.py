"""Simple recurrent layer (Elman RNN) with backpropagation through time.

The course writes the state and the output, in column form, as

    S_t = sigma(U X_t + W S_{t-1}),       O_t = softmax(V S_t)

Forward here, for a sequence x of shape (N, T, F), row-vector convention (U, W
transposed):

    S_t = f(X_t U + S_{t-1} W + b)        U: (F, H), W: (H, H), b: (H,)
    f   = tanh (default) or sigmoid       S_{-1} = 0, or a learned h0: (H,)

Two deliberate differences from the course's S_t: f is tanh by default
(``activation: sigmoid`` gives the course's sigma; tanh is centred on 0 and
tanh'(0) = 1 where sigma'(0) = 1/4, so the gradient loses less at each step back),
and there is a bias b (learned, starting at 0; the course's state has none).

output: all states (N, T, H) if ``return_sequences`` (many-to-many), else the
last state S_{T-1}: (N, H) (many-to-one). The course's O_t = softmax(V S_t) is
a ``dense`` layer with ``bias: false`` (applied on the last axis) followed by
``softmax``.

Backward (BPTT), from t = T-1 down to 0, with dC/dS_t = dC/dO_t-part + the
gradient arriving from step t+1:

    dC/dz_t     = dC/dS_t * f'(z_t)        f' = 1 - S_t^2 (tanh), S_t (1 - S_t) (sigmoid)
    dC/dS_{t-1} += dC/dz_t W^T
    dC/dU = sum_t X_t^T dC/dz_t,   dC/dW = sum_t S_{t-1}^T dC/dz_t,   dC/db = sum_t dC/dz_t
    dC/dX_t = dC/dz_t U^T

Truncated BPTT (``bptt_steps: k``, a dlrun option the course does not use): the
gradient of the output at time t flows back through at most k recurrent steps, to
S_t, ..., S_{t-k}; the parameter gradients collect only those terms. Each output's
chain is carried separately (one "slot" per live output, k + 1 slots, all through one
matrix product per step). k >= T is full BPTT.

After ``backward``, ``state_grad_norms[t]`` = ||dC/dS_t||_2 of the (N, H) array (the
whole batch): the vanishing (or exploding) gradient in time.

How the steps run (the same for the ``lstm`` layer). Each time step is a matrix
product (NumPy's BLAS) and a step kernel (``dlrun.kernels.recurrent``: the
nonlinearity forward, its derivative backward). Forward, and backward with full BPTT,
run all T steps in one kernel call (``rnn_forward``/``rnn_backward``), which loops over
the steps and calls the same BLAS routine from Numba; truncated BPTT, and NumPy builds
whose BLAS Numba cannot call, run the same loop here in Python, over the same step
kernels. Either way one formula, written once, computes each step.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from dlrun.config.registry import layers
from dlrun.config.settings import Settings
from dlrun.errors import BuildError
from dlrun.kernels import blas
from dlrun.kernels import recurrent as K
from dlrun.nn.layers.base import Layer, Shape


class RecurrentConfig(Settings):
    """Settings shared by the recurrent layers."""

    units: int = Field(..., gt=0, description="size H of the hidden state")
    return_sequences: bool = Field(
        False, description="output every state (N, T, H) instead of the last one (N, H)"
    )
    initial_state: Literal["zero", "learned"] = Field(
        "zero", description="state before the first step: zeros or a learned parameter h0"
    )
    bptt_steps: int | None = Field(
        None, ge=1, description="truncated BPTT: gradients flow back at most this many steps"
    )
    init: str | None = Field(None, description="initializer of the input weights")
    recurrent_init: str | None = Field(None, description="initializer of the recurrent weights")


def sequence_shape(layer: Layer, input_shape: Shape) -> tuple[int, int]:
    """(T, F) of a sequence input, or a BuildError naming the layer."""
    if len(input_shape) != 2:
        raise BuildError(
            f"layer '{layer.name}' ({layer.registered_name}) needs sequences (T, F) "
            f"(time steps, features) but gets inputs of shape {tuple(input_shape)}",
            hint="use a sequence dataset (adding, sine, text, image_rows) or put the "
            "recurrent layer after another one with return_sequences: true",
        )
    return int(input_shape[0]), int(input_shape[1])


class Truncation:
    """Which gradient chains are alive during one backward pass.

    ``slots`` chains run side by side: 1 for full BPTT or a single output,
    k + 1 when every output of a truncated many-to-many layer has its own chain.
    """

    def __init__(self, bptt_steps: int | None, steps: int, return_sequences: bool) -> None:
        k = bptt_steps
        self.truncated = k is not None and k < steps
        self.ring = self.truncated and return_sequences
        self.slots = k + 1 if self.ring else 1
        # many-to-one truncated: only states T-1 .. T-1-k get a gradient
        self.first = steps - 1 - k if (self.truncated and not return_sequences) else 0
        self.k = k

    def inject(self, ds: np.ndarray, t: int, dy_t: np.ndarray | None) -> None:
        """Add the output gradient of step t (None: no output there) into the slots."""
        if self.ring:
            ds[t % self.slots] = dy_t  # replaces the chain that just reached k + 1 steps
        elif dy_t is not None:
            ds[0] += dy_t

    def initial(self, ds: np.ndarray) -> np.ndarray | None:
        """Gradient reaching the initial state after step 0 (None when truncated away)."""
        if self.ring:
            return ds[: self.k].sum(axis=0)  # slot k holds the output k, k + 1 steps away
        if self.truncated:
            return None
        return ds[0]


def output_grads(dy: np.ndarray, steps: int, return_sequences: bool):
    """dC/dy per time step, time-major: a function t -> (N, H) array or None."""
    if return_sequences:
        dy_tm = dy.transpose(1, 0, 2)
        return lambda t: dy_tm[t]
    return lambda t: dy if t == steps - 1 else None


def step_grads(dy: np.ndarray, return_sequences: bool) -> np.ndarray:
    """dC/dy as the one-call backward kernels take it: (T, N, H) time-major with
    ``return_sequences``, else empty (0, N, H) (the caller starts the chain with dy)."""
    if return_sequences:
        return np.ascontiguousarray(dy.transpose(1, 0, 2))
    return np.empty((0, *dy.shape), dtype=dy.dtype)


@layers.register("rnn")
class RNN(Layer):
    """Simple recurrent layer S_t = f(X_t U + S_{t-1} W + b), trained by (truncated) BPTT."""

    class Config(RecurrentConfig):
        activation: Literal["tanh", "sigmoid"] = Field("tanh", description="f")

    example = [
        {"config": {"units": 3}, "input_shape": (4, 2)},
        {
            "config": {"units": 3, "return_sequences": True, "activation": "sigmoid"},
            "input_shape": (4, 2),
        },
        {
            "config": {"units": 2, "return_sequences": True, "initial_state": "learned"},
            "input_shape": (3, 2),
        },
    ]

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        c = self.config
        steps, features = sequence_shape(self, input_shape)
        h = c.units
        self.input_shape = (steps, features)
        self.output_shape = (steps, h) if c.return_sequences else (h,)
        self.output_range = (-1.0, 1.0) if c.activation == "tanh" else (0.0, 1.0)
        self.dtype = np.dtype(dtype)
        self.add_param("U", self.init_array((features, h), features, h, rng, dtype, c.init))
        self.add_param("W", self.init_array((h, h), h, h, rng, dtype, c.recurrent_init))
        self.add_param("b", np.zeros(h, dtype=dtype))
        if c.initial_state == "learned":
            self.add_param("h0", np.zeros(h, dtype=dtype))
        self.state_grad_norms = np.zeros(steps)
        return self.output_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        c = self.config
        n, steps, features = x.shape
        h = c.units
        xt = np.ascontiguousarray(x.transpose(1, 0, 2), dtype=self.dtype)  # (T, N, F)
        zx = np.empty((steps, n, h), dtype=self.dtype)  # X_t U for every t, one product
        blas.matmul(xt.reshape(steps * n, features), self.params["U"], out=zx.reshape(steps * n, h))
        s = np.empty((steps + 1, n, h), dtype=self.dtype)  # s[0] is S_{-1}
        s[0] = self.params["h0"] if c.initial_state == "learned" else 0.0
        W, b = self.params["W"], self.params["b"]
        act = K.ACTIVATION_CODES[c.activation]
        approx, k = K.use_approximation(self.dtype), K.constants(self.dtype)
        if blas.available():  # the same steps, in one kernel call
            lib = blas.lib_for_shape(n, h, h, False, False, self.dtype)
            K.rnn_forward(zx, W, b, s, act, approx, k, lib)
        else:
            for t in range(steps):
                blas.matmul(s[t], W, out=s[t + 1])
                K.rnn_step_forward(zx[t], s[t + 1], b, s[t + 1], act, approx, k)
        self._xt, self._s = xt, s
        if c.return_sequences:
            return np.ascontiguousarray(s[1:].transpose(1, 0, 2))
        return s[steps].copy()

    def backward(self, dy: np.ndarray) -> np.ndarray:
        c = self.config
        xt, s = self._xt, self._s
        steps, n, features = xt.shape
        h = c.units
        W = self.params["W"]
        trunc = Truncation(c.bptt_steps, steps, c.return_sequences)
        a = trunc.slots
        dy = np.asarray(dy, dtype=self.dtype)
        ds = np.zeros((a, n, h), dtype=self.dtype)  # dC/dS_t, one row block per slot
        dz = np.empty_like(ds)
        dz_all = np.empty((steps, n, h), dtype=self.dtype)  # sum over slots, per step
        dz_all[: trunc.first] = 0.0  # steps before trunc.first get no gradient
        norms = np.zeros(steps)
        act = K.ACTIVATION_CODES[c.activation]
        need_initial = c.initial_state == "learned"
        if not trunc.truncated and blas.available():  # full BPTT: the loop below, in one call
            if not c.return_sequences:
                ds[0] = dy
            WT = np.ascontiguousarray(W.T)
            dy_steps = step_grads(dy, c.return_sequences)
            lib = blas.lib_for_shape(n, h, h, False, False, self.dtype)
            K.rnn_backward(dy_steps, WT, s, act, ds, dz, dz_all, norms, need_initial, lib)
        else:
            dy_at = output_grads(dy, steps, c.return_sequences)
            for t in range(steps - 1, trunc.first - 1, -1):
                trunc.inject(ds, t, dy_at(t))
                norms[t] = K.rnn_step_backward(ds, s[t + 1], act, dz, dz_all[t])
                if t > 0 or need_initial:
                    blas.matmul(dz.reshape(a * n, h), W.T, out=ds.reshape(a * n, h))
        self.state_grad_norms = norms
        dz2 = dz_all.reshape(steps * n, h)
        blas.matmul(xt.reshape(steps * n, features).T, dz2, out=self.grads["U"])
        blas.matmul(s[:-1].reshape(steps * n, h).T, dz2, out=self.grads["W"])
        np.sum(dz2, axis=0, out=self.grads["b"])
        if need_initial:
            d0 = trunc.initial(ds)
            if d0 is None:
                self.grads["h0"][...] = 0.0
            else:
                np.sum(d0, axis=0, out=self.grads["h0"])
        dx = blas.matmul(dz2, self.params["U"].T).reshape(steps, n, features)
        return np.ascontiguousarray(dx.transpose(1, 0, 2))
