"""Losses (costs) of the course, registered by name.

Each loss takes the network's last output (or, for the fused ones, the input
of its last layer: the logits) and the encoded targets, and returns the loss
averaged over the batch together with dC/d(input).

- ``quadratic``: C = 1/2 sum_k (t_k - o_k)^2, averaged over the batch. The 1/2 is a
  deliberate convention: dC/do = o - t (it is what makes the perceptron's gradient step
  Rosenblatt's rule); a cost written without it has the same minimum and twice the
  gradient, the same as twice the learning rate.
- ``cross_entropy``: C = -sum_k t_k ln o_k with o = softmax(z); fused with the
  final softmax layer, computed from the logits with the max subtracted, so
  large logits neither overflow nor give log(0).
- ``binary_cross_entropy``: C = -(t ln o + (1 - t) ln(1 - o)) with o = sigmoid(z),
  fused with the final sigmoid layer in the same way.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from dlrun.config.registry import losses
from dlrun.errors import DataError
from dlrun.kernels import losses as K


class Loss:
    """Base class: ``value_and_grad(o, t) -> (C, dC/do)``."""

    #: name of the final layer this loss is fused with (the network then feeds it logits)
    fuses: ClassVar[str | None] = None
    #: targets are integer labels (True) or float arrays (False)
    integer_targets: ClassVar[bool] = False

    def value_and_grad(self, o: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
        o2 = o.reshape(-1, o.shape[-1])
        grad = np.empty_like(o2)
        value = self.kernel(o2, self.rows(t, o2), grad)
        return float(value), grad.reshape(o.shape)

    @staticmethod
    def rows(t: np.ndarray, o2: np.ndarray) -> np.ndarray:
        """The targets as an array of ``o2``'s shape and dtype."""
        if t.size != o2.size:
            raise DataError(
                f"{t.size} target values for an output of {o2.size} values",
                hint="the network's output must have the targets' shape",
            )
        return np.ascontiguousarray(t, dtype=o2.dtype).reshape(o2.shape)


@losses.register("quadratic")
class Quadratic(Loss):
    """Quadratic cost 1/2 sum (t - o)^2, averaged over the batch (regression, or one-hot targets)."""

    kernel = staticmethod(K.quadratic)


@losses.register("cross_entropy")
class CrossEntropy(Loss):
    """Cross-entropy -sum t ln o on a final softmax (fused, stable for large logits)."""

    fuses = "softmax"
    integer_targets = True
    kernel = staticmethod(K.softmax_cross_entropy)

    @staticmethod
    def rows(t: np.ndarray, o2: np.ndarray) -> np.ndarray:
        """The labels as one int64 per row of ``o2``, each a valid column of it (the kernel
        indexes with them: a label out of range must never reach it)."""
        labels = np.ascontiguousarray(t, dtype=np.int64).reshape(-1)
        if labels.size != o2.shape[0]:
            raise DataError(
                f"cross_entropy: {labels.size} labels for {o2.shape[0]} output rows",
                hint="the network's output must have one row per label",
            )
        if labels.size and (labels.min() < 0 or labels.max() >= o2.shape[1]):
            raise DataError(
                f"cross_entropy: labels from {labels.min()} to {labels.max()}, but the output "
                f"has {o2.shape[1]} units (labels 0 to {o2.shape[1] - 1})",
                hint="give the last dense layer one unit per class (units: classes)",
            )
        return labels


@losses.register("binary_cross_entropy")
class BinaryCrossEntropy(Loss):
    """Binary cross-entropy on a final sigmoid (fused, stable for large logits)."""

    fuses = "sigmoid"
    kernel = staticmethod(K.sigmoid_binary_cross_entropy)
