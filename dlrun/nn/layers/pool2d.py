"""2-D pooling layers (NCHW): max pooling and average pooling, no parameters."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from dlrun.config.registry import layers
from dlrun.config.settings import Settings
from dlrun.errors import BuildError
from dlrun.kernels.pool import (
    avgpool_backward,
    avgpool_forward,
    maxpool_backward,
    maxpool_backward_2x2,
    maxpool_forward,
    maxpool_forward_2x2,
)
from dlrun.nn.layers.base import Layer, Shape
from dlrun.nn.layers.conv2d import IntPair, image_shape, pair


class _Pool2D(Layer):
    """Shared settings and shape logic of the pooling layers."""

    class Config(Settings):
        size: IntPair = Field(2, description="window kh x kw: an int or [kh, kw]")
        stride: IntPair | None = Field(
            None, description="step between windows (default: size, windows do not overlap)"
        )

    example: ClassVar[Any] = [
        {"config": {"size": 2}, "input_shape": (2, 4, 5)},
        {"config": {"size": [3, 2], "stride": 1}, "input_shape": (1, 4, 4)},
    ]

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        c, h, w = image_shape(self, input_shape)
        kh, kw = pair(self.config.size)
        sh, sw = pair(self.config.stride if self.config.stride is not None else self.config.size)
        if kh > h or kw > w:
            raise BuildError(
                f"layer '{self.name}' ({self.registered_name}): window size {kh}x{kw} is larger "
                f"than its input {h}x{w} (input shape {(c, h, w)})",
                hint="use a smaller size, padding: same in the convolutions before it, "
                "or fewer pooling layers",
            )
        self.dtype = np.dtype(dtype)
        self.input_shape = (c, h, w)
        self._geometry = (kh, kw, sh, sw)
        #: non-overlapping 2x2 windows: max pooling's fast path (and a fused step's)
        self.windows_2x2 = self._geometry == (2, 2, 2, 2)
        self.output_shape = (c, (h - kh) // sh + 1, (w - kw) // sw + 1)
        return self.output_shape

    def _planes(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x`` as (N*C, H, W) planes and a fresh output of (N*C, Ho, Wo)."""
        x = np.ascontiguousarray(x, dtype=self.dtype)
        self._n = x.shape[0]
        c, h, w = self.input_shape
        y = np.empty((self._n * c, *self.output_shape[1:]), dtype=self.dtype)
        return x.reshape(self._n * c, h, w), y

    def _unplanes(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``dy`` as (N*C, Ho, Wo) planes and a fresh input gradient of (N*C, H, W)."""
        c, h, w = self.input_shape
        dy = np.ascontiguousarray(dy, dtype=self.dtype).reshape(self._n * c, *self.output_shape[1:])
        return dy, np.empty((self._n * c, h, w), dtype=self.dtype)


@layers.register("maxpool2d")
class MaxPool2D(_Pool2D):
    """Max pooling: the largest value of each size x size window, per channel.

    Forward::

        y[n, c, oy, ox] = max_{i, j} x[n, c, oy*sh + i, ox*sw + j]

    Backward: the gradient flows only to the pixel that won its window (the
    derivative of max is 1 for the maximum, 0 for the others)::

        dx[n, c, iy, ix] = sum of dy[n, c, oy, ox] over the windows won by (iy, ix)

    Ties go to the first maximum in row-major window order (top row first, then
    leftmost), so results are deterministic.

    Shapes: (N, C, H, W) -> (N, C, Ho, Wo), Ho = (H - size) // stride + 1; pixels
    past the last full window are dropped. ``stride`` defaults to ``size``.
    """

    has_kinks = True

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        planes, y = self._planes(x)
        if self.windows_2x2:  # the common case: non-overlapping 2 x 2 windows
            self._arg = np.empty(y.shape, dtype=np.uint8)  # winner's place 0..3
            maxpool_forward_2x2(planes, y, self._arg)
        else:
            self._arg = np.empty(y.shape, dtype=np.int32)
            maxpool_forward(planes, *self._geometry, y, self._arg)
        return y.reshape(self._n, *self.output_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy, dx = self._unplanes(dy)
        if self.windows_2x2:
            maxpool_backward_2x2(dy, self._arg, dx)
        else:
            maxpool_backward(dy, self._arg, dx)
        return dx.reshape(self._n, *self.input_shape)


@layers.register("avgpool2d")
class AvgPool2D(_Pool2D):
    """Average pooling: the mean of each size x size window, per channel.

    Forward::

        y[n, c, oy, ox] = 1/(kh*kw) * sum_{i, j} x[n, c, oy*sh + i, ox*sw + j]

    Backward: each window shares its gradient equally among its pixels::

        dx[n, c, iy, ix] = 1/(kh*kw) * sum of dy[n, c, oy, ox] over the windows holding (iy, ix)

    Shapes: (N, C, H, W) -> (N, C, Ho, Wo), Ho = (H - size) // stride + 1; pixels
    past the last full window are dropped. ``stride`` defaults to ``size``.
    """

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        planes, y = self._planes(x)
        avgpool_forward(planes, *self._geometry, y)
        return y.reshape(self._n, *self.output_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy, dx = self._unplanes(dy)
        avgpool_backward(dy, *self._geometry, dx)
        return dx.reshape(self._n, *self.input_shape)
