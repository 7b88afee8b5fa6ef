"""The tuned config: the base (a file or a mapping, with ``--set``), one config per trial,
and the checks made before any trial starts (every key of the space, the metric).

A trial's config is the base with the trial's values written into it (Python
values, not text: ``1e-05`` stays a number) and resolved again, the way a
sweep's cells are made, so a value the config does not allow is a ConfigError
naming the key.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlrun.config import loading as L
from dlrun.config import resolve as C
from dlrun.errors import ConfigError
from dlrun.sweeps.spec import config_hash, parse_scalar, set_value
from dlrun.sweeps.tune.space import Param

#: Columns of metrics.csv that every run writes (besides those the data and network add).
ALWAYS = ("epoch", "loss", "lr", "seconds")


@dataclass(frozen=True)
class Base:
    """The config every trial starts from: ``raw`` (overrides applied) and its source."""

    raw: dict[str, Any]
    source: str
    resolved: dict[str, Any]

    @property
    def hash(self) -> str:
        return config_hash(self.resolved)

    def trial_config(self, values: dict[str, Any], where: str = "trial") -> dict[str, Any]:
        """The resolved config of a trial with ``values`` (key -> value)."""
        raw = copy.deepcopy(self.raw)
        for key, value in values.items():
            set_value(raw, key, value, f"{where}: {key}")
        try:
            return C.resolve(raw, source=self.source)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def load_base(config: str | Path | dict[str, Any], overrides: list[str] | None = None) -> Base:
    """The base config of a study: a YAML file or a mapping, with ``key=value`` overrides."""
    if isinstance(config, dict):
        raw, source = copy.deepcopy(config), ""
    else:
        raw, source = L.load_yaml(config), str(config)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override '{item}' has no '='", hint="write --set key.path=value")
        key, text = item.split("=", 1)
        set_value(raw, key.strip(), parse_scalar(text), f"--set {item}")
    return Base(raw, source, C.resolve(copy.deepcopy(raw), source=source))


def check_space(base: Base, space: list[Param]) -> None:
    """ConfigError unless every bound and every choice of every parameter makes a valid
    config (an unknown key, a value the key does not take); nothing is trained."""
    for param in space:
        for value in param.probes():
            base.trial_config({param.key: value}, where=f"--param {param.text()}")


def metric_columns(cfg: dict[str, Any]) -> set[str]:
    """The metrics.csv columns a run of ``cfg`` writes: its data are loaded and its network
    built (as ``train`` does before the run directory exists), nothing is trained."""
    from dlrun.errors import DataError
    from dlrun.runs.build import build_network, load_data, make_streams

    streams = make_streams(cfg["seed"])
    try:
        splits = load_data(cfg, streams["data"])
    except (OSError, ValueError) as exc:
        raise DataError(f"dataset '{cfg['data']['name']}' could not be loaded: {exc}") from None
    net = build_network(cfg, splits, streams["init"])
    columns = set(ALWAYS)
    if splits.task == "classification":
        columns.add("accuracy")
    if splits.val is not None:
        columns |= {f"val_{c}" for c in columns if c in ("loss", "accuracy")}
    names = net.tensor_names  # per-layer gradient norms, as the trainer reports them
    weights = [n for n in names if n.endswith(".W")] or names[:1]
    columns |= {f"grad_norm/{n.rsplit('.', 1)[0]}" for n in weights}
    return columns


def check_metric(metric: str, columns: set[str], source: str) -> None:
    """ConfigError unless the runs of this config write ``metric`` to metrics.csv."""
    if metric in columns:
        return
    where = source or "the config"
    if metric.startswith("test_"):
        raise ConfigError(
            f"metric '{metric}' is measured once, after training: it cannot be tuned on",
            hint="tune on a validation metric (val_loss, val_accuracy): choosing by the test "
            "set makes its result optimistic",
        )
    from dlrun.config.registry import did_you_mean

    hint = None
    if metric.startswith("val_") and not any(c.startswith("val_") for c in columns):
        hint = "runs of this config have no validation set: set data.val_fraction (e.g. 0.2)"
    shown = ", ".join(sorted(c for c in columns if not c.startswith("grad_norm/")))
    raise ConfigError(
        f"metric '{metric}' is not written by runs of {where}"
        f"{did_you_mean(metric, sorted(columns))}; their metrics.csv has: {shown}",
        hint=hint,
    )


def infer_direction(metric: str, direction: str | None) -> str:
    """``minimize`` or ``maximize``: given, else maximize for accuracies and minimize
    for losses (ConfigError for other metrics)."""
    if direction is not None:
        aliases = {"min": "minimize", "max": "maximize"}
        value = aliases.get(direction, direction)
        if value not in ("minimize", "maximize"):
            raise ConfigError(f"--direction must be minimize or maximize (given: {direction})")
        return value
    if "accuracy" in metric:
        return "maximize"
    if "loss" in metric:
        return "minimize"
    raise ConfigError(
        f"cannot tell whether '{metric}' should be small or large",
        hint="give --direction minimize or --direction maximize",
    )


def run_value(summary: dict[str, Any], metric: str) -> float | None:
    """The metric of the model a run delivers: the best epoch's when early stopping
    restored it, else the last epoch's. None when the run does not have it."""
    row = summary.get("best") if summary.get("restored_best_epoch") is not None else None
    row = row or summary.get("final") or {}
    value = row.get(metric)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def current_value(cfg: dict[str, Any], key: str) -> Any:
    """The value at ``key`` (a dotted path with list indices) of a config, None if absent."""
    node: Any = cfg
    for tok in L.parse_path(key):
        try:
            node = node[tok]
        except (KeyError, IndexError, TypeError):
            return None
    return node
