"""How a dataset's labels become what the loss compares the network's output with."""

from __future__ import annotations

import numpy as np

from dlrun.kernels.metrics import argmax_hits
from dlrun.nn.network import Network


class Targets:
    """How labels become what the loss compares the output with.

    cross_entropy: integer labels. binary_cross_entropy: labels as 0/1 floats.
    quadratic on a classification task: one-hot rows (or the label itself for
    one output unit), with -1 instead of 0 when the last layer's output range
    is symmetric (tanh, sign, softsign), as the perceptron's +-1 targets.
    """

    def __init__(self, net: Network, task: str) -> None:
        self.net, self.task = net, task
        self.n_out = net.output_shape[-1]
        last = net.layers[-1]
        rng_ = getattr(last, "output_range", None)
        self.low = -1.0 if rng_ is not None and rng_[0] < 0 else 0.0

    def encode(self, y: np.ndarray) -> np.ndarray:
        loss = self.net.loss
        if self.task != "classification" or loss.integer_targets:
            return y
        if self.n_out == 1:
            t = np.where(y == 1, 1.0, self.low)[..., None]
        else:
            t = np.full((*y.shape, self.n_out), self.low)
            np.put_along_axis(t, y[..., None].astype(np.int64), 1.0, axis=-1)
        return t.astype(self.net.dtype)

    def predict_labels(self, loss_input: np.ndarray) -> np.ndarray:
        """Class labels from the loss input (logits when fused, outputs otherwise)."""
        if self.n_out == 1:
            mid = 0.0 if self.net.fused else (self.low + 1.0) / 2
            return (loss_input[..., 0] > mid).astype(np.int64)
        return np.argmax(loss_input, axis=-1)

    def count_correct(self, loss_input: np.ndarray, y: np.ndarray) -> int:
        """How many predicted labels equal ``y``."""
        if self.n_out == 1:
            return int(np.sum(self.predict_labels(loss_input) == y))
        return argmax_hits(loss_input.reshape(-1, self.n_out), y.reshape(-1))
