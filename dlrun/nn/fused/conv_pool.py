"""A convolution and the 2x2 max-pool after it, trained as one step.

``conv2d`` (identity or ReLU) followed by ``maxpool2d`` with 2x2 windows and
stride 2 is the course's CNN block. Trained layer by layer, the full feature
maps are written by the convolution, read by the pool, and in backward written
again in full (zero but at each window's winner) for the convolution to read.
:class:`ConvPool` runs the pair from the convolution's matrix product straight
to the pooled maps, and back (``dlrun.kernels.conv_pool``): the same values,
winners and gradients, without the full maps.

A first convolution (no dC/dx, one 3x3 input channel) with even output sizes keeps
its columns in pooling-phase order (``kernels.conv_pool.im2col_phased``): the four
pixels of each window in four separate blocks, which the pool and the weight
gradient read along contiguous memory (``python scripts/bench.py cnn --what order``).

The two layers stay what the config says (their shapes, parameters and
per-layer gradient checks are theirs); ``Network``'s training and evaluation
passes run the pair through this step where ``fused.plan`` says so.
"""

from __future__ import annotations

import numpy as np

from dlrun.kernels.conv_pool import (
    phased_to_pooled,
    phased_weight_grad,
    pooled_to_rows,
    pooled_weight_grad,
    rows_to_pooled,
)
from dlrun.nn.layers import conv2d
from dlrun.nn.layers.base import Layer
from dlrun.nn.layers.conv2d import Conv2D
from dlrun.nn.layers.pool2d import MaxPool2D

#: Images per matrix product when a first convolution's product is pooled in chunks
#: (its backward needs only the columns): 16 28x28 images by 32 filters are 1.6 MB.
TRAIN_CHUNK = 16


class ConvPool:
    """``maxpool2d(conv2d(x))``: forward to the pooled maps, backward from them.

    Shapes: x (N, C, H, W) -> y (N, F, Ho // 2, Wo // 2), where (F, Ho, Wo) is the
    convolution's output shape.
    """

    def __init__(self, conv: Conv2D, pool: MaxPool2D) -> None:
        self.conv, self.pool = conv, pool
        self.layers = (conv, pool)
        self.name = f"{conv.name}+{pool.name}"

    @property
    def input_grad(self) -> bool:
        return self.conv.input_grad

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        conv = self.conv
        x = np.ascontiguousarray(x, dtype=conv.dtype)
        n = x.shape[0]
        y = np.empty((n, *self.pool.output_shape), dtype=conv.dtype)
        code = np.empty(y.shape, dtype=np.uint8)
        if training:
            conv.keep_for_backward(self._pool_product(x, y, code), n, None)
            self._y, self._code = y, code
            return y
        # evaluation: in chunks, in the training buffers (as the convolution alone)
        conv.forget_training()
        self._y = self._code = None
        for i in range(0, n, conv2d.EVAL_CHUNK):
            part = slice(i, i + conv2d.EVAL_CHUNK)
            self._pool_product(x[part], y[part], code[part])
        return y

    def _pool_product(self, x: np.ndarray, y: np.ndarray, code: np.ndarray) -> np.ndarray:
        """The pooled maps ``y`` and winners ``code`` of the images ``x``; returns their
        columns. A first layer's backward needs only the columns, not the product: it is
        made and pooled TRAIN_CHUNK images at a time, each chunk still in cache when
        pooled, and never held whole."""
        conv = self.conv
        relu, wo = conv.config.activation == "relu", conv.output_shape[2]
        if not conv.weight_grad_from_dy:
            cols, rows = conv.product(x, "cols", "rows")
            rows_to_pooled(rows, conv.bias, relu, wo, y, code)
            return cols
        cols = conv.columns(x, "cols", phased=self.phased)
        p = cols.shape[1] // len(x)  # positions per image
        n, f = y.shape[:2]
        y_flat, code_flat = y.reshape(n, f, -1), code.reshape(n, f, -1)
        for a in range(0, len(x), TRAIN_CHUNK):
            b = min(a + TRAIN_CHUNK, len(x))
            rows = conv.rows_of(cols[:, a * p : b * p], "rows")
            if self.phased:
                phased_to_pooled(rows, conv.bias, relu, y_flat[a:b], code_flat[a:b])
            else:
                rows_to_pooled(rows, conv.bias, relu, wo, y[a:b], code[a:b])
        return cols

    @property
    def phased(self) -> bool:
        """Whether a first layer's columns go in pooling-phase order
        (``kernels.conv_pool.im2col_phased``): for even output sizes, where every pixel
        belongs to one pooling window."""
        _, ho, wo = self.conv.output_shape
        return self.conv.weight_grad_from_dy and ho % 2 == 0 and wo % 2 == 0

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        conv = self.conv
        cols = conv.training_cols()
        dy = np.ascontiguousarray(dy, dtype=conv.dtype).reshape(self._y.shape)
        relu = conv.config.activation == "relu"
        _, ho, wo = conv.output_shape
        db = conv.bias_grad()
        if self.phased:
            n, f = dy.shape[:2]
            flat = (a.reshape(n, f, -1) for a in (dy, self._y, self._code))
            phased_weight_grad(*flat, relu, cols, conv.weight_grad(), db)
            return None
        if conv.weight_grad_from_dy:
            pooled_weight_grad(dy, self._y, self._code, relu, ho, wo, cols, conv.weight_grad(), db)
            return None
        rows = conv.scratch("rows", (conv.config.filters, cols.shape[1]))
        pooled_to_rows(dy, self._y, self._code, relu, ho, wo, rows, db)
        return conv.grads_from_rows(rows)


def pair_conv_pool(layers: list[Layer]) -> list[Layer | ConvPool]:
    """``layers`` with each conv2d -> 2x2 max-pool pair replaced by one :class:`ConvPool`."""
    steps: list[Layer | ConvPool] = []
    i = 0
    while i < len(layers):
        layer, after = layers[i], layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, Conv2D) and isinstance(after, MaxPool2D) and after.windows_2x2:
            steps.append(ConvPool(layer, after))
            i += 2
        else:
            steps.append(layer)
            i += 1
    return steps
