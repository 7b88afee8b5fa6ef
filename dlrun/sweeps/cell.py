"""One cell of a sweep: an ordinary run through ``dlrun.training.train.train``, in any process.

:func:`run_cell` is what every executor calls (in a local worker process, on a
Dask worker). It never raises for a failing run: the outcome says ``failed``
and why, so one bad cell does not stop the others. A cell that kills its
process (a segfault, an exit) cannot say so itself: the process that started
the worker makes its outcome with :func:`crashed_outcome`.
The outcome carries the run's summary and its per-epoch curves, so the sweep
can be aggregated without reading the worker's files.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from typing import Any

THREAD_VARS = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CURVE_KEYS = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
    # recorded when the config's log: section asks for them (the sweep figures draw them)
    "train_eval_loss",
    "train_eval_accuracy",
    "updates",
    "train_seconds",
    "update_norm",
    "effective_lr",
)


_stop_requested = False


def _note_stop(signum: int, frame: Any) -> None:
    global _stop_requested
    _stop_requested = True


def stop_on_sigint() -> None:
    """In a worker process: SIGINT asks the current (or next) run to stop after its batch.

    Training installs its own handler (same effect) and restores this one after;
    before training starts, the flag is read by :func:`_honour_stop` at the first batch.
    Idle workers just note it, rather than dying and breaking the pool.
    """
    signal.signal(signal.SIGINT, _note_stop)


def _honour_stop(trainer: Any) -> None:
    if _stop_requested:
        trainer.stop_requested = True


def limit_threads(threads: int) -> None:
    """Use at most ``threads`` Numba and BLAS threads in this process from here on."""
    from dlrun.runs.threads import set_threads

    set_threads(threads)


def _new_run_dir(cells_dir: Path, run_name: str, before: set[str]) -> Path | None:
    """The run directory this attempt created (its name starts with the cell's run name)."""
    if not cells_dir.is_dir():
        return None
    made = [p for p in cells_dir.glob(f"{run_name}-*") if p.is_dir() and p.name not in before]
    return max(made, key=lambda p: p.stat().st_mtime) if made else None


def run_cell(task: dict[str, Any]) -> dict[str, Any]:
    """Train one cell; return its outcome (status, reason, run_dir, summary, curves, seconds).

    ``task``: ``config`` (resolved), ``run_name``, ``cells_dir``, ``hash`` and
    optionally ``threads`` (Numba threads for this process) and ``hparams`` (the cell's
    values, for TensorBoard's HParams dashboard when the config has ``log.tensorboard``).
    """
    from dlrun.errors import DlrunError
    from dlrun.training.train import train

    if task.get("threads"):
        limit_threads(int(task["threads"]))
    cells_dir = Path(task["cells_dir"])
    before = existing_runs(task)
    start = time.perf_counter()
    status, reason, run_dir, summary = "failed", "", None, {}
    try:
        if _stop_requested:
            raise KeyboardInterrupt
        result = train(
            task["config"],
            runs_dir=cells_dir,
            name=task["run_name"],
            progress="silent",
            callbacks=[_honour_stop],
            hparams=task.get("hparams"),
        )
        run_dir, summary = result.run_dir, result.summary
        status, reason = summary.get("status", "failed"), summary.get("reason", "")
    except KeyboardInterrupt:
        status, reason = "interrupted", "stopped by Ctrl-C"
    except DlrunError as exc:
        reason = exc.message
    except Exception as exc:  # a broken cell must not stop the sweep
        reason = f"{type(exc).__name__}: {exc}"
    run_dir = run_dir or _new_run_dir(cells_dir, task["run_name"], before)
    return _outcome(task, status, reason, run_dir, summary, time.perf_counter() - start)


def _outcome(
    task: dict[str, Any],
    status: str,
    reason: str,
    run_dir: Path | None,
    summary: dict[str, Any],
    seconds: float,
    worker: str | None = None,
) -> dict[str, Any]:
    """The outcome dict; the summary (if not given) and the curves read from ``run_dir``."""
    from dlrun.errors import DlrunError
    from dlrun.runs.rundir import RunDir

    curves: list[dict[str, Any]] = []
    if run_dir is not None:
        run = RunDir(run_dir)
        try:
            summary = summary or run.summary()
            curves = [{k: r[k] for k in CURVE_KEYS if k in r} for r in run.metrics()]
        except (DlrunError, OSError, ValueError, KeyError):
            pass
    return {
        "hash": task["hash"],
        "status": status,
        "reason": reason,
        "run_dir": str(run_dir) if run_dir else None,
        "summary": summary,
        "curves": curves,
        "seconds": seconds,
        "worker": worker or f"{socket.gethostname()}:{os.getpid()}",
    }


def existing_runs(task: dict[str, Any]) -> set[str]:
    """Names of the cell's run directories that exist now (before an attempt starts)."""
    cells_dir = Path(task["cells_dir"])
    if not cells_dir.is_dir():
        return set()
    return {p.name for p in cells_dir.glob(f"{task['run_name']}-*")}


def crashed_outcome(
    task: dict[str, Any], reason: str, before: set[str], seconds: float, worker: str
) -> dict[str, Any]:
    """The outcome of a cell whose process died (a signal, an exit) while it ran.

    Its run directory, if it made one, is marked ``failed`` with ``reason`` (summary.json
    and log.txt), unless the run had finished and written its summary before the
    process died (then the run's own status stands: it is a result). Called by the
    process that ran the worker, once the worker is gone and its lock with it.
    """
    from dlrun.errors import DlrunError
    from dlrun.runs.rundir import RunDir

    run_dir = _new_run_dir(Path(task["cells_dir"]), task["run_name"], before)
    status, summary = "failed", {}
    if run_dir is not None:
        run = RunDir(run_dir)
        try:
            with run.lock():
                try:
                    summary = run.summary()
                except DlrunError:
                    summary = {}
                if summary.get("status") in ("completed", "diverged"):
                    run.log(f"the process died after the run had finished ({reason})")
                    status, reason = summary["status"], summary.get("reason", "")
                else:
                    summary = {**summary, "status": "failed", "reason": reason}
                    run.write_summary(summary)
                    run.log(f"status failed: {reason}")
        except (DlrunError, OSError):  # held by another process, or not writable: left as is
            pass
    return _outcome(task, status, reason, run_dir, summary, seconds, worker)
