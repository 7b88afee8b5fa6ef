"""Training controls that watch the per-epoch metrics: early stopping and best tracking."""

from __future__ import annotations

import math
from typing import Any


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
