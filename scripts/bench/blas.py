"""The matrix products of one training epoch, on each BLAS: what the chooser picks, and the floor.

    python scripts/bench.py blas                    # mlp, cnn and lstm
    python scripts/bench.py blas cnn --threads 1    # one network, one thread

For each network (``configs/bench/mlp_gd.yaml``, ``configs/cnn_fashion_mnist.yaml``,
``configs/lstm_fashion_rows.yaml``) every matrix product one training epoch makes is
listed (the shape as the layer multiplies it, and how often per epoch: full batches,
the last one, recurrent steps), then timed on every installed library the way the
chooser times it (``kernels.blas_choice.measure``: alternating rounds, the median of
the faster half). Printed per product: GFLOP/s on each library and the library
``dlrun`` runs it on here (``DLRUN_BLAS`` and the wisdom file decide; a class not yet
remembered is measured now). Per network: the *products-alone floor* of an epoch (the
products and nothing else, every one at its measured speed) on OpenBLAS only, on MKL
only, with the chooser's picks and with the faster library of each shape: an epoch
can be no faster than its products, so a time ratio against PyTorch reads against it.

The header names the machine (CPU model, vendor, the instruction sets that matter:
avx2, avx512f, amx) and its load, which on a shared machine changes every figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .common import config, machine, make_parser, network

CONFIGS = {
    "mlp": ("configs/bench/mlp_gd.yaml", (784,), 55000),
    "cnn": ("configs/cnn_fashion_mnist.yaml", (1, 28, 28), 55000),
    "lstm": ("configs/lstm_fashion_rows.yaml", (28, 28), 55000),
}


@dataclass
class Product:
    """One kind of product of an epoch: op(a) (M, K) @ op(b) (K, N), ``calls`` times."""

    what: str
    m: int
    k: int
    n: int
    ta: bool
    tb: bool
    calls: int

    @property
    def flops(self) -> float:
        return 2.0 * self.m * self.k * self.n


def batch_products(net, rows: int, batches: int) -> list[Product]:
    """The products of ``batches`` training steps of ``rows`` samples, as the layers
    (and fused steps) of ``net`` make them."""
    from dlrun.nn.fused.conv_pool import TRAIN_CHUNK, ConvPool

    chunked = {s.conv for s in net.steps if isinstance(s, ConvPool) and s.conv.weight_grad_from_dy}
    out: list[Product] = []

    def add(what, m, k, n, ta, tb, calls=1):
        if calls > 0 and min(m, k, n) > 0:
            out.append(Product(f"{what}", m, k, n, ta, tb, calls * batches))

    for layer in net.body:
        kind, name = layer.registered_name, layer.name
        if kind == "dense":
            n_in, n_out = layer.input_shape[-1], layer.output_shape[-1]
            r = rows * (layer.input_shape[0] if len(layer.input_shape) == 2 else 1)
            add(f"{name} x W", r, n_in, n_out, False, False)
            add(f"{name} x^T dz", n_in, r, n_out, True, False)
            if layer.input_grad:
                add(f"{name} dz W^T", r, n_out, n_in, False, True)
        elif kind == "conv2d":
            f = layer.config.filters
            k = math.prod(layer.params["W"].shape[1:])
            p = math.prod(layer.output_shape[1:])
            if layer in chunked:
                full, rest = divmod(rows, TRAIN_CHUNK)
                add(
                    f"{name} W cols ({TRAIN_CHUNK} images)",
                    f,
                    k,
                    TRAIN_CHUNK * p,
                    False,
                    False,
                    full,
                )
                add(f"{name} W cols (last images)", f, k, rest * p, False, False)
            else:
                add(f"{name} W cols", f, k, rows * p, False, False)
            if not layer.weight_grad_from_dy:
                add(f"{name} dY cols^T", f, rows * p, k, False, True)
            if layer.input_grad:
                add(f"{name} W^T dY", k, f, rows * p, True, False)
        elif kind in ("lstm", "rnn"):
            t, feat = layer.input_shape
            h = layer.config.units
            back = t if layer.config.initial_state == "learned" else t - 1
            if kind == "lstm":
                add(f"{name} step [h x] W", rows, h + feat, 4 * h, False, False, t)
                add(f"{name} step back da Wh^T", rows, 4 * h, h, False, False, back)
                add(f"{name} [h x]^T da", h + feat, t * rows, 4 * h, True, False)
                if layer.input_grad:
                    add(f"{name} da Wx^T", t * rows, 4 * h, feat, False, True)
            else:
                add(f"{name} X U", t * rows, feat, h, False, False)
                add(f"{name} step S W", rows, h, h, False, False, t)
                add(f"{name} step back dz W^T", rows, h, h, False, False, back)
                add(f"{name} X^T dz", feat, t * rows, h, True, False)
                add(f"{name} S^T dz", h, t * rows, h, True, False)
                add(f"{name} dz U^T", t * rows, h, feat, False, True)
    return out


def epoch_products(net, samples: int, batch: int) -> list[Product]:
    full, last = divmod(samples, batch)
    return batch_products(net, batch, full) + (batch_products(net, last, 1) if last else [])


def epoch_floor(path: str, shape: tuple[int, ...], samples: int, overrides=()) -> dict:
    """Seconds of an epoch's products alone for the config at ``path``: per library, as
    dlrun chooses (``chosen``) and with the faster library per shape (``best``)."""
    from dlrun.kernels import blas, blas_choice, blas_libs

    blas.available()
    libs = [lib.code for lib in blas_libs.loaded()]
    cfg = config(path, list(overrides))
    net = network(cfg, shape, 10)
    dtype = np.dtype(cfg["dtype"])
    floors = {key: 0.0 for key in (*(blas_libs.NAMES[c] for c in libs), "chosen", "best")}
    timed: dict[tuple, dict[str, float]] = {}
    for p in epoch_products(net, samples, cfg["train"]["batch_size"]):
        key = (p.m, p.k, p.n, p.ta, p.tb)
        if key not in timed:
            timed[key] = blas_choice.measure(*key, dtype, libs)
        seconds = timed[key]
        for lib, t in seconds.items():
            floors[lib] += p.calls * t
        floors["chosen"] += p.calls * seconds[blas_choice.decide(*key, dtype).lib]
        floors["best"] += p.calls * min(seconds.values())
    return floors


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("blas", __doc__)
    parser.add_argument("kinds", nargs="*", metavar="mlp|cnn|lstm", help="default: all three")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (default 2)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.kinds) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown network {', '.join(unknown)}: choose from {', '.join(CONFIGS)}")
    from dlrun.kernels import blas, blas_choice, blas_libs
    from dlrun.runs.threads import set_threads

    set_threads(args.threads)
    blas.available()
    libs = [lib.code for lib in blas_libs.loaded()]
    names = [blas_libs.NAMES[c] for c in libs]
    print(machine())
    print(f"wisdom: {blas_choice.wisdom_path()}\n")
    for kind in args.kinds or list(CONFIGS):
        path, shape, samples = CONFIGS[kind]
        cfg = config(path)
        net = network(cfg, shape, 10)
        products = epoch_products(net, samples, cfg["train"]["batch_size"])
        print(f"{kind}: {path}, one epoch of {samples} samples, batch {cfg['train']['batch_size']}")
        head = "".join(f"{n + ' GFLOP/s':>17}" for n in names)
        print(f"  {'product':<34}{'M x K x N':>20}{'per epoch':>10}{head}  dlrun runs it on")
        floors = {key: 0.0 for key in (*names, "chosen", "best")}
        timed: dict[tuple, dict[str, float]] = {}
        dtype = np.dtype(cfg["dtype"])
        for p in products:
            key = (p.m, p.k, p.n, p.ta, p.tb)
            if key not in timed:
                timed[key] = blas_choice.measure(*key, dtype, libs)
            seconds = timed[key]
            choice = blas_choice.decide(*key, dtype)
            for lib, s in seconds.items():
                floors[lib] += p.calls * s
            floors["chosen"] += p.calls * seconds[choice.lib]
            floors["best"] += p.calls * min(seconds.values())
            rates = "".join(f"{p.flops / seconds[n] / 1e9:17.1f}" for n in names)
            shape_text = f"{p.m}x{p.k}x{p.n}" + (" " + "NT"[p.ta] + "NT"[p.tb])
            print(
                f"  {p.what:<34}{shape_text:>20}{p.calls:>10}{rates}  {choice.lib} ({choice.source})"
            )
        total = sum(p.calls * p.flops for p in products)
        print(f"  products-alone floor of the epoch ({total / 1e12:.2f} TFLOP):")
        for key, label in [
            *((n, f"{n} only") for n in names),
            ("chosen", "as dlrun chooses"),
            ("best", "faster library of each shape"),
        ]:
            print(f"    {label:<30}{floors[key]:7.2f} s  {total / floors[key] / 1e9:6.1f} GFLOP/s")
        print()
    print(machine(load_only=True))
    return 0
