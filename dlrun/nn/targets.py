"""How a dataset's labels become what the loss compares the network's output with."""

from __future__ import annotations

import numpy as np

from dlrun.errors import BuildError
from dlrun.kernels.metrics import argmax_hits
from dlrun.nn.network import Network


def check_output(
    net: Network, task: str, n_classes: int | None, target_shape: tuple[int, ...]
) -> None:
    """A BuildError unless the network's output fits the dataset's targets and the loss,
    checked before any kernel runs (a kernel that indexes with labels must never see a
    label beyond the output's units).

    ``target_shape``: one sample's targets, e.g. () for a label, (T,) for a label per time
    step, (T, 1) for a value per time step.
    """
    out = tuple(net.output_shape)
    last = net.layers[-1]
    where = f"the network's output (layer '{last.name}', {last.registered_name}) has shape {out}"
    loss = net.loss.registered_name
    if task != "classification":
        if out != tuple(target_shape):
            raise BuildError(
                f"{where} per sample, but each sample's target has shape {tuple(target_shape)}",
                hint=_shape_hint(out, tuple(target_shape)),
            )
        return
    lead, units = out[:-1], out[-1]
    if lead != tuple(target_shape):
        raise BuildError(
            f"{where} per sample, but each sample has labels of shape {tuple(target_shape)} "
            f"({'one label' if not target_shape else 'one label per time step'})",
            hint=_shape_hint(lead, tuple(target_shape)),
        )
    if n_classes is None:
        return
    if loss == "binary_cross_entropy":
        if n_classes != 2 or units != 1:
            raise BuildError(
                f"{where}; binary_cross_entropy needs one output unit and two classes, "
                f"and the dataset has {n_classes} classes",
                hint="use cross_entropy with a softmax layer of one unit per class"
                if n_classes != 2
                else "give the last dense layer units: 1",
            )
    elif units != n_classes and not (loss == "quadratic" and n_classes == 2 and units == 1):
        raise BuildError(
            f"{where}: {units} output units for a dataset of {n_classes} classes",
            hint=f"give the last dense layer units: {n_classes} (or units: classes)",
        )


def _shape_hint(out: tuple[int, ...], want: tuple[int, ...]) -> str:
    if len(out) < len(want):
        return "a recurrent layer that feeds the output needs return_sequences: true"
    if len(out) > len(want):
        return (
            "the output keeps an axis the targets do not have (a dense layer acts on the last "
            "axis only): flatten first, or give the last recurrent layer return_sequences: false"
        )
    return f"the last layer should give {want} per sample"


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
