"""Metrics of a saved checkpoint: the library function behind ``dlrun eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun import checkpoint, config as C
from dlrun.errors import ConfigError, DataError
from dlrun.runs import RunDir


def load_run(run_dir: str | Path, which: str = "best") -> tuple[dict[str, Any], Any, Any, Any]:
    """(config, network with the checkpoint's weights, splits, targets) of a run."""
    from dlrun.train import Targets, build_network, load_data, make_streams

    if which not in ("best", "last"):
        raise ConfigError(f"--checkpoint must be 'best' or 'last', got '{which}'")
    run = RunDir.open(Path(run_dir))
    cfg = C.resolve(run.config(), source=str(run.path / "config.yaml"))
    streams = make_streams(cfg["seed"])
    splits = load_data(cfg, streams["data"])
    net = build_network(cfg, splits, streams["init"])
    path = run.checkpoints / f"{which}.npz"
    if which == "best" and not path.exists():
        path = run.checkpoints / "last.npz"
    params, *_ = checkpoint.load(path)
    net.load_state_dict(params)
    return cfg, net, splits, Targets(net, splits.task)


def evaluate_run(run_dir: str | Path, split: str = "test", which: str = "best") -> dict[str, float]:
    """Loss (and accuracy) of the run's ``which`` checkpoint on ``split``."""
    from dlrun.train import evaluate

    _, net, splits, targets = load_run(run_dir, which)
    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split must be train, val or test, got '{split}'")
    data = getattr(splits, split)
    if data is None:
        raise DataError(f"this run's dataset has no {split} split")
    metrics = evaluate(net, data, targets)
    metrics["n"] = float(len(data))
    return {k: float(v) for k, v in metrics.items() if np.isscalar(v)}
