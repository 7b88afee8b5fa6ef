"""The MLP benchmark: one epoch of ``configs/bench/mlp_gd.yaml`` (784-256-128-10 ReLU,
Fashion-MNIST, batch 64, gd) against the same network in PyTorch; start-up, compile
time and memory.

    python scripts/bench.py mlp [--reps 5] [--threads 2]
    python scripts/bench.py mlp --reps 1 --set data.n_train=6000    # a short run

Each round times, half a second apart and in alternating order: dlrun's epoch
(``train`` on the config), PyTorch's epoch, the epoch's matrix products alone through
NumPy's BLAS (PyTorch makes the same products, so ``products / torch`` is the lowest
ratio any implementation with this BLAS reaches), and the epoch as one Numba call
(``mlp_floor.py``: the lowest ratio dlrun's design reaches; checked against a NumPy
epoch before it is timed). Then, each in a fresh process: process start to first batch
with a warm and an empty Numba cache, and the peak memory (VmHWM, data included) of a
dlrun epoch and of a PyTorch epoch.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from .common import (
    ROOT,
    SETTLE,
    alternate,
    child,
    config,
    have_torch,
    listed,
    machine,
    make_parser,
    median,
    peak_mib,
    torch_epoch,
    torch_model,
    torch_optimizer,
)

CONFIG = "configs/bench/mlp_gd.yaml"


def products_epoch(sizes: tuple[int, ...], n: int, batch: int = 64) -> float:
    """Seconds for the matrix products of one epoch through NumPy's BLAS, nothing else,
    on random data: per batch the calls dlrun's dense layers make (the forward products,
    the weight gradients, the input gradients of all but the first layer)."""
    rng = np.random.default_rng(0)
    rows = [batch] * (n // batch) + ([n % batch] if n % batch else [])
    xs = {m: rng.random((m, sizes[0]), dtype=np.float32) for m in set(rows)}
    ws = [rng.random((a, b), dtype=np.float32) for a, b in zip(sizes, sizes[1:])]
    dws = [np.empty_like(w) for w in ws]
    start = time.perf_counter()
    for m in rows:
        acts = [xs[m]]
        for w in ws:
            acts.append(np.dot(acts[-1], w))
        dz = acts[-1]
        for i in reversed(range(len(ws))):
            np.dot(acts[i].T, dz, out=dws[i])
            if i:
                dz = np.dot(dz, ws[i].T)
    return time.perf_counter() - start


def load(args):
    """The config (with ``--set``), its data and its network; ``--threads`` threads for
    Numba and BLAS."""
    from dlrun.runs.build import build_network, load_data, make_streams
    from dlrun.runs.threads import set_threads

    set_threads(args.threads)
    cfg = config(CONFIG, args.set)
    streams = make_streams(cfg["seed"])
    splits = load_data(cfg, streams["data"])
    return cfg, splits, build_network(cfg, splits, streams["init"])


def torch_side(cfg, splits, net, threads: int):
    """PyTorch's epoch of the same network, on the training inputs as float32."""
    import torch

    torch.set_num_threads(threads)
    model = torch_model(net)
    opt = torch_optimizer(cfg, model.parameters())
    tr = splits.train
    x = torch.from_numpy(tr.inputs().reshape(len(tr), -1))
    y = torch.from_numpy(tr.y.astype(np.int64))
    return lambda: torch_epoch(model, opt, x, y, batch=cfg["train"]["batch_size"])


def in_child(args) -> dict:
    """In a fresh process: seconds from ``--t0`` (the parent's clock before it started
    this process) to the first batch of a training run, or the peak memory of a dlrun
    or a PyTorch epoch."""
    if args.child == "torch":
        torch_side(*load(args), args.threads)()
        return {"peak_mib": peak_mib()}
    from dlrun.runs.threads import set_threads
    from dlrun.training.train import train

    set_threads(args.threads)
    seen: dict[str, float] = {}

    def first(trainer) -> None:
        seen.setdefault("t", time.time())
        trainer.stop_requested = True

    callbacks = [first] if args.child == "first-batch" else []
    with tempfile.TemporaryDirectory() as tmp:
        train(ROOT / CONFIG, tmp, overrides=args.set, callbacks=callbacks)
    return {"first_batch": seen["t"] - args.t0} if seen else {"peak_mib": peak_mib()}


def bench(args) -> None:
    from dlrun.kernels import blas
    from dlrun.training.train import train

    from . import mlp_floor

    cfg, splits, net = load(args)
    tr = splits.train
    dense = [layer for layer in net.layers if layer.registered_name == "dense"]
    sizes = (dense[0].input_shape[-1], *(layer.output_shape[-1] for layer in dense))
    lr, batch = cfg["optimizer"]["lr"], cfg["train"]["batch_size"]
    print(machine())
    print(
        f"{CONFIG}: {len(tr)} training inputs, batch {batch}, gd lr {lr}, "
        f"{args.threads} thread(s) for dlrun (Numba + BLAS) and for torch"
    )
    perm_rng = np.random.default_rng(0)
    tmp = tempfile.TemporaryDirectory()
    sides = {
        "dlrun": lambda: float(train(cfg, tmp.name).summary["final"]["seconds"]),
        "products": lambda: products_epoch(sizes, len(tr), batch),
    }
    if blas.available():
        mlp_floor.check()
        sides["floor"] = lambda: mlp_floor.fused_epoch(
            tr.x, tr.y, perm_rng.permutation(len(tr)),
            [p.copy() for _, _, p in net.param_items()], tr.scale, tr.offset, lr, batch,
        )[0]  # fmt: skip
    else:
        print("no ILP64 OpenBLAS in NumPy: no one-call epoch")
    if have_torch():
        sides["torch"] = torch_side(cfg, splits, net, args.threads)
    alternate(sides, 1, SETTLE)  # warm-up: compile or load the cached kernels
    t = alternate(sides, args.reps, SETTLE)
    tmp.cleanup()
    ours, theirs = t["dlrun"], t.get("torch")
    print(f"dlrun  MLP epoch: median {median(ours):.3f} s  (runs: {listed(ours, 3)})")
    if theirs:
        rounds = [a / b for a, b in zip(ours, theirs)]
        print(f"torch  MLP epoch: median {median(theirs):.3f} s  (runs: {listed(theirs, 3)})")
        print(
            f"ratio dlrun / torch: {median(ours) / median(theirs):.2f}  (target <= 0.5); "
            f"per round: {listed(rounds)}, median {median(rounds):.2f}"
        )
        # the fastest epoch of each side is the one least slowed by the machine's slow phases
        print(f"ratio of the fastest epochs: {min(ours) / min(theirs):.2f}")
    for key, what in (
        ("products", "matrix products alone (NumPy's BLAS), one epoch"),
        ("floor", "the epoch as one Numba call (dlrun's kernels and guard, no Python between)"),
    ):
        line = f"{what}: median {median(t[key]):.3f} s" if key in t else ""
        if line and theirs:
            rounds = [a / b for a, b in zip(t[key], theirs)]
            line += (
                f"; per round / torch's epoch: {listed(rounds)}, median {median(rounds):.2f}; "
                f"fastest / torch's fastest: {min(t[key]) / min(theirs):.2f}"
            )
        print(line or f"({key}: not measured)")

    opts = [f"--threads={args.threads}", *(f"--set={s}" for s in args.set)]

    def start(env=None) -> float:
        return child("mlp", *opts, "--child=first-batch", f"--t0={time.time()!r}", env=env)[
            "first_batch"
        ]

    print(
        f"warm start to first batch: median {median(start() for _ in range(3)):.2f} s  (target <= 1.0)"
    )
    with tempfile.TemporaryDirectory() as cache:
        cold = start({"NUMBA_CACHE_DIR": cache})
    print(f"cold start (empty Numba cache) to first batch: {cold:.2f} s  (target <= 15)")
    peak = child("mlp", *opts, "--child=dlrun")["peak_mib"]
    print(f"dlrun peak memory (VmHWM, one epoch incl. data): {peak:.0f} MiB  (target <= 300)")
    if theirs:
        peak = child("mlp", *opts, "--child=torch")["peak_mib"]
        print(f"torch peak memory (VmHWM, same data):             {peak:.0f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("mlp", __doc__)
    parser.add_argument("--reps", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--child", choices=["first-batch", "dlrun", "torch"], help=argparse.SUPPRESS
    )
    parser.add_argument("--t0", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(in_child(args)))
    else:
        bench(args)
    return 0
