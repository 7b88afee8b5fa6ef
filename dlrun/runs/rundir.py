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
import errno
import fcntl
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from dlrun.config.loading import safe_load
from dlrun.errors import CheckpointError, RunFilesError

STATUSES = ("running", "completed", "interrupted", "diverged", "failed")
#: Longest run name kept in a folder name (the stamp and id follow it; file systems allow
#: 255 bytes per name).
MAX_NAME = 100


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Mode of the files dlrun writes: what open() would give (0o666 less the umask).
FILE_MODE = 0o666 & ~_umask()


def fs_error(exc: OSError, what: str) -> RunFilesError:
    """A clear message for a file-system fault while ``what``."""
    reason = exc.strerror or str(exc)
    where = f" ({exc.filename})" if exc.filename else ""
    hints = {
        errno.ENOSPC: "free some disk space, or use --runs-dir on another disk",
        errno.EFBIG: "the file grew past the file system's size limit",
        errno.EACCES: "choose a folder you may write to (--runs-dir)",
        errno.EROFS: "choose a folder on a writable file system (--runs-dir)",
        errno.ENOTDIR: "a file stands where a folder is needed; remove it or pick --runs-dir",
        errno.EEXIST: "a file stands where a folder is needed; remove it or pick --runs-dir",
    }
    return RunFilesError(f"{what}: {reason}{where}", hint=hints.get(exc.errno))


def atomic_write(path: Path, write: Callable[[io.BufferedWriter], None]) -> None:
    """Write ``path`` through ``write(file)`` into a temporary file, then rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)  # mkstemp makes 0600; a run's files are as readable as any
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
        """A new, empty run directory in ``runs_dir``: ``<name>-<stamp>-<id>``, the name
        made safe for a file name and cut to MAX_NAME characters."""
        runs_dir = Path(runs_dir)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        safe = safe[:MAX_NAME].lstrip(".") or "run"
        try:
            runs_dir.mkdir(parents=True, exist_ok=True)
            while True:
                path = runs_dir / f"{safe}-{stamp}-{secrets.token_hex(3)}"
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    if not runs_dir.is_dir():
                        raise
            run = cls(path)
            run.checkpoints.mkdir()
            run.plots.mkdir()
        except OSError as exc:
            raise fs_error(exc, f"cannot create a run directory in {runs_dir}") from None
        return run

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold this run directory for one training process. A second process (another
        ``--resume``, a sweep cell) is refused, with the holder's PID. The lock is the
        operating system's (flock on the folder itself): it ends with its process, so a
        killed run leaves no stale lock, and no file is written for it."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        except OSError as exc:
            raise fs_error(exc, f"cannot open {self.path}") from None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _lock_holder(os.fstat(fd).st_ino) or "unknown"
                raise CheckpointError(
                    f"run {self.path} is being trained by another process (PID {holder})",
                    hint="wait for it to finish, or stop it; the lock ends with its process",
                ) from None
            yield
        finally:
            os.close(fd)  # closing releases the lock

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
    def write_config(
        self, cfg: dict[str, Any], overrides: list[str], data_source: str | None = None
    ) -> None:
        """config.yaml, overrides.txt and env.json (with the folder or file the data came
        from, when it came from files)."""
        atomic_write_text(self.path / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
        atomic_write_text(self.path / "overrides.txt", "".join(f"{o}\n" for o in overrides))
        self.write_json("env.json", {**environment(), "data_source": data_source})

    def config(self) -> dict[str, Any]:
        try:
            path = self.path / "config.yaml"
            return safe_load(path.read_text(encoding="utf-8"), str(path))
        except (OSError, yaml.YAMLError) as exc:
            raise CheckpointError(f"cannot read {self.path / 'config.yaml'}: {exc}") from None

    def write_json(self, name: str, data: dict[str, Any]) -> None:
        """Write ``data`` as strict JSON: a NaN or infinity becomes null."""
        text = json.dumps(_finite(data), indent=2, default=_jsonable, allow_nan=False)
        atomic_write_text(self.path / name, text + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        """The JSON object in file ``name`` ({} if there is none); a CheckpointError if the
        file is not a JSON object."""
        path = self.path / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:  # ValueError: bad JSON, bad UTF-8
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path} holds {type(data).__name__}, not a JSON object")
        return data

    def write_metrics(self, rows: list[dict[str, Any]]) -> None:
        """Rewrite metrics.csv with ``rows`` (one per epoch)."""
        write_csv(self.path / "metrics.csv", rows)

    def metrics(self) -> list[dict[str, float]]:
        """The rows of metrics.csv that are whole, by epoch: a row cut short or holding a
        value that is not a number (a damaged file) is left out, and a repeated epoch is
        read once (its first row)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return []
        rows: dict[int, dict[str, float]] = {}
        try:
            with path.open(encoding="utf-8", newline="") as f:
                reader = csv.DictReader(f)
                columns = reader.fieldnames or []
                for raw in reader:
                    row = _metrics_row(raw, columns)
                    if row is not None and row["epoch"] >= 1:
                        rows.setdefault(row["epoch"], row)
        except (OSError, ValueError, csv.Error) as exc:
            raise CheckpointError(f"cannot read {path}: {exc}") from None
        return [rows[e] for e in sorted(rows)]

    def log(self, line: str) -> None:
        with (self.path / "log.txt").open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def summary(self) -> dict[str, Any]:
        return self.read_json("summary.json")

    def write_summary(self, summary: dict[str, Any]) -> None:
        self.write_json("summary.json", summary)


def _lock_holder(inode: int) -> str | None:
    """The PID holding a flock on the file with ``inode``, from /proc/locks (Linux)."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 4242 fd:01:123456 0 EOF" (blocked waiters have "->")
        if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == str(inode):
            return fields[4]
    return None


def _metrics_row(raw: dict[str, Any], columns: list[str]) -> dict[str, float] | None:
    """One metrics.csv row as numbers, or None if it is not whole."""
    if "epoch" not in columns or None in raw or any(raw.get(k) is None for k in columns):
        return None  # a row with too many or too few fields
    row: dict[str, float] = {}
    try:
        for key in columns:
            value = raw[key]
            row[key] = float(value) if value != "" else float("nan")
        epoch = row["epoch"]
        if not epoch.is_integer():
            return None
        row["epoch"] = int(epoch)
    except ValueError:
        return None
    return row


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
        raise CheckpointError(f"no runs folder at {runs_dir}", hint="dlrun runs RUNS_DIR")
    for path in sorted(runs_dir.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if not (path / "config.yaml").is_file():
            continue
        try:
            summary = RunDir(path).summary()
        except CheckpointError as exc:
            summary = {"status": "unreadable", "reason": exc.message}
        out.append({"path": path, "name": path.name, **summary})
    return out
