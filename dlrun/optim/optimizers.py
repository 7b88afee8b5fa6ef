"""Optimizers, from the simplest to the most complex.

The network keeps every parameter in one flat buffer ``params`` (1-D, float32
or float64) and every gradient in ``grads`` (same shape and dtype). An
optimizer owns its state arrays (velocity, accumulators, moments) and its step
count ``t``, and updates ``params`` in place::

    opt = optimizers.get("adam")(Adam.Config(lr=1e-3), size=params.size, dtype=params.dtype)
    opt.step(params, grads, lr)          # lr comes from the schedule, once per batch

The base class validates and keeps the books (state arrays, step count,
``state_dict`` / ``load_state_dict``); each optimizer writes only its update
rule, a call to one fused kernel of :mod:`dlrun.kernels.optim`. Scalars are
cast to the parameters' dtype so that float32 runs stay float32.

Where well-known implementations differ, the choice is written in the
docstring and the other one is a setting: ``eps_inside_sqrt`` moves epsilon
from ``sqrt(r) + eps`` (the default, as in the Adam paper and PyTorch) to
``sqrt(r + eps)`` (as in Goodfellow et al.'s RMSProp and AdaDelta).

The eps defaults are deliberate choices, each optimizer's from its paper or PyTorch:
AdaGrad 1e-7 (the course's value), AdaDelta 1e-6 inside the root, RMSProp, Adam,
AdaMax and Nadam 1e-8. eps only keeps the division finite: it changes a step only
while sqrt(r) is not much larger than eps.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from dlrun.config.registry import optimizers
from dlrun.config.settings import Settings
from dlrun.errors import CheckpointError, ConfigError
from dlrun.kernels import optim as K


class Optimizer:
    """Base class of every optimizer."""

    class Config(Settings):
        name: str
        lr: float = Field(0.01, gt=0, description="base learning rate (eta)")

    #: Names of the per-parameter state arrays (each of shape ``(size,)``).
    state_arrays: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: Config, size: int, dtype: Any) -> None:
        self.config = config
        self.size = int(size)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ConfigError(
                f"optimizer '{config.name}': parameters must be float32 or float64, "
                f"got {self.dtype}"
            )
        #: Number of updates done so far (Adam's t after the update is t).
        self.t = 0
        self.state: dict[str, np.ndarray] = {
            key: np.zeros(self.size, dtype=self.dtype) for key in self.state_arrays
        }
        #: Scalar state besides ``t`` (e.g. Nadam's product of momentum factors).
        self.scalars: dict[str, float] = {}

    # -- the update rule, written by each optimizer -------------------------
    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        raise NotImplementedError

    # -- bookkeeping ---------------------------------------------------------
    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        """One update of ``params`` in place from ``grads`` with learning rate ``lr``."""
        for what, array in (("params", params), ("grads", grads)):
            if array.shape != (self.size,) or array.dtype != self.dtype:
                raise ValueError(
                    f"optimizer '{self.config.name}': {what} must be a flat {self.dtype} array "
                    f"of shape ({self.size},), got {array.dtype} {array.shape}"
                )
        self.t += 1
        self.update(params, grads, lr)

    def scalar(self, x: float) -> np.floating:
        """``x`` in the parameters' dtype (keeps float32 kernels in float32)."""
        return self.dtype.type(x)

    def state_dict(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Every state array (copies, or the live arrays with ``copy=False``), the step count
        and scalar state as 0-d arrays."""
        state = {"step": np.array(self.t, dtype=np.int64)}
        for key, value in self.scalars.items():
            state[key] = np.array(value, dtype=np.float64)
        for key, array in self.state.items():
            state[key] = array.copy() if copy else array
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore what :meth:`state_dict` saved; a CheckpointError if it does not fit."""
        name = self.config.name
        expected = {"step", *self.scalars, *self.state}
        missing = sorted(expected - set(state))
        extra = sorted(set(state) - expected)
        if missing or extra:
            raise CheckpointError(
                f"optimizer '{name}' state: missing {missing or 'nothing'}, "
                f"unexpected {extra or 'nothing'}; expected keys {sorted(expected)}"
            )
        for key in ("step", *self.scalars):
            if np.shape(state[key]) != ():
                raise CheckpointError(
                    f"optimizer '{name}' state '{key}' must be a scalar, "
                    f"got shape {np.shape(state[key])}"
                )
        for key in self.state:
            if np.shape(state[key]) != (self.size,):
                raise CheckpointError(
                    f"optimizer '{name}' state '{key}' has shape {np.shape(state[key])}, "
                    f"expected ({self.size},) (was the model changed?)"
                )
        step = int(state["step"])
        if step < 0:
            raise CheckpointError(f"optimizer '{name}' state 'step' is negative ({step})")
        self.t = step
        for key in self.scalars:
            self.scalars[key] = float(state[key])
        for key in self.state:
            self.state[key][...] = state[key]

    def eps_in_out(self, eps: float, inside: bool) -> tuple[np.floating, np.floating]:
        """``(eps_in, eps_out)`` for ``sqrt(r + eps_in) + eps_out``."""
        zero = self.scalar(0.0)
        return (self.scalar(eps), zero) if inside else (zero, self.scalar(eps))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, dtype={self.dtype}, t={self.t})"


@optimizers.register("gd")
class GD(Optimizer):
    """Gradient descent: w <- w - eta g (batch, stochastic or mini-batch by the loader).

    The plain rule of the course (Robbins & Monro, 1951; Rumelhart, Hinton &
    Williams, 1986). Whether it is BGD, SGD or MBGD is decided by the batch size.
    """

    class Config(Optimizer.Config):
        name: str = "gd"

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        K.gd_step(params, grads, self.scalar(lr))


@optimizers.register("momentum")
class Momentum(Optimizer):
    """Momentum: delta_w(n) = -eta g + alpha delta_w(n-1); w += delta_w(n).

    The course's form (Rumelhart, Hinton & Williams, 1986; Polyak, 1964): the
    velocity ``v = delta_w`` carries the learning rate, so changing eta during
    training changes only the new contributions. (PyTorch instead keeps
    ``b = alpha b + g`` and does ``w -= eta b``; same path for a constant eta.)
    State: ``velocity`` (n,), starting at zero.
    """

    class Config(Optimizer.Config):
        name: str = "momentum"
        alpha: float = Field(0.9, ge=0.0, lt=1.0, description="momentum factor")

    state_arrays = ("velocity",)

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        K.momentum_step(
            params, grads, self.state["velocity"], self.scalar(lr), self.scalar(self.config.alpha)
        )


@optimizers.register("nesterov")
class Nesterov(Momentum):
    """Nesterov momentum: the gradient is taken at the look-ahead point w + alpha v.

    Classical form (Sutskever, Martens, Dahl & Hinton, 2013)::

        v(n) = alpha v(n-1) - eta grad J(w(n-1) + alpha v(n-1));   w(n) = w(n-1) + v(n)

    The trainer gives the gradient at the stored parameters, so, as in Bengio,
    Boulanger-Lewandowski & Pascanu (2013) and Keras, the stored parameters are
    the look-ahead ones, w~ = w + alpha v, and the rule becomes::

        v(n) = alpha v(n-1) - eta g(w~(n-1));   w~(n) = w~(n-1) + alpha v(n) - eta g

    State: ``velocity`` (n,), starting at zero.
    """

    class Config(Momentum.Config):
        name: str = "nesterov"

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        K.nesterov_step(
            params, grads, self.state["velocity"], self.scalar(lr), self.scalar(self.config.alpha)
        )


@optimizers.register("adagrad")
class AdaGrad(Optimizer):
    """AdaGrad: r += g^2; w -= eta / (eps + sqrt(r)) g (per-weight rates shrink).

    Duchi, Hazan & Singer (2011). Each weight's rate is divided by the root of
    the sum of all its past squared gradients, so frequently updated weights
    slow down. eps = 1e-7 outside the root by default, the course's form
    (``eps_inside_sqrt`` puts it inside). State: ``sum_sq`` (n,), starting at
    ``initial_accumulator``.
    """

    class Config(Optimizer.Config):
        name: str = "adagrad"
        eps: float = Field(1e-7, gt=0.0)
        eps_inside_sqrt: bool = False
        initial_accumulator: float = Field(0.0, ge=0.0, description="starting value of r")

    state_arrays = ("sum_sq",)

    def __init__(self, config: Config, size: int, dtype: Any) -> None:
        super().__init__(config, size, dtype)
        self.state["sum_sq"][:] = config.initial_accumulator

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        eps_in, eps_out = self.eps_in_out(self.config.eps, self.config.eps_inside_sqrt)
        K.adagrad_step(params, grads, self.state["sum_sq"], self.scalar(lr), eps_in, eps_out)


@optimizers.register("adadelta")
class AdaDelta(Optimizer):
    """AdaDelta: step = RMS(past steps) / RMS(gradients) g, no hand-set rate needed.

    Zeiler (2012), Algorithm 1, with a final scale eta (1.0 recovers the paper)::

        r = rho r + (1-rho) g^2
        d = sqrt(s + eps) / sqrt(r + eps) g
        s = rho s + (1-rho) d^2
        w = w - eta d

    rho = 0.95 and eps = 1e-6 as in the paper (PyTorch: rho 0.9).
    State: ``sq_grad`` (r) and ``sq_delta`` (s), (n,) each, starting at zero.
    """

    class Config(Optimizer.Config):
        name: str = "adadelta"
        lr: float = Field(1.0, gt=0, description="scale of the step (1.0 in the paper)")
        rho: float = Field(0.95, ge=0.0, lt=1.0, description="decay of both running averages")
        eps: float = Field(1e-6, gt=0.0)

    state_arrays = ("sq_grad", "sq_delta")

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        rho = self.config.rho
        K.adadelta_step(
            params,
            grads,
            self.state["sq_grad"],
            self.state["sq_delta"],
            self.scalar(lr),
            self.scalar(rho),
            self.scalar(1.0 - rho),
            self.scalar(self.config.eps),
        )


@optimizers.register("rmsprop")
class RMSProp(Optimizer):
    """RMSProp: r = beta r + (1-beta) g^2; w -= eta g / (sqrt(r) + eps).

    Tieleman & Hinton (2012), Coursera lecture 6.5: AdaGrad with a leaky
    average, so old gradients are forgotten. eps = 1e-8 outside the root by
    default (PyTorch); ``eps_inside_sqrt`` gives Goodfellow et al.'s
    ``sqrt(eps + r)``. State: ``sq_avg`` (n,), starting at zero.
    """

    class Config(Optimizer.Config):
        name: str = "rmsprop"
        lr: float = Field(0.001, gt=0)
        beta: float = Field(0.9, ge=0.0, lt=1.0, description="decay of the squared average")
        eps: float = Field(1e-8, gt=0.0)
        eps_inside_sqrt: bool = False

    state_arrays = ("sq_avg",)

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        beta = self.config.beta
        eps_in, eps_out = self.eps_in_out(self.config.eps, self.config.eps_inside_sqrt)
        K.rmsprop_step(
            params,
            grads,
            self.state["sq_avg"],
            self.scalar(lr),
            self.scalar(beta),
            self.scalar(1.0 - beta),
            eps_in,
            eps_out,
        )


@optimizers.register("adam")
class Adam(Optimizer):
    """Adam: bias-corrected running averages of g and g^2 (Kingma & Ba, 2015).

    Algorithm 1 of the paper, at step t = 1, 2, ...::

        m = b1 m + (1-b1) g            m^ = m / (1 - b1^t)
        v = b2 v + (1-b2) g^2          v^ = v / (1 - b2^t)
        w = w - eta m^ / (sqrt(v^) + eps)

    eps is added to sqrt(v^) as in the paper and PyTorch (``eps_inside_sqrt``
    gives sqrt(v^ + eps)). State: ``m``, ``v`` (n,) each, starting at zero.
    """

    class Config(Optimizer.Config):
        name: str = "adam"
        lr: float = Field(0.001, gt=0)
        beta1: float = Field(0.9, ge=0.0, lt=1.0, description="decay of the mean of g")
        beta2: float = Field(0.999, ge=0.0, lt=1.0, description="decay of the mean of g^2")
        eps: float = Field(1e-8, gt=0.0)
        eps_inside_sqrt: bool = False

    state_arrays = ("m", "v")

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        c = self.config
        eps_in, eps_out = self.eps_in_out(c.eps, c.eps_inside_sqrt)
        K.adam_step(
            params,
            grads,
            self.state["m"],
            self.state["v"],
            self.scalar(lr / (1.0 - c.beta1**self.t)),
            self.scalar(c.beta1),
            self.scalar(1.0 - c.beta1),
            self.scalar(c.beta2),
            self.scalar(1.0 - c.beta2),
            self.scalar(1.0 / (1.0 - c.beta2**self.t)),
            eps_in,
            eps_out,
        )


@optimizers.register("adamax")
class AdaMax(Optimizer):
    """AdaMax: Adam with the infinity norm, u = max(b2 u, |g|) (Kingma & Ba, 2015, sec. 7.1).

    ::

        m = b1 m + (1-b1) g
        u = max(b2 u, |g|)
        w = w - eta / (1 - b1^t) m / (u + eps)

    The paper has no eps; it is added to the denominator (as in Keras) so that
    a weight whose gradients were all zero does not divide by zero (PyTorch puts
    it inside the max instead). lr = 0.002 as in the paper.
    State: ``m``, ``u`` (n,) each, starting at zero.
    """

    class Config(Optimizer.Config):
        name: str = "adamax"
        lr: float = Field(0.002, gt=0)
        beta1: float = Field(0.9, ge=0.0, lt=1.0)
        beta2: float = Field(0.999, ge=0.0, lt=1.0)
        eps: float = Field(1e-8, gt=0.0)

    state_arrays = ("m", "u")

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        c = self.config
        K.adamax_step(
            params,
            grads,
            self.state["m"],
            self.state["u"],
            self.scalar(lr / (1.0 - c.beta1**self.t)),
            self.scalar(c.beta1),
            self.scalar(1.0 - c.beta1),
            self.scalar(c.beta2),
            self.scalar(c.eps),
        )


@optimizers.register("nadam")
class Nadam(Optimizer):
    """Nadam: Adam with Nesterov momentum (Dozat, 2016).

    With a momentum factor mu_t for each step and its running product
    P_t = mu_1 ... mu_t::

        m = b1 m + (1-b1) g            v = b2 v + (1-b2) g^2
        w = w - eta [ (1-mu_t) / (1-P_t) g + mu_{t+1} / (1-P_{t+1}) m ]
                  / (sqrt(v / (1 - b2^t)) + eps)

    The gradient term is corrected with this step's factor and the momentum
    term with the next step's: that look-ahead is the Nesterov part.
    ``momentum_schedule: true`` (default, Dozat's paper, Keras and PyTorch) uses
    mu_t = b1 (1 - 0.5 * 0.96^(t * momentum_decay)); ``false`` uses mu_t = b1,
    the simpler form in which the corrections are 1 - b1^t and 1 - b1^(t+1).
    State: ``m``, ``v`` (n,) and the product ``mu_product`` (P_t).
    """

    class Config(Optimizer.Config):
        name: str = "nadam"
        lr: float = Field(0.002, gt=0)
        beta1: float = Field(0.9, ge=0.0, lt=1.0)
        beta2: float = Field(0.999, ge=0.0, lt=1.0)
        eps: float = Field(1e-8, gt=0.0)
        eps_inside_sqrt: bool = False
        momentum_schedule: bool = True
        momentum_decay: float = Field(0.004, ge=0.0, description="psi in 0.96^(t psi)")

    state_arrays = ("m", "v")

    def __init__(self, config: Config, size: int, dtype: Any) -> None:
        super().__init__(config, size, dtype)
        self.scalars["mu_product"] = 1.0

    def mu(self, t: int) -> float:
        """Momentum factor mu_t of step t (1-based)."""
        c = self.config
        if not c.momentum_schedule:
            return c.beta1
        return c.beta1 * (1.0 - 0.5 * 0.96 ** (t * c.momentum_decay))

    def update(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        c = self.config
        mu_t, mu_next = self.mu(self.t), self.mu(self.t + 1)
        product = self.scalars["mu_product"] * mu_t
        self.scalars["mu_product"] = product
        eps_in, eps_out = self.eps_in_out(c.eps, c.eps_inside_sqrt)
        K.nadam_step(
            params,
            grads,
            self.state["m"],
            self.state["v"],
            self.scalar(lr * (1.0 - mu_t) / (1.0 - product)),
            self.scalar(lr * mu_next / (1.0 - product * mu_next)),
            self.scalar(c.beta1),
            self.scalar(1.0 - c.beta1),
            self.scalar(c.beta2),
            self.scalar(1.0 - c.beta2),
            self.scalar(1.0 / (1.0 - c.beta2**self.t)),
            eps_in,
            eps_out,
        )
