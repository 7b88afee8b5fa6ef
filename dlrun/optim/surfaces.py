"""Two-dimensional test surfaces and the paths dlrun's optimizers take on them.

A surface is a function f(x, y) with its analytic gradient. Its two coordinates play the
part of a network's flat parameter buffer (shape (2,), float64): each optimizer is built
through the registry exactly as the trainer builds it (``registry.optimizers.build``)
and stepped with the same update kernels, the gradient coming from the formula instead
of backpropagation::

    path = trajectory(SURFACES["valley"], "momentum")   # (steps + 1, 2): start, then each w

Three surfaces, one idea of the course each:

``valley``  f = (x^2 / 25 + 4 y^2) / 2, a long narrow valley (curvatures 0.04 and 4,
            condition number 100). The rate that keeps plain GD stable across the
            valley (below 2 / 4) makes it crawl along the floor; momentum's velocity
            builds up along the floor and gets there first, Nesterov without
            momentum's zig-zag across it. The valley lies along the axes, so the
            per-weight rates of AdaGrad, RMSProp, Adam, ... undo most of the difference
            of curvatures (a rotated valley would not be so kind to them).
``saddle``  f = x^2 - y^2 + y^4 / 2: around the origin the course's saddle x^2 - y^2,
            with two minima at (0, +-1) (f = -1/2) so that an escape ends somewhere. On
            the ridge y = 0 the gradient has no y part, so an optimizer started there
            stays on it and converges to the saddle point; started 0.001 off, GD grows
            y by a factor (1 + 2 lr) per step and escapes, the adaptive rules leave at
            once (they divide the tiny gradient by its own size), momentum overshoots.
``local``   f = (x^2 - 1)^2 + x / 2 + y^2: a local minimum near (0.93, 0) (f ~ 0.48) and
            the global one near (-1.06, 0) (f ~ -0.51), between them a ridge whose pass
            (a saddle point near (0.13, 0), f ~ 1.03) is 0.55 above the local minimum. Started on the local side, at the rates of the
            table, GD and the adaptive rules settle in the local minimum; momentum and
            Nesterov carry enough speed over the ridge into the global one. Which basin
            a run ends in depends on the rate: momentum at 0.03, or GD at 0.1 (which
            overshoots on the steep first steps), end elsewhere.

Learning rates (``Surface.lrs``, one per optimizer and surface) were picked from the
grid 0.003, 0.01, 0.02, 0.03, 0.05, 0.1, 0.2, 0.3, 0.5, 1 as about the best f after the
surface's steps, taking the smaller of rates that do about as well (a path that stays
readable). So the figure compares the rules, not a badly chosen rate:

* GD, momentum and Nesterov are limited by the steepest curvature L (GD diverges
  above lr = 2 / L: 0.5 across the valley, where 0.45 is used and zig-zags); the
  momentum forms sum about 1 / (1 - alpha) = 10 gradients, so their rates are lower.
* The adaptive rules take steps of about lr per weight at first, whatever the
  gradient's size (RMSProp about 3 lr: 1 / sqrt(1 - beta)), so their rate is a length:
  a tenth or so of the picture. AdaGrad's steps shrink as 1 / sqrt(t), so it gets more.
* AdaDelta has no rate in its paper (lr = 1, eps = 1e-6, dlrun's defaults); its first
  steps are about sqrt(eps) = 0.001 long and grow slowly, so it barely moves in a hundred
  steps here. That is the rule as published, and the figure says so.

Every other setting is dlrun's default (alpha 0.9, Adam's betas 0.9 / 0.999, ...).

Nesterov: dlrun stores the look-ahead point w + alpha v (see
:class:`dlrun.optim.optimizers.Nesterov`), so its path is the path of the parameters a
network would hold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dlrun.config import registry
from dlrun.errors import ConfigError

#: The nine optimizers, from the simplest to the most complex.
OPTIMIZERS = (
    "gd",
    "momentum",
    "nesterov",
    "adagrad",
    "adadelta",
    "rmsprop",
    "adam",
    "adamax",
    "nadam",
)


@dataclass(frozen=True)
class Surface:
    """A 2-D test function: f(x, y) on arrays of any shape, and its gradient at (2,)."""

    name: str
    formula: str
    what: str  # one line: what the surface shows
    f: Callable[[np.ndarray, np.ndarray], np.ndarray]
    grad: Callable[[np.ndarray], np.ndarray]
    start: tuple[float, float]
    box: tuple[float, float, float, float]  # x_lo, x_hi, y_lo, y_hi of the picture
    zoom: tuple[float, float, float, float]  # where momentum and Nesterov differ
    steps: int
    lrs: dict[str, float]
    minima: tuple[tuple[float, float], ...] = field(default=())
    saddles: tuple[tuple[float, float], ...] = field(default=())
    #: a start exactly on a ridge (where the gradient has no part that leads off it)
    ridge_start: tuple[float, float] | None = None

    def value(self, w: np.ndarray) -> np.ndarray:
        """f at points ``w`` (..., 2)."""
        w = np.asarray(w, dtype=np.float64)
        return self.f(w[..., 0], w[..., 1])


def _valley_grad(w: np.ndarray) -> np.ndarray:
    return np.array([w[0] / 25.0, 4.0 * w[1]])


def _saddle_grad(w: np.ndarray) -> np.ndarray:
    return np.array([2.0 * w[0], -2.0 * w[1] + 2.0 * w[1] ** 3])


def _local_grad(w: np.ndarray) -> np.ndarray:
    return np.array([4.0 * w[0] * (w[0] ** 2 - 1.0) + 0.5, 2.0 * w[1]])


def _local_stationary(curved_up: bool) -> tuple[tuple[float, float], ...]:
    """The stationary points (x, 0) of (x^2 - 1)^2 + x / 2 + y^2 (roots of 4x^3 - 4x + 1/2):
    the minima (``curved_up``: f'' = 12 x^2 - 4 > 0) or the saddle between them."""
    roots = sorted(float(r.real) for r in np.roots([4.0, 0.0, -4.0, 0.5]) if abs(r.imag) < 1e-12)
    return tuple((x, 0.0) for x in roots if (3 * x**2 > 1) == curved_up)


SURFACES: dict[str, Surface] = {
    s.name: s
    for s in (
        Surface(
            name="valley",
            formula="f = (x² / 25 + 4 y²) / 2",
            what="a long narrow valley (curvatures 0.04 and 4)",
            f=lambda x, y: (x**2 / 25.0 + 4.0 * y**2) / 2.0,
            grad=_valley_grad,
            start=(-9.0, 0.9),
            box=(-10.0, 3.0, -1.2, 1.2),
            zoom=(-4.0, 1.5, -0.45, 0.45),
            steps=100,
            lrs={
                "gd": 0.45,
                "momentum": 0.1,
                "nesterov": 0.1,
                "adagrad": 1.0,
                "adadelta": 1.0,
                "rmsprop": 0.1,
                "adam": 0.3,
                "adamax": 0.3,
                "nadam": 0.3,
            },
            minima=((0.0, 0.0),),
        ),
        Surface(
            name="saddle",
            formula="f = x² - y² + y⁴ / 2",
            what="a saddle point at (0, 0) between two minima",
            f=lambda x, y: x**2 - y**2 + y**4 / 2.0,
            grad=_saddle_grad,
            start=(-1.8, 0.001),
            box=(-2.0, 2.0, -1.4, 1.4),
            zoom=(-0.8, 0.8, -0.2, 0.7),
            steps=60,
            lrs={
                "gd": 0.2,
                "momentum": 0.05,
                "nesterov": 0.05,
                "adagrad": 0.5,
                "adadelta": 1.0,
                "rmsprop": 0.05,
                "adam": 0.1,
                "adamax": 0.1,
                "nadam": 0.1,
            },
            minima=((0.0, -1.0), (0.0, 1.0)),
            saddles=((0.0, 0.0),),
            ridge_start=(-1.8, 0.0),
        ),
        Surface(
            name="local",
            formula="f = (x² - 1)² + x / 2 + y²",
            what="a local minimum (right) besides the global one (left)",
            f=lambda x, y: (x**2 - 1.0) ** 2 + x / 2.0 + y**2,
            grad=_local_grad,
            start=(1.9, 1.2),
            box=(-2.0, 2.1, -1.5, 1.5),
            zoom=(-2.0, 2.1, -1.5, 1.5),
            steps=100,
            lrs={
                "gd": 0.02,
                "momentum": 0.01,
                "nesterov": 0.01,
                "adagrad": 0.5,
                "adadelta": 1.0,
                "rmsprop": 0.05,
                "adam": 0.1,
                "adamax": 0.1,
                "nadam": 0.1,
            },
            minima=_local_stationary(curved_up=True),
            saddles=_local_stationary(curved_up=False),
        ),
    )
}


def get(name: str) -> Surface:
    """The surface called ``name``; a ConfigError naming the known ones otherwise."""
    if name not in SURFACES:
        hint = registry.did_you_mean(str(name), list(SURFACES))
        raise ConfigError(f"unknown surface '{name}'{hint}; known: {', '.join(SURFACES)}")
    return SURFACES[name]


def trajectory(
    surface: Surface,
    optimizer: str,
    lr: float | None = None,
    steps: int | None = None,
    start: tuple[float, float] | None = None,
    **settings: object,
) -> np.ndarray:
    """The points (steps + 1, 2) that ``optimizer`` visits on ``surface``: the start, then
    w after each update ``opt.step(w, grad f(w), lr)``. ``lr`` defaults to the surface's
    table, ``steps`` to its default, ``settings`` (e.g. ``alpha=0.5``) to dlrun's
    defaults (far from the box a path may overflow to inf: that is divergence)."""
    import dlrun.optim.optimizers  # noqa: F401  (fills the optimizer registry)

    registry.optimizers.get(optimizer, where=f"the {surface.name} surface")
    lr = surface.lrs[optimizer] if lr is None else float(lr)
    steps = surface.steps if steps is None else int(steps)
    if steps < 0:
        raise ConfigError(f"steps must be >= 0, got {steps}")
    spec = {"name": optimizer, "lr": lr, **settings}
    opt = registry.optimizers.build(spec, 2, np.float64)
    w = np.array(surface.start if start is None else start, dtype=np.float64)
    path = np.empty((steps + 1, 2))
    path[0] = w
    for i in range(1, steps + 1):
        opt.step(w, surface.grad(w), lr)
        path[i] = w
    return path


def trajectories(surface: Surface, steps: int | None = None) -> dict[str, np.ndarray]:
    """:func:`trajectory` of each of the nine optimizers, with the surface's rates."""
    return {name: trajectory(surface, name, steps=steps) for name in OPTIMIZERS}
