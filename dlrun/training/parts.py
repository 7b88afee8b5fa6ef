"""The trainer's parts, built from a resolved config in one place.

Each section of the config becomes one object: ``optimizer`` an optimizer (owning its
state), ``schedule`` a learning-rate schedule, ``regularizers`` penalties with the parameter
views they apply to, ``train.clip`` and ``train.augment`` their typed settings, and
``train.early_stopping`` a :class:`BestTracker`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dlrun.config import registry
from dlrun.data.augment import AugmentConfig
from dlrun.nn.network import Network
from dlrun.optim.clipping import ClipConfig
from dlrun.training.callbacks import BestTracker


@dataclass
class Penalty:
    """A regularizer and the parameter and gradient arrays it applies to."""

    regularizer: Any
    weights: list[np.ndarray]
    grads: list[np.ndarray]


@dataclass
class Parts:
    optimizer: Any
    schedule: Any
    penalties: list[Penalty]
    clip: ClipConfig | None
    augment: AugmentConfig | None
    best: BestTracker


def penalised(net: Network, settings: Any) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The parameter and gradient views a regularizer applies to: the weights of the layers
    it names (all when none), biases only with ``include_biases``."""
    names = set(settings.layers or [])
    ws, gs = [], []
    for layer, key, value in net.param_items():
        if names and layer.name not in names:
            continue
        if key.startswith("b") and not settings.include_biases:
            continue
        ws.append(value)
        gs.append(layer.grads[key])
    return ws, gs


def build_parts(cfg: dict[str, Any], net: Network, has_val: bool) -> Parts:
    """Every object the trainer uses, from the resolved config ``cfg``."""
    train = cfg["train"]
    optimizer = registry.optimizers.build(cfg["optimizer"], net.params.size, net.dtype)
    schedule = registry.schedules.build(cfg["schedule"], cfg["optimizer"]["lr"])
    penalties = []
    for spec in cfg["regularizers"]:
        reg = registry.regularizers.build(spec)
        penalties.append(Penalty(reg, *penalised(net, reg.config)))
    es = train.get("early_stopping")
    monitor = es["monitor"] if es else ("val_loss" if has_val else "loss")
    best = BestTracker(
        monitor,
        es["mode"] if es else "auto",
        es["min_delta"] if es else 0.0,
        es["patience"] if es else None,
    )
    return Parts(
        optimizer=optimizer,
        schedule=schedule,
        penalties=penalties,
        clip=ClipConfig(**train["clip"]) if train.get("clip") else None,
        augment=AugmentConfig(**train["augment"]) if train.get("augment") else None,
        best=best,
    )
