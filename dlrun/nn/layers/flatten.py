"""Flatten layer: any sample shape to one feature vector."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dlrun.config.registry import layers
from dlrun.errors import BuildError
from dlrun.nn.layers.base import Layer, Shape


@layers.register("flatten")
class Flatten(Layer):
    """Flatten: (C, H, W) (or any shape) -> (C*H*W,), e.g. between convolutions and dense layers.

    Forward: ``y[n] = x[n].reshape(-1)`` in row-major (C, H, W) order.
    Backward: the same numbers go back to their places, ``dx = dy.reshape(N, C, H, W)``.
    Shapes: x (N, *S) -> y (N, prod(S)). No parameters; no copy when x is contiguous.
    """

    example = {"config": {}, "input_shape": (2, 3, 4)}

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        shape = tuple(int(s) for s in input_shape)
        if not shape:
            raise BuildError(
                f"layer '{self.name}' (flatten) got scalar samples (input shape ()); "
                "it needs at least one feature axis"
            )
        self.input_shape = shape
        self.output_shape = (math.prod(shape),)
        return self.output_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        return x.reshape(x.shape[0], *self.output_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(dy.shape[0], *self.input_shape)
