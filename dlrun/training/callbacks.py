"""Training controls and probes: best tracking and early stopping, gradient through time."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def monitor_mode(metric: str, mode: str = "auto") -> str:
    """'max' for accuracies, 'min' for losses (unless given)."""
    if mode != "auto":
        return mode
    return "max" if "accuracy" in metric else "min"


class BestTracker:
    """Remembers the best value of one metric and the epoch it was reached.

    With ``patience`` set it is the course's early stopping: stop when the
    metric has not improved by more than ``min_delta`` for ``patience`` epochs.
    """

    def __init__(
        self, monitor: str, mode: str = "auto", min_delta: float = 0.0, patience: int | None = None
    ) -> None:
        self.monitor = monitor
        self.mode = monitor_mode(monitor, mode)
        self.min_delta = min_delta
        self.patience = patience
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = -1
        self.wait = 0

    def update(self, epoch: int, metrics: dict[str, Any]) -> bool:
        """Record this epoch's metrics; True when it is a new best."""
        value = metrics.get(self.monitor)
        if value is None or not math.isfinite(value):
            self.wait += 1
            return False
        better = (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if better or self.best_epoch < 0:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            return True
        self.wait += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.wait >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


def record_grad_through_time(
    net: Any, split: Any, targets: Any, stream: np.random.Generator, run: Any, when: str
) -> None:
    """A probe for recurrent layers: ||dC/dh_t||_2 for every time step t of one batch (the
    first 64 training sequences, C their mean cost), h_t the layer's hidden state (the
    ``rnn`` layer's S_t; for an ``lstm`` h_t, not the cell state C_t), as each layer's
    ``state_grad_norms`` holds it after a backward pass. Written to grad_through_time.json
    as {when: {layer: [norm per step]}, "layers": {layer: registered type}}.

    Runs on a copy of the dropout stream's state, so that training is unchanged.
    """
    recurrent = [layer for layer in net.layers if hasattr(layer, "state_grad_norms")]
    if not recurrent:
        return
    saved = stream.bit_generator.state
    n = min(64, len(split))
    x = split.take(slice(0, n), net.dtype)
    net.train_step_grads(x, targets.encode(split.y[:n]))
    stream.bit_generator.state = saved
    record = run.read_json("grad_through_time.json")
    record[when] = {layer.name: list(map(float, layer.state_grad_norms)) for layer in recurrent}
    record["layers"] = {layer.name: layer.registered_name for layer in recurrent}
    run.write_json("grad_through_time.json", record)
