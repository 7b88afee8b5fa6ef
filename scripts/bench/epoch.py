"""One real training epoch of a course config, dlrun against the same network in PyTorch.

    python scripts/bench_epoch.py cnn            # configs/cnn_fashion_mnist.yaml (issue #4)
    python scripts/bench_epoch.py lstm           # configs/lstm_fashion_rows.yaml (issue #5)
    python scripts/bench_epoch.py cnn --reps 7 --threads 2   # default: 5 rounds

dlrun side: ``dlrun.training.train.train`` on the config itself with ``train.epochs=1``
(data, Adam, metrics, checkpoints: everything a user runs); the epoch time is
the training loop's own ``seconds`` in the run's metrics. PyTorch side: the
same layers, Adam with the same rate, batch 64, over the same training split
(kept as uint8 and scaled per batch, as dlrun keeps it). Each epoch runs in a
fresh process, dlrun and PyTorch alternating, so both see the same machine
load; the medians and their ratio are reported, with GFLOP/s (the matrix
products' multiply-adds x 2, forward and backward), peak memory (VmHWM of the
process, data included) and the time of one evaluation pass over the test set (the
median of three in each process).
Needs Fashion-MNIST (Debian: dataset-fashion-mnist) and, for the comparison,
``pip install torch==2.13.0``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from bench import PEAK_MIB  # noqa: E402  (VmHWM of the child process)

CONFIGS = {"cnn": "configs/cnn_fashion_mnist.yaml", "lstm": "configs/lstm_fashion_rows.yaml"}
TARGETS = {"cnn": (0.75, 0.5, 1.5), "lstm": (0.75, 0.5, None)}  # time ratio, memory ratio, eval s


def flops_per_sample(kind: str) -> float:
    """Multiply-adds x 2 of one training step's matrix products, per sample.

    Forward, plus two products per layer backward (dC/dW and dC/dx) except the first
    layer's dC/dx, which neither framework computes.
    """
    if kind == "cnn":
        conv1 = 2 * 28 * 28 * 32 * 9 * 1
        rest = 2 * 14 * 14 * 64 * 9 * 32 + 2 * 3136 * 128 + 2 * 128 * 10
        return 2 * conv1 + 3 * rest
    steps, features, hidden = 28, 28, 128
    inputs = 2 * steps * features * 4 * hidden
    recurrent = 2 * steps * hidden * 4 * hidden
    return 2 * inputs + 3 * recurrent + 3 * 2 * hidden * 10


# each child: one warm-up evaluation pass, then the median of three timed ones
EVAL_MEDIAN = """
def eval_median(evaluate):
    evaluate()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        result = evaluate()
        times.append(time.perf_counter() - t)
    return sorted(times)[1], result
"""

DLRUN = (
    PEAK_MIB
    + EVAL_MEDIAN
    + """
import json, sys, time
from dlrun.runs.threads import set_threads
from dlrun.training.train import train
from dlrun.training.evaluation import evaluate
from dlrun.training.evaluation import load_run
set_threads(int(sys.argv[3]))
result = train(sys.argv[1], runs_dir=sys.argv[2], overrides=["train.epochs=1"])
seconds = result.summary["final"]["seconds"]
peak = peak_mib()
_, net, splits, targets = load_run(result.run_dir)
eval_s, metrics = eval_median(lambda: evaluate(net, splits.test, targets))
print(json.dumps({"seconds": seconds, "peak_mib": peak, "eval_s": eval_s,
                  "samples": len(splits.train), "test_accuracy": metrics["accuracy"]}))
"""
)

TORCH = (
    PEAK_MIB
    + EVAL_MEDIAN
    + """
import json, sys, time
import numpy as np, torch
from torch import nn
from dlrun.config.resolve import load
from dlrun.runs.build import load_data, make_streams
kind, config, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
cfg = load(config)
splits = load_data(cfg, make_streams(cfg["seed"])["data"])

class LastState(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm, self.head = nn.LSTM(28, 128, batch_first=True), nn.Linear(128, 10)
    def forward(self, x):
        return self.head(self.lstm(x)[0][:, -1])

if kind == "cnn":
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10))
else:
    model = LastState()
opt = torch.optim.Adam(model.parameters(), lr=cfg["optimizer"]["lr"])
lossf = nn.CrossEntropyLoss()
tr = splits.train
x_all, y_all = torch.from_numpy(np.asarray(tr.x)), torch.from_numpy(tr.y.astype(np.int64))

def inputs(x):
    return x.float().mul_(tr.scale).add_(tr.offset)

perm = torch.randperm(len(y_all))
start = time.perf_counter()
for i in range(0, len(y_all), 64):
    idx = perm[i : i + 64]
    opt.zero_grad(set_to_none=True)
    lossf(model(inputs(x_all[idx])), y_all[idx]).backward()
    opt.step()
seconds = time.perf_counter() - start
peak = peak_mib()
te = splits.test
xt, yt = torch.from_numpy(np.asarray(te.x)), torch.from_numpy(te.y.astype(np.int64))
def evaluate():
    correct = 0
    with torch.no_grad():
        for i in range(0, len(yt), 256):
            correct += int((model(inputs(xt[i : i + 256])).argmax(1) == yt[i : i + 256]).sum())
    return correct / len(yt)
eval_s, accuracy = eval_median(evaluate)
print(json.dumps({"seconds": seconds, "peak_mib": peak, "eval_s": eval_s,
                  "samples": len(y_all), "test_accuracy": accuracy}))
"""
)


def child(code: str, *args: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT
    )
    if out.returncode != 0:
        raise SystemExit(f"child failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(CONFIGS))
    parser.add_argument(
        "--reps", type=int, default=5, help="epochs of each, alternating (default 5)"
    )
    parser.add_argument("--threads", type=int, default=2, help="threads for both (default 2)")
    args = parser.parse_args(argv)
    config = str(ROOT / CONFIGS[args.kind])
    torch_too = have_torch()
    runs: dict[str, list[dict]] = {"dlrun": [], "torch": []}
    with tempfile.TemporaryDirectory(prefix="bench_epoch_") as tmp:
        child(DLRUN, config, tmp, str(args.threads))  # warm-up: the kernels' cache exists
        for r in range(args.reps):
            runs["dlrun"].append(child(DLRUN, config, tmp, str(args.threads)))
            if torch_too:
                runs["torch"].append(child(TORCH, args.kind, config, str(args.threads)))
            line = "  ".join(
                f"{fw} {v[-1]['seconds']:.2f} s" for fw, v in runs.items() if len(v) > r
            )
            print(f"round {r + 1}/{args.reps}: {line}", flush=True)
    samples = runs["dlrun"][0]["samples"]
    flops = flops_per_sample(args.kind) * samples
    med = {fw: {k: statistics.median(x[k] for x in v) for k in v[0]} for fw, v in runs.items() if v}
    t_ratio, m_ratio, eval_target = TARGETS[args.kind]
    print(
        f"\n{args.kind}: {CONFIGS[args.kind]}, one epoch of {samples} samples, batch 64, "
        f"{args.threads} threads each, {flops / 1e12:.2f} TFLOP of matrix products"
    )
    for fw, m in med.items():
        print(
            f"{fw:<6} epoch {m['seconds']:7.2f} s  {flops / m['seconds'] / 1e9:6.1f} GFLOP/s  "
            f"peak {m['peak_mib']:6.0f} MiB  test eval {m['eval_s']:.2f} s  "
            f"(test accuracy after 1 epoch {m['test_accuracy']:.3f})"
        )
    out = {"median": med, "runs": runs}
    if "torch" in med:
        out["time_ratio"] = med["dlrun"]["seconds"] / med["torch"]["seconds"]
        out["memory_ratio"] = med["dlrun"]["peak_mib"] / med["torch"]["peak_mib"]
        paired = [a["seconds"] / b["seconds"] for a, b in zip(runs["dlrun"], runs["torch"])]
        print(
            f"ratio dlrun / torch: time {out['time_ratio']:.2f} (target <= {t_ratio}), "
            f"memory {out['memory_ratio']:.2f} (target <= {m_ratio}); "
            f"per round: {' '.join(f'{x:.2f}' for x in paired)}"
        )
    if eval_target:
        print(f"test evaluation: {med['dlrun']['eval_s']:.2f} s (target <= {eval_target})")
    return out


if __name__ == "__main__":
    main()
