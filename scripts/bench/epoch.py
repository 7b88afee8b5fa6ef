"""One real training epoch of a course config, dlrun against the same network in PyTorch.

    python scripts/bench.py epoch cnn      # configs/cnn_fashion_mnist.yaml
    python scripts/bench.py epoch lstm     # configs/lstm_fashion_rows.yaml
    python scripts/bench.py epoch cnn --reps 7 --threads 2 --set data.n_train=6000

dlrun side: ``train`` on the config itself with ``train.epochs=1`` (data, Adam,
metrics, checkpoints: everything a user runs); the epoch time is the training
loop's own ``seconds``. PyTorch side: the same layers and optimizer, batch 64, over
the same training split (kept as uint8 and scaled per batch, as dlrun keeps it).
Each epoch runs in a fresh process, the two sides alternating, so both see the same
machine load. Reported: the medians and their ratio, GFLOP/s (the matrix products'
multiply-adds x 2, forward and backward), peak memory (VmHWM, data included) and one
evaluation pass over the test set (the median of three in each process).
``--set key=value`` overrides the config on both sides (``data.n_train`` for a short run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import numpy as np

from .common import (
    ROOT,
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
    train_flops,
)

CONFIGS = {"cnn": "configs/cnn_fashion_mnist.yaml", "lstm": "configs/lstm_fashion_rows.yaml"}
TARGETS = {"cnn": (0.75, 0.5, 1.5), "lstm": (0.75, 0.5, None)}  # time ratio, memory ratio, eval s


def eval_median(evaluate) -> tuple[float, float]:
    """One warm-up pass, then the median time of three and the last pass's result."""
    evaluate()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        result = evaluate()
        times.append(time.perf_counter() - start)
    return median(times), result


def dlrun_child(kind: str, threads: int, overrides: list[str]) -> dict:
    from dlrun.runs.build import load_run
    from dlrun.runs.threads import set_threads
    from dlrun.training.evaluation import evaluate
    from dlrun.training.train import train

    set_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(ROOT / CONFIGS[kind], tmp, overrides=["train.epochs=1", *overrides])
        peak = peak_mib()
        _, net, splits, targets = load_run(result.run_dir)
    eval_s, metrics = eval_median(lambda: evaluate(net, splits.test, targets))
    return {
        "seconds": result.summary["final"]["seconds"],
        "peak_mib": peak,
        "eval_s": eval_s,
        "test_accuracy": metrics["accuracy"],
        "samples": len(splits.train),
        "flops": train_flops(net) * len(splits.train),
    }


def torch_child(kind: str, threads: int, overrides: list[str]) -> dict:
    import torch

    from dlrun.runs.build import build_network, load_data, make_streams

    torch.set_num_threads(threads)
    cfg = config(CONFIGS[kind], overrides)
    streams = make_streams(cfg["seed"])
    splits = load_data(cfg, streams["data"])
    model = torch_model(build_network(cfg, splits, streams["init"]))
    tr, te = splits.train, splits.test
    x, y = torch.from_numpy(np.asarray(tr.x)), torch.from_numpy(tr.y.astype(np.int64))
    opt = torch_optimizer(cfg, model.parameters())
    seconds = torch_epoch(model, opt, x, y, tr.scale, tr.offset, cfg["train"]["batch_size"])
    peak = peak_mib()
    xt, yt = torch.from_numpy(np.asarray(te.x)), torch.from_numpy(te.y.astype(np.int64))

    def evaluate() -> float:
        correct = 0
        with torch.no_grad():
            for i in range(0, len(yt), 256):
                xb = xt[i : i + 256].float().mul_(te.scale).add_(te.offset)
                correct += int((model(xb).argmax(1) == yt[i : i + 256]).sum())
        return correct / len(yt)

    eval_s, accuracy = eval_median(evaluate)
    return {"seconds": seconds, "peak_mib": peak, "eval_s": eval_s, "test_accuracy": accuracy}


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("epoch", __doc__)
    parser.add_argument("kind", choices=sorted(CONFIGS))
    parser.add_argument("--reps", type=int, default=5, help="epochs of each side (default 5)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--child", choices=["dlrun", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        side = dlrun_child if args.child == "dlrun" else torch_child
        print(json.dumps(side(args.kind, args.threads, args.set)))
        return 0
    what = [args.kind, f"--threads={args.threads}", *(f"--set={s}" for s in args.set)]
    sides = ["dlrun", "torch"] if have_torch() else ["dlrun"]
    child("epoch", *what, "--child", "dlrun")  # warm-up: the kernels' cache exists
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    for r in range(args.reps):
        for side in sides if r % 2 == 0 else sides[::-1]:
            runs[side].append(child("epoch", *what, "--child", side))
        line = "  ".join(f"{side} {v[-1]['seconds']:.2f} s" for side, v in runs.items())
        print(f"round {r + 1}/{args.reps}: {line}", flush=True)
    samples, flops = runs["dlrun"][0]["samples"], runs["dlrun"][0]["flops"]
    med = {side: {k: median(x[k] for x in v) for k in v[0]} for side, v in runs.items()}
    t_ratio, m_ratio, eval_target = TARGETS[args.kind]
    print(f"\n{machine()}")
    print(
        f"\n{args.kind}: {CONFIGS[args.kind]}, one epoch of {samples} samples, "
        f"{args.threads} threads each, {flops / 1e12:.2f} TFLOP of matrix products"
    )
    for side, m in med.items():
        print(
            f"{side:<6} epoch {m['seconds']:7.2f} s  {flops / m['seconds'] / 1e9:6.1f} GFLOP/s  "
            f"peak {m['peak_mib']:6.0f} MiB  test eval {m['eval_s']:.2f} s  "
            f"(test accuracy after 1 epoch {m['test_accuracy']:.3f})"
        )
    if "torch" in med:
        paired = [a["seconds"] / b["seconds"] for a, b in zip(runs["dlrun"], runs["torch"])]
        print(
            f"ratio dlrun / torch: time {med['dlrun']['seconds'] / med['torch']['seconds']:.2f} "
            f"(target <= {t_ratio}), memory {med['dlrun']['peak_mib'] / med['torch']['peak_mib']:.2f} "
            f"(target <= {m_ratio}); per round: {listed(paired)}"
        )
    from .blas import epoch_floor

    shape = {"cnn": (1, 28, 28), "lstm": (28, 28)}[args.kind]
    floors = epoch_floor(CONFIGS[args.kind], shape, samples, args.set)
    line = f"products alone (bench.py blas), as dlrun chooses: {floors['chosen']:.2f} s"
    if "torch" in med:
        line += f" = {floors['chosen'] / med['torch']['seconds']:.2f} of torch's epoch"
    others = ", ".join(f"{k} {v:.2f} s" for k, v in floors.items() if k not in ("chosen",))
    print(f"{line} ({others}; {machine(load_only=True)})")
    if eval_target:
        print(f"test evaluation: {med['dlrun']['eval_s']:.2f} s (target <= {eval_target})")
    return 0
