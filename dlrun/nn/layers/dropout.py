"""Dropout (inverted): randomly silence units during training.

Training, with keep probability q = 1 - rate and a fresh mask m ~ Bernoulli(q)
per batch:   y = x * m / q,          dC/dx = dC/dy * m / q
Evaluation:  y = x                   (the 1/q scaling during training keeps the
                                      expected activation equal, so nothing changes here)

The mask is drawn from the run's ``dropout`` random stream, which is saved in
checkpoints, so a resumed run draws the same masks.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from dlrun.config.registry import layers
from dlrun.config.settings import Settings
from dlrun.nn.layers.base import Layer


@layers.register("dropout")
class Dropout(Layer):
    """Inverted dropout: zero each unit with probability rate while training, scale by 1/(1-rate)."""

    class Config(Settings):
        rate: float = Field(0.5, ge=0.0, lt=1.0, description="probability of dropping a unit")

    example = {"config": {"rate": 0.3}, "input_shape": (3, 4)}

    def __init__(self, config: Settings | None = None, name: str = "") -> None:
        super().__init__(config, name)
        self.rng = np.random.default_rng(0)

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        rate = self.config.rate
        if not training or rate == 0.0:
            self._scale = None
            return x
        keep = 1.0 - rate
        self._scale = (self.rng.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)
        return x * self._scale

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self._scale is None else dy * self._scale
