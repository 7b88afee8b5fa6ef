"""Run directories: naming, atomic writes, metrics, summary, listing.

    runs/<name>-<YYYYmmdd-HHMMSS>-<id>/
      config.yaml  overrides.txt  env.json  metrics.csv  summary.json  log.txt
      checkpoints/last.npz  checkpoints/best.npz  plots/*.png

A run directory is created exclusively (never reused or overwritten); every
file in it is written atomically (temporary file in the same folder, flush,
fsync, ``os.replace``), so a crash leaves the previous version intact.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dlrun.errors import CheckpointError

STATUSES = ("running", "completed", "interrupted", "diverged", "failed")


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def environment() -> dict[str, Any]:
    import numba
    import numpy

    import dlrun

    return {
        "dlrun": dlrun.__version__,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "numba": numba.__version__,
        "numba_threads": numba.config.NUMBA_NUM_THREADS,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "git_commit": git_commit(),
    }


class RunDir:
    """One run's folder and the files in it."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"
        self.plots = self.path / "plots"

    @classmethod
    def create(cls, runs_dir: Path, name: str) -> RunDir:
        runs_dir = Path(runs_dir)
        runs_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name) or "run"
        while True:
            path = runs_dir / f"{safe}-{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir()
                break
            except FileExistsError:
                continue
        run = cls(path)
        run.checkpoints.mkdir()
        run.plots.mkdir()
        return run

    @classmethod
    def open(cls, path: Path) -> RunDir:
        path = Path(path)
        if not (path / "config.yaml").is_file():
            raise CheckpointError(
                f"{path} is not a run directory (no config.yaml)",
                hint="pass a folder made by `dlrun train`, e.g. runs/<name>-<date>-<id>",
            )
        return cls(path)

    # ------------------------------------------------------------------ files
    def write_config(self, cfg: dict[str, Any], overrides: list[str]) -> None:
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        atomic_write_text(self.path / "overrides.txt", "".join(f"{o}\n" for o in overrides))
        self.write_json("env.json", environment())

    def config(self) -> dict[str, Any]:
        try:
            return yaml.safe_load((self.path / "config.yaml").read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise CheckpointError(f"cannot read {self.path / 'config.yaml'}: {exc}") from None

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write ``data`` as strict JSON: a NaN or infinity becomes null."""
        text = json.dumps(_finite(data), indent=2, default=_jsonable, allow_nan=False)
        atomic_write_text(self.path / name, text + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.csv with ``rows`` (one per epoch)."""
        write_csv(self.path / "metrics.csv", rows)

    def metrics(self) -> list[dict[str, float]]:
        path = self.path / "metrics.csv"
        if not path.is_file():
            return []
        with path.open(encoding="utf-8") as f:
            rows = [
                {k: float(v) if v not in ("", None) else float("nan") for k, v in row.items()}
                for row in csv.DictReader(f)
            ]
        for row in rows:
            row["epoch"] = int(row["epoch"])
        return rows

    def log(self, line: str) -> None:
        with (self.path / "log.txt").open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def summary(self) -> dict[str, Any]:
        return self.read_json("summary.json")

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.write_json("summary.json", summary)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write ``rows`` as CSV atomically: columns in first-seen order, floats exact (repr)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _fmt(row.get(k)) for k in columns})
    atomic_write_text(Path(path), buf.getvalue())


def _fmt(value: Any) -> Any:
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else value


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, +-inf) replaced by None, at any depth."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return _finite(_jsonable(value)) if type(value).__module__ == "numpy" else value


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def list_runs(runs_dir: Path) -> list[dict[str, Any]]:
    """One dict per run directory under ``runs_dir`` (newest first)."""
    out = []
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return out
    for path in sorted(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if not (path / "config.yaml").is_file():
            continue
        run = RunDir(path)
        try:
            summary = run.summary()
        except CheckpointError:
            summary = {"status": "unreadable"}
        out.append({"path": path, "name": path.name, **summary})
    return out
