"""Consecutive dense layers, trained as one step.

Layer by layer, each dense layer of a batch costs a handful of calls from Python
(the product, the bias and activation kernel, reshapes, a new array), twice: forward
and backward. For a small network that is most of its time. :class:`DenseStack` runs a run of dense
layers forward in one kernel call and backward in another
(``dlrun.kernels.dense``), with the same BLAS routines (chosen per product shape,
``kernels.blas.lib_for_shape``) and the same elementwise kernels, so the outputs and
gradients are the same to the bit (for batches of two
rows or more: for one row ``np.dot`` takes a matrix-vector routine, which sums in
another order).

The layers stay what the config says (their shapes, parameters and per-layer
gradient checks are theirs); ``Network``'s training and evaluation passes run them
through this step where ``fused.plan`` says so and NumPy's BLAS can be called from
Numba (``kernels.blas.available``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlrun.kernels import blas, blas_choice
from dlrun.kernels.dense import stack_backward, stack_forward
from dlrun.nn.layers.dense import Dense


class DenseStack:
    """``dense_L(... dense_1(x))``: x (..., n_0) -> y (..., n_L), with every dense layer's
    activation fused as in :class:`Dense`."""

    def __init__(self, layers: list[Dense], params: np.ndarray, grads: np.ndarray, starts: dict):
        """``params``, ``grads``: the network's flat buffers; ``starts[(layer, key)]``: where
        each parameter tensor starts in them."""
        self.layers = tuple(layers)
        self.name = "+".join(layer.name for layer in layers)
        self.params, self.grads = params, grads
        self.dtype = params.dtype
        self.layout = np.array(
            [
                (
                    starts[(layer, "W")],
                    starts[(layer, "b")] if layer.config.bias else -1,
                    layer.input_shape[-1],
                    layer.config.units,
                    layer.act.code,
                )
                for layer in layers
            ],
            dtype=np.int64,
        )
        self.slopes = np.array([layer.config.slope for layer in layers], dtype=np.float64)
        self.n_in, self.n_out = int(self.layout[0, 2]), int(self.layout[-1, 3])
        self.width = int(self.layout[:, 3].sum())  # outputs of all layers, per row
        self.zeros = np.zeros(int(self.layout[:, 3].max()), dtype=self.dtype)
        self.scratch = np.empty_like(self.zeros)  # db of layers without a bias
        self._no_dx = np.empty((0, self.n_in), dtype=self.dtype)
        self._x = self._acts = None
        self._libs: dict[tuple, np.ndarray] = {}  # (rows, backward) -> libs, for one
        self._libs_of = -1  # generation of the chooser's choices

    @property
    def input_grad(self) -> bool:
        return self.layers[0].input_grad

    def libs(self, m: int, backward: bool) -> np.ndarray:
        """(L, 3) the BLAS of each layer's products for ``m`` rows, as the layers alone
        would choose them: forward a W; backward a^T dz and dz W^T (0 where not done).
        Kept until the choices may change (12 us to ask again: 2% of an MLP batch)."""
        if self._libs_of != blas_choice.generation():
            self._libs, self._libs_of = {}, blas_choice.generation()
        libs = self._libs.get((m, backward))
        if libs is None:
            libs = self._libs[(m, backward)] = self._ask_libs(m, backward)
        return libs

    def _ask_libs(self, m: int, backward: bool) -> np.ndarray:
        libs = np.zeros((len(self.layers), 3), dtype=np.int64)
        dt = self.dtype
        for i, (n_in, n_out) in enumerate(self.layout[:, 2:4].tolist()):
            if not backward:
                libs[i, 0] = blas.lib_for_shape(m, n_in, n_out, False, False, dt)
                continue
            libs[i, 1] = blas.lib_for_shape(n_in, m, n_out, True, False, dt)
            if i > 0 or self.input_grad:
                libs[i, 2] = blas.lib_for_shape(m, n_out, n_in, False, True, dt)
        return libs

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x2 = np.ascontiguousarray(x.reshape(-1, self.n_in), dtype=self.dtype)
        m = x2.shape[0]
        acts = np.empty(m * self.width, dtype=self.dtype)
        libs = self.libs(m, backward=False)
        stack_forward(x2, self.params, self.zeros, self.layout, self.slopes, libs, acts)
        if training:
            self._x, self._acts = x2, acts
        return acts[m * (self.width - self.n_out) :].reshape(*x.shape[:-1], self.n_out)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dy2 = np.ascontiguousarray(dy.reshape(-1, self.n_out), dtype=self.dtype)
        dx = np.empty((dy2.shape[0], self.n_in), self.dtype) if self.input_grad else self._no_dx
        libs = self.libs(dy2.shape[0], backward=True)
        stack_backward(
            self._x, self.params, self.grads, self.scratch, self.layout, self.slopes, libs,
            self._acts, dy2, dx,
        )  # fmt: skip
        self._x = self._acts = None
        return dx.reshape(*dy.shape[:-1], self.n_in) if self.input_grad else None


def group_dense(steps: list[Any], params: np.ndarray, grads: np.ndarray, starts: dict) -> list[Any]:
    """``steps`` with each run of two or more consecutive dense layers replaced by one
    :class:`DenseStack` (unchanged where kernels cannot call NumPy's BLAS)."""
    if not blas.available() or params.dtype not in (np.float32, np.float64):
        return list(steps)
    out: list[Any] = []
    run: list[Dense] = []
    for step in [*steps, None]:
        if isinstance(step, Dense):
            run.append(step)
            continue
        if len(run) >= 2:
            out.append(DenseStack(run, params, grads, starts))
        else:
            out.extend(run)
        run = []
        if step is not None:
            out.append(step)
    return out
