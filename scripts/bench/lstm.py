"""Benchmark: dlrun's LSTM against PyTorch's nn.LSTM on the CPU.

The Fashion-MNIST row-sequence model: 28 steps of 28 features -> LSTM(128),
last state -> dense 10 -> softmax cross-entropy, batch 64, float32. Times one
forward + backward per batch (no optimizer step) on random data of that shape,
alternating the two implementations round by round so that both see the same
machine load, and reports medians and their ratio. With ``--memory`` each
implementation also runs alone in a child process to report its peak RSS.

    .venv/bin/python scripts/bench_lstm.py --rounds 9 --batches 20 --memory
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable

import numpy as np

STEPS, FEATURES, HIDDEN, CLASSES = 28, 28, 128, 10
EPOCH_BATCHES = 55_000 // 64  # Fashion-MNIST train split without the 1/12 validation share


def dlrun_step(batch: int, seed: int = 0) -> Callable[[], float]:
    """dlrun LSTM + a NumPy dense/softmax-CE head; returns a fwd+bwd closure (-> loss)."""
    from dlrun.nn.layers.lstm import LSTM

    rng = np.random.default_rng(seed)
    layer = LSTM(LSTM.Config(units=HIDDEN))
    layer.build((STEPS, FEATURES), rng, np.float32)
    Wd = (rng.standard_normal((HIDDEN, CLASSES)) * 0.1).astype(np.float32)
    bd = np.zeros(CLASSES, dtype=np.float32)
    gWd, gbd = np.empty_like(Wd), np.empty_like(bd)
    x = rng.uniform(0, 1, (batch, STEPS, FEATURES)).astype(np.float32)
    y = rng.integers(0, CLASSES, batch)
    rows = np.arange(batch)

    def step() -> float:
        h = layer.forward(x, training=True)
        z = h @ Wd + bd
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, y]).mean()
        p[rows, y] -= 1.0
        p /= batch  # dC/dz of the mean cross-entropy
        np.matmul(h.T, p, out=gWd)
        np.sum(p, axis=0, out=gbd)
        layer.backward(p @ Wd.T)
        return float(loss)

    return step


def torch_step(batch: int, threads: int, seed: int = 0) -> Callable[[], float]:
    """PyTorch nn.LSTM + nn.Linear + CrossEntropyLoss; returns a fwd+bwd closure."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    lstm = torch.nn.LSTM(FEATURES, HIDDEN, batch_first=True)
    head = torch.nn.Linear(HIDDEN, CLASSES)
    loss_fn = torch.nn.CrossEntropyLoss()
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.uniform(0, 1, (batch, STEPS, FEATURES)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, CLASSES, batch))
    params = list(lstm.parameters()) + list(head.parameters())

    def step() -> float:
        for p in params:
            p.grad = None
        out, _ = lstm(x)
        loss = loss_fn(head(out[:, -1]), y)
        loss.backward()
        return float(loss.detach())

    return step


def blas_threads_setter() -> Callable[[int], None] | None:
    """A function setting the threads of NumPy's bundled OpenBLAS, or None if not found.

    Calling it with 0 restores the count found at the first call.
    """
    import ctypes
    import glob

    libs = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    for path in glob.glob(os.path.join(libs, "libscipy_openblas*.so")):
        lib = ctypes.CDLL(path)
        setter = getattr(lib, "scipy_openblas_set_num_threads64_", None)
        getter = getattr(lib, "scipy_openblas_get_num_threads64_", None)
        if setter is None or getter is None:
            continue
        setter.argtypes = [ctypes.c_int]
        getter.restype = ctypes.c_int
        original = getter()

        def set_threads(n: int, setter=setter, original=original) -> None:
            setter(n if n > 0 else original)

        return set_threads
    return None


def numpy_gates_step(gates, b, c_prev, c_out, tc_out, h_out) -> None:
    """The LSTM step kernel written with NumPy ufuncs (the alternative measured by --gates)."""
    h = c_prev.shape[1]
    gates += b
    sig = gates[:, : 3 * h]
    np.negative(sig, out=sig)
    np.exp(sig, out=sig)
    sig += 1.0
    np.reciprocal(sig, out=sig)
    np.tanh(gates[:, 3 * h :], out=gates[:, 3 * h :])
    np.multiply(gates[:, :h], c_prev, out=c_out)
    c_out += gates[:, h : 2 * h] * gates[:, 3 * h :]
    np.tanh(c_out, out=tc_out)
    np.multiply(gates[:, 2 * h : 3 * h], tc_out, out=h_out)


def bench_gates(batch: int, rounds: int, calls: int = 200) -> dict[str, float]:
    """Microseconds per LSTM forward step kernel (N x 4H gates + N x H cell), float32:
    Numba with libm exp/tanh, NumPy ufuncs, Numba with the rational tanh."""
    from dlrun.kernels import recurrent as K

    rng = np.random.default_rng(0)
    h = HIDDEN
    gx = rng.standard_normal((batch, 4 * h)).astype(np.float32)  # [h_{t-1}, x_t] W
    b = rng.standard_normal(4 * h).astype(np.float32)
    c_prev = rng.standard_normal((batch, h)).astype(np.float32)
    outs = [np.empty((batch, h), np.float32) for _ in range(3)]
    gates = gx.copy()
    k = K.constants(np.float32)
    variants = {
        "numba libm (exact)": lambda: K.lstm_step_forward(gates, b, c_prev, *outs, 0, False, k),
        "numpy ufuncs": lambda: numpy_gates_step(gates, b, c_prev, *outs),
        "numba rational": lambda: K.lstm_step_forward(gates, b, c_prev, *outs, 0, True, k),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for f in variants.values():
        f()
    for r in range(rounds):
        for name in list(variants) if r % 2 == 0 else list(variants)[::-1]:
            gates[...] = gx  # same inputs every call
            t0 = time.perf_counter()
            for _ in range(calls):
                variants[name]()
            times[name].append((time.perf_counter() - t0) / calls * 1e6)
    return {name: float(np.median(ts)) for name, ts in times.items()}


def time_batches(step: Callable[[], float], batches: int) -> float:
    """Seconds per batch over ``batches`` consecutive calls."""
    t0 = time.perf_counter()
    for _ in range(batches):
        step()
    return (time.perf_counter() - t0) / batches


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    VmHWM from /proc (reset by exec); ru_maxrss elsewhere (on Linux it keeps the
    parent's high-water mark across fork + exec, so it is not used there).
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_child(which: str, args: argparse.Namespace) -> float:
    """Peak resident memory (MiB) of a child process running only ``which``."""
    cmd = [sys.executable, __file__, "--only", which, "--batch", str(args.batch)]
    cmd += ["--threads", str(args.threads), "--batches", str(args.batches)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_rss_mib"]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per round")
    parser.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    parser.add_argument(
        "--blas-threads",
        type=int,
        nargs="+",
        default=[1, 2],
        help="OpenBLAS thread counts to time dlrun with (each a separate column)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        nargs="+",
        default=None,
        help="torch thread counts to time (default: --threads)",
    )
    parser.add_argument("--memory", action="store_true", help="peak RSS of each, alone")
    parser.add_argument("--no-torch", action="store_true", help="time dlrun only")
    parser.add_argument(
        "--gates", action="store_true", help="time only the gate nonlinearity alternatives"
    )
    parser.add_argument("--only", choices=["dlrun", "torch"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.gates:
        set_blas = blas_threads_setter()
        if set_blas:
            set_blas(1)
        res = bench_gates(args.batch, args.rounds)
        if set_blas:
            set_blas(0)
        print(
            f"LSTM step kernel, {args.batch} x {4 * HIDDEN} gates, float32, "
            f"median of {args.rounds} alternating rounds:"
        )
        for name, us in res.items():
            print(f"  {name:20s} {us:8.1f} us/step")
        return res

    if args.only:  # child process for --memory
        step = (
            dlrun_step(args.batch) if args.only == "dlrun" else torch_step(args.batch, args.threads)
        )
        for _ in range(args.batches):
            step()
        peak = peak_rss_mib()
        print(json.dumps({"peak_rss_mib": peak}))
        return {"peak_rss_mib": peak}

    set_blas = blas_threads_setter()
    dlrun = dlrun_step(args.batch)
    configs: dict[str, Callable[[], None]] = {}  # name -> prepare (threads), then time
    runners: dict[str, Callable[[], float]] = {}
    for n in args.blas_threads if set_blas else [0]:
        name = f"dlrun blas={n}" if set_blas else "dlrun"
        configs[name] = (lambda n=n: set_blas(n)) if set_blas else (lambda: None)
        runners[name] = dlrun
    torch_threads = [] if args.no_torch else (args.torch_threads or [args.threads])
    if torch_threads:
        import torch

        tstep = torch_step(args.batch, args.threads)
        for n in torch_threads:
            configs[f"torch threads={n}"] = lambda n=n: torch.set_num_threads(n)
            runners[f"torch threads={n}"] = tstep
    for name in configs:  # warm-up: JIT compilation, first-touch allocations
        configs[name]()
        for _ in range(3):
            runners[name]()
    times: dict[str, list[float]] = {name: [] for name in configs}
    load_before = os.getloadavg()[0]
    for r in range(args.rounds):
        order = list(configs) if r % 2 == 0 else list(configs)[::-1]
        for name in order:
            configs[name]()
            times[name].append(time_batches(runners[name], args.batches))
    load_after = os.getloadavg()[0]
    if set_blas:
        set_blas(0)

    tracemalloc.start()
    dlrun()
    _, dlrun_traced = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    result: dict = {
        "batch": args.batch,
        "rounds": args.rounds,
        "batches_per_round": args.batches,
        "load_average_1min": [load_before, load_after],
        "dlrun_numpy_peak_per_batch_mib": dlrun_traced / 2**20,
        "configs": {},
    }
    for name, ts in times.items():
        med = float(np.median(ts))
        result["configs"][name] = {
            "median_ms_per_batch": med * 1e3,
            "min_ms": min(ts) * 1e3,
            "max_ms": max(ts) * 1e3,
            "epoch_s_estimate": med * EPOCH_BATCHES,
        }
    reference = f"torch threads={args.threads}"
    if reference in times:
        for name in times:
            if name.startswith("dlrun"):
                ratios = [a / b for a, b in zip(times[name], times[reference], strict=True)]
                result["configs"][name][f"ratio_to_{reference}"] = float(np.median(ratios))
    if args.memory:
        for which in ("dlrun", "torch") if torch_threads else ("dlrun",):
            result[f"{which}_peak_rss_mib_alone"] = peak_rss_child(which, args)

    print(
        f"LSTM {STEPS}x{FEATURES} -> {HIDDEN} -> {CLASSES}, batch {args.batch}, float32, "
        f"fwd+bwd; {args.rounds} alternating rounds x {args.batches} batches; "
        f"load {load_before:.1f} -> {load_after:.1f}"
    )
    for name, r in result["configs"].items():
        line = f"  {name:18s} median {r['median_ms_per_batch']:7.2f} ms/batch "
        line += f"(min {r['min_ms']:.2f}, max {r['max_ms']:.2f}); "
        line += f"epoch ~{r['epoch_s_estimate']:.1f} s"
        ratio = r.get(f"ratio_to_{reference}")
        if ratio is not None:
            line += f"; ratio to {reference}: {ratio:.2f}"
        print(line)
    print(f"  dlrun NumPy allocations per batch (tracemalloc peak): {dlrun_traced / 2**20:.1f} MiB")
    for key, value in result.items():
        if key.endswith("_alone"):
            print(f"  {key}: {value:.0f} MiB")
    return result


if __name__ == "__main__":
    main()
