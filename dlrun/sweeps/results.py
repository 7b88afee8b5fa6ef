"""What a sweep reports: metrics of each cell, results.csv, mean +- std over seeds.

Metrics of one cell (``metric_value``):

    loss accuracy val_loss val_accuracy test_loss test_accuracy   final values
    best_<metric>          at the best epoch of the run's monitor
    <metric>@k             at epoch k (e.g. loss@5: "after 5 epochs")
    gap                    train accuracy - val_accuracy of the model the run delivers
                           (the best epoch's when early stopping restored it); the train
                           accuracy is train_eval_accuracy (the training set in evaluation
                           mode at the epoch's end, ``log.train_eval``) where the run
                           recorded it, else the running accuracy of the epoch's batches
    sparsity               fraction of weights with |w| < 1e-3
    epochs, seconds        epochs run, seconds of training
    seconds_per_epoch      median seconds of one epoch
    epochs_to_target       first epoch where the target metric reaches its value
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import numpy as np

from dlrun.sweeps.spec import Cell, Sweep, Target, short, show
from dlrun.training.callbacks import monitor_mode

DEFAULT_METRICS = ("val_loss", "val_accuracy", "test_accuracy")
FINAL_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")
#: Final values results.csv also has when the runs recorded them (``log.train_eval``).
OPTIONAL_FINAL_KEYS = ("train_eval_loss", "train_eval_accuracy")


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value


def epochs_to_target(curves: list[dict[str, Any]], target: Target | None) -> int | None:
    """First epoch at which ``target.metric`` reaches ``target.value`` (None if never)."""
    if target is None:
        return None
    mode = monitor_mode(target.metric, target.mode)
    for row in curves:
        v = _num(row.get(target.metric))
        if v is not None and (v >= target.value if mode == "max" else v <= target.value):
            return int(row["epoch"])
    return None


def metric_value(
    outcome: dict[str, Any], metric: str, target: Target | None = None
) -> float | None:
    """One metric of one cell's outcome (None when the run does not have it)."""
    summary = outcome.get("summary") or {}
    final, best = summary.get("final") or {}, summary.get("best") or {}
    curves = outcome.get("curves") or []
    if "@" in metric:
        key, epoch = metric.split("@")
        row = next((r for r in curves if int(r["epoch"]) == int(epoch)), None)
        return _num(row.get(key)) if row else None
    if metric.startswith("best_"):
        return _num(best.get(metric[5:]))
    if metric == "gap":
        row = best if summary.get("restored_best_epoch") is not None else final
        acc = _num(row.get("train_eval_accuracy", row.get("accuracy")))
        val = _num(row.get("val_accuracy"))
        return acc - val if acc is not None and val is not None else None
    if metric in ("sparsity", "epochs"):
        return _num(summary.get(metric))
    if metric == "seconds":
        return _num(summary.get("seconds", outcome.get("seconds")))
    if metric == "seconds_per_epoch":
        # the median: the first epoch of a process also loads (or compiles) the kernels
        times = [_num(r.get("seconds")) for r in curves]
        times = [t for t in times if t is not None]
        return float(np.median(times)) if times else None
    if metric == "epochs_to_target":
        reached = epochs_to_target(curves, target)
        return float(reached) if reached is not None else None
    return _num(final.get(metric))


def default_metrics(outcomes: list[dict[str, Any]]) -> list[str]:
    """The usual columns that these runs have (val loss/accuracy, test accuracy, else loss)."""
    have = {k for o in outcomes for k in ((o.get("summary") or {}).get("final") or {})}
    chosen = [m for m in DEFAULT_METRICS if m in have]
    return chosen or ["loss"]


# --------------------------------------------------------------------------- results.csv
def cell_row(sweep: Sweep, cell: Cell, outcome: dict[str, Any] | None) -> dict[str, Any]:
    """One results.csv row: swept values, seed, status, final and best metrics, time, run dir."""
    row: dict[str, Any] = {k: show(v) for k, v in cell.values.items()}
    row["seed"] = cell.seed
    outcome = outcome or {"status": "not run", "reason": "", "summary": {}, "curves": []}
    summary = outcome.get("summary") or {}
    row["status"] = outcome["status"]
    row["reason"] = outcome.get("reason", "")
    for key in FINAL_KEYS:
        row[f"final_{key}"] = _num((summary.get("final") or {}).get(key))
    for key in OPTIONAL_FINAL_KEYS:
        if key in (summary.get("final") or {}):
            row[f"final_{key}"] = _num(summary["final"][key])
    for key in FINAL_KEYS[:4]:
        row[f"best_{key}"] = _num((summary.get("best") or {}).get(key))
    row["best_epoch"] = summary.get("best_epoch")
    row["gap"] = metric_value(outcome, "gap")
    row["sparsity"] = _num(summary.get("sparsity"))
    row["epochs"] = summary.get("epochs")
    row["seconds"] = metric_value(outcome, "seconds")
    if sweep.target is not None:
        row["epochs_to_target"] = epochs_to_target(outcome.get("curves") or [], sweep.target)
    row["hash"] = cell.hash[:12]
    row["run_dir"] = outcome.get("run_dir") or ""
    return row


# --------------------------------------------------------------------------- aggregation
def _stats(values: list[float | None]) -> dict[str, Any]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "n": 0}
    arr = np.asarray(finite, dtype=np.float64)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
        "n": len(arr),
    }


def aggregate(
    sweep: Sweep, outcomes: dict[str, dict[str, Any] | None], metrics: list[str]
) -> list[dict[str, Any]]:
    """One entry per setting (cells that differ only by seed): mean +- std of each metric."""
    groups: dict[tuple, list[Cell]] = {}
    for cell in sweep.cells:
        groups.setdefault(cell.setting, []).append(cell)
    out = []
    for setting, cells in groups.items():
        done = [outcomes.get(c.hash) for c in cells]
        ran = [o for o in done if o is not None]
        counted = [o for o in ran if o["status"] in ("completed", "diverged")]
        entry: dict[str, Any] = {
            "setting": dict(setting),
            "label": ",".join(f"{short(k)}={v}" for k, v in setting) or "base",
            "runs": len(cells),
            "statuses": dict(Counter(o["status"] if o else "not run" for o in done)),
            "metrics": {
                m: _stats([metric_value(o, m, sweep.target) for o in counted]) for m in metrics
            },
            "seconds": _stats([metric_value(o, "seconds") for o in counted]),
            "curves": [o.get("curves") or [] for o in counted],
            # for the figures, in the order of the curves: how each run ended, where it is
            # (relative to the sweep's folder, or absolute), and the setting's config
            "run_statuses": [o["status"] for o in counted],
            "run_dirs": [o.get("run_dir") for o in counted],
            "config": cells[0].config,
        }
        if sweep.target is not None:
            reached = [epochs_to_target(o.get("curves") or [], sweep.target) for o in counted]
            entry["target"] = {
                **_stats([float(r) if r is not None else None for r in reached]),
                "reached": sum(r is not None for r in reached),
                "of": len(counted),
            }
        out.append(entry)
    return out


def format_stat(stat: dict[str, Any], digits: int = 4) -> str:
    if stat.get("mean") is None:
        return "-"
    if stat["n"] > 1:
        return f"{stat['mean']:.{digits}g} ± {stat['std']:.2g}"
    return f"{stat['mean']:.{digits}g}"


def table(sweep: Sweep, groups: list[dict[str, Any]], metrics: list[str]) -> Any:
    """A rich Table: one row per setting, mean ± std over seeds."""
    from rich.table import Table

    title = f"sweep {sweep.name}: {len(sweep.cells)} runs"
    tab = Table(title=title, title_justify="left", header_style="bold")
    axes = list(sweep.axes)
    tuned = set(sweep.tune.params) if sweep.tune is not None else set()
    for axis in axes:
        tab.add_column(short(axis) + (" (tuned)" if axis in tuned else ""))
    tab.add_column("runs")
    for m in metrics:
        tab.add_column(m, justify="right")
    if sweep.target is not None:
        t = sweep.target
        sign = ">=" if monitor_mode(t.metric, t.mode) == "max" else "<="
        tab.add_column(f"epochs to {t.metric} {sign} {t.value:g}", justify="right")
    tab.add_column("time (s)", justify="right")
    for g in groups:
        statuses = g["statuses"]
        ok = statuses.get("completed", 0)
        runs = f"{ok}/{g['runs']}" + "".join(
            f" {n} {s}" for s, n in statuses.items() if s != "completed"
        )
        cells = [g["setting"].get(a, "") for a in axes]
        cells.append(runs)
        cells += [format_stat(g["metrics"][m]) for m in metrics]
        if sweep.target is not None:
            tg = g["target"]
            cells.append(
                "-" if tg["mean"] is None else f"{format_stat(tg, 3)} ({tg['reached']}/{tg['of']})"
            )
        cells.append(format_stat(g["seconds"], 3))
        tab.add_row(*[str(c) for c in cells])
    return tab
