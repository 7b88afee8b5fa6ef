"""Metrics of a saved checkpoint: the library function behind ``dlrun eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun import checkpoint
from dlrun import config as C
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
    params = checkpoint.load_params(path)
    net.load_state_dict(params)
    return cfg, net, splits, Targets(net, splits.task)


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, k: int) -> np.ndarray:
    """counts[i, j] = how many samples of true class i were predicted as j."""
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (labels.reshape(-1), predicted.reshape(-1)), 1)
    return counts


def evaluate_run(
    run_dir: str | Path, split: str = "test", which: str = "best", plots: bool = True
) -> dict[str, Any]:
    """Metrics of the run's ``which`` checkpoint on ``split``.

    For classification also the confusion matrix (``confusion``) and, with
    ``plots``, ``plots/confusion.png`` and (for image inputs) a grid of
    misclassified examples ``plots/misclassified.png`` in the run directory.
    """
    from dlrun.train import evaluate

    if split not in ("train", "val", "test"):
        raise ConfigError(f"--split must be train, val or test, got '{split}'")
    _, net, splits, targets = load_run(run_dir, which)
    data = getattr(splits, split)
    if data is None:
        raise DataError(f"this run's dataset has no {split} split")
    metrics: dict[str, Any] = {k: float(v) for k, v in evaluate(net, data, targets).items()}
    metrics["n"] = float(len(data))
    if splits.task == "classification":
        out = net.predict(data.inputs(net.dtype))
        if targets.n_out == 1:  # outputs of the whole network: probabilities or +-1
            predicted = (out[..., 0] > (0.0 if targets.low < 0 else 0.5)).astype(np.int64)
        else:
            predicted = np.argmax(out, axis=-1)
        k = splits.n_classes or int(max(data.y.max(), predicted.max()) + 1)
        metrics["confusion"] = confusion_matrix(data.y, predicted, k)
        metrics["class_names"] = splits.class_names or [str(i) for i in range(k)]
        if plots:
            from dlrun import plots as P

            run = RunDir(Path(run_dir))
            P.confusion(metrics["confusion"], metrics["class_names"], run.plots / "confusion.png")
            if data.x.ndim == 4 or (data.x.ndim == 3 and data.x.shape[1] == data.x.shape[2]):
                P.misclassified(
                    data.x,
                    data.y,
                    predicted,
                    metrics["class_names"],
                    run.plots / "misclassified.png",
                )
    return metrics
