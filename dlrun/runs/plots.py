"""Every figure dlrun draws (matplotlib, Agg backend: no screen needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def _save(fig: Any, path: Path, tight: bool = True) -> Path:
    """Write ``fig`` as PNG atomically. ``tight=False`` skips tight_layout (an extra
    render, 0.1-0.15 s a figure), for figures that set their margins themselves."""
    from dlrun.runs.rundir import atomic_write

    if tight:
        fig.tight_layout()
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def epoch_axis(ax: Any) -> None:
    """An x axis of epochs: labelled, with ticks on whole epochs only (not 2.5, 7.5)."""
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def log_y(ax: Any) -> None:
    """A log y axis (call it once the data is drawn) labelled in plain numbers (0.002,
    0.5, 1e-06) at 1, 2 and 5 times the powers of ten, or at the powers alone over more
    than three decades, without minor ticks: matplotlib's default 10^k labels go
    through its TeX-like parser, which made this the slowest part of every figure."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    few = lo > 0 and np.log10(hi / lo) <= 3
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if few else (1.0,)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_locator(NullLocator())


def _margins(fig: Any, left: float = 0.75, top: float = 0.4, wspace: float = 0.3) -> None:
    """Fixed margins in inches, room for tick labels and axis labels: the figures every
    run draws skip tight_layout's second render."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / w, right=1 - 0.2 / w, bottom=0.55 / h, top=1 - top / h, wspace=wspace
    )


def curves(rows: list[dict[str, Any]], path: Path) -> Path:
    """Loss and accuracy per epoch, train vs val."""
    has_acc = any("accuracy" in r for r in rows)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.8))
    axes = np.atleast_1d(axes)
    epochs = [r["epoch"] for r in rows]
    for ax, key in zip(axes, ("loss", "accuracy")):
        for prefix, style in (("", "-"), ("val_", "--")):
            values = [r.get(prefix + key, np.nan) for r in rows]
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, style, label=("val" if prefix else "train"))
        epoch_axis(ax)
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    _margins(fig)
    return _save(fig, path, tight=False)


def grad_norms(rows: list[dict[str, Any]], path: Path) -> Path:
    """L2 norm of each layer's weight gradient: per epoch, and by depth at the last epoch."""
    keys = [k for k in rows[0] if k.startswith("grad_norm/")]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, k in enumerate(keys):
        a.plot(
            [r["epoch"] for r in rows],
            [r[k] for r in rows],
            label=k[10:] if len(keys) <= 8 else None,
            color=plt.cm.viridis(i / max(len(keys) - 1, 1)),
        )
    epoch_axis(a)
    a.set_ylabel("||dC/dW|| (mean over batches)")
    if len(keys) <= 8:
        a.legend(fontsize=7)
    else:  # too many layers for a legend: the colour scale says which line is which layer
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        scale = ScalarMappable(Normalize(1, len(keys)), plt.cm.viridis)
        fig.colorbar(scale, ax=a, pad=0.02, label="layer (1 = nearest the input)")
    a.grid(alpha=0.3)
    first, last = rows[0], rows[-1]
    b.plot(range(1, len(keys) + 1), [first[k] for k in keys], "o-", label="first epoch")
    b.plot(range(1, len(keys) + 1), [last[k] for k in keys], "s-", label="last epoch")
    log_y(a)
    log_y(b)
    b.set_xlabel("layer (1 = nearest the input)")
    b.set_ylabel("||dC/dW||")
    b.legend()
    b.grid(alpha=0.3)
    _margins(fig, left=1.0, wspace=0.35)  # log axes: wide tick labels
    return _save(fig, path, tight=False)


#: Multiply-adds a decision-boundary figure may cost (a few seconds at most).
GRID_BUDGET = 4e9


def decision_boundary(net: Any, splits: Any, targets: Any, path: Path) -> Path:
    """The classes the network assigns over the plane, with the training points.

    The grid has 200 x 200 points, fewer for a network so large that they would cost more
    than about GRID_BUDGET multiply-adds (never fewer than 40 x 40)."""
    x, y = splits.train.x, splits.train.y
    lo, hi = x.min(0) - 0.5, x.max(0) + 0.5
    side = int(min(200, max(40, (GRID_BUDGET / max(net.params.size, 1)) ** 0.5)))
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], side), np.linspace(lo[1], hi[1], side))
    grid = np.stack([gx.ravel(), gy.ravel()], 1).astype(net.dtype)
    out = net.predict(grid)
    if targets.n_out == 1:
        labels = (out[:, 0] > (0.0 if targets.low < 0 else 0.5)).astype(int)
    else:
        labels = np.argmax(out, 1)
    fig, ax = plt.subplots(figsize=(5, 4.5))
    ax.contourf(
        gx,
        gy,
        labels.reshape(gx.shape),
        alpha=0.3,
        cmap="coolwarm",
        levels=np.arange(labels.max() + 2) - 0.5,
    )
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap="coolwarm", s=12, edgecolors="k", linewidths=0.3)
    ax.set_title("decision boundary")
    _margins(fig, left=0.55)
    return _save(fig, path, tight=False)


def run_plots(run: Any, net: Any, splits: Any, targets: Any, augment: Any = None) -> None:
    """The figures of a finished run; ``augment``: its AugmentConfig, if any."""
    if augment is not None and splits.train.x.ndim == 4:
        from dlrun.data.augment import augmentation_figure

        sample = splits.train.take(slice(0, 8), net.dtype)
        # a stream of its own: drawing the figure must not change training
        augmentation_figure(
            sample,
            np.random.default_rng(0),
            augment,
            run.plots / "augmentation.png",
        )
    rows = run.metrics()
    if not rows:
        return
    curves(rows, run.plots / "curves.png")
    if any(k.startswith("grad_norm/") for k in rows[0]):
        grad_norms(rows, run.plots / "grad_norms.png")
    if splits.task == "classification" and splits.input_shape == (2,):
        decision_boundary(net, splits, targets, run.plots / "decision_boundary.png")
    if (run.path / "grad_through_time.json").is_file():
        grad_through_time(
            run.read_json("grad_through_time.json"), run.plots / "grad_through_time.png"
        )
    convs = [layer for layer in net.layers if layer.registered_name == "conv2d"]
    if convs and splits.test is not None:
        filters(convs[0].params["W"], run.plots / "filters.png")
        i = net.layers.index(convs[0])
        upto = net.layers[: i + 1]
        follower = net.layers[i + 1 : i + 2]
        if (
            follower
            and not follower[0].params
            and follower[0].output_shape == convs[0].output_shape
        ):
            upto += follower  # the activation that follows the convolution
        x = splits.test.take(slice(0, 1), net.dtype)
        for layer in upto:
            x = layer.forward(x, False)
        feature_maps(splits.test.x[0], x[0], run.plots / "feature_maps.png")


def activations(path: Path, lo: float = -5.0, hi: float = 5.0) -> Path:
    """Every elementwise activation and its derivative in one figure."""
    from dlrun.nn import activations as acts

    names = [n for n, s in acts.SPECS.items() if s.elementwise and n != "identity"]
    z = np.linspace(lo, hi, 1001)
    cols = 4
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        spec = acts.SPECS[name]
        slope = 0.1 if name == "leaky_relu" else 0.01
        ax.plot(z, spec(z, slope), label="f(x)")
        ax.plot(z, spec.derivative_at(z, slope), "--", label="f'(x)")
        ax.set_title(f"{name}: {spec.formula}", fontsize=8)
        ax.axhline(0, color="k", lw=0.4)
        ax.axvline(0, color="k", lw=0.4)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    return _save(fig, path)


def confusion(counts: np.ndarray, names: list[str], path: Path) -> Path:
    """Confusion matrix: rows are true classes, columns predicted ones."""
    k = len(counts)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax.imshow(counts, cmap="Blues")
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if counts[i, j] > counts.max() / 2 else "black",
            )
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    return _save(fig, path)


def _image(x: np.ndarray) -> np.ndarray:
    """(C, H, W) or (H, W) -> something imshow draws (grey for one channel)."""
    if x.ndim == 3:
        x = x[0] if x.shape[0] == 1 else np.moveaxis(x[:3], 0, -1)
    return x


def misclassified(x, y, predicted, names, path: Path, n: int = 24) -> Path:
    """A grid of wrongly classified inputs with true / predicted labels."""
    wrong = np.flatnonzero(predicted != y)[:n]
    cols = 8
    rows = max(1, -(-len(wrong) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.4 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(_image(x[i]), cmap="gray")
        ax.set_title(f"{names[y[i]]} -> {names[predicted[i]]}", fontsize=6)
    return _save(fig, path)


def mosaic(tiles: np.ndarray, cols: int, symmetric: bool = False) -> np.ndarray:
    """Tiles (K, h, w) as one image: rows of ``cols`` tiles with a gap of one pixel
    between them (NaN, drawn as background). Each tile is scaled by its own range: to
    [0, 1] (a constant tile to 0.5), or with ``symmetric`` to [-1, 1] by its largest
    |value| (zero stays 0). One picture with one colour map instead of one Axes per tile,
    each of which costs matplotlib about a MiB and a render."""
    k, h, w = tiles.shape
    rows = -(-k // cols)
    out = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
    for i, t in enumerate(np.asarray(tiles, dtype=np.float64)):
        if symmetric:
            top = np.abs(t).max()
            t = t / top if top > 0 else t
        else:
            lo, hi = t.min(), t.max()
            t = (t - lo) / (hi - lo) if hi > lo else np.full_like(t, 0.5)
        r, c = divmod(i, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = t
    return out


def _colour(image: np.ndarray, cmap: str, lo: float, hi: float, gap: str = "white") -> np.ndarray:
    """RGBA bytes of a scalar ``image`` in colour map ``cmap`` over [lo, hi], NaN (the gaps
    of a mosaic) in colour ``gap``; an (H, W, 3) image in [0, 1] as it is."""
    if image.ndim == 3:
        rgb = np.clip(image, 0.0, 1.0) * 255.0
        return np.concatenate([rgb, np.full((*image.shape[:2], 1), 255.0)], axis=2).astype(np.uint8)
    colours = plt.get_cmap(cmap).with_extremes(bad=gap)
    return colours((image - lo) / (hi - lo), bytes=True)


def _write_image(path: Path, rgba: np.ndarray, zoom: int) -> Path:
    """Save RGBA bytes as a PNG, each pixel a ``zoom`` x ``zoom`` block. No figure: a figure
    would resample the picture to its pixels in floats (18 MB at the peak for the
    filters of a 3x3 convolution, against the picture's 1 MB here)."""
    import matplotlib.image

    from dlrun.runs.rundir import atomic_write

    big = np.repeat(np.repeat(rgba, zoom, axis=0), zoom, axis=1)
    atomic_write(Path(path), lambda f: matplotlib.image.imsave(f, big, format="png"))
    return Path(path)


def filters(weights: np.ndarray, path: Path) -> Path:
    """The first convolution layer's learned filters W (F, C, kh, kw), channel 0, each on
    its own symmetric scale (blue negative, white 0, red positive), 8 to a row, on grey."""
    tiles = mosaic(weights[:, 0], min(len(weights), 8), symmetric=True)
    zoom = max(1, 80 // max(weights.shape[2:]))
    return _write_image(path, _colour(tiles, "bwr", -1.0, 1.0, gap="0.75"), zoom)


def feature_maps(image: np.ndarray, maps: np.ndarray, path: Path, n: int = 16) -> Path:
    """One input image (left, grey) and the first ``n`` feature maps (F, H, W) a
    convolution layer makes of it (right, 8 to a row), each map on its own scale."""
    x = _image(image).astype(np.float64)
    left = _colour(x if x.ndim == 3 else mosaic(x[None], 1), "gray", 0.0, 1.0)
    right = _colour(mosaic(maps[:n], min(len(maps), 8)), "viridis", 0.0, 1.0)
    h = max(len(left), len(right))
    out = np.full((h, left.shape[1] + 2 + right.shape[1], 4), 255, dtype=np.uint8)
    out[: len(left), : left.shape[1]] = left
    out[: len(right), left.shape[1] + 2 :] = right
    return _write_image(path, out, max(1, 84 // maps.shape[1]))


def grad_through_time(record: dict[str, dict[str, list[float]]], path: Path) -> Path:
    """||dC/dS_t|| against the time step t, per recurrent layer, before and after training."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for when, style in (("initial", "--"), ("final", "-")):
        for name, norms in record.get(when, {}).items():
            ax.plot(
                range(1, len(norms) + 1), np.maximum(norms, 1e-30), style, label=f"{name} ({when})"
            )
    ax.set_xlabel("time step t")
    ax.set_ylabel("||dC/dS_t|| (one batch)")
    log_y(ax)
    ax.set_title("gradient through time")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _margins(fig, left=1.0)
    return _save(fig, path, tight=False)
