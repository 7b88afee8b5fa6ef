"""Pictures of what a network holds and sees: activation functions, convolution filters
and feature maps, the confusion matrix, misclassified examples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dlrun.runs.figure import plt, save


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
    return save(fig, path)


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
    return save(fig, path)


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
    return save(fig, path)


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
