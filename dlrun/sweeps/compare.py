"""Compare: run a sweep of configs and put the results side by side.

    from dlrun.sweeps.compare import compare
    result = compare("configs/sweeps/optimizers.yaml", runs_dir="runs", jobs=2)
    result.groups        # one entry per setting: mean +- std over seeds
    result.sweep_dir     # runs/optimizers/: sweep.yaml results.csv cells.json cells/ plots/

The flow: sweep file -> every cell's config resolved and validated (nothing
runs if one is wrong) -> cells already done are skipped -> the rest run,
each through ``dlrun.training.train.train`` (the same code path as ``dlrun train``),
here, in local processes or on a Dask cluster -> results.csv, the table and
the overlaid learning curves. See ``dlrun/sweeps/`` for each step.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError
from dlrun.runs.rundir import write_csv
from dlrun.sweeps.executors import make_executor, prestart
from dlrun.sweeps.index import DONE, SweepDir
from dlrun.sweeps.results import aggregate, cell_row, default_metrics, table
from dlrun.sweeps.spec import Cell, Sweep, load_sweep


@dataclass
class SweepResult:
    """What a sweep produced (also on disk in ``sweep_dir``)."""

    sweep_dir: Path
    sweep: Sweep
    rows: list[dict[str, Any]]  # results.csv, one per cell
    groups: list[dict[str, Any]]  # one per setting, aggregated over seeds
    metrics: list[str]
    ran: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cell label, reason)
    interrupted: bool = False
    plots: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.interrupted

    def table(self) -> Any:
        """The rich Table of the aggregated results."""
        return table(self.sweep, self.groups, self.metrics)


class SweepProgress:
    """One line per finished cell (``plain``/``rich``), or nothing (``silent``)."""

    def __init__(self, mode: str, total: int) -> None:
        from rich.console import Console

        self.mode, self.total, self.count = mode, total, 0
        self.console = Console(highlight=False, soft_wrap=True)

    def note(self, text: str) -> None:
        if self.mode != "silent":
            self.console.print(text, markup=False)

    def cell(self, cell: Cell, outcome: dict[str, Any], skipped: bool = False) -> None:
        self.count += 1
        if self.mode == "silent":
            return
        final = (outcome.get("summary") or {}).get("final") or {}
        shown = "  ".join(
            f"{k} {final[k]:.4g}" for k in ("loss", "val_accuracy", "test_accuracy") if k in final
        )
        status = "done before" if skipped else outcome["status"]
        extra = (
            f" ({outcome['reason']})" if outcome["status"] not in DONE and outcome["reason"] else ""
        )
        secs = "" if skipped else f"  {outcome['seconds']:.1f}s"
        self.note(
            f"[{self.count}/{self.total}] {cell.label}: {status}{extra}  {shown}{secs}".rstrip()
        )


def compare(
    sweep: str | Path | dict[str, Any],
    runs_dir: str | Path = "runs",
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
    fail_fast: bool = False,
    grid: dict[str, list[Any]] | list[str] | None = None,
    seeds: int | list[int] | None = None,
    progress: str = "silent",
    overrides: list[str] | None = None,
    name: str | None = None,
    timeout: float = 5.0,
    threads: int | None = None,
    tls: dict[str, Any] | None = None,
) -> SweepResult:
    """Run every cell of a sweep (skipping those done before) and aggregate the results.

    ``sweep``: a sweep file, a config file (then ``grid`` / ``seeds`` make the
    sweep), or a mapping. ``jobs``: local processes. ``executor``: ``local`` or
    ``dask`` (with ``address`` of the scheduler; ``timeout`` seconds to connect;
    ``tls``: ``{"ca_file", "cert", "key"}`` for a ``tls://`` scheduler).
    ``threads``: Numba and BLAS threads per process (default: all cores for
    ``jobs=1``, ``cores // jobs`` otherwise, never more). ``progress``:
    ``silent`` or ``plain`` (one line per cell). ``overrides``: ``key=value``
    fixed for every cell. ``name``: the sweep's
    folder under ``runs_dir`` (default: the sweep's name or file stem).
    Raises ConfigError before anything runs if the sweep is invalid, the folder
    holds a different sweep, or the cluster cannot be reached.
    """
    if executor == "local":
        prestart(jobs, threads)
    spec = load_sweep(sweep, grid=grid, seeds=seeds, overrides=overrides, name=name)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", spec.name):
        raise ConfigError(
            f"sweep name '{spec.name}' cannot be a folder name; use letters, digits, '.', '_', '-'"
        )
    if spec.tune is not None:  # tuned sweep: every setting's ranges checked before any run
        from dlrun.sweeps.tune.sweep import check_tune, tune_cells

        check_tune(spec)
    if executor == "local" and any(
        (c.config.get("log") or {}).get("tensorboard") for c in spec.cells
    ):
        from dlrun.training.tensorboard import require_writer

        require_writer()  # the extra missing: one clear error, not one failed cell each
    folder = SweepDir(Path(runs_dir) / spec.name)
    folder.check(spec)
    with make_executor(executor, jobs, address, timeout, threads, tls) as ex, folder.lock():
        folder.prepare(spec)
        if spec.tune is not None:
            tune_jobs = jobs if executor == "local" else 1
            spec = tune_cells(spec, folder.path, tune_jobs, threads, progress)
        return _run(spec, folder, ex, fail_fast, progress)


def _run(spec: Sweep, folder: SweepDir, ex: Any, fail_fast: bool, progress: str) -> SweepResult:
    show = SweepProgress(progress, len(spec.cells))
    outcomes: dict[str, dict[str, Any] | None] = {}
    todo: list[Cell] = []
    for cell in spec.cells:
        done = folder.done(cell)
        if done is not None:
            outcomes[cell.hash] = done
            show.cell(cell, done, skipped=True)
        else:
            todo.append(cell)
    by_hash = {c.hash: c for c in todo}
    skipped = len(spec.cells) - len(todo)
    if todo:
        where = ex.describe() if hasattr(ex, "describe") else ex.name
        show.note(f"sweep {spec.name}: {len(todo)} to run, {skipped} done before ({where})")
    failures: list[tuple[str, str]] = []
    ran = 0

    def on_done(outcome: dict[str, Any]) -> bool:
        nonlocal ran
        ran += 1
        cell = by_hash[outcome["hash"]]
        folder.record(cell, outcome)
        outcomes[cell.hash] = folder.outcome(cell)
        show.cell(cell, outcome)
        if outcome["status"] == "interrupted":
            return False
        if outcome["status"] not in DONE:
            failures.append((cell.label, outcome["reason"] or outcome["status"]))
            return not fail_fast
        return True

    tasks = [
        {
            "config": c.config,
            "run_name": c.run_name,
            "cells_dir": str(folder.cells_dir.resolve()),
            "hash": c.hash,
            "hparams": {**c.values, "seed": c.seed},  # TensorBoard's HParams (log.tensorboard)
        }
        for c in todo
    ]
    interrupted = ex.run(tasks, on_done) if tasks else False
    interrupted = interrupted or any(
        (outcomes.get(c.hash) or {}).get("status") == "interrupted" for c in todo
    )
    return _report(spec, folder, outcomes, ran, skipped, failures, interrupted, ex)


def _draw(ex: Any, groups: list[dict[str, Any]], plots_dir: Path) -> list[Path]:
    """The sweep's figures: in the local worker processes when there are some (one figure
    each, at the same time, and this process never imports matplotlib), else here."""
    from dlrun.sweeps import plots

    pool = getattr(ex, "pool", None)
    if pool is None:
        return plots.sweep_curves(groups, plots_dir)
    futures = [pool.submit(figure, groups, plots_dir) for figure in plots.FIGURES]
    return [p for p in (f.result() for f in futures) if p is not None]  # None: no data for it


def _report(
    spec: Sweep,
    folder: SweepDir,
    outcomes: dict[str, dict[str, Any] | None],
    ran: int,
    skipped: int,
    failures: list[tuple[str, str]],
    interrupted: bool,
    ex: Any = None,
) -> SweepResult:
    rows = [cell_row(spec, c, outcomes.get(c.hash)) for c in spec.cells]
    write_csv(folder.results_path, rows)
    present = [o for o in outcomes.values() if o]
    metrics = list(spec.metrics or default_metrics(present))
    groups = aggregate(spec, outcomes, metrics)
    plots: list[Path] = []
    if any(g["curves"] for g in groups):
        try:
            plots = _draw(ex, groups, folder.plots_dir)
        except Exception as exc:  # a figure must never lose the results
            warnings.warn(f"sweep plots failed: {type(exc).__name__}: {exc}", stacklevel=2)
    return SweepResult(
        sweep_dir=folder.path,
        sweep=spec,
        rows=rows,
        groups=groups,
        metrics=metrics,
        ran=ran,
        skipped=skipped,
        failed=failures,
        interrupted=interrupted,
        plots=plots,
    )
