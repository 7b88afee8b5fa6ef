"""Config validation: the run's sections, and ``resolve`` against the registered components.

    cfg = load(path, overrides)      # loading.load_yaml + apply_overrides + resolve
    cfg = resolve(raw, source=path)  # validated, every default filled in (a plain dict)

Components (dataset, model, layers, loss, optimizer, schedule, regularizers)
are validated against the ``Config`` class of the registered component they
name, so the filled config lists each one's settings. Every problem becomes a
:class:`ConfigError` naming the file, the key path (``model.layers[2].units``),
the value given and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from dlrun.config import catalog
from dlrun.config import registry as R
from dlrun.config.loading import apply_overrides, format_path, load_yaml
from dlrun.config.settings import Settings
from dlrun.data.augment import AugmentConfig
from dlrun.errors import ConfigError
from dlrun.optim.clipping import ClipConfig


# --------------------------------------------------------------------------- schema
class EarlyStopping(Settings):
    """Stop when the monitored metric has not improved for ``patience`` epochs."""

    monitor: str = Field("val_loss", description="metric to watch (a metrics.csv column)")
    mode: Literal["min", "max", "auto"] = Field("auto", description="auto: max for accuracy")
    min_delta: float = Field(0.0, ge=0, description="smallest change that counts as better")
    patience: int = Field(5, ge=1, description="epochs without improvement before stopping")
    restore_best: bool = Field(True, description="end with the best epoch's weights")


class Divergence(Settings):
    """What happens when the loss or a gradient becomes NaN or infinite."""

    policy: Literal["stop", "rollback"] = Field(
        "stop", description="stop, or roll back and halve lr"
    )
    max_rollbacks: int = Field(3, ge=0, description="rollbacks allowed before stopping")


class TrainSettings(Settings):
    epochs: int = Field(10, ge=1, description="passes over the training set")
    batch_size: Literal["full"] | int = Field(
        32, description="'full' = batch GD, 1 = online SGD, n = mini-batch"
    )
    shuffle: bool = Field(True, description="reshuffle the training set every epoch")
    early_stopping: EarlyStopping | None = None
    divergence: Divergence = Field(default_factory=Divergence)
    clip: ClipConfig | None = Field(None, description="gradient clipping")
    augment: AugmentConfig | None = Field(None, description="on-the-fly data augmentation")
    fuse: bool = Field(
        True,
        description="run fused training steps (dense stacks, conv + pool) where they apply; "
        "false runs every layer's own forward and backward",
    )
    checkpoint_every: int = Field(1, ge=1, description="write last.npz every n epochs")


class LogSettings(Settings):
    """What a run records beyond its default metrics.csv columns and plots."""

    tensorboard: bool = Field(
        False,
        description="write TensorBoard event files into RUN_DIR/tensorboard/ "
        "(pip install 'dlrun[tensorboard]'; dlrun train --tensorboard)",
    )
    histograms: int = Field(
        1,
        ge=0,
        description="with tensorboard: weight and gradient histograms every n epochs (0: none)",
    )
    batch_every: int = Field(
        50, ge=0, description="with tensorboard: the training loss every n batches (0: none)"
    )
    train_eval: bool = Field(
        False,
        description="at each epoch's end, also evaluate the training set in evaluation mode "
        "(dropout off, the epoch's final weights): columns train_eval_loss, "
        "train_eval_accuracy (one more pass over the training set per epoch)",
    )
    step_sizes: bool = Field(
        False,
        description="the optimizer's steps, from the weights before and after each update: "
        "columns update_norm (mean ||delta w||) and effective_lr (mean ||delta w|| / ||g||)",
    )
    totals: bool = Field(
        False,
        description="columns updates (updates so far) and train_seconds (seconds of "
        "training so far, without the first update, which also loads the compiled kernels)",
    )
    every_step: bool = Field(
        False,
        description="steps.csv: every update's batch loss and per-layer gradient norms, "
        "and plots/steps.png (metrics.csv has each epoch's means)",
    )


class RunConfig(Settings):
    """A run: data, model, loss, optimizer, training settings."""

    name: str | None = Field(None, description="run name (default: the config file's stem)")
    description: str = ""
    seed: int = Field(0, ge=0, description="one seed for every random stream")
    dtype: Literal["float32", "float64"] = "float32"
    data: dict[str, Any] = Field(..., description="dataset: {name: ..., settings}")
    model: dict[str, Any] = Field(..., description="model: {type: sequential, layers: [...]}")
    loss: str = Field(
        "cross_entropy", description="quadratic | cross_entropy | binary_cross_entropy"
    )
    optimizer: dict[str, Any] = Field(default_factory=lambda: {"name": "gd", "lr": 0.1})
    schedule: dict[str, Any] = Field(default_factory=lambda: {"name": "constant"})
    regularizers: list[dict[str, Any]] = Field(default_factory=list)
    train: TrainSettings = Field(default_factory=TrainSettings)
    log: LogSettings = Field(default_factory=LogSettings)


# --------------------------------------------------------------------------- validation
def validate_model(
    cls: type[BaseModel], data: Any, path: tuple[Any, ...], source: str
) -> BaseModel:
    """``cls.model_validate(data)`` with errors turned into one ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, cls, data, path, source)) from None


#: Most problems one ConfigError lists; the rest are counted ("... and 7 more").
MAX_ERRORS = 20
#: Longest given value quoted in a message (the rest is cut to "...").
MAX_SHOWN = 80


def _describe(
    exc: ValidationError, cls: type[BaseModel], data: Any, path: tuple, source: str
) -> str:
    """One message listing the first ``MAX_ERRORS`` distinct problems of ``exc``."""
    errors = exc.errors(include_url=False)
    lines: dict[str, None] = {}
    used = 0
    for err in errors:
        if len(lines) == MAX_ERRORS:
            break
        lines[_describe_one(err, cls, path)] = None
        used += 1
    head = f"invalid config {source}" if source else "invalid config"
    text = head + ":\n  " + "\n  ".join(lines)
    if used < len(errors):
        text += f"\n  ... and {len(errors) - used:,} more"
    return text


def _describe_one(err: Any, cls: type[BaseModel], path: tuple) -> str:
    """One line for one pydantic error: the key path, what is wrong, what is allowed."""
    loc = tuple(
        x
        for x in err["loc"]
        if not (isinstance(x, str) and x.startswith(("literal[", "int", "function-")))
    )
    where = format_path((*path, *loc)) or "(top level)"
    if err["type"] == "extra_forbidden":
        allowed = sorted(_fields_at(cls, loc[:-1]))
        key = _shorten(str(loc[-1]))
        return (
            f"unknown key '{key}' at {_shorten(where)}{R.did_you_mean(key, allowed)}; "
            f"allowed: {', '.join(allowed)}"
        )
    if err["type"] == "missing":
        return f"missing required key {where}"
    return f"{_shorten(where)}: {err['msg']} (given: {_shorten(repr(err.get('input')))})"


def _shorten(text: str) -> str:
    """``text`` cut to ``MAX_SHOWN`` characters."""
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def _fields_at(cls: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) settings class at ``loc`` below ``cls``."""
    for key in loc:
        if isinstance(key, int):
            continue
        field = cls.model_fields.get(str(key))
        if field is None:
            return []
        inner = _settings_class(field.annotation)
        if inner is None:
            return []
        cls = inner
    return list(cls.model_fields)


def _settings_class(annotation: Any) -> type[BaseModel] | None:
    import typing

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _settings_class(arg)
        if found is not None:
            return found
    return None


def resolve_component(
    registry: Any, raw: Any, key: str, path: tuple, source: str
) -> dict[str, Any]:
    """Validate ``{key: name, ...settings}`` against the registered component's Config."""
    if isinstance(raw, str):
        raw = {key: raw}
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{format_path(path)} in {source or 'config'} must be a mapping with '{key}', "
            f"got {_shorten(repr(raw))}"
        )
    if key not in raw:
        raise ConfigError(
            f"{format_path(path)} in {source or 'config'} needs a '{key}'; "
            f"known: {', '.join(registry.names())}"
        )
    name = raw[key]
    where = f"{format_path((*path, key))} in {source or 'config'}"
    comp = registry.get(_shorten(str(name)), where=where)
    settings_cls = comp.Config
    body = dict(raw)
    if key not in settings_cls.model_fields:
        body.pop(key)
    model = validate_model(settings_cls, body, path, source)
    out = {key: name}
    out.update(model.model_dump(mode="json"))
    return out


def resolve(raw: dict[str, Any], source: str = "") -> dict[str, Any]:
    """Validate a raw config and return it with every default filled in."""
    catalog.load()
    run = validate_model(RunConfig, raw, (), source)
    cfg = run.model_dump(mode="json")
    if cfg["name"] is None and source:
        cfg["name"] = Path(source).stem
    cfg["data"] = resolve_component(R.datasets, run.data, "name", ("data",), source)
    cfg["model"] = resolve_component(R.models, run.model, "type", ("model",), source)
    if "layers" in cfg["model"]:
        cfg["model"]["layers"] = [
            resolve_component(R.layers, spec, "type", ("model", "layers", i), source)
            for i, spec in enumerate(cfg["model"]["layers"])
        ]
    R.losses.get(run.loss, where=f"loss in {source or 'config'}")
    cfg["optimizer"] = resolve_component(
        R.optimizers, run.optimizer, "name", ("optimizer",), source
    )
    cfg["schedule"] = resolve_component(R.schedules, run.schedule, "name", ("schedule",), source)
    cfg["regularizers"] = [
        resolve_component(R.regularizers, spec, "name", ("regularizers", i), source)
        for i, spec in enumerate(run.regularizers)
    ]
    train = cfg["train"]
    if isinstance(train["batch_size"], int) and train["batch_size"] < 1:
        raise ConfigError(
            f"train.batch_size in {source or 'config'} must be 'full' or >= 1 "
            f"(given: {train['batch_size']})"
        )
    return cfg


def load(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Load, override and resolve the config at ``path``."""
    raw = apply_overrides(load_yaml(path), overrides or [])
    return resolve(raw, source=str(path))
