"""``train``: the library function behind ``dlrun train``.

    from dlrun.training.train import train
    result = train("configs/xor_mlp.yaml", runs_dir="runs", overrides=["optimizer.lr=0.5"])
    result.summary["final"]["test_accuracy"]

A run is a new run directory (or, with ``resume``, an interrupted one continued): the
config resolved, the data loaded, the network built and its training steps planned
(``train.fuse``), the trainer's parts built (``parts.build_parts``), then the loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlrun.config.loading import apply_overrides
from dlrun.config.resolve import load, resolve
from dlrun.errors import CheckpointError, DataError, DlrunError
from dlrun.runs import blas_record
from dlrun.runs.build import build_network, load_data, make_streams
from dlrun.runs.rundir import RunDir, fs_error
from dlrun.training.parts import build_parts
from dlrun.training.progress import Progress
from dlrun.training.trainer import Trainer


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def train(
    config: str | Path | dict[str, Any],
    runs_dir: str | Path = "runs",
    overrides: list[str] | None = None,
    name: str | None = None,
    resume: str | Path | None = None,
    progress: str = "silent",
    callbacks: list[Callable[[Trainer], None]] | None = None,
    root: Path | None = None,
    hparams: dict[str, Any] | None = None,
) -> RunResult:
    """Train one network: the library function behind ``dlrun train``.

    ``config`` is a YAML path or an already-resolved dict; ``resume`` a run
    directory to continue (its config is used; overrides are not allowed).
    With ``log.tensorboard``, ``hparams`` are added to what TensorBoard's HParams
    dashboard shows for the run (a sweep cell's values; see ``dlrun.training.tensorboard``).
    """
    overrides = list(overrides or [])
    if resume is not None:
        if overrides:
            raise DlrunError("--set cannot be combined with --resume (the run keeps its config)")
        run = RunDir.open(Path(resume))
        cfg = resolve(run.config(), source=str(run.path / "config.yaml"))
    elif isinstance(config, dict):
        cfg = resolve(apply_overrides(config, overrides))
    else:
        cfg = load(config, overrides)
    if name:
        cfg["name"] = name
    tensorboard = bool(cfg.get("log", {}).get("tensorboard"))
    if tensorboard:  # a missing extra is a ConfigError before any work
        from dlrun.training.tensorboard import require_writer

        require_writer()
    blas_record.checked_policy()  # a bad DLRUN_BLAS is an error before any work
    streams = make_streams(cfg["seed"])
    try:
        splits = load_data(cfg, streams["data"], root)
    except (OSError, ValueError, OverflowError, MemoryError) as exc:  # a DlrunError says more
        why = str(exc) or type(exc).__name__  # a MemoryError says nothing
        raise DataError(f"dataset '{cfg['data']['name']}' could not be loaded: {why}") from None
    net = build_network(cfg, splits, streams["init"])
    parts = build_parts(cfg, net, has_val=splits.val is not None)
    if resume is None:
        run = RunDir.create(Path(runs_dir), cfg.get("name") or "run")
    try:
        with run.lock():
            if resume is None:
                run.write_config(cfg, overrides, splits.source)
                run.log(f"created; config {config if not isinstance(config, dict) else '(dict)'}")
            else:
                _check_resumable(run)
            if splits.source:
                run.log(f"data read from {splits.source}")
            trainer = Trainer(
                cfg, run, splits, net, streams, parts, Progress(progress, run.path.name), callbacks
            )
            del splits  # the trainer's reference only: the training set goes before the figures
            if resume is not None:
                _restore(trainer, run)
            if tensorboard:  # opened at the trainer's position (a resume continues there)
                from dlrun.training.tensorboard import TensorBoardLogger, hyperparameters

                logger = TensorBoardLogger(trainer, hyperparameters(cfg, overrides, hparams))
                trainer.callbacks = [*trainer.callbacks, logger]  # the caller's list unchanged
            run.log("training steps: " + "; ".join(net.plan_lines()))
            with blas_record.recorded(run, resumed=resume is not None):  # env.json, log.txt
                summary = trainer.fit()
    except OSError as exc:
        raise fs_error(exc, f"cannot write run directory {run.path}") from None
    return RunResult(run.path, json.loads(json.dumps(summary, default=float)))


def _check_resumable(run: RunDir) -> None:
    """Refuse to resume a completed run; a damaged summary.json does not stop a resume
    (the checkpoint is what it continues from, and the summary is written anew)."""
    try:
        summary = run.summary()
    except CheckpointError as exc:
        run.log(f"resuming despite an unreadable summary: {exc.message}")
        return
    if summary.get("status") == "completed":
        raise CheckpointError(f"run {run.path} is already completed; nothing to resume")


def _restore(trainer: Trainer, run: RunDir) -> None:
    """Continue from last.npz; metrics.csv is rebuilt up to the checkpoint's epoch (a row
    cut short, or one written after the checkpoint, is dropped). A run killed before it
    wrote a checkpoint starts again from its seed: the same run as if never stopped."""
    if not (run.checkpoints / "last.npz").is_file():  # killed before its first checkpoint
        run.log("no checkpoint yet: the run starts from the beginning")
        trainer.rows = []
        run.write_metrics([])
        return
    trainer.restore(run.checkpoints / "last.npz")
    rows = [r for r in run.metrics() if r["epoch"] <= trainer.epoch]
    if len(rows) < trainer.epoch:
        run.log(f"metrics.csv holds {len(rows)} whole rows of the checkpoint's {trainer.epoch}")
    trainer.rows = rows
    run.write_metrics(rows)
    run.log(f"resumed at epoch {trainer.epoch}, batch {trainer.batch}")
