"""Sweep files: load, validate and expand into cells, each with its resolved config.

A sweep file::

    base: ../quickstart.yaml        # relative to this file, or an inline config mapping
    set: {train.epochs: 20}         # fixed overrides of every cell
    variants:                       # named override sets (one axis; optional)
      l2: {regularizers: [{name: l2, alpha: 0.01}]}
    grid: {optimizer.name: [gd, adam], train.batch_size: [16, 64]}  # cartesian product
    zip: {optimizer.name: [gd, adam], optimizer.lr: [0.1, 0.001]}   # stepped together
    seeds: 3                        # seeds 0, 1, 2 (or a list); sets `seed`
    metrics: [test_accuracy, val_loss]
    target: {metric: val_accuracy, value: 0.9}
    tune:                           # each setting tuned first (dlrun.sweeps.tune.sweep)
      params: {optimizer.lr: "log:1e-4:1"}
      trials: 16

Cells = variants x grid x zip x seeds (seeds innermost). Every cell's config is
resolved up front, so a bad key or value anywhere stops the sweep before any
run starts. A cell is identified by the hash of its resolved config (its
``name`` and ``description`` excluded: they do not change the result).
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field

from dlrun.config import loading as L
from dlrun.config import resolve as C
from dlrun.config.settings import Settings
from dlrun.errors import ConfigError

SWEEP_KEYS = (
    "name",
    "description",
    "base",
    "set",
    "variants",
    "grid",
    "zip",
    "seeds",
    "metrics",
    "target",
    "tune",
)

# metrics a table can show (see dlrun.sweeps.results.metric_value)
_EPOCH_METRIC = r"(val_|train_eval_)?(loss|accuracy)"
_METRIC = re.compile(
    rf"^(best_)?(val_|test_|train_eval_)?(loss|accuracy)$|^{_EPOCH_METRIC}@\d+$"
    r"|^(gap|sparsity|epochs|seconds|seconds_per_epoch|epochs_to_target)$"
    r"|^(updates|train_seconds|update_norm|effective_lr)$"
)
METRIC_FORMS = (
    "loss, accuracy, val_loss, val_accuracy, test_loss, test_accuracy (final values); "
    "train_eval_loss, train_eval_accuracy, updates, train_seconds, update_norm, "
    "effective_lr (final values of runs with the log: settings that record them); "
    "best_<metric>; <metric>@<epoch> (e.g. loss@5); gap (train - val accuracy); "
    "sparsity; epochs; seconds; seconds_per_epoch; epochs_to_target"
)


class Target(Settings):
    """'Epochs to reach': the first epoch where ``metric`` reaches ``value``."""

    metric: str = Field(..., description="a per-epoch metric: loss, accuracy, val_loss, ...")
    value: float
    mode: Literal["min", "max", "auto"] = Field("auto", description="auto: max for accuracy")


class TuneSection(Settings):
    """A sweep's ``tune:``: each setting's ``params`` are tuned (Optuna, ``trials`` finished
    trials on ``metric``) before its seeds run at the best values found."""

    params: dict[str, str | list[Any]] = Field(
        ..., description="key -> range, as dlrun tune --param: log:1e-4:1, int:16:256, [a, b]"
    )
    trials: int = Field(16, ge=1, description="finished trials per setting")
    metric: str = Field("val_loss", description="a metrics.csv column (a validation metric)")
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="default: maximize accuracies, minimize losses"
    )
    pruner: Literal["median", "none"] = "median"
    startup_trials: int = Field(5, ge=0, description="completed trials before pruning starts")
    warmup_epochs: int = Field(0, ge=0, description="epochs of a trial before it can be pruned")
    seed: int | None = Field(
        None,
        ge=0,
        description="seed of the tuning runs (and the sampler); default: one after the "
        "sweep's largest seed, so that no reported run is a tuning run",
    )


class SweepFile(Settings):
    """The keys of a sweep file."""

    name: str | None = Field(None, description="sweep name (default: the file's stem)")
    description: str = ""
    base: str | dict[str, Any] = Field(..., description="config file or inline config")
    set_: dict[str, Any] = Field(default_factory=dict, alias="set")
    variants: dict[str, dict[str, Any]] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    zip_: dict[str, list[Any]] = Field(default_factory=dict, alias="zip")
    seeds: int | list[int] | None = None
    metrics: list[str] | None = None
    target: Target | None = None
    tune: TuneSection | None = None

    model_config = Settings.model_config | {"populate_by_name": True}


@dataclass(frozen=True)
class Cell:
    """One run of a sweep: the values it changes and its resolved config."""

    values: dict[str, Any]  # axis -> value: "variant", grid and zip keys (not the seed)
    seed: int
    config: dict[str, Any]
    hash: str

    @property
    def setting(self) -> tuple[tuple[str, str], ...]:
        """The setting without the seed: cells that differ only by seed share it."""
        return tuple((k, show(v)) for k, v in self.values.items())

    @property
    def label(self) -> str:
        parts = [f"{short(k)}={show(v)}" for k, v in self.values.items()]
        return ",".join([*parts, f"seed={self.seed}"])

    @property
    def run_name(self) -> str:
        """Run directory name: a readable label and the config hash (found again on resume)."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", self.label)[:60].strip("_")
        return f"{safe}-{self.hash[:12]}"


@dataclass
class Sweep:
    """A validated, expanded sweep."""

    name: str
    source: str
    description: str
    spec: dict[str, Any]  # the sweep as given (set, variants, grid, zip, seeds list)
    axes: list[str]  # columns of the table besides the seed
    metrics: list[str] | None
    target: Target | None
    cells: list[Cell] = field(default_factory=list)
    tune: TuneSection | None = None

    @property
    def hash(self) -> str:
        """Identity of the sweep: the set of its cells (and its tune section, if any)."""
        cells = sorted(c.hash for c in self.cells)
        return digest(cells) if self.tune is None else digest([cells, self.tune.model_dump()])

    def describe(self) -> dict[str, Any]:
        """What sweep.yaml holds."""
        return {
            "name": self.name,
            "source": self.source,
            "description": self.description,
            "sweep_hash": self.hash,
            **self.spec,
            "metrics": self.metrics,
            "target": self.target.model_dump() if self.target else None,
            **({"tune": self.tune.model_dump()} if self.tune else {}),
            "cells": [
                {"label": c.label, "values": c.values, "seed": c.seed, "hash": c.hash}
                for c in self.cells
            ],
        }


# --------------------------------------------------------------------------- helpers
def digest(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_hash(cfg: dict[str, Any]) -> str:
    """Hash of a resolved config, without the fields that do not change the result. The
    ``log`` section counts only where it differs from its defaults, so a sweep made before
    that section existed keeps its cells' hashes (and resumes)."""
    kept = {k: v for k, v in cfg.items() if k not in ("name", "description", "log")}
    defaults = C.LogSettings().model_dump()
    log = {k: v for k, v in (cfg.get("log") or {}).items() if defaults.get(k, object()) != v}
    if log:
        kept["log"] = log
    return digest(kept)


def short(key: str) -> str:
    """A column name for a swept key: ``train.batch_size`` -> ``batch_size``,
    ``optimizer.name`` -> ``optimizer``, ``optimizer.lr`` -> ``lr``."""
    parts = re.sub(r"\[\d+\]", "", key).split(".")
    if parts[-1] in ("name", "type") and len(parts) > 1:
        return parts[-2]
    return parts[-1]


def show(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)) or value is None:
        return json.dumps(value, separators=(",", ":"))
    return str(value)


_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_scalar(text: str) -> Any:
    """A command-line value as YAML would read it (and ``1e-3`` as a number)."""
    text = text.strip()
    try:
        value = L.safe_load(text, "a --grid value") if text else ""
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value)
    return value


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """``["optimizer.name=gd,adam", "train.batch_size=16,64"]`` -> a grid mapping."""
    grid: dict[str, list[Any]] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(
                f"--grid '{item}' has no '='", hint="write --grid optimizer.name=gd,momentum,adam"
            )
        key, values = item.split("=", 1)
        L.parse_path(key.strip())
        grid[key.strip()] = [parse_scalar(v) for v in values.split(",")]
    return grid


def set_value(raw: dict[str, Any], key: str, value: Any, where: str) -> None:
    """``raw[key.path] = value`` (a Python value, not text), creating mappings on the way."""
    tokens = L.parse_path(key)
    node: Any = raw
    for i, tok in enumerate(tokens):
        last = i == len(tokens) - 1
        here = L.format_path(tokens[: i + 1])
        if isinstance(tok, int):
            if not isinstance(node, list) or not -len(node) <= tok < len(node):
                size = len(node) if isinstance(node, list) else "no"
                raise ConfigError(f"{where}: {here} does not exist ({size} items there)")
        elif not isinstance(node, dict):
            raise ConfigError(
                f"{where}: {L.format_path(tokens[:i]) or 'the config'} is not a mapping"
            )
        if last:
            node[tok] = copy.deepcopy(value)
        elif isinstance(tok, int):
            node = node[tok]
        else:
            if node.get(tok) is None:  # absent or null (e.g. train.clip): a new mapping
                node[tok] = {}
            node = node[tok]


def _load_base(base: str | dict[str, Any], folder: Path) -> tuple[dict[str, Any], str]:
    """The raw base config and the file it came from (for messages and its name)."""
    if isinstance(base, str):
        path = folder / base
        return L.load_yaml(path), str(path)
    raw = copy.deepcopy(base)
    parents = raw.pop("extends", None)
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents or []:
        merged = L.deep_merge(merged, L.load_yaml(folder / parent))
    return L.deep_merge(merged, raw), ""


# --------------------------------------------------------------------------- loading
def load_sweep(
    sweep: str | Path | dict[str, Any],
    grid: dict[str, list[Any]] | list[str] | None = None,
    seeds: int | list[int] | None = None,
    overrides: list[str] | None = None,
    name: str | None = None,
) -> Sweep:
    """Read a sweep (a sweep file, a config file, or a mapping), validate and expand it.

    A file or mapping without ``base`` is a config: it becomes the base of a
    sweep given by ``grid`` / ``seeds``. ``grid`` (mapping or ``key=v1,v2``
    strings) replaces the file's grid for the keys it names; ``seeds``
    replaces its seeds; ``overrides`` (``key=value``) are added to ``set``.
    """
    if isinstance(sweep, dict):
        data, source, folder = copy.deepcopy(sweep), "(mapping)", Path.cwd()
    else:
        path = Path(sweep)
        if not path.is_file():
            raise ConfigError(f"sweep file not found: {path}")
        try:
            data = L.safe_load(path.read_text(encoding="utf-8"), str(path)) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a sweep must be a mapping, got {type(data).__name__}")
        source, folder = str(path), path.parent
        if "base" not in data:  # a plain config: the sweep comes from the command line
            data = {"base": path.name, "name": path.stem}
    if "base" not in data:
        data = {"base": data}
    unknown = [k for k in data if k not in SWEEP_KEYS]
    if unknown:
        from dlrun.config.registry import did_you_mean

        raise ConfigError(
            f"sweep {source}: unknown key '{unknown[0]}'{did_you_mean(unknown[0], list(SWEEP_KEYS))}; "
            f"allowed: {', '.join(SWEEP_KEYS)}"
        )
    spec = C.validate_model(SweepFile, data, (), f"sweep {source}")
    assert isinstance(spec, SweepFile)
    if grid:
        spec.grid = {**spec.grid, **(parse_grid(grid) if isinstance(grid, list) else grid)}
    if seeds is not None:
        spec.seeds = seeds
    fixed = dict(spec.set_)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' has no '='", hint="write --set key.path=value")
        key, text = item.split("=", 1)
        fixed[key.strip()] = parse_scalar(text)
    return expand(spec, fixed, source, folder, name)


def _check_axes(spec: SweepFile, fixed: dict[str, Any], source: str) -> list[int]:
    where = f"sweep {source}"
    for axis, mapping in (("grid", spec.grid), ("zip", spec.zip_)):
        for key, values in mapping.items():
            L.parse_path(key)
            if not values:
                raise ConfigError(
                    f"{where}: {axis}.{key} is an empty list; give at least one value"
                )
    lengths = {k: len(v) for k, v in spec.zip_.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{k} ({n})" for k, n in lengths.items())
        raise ConfigError(f"{where}: zip lists must have the same length; got {listed}")
    both = set(spec.grid) & set(spec.zip_)
    if both:
        raise ConfigError(f"{where}: key '{sorted(both)[0]}' is in both grid and zip; keep one")
    swept = [*spec.grid, *spec.zip_]
    for key in swept:
        if key in fixed:
            raise ConfigError(f"{where}: key '{key}' is both fixed (set) and swept; keep one")
    seeds = spec.seeds
    if seeds is not None and ("seed" in swept or "seed" in fixed):
        raise ConfigError(f"{where}: 'seed' is swept by seeds: remove it from grid/zip/set")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ConfigError(f"{where}: seeds must be >= 1 (given: {seeds})")
        return list(range(seeds))
    if isinstance(seeds, list):
        if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ConfigError(f"{where}: seeds must be distinct integers >= 0 (given: {seeds})")
        return list(seeds)
    return []


def expand(
    spec: SweepFile, fixed: dict[str, Any], source: str, folder: Path, name: str | None = None
) -> Sweep:
    """Every cell of the sweep, its config resolved (errors before anything runs)."""
    where = f"sweep {source}"
    seeds = _check_axes(spec, fixed, source)
    for metric in spec.metrics or []:
        if not _METRIC.match(metric):
            raise ConfigError(f"{where}: unknown metric '{metric}'; allowed: {METRIC_FORMS}")
    if spec.target is not None and not re.fullmatch(_EPOCH_METRIC, spec.target.metric):
        raise ConfigError(
            f"{where}: target.metric must be a per-epoch metric: loss, accuracy, val_loss or "
            f"val_accuracy (given: {spec.target.metric})"
        )
    base, base_source = _load_base(spec.base, folder)
    for key, value in fixed.items():
        set_value(base, key, value, f"{where}: set {key}")

    variant_axis = [("variant", n, o) for n, o in spec.variants.items()] or [(None, None, {})]
    grid_rows = list(itertools.product(*spec.grid.values()))
    zip_rows = list(zip(*spec.zip_.values())) or [()]
    sweep_name = name or spec.name or (Path(source).stem if source != "(mapping)" else "sweep")
    cells: list[Cell] = []
    seen: dict[str, str] = {}
    for (axis, vname, vover), grow, zrow in itertools.product(variant_axis, grid_rows, zip_rows):
        values: dict[str, Any] = {}
        if axis:
            values["variant"] = vname
        values.update(zip(spec.grid, grow))
        values.update(zip(spec.zip_, zrow))
        for seed in seeds or [None]:
            label = ",".join(f"{k}={show(v)}" for k, v in values.items())
            label = ", ".join(x for x in (label, f"seed={seed}" if seed is not None else "") if x)
            at = f"{where}, cell ({label or 'base'})"
            raw = copy.deepcopy(base)
            for key, value in (vover or {}).items():
                set_value(raw, key, value, f"{at}: variant {vname} {key}")
            for key, value in values.items():
                if key != "variant":
                    set_value(raw, key, value, f"{at}: {key}")
            if seed is not None:
                raw["seed"] = seed
            try:
                cfg = C.resolve(raw, source=base_source)
            except ConfigError as exc:
                raise ConfigError(f"{at}: {exc.message}", hint=exc.hint) from None
            cfg["name"] = sweep_name
            cell = Cell(values, int(cfg["seed"]), cfg, config_hash(cfg))
            if cell.hash in seen:
                raise ConfigError(
                    f"{where}: cells ({seen[cell.hash]}) and ({label}) resolve to the same config",
                    hint="a swept key that does not change the run (e.g. name) makes duplicates",
                )
            seen[cell.hash] = label
            cells.append(cell)

    axes = (["variant"] if spec.variants else []) + [*spec.grid, *spec.zip_]
    described = {
        "base": spec.base if isinstance(spec.base, dict) else base_source,
        "set": fixed,
        "variants": spec.variants,
        "grid": spec.grid,
        "zip": spec.zip_,
        "seeds": seeds or None,
    }
    return Sweep(
        sweep_name,
        source,
        spec.description,
        described,
        axes,
        spec.metrics,
        spec.target,
        cells,
        spec.tune,
    )
