"""Benchmarks (not tests): dlrun against PyTorch CPU on the same machine, in the same run.

    python scripts/bench.py mlp [--reps 5]     # issue targets: MLP epoch, start-up, compile, memory
                                               # (and two floors: the products alone, and the
                                               # epoch as one Numba call, bench_mlp_floor.py)
    python scripts/bench.py optim | cnn | lstm | compare   # the other benchmarks (see each script)
    python scripts/bench.py epoch cnn | lstm   # a real config epoch against PyTorch

Timings alternate dlrun and PyTorch and report medians, because the machine is
shared and noisy. PyTorch is optional (`pip install torch==2.13.0`); never a CI
dependency.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

MLP = {
    "name": "bench_mlp",
    "seed": 0,
    "data": {"name": "fashion_mnist", "val_fraction": 0.0},
    "model": {
        "type": "sequential",
        "init": "he_normal",
        "layers": [
            {"type": "flatten"},
            {"type": "dense", "units": 256, "activation": "relu"},
            {"type": "dense", "units": 128, "activation": "relu"},
            {"type": "dense", "units": 10},
            {"type": "softmax"},
        ],
    },
    "loss": "cross_entropy",
    "optimizer": {"name": "gd", "lr": 0.1},
    "train": {"epochs": 1, "batch_size": 64},
}

RANDOM_DATA = {
    "name": "blobs",
    "n": 70000,
    "classes": 10,
    "features": 784,
    "val_fraction": 0.0,
    "test_fraction": 10000 / 70000,
}


def mlp_config() -> dict:
    """Fashion-MNIST when it can be found locally, random blobs of the same size otherwise."""
    from dlrun.errors import DataError
    from dlrun.runs.build import load_data, make_streams

    cfg = json.loads(json.dumps(MLP))
    try:
        from dlrun.config.resolve import resolve

        load_data(
            resolve({**cfg, "data": {**cfg["data"], "download": False}}), make_streams(0)["data"]
        )
        cfg["data"]["download"] = False
    except DataError:
        cfg["data"] = RANDOM_DATA
        cfg["model"]["layers"] = cfg["model"]["layers"][1:]
    return cfg


def dlrun_epoch(cfg: dict, runs_dir: Path) -> float:
    from dlrun.training.train import train

    result = train(cfg, runs_dir=runs_dir)
    return float(result.summary["final"]["seconds"])


def torch_epoch(x, y, threads: int = 2) -> float:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    lossf = torch.nn.CrossEntropyLoss()
    xt = torch.from_numpy(x.reshape(len(x), -1))
    yt = torch.from_numpy(y)
    perm = torch.randperm(len(xt))
    start = time.perf_counter()
    for i in range(0, len(xt), 64):
        idx = perm[i : i + 64]
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(xt[idx]), yt[idx])
        loss.backward()
        opt.step()
    return time.perf_counter() - start


SIZES = (784, 256, 128, 10)


def products_epoch(n: int, batch: int = 64) -> float:
    """Seconds for the matrix products of one MLP epoch through NumPy's BLAS, with no other
    work, on random data: per batch the calls dlrun's dense layers make (three forward
    products, three weight gradients, the input gradients of the second and third layer).
    PyTorch makes the same products, so ``products / torch's epoch`` is the lowest ratio
    that any implementation using this BLAS could reach in that round."""
    rng = np.random.default_rng(0)
    rows = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    xs = {m: rng.random((m, SIZES[0]), dtype=np.float32) for m in set(rows)}
    ws = [rng.random((a, b), dtype=np.float32) for a, b in zip(SIZES, SIZES[1:])]
    dws = [np.empty_like(w) for w in ws]
    start = time.perf_counter()
    for m in rows:
        acts = [xs[m]]
        for w in ws:
            acts.append(np.dot(acts[-1], w))
        dz = acts[-1]
        for i in (2, 1, 0):
            np.dot(acts[i].T, dz, out=dws[i])
            if i:
                dz = np.dot(dz, ws[i].T)
    return time.perf_counter() - start


FIRST_BATCH = """
import time, sys, json
t_start = float(sys.argv[1])
from dlrun.runs.threads import default_threads, set_threads
from dlrun.training.train import train
set_threads(default_threads())
seen = {}
def first(trainer):
    if "t" not in seen:
        seen["t"] = time.time()
        trainer.stop_requested = True
cfg = json.loads(sys.argv[2])
train(cfg, runs_dir=sys.argv[3], callbacks=[first])
print(json.dumps({"first_batch": seen["t"] - t_start}))
"""

# ru_maxrss is inherited across fork and exec on Linux; VmHWM belongs to this process alone
PEAK_MIB = """
def peak_mib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
"""

PEAK = (
    PEAK_MIB
    + """
import json, sys
from dlrun.runs.threads import default_threads, set_threads
from dlrun.training.train import train
set_threads(default_threads())
train(json.loads(sys.argv[1]), runs_dir=sys.argv[2])
print(json.dumps({"peak_mib": peak_mib()}))
"""
)

TORCH_PEAK = (
    PEAK_MIB
    + """
import json, sys, numpy as np
sys.path.insert(0, sys.argv[1])
from bench import torch_epoch, mlp_config
from dlrun.runs.build import load_data, make_streams
from dlrun.config.resolve import resolve
s = load_data(resolve(mlp_config()), make_streams(0)["data"])
torch_epoch(s.train.inputs(), s.train.y, int(sys.argv[2]))
print(json.dumps({"peak_mib": peak_mib()}))
"""
)


def child(code: str, *args: str, env: dict | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


#: Seconds between the timed epochs of dlrun and torch in one process (see bench_mlp).
SETTLE = 0.5


def bench_mlp(reps: int, threads: int) -> None:
    from dlrun.config.resolve import resolve
    from dlrun.runs.build import load_data, make_streams
    from dlrun.runs.threads import set_threads

    set_threads(threads)

    cfg = mlp_config()
    splits = load_data(resolve(cfg), make_streams(0)["data"])
    print(
        f"data: {cfg['data']['name']}, {len(splits.train)} training inputs, batch 64, gd lr 0.1, "
        f"{threads} thread(s) for dlrun (Numba + BLAS) and for torch"
    )
    try:
        import torch  # noqa: F401

        have_torch = True
    except ImportError:
        have_torch = False
    ours, theirs, floor, fused = [], [], [], []
    from bench_mlp_floor import fused_epoch, mlp_params

    train_split = splits.train
    sizes = (int(np.prod(train_split.x.shape[1:])), 256, 128, 10)
    perm_rng = np.random.default_rng(0)

    def one_call_epoch() -> float:
        perm = perm_rng.permutation(len(train_split))
        return fused_epoch(
            train_split.x, train_split.y, perm, mlp_params(sizes),
            train_split.scale, train_split.offset,
        )[0]  # fmt: skip

    with tempfile.TemporaryDirectory() as tmp:
        dlrun_epoch(cfg, Path(tmp))  # warm-up: compile or load cached kernels
        one_call_epoch()
        for _ in range(reps):
            # each side starts with the other's threads asleep: OpenBLAS's worker busy-waits
            # for about 0.1 s after dlrun's last product, OpenMP's after torch's last operation
            time.sleep(SETTLE)
            ours.append(dlrun_epoch(cfg, Path(tmp)))
            if have_torch:
                time.sleep(SETTLE)
                theirs.append(torch_epoch(splits.train.inputs(), splits.train.y, threads))
                # the floor under the ratio, in the same minute: the products alone
                time.sleep(SETTLE)
                floor.append(products_epoch(len(splits.train)))
                # the floor of dlrun's own work: the whole epoch as one Numba call
                time.sleep(SETTLE)
                fused.append(one_call_epoch())
        m = statistics.median(ours)
        print(f"dlrun  MLP epoch: median {m:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in ours)})")
        if theirs:
            mt = statistics.median(theirs)
            print(
                f"torch  MLP epoch: median {mt:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in theirs)})"
            )
            rounds = [a / b for a, b in zip(ours, theirs)]
            print(
                f"ratio dlrun / torch: {m / mt:.2f}  (target <= 0.5); per round: "
                f"{' '.join(f'{r:.2f}' for r in rounds)}, median {statistics.median(rounds):.2f}"
            )
            # the fastest epoch of each side is the one least slowed by the machine's slow phases
            print(f"ratio of the fastest epochs: {min(ours) / min(theirs):.2f}")
        for what, times in (
            ("matrix products alone (NumPy's BLAS), one epoch", floor),
            (
                "the epoch as one Numba call (dlrun's kernels and guard, no Python between them)",
                fused,
            ),
        ):
            if times:
                per_round = [f / t for f, t in zip(times, theirs)]
                print(
                    f"{what}: median {statistics.median(times):.3f} s; per round / torch's epoch: "
                    f"{' '.join(f'{r:.2f}' for r in per_round)}, "
                    f"median {statistics.median(per_round):.2f}; "
                    f"fastest / torch's fastest: {min(times) / min(theirs):.2f}"
                )
        # start-up: process start to first batch, warm cache
        env = {"DLRUN_THREADS": str(threads)}
        starts = [
            child(FIRST_BATCH, repr(time.time()), json.dumps(cfg), tmp, env=env)["first_batch"]
            for _ in range(3)
        ]
        print(
            f"warm start to first batch: median {statistics.median(starts):.2f} s  (target <= 1.0)"
        )
        with tempfile.TemporaryDirectory() as cache:
            cold = child(
                FIRST_BATCH,
                repr(time.time()),
                json.dumps(cfg),
                tmp,
                env={**env, "NUMBA_CACHE_DIR": cache},
            )["first_batch"]
        print(f"cold start (empty Numba cache) to first batch: {cold:.2f} s  (target <= 15)")
        peak = child(PEAK, json.dumps(cfg), tmp, env=env)["peak_mib"]
        print(f"dlrun peak memory (VmHWM, one epoch incl. data): {peak:.0f} MiB  (target <= 300)")
        if have_torch:
            tpeak = child(TORCH_PEAK, str(ROOT / "scripts"), str(threads))["peak_mib"]
            print(f"torch peak memory (VmHWM, same data):             {tpeak:.0f} MiB")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("optim", "cnn", "lstm", "compare", "epoch"):
        import importlib

        importlib.import_module(f"bench_{argv[0]}").main(argv[1:])  # its own options
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("which", nargs="?", default="mlp", choices=["mlp"])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    args = parser.parse_args(argv)
    bench_mlp(args.reps, args.threads)


if __name__ == "__main__":
    main()
