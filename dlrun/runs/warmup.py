"""``warmup``: compile a config's kernels and choose its products' BLAS before the first run.

    from dlrun.runs.warmup import warmup
    choices = warmup(["configs/cnn_fashion_mnist.yaml"])   # {class: Choice}

For each config the network is built on its data and runs what a training run runs
first: a training step on a full batch, one on the epoch's shorter last batch, and an
evaluation pass. That loads (or compiles) every kernel into Numba's cache and makes the
BLAS choice of every product shape the run will meet (``kernels.blas_choice``: measured
where nothing is remembered yet), so the run itself starts with nothing to measure.
``recalibrate`` forgets what this machine remembered first, to measure again (after an
upgrade, or when the first measurement was made on a busy machine).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dlrun.config.resolve import load
from dlrun.kernels import blas_choice
from dlrun.nn.network import EVAL_BATCH
from dlrun.nn.targets import Targets
from dlrun.runs.build import build_network, load_data, make_streams


def forget_machine() -> int:
    """Drop this machine's entries from the wisdom file; returns how many there were."""
    path = blas_choice.wisdom_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0
    gone = data.get("machines", {}).pop(blas_choice.machine_key(), {})
    if gone:
        path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    blas_choice.forget()
    blas_choice._wisdom.clear()
    return len(gone)


def warm_config(cfg: dict[str, Any]) -> None:
    """The first passes of a run of the resolved ``cfg``: a full and a last training batch,
    and an evaluation pass (their results are thrown away)."""
    streams = make_streams(cfg["seed"])
    splits = load_data(cfg, streams["data"])
    net = build_network(cfg, splits, streams["init"])
    targets = Targets(net, splits.task)
    train = splits.train
    batch = min(int(cfg["train"]["batch_size"]), len(train))
    for rows in sorted({batch, len(train) % batch or batch}, reverse=True):
        x = train.take(slice(0, rows), net.dtype)
        net.train_step_grads(x, targets.encode(train.y[:rows]))
    evaluated = splits.test or splits.val or train
    net.predict(evaluated.take(slice(0, min(EVAL_BATCH, len(evaluated))), net.dtype))


def warmup(
    configs: list[str | Path],
    overrides: list[str] | None = None,
    recalibrate: bool = False,
    report: Callable[[blas_choice.Choice], None] | None = None,
) -> dict[str, blas_choice.Choice]:
    """Warm every config up (:func:`warm_config`); returns the BLAS choice of each product
    class they use, by class (``report(choice)`` at each class's first use)."""
    if recalibrate:
        forget_machine()
    blas_choice.begin(None, report)
    try:
        for config in configs:
            warm_config(load(config, list(overrides or [])))
    finally:
        used = blas_choice.end()
    return used
