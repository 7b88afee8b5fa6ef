"""The CNN benchmarks, on the network of ``configs/cnn_fashion_mnist.yaml``.

    python scripts/bench.py cnn                      # all three
    python scripts/bench.py cnn --what batch [--rounds 5] [--batches 20] [--threads 1 2]
    python scripts/bench.py cnn --what conv          # the measurement behind im2col
    python scripts/bench.py cnn --what order         # behind ConvPool.phased

* ``batch``  forward + backward of one batch, dlrun against PyTorch, as
             ``bench.py batch configs/cnn_fashion_mnist.yaml`` (see ``batch.py``);
* ``conv``   for each convolution of the config, forward + backward with im2col + GEMM
             (the layer) against direct loops (jitted here); and a first layer's dW by
             ``dY @ cols.T`` against ``masked_weight_grad`` (behind ``conv2d.SMALL_K``),
             for one input channel (the config's, K = 9) and for three (K = 27);
* ``order``  the first convolution + max-pool step (forward and dW) with its columns in
             natural order against pooling-phase order (``im2col_phased``,
             ``phased_to_pooled``, ``phased_weight_grad``).

The two ways of each comparison must agree before they are timed; they alternate call
by call, and the medians are reported. A real epoch of the config against PyTorch is
``bench.py epoch cnn``.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from dlrun.kernels._jit import parallel_kernel
from dlrun.nn.layers.conv2d import Conv2D

from . import batch
from .common import alternate, config, make_parser, median, network, per_call

CONFIG = "configs/cnn_fashion_mnist.yaml"
IMAGES = (1, 28, 28)  # Fashion-MNIST, the config's data


def shapes(overrides: list[str]) -> tuple[int, list[tuple[int, int, int]]]:
    """The config's batch size, and (C, F, H = W) of its convolutions."""
    cfg = config(CONFIG, overrides)
    net = network(cfg, IMAGES, 10)
    convs = [
        (layer.input_shape[0], layer.config.filters, layer.input_shape[1])
        for layer in net.layers
        if layer.registered_name == "conv2d"
    ]
    return cfg["train"]["batch_size"], convs


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


def timed_pair(ways: dict, calls: int) -> dict[str, float]:
    """Median ms per call of each way, the ways alternating call by call."""
    t = alternate({k: lambda f=f: per_call(f) for k, f in ways.items()}, calls)
    return {k: 1e3 * median(v) for k, v in t.items()}


def compare_conv(n: int, c: int, f: int, hw: int, calls: int) -> dict[str, float]:
    """Forward + backward of one 3x3 convolution (padding 1): the layer (im2col + GEMM)
    against direct loops."""
    rng = np.random.default_rng(0)
    layer = Conv2D(Conv2D.Config(filters=f, kernel_size=3, padding=1))
    layer.build((c, hw, hw), rng, np.float32)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    dy = rng.standard_normal((n, f, hw, hw)).astype(np.float32)
    w, b = layer.params["W"], layer.params["b"]
    y, dx = np.empty_like(dy), np.empty_like(x)
    parts = np.empty((n, *w.shape), np.float32)
    dw = np.empty_like(w)

    def im2col_way():
        layer.forward(x, True)
        return layer.backward(dy)

    def direct_way():
        direct_forward(x, w, b, 1, 1, y)
        direct_backward(x, w, dy, 1, 1, dx, parts)
        np.sum(parts, axis=0, out=dw)
        return dx

    np.testing.assert_allclose(direct_way(), im2col_way(), rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(layer.forward(x, True), y, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(dw, layer.grads["W"], rtol=1e-3, atol=1e-2)
    return timed_pair({"im2col": im2col_way, "direct": direct_way}, calls)


def compare_weight_grad(n: int, c: int, f: int, hw: int, calls: int) -> dict[str, float]:
    """dW and db of a ReLU convolution that needs no dC/dx (a first layer): dY in the GEMM
    layout then ``dY @ cols.T`` (BLAS), against ``masked_weight_grad`` (one Numba pass)."""
    from dlrun.kernels.conv import im2col, masked_weight_grad, nchw_to_rows

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    dy = rng.standard_normal((n, f, hw * hw)).astype(np.float32)
    y = np.maximum(rng.standard_normal((n, f, hw * hw)), 0).astype(np.float32)
    cols = np.empty((c * 9, n * hw * hw), np.float32)
    im2col(x, 3, 3, 1, 1, 1, 1, hw, hw, cols)
    rows = np.empty((f, n * hw * hw), np.float32)
    dw1, dw2 = np.empty((f, c * 9), np.float32), np.empty((f, c * 9), np.float32)
    db1, db2 = np.empty(f, np.float32), np.empty(f, np.float32)

    def gemm_way():
        nchw_to_rows(dy, y, True, rows, db1)
        np.dot(rows, cols.T, out=dw1)

    def direct_way():
        masked_weight_grad(dy, y, True, cols, dw2, db2)

    gemm_way(), direct_way()
    np.testing.assert_allclose(dw2, dw1, rtol=1e-3, atol=1e-2)
    return timed_pair({"gemm": gemm_way, "direct": direct_way}, calls)


def compare_column_order(n: int, c: int, f: int, hw: int, calls: int) -> dict[str, float]:
    """A ReLU convolution and its 2x2 max-pool, forward and dW + db: columns in natural
    order against pooling-phase order."""
    from dlrun.kernels import conv_pool as K
    from dlrun.kernels.conv import im2col

    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, hw, hw)).astype(np.float32)
    w = rng.standard_normal((f, c * 9)).astype(np.float32)
    b = np.zeros(f, np.float32)
    dy = rng.standard_normal((n, f, hw // 2, hw // 2)).astype(np.float32)
    out = {
        order: (
            np.empty((c * 9, n * hw * hw), np.float32),  # columns
            np.empty((n, f, hw // 2, hw // 2), np.float32),  # pooled maps
            np.empty((n, f, hw // 2, hw // 2), np.uint8),  # winners
            np.empty((f, c * 9), np.float32),  # dW
            np.empty(f, np.float32),  # db
        )
        for order in ("natural", "phased")
    }

    def step(order: str) -> None:
        cols, y, code, dw, db = out[order]
        if order == "phased":
            K.im2col_phased(x, 3, 3, 1, 1, 1, 1, hw, hw, cols)
            flat = [a.reshape(n, f, -1) for a in (dy, y, code)]
            K.phased_to_pooled(w @ cols, b, True, flat[1], flat[2])
            K.phased_weight_grad(*flat, True, cols, dw, db)
        else:
            im2col(x, 3, 3, 1, 1, 1, 1, hw, hw, cols)
            K.rows_to_pooled(w @ cols, b, True, hw, y, code)
            K.pooled_weight_grad(dy, y, code, True, hw, hw, cols, dw, db)

    step("natural"), step("phased")
    for i in (1, 2, 3):  # the same pooled maps, winners and gradients
        np.testing.assert_allclose(out["phased"][i], out["natural"][i], rtol=1e-4, atol=1e-4)
    return timed_pair({o: lambda o=o: step(o) for o in out}, calls)


def main(argv: list[str] | None = None) -> int:
    parser = make_parser("cnn", __doc__)
    parser.add_argument("--what", choices=["all", "batch", "conv", "order"], default="all")
    batch.add_options(parser)
    args = parser.parse_args(argv)
    n, convs = shapes(args.set)
    calls = args.rounds * args.batches
    if args.what in ("all", "conv"):
        for c, f, hw in convs:
            r = compare_conv(n, c, f, hw, calls)
            print(
                f"conv {c}->{f} on {hw}x{hw}:  im2col+GEMM {r['im2col']:7.2f} ms   "
                f"direct loops {r['direct']:7.2f} ms   direct/im2col {r['direct'] / r['im2col']:.2f}x"
            )
        c, f, hw = convs[0]
        for channels in (c, 3 * c):
            r = compare_weight_grad(n, channels, f, hw, calls)
            print(
                f"first layer dW, K={channels * 9}:  dY @ cols.T {r['gemm']:7.2f} ms   "
                f"masked_weight_grad {r['direct']:7.2f} ms   ratio {r['direct'] / r['gemm']:.2f}x"
            )
    if args.what in ("all", "order"):
        r = compare_column_order(n, *convs[0], calls)
        print(
            f"first conv + pool, forward and dW: natural column order {r['natural']:.2f} ms   "
            f"pooling-phase order {r['phased']:.2f} ms   ratio {r['phased'] / r['natural']:.2f}x"
        )
    if args.what in ("all", "batch"):
        batch.run(CONFIG, args)
    return 0
