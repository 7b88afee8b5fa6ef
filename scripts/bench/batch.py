"""Forward + backward of one batch of a config's network, dlrun against PyTorch.

    python scripts/bench.py batch CONFIG [--rounds 5] [--batches 20] [--threads 1 2]
    python scripts/bench.py batch configs/cnn_fashion_mnist.yaml --set train.batch_size=128

Random inputs of the data set's shape and random labels, the config's batch size, no
optimizer step; dlrun's side is the training step of the network the config builds,
PyTorch's the same layers (``common.torch_model``). Every side and thread count runs
in a fresh process in every round, so the two frameworks' thread pools never meet;
the sides alternate. Each process warms up with one batch, then times ``--batches``
batches. Reported: the median over rounds of each process's median batch time,
GFLOP/s, the ratio dlrun / torch per round at the same thread count, each side's peak
memory (VmHWM of its process) and dlrun's NumPy allocations per batch (tracemalloc).
"""

from __future__ import annotations

import argparse
import json
import tracemalloc

import numpy as np

from .common import (
    alternate,
    child,
    config,
    have_torch,
    listed,
    make_parser,
    median,
    network,
    peak_mib,
    per_call,
    torch_model,
    train_flops,
)


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", "--repeats", type=int, default=5, help="(default 5)")
    parser.add_argument("--batches", type=int, default=20, help="timed per round (default 20)")
    parser.add_argument("--threads", type=int, nargs="+", default=[2], help="(default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", choices=["dlrun", "torch"], help=argparse.SUPPRESS)
    parser.add_argument("--shape", help=argparse.SUPPRESS)
    parser.add_argument("--classes", type=int, help=argparse.SUPPRESS)


def measure(side: str, cfg: dict, shape: tuple[int, ...], classes: int, args) -> dict:
    """In a child process: one side's median seconds per batch and its peak memory."""
    rng = np.random.default_rng(0)
    n = cfg["train"]["batch_size"]
    x = rng.random((n, *shape), dtype=np.float32)
    y = rng.integers(0, classes, n)
    net = network(cfg, shape, classes)
    if side == "torch":
        import torch

        torch.set_num_threads(args.threads[0])
        model, lossf = torch_model(net), torch.nn.CrossEntropyLoss()
        del net
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)

        def step() -> None:
            model.zero_grad(set_to_none=True)
            lossf(model(xt), yt).backward()
    else:
        from dlrun.runs.threads import set_threads

        set_threads(args.threads[0])

        def step() -> None:
            net.train_step_grads(x, y)

    step()  # warm-up: compile or load the cached kernels, first touch of the buffers
    out = {"seconds": median(per_call(step) for _ in range(args.batches)), "peak_mib": peak_mib()}
    if side == "dlrun":
        tracemalloc.start()
        step()
        out["alloc_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return out


def run(path: str, args) -> None:
    """Time the sides in alternating child processes and print the table."""
    from dlrun.runs.build import load_data, make_streams

    cfg = config(path, args.set)
    splits = load_data(cfg, make_streams(cfg["seed"])["data"])
    shape, classes = splits.input_shape, splits.n_classes
    del splits
    n = cfg["train"]["batch_size"]
    flops = train_flops(network(cfg, shape, classes)) * n
    common = [
        path,
        f"--batches={args.batches}",
        f"--shape={','.join(map(str, shape))}",
        f"--classes={classes}",
        *(f"--set={s}" for s in args.set),
    ]
    sides = {}
    for side in ("dlrun", "torch") if have_torch() else ("dlrun",):
        for k in args.threads:
            opts = [*common, f"--threads={k}", f"--child={side}"]
            sides[f"{side} threads={k}"] = lambda opts=opts: child("batch", *opts)
    print(
        f"{path}: batch {n}, forward + backward {flops / 1e9:.3f} GFLOP; "
        f"{args.rounds} rounds x {args.batches} batches, a fresh process each",
        flush=True,
    )
    t = alternate(sides, args.rounds)
    for name, runs in t.items():
        s = median(r["seconds"] for r in runs)
        print(
            f"  {name:<17} median {1e3 * s:8.2f} ms  {flops / s / 1e9:6.1f} GFLOP/s  "
            f"peak {median(r['peak_mib'] for r in runs):4.0f} MiB  "
            f"(rounds: {listed((1e3 * r['seconds'] for r in runs), 1)} ms)"
        )
    for k in args.threads:
        ours, theirs = t[f"dlrun threads={k}"], t.get(f"torch threads={k}")
        if theirs:
            rounds = [a["seconds"] / b["seconds"] for a, b in zip(ours, theirs)]
            print(
                f"  dlrun / torch, {k} thread(s): {median(rounds):.2f} (per round: {listed(rounds)})"
            )
    alloc = median(r["alloc_mib"] for r in t[f"dlrun threads={args.threads[0]}"])
    print(f"  dlrun NumPy allocations per batch (tracemalloc peak): {alloc:.1f} MiB")


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("batch", __doc__)
    parser.add_argument("config", help="a config file, relative to the repository")
    add_options(parser)
    args = parser.parse_args(argv)
    if args.child:
        shape = tuple(int(d) for d in args.shape.split(","))
        cfg = config(args.config, args.set)
        print(json.dumps(measure(args.child, cfg, shape, args.classes, args)))
    else:
        run(args.config, args)
    return 0
