"""Learning-rate schedules: the rate eta to use at each step.

A schedule is asked once per batch for the rate (epoch and global step count
from 0) and told the metrics at the end of every epoch::

    schedule = schedules.get("cosine")(Cosine.Config(epochs=50), base_lr=0.1)
    for epoch in range(epochs):
        for batch in ...:
            optimizer.step(params, grads, schedule.lr(epoch, step))
        schedule.observe(epoch, {"val_loss": ...})

``base_lr`` is the optimizer's ``lr``. Schedules that change with the epoch
are piecewise constant within an epoch. ``state_dict()`` is a flat,
JSON-serialisable dict saved with the checkpoint.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, ValidationError

from dlrun.config.registry import schedules
from dlrun.config.settings import Settings
from dlrun.errors import CheckpointError, ConfigError

State = dict[str, float | int | None]


class Schedule:
    """Base class of every schedule: the rate does not depend on anything observed."""

    class Config(Settings):
        name: str

    def __init__(self, config: Config, base_lr: float) -> None:
        if not base_lr > 0:
            raise ConfigError(
                f"schedule '{config.name}': base learning rate must be > 0, got {base_lr}"
            )
        self.config = config
        self.base_lr = float(base_lr)

    def lr(self, epoch: int, step: int) -> float:
        """Learning rate for this step (``epoch`` and global ``step`` count from 0)."""
        raise NotImplementedError

    def observe(self, epoch: int, metrics: dict[str, float]) -> None:
        """End of ``epoch`` with its metrics; only metric-driven schedules use it."""

    def state_dict(self) -> State:
        return {}

    def load_state_dict(self, state: State) -> None:
        if state:
            raise CheckpointError(
                f"schedule '{self.config.name}' has no state, but the checkpoint holds "
                f"{sorted(state)}"
            )


@schedules.register("constant")
class Constant(Schedule):
    """Constant rate: eta(epoch) = eta_0."""

    class Config(Schedule.Config):
        name: str = "constant"

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr


@schedules.register("step")
class StepDecay(Schedule):
    """Step decay: eta = eta_0 gamma^floor(epoch / step_size)."""

    class Config(Schedule.Config):
        name: str = "step"
        step_size: int = Field(10, ge=1, description="epochs between two decays")
        gamma: float = Field(0.1, gt=0.0, description="factor applied at each decay")

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr * self.config.gamma ** (epoch // self.config.step_size)


@schedules.register("exponential")
class Exponential(Schedule):
    """Exponential decay: eta = eta_0 gamma^epoch."""

    class Config(Schedule.Config):
        name: str = "exponential"
        gamma: float = Field(0.95, gt=0.0, description="factor applied every epoch")

    def lr(self, epoch: int, step: int) -> float:
        return self.base_lr * self.config.gamma**epoch


@schedules.register("cosine")
class Cosine(Schedule):
    """Cosine annealing: eta = min + (eta_0 - min) (1 + cos(pi e / E)) / 2 over E epochs.

    Loshchilov & Hutter (2017), without restarts. From epoch E on the rate
    stays at ``min_lr``.
    """

    class Config(Schedule.Config):
        name: str = "cosine"
        epochs: int = Field(..., ge=1, description="length E of the decay, in epochs")
        min_lr: float = Field(0.0, ge=0.0, description="rate reached at epoch E")

    def __init__(self, config: Config, base_lr: float) -> None:
        super().__init__(config, base_lr)
        if config.min_lr > base_lr:
            raise ConfigError(
                f"schedule 'cosine': min_lr ({config.min_lr}) is above the base "
                f"learning rate ({base_lr})"
            )

    def lr(self, epoch: int, step: int) -> float:
        c = self.config
        progress = min(epoch, c.epochs) / c.epochs
        return c.min_lr + (self.base_lr - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))


@schedules.register("warmup")
class Warmup(Schedule):
    """Linear warm-up over warmup_steps, then constant (or another schedule, ``then``).

    eta(step) = f(step) eta_then(epoch, step), with
    f(step) = start_factor + (1 - start_factor) (step + 1) / warmup_steps, capped at 1
    (Goyal et al., 2017). ``then`` is another schedule's config (default
    constant) and sees the same epoch and step counts.
    """

    class Config(Schedule.Config):
        name: str = "warmup"
        warmup_steps: int = Field(100, ge=1, description="batches of linear increase")
        start_factor: float = Field(0.0, ge=0.0, lt=1.0, description="f before the first step")
        then: dict[str, Any] = Field(
            default_factory=lambda: {"name": "constant"},
            description="schedule used after (and scaled during) the warm-up",
        )

    def __init__(self, config: Config, base_lr: float) -> None:
        super().__init__(config, base_lr)
        self.then = build_schedule(config.then, base_lr, where="schedule.then")

    def lr(self, epoch: int, step: int) -> float:
        c = self.config
        factor = min(1.0, c.start_factor + (1.0 - c.start_factor) * (step + 1) / c.warmup_steps)
        return factor * self.then.lr(epoch, step)

    def observe(self, epoch: int, metrics: dict[str, float]) -> None:
        self.then.observe(epoch, metrics)

    def state_dict(self) -> State:
        return {f"then.{key}": value for key, value in self.then.state_dict().items()}

    def load_state_dict(self, state: State) -> None:
        inner = {key.removeprefix("then."): v for key, v in state.items()}
        if len(inner) != len(state) or any(not k.startswith("then.") for k in state):
            raise CheckpointError(f"schedule 'warmup': unexpected state keys {sorted(state)}")
        self.then.load_state_dict(inner)


@schedules.register("reduce_on_plateau")
class ReduceOnPlateau(Schedule):
    """Reduce on plateau: eta *= factor when the monitored metric stops improving.

    After ``patience`` epochs without an improvement larger than ``min_delta``
    (absolute: below best - min_delta in ``min`` mode, above best + min_delta in
    ``max`` mode) the rate is multiplied by ``factor``, never going below
    ``min_lr``; the ``cooldown`` epochs after a reduction are not counted (an
    improvement during them still sets the best). A NaN metric counts as no
    improvement. (As Keras' and PyTorch's ReduceLROnPlateau, min_delta absolute.)
    """

    class Config(Schedule.Config):
        name: str = "reduce_on_plateau"
        monitor: str = Field("val_loss", description="metric name, e.g. val_loss, val_accuracy")
        mode: Literal["min", "max"] = "min"
        factor: float = Field(0.1, gt=0.0, lt=1.0)
        patience: int = Field(10, ge=0, description="epochs without improvement before reducing")
        min_delta: float = Field(0.0, ge=0.0, description="smallest change that counts")
        min_lr: float = Field(0.0, ge=0.0)
        cooldown: int = Field(0, ge=0, description="epochs to wait after a reduction")

    def __init__(self, config: Config, base_lr: float) -> None:
        super().__init__(config, base_lr)
        self.current = self.base_lr
        self.best: float | None = None
        self.wait = 0
        self.cooldown_left = 0

    def lr(self, epoch: int, step: int) -> float:
        return self.current

    def improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best is None:
            return True
        if self.config.mode == "min":
            return value < self.best - self.config.min_delta
        return value > self.best + self.config.min_delta

    def observe(self, epoch: int, metrics: dict[str, float]) -> None:
        c = self.config
        if c.monitor not in metrics:
            raise ConfigError(
                f"schedule 'reduce_on_plateau': monitored metric '{c.monitor}' is not "
                f"computed; available: {', '.join(sorted(metrics)) or 'none'}",
                hint="set schedule.monitor to one of them (val_* needs a validation split)",
            )
        value = float(metrics[c.monitor])
        in_cooldown = self.cooldown_left > 0
        if in_cooldown:
            self.cooldown_left -= 1
        if self.improved(value):
            self.best = value
            self.wait = 0
        elif not in_cooldown:
            self.wait += 1
            if self.wait >= c.patience and self.current > c.min_lr:
                self.current = max(self.current * c.factor, c.min_lr)
                self.cooldown_left = c.cooldown
                self.wait = 0

    def state_dict(self) -> State:
        return {
            "lr": self.current,
            "best": self.best,
            "wait": self.wait,
            "cooldown_left": self.cooldown_left,
        }

    def load_state_dict(self, state: State) -> None:
        keys = {"lr", "best", "wait", "cooldown_left"}
        if set(state) != keys:
            raise CheckpointError(
                f"schedule 'reduce_on_plateau': state keys {sorted(state)}, expected {sorted(keys)}"
            )
        self.current = float(state["lr"])
        self.best = None if state["best"] is None else float(state["best"])
        self.wait = int(state["wait"])
        self.cooldown_left = int(state["cooldown_left"])


def build_schedule(section: dict[str, Any], base_lr: float, where: str = "schedule") -> Schedule:
    """The schedule described by a config ``section`` (``{"name": ..., ...}``).

    Unknown names and invalid values are ConfigErrors naming ``where``.
    """
    if not isinstance(section, dict) or "name" not in section:
        raise ConfigError(
            f"{where} must be a mapping with a 'name' (one of {', '.join(schedules.names())}), "
            f"got {section!r}"
        )
    cls = schedules.get(section["name"], where=f"{where}.name")
    try:
        config = cls.Config(**section)
    except ValidationError as err:
        problems = "; ".join(
            f"{where}.{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors()
        )
        raise ConfigError(f"invalid {where}: {problems}") from None
    return cls(config, base_lr)
