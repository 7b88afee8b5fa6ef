"""What does TensorBoard logging cost a training epoch? The Fashion-MNIST MLP
(configs/mlp_fashion_mnist.yaml, 844 batches of 64 an epoch) with histograms every epoch.

    python scripts/bench.py tensorboard [--rounds 3] [--epochs 4] [--batch-every N]

Each round trains the config twice in this process, without and with ``log.tensorboard``
(``log.histograms: 1``: every weight and gradient tensor each epoch; the training loss
every ``log.batch_every`` batches, the config's default unless ``--batch-every``), the
order alternating round by round. An epoch's time
is the wall time from one epoch's end to the next: its batches and per-batch callbacks,
the validation pass, the logger's epoch-end work (scalars, histograms) and the
checkpoint. The first epoch (data, first calls) is left out. Reported: the median epoch
of each side, the overhead (with / without - 1), and the time spent inside the logger
per epoch, measured directly (its per-batch calls and its epoch end): the part of the
overhead that is not machine noise. The writer's thread encodes and writes in the
background; it shows only in the epoch times. The machine is shared: the load average
is printed with every run.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from .common import ROOT, listed, make_parser, median

CONFIG = ROOT / "configs" / "mlp_fashion_mnist.yaml"


class EpochClock:
    """A trainer callback that notes the time of every epoch's end."""

    def __init__(self) -> None:
        self.marks: list[float] = []
        self.logger_at_marks: list[float] = []

    def __call__(self, trainer: Any) -> None:
        pass

    def epoch_end(self, trainer: Any, row: dict[str, Any]) -> None:
        self.marks.append(time.perf_counter())
        self.logger_at_marks.append(SPENT[0])


#: Seconds spent inside the TensorBoard logger's callbacks so far (this process).
SPENT = [0.0]


def time_the_logger() -> None:
    """Count the time of every call into the logger (per batch and at each epoch's end)."""
    from dlrun.training.tensorboard import TensorBoardLogger

    def timed(fn):
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                SPENT[0] += time.perf_counter() - start

        return wrapper

    TensorBoardLogger.__call__ = timed(TensorBoardLogger.__call__)
    TensorBoardLogger.epoch_end = timed(TensorBoardLogger.epoch_end)


def one_run(
    tensorboard: bool, epochs: int, batch_every: int | None, folder: str
) -> dict[str, list]:
    """Epoch times (from the second epoch on) and the logger's seconds in each."""
    from dlrun.training.train import train

    clock = EpochClock()
    overrides = [f"train.epochs={epochs}"]
    if tensorboard:
        overrides += ["log.tensorboard=true", "log.histograms=1"]
        overrides += [f"log.batch_every={batch_every}"] if batch_every is not None else []
    train(CONFIG, runs_dir=folder, overrides=overrides, callbacks=[clock])
    epochs_s = [b - a for a, b in zip(clock.marks, clock.marks[1:])]
    logger_s = [b - a for a, b in zip(clock.logger_at_marks, clock.logger_at_marks[1:])]
    return {"epochs": epochs_s, "logger": logger_s}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("tensorboard", __doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--epochs", type=int, default=4, help="epochs per run (the first is left out)"
    )
    parser.add_argument("--batch-every", type=int, default=None, help="default: the config's")
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be at least 2 (the first epoch is left out)")
    time_the_logger()
    times: dict[str, list[float]] = {"without": [], "with": []}
    logger: list[float] = []
    print(
        f"{CONFIG.relative_to(ROOT)}: {args.rounds} rounds x {args.epochs} epochs, cores: {os.cpu_count()}"
    )
    with tempfile.TemporaryDirectory(prefix="bench_tensorboard_") as tmp:
        for r in range(args.rounds):
            order = [False, True] if r % 2 == 0 else [True, False]
            for tb in order:
                load = os.getloadavg()[0]
                got = one_run(tb, args.epochs, args.batch_every, tmp)
                side = "with" if tb else "without"
                times[side] += got["epochs"]
                if tb:
                    logger += got["logger"]
                print(
                    f"  round {r + 1}/{args.rounds}  {side:<7}  epochs {listed(got['epochs'])} s"
                    f"  (load {load:.1f} -> {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    without, with_ = median(times["without"]), median(times["with"])
    inside = median(logger)
    print(f"epoch without TensorBoard  {without:.3f} s median  (all: {listed(times['without'])})")
    print(f"epoch with TensorBoard     {with_:.3f} s median  (all: {listed(times['with'])})")
    print(
        f"ratio with / without       {with_ / without:.3f}  ({100 * (with_ / without - 1):+.1f}%)"
    )
    print(
        f"inside the logger          {1e3 * inside:.1f} ms an epoch median"
        f" = {100 * inside / without:.2f}% of an epoch  (all: {listed([1e3 * s for s in logger], 1)} ms)"
    )
    return 0
