"""Config files: YAML load, ``extends:``, dotted overrides, validation.

    raw = load_yaml(path)            # safe loader; follows `extends:` (relative paths, deep merge)
    raw = apply_overrides(raw, ["optimizer.lr=0.01", "model.layers[1].units=64"])
    cfg = resolve(raw, source=path)  # validated, every default filled in (a plain dict)

Components (dataset, model, layers, loss, optimizer, schedule, regularizers)
are validated against the ``Config`` class of the registered component they
name, so the filled config lists each one's settings. Every problem becomes a
:class:`ConfigError` naming the file, the key path (``model.layers[2].units``),
the value given and what is allowed.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dlrun.errors import ConfigError


class Settings(BaseModel):
    """Base of every config section: unknown keys are errors, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


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
    clip: dict[str, Any] | None = Field(None, description="gradient clipping {mode, limit}")
    augment: dict[str, Any] | None = Field(None, description="on-the-fly augmentation")
    checkpoint_every: int = Field(1, ge=1, description="write last.npz every n epochs")


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


# --------------------------------------------------------------------------- loading
def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file (safe loader) and merge the files it ``extends``."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ConfigError(f"'extends' cycle: {chain}")
    if not path.is_file():
        where = f" (extended from {_seen[-1]})" if _seen else ""
        raise ConfigError(f"config file not found: {path}{where}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(data).__name__}")
    parents = data.pop("extends", None)
    if parents is None:
        return data
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        base = load_yaml(path.parent / parent, (*_seen, resolved))
        merged = deep_merge(merged, base)
    return deep_merge(merged, data)


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """``"model.layers[1].units"`` -> ``["model", "layers", 1, "units"]``."""
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        between = path[pos : m.start()]
        if between not in ("", "."):
            raise ConfigError(f"bad key path '{path}' near '{between}'")
        tokens.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not tokens or path[pos:]:
        raise ConfigError(f"bad key path '{path}'", hint="write keys like model.layers[1].units")
    return tokens


def format_path(tokens: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for t in tokens:
        out += f"[{t}]" if isinstance(t, int) else (f".{t}" if out else str(t))
    return out


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` strings; values are parsed as YAML scalars."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' has no '='", hint="write --set key.path=value")
        key, text = item.split("=", 1)
        tokens = parse_path(key.strip())
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        node: Any = raw
        for i, tok in enumerate(tokens[:-1]):
            here = format_path(tokens[: i + 1])
            if isinstance(tok, int):
                if not isinstance(node, list) or not -len(node) <= tok < len(node):
                    size = len(node) if isinstance(node, list) else "no"
                    raise ConfigError(
                        f"override '{item}': {here} does not exist ({size} items there)"
                    )
                node = node[tok]
            else:
                if not isinstance(node, dict):
                    raise ConfigError(
                        f"override '{item}': {format_path(tokens[:i])} is not a mapping"
                    )
                node = node.setdefault(tok, {})
        last = tokens[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or not -len(node) <= last < len(node):
                raise ConfigError(f"override '{item}': {format_path(tokens)} does not exist")
        elif not isinstance(node, dict):
            raise ConfigError(f"override '{item}': {format_path(tokens[:-1])} is not a mapping")
        node[last] = value
    return raw


# --------------------------------------------------------------------------- validation
def validate_model(
    cls: type[BaseModel], data: Any, path: tuple[Any, ...], source: str
) -> BaseModel:
    """``cls.model_validate(data)`` with errors turned into one ConfigError."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, cls, data, path, source)) from None


def _describe(
    exc: ValidationError, cls: type[BaseModel], data: Any, path: tuple, source: str
) -> str:
    from dlrun.registry import did_you_mean

    lines = []
    for err in exc.errors():
        loc = tuple(
            x
            for x in err["loc"]
            if not (isinstance(x, str) and x.startswith(("literal[", "int", "function-")))
        )
        where = format_path((*path, *loc)) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = sorted(_fields_at(cls, loc[:-1]))
            key = str(loc[-1])
            lines.append(
                f"unknown key '{key}' at {where}{did_you_mean(key, allowed)}; "
                f"allowed: {', '.join(allowed)}"
            )
        elif err["type"] == "missing":
            lines.append(f"missing required key {where}")
        else:
            lines.append(f"{where}: {err['msg']} (given: {err.get('input')!r})")
    head = f"invalid config {source}" if source else "invalid config"
    return head + ":\n  " + "\n  ".join(dict.fromkeys(lines))


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
            f"got {raw!r}"
        )
    if key not in raw:
        raise ConfigError(
            f"{format_path(path)} in {source or 'config'} needs a '{key}'; "
            f"known: {', '.join(registry.names())}"
        )
    name = raw[key]
    comp = registry.get(str(name), where=f"{format_path((*path, key))} in {source or 'config'}")
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
    from dlrun import registry as R

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
    if run.train.clip is not None:
        from dlrun.clipping import ClipConfig

        train["clip"] = validate_model(
            ClipConfig, run.train.clip, ("train", "clip"), source
        ).model_dump(mode="json")
    if run.train.augment is not None:
        from dlrun.data.augment import AugmentConfig

        train["augment"] = validate_model(
            AugmentConfig, run.train.augment, ("train", "augment"), source
        ).model_dump(mode="json")
    return cfg


def load(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """Load, override and resolve the config at ``path``."""
    raw = apply_overrides(load_yaml(path), overrides or [])
    return resolve(raw, source=str(path))
