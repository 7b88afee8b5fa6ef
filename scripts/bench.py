"""Benchmarks (not tests): dlrun against PyTorch CPU on the same machine, in the same run.

    python scripts/bench.py mlp [--reps 5]          MLP epoch (configs/bench/mlp_gd.yaml),
                                                    start-up, compile time, memory, floors
    python scripts/bench.py epoch cnn|lstm [--reps 5]   one epoch of the CNN / LSTM config:
                                                    time, GFLOP/s, memory, test evaluation
    python scripts/bench.py cnn [--what batch|conv|order]   CNN batch; im2col against direct
                                                    loops; the first conv's column order
    python scripts/bench.py lstm [--gates]          LSTM batch; the gate kernels
    python scripts/bench.py batch CONFIG            forward + backward of any config's network
    python scripts/bench.py blas [mlp cnn lstm]     every product of an epoch on each BLAS: the
                                                    chooser's picks, the products-alone floor
    python scripts/bench.py optim [--size N]        one optimizer step, and its memory floor
    python scripts/bench.py compare [--epochs 60]   dlrun compare --jobs 2 against --jobs 1
    python scripts/bench.py tune                    dlrun tune: overhead per trial, --jobs 2
    python scripts/bench.py tensorboard             an epoch with log.tensorboard (histograms
                                                    every epoch) against one without

Every benchmark takes --help; the code is in scripts/bench/, the networks come from
configs/. Timings alternate the two sides and report medians, because the machine is
shared and noisy. PyTorch is optional (`pip install torch==2.13.0`; the `crosscheck`
extra); the Fashion-MNIST benchmarks need the data set (Debian: dataset-fashion-mnist).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

COMMANDS = (
    "mlp", "epoch", "cnn", "lstm", "batch", "blas", "optim", "compare", "tune", "tensorboard",
)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print(__doc__)
        return 0 if argv in ([], ["-h"], ["--help"]) else 2
    here = Path(__file__).resolve().parent
    sys.path[:0] = [str(here), str(here.parent)]  # the bench package, then dlrun
    return importlib.import_module(f"bench.{argv[0]}").main(argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
