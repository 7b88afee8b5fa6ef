"""Benchmark the CNN layers: dlrun (Numba + BLAS) against PyTorch CPU, and im2col against loops.

The target network (MNIST-sized, batch 64, float32)::

    conv3x3 1->32 pad 1 -> ReLU -> maxpool 2 -> conv3x3 32->64 pad 1 -> ReLU -> maxpool 2
    -> flatten -> dense 3136->128 -> ReLU -> dense 128->10 -> softmax cross-entropy

dlrun side: the conv2d / maxpool2d / flatten layers of this package, with a
plain NumPy head (ReLU, dense, softmax-CE) so the numbers measure the
convolutional part. PyTorch side: the same network with ``torch.set_num_threads(2)``.

Two measurements (``--what``); a real epoch of the CNN config against PyTorch is
``scripts/bench_epoch.py`` (``python scripts/bench.py epoch cnn``):

* ``batch``   forward + backward of one batch: a fresh process per framework and round,
              alternating; the median over rounds of each round's median;
* ``conv``    im2col + GEMM (the layer) against direct loops (jitted here) for the two
              convolutions of the network, forward + backward: the measurement behind the
              choice; and a first layer's dW by ``dY @ cols.T`` against
              ``masked_weight_grad`` (behind ``conv2d.SMALL_K``);
* ``order``   the first convolution + max-pool step (forward and dW) with its columns in
              their natural order against pooling-phase order (``im2col_phased``,
              ``phased_to_pooled``, ``phased_weight_grad``): the measurement behind
              ``ConvPool.phased``.

    .venv/bin/python scripts/bench_cnn.py                  # both
    .venv/bin/python scripts/bench_cnn.py --what batch --repeats 7
    .venv/bin/python scripts/bench_cnn.py --threading-layer workqueue

Numba's threading layer matters a lot here: with the OpenMP layer, its idle threads
spin while OpenBLAS runs the products (and the other way round) on the same two cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
from numba import prange

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dlrun.kernels._jit import parallel_kernel  # noqa: E402
from dlrun.nn.layers.conv2d import Conv2D  # noqa: E402
from dlrun.nn.layers.flatten import Flatten  # noqa: E402
from dlrun.nn.layers.pool2d import MaxPool2D  # noqa: E402

BATCH, CLASSES, IMAGE = 64, 10, (1, 28, 28)
CONVS = [(1, 32, 28), (32, 64, 14)]  # (C, F, H = W) of the two 3x3 'same' convolutions


def network_flops(n: int = BATCH) -> tuple[float, float]:
    """Multiply-adds x 2 of the matrix products: (forward, forward + backward).

    Backward costs two products per layer (dW and dx), except that the first
    layer needs no dx (PyTorch skips it; dlrun computes it anyway).
    """
    convs = [2 * n * h * h * f * c * 9 for c, f, h in CONVS]
    dense = [2 * n * 3136 * 128, 2 * n * 128 * 10]
    fwd = sum(convs) + sum(dense)
    return fwd, 3 * fwd - convs[0]


# ---------------------------------------------------------------- dlrun side
class DlrunCNN:
    """The target network from dlrun's layers, with a NumPy dense/softmax-CE head."""

    def __init__(self, seed: int = 0, dtype: Any = np.float32) -> None:
        rng = np.random.default_rng(seed)
        self.features = [
            Conv2D(Conv2D.Config(filters=32, kernel_size=3, padding="same", init="he_uniform")),
            "relu",
            MaxPool2D(MaxPool2D.Config(size=2)),
            Conv2D(Conv2D.Config(filters=64, kernel_size=3, padding="same", init="he_uniform")),
            "relu",
            MaxPool2D(MaxPool2D.Config(size=2)),
            Flatten(),
        ]
        shape: tuple[int, ...] = IMAGE
        for layer in self.features:
            if not isinstance(layer, str):
                shape = layer.build(shape, rng, dtype)
        assert shape == (3136,)
        self.w1 = (rng.standard_normal((3136, 128)) * np.sqrt(2 / 3136)).astype(dtype)
        self.b1 = np.zeros(128, dtype)
        self.w2 = (rng.standard_normal((128, CLASSES)) * np.sqrt(1 / 128)).astype(dtype)
        self.b2 = np.zeros(CLASSES, dtype)

    def params_and_grads(self) -> list[tuple[np.ndarray, np.ndarray]]:
        out = [(self.w1, self.gw1), (self.b1, self.gb1), (self.w2, self.gw2), (self.b2, self.gb2)]
        for layer in self.features:
            if not isinstance(layer, str):
                out += [(layer.params[k], layer.grads[k]) for k in layer.params]
        return out

    def step(self, x: np.ndarray, t: np.ndarray) -> float:
        """Forward, softmax cross-entropy (mean over the batch), backward: fills the grads."""
        acts = []
        h = x
        for layer in self.features:
            if layer == "relu":
                h = np.maximum(h, 0.0, out=h)  # in place: the pooled ReLU output is all we keep
                acts.append(h)
            else:
                h = layer.forward(h, True)
        a1 = h
        z1 = a1 @ self.w1
        z1 += self.b1
        r1 = np.maximum(z1, 0.0, out=z1)
        z2 = r1 @ self.w2
        z2 += self.b2
        z2 -= z2.max(axis=1, keepdims=True)
        p = np.exp(z2)
        p /= p.sum(axis=1, keepdims=True)
        n = len(t)
        loss = -float(np.mean(np.log(p[np.arange(n), t] + 1e-12)))
        p[np.arange(n), t] -= 1.0
        p /= n  # dL/dz2
        self.gw2, self.gb2 = r1.T @ p, p.sum(axis=0)
        d1 = p @ self.w2.T
        d1 *= r1 > 0
        self.gw1, self.gb1 = a1.T @ d1, d1.sum(axis=0)
        g = d1 @ self.w1.T
        for layer in reversed(self.features):
            if layer == "relu":
                g *= acts.pop() > 0
            else:
                g = layer.backward(g)
        return loss


# ---------------------------------------------------------------- torch side
def torch_cnn(seed: int = 0):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 128),
        nn.ReLU(),
        nn.Linear(128, CLASSES),
    )


def torch_step(model, x, t) -> float:
    import torch.nn.functional as F

    model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), t)
    loss.backward()
    return float(loss.detach())


# ---------------------------------------------------------------- measurements
def timed(fn, n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def run_batches(framework: str, batches: int) -> dict[str, Any]:
    """Median time of forward + backward over ``batches`` batches, after one warm-up batch.

    Runs in its own process, so the two frameworks' thread pools never meet.
    """
    rng = np.random.default_rng(0)
    x = rng.random((BATCH, *IMAGE), dtype=np.float32)
    t = rng.integers(0, CLASSES, BATCH)
    if framework == "torch":
        import torch

        torch.set_num_threads(2)
        model = torch_cnn()
        xt, tt = torch.from_numpy(x), torch.from_numpy(t)

        def step():
            torch_step(model, xt, tt)
    else:
        net = DlrunCNN()

        def step():
            net.step(x, t)

    step()  # compile (dlrun: load the cached machine code) and warm up
    times = []
    for _ in range(batches):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    layer = numba.threading_layer() if framework == "dlrun" else "-"
    return {
        "framework": framework,
        "median_s": statistics.median(times),
        "min_s": min(times),
        "threading_layer": layer,
    }


def child(what: str, framework: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", what, framework]
    cmd += ["--batches", str(args.batches)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{framework} {what} child failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_batch(args: argparse.Namespace) -> dict[str, Any]:
    """Alternate dlrun and torch processes; the median over rounds of each round's median."""
    mine, theirs = [], []
    for _ in range(args.repeats):
        ours = child("batch", "dlrun", args)
        mine.append(ours["median_s"])
        theirs.append(child("batch", "torch", args)["median_s"])
    m, p = statistics.median(mine), statistics.median(theirs)
    _, flops = network_flops()
    return {
        "dlrun_ms": 1e3 * m,
        "torch_ms": 1e3 * p,
        "ratio": m / p,
        "round_ratios": [a / b for a, b in zip(mine, theirs, strict=True)],
        "threading_layer": ours["threading_layer"],
        "dlrun_gflops": flops / m / 1e9,
        "torch_gflops": flops / p / 1e9,
        "runs_ms": {"dlrun": [1e3 * v for v in mine], "torch": [1e3 * v for v in theirs]},
    }


# ---------------------------------------------------------------- direct loops
U = np.uintp  # unsigned indices: no wraparound tests, the inner loops vectorise


@parallel_kernel
def direct_forward(x, w, b, ph, pw, y):
    """Stride-1 convolution by direct loops, parallel over samples (for comparison)."""
    n_batch, n_chan, h, wd = x.shape
    n_filt, _, kh, kw = w.shape
    _, _, ho, wo = y.shape
    for n in prange(n_batch):
        for f in range(n_filt):
            y[n, f] = b[f]
            for c in range(n_chan):
                for i in range(kh):
                    oy0, oy1 = max(0, ph - i), min(ho, h + ph - i)
                    for j in range(kw):
                        ox0, ox1 = max(0, pw - j), min(wo, wd + pw - j)
                        wv = w[f, c, i, j]
                        for oy in range(oy0, oy1):
                            iy = U(oy - ph + i)
                            for ox in range(ox0, ox1):
                                y[U(n), U(f), U(oy), U(ox)] += (
                                    wv * x[U(n), U(c), iy, U(ox - pw + j)]
                                )


@parallel_kernel
def direct_backward(x, w, dy, ph, pw, dx, dw_parts):
    """dx and per-sample dW partials (summed serially afterwards), stride 1."""
    n_batch, n_chan, h, wd = x.shape
    n_filt, _, kh, kw = w.shape
    _, _, ho, wo = dy.shape
    for n in prange(n_batch):
        dx[n] = 0.0
        for f in range(n_filt):
            for c in range(n_chan):
                for i in range(kh):
                    oy0, oy1 = max(0, ph - i), min(ho, h + ph - i)
                    for j in range(kw):
                        ox0, ox1 = max(0, pw - j), min(wo, wd + pw - j)
                        wv = w[f, c, i, j]
                        s = 0.0
                        for oy in range(oy0, oy1):
                            iy = U(oy - ph + i)
                            for ox in range(ox0, ox1):
                                g = dy[U(n), U(f), U(oy), U(ox)]
                                dx[U(n), U(c), iy, U(ox - pw + j)] += wv * g
                            for ox in range(ox0, ox1):
                                s += (
                                    dy[U(n), U(f), U(oy), U(ox)] * x[U(n), U(c), iy, U(ox - pw + j)]
                                )
                        dw_parts[n, f, c, i, j] = s


def compare_conv(c: int, f: int, hw: int, repeats: int, batches: int) -> dict[str, float]:
    """Forward + backward of one 3x3 'same' convolution: the layer's way against direct loops."""
    rng = np.random.default_rng(0)
    layer = Conv2D(Conv2D.Config(filters=f, kernel_size=3, padding="same"))
    layer.build((c, hw, hw), rng, np.float32)
    x = rng.standard_normal((BATCH, c, hw, hw)).astype(np.float32)
    dy = rng.standard_normal((BATCH, f, hw, hw)).astype(np.float32)
    w, b = layer.params["W"], layer.params["b"]
    y, dx = np.empty_like(dy), np.empty_like(x)
    parts = np.empty((BATCH, *w.shape), np.float32)
    dw = np.empty_like(w)

    def im2col_way():
        layer.forward(x, True)
        return layer.backward(dy)

    def direct_way():
        direct_forward(x, w, b, 1, 1, y)
        direct_backward(x, w, dy, 1, 1, dx, parts)
        np.sum(parts, axis=0, out=dw)
        return dx

    # both ways must agree before their times mean anything
    np.testing.assert_allclose(direct_way(), im2col_way(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(layer.forward(x, True), y, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dw, layer.grads["W"], rtol=1e-3, atol=1e-2)
    a, d = [], []
    for _ in range(repeats * batches):  # alternate call by call; medians shrug off noise spikes
        a.append(timed(im2col_way, 1))
        d.append(timed(direct_way, 1))
    return {
        "im2col_ms": 1e3 * statistics.median(a),
        "direct_ms": 1e3 * statistics.median(d),
        "direct_over_im2col": statistics.median(d) / statistics.median(a),
    }


def compare_weight_grad(c: int, f: int, hw: int, repeats: int, batches: int) -> dict[str, float]:
    """dW and db of a ReLU convolution that needs no dC/dx (a first layer): dY in the GEMM
    layout then ``dY @ cols.T`` (BLAS), against ``masked_weight_grad`` (one Numba pass)."""
    from dlrun.kernels.conv import im2col, masked_weight_grad, nchw_to_rows

    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, c, hw, hw)).astype(np.float32)
    dy = rng.standard_normal((BATCH, f, hw * hw)).astype(np.float32)
    y = np.maximum(rng.standard_normal((BATCH, f, hw * hw)), 0).astype(np.float32)
    cols = np.empty((c * 9, BATCH * hw * hw), np.float32)
    im2col(x, 3, 3, 1, 1, 1, 1, hw, hw, cols)
    rows = np.empty((f, BATCH * hw * hw), np.float32)
    dw1, dw2 = np.empty((f, c * 9), np.float32), np.empty((f, c * 9), np.float32)
    db1, db2 = np.empty(f, np.float32), np.empty(f, np.float32)

    def gemm_way():
        nchw_to_rows(dy, y, True, rows, db1)
        np.dot(rows, cols.T, out=dw1)

    def direct_way():
        masked_weight_grad(dy, y, True, cols, dw2, db2)

    gemm_way(), direct_way()
    np.testing.assert_allclose(dw2, dw1, rtol=1e-3, atol=1e-2)
    g, d = [], []
    for _ in range(repeats * batches):
        g.append(timed(gemm_way, 1))
        d.append(timed(direct_way, 1))
    return {
        "gemm_ms": 1e3 * statistics.median(g),
        "direct_ms": 1e3 * statistics.median(d),
        "direct_over_gemm": statistics.median(d) / statistics.median(g),
    }


def compare_column_order(repeats: int, batches: int) -> dict[str, float]:
    """The first convolution (1 -> 32 on 28x28, ReLU) and its 2x2 max-pool, forward and
    dW + db, in a batch of 64: columns in natural order against pooling-phase order."""
    from dlrun.kernels import conv_pool as K
    from dlrun.kernels.conv import im2col

    c, f, hw = CONVS[0]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((f, c * 9)).astype(np.float32)
    b = np.zeros(f, np.float32)
    dy = rng.standard_normal((BATCH, f, hw // 2, hw // 2)).astype(np.float32)
    out = {
        order: (
            np.empty((c * 9, BATCH * hw * hw), np.float32),  # columns
            np.empty((BATCH, f, hw // 2, hw // 2), np.float32),  # pooled maps
            np.empty((BATCH, f, hw // 2, hw // 2), np.uint8),  # winners
            np.empty((f, c * 9), np.float32),  # dW
            np.empty(f, np.float32),  # db
        )
        for order in ("natural", "phased")
    }

    def step(order: str) -> None:
        cols, y, code, dw, db = out[order]
        phased = order == "phased"
        (K.im2col_phased if phased else im2col)(x, 3, 3, 1, 1, 1, 1, hw, hw, cols)
        rows = w @ cols
        if phased:
            flat = [a.reshape(BATCH, f, -1) for a in (dy, y, code)]
            K.phased_to_pooled(rows, b, True, flat[1], flat[2])
            K.phased_weight_grad(*flat, True, cols, dw, db)
        else:
            K.rows_to_pooled(rows, b, True, hw, y, code)
            K.pooled_weight_grad(dy, y, code, True, hw, hw, cols, dw, db)

    step("natural"), step("phased")
    for i in (1, 2, 3):  # the same pooled maps, winners and gradients
        np.testing.assert_allclose(out["phased"][i], out["natural"][i], rtol=1e-4, atol=1e-4)
    times: dict[str, list[float]] = {"natural": [], "phased": []}
    for _ in range(repeats * batches):
        for order in times:
            times[order].append(timed(lambda o=order: step(o), 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "natural_ms": 1e3 * med["natural"],
        "phased_ms": 1e3 * med["phased"],
        "phased_over_natural": med["phased"] / med["natural"],
    }


def bench_conv(repeats: int, batches: int) -> dict[str, Any]:
    """im2col + GEMM (the layer) against direct loops for the two convolutions of the network,
    and the two ways of a first layer's weight gradient (K = 9 and, for contrast, 27)."""
    report: dict[str, Any] = {
        f"conv {c}->{f} on {hw}x{hw}": compare_conv(c, f, hw, repeats, batches)
        for c, f, hw in CONVS
    }
    for c, f, hw in [(1, 32, 28), (3, 32, 28)]:
        report[f"dW, K={c * 9}"] = compare_weight_grad(c, f, hw, repeats, batches)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--what", choices=["all", "batch", "conv", "order"], default="all")
    parser.add_argument("--repeats", type=int, default=5, help="alternating rounds (medians)")
    parser.add_argument("--batches", type=int, default=20, help="batches timed per round")
    parser.add_argument(
        "--threading-layer",
        choices=["default", "workqueue", "omp", "tbb"],
        default="default",
        help="Numba threading layer for the dlrun side (sets NUMBA_THREADING_LAYER)",
    )
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print raw JSON too")
    args = parser.parse_args(argv)

    if args.child:
        _, framework = args.child
        print(json.dumps(run_batches(framework, args.batches)))
        return 0

    if args.threading_layer != "default":
        os.environ["NUMBA_THREADING_LAYER"] = args.threading_layer  # inherited by the children
        numba.config.THREADING_LAYER = args.threading_layer  # this process (conv comparison)
    layer = os.environ.get("NUMBA_THREADING_LAYER", "default")
    print(
        f"batch {BATCH}, float32, numba threads {numba.config.NUMBA_NUM_THREADS} "
        f"(threading layer {layer}), torch threads 2, load average {os.getloadavg()[0]:.1f}"
    )
    fwd, total = network_flops()
    print(f"flops per batch: forward {fwd / 1e9:.3f} G, forward + backward {total / 1e9:.3f} G")
    report: dict[str, Any] = {}
    if args.what in ("all", "conv"):
        report["conv"] = bench_conv(args.repeats, args.batches)
        for key, r in report["conv"].items():
            if key.startswith("dW"):
                print(
                    f"first layer {key:<10} dY @ cols.T {r['gemm_ms']:7.2f} ms   "
                    f"masked_weight_grad {r['direct_ms']:7.2f} ms   "
                    f"ratio {r['direct_over_gemm']:.2f}x"
                )
                continue
            print(
                f"{key:<22} im2col+GEMM {r['im2col_ms']:7.2f} ms   direct loops "
                f"{r['direct_ms']:7.2f} ms   direct/im2col {r['direct_over_im2col']:.2f}x"
            )
    if args.what in ("all", "order"):
        r = report["order"] = compare_column_order(args.repeats, args.batches)
        print(
            f"first conv + pool, forward and dW: natural column order {r['natural_ms']:.2f} ms"
            f"   pooling-phase order {r['phased_ms']:.2f} ms"
            f"   ratio {r['phased_over_natural']:.2f}x"
        )
    if args.what in ("all", "batch"):
        r = report["batch"] = bench_batch(args)
        print(
            f"forward+backward per batch: dlrun {r['dlrun_ms']:.2f} ms "
            f"({r['dlrun_gflops']:.1f} GFLOP/s), torch {r['torch_ms']:.2f} ms "
            f"({r['torch_gflops']:.1f} GFLOP/s), dlrun/torch {r['ratio']:.2f}x "
            f"(per round: {', '.join(f'{v:.2f}' for v in r['round_ratios'])}; "
            f"numba threading layer {r['threading_layer']})"
        )
    if args.json:
        print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
