"""What the benchmarks share: configs, alternating timings, child processes, PyTorch twins.

The machine is shared and noisy, so every comparison alternates its sides round by
round (reversing the order every other round) and reports medians.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ENTRY = ROOT / "scripts" / "bench.py"

#: Seconds between two timed sides in one process: OpenBLAS's worker busy-waits for about
#: 0.1 s after a product and PyTorch's OpenMP threads after an operation, so each side
#: starts with the other's threads asleep.
SETTLE = 0.5


def make_parser(what: str, doc: str) -> argparse.ArgumentParser:
    """The options parser of ``bench.py what``; its help is the module's docstring."""
    return argparse.ArgumentParser(
        prog=f"bench.py {what}", description=doc, formatter_class=argparse.RawTextHelpFormatter
    )


def config(path: str | Path, overrides: list[str] | None = None) -> dict[str, Any]:
    """The resolved config at ``path`` (relative to the repository) with ``key=value``
    overrides."""
    from dlrun.config.resolve import load

    return load(ROOT / path, overrides)


def network(cfg: dict[str, Any], input_shape: tuple[int, ...], n_classes: int | None):
    """The config's network, built and planned as a run builds it, for this input shape."""
    import numpy as np

    from dlrun.nn.network import Network
    from dlrun.runs.build import make_streams

    net = Network.from_config(cfg, n_classes)
    net.build(input_shape, make_streams(cfg["seed"])["init"], np.dtype(cfg["dtype"]))
    net.plan_training(fuse=cfg["train"]["fuse"])
    return net


def machine(load_only: bool = False) -> str:
    """The machine a figure comes from: CPU model, vendor and the instruction sets that
    matter to matrix products (avx2, avx512f, amx), the BLAS libraries, the BLAS policy
    (``DLRUN_BLAS``) and the load (``uptime``'s one-minute average, on a shared machine)."""
    from dlrun.kernels import blas_choice, blas_libs

    load = f"load {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores"
    if load_only:
        return load
    cpu = blas_choice.cpu()
    libs = " + ".join(lib.describe() for lib in blas_libs.loaded()) or "numpy's BLAS"
    flags = " ".join(cpu["flags"]) or "none of avx2/avx512f/amx"
    return (
        f"CPU: {cpu['model']} ({cpu['vendor']}; {flags}); BLAS: {libs}, "
        f"DLRUN_BLAS={blas_choice.policy()}; {load}"
    )


def train_flops(net) -> float:
    """Multiply-adds x 2 of one training step's matrix products, per sample: forward,
    and backward two products per layer (dC/dW, dC/dx) except the first layer's dC/dx,
    which neither framework computes (a recurrent layer still needs its dC/dh)."""
    total = 0.0
    for layer in net.layers:
        w = layer.params.get("W")
        if w is None:
            continue
        kind = layer.registered_name
        steps = layer.input_shape[0] if kind in ("lstm", "rnn") else 1
        uses = math.prod(layer.output_shape[1:]) if kind == "conv2d" else steps
        forward = 2.0 * w.size * uses
        total += 3 * forward
        if not layer.input_grad:
            total -= 2.0 * steps * layer.input_shape[-1] * w.shape[-1] if steps > 1 else forward
    return total


def alternate(sides: dict[str, Callable[[], Any]], rounds: int, settle: float = 0.0) -> dict:
    """Call every side once a round, in reversed order every other round (so that
    neither always runs first); returns each side's results in round order."""
    out: dict[str, list] = {name: [] for name in sides}
    for r in range(rounds):
        for name in list(sides) if r % 2 == 0 else list(sides)[::-1]:
            time.sleep(settle)
            out[name].append(sides[name]())
    return out


def per_call(fn: Callable[[], Any], calls: int = 1) -> float:
    """Seconds per call of ``fn``, averaged over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def median(values) -> float:
    return statistics.median(values)


def listed(values, digits: int = 2) -> str:
    return " ".join(f"{v:.{digits}f}" for v in values)


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM, MiB). Not ru_maxrss: on Linux it is
    inherited across fork and exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(what: str, *args: str, env: dict[str, str] | None = None) -> dict:
    """Run ``scripts/bench.py what args`` in a fresh process; the JSON of its last line."""
    out = subprocess.run(
        [sys.executable, str(ENTRY), what, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    if out.returncode != 0:
        raise SystemExit(f"bench.py {what} {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# ---------------------------------------------------------------- PyTorch twins
def torch_model(net):
    """The body of a dlrun network (all but the softmax that the loss takes) as a
    ``torch.nn.Sequential`` with the same layers and PyTorch's default initialisation."""
    import torch
    from torch import nn

    class LastState(nn.Module):
        def __init__(self, features: int, units: int) -> None:
            super().__init__()
            self.lstm = nn.LSTM(features, units, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.lstm(x)[0][:, -1]

    torch.manual_seed(0)
    mods: list[nn.Module] = []
    for layer in net.body:
        kind, c = layer.registered_name, layer.config
        if kind == "dense":
            mods.append(nn.Linear(layer.input_shape[-1], layer.output_shape[-1], bias=c.bias))
        elif kind == "conv2d":
            k, s, p = (
                tuple(v) if isinstance(v, list) else v for v in (c.kernel_size, c.stride, c.padding)
            )
            mods.append(nn.Conv2d(layer.input_shape[0], c.filters, k, s, p, bias=c.bias))
        elif kind == "maxpool2d":
            k, s = (tuple(v) if isinstance(v, list) else v for v in (c.size, c.stride))
            mods.append(nn.MaxPool2d(k, s))
        elif kind == "flatten":
            mods.append(nn.Flatten())
        elif kind == "lstm" and not c.return_sequences:
            mods.append(LastState(layer.input_shape[-1], c.units))
        else:
            raise ValueError(f"no PyTorch twin for layer '{kind}'")
        activation = getattr(c, "activation", "identity")
        if activation == "relu":
            mods.append(nn.ReLU())
        elif activation != "identity":
            raise ValueError(f"no PyTorch twin for activation '{activation}'")
    return nn.Sequential(*mods)


def torch_optimizer(cfg: dict[str, Any], params):
    """The config's optimizer (gd or adam) in PyTorch."""
    import torch

    opt = cfg["optimizer"]
    if opt["name"] == "gd":
        return torch.optim.SGD(params, lr=opt["lr"])
    if opt["name"] == "adam":
        return torch.optim.Adam(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]))
    raise ValueError(f"no PyTorch twin for optimizer '{opt['name']}'")


def torch_epoch(model, opt, x, y, scale: float = 1.0, offset: float = 0.0, batch: int = 64):
    """Seconds for one epoch of mini-batches in shuffled order. x: a tensor; integer
    inputs are seen as ``x * scale + offset``, one batch at a time, as dlrun sees them."""
    import torch

    lossf = torch.nn.CrossEntropyLoss()
    perm = torch.randperm(len(y))
    start = time.perf_counter()
    for i in range(0, len(y), batch):
        idx = perm[i : i + batch]
        xb = x[idx]
        if not xb.is_floating_point():
            xb = xb.float().mul_(scale).add_(offset)
        opt.zero_grad(set_to_none=True)
        lossf(model(xb), y[idx]).backward()
        opt.step()
    return time.perf_counter() - start
