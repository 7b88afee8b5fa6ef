"""Evaluation: a network's metrics on a split, and a saved run's (``dlrun eval``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dlrun.data.base import Split
from dlrun.errors import ConfigError, DataError
from dlrun.nn.network import EVAL_BATCH, Network
from dlrun.nn.targets import Targets
from dlrun.runs.build import load_run
from dlrun.runs.rundir import RunDir


def evaluate(
    net: Network, split: Split, targets: Targets, batch_size: int = EVAL_BATCH
) -> dict[str, float]:
    """Loss (and accuracy for classification) of ``net`` on a split, in evaluation mode.

    The loss is the mean over every row the loss sees (samples, or samples x time steps
    for sequence outputs), whatever the batch sizes.
    """
    total, correct, n = 0.0, 0, 0
    for i in range(0, len(split), batch_size):
        x = split.take(slice(i, i + batch_size), net.dtype)
        y = split.y[i : i + batch_size]
        value, out = net.loss_of(x, targets.encode(y))
        rows = math.prod(out.shape[:-1])
        total += value * rows
        n += rows
        if targets.task == "classification":
            correct += targets.count_correct(out, y)
    out_metrics = {"loss": total / max(n, 1)}
    if targets.task == "classification":
        out_metrics["accuracy"] = correct / max(n, 1)
    return out_metrics


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
            from dlrun.runs import pictures as P

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
