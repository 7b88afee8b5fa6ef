"""Which layers train as one fused step: the one place that decides.

A training pass is a list of steps. A :class:`Step` is anything with this shape; every
layer is one (a step of one layer), and the fused steps are:

- ``conv_pool.ConvPool``: a ``conv2d`` (identity or ReLU) and the 2x2, stride 2
  ``maxpool2d`` after it, from the convolution's product straight to the pooled maps;
- ``dense_stack.DenseStack``: a run of two or more ``dense`` layers, forward in one kernel
  call and backward in another (where Numba can call NumPy's BLAS).

Both give the same outputs and gradients as their layers run one by one (tested both
ways). With ``train.fuse: false`` the plan is the layers alone, so the code that runs is
the layers' own ``forward`` and ``backward``.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from dlrun.nn.fused.conv_pool import pair_conv_pool
from dlrun.nn.fused.dense_stack import group_dense
from dlrun.nn.layers.base import Layer


class Step(Protocol):
    """One unit of a training pass: a layer, or several layers fused."""

    name: str
    #: The layers this step computes, in order (a layer: itself alone).
    layers: tuple[Layer, ...]
    #: Whether ``backward`` returns dC/dx (false for the network's first trained step).
    input_grad: bool

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray: ...

    def backward(self, dy: np.ndarray) -> np.ndarray | None: ...


def plan_steps(
    layers: list[Layer],
    params: np.ndarray,
    grads: np.ndarray,
    starts: dict[tuple[Layer, str], int],
    fuse: bool = True,
) -> list[Any]:
    """The steps that run ``layers``: fused where ``fuse`` allows, else the layers alone.

    ``params``/``grads`` are the network's flat buffers, ``starts[(layer, key)]`` where
    each parameter tensor starts in them (the dense stack reads them directly).
    """
    if not fuse:
        return list(layers)
    return group_dense(pair_conv_pool(layers), params, grads, starts)


def describe(steps: list[Any]) -> list[str]:
    """One line per fused step, e.g. ``dense_1+dense_2 as one step (DenseStack)``; a line
    saying that every layer runs alone when none is fused."""
    lines = [
        f"{' + '.join(layer.name for layer in step.layers)} as one step ({type(step).__name__})"
        for step in steps
        if len(step.layers) > 1
    ]
    return lines or ["every layer runs its own forward and backward (no fused step)"]
