"""Gradient clipping, against exploding gradients (Pascanu, Mikolov & Bengio, 2013).

Three ways, all in place on a list of gradient arrays:

``value``        g_i <- min(max(g_i, -limit), limit)          each entry
``norm``         g <- g * limit / ||g||  if ||g|| > limit       each array on its own
``global_norm``  all g <- g * limit / N  if N > limit,  N = sqrt(sum over arrays ||g||^2)

``global_norm`` keeps the direction of the whole gradient; ``norm`` keeps
each array's direction; ``value`` changes the direction. Norms are computed
in float64. A NaN or infinite norm leaves the gradients untouched (scaling
cannot repair them; the NaN guard reports the divergence).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import Field

from dlrun.config.settings import Settings
from dlrun.kernels import clip as C
from dlrun.kernels.penalties import sum_squares
from dlrun.optim.regularizers import flat


class ClipConfig(Settings):
    """Gradient clipping settings (``train.clip`` in a config)."""

    mode: Literal["value", "norm", "global_norm"] = "global_norm"
    limit: float = Field(..., gt=0.0, description="largest value or norm allowed")


def global_norm(grads: Sequence[np.ndarray]) -> float:
    """sqrt(sum over arrays of sum g^2): the norm of all gradients as one vector."""
    return math.sqrt(sum(sum_squares(np.ravel(g)) for g in grads))


def clip_by_value(grads: Sequence[np.ndarray], limit: float) -> None:
    """Clip every entry to [-limit, limit], in place."""
    check_limit(limit)
    for i, g in enumerate(grads):
        C.clip_values(flat(g, f"grads[{i}]"), g.dtype.type(limit))


def clip_by_norm(grads: Sequence[np.ndarray], max_norm: float) -> list[float]:
    """Rescale each array whose L2 norm exceeds max_norm to that norm; return the norms before."""
    check_limit(max_norm)
    norms = []
    for i, g in enumerate(grads):
        view = flat(g, f"grads[{i}]")
        norm = math.sqrt(sum_squares(view))
        norms.append(norm)
        if math.isfinite(norm) and norm > max_norm:
            C.scale(view, g.dtype.type(max_norm / norm))
    return norms


def clip_by_global_norm(grads: Sequence[np.ndarray], max_norm: float) -> float:
    """Rescale all arrays together if their global norm exceeds max_norm; return the norm before."""
    check_limit(max_norm)
    views = [flat(g, f"grads[{i}]") for i, g in enumerate(grads)]
    norm = global_norm(views)
    if math.isfinite(norm) and norm > max_norm:
        for view in views:
            C.scale(view, view.dtype.type(max_norm / norm))
    return norm


def apply_clipping(config: ClipConfig | None, grads: Sequence[np.ndarray]) -> float:
    """Clip ``grads`` as ``config`` says (nothing when None); return the global norm before."""
    if config is None:
        return global_norm(grads)
    if config.mode == "global_norm":
        return clip_by_global_norm(grads, config.limit)
    if config.mode == "norm":
        return math.sqrt(sum(n * n for n in clip_by_norm(grads, config.limit)))
    norm = global_norm(grads)
    clip_by_value(grads, config.limit)
    return norm


def check_limit(limit: float) -> None:
    if not limit > 0:
        raise ValueError(f"clipping limit must be > 0, got {limit}")
