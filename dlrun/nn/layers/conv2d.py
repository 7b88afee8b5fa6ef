"""2-D convolution layer (NCHW), computed as im2col + one BLAS matrix product
(``kernels.blas``: on the library chosen for its shape).

im2col + GEMM measured faster than jitted direct loops for both convolutions of the
course's CNN (``python scripts/bench.py cnn --what conv``; docs/performance.md).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import Field, NonNegativeInt, PositiveInt

from dlrun.config.registry import layers
from dlrun.config.settings import Settings
from dlrun.errors import BuildError
from dlrun.kernels import blas
from dlrun.kernels.conv import col2im, im2col, masked_weight_grad, nchw_to_rows, rows_to_nchw
from dlrun.kernels.conv_pool import im2col_phased
from dlrun.nn.layers.base import Layer, Shape

IntPair = PositiveInt | tuple[PositiveInt, PositiveInt]

#: A layer that computes no dC/dx (the first) and has at most this many rows in its columns
#: (C*kh*kw: one 3x3 input channel) gets dW straight from dy (kernels.conv.masked_weight_grad);
#: measured faster for K = 9, slower for K = 27 (``python scripts/bench.py cnn --what conv``).
SMALL_K = 9

#: Samples per im2col pass in evaluation mode: bounds the work memory of a big predict batch
#: (the same buffers as a training batch of 64).
EVAL_CHUNK = 64


def pair(value: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    """``3 -> (3, 3)``; ``(3, 5) -> (3, 5)``: a size given for (height, width)."""
    if isinstance(value, int):
        return (value, value)
    a, b = value
    return (int(a), int(b))


def image_shape(layer: Layer, input_shape: Shape) -> tuple[int, int, int]:
    """``(C, H, W)`` from ``input_shape``, or a BuildError saying how to get there."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        return shape  # type: ignore[return-value]
    if len(shape) in (1, 2) and "reshape" in layers:
        target = [1, *shape] if len(shape) == 2 else [1, 28, 28]
        fix = (
            "add a reshape to (channels, height, width) before it, "
            f"e.g. {{type: reshape, shape: {target}}}"
        )
    elif len(shape) == 2:
        fix = f"give the images a channel axis: shape (1, {shape[0]}, {shape[1]})"
    elif len(shape) == 1:
        fix = (
            "flat feature vectors cannot be convolved: use an image dataset "
            "(mnist and fashion_mnist give (1, 28, 28)), or dense layers for flat features; "
            "a flatten layer belongs after the convolutions, not before"
        )
    else:
        fix = "give it images of shape (channels, height, width)"
    raise BuildError(
        f"layer '{layer.name}' ({layer.registered_name}) needs inputs of shape "
        f"(channels, height, width), got input shape {shape}",
        hint=fix,
    )


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) zero padding so that the output has ceil(size / stride) positions.

    As in TensorFlow/Keras: the total padding is split evenly, the odd pixel going after.
    """
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@layers.register("conv2d")
class Conv2D(Layer):
    """2-D convolution: F learned kh x kw filters slid over (C, H, W) images.

    Forward (cross-correlation, as in deep-learning libraries; x is 0 in the padding)::

        y[n, f, oy, ox] = b[f] + sum_{c,i,j} W[f, c, i, j] * x[n, c, oy*sh - ph + i, ox*sw - pw + j]

    computed as ``Y = W.reshape(F, C*kh*kw) @ im2col(x)``.

    Backward, with the same columns ``cols = im2col(x)``::

        dL/dW = dY @ cols.T                  (summed over the batch and positions)
        dL/db[f] = sum_{n, oy, ox} dy[n, f, oy, ox]
        dL/dx = col2im(W.T @ dY)             (each pixel sums over every window holding it)

    With ``activation: relu`` the output is max(0, y) in the same pass, and backward
    first multiplies dy by [y > 0].

    Shapes: x (N, C, H, W) -> y (N, F, Ho, Wo), Ho = (H + pad_h - kh) // sh + 1;
    W (F, C, kh, kw), b (F,). ``padding``: ``valid`` (none), ``same`` (Ho = ceil(H / sh),
    as in Keras) or a number of zero pixels on each side (an int, or a pair for (h, w)).
    """

    class Config(Settings):
        filters: PositiveInt = Field(..., description="number of filters F (output channels)")
        kernel_size: IntPair = Field(3, description="window kh x kw: an int or [kh, kw]")
        stride: IntPair = Field(1, description="step between windows: an int or [sh, sw]")
        padding: (
            Literal["valid", "same"] | NonNegativeInt | tuple[NonNegativeInt, NonNegativeInt]
        ) = Field("valid", description="valid, same, or zero pixels per side: int or [ph, pw]")
        bias: bool = Field(True, description="learn a bias b per filter")
        init: str | None = Field(None, description="initializer of W (default: model.init)")
        activation: Literal["identity", "relu"] = Field(
            "identity", description="relu: fused max(0, .) (saves a pass over the feature maps)"
        )

    example = [
        {
            "config": {"filters": 3, "kernel_size": 3, "padding": "same"},
            "input_shape": (2, 5, 4),
        },
        {
            "config": {"filters": 2, "kernel_size": [2, 3], "stride": 2, "padding": 1},
            "input_shape": (1, 5, 6),
        },
        {
            "config": {"filters": 2, "kernel_size": 3, "padding": 1, "activation": "relu"},
            "input_shape": (2, 4, 4),
        },
    ]

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        cfg = self.config
        self.has_kinks = cfg.activation == "relu"
        c, h, w = image_shape(self, input_shape)
        kh, kw = pair(cfg.kernel_size)
        sh, sw = pair(cfg.stride)
        if cfg.padding == "valid":
            pads_h, pads_w = (0, 0), (0, 0)
        elif cfg.padding == "same":
            pads_h, pads_w = same_padding(h, kh, sh), same_padding(w, kw, sw)
        else:
            ph, pw = pair(cfg.padding)
            pads_h, pads_w = (ph, ph), (pw, pw)
        hp, wp = h + sum(pads_h), w + sum(pads_w)
        if kh > hp or kw > wp:
            raise BuildError(
                f"layer '{self.name}' (conv2d): kernel_size {kh}x{kw} is larger than its "
                f"padded input {hp}x{wp} (input shape {(c, h, w)}, padding {cfg.padding!r})",
                hint="use a smaller kernel_size, padding: same, or fewer pooling layers before it",
            )
        self.input_shape = (c, h, w)
        self._geometry = (kh, kw, sh, sw, pads_h[0], pads_w[0])
        self._out_hw = ((hp - kh) // sh + 1, (wp - kw) // sw + 1)
        f = cfg.filters
        self.dtype = np.dtype(dtype)
        self.add_param(
            "W",
            self.init_array((f, c, kh, kw), c * kh * kw, f * kh * kw, rng, self.dtype, cfg.init),
        )
        if cfg.bias:
            self.add_param("b", np.zeros(f, dtype=self.dtype))
        self._no_bias = np.zeros(f, dtype=self.dtype)
        self._work: dict[str, np.ndarray] = {}
        self._cols: np.ndarray | None = None  # the training batch's columns, for backward
        self.output_shape = (f, *self._out_hw)
        return self.output_shape

    def scratch(self, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """A work array of ``shape``: the front of a flat buffer kept between calls.

        The buffer only grows (to the largest batch seen), so full batches and the
        smaller last batch of an epoch share it without reallocating.
        """
        size = math.prod(shape)
        buf = self._work.get(key)
        if buf is None or buf.size < size:
            buf = self._work[key] = np.empty(size, dtype=self.dtype)
        return buf[:size].reshape(shape)

    def columns(self, x: np.ndarray, cols_key: str, phased: bool = False) -> np.ndarray:
        """im2col of a (sub)batch into a scratch buffer: ``cols`` (C*kh*kw, N*Ho*Wo); with
        ``phased``, each image's columns in pooling-phase order (even Ho and Wo:
        ``kernels.conv_pool.im2col_phased``)."""
        kh, kw, sh, sw, ph, pw = self._geometry
        ho, wo = self._out_hw
        cols = self.scratch(cols_key, (self.input_shape[0] * kh * kw, x.shape[0] * ho * wo))
        (im2col_phased if phased else im2col)(x, kh, kw, sh, sw, ph, pw, ho, wo, cols)
        return cols

    def rows_of(self, cols: np.ndarray, rows_key: str) -> np.ndarray:
        """``rows = W @ cols`` (F, columns) into a scratch buffer: the product before bias
        and activation (the GEMM layout)."""
        f = self.config.filters
        rows = self.scratch(rows_key, (f, cols.shape[1]))
        blas.matmul(self.params["W"].reshape(f, -1), cols, out=rows)
        return rows

    def product(self, x: np.ndarray, cols_key: str, rows_key: str) -> tuple[np.ndarray, np.ndarray]:
        """im2col and the one matrix product for a (sub)batch, through scratch buffers:
        ``cols`` (C*kh*kw, N*Ho*Wo) and ``rows = W @ cols`` (F, N*Ho*Wo)."""
        cols = self.columns(x, cols_key)
        return cols, self.rows_of(cols, rows_key)

    @property
    def bias(self) -> np.ndarray:
        return self.params["b"] if self.config.bias else self._no_bias

    def _convolve(self, x: np.ndarray, y: np.ndarray, cols_key: str, rows_key: str) -> np.ndarray:
        """``y = conv(x)`` for one (sub)batch through scratch buffers; returns the columns."""
        cols, rows = self.product(x, cols_key, rows_key)
        n, f = x.shape[0], self.config.filters
        rows_to_nchw(rows, self.bias, y.reshape(n, f, -1), self.config.activation == "relu")
        return cols

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        n = x.shape[0]
        y = np.empty((n, *self.output_shape), dtype=self.dtype)
        if training:  # keep the columns of the whole batch for backward
            self.keep_for_backward(self._convolve(x, y, "cols", "rows"), n, y)
        else:  # evaluation: bounded memory whatever the batch size, columns not kept
            self.forget_training()
            for i in range(0, n, EVAL_CHUNK):
                self._convolve(x[i : i + EVAL_CHUNK], y[i : i + EVAL_CHUNK], "cols", "rows")
        return y

    def keep_for_backward(self, cols: np.ndarray, n: int, y: np.ndarray | None) -> None:
        """What backward needs of a training batch of ``n`` images: its columns, and the
        outputs ``y`` (for ReLU's mask; a fused step that applies the mask itself passes
        None)."""
        self._cols, self._n, self._y = cols, n, y

    def forget_training(self) -> None:
        """Before an evaluation: the training batch's columns are not kept, so that the
        evaluation works in the same buffers instead of adding its own (a backward now
        needs a new training forward)."""
        self._cols = self._y = None

    def backward(self, dy: np.ndarray) -> np.ndarray:
        cols = self.training_cols()
        n, f = self._n, self.config.filters
        dy = np.ascontiguousarray(dy, dtype=self.dtype).reshape(n, f, -1)
        relu = self.config.activation == "relu"
        mask = self._y.reshape(n, f, -1) if relu else dy
        db = self.bias_grad()
        if self.weight_grad_from_dy:
            masked_weight_grad(dy, mask, relu, cols, self.weight_grad(), db)
            return None  # type: ignore[return-value]
        rows = self.scratch("rows", (f, cols.shape[1]))  # now dY, in the GEMM layout
        nchw_to_rows(dy, mask, relu, rows, db)
        return self.grads_from_rows(rows)

    @property
    def weight_grad_from_dy(self) -> bool:
        """dC/dW straight from dy, without dY in the GEMM layout: a layer that computes no
        dC/dx (the first) with at most SMALL_K rows (C*kh*kw) in its columns."""
        return not self.input_grad and math.prod(self.params["W"].shape[1:]) <= SMALL_K

    def training_cols(self) -> np.ndarray:
        """The columns the last training forward kept (an error without one)."""
        if self._cols is None:
            raise RuntimeError(f"layer '{self.name}': backward needs a training forward first")
        return self._cols

    def weight_grad(self) -> np.ndarray:
        """dC/dW as (F, C*kh*kw), a view that writes through to ``grads["W"]``."""
        dw = self.grads["W"].reshape(self.config.filters, -1)
        if not np.may_share_memory(dw, self.grads["W"]):
            raise RuntimeError(f"layer '{self.name}': grads['W'] must be C-contiguous")
        return dw

    def bias_grad(self) -> np.ndarray:
        return self.grads["b"] if self.config.bias else self.scratch("db", (self.config.filters,))

    def grads_from_rows(self, rows: np.ndarray) -> np.ndarray | None:
        """Given dC/dY in the GEMM layout ``rows`` (F, N*Ho*Wo) (bias gradient done):
        dC/dW = dY @ cols.T, and dC/dx = col2im(W.T @ dY) when the layer computes it."""
        cols = self.training_cols()
        kh, kw, sh, sw, ph, pw = self._geometry
        ho, wo = self._out_hw
        # np.dot hands the transposed operand to BLAS as is (np.matmul copies it slowly)
        blas.dot(rows, cols.T, out=self.weight_grad())
        if not self.input_grad:
            return None
        dcols = cols  # the columns are spent: dC/dcols goes into their buffer
        blas.dot(self.params["W"].reshape(self.config.filters, -1).T, rows, out=dcols)
        dx = np.empty((self._n, *self.input_shape), dtype=self.dtype)
        col2im(dcols, kh, kw, sh, sw, ph, pw, ho, wo, dx)
        return dx
