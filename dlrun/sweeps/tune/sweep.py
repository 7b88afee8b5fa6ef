"""Tuned sweeps: a sweep file's ``tune:`` section.

    grid: {optimizer.name: [gd, adam]}
    seeds: 3
    tune: {params: {optimizer.lr: "log:1e-4:1"}, trials: 16, metric: val_loss}

For each setting of the sweep (its cells without the seed, e.g. each optimizer)
the listed keys are tuned first: a ``dlrun tune`` study of ``trials`` finished
trials in ``<sweep>/tune/<setting>/``, on the setting's config with the tuning
seed (by default one after the sweep's largest seed, so that no reported run is a
tuning run). Then the setting's seeds run at the best values found: the tuned
keys become columns of the table and of results.csv, beside mean ± std.

The studies are resumable like any study: the sweep run again finds them finished,
gets the same best values, and so the same cells, which it skips when done.
A setting whose study has no finite result keeps its config's value (and says so).
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError
from dlrun.sweeps.spec import Cell, Sweep, config_hash, set_value, short, show
from dlrun.sweeps.tune.config import check_metric, check_space, load_base, metric_columns
from dlrun.sweeps.tune.space import Param, space_from_mapping


def _groups(sweep: Sweep) -> dict[tuple, list[Cell]]:
    groups: dict[tuple, list[Cell]] = {}
    for cell in sweep.cells:
        groups.setdefault(cell.setting, []).append(cell)
    return groups


def _space(sweep: Sweep) -> list[Param]:
    assert sweep.tune is not None
    return space_from_mapping(sweep.tune.params, f"sweep {sweep.source}: tune.params")


def tuning_seed(sweep: Sweep) -> int:
    """The seed of the tuning runs: ``tune.seed``, else one after the largest cell seed."""
    assert sweep.tune is not None
    if sweep.tune.seed is not None:
        return sweep.tune.seed
    return max(c.seed for c in sweep.cells) + 1


def _tuning_config(cells: list[Cell], seed: int) -> dict[str, Any]:
    cfg = copy.deepcopy(cells[0].config)
    cfg["seed"] = seed
    return cfg


def _label(setting: tuple) -> str:
    return ",".join(f"{short(k)}={v}" for k, v in setting) or "base"


def check_tune(sweep: Sweep) -> None:
    """ConfigError (before anything runs) unless every tuned key and bound fits every
    setting's config and the metric is written by its runs; Optuna must be installed."""
    from dlrun.sweeps.tune.storage import require_optuna

    require_optuna()
    space = _space(sweep)
    where = f"sweep {sweep.source}"
    swept = set(sweep.spec.get("grid") or {}) | set(sweep.spec.get("zip") or {})
    fixed = set(sweep.spec.get("set") or {})
    for p in space:
        if p.key in swept or p.key in fixed:
            raise ConfigError(f"{where}: key '{p.key}' is both tuned and swept or set; keep one")
        if p.key == "seed":
            raise ConfigError(f"{where}: the seed cannot be tuned")
    seed = tuning_seed(sweep)
    for i, (setting, cells) in enumerate(_groups(sweep).items()):
        base = load_base(_tuning_config(cells, seed))
        try:
            check_space(base, space)
            if i == 0:  # the columns depend on the data and the network, not on the setting
                assert sweep.tune is not None
                check_metric(sweep.tune.metric, metric_columns(base.resolved), sweep.source)
        except ConfigError as exc:
            where = f"sweep {sweep.source}, tune for ({_label(setting)})"
            raise ConfigError(f"{where}: {exc.message}", hint=exc.hint) from None


def tune_cells(
    sweep: Sweep, sweep_dir: Path, jobs: int, threads: int | None, progress: str
) -> Sweep:
    """Tune each setting (or find its finished study), then the sweep with every cell
    at its setting's best values (the tuned keys as columns)."""
    from rich.console import Console

    from dlrun.sweeps.tune.study import tune

    assert sweep.tune is not None
    t = sweep.tune
    space = _space(sweep)
    seed = tuning_seed(sweep)
    console = Console(highlight=False, soft_wrap=True)
    cells: list[Cell] = []
    for setting, group in _groups(sweep).items():
        label = _label(setting)
        folder = Path(sweep_dir) / "tune" / (re.sub(r"[^A-Za-z0-9._=,-]+", "_", label)[:80])
        result = tune(
            _tuning_config(group, seed),
            [p.text() for p in space],
            trials=t.trials,
            metric=t.metric,
            direction=t.direction,
            pruner=t.pruner,
            startup_trials=t.startup_trials,
            warmup_epochs=t.warmup_epochs,
            seed=seed,
            jobs=jobs,
            threads=threads,
            study_dir=folder,
        )
        if result.interrupted:
            raise KeyboardInterrupt
        best = dict(result.best["params"]) if result.best else {}
        if progress != "silent":
            chosen = "  ".join(f"{short(k)}={show(_round(v))}" for k, v in best.items())
            pruned = result.count("pruned")
            found = (
                f"best {chosen} ({t.metric} {result.best['value']:.4g}, trial {result.best['trial']})"
                if result.best
                else "no finite result: the config's values are kept"
            )
            console.print(
                f"tuned {label}: {result.finished} trials ({pruned} pruned), {found}", markup=False
            )
        cells += [_tuned(cell, space, best, sweep.source) for cell in group]
    axes = list(sweep.axes) + [p.key for p in space]
    return dataclasses.replace(sweep, cells=cells, axes=axes)


def _round(value: Any) -> Any:
    """A tuned float with 4 significant digits (the table's and the run's value alike)."""
    return float(f"{value:.4g}") if isinstance(value, float) else value


def _tuned(cell: Cell, space: list[Param], best: dict[str, Any], source: str) -> Cell:
    """``cell`` at the tuned values (rounded to 4 significant digits, so that the table
    shows the value the runs used); a key without a best value keeps the config's."""
    from dlrun.config.resolve import resolve
    from dlrun.sweeps.tune.config import current_value

    cfg = copy.deepcopy(cell.config)
    values = dict(cell.values)
    for p in space:
        if p.key in best:
            value = _round(best[p.key])
            set_value(cfg, p.key, value, f"sweep {source}: tuned {p.key}")
        else:
            value = current_value(cfg, p.key)
        values[p.key] = value
    cfg = resolve(cfg)
    cfg["name"] = cell.config.get("name")
    return Cell(values, cell.seed, cfg, config_hash(cfg))
