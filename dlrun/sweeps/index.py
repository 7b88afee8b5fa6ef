"""The sweep directory and its index of cells: what makes a sweep resumable.

    <runs-dir>/<sweep-name>/
      sweep.yaml    the resolved sweep, with its hash and every cell's hash
      cells.json    index: per cell hash, its attempts and the outcome of the last one
      results.csv   one row per cell (see results.py)
      cells/        the run directories (``<label>-<hash12>-<date>-<id>``)
      plots/        curves of every setting

A cell whose last outcome is ``completed`` or ``diverged`` (a result, not an
accident: it would diverge again) is skipped when the sweep runs again;
``failed`` and ``interrupted`` cells run again into a new run directory (the
old one is kept). A cell that finished but was not yet in the index (the
sweep was killed) is found again from its run directory: its folder name
holds the config hash, which is checked against its config.yaml.
"""

from __future__ import annotations

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from dlrun.config.loading import safe_load
from dlrun.errors import ConfigError, DlrunError
from dlrun.runs.rundir import atomic_write_text
from dlrun.sweeps.cell import CURVE_KEYS
from dlrun.sweeps.spec import Cell, Sweep, config_hash

DONE = ("completed", "diverged")


class SweepDir:
    """One sweep's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.cells_dir = self.path / "cells"
        self.plots_dir = self.path / "plots"
        self.index_path = self.path / "cells.json"
        self.sweep_path = self.path / "sweep.yaml"
        self.results_path = self.path / "results.csv"
        self.cells: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ identity
    def check(self, sweep: Sweep) -> None:
        """Raise ConfigError (touching nothing) if this folder holds something else."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} exists and is not a folder")
        if not self.path.is_dir() or all(p.name == ".lock" for p in self.path.iterdir()):
            return
        if not self.sweep_path.is_file():
            raise ConfigError(
                f"{self.path} exists and is not a sweep directory (no sweep.yaml)",
                hint="give the sweep another --name or another --runs-dir",
            )
        try:
            theirs = (
                safe_load(self.sweep_path.read_text(encoding="utf-8"), str(self.sweep_path)) or {}
            ).get("sweep_hash")
        except (OSError, yaml.YAMLError, AttributeError) as exc:
            raise ConfigError(f"cannot read {self.sweep_path}: {exc}") from None
        if theirs != sweep.hash:
            raise ConfigError(
                f"{self.path} holds a different sweep (sweep hash {str(theirs)[:12]}, this one "
                f"{sweep.hash[:12]}): its cells are not the cells of this sweep",
                hint="give the sweep another --name or --runs-dir, or remove that folder",
            )

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the sweep for this process: two processes must not run one sweep at once."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                raise ConfigError(f"sweep {self.path} is being run by another process") from None
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def prepare(self, sweep: Sweep) -> None:
        self.cells_dir.mkdir(parents=True, exist_ok=True)
        self.plots_dir.mkdir(exist_ok=True)
        atomic_write_text(self.sweep_path, yaml.safe_dump(sweep.describe(), sort_keys=False))
        self.cells = self._read_index()

    # ------------------------------------------------------------------ index
    def _read_index(self) -> dict[str, dict[str, Any]]:
        if not self.index_path.is_file():
            return {}
        try:
            return json.loads(self.index_path.read_text(encoding="utf-8")).get("cells", {})
        except (OSError, ValueError, AttributeError) as exc:
            raise DlrunError(f"cannot read the sweep index {self.index_path}: {exc}") from None

    def _write_index(self) -> None:
        atomic_write_text(self.index_path, json.dumps({"cells": self.cells}, indent=1) + "\n")

    def relative(self, run_dir: str | None) -> str | None:
        if run_dir is None:
            return None
        try:
            return str(Path(run_dir).resolve().relative_to(self.path.resolve()))
        except ValueError:
            return str(run_dir)

    def record(self, cell: Cell, outcome: dict[str, Any]) -> None:
        """Add an attempt's outcome to the index (written atomically at once)."""
        entry = self.cells.setdefault(cell.hash, {"label": cell.label, "attempts": []})
        outcome = {**outcome, "run_dir": self.relative(outcome.get("run_dir"))}
        entry["attempts"].append(
            {
                "status": outcome["status"],
                "reason": outcome["reason"],
                "run_dir": outcome["run_dir"],
                "seconds": outcome["seconds"],
                "worker": outcome.get("worker"),
                "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        entry["outcome"] = outcome
        self._write_index()

    def outcome(self, cell: Cell) -> dict[str, Any] | None:
        """The last recorded outcome of ``cell``."""
        entry = self.cells.get(cell.hash)
        return entry.get("outcome") if entry else None

    def done(self, cell: Cell) -> dict[str, Any] | None:
        """The outcome of ``cell`` if it needs no new run (from the index or its run dir)."""
        found = self.outcome(cell)
        if found and found.get("status") in DONE:
            return found
        recovered = self._recover(cell)
        if recovered is not None:
            self.record(cell, recovered)
            return self.outcome(cell)
        return None

    def _recover(self, cell: Cell) -> dict[str, Any] | None:
        from dlrun.runs.rundir import RunDir

        known = {a["run_dir"] for a in self.cells.get(cell.hash, {}).get("attempts", [])}
        for path in sorted(self.cells_dir.glob(f"*-{cell.hash[:12]}-*")):
            if self.relative(str(path)) in known:
                continue
            run = RunDir(path)
            try:
                summary = run.summary()
                if summary.get("status") not in DONE or config_hash(run.config()) != cell.hash:
                    continue
                curves = [{k: r[k] for k in CURVE_KEYS if k in r} for r in run.metrics()]
            except (DlrunError, OSError, ValueError, KeyError, TypeError):
                continue
            return {
                "hash": cell.hash,
                "status": summary["status"],
                "reason": summary.get("reason", ""),
                "run_dir": str(path),
                "summary": summary,
                "curves": curves,
                "seconds": summary.get("seconds", float("nan")),
                "worker": "recovered from its run directory",
            }
        return None
