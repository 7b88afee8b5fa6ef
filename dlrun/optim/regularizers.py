"""Weight penalties: the cost becomes J~(w) = J(w) + alpha Omega(w).

``l1``: Omega = sum_i |w_i|,      dOmega/dw = sign(w)    (drives weights to exactly 0)
``l2``: Omega = 1/2 sum_i w_i^2,  dOmega/dw = w          (weight decay)

The 1/2 in L2 is a deliberate convention (Goodfellow et al.'s, ch. 7.1): its
gradient is then alpha w, and with plain gradient descent the update is
w <- (1 - eta alpha) w - eta g, "weight decay" with rate eta alpha. A penalty
written without the 1/2, alpha sum_i w_i^2 (Keras' ``l2(alpha)``), has gradient
2 alpha w: dlrun's with twice the alpha.

The trainer chooses which arrays are penalised (weights, not biases, unless
``include_biases``; only the layers listed in ``layers`` when given) and
passes them as lists::

    reg = regularizers.get("l2")(L2.Config(alpha=1e-4))
    cost = loss + reg.penalty(weights)
    reg.add_grad(weights, grads)        # grads[i] += alpha dOmega/dw_i, in place
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from pydantic import Field

from dlrun.config.registry import regularizers
from dlrun.config.settings import Settings
from dlrun.kernels import penalties as K


def flat(array: np.ndarray, what: str) -> np.ndarray:
    """A 1-D view of ``array`` (which must be C-contiguous, so that writes reach it)."""
    if not array.flags.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous to be updated in place")
    return array.reshape(-1)


def check_pairs(weights: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
    if len(weights) != len(grads):
        raise ValueError(f"{len(weights)} weight arrays but {len(grads)} gradient arrays")
    for i, (w, g) in enumerate(zip(weights, grads, strict=True)):
        if w.shape != g.shape or w.dtype != g.dtype:
            raise ValueError(
                f"weights[{i}] is {w.dtype} {w.shape} but grads[{i}] is {g.dtype} {g.shape}"
            )


class Regularizer:
    """Base class of every weight penalty."""

    class Config(Settings):
        name: str
        alpha: float = Field(..., ge=0.0, description="strength: J~ = J + alpha Omega")
        include_biases: bool = Field(False, description="penalise biases too")
        layers: list[str] | None = Field(None, description="only these layers (default: all)")

    def __init__(self, config: Config) -> None:
        self.config = config

    def omega(self, w: np.ndarray) -> float:
        """Omega of one flat array."""
        raise NotImplementedError

    def add_omega_grad(self, w: np.ndarray, g: np.ndarray, alpha: np.floating) -> None:
        """g += alpha dOmega/dw for one pair of flat arrays."""
        raise NotImplementedError

    def penalty(self, weights: Sequence[np.ndarray]) -> float:
        """alpha Omega(weights): the term added to the cost."""
        return self.config.alpha * sum(self.omega(np.ravel(w)) for w in weights)

    def add_grad(self, weights: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> None:
        """grads[i] += alpha dOmega/dw_i, in place."""
        check_pairs(weights, grads)
        if self.config.alpha == 0.0:
            return
        for w, g in zip(weights, grads, strict=True):
            alpha = g.dtype.type(self.config.alpha)
            self.add_omega_grad(np.ravel(w), flat(g, "grads"), alpha)


@regularizers.register("l1")
class L1(Regularizer):
    """L1 penalty: Omega = sum |w|, gradient alpha sign(w) (sparse weights).

    sign(0) = 0, the subgradient that leaves a weight at exactly zero alone.
    """

    class Config(Regularizer.Config):
        name: str = "l1"

    def omega(self, w: np.ndarray) -> float:
        return K.sum_abs(w)

    def add_omega_grad(self, w: np.ndarray, g: np.ndarray, alpha: np.floating) -> None:
        K.add_l1_grad(w, g, alpha)


@regularizers.register("l2")
class L2(Regularizer):
    """L2 penalty (weight decay): Omega = 1/2 sum w^2, gradient alpha w."""

    class Config(Regularizer.Config):
        name: str = "l2"

    def omega(self, w: np.ndarray) -> float:
        return 0.5 * K.sum_squares(w)

    def add_omega_grad(self, w: np.ndarray, g: np.ndarray, alpha: np.floating) -> None:
        K.add_l2_grad(w, g, alpha)


def sparsity(weights: Sequence[np.ndarray], tol: float = 1e-3) -> float:
    """Fraction of entries with |w| < tol over all arrays (0.0 when there are none)."""
    total = sum(w.size for w in weights)
    if total == 0:
        return 0.0
    small = sum(K.count_small(np.ravel(w), w.dtype.type(tol)) for w in weights)
    return small / total
