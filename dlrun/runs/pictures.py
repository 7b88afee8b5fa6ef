"""Pictures of what a network holds and sees: activation functions, convolution filters
and feature maps, the confusion matrix, misclassified examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.runs.figure import plt, save

#: The panels of the activation figure, in order: each elementwise activation (f and f'),
#: then softsign against tanh, and softmax twice.
ACTIVATION_PANELS = (
    "sigmoid",
    "tanh",
    "softsign",
    "softsign vs tanh",
    "relu",
    "leaky_relu",
    "softplus",
    "sign",
    "softmax",
    "softmax, one logit varied",
)
#: Softmax's example logits and temperatures (outputs are softmax(z / T)).
SOFTMAX_LOGITS = (2.0, 1.0, 0.1, -1.0)
SOFTMAX_TEMPERATURES = (0.5, 1.0, 2.0)


def softmax(z: np.ndarray) -> np.ndarray:
    """Softmax over the last axis of ``z`` by dlrun's softmax layer."""
    import dlrun.nn.layers  # noqa: F401  (fills the layer registry)
    from dlrun.config import registry

    layer = registry.layers.build({"type": "softmax"})
    z = np.atleast_2d(np.asarray(z, dtype=np.float64))
    layer.build(z.shape[1:], np.random.default_rng(0), np.float64)
    return layer.forward(z, False)


def _function_panel(ax, name: str, z: np.ndarray, slope: float) -> None:
    """f and f' of one elementwise activation, titled with its formula."""
    from dlrun.nn import activations as acts

    spec = acts.SPECS[name]
    ax.plot(z, spec(z, slope), label="f(x)")
    ax.plot(z, spec.derivative_at(z, slope), "--", label="f'(x)")
    ax.set_title(f"{name}: f(x) = {spec.formula}\nf' = {spec.derivative}", fontsize=8)
    ax.legend(fontsize=7, loc="lower right" if name == "sigmoid" else "upper left")


def _sigmoid_slope(ax) -> float:
    """Mark sigma'(0), the largest slope of the sigmoid (computed by dlrun's derivative),
    and what it means for L layers. Returns the value."""
    from dlrun.nn import activations as acts

    top = float(acts.SPECS["sigmoid"].derivative_at(np.zeros(1))[0])
    ax.plot([0.0], [top], "o", color="tab:red", ms=6, zorder=4)
    ax.annotate(
        f"σ'(0) = {top:g} = 1/{1 / top:g}, its largest value:\n"
        f"L sigmoid layers scale the\ngradient by at most ({top:g})^L\n(times the weights)",
        (0.0, top),
        xytext=(-4.9, 0.62),
        fontsize=7,
        bbox={"boxstyle": "round,pad=0.3", "fc": "white", "ec": "none", "alpha": 0.85},
        color="tab:red",
        arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 0.8},
    )
    return top


def _leaky_slope(ax, slope: float, z: np.ndarray) -> None:
    """Label the slope for x < 0 with the value drawn, and magnify that part in an inset
    (at slope 0.01 it is too flat to see on the main axes)."""
    from dlrun.nn import activations as acts

    spec = acts.SPECS["leaky_relu"]
    neg = z[z <= 0]
    inset = ax.inset_axes((0.12, 0.4, 0.4, 0.28))
    inset.plot(neg, spec(neg, slope), color="tab:blue")
    inset.set_title(f"x < 0 magnified: slope {slope:g}", fontsize=6.5, color="tab:red")
    inset.tick_params(labelsize=5.5)
    inset.grid(alpha=0.3)
    ax.text(
        0.04,
        0.1,
        f"slope {slope:g} for x < 0\n(dlrun's default; the\ncourse's x / a, a = {1 / slope:g})",
        transform=ax.transAxes,
        va="bottom",
        fontsize=7,
        color="tab:red",
    )


def _overlay_panel(ax, z: np.ndarray) -> None:
    """Softsign and tanh on the same axes: same range, different tails."""
    from dlrun.nn import activations as acts

    for name, colour in (("tanh", "tab:blue"), ("softsign", "tab:green")):
        spec = acts.SPECS[name]
        ax.plot(z, spec(z), color=colour, label=f"{name}: {spec.formula}")
        ax.plot(z, spec.derivative_at(z), "--", color=colour, lw=1, label=f"{name}'")
    ax.set_title(
        "softsign vs tanh: both in (-1, 1); softsign\nsaturates slowly (1 - 1/|x|, not 1 - 2e^-2|x|)",
        fontsize=8,
    )
    ax.legend(fontsize=6.5, loc="lower right")


def _softmax_bars(ax) -> np.ndarray:
    """Softmax of SOFTMAX_LOGITS divided by each temperature, as bars; returns the
    outputs (temperatures, classes)."""
    from dlrun.nn import activations as acts

    z = np.array(SOFTMAX_LOGITS)
    temps = np.array(SOFTMAX_TEMPERATURES)
    out = softmax(z[None, :] / temps[:, None])
    k = len(z)
    width = 0.8 / len(temps)
    for i, (t, o) in enumerate(zip(temps, out, strict=True)):
        ax.bar(
            np.arange(k) + (i - (len(temps) - 1) / 2) * width,
            o,
            width,
            label=f"T = {t:g}: sum = {o.sum():.3f}",
        )
    ax.set_xticks(range(k), [f"z{j + 1} = {v:g}" for j, v in enumerate(z)], fontsize=7)
    ax.set_ylabel("o_j", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_title(
        f"softmax: o_j = {acts.SPECS['softmax'].formula}\nof the logits z / T: "
        "a lower T sharpens, a higher T flattens",
        fontsize=8,
    )
    ax.legend(fontsize=6.5, loc="upper right")
    return out


def _softmax_varied(ax) -> np.ndarray:
    """Softmax of (t, 1, 0, -1) as t varies, stacked: the outputs fill [0, 1] exactly."""
    t = np.linspace(-4.0, 6.0, 201)
    z = np.stack([t, np.full_like(t, 1.0), np.zeros_like(t), np.full_like(t, -1.0)], axis=1)
    out = softmax(z)
    ax.stackplot(t, out.T, labels=["o1 (z1 = t)", "o2 (z2 = 1)", "o3 (z3 = 0)", "o4 (z4 = -1)"])
    ax.plot(t, out.sum(axis=1), "k", lw=1.2, label="sum = 1")
    ax.set_xlim(t[0], t[-1])
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("t (the first logit)", fontsize=8)
    ax.set_ylabel("softmax outputs, stacked", fontsize=8)
    ax.set_title(
        "softmax of (t, 1, 0, -1): raising one logit\ntakes share from the others", fontsize=8
    )
    ax.legend(fontsize=6, loc="center left")
    return out


def activations_figure(lo: float = -5.0, hi: float = 5.0) -> plt.Figure:
    """The activation functions of the course: each elementwise one with its derivative
    (titled with both formulas), sigma'(0) = 1/4 marked, LeakyReLU's slope labelled,
    softsign over tanh, and softmax (bars that sum to 1)."""
    from dlrun.nn.layers.activation import LeakyReLU

    slope = float(LeakyReLU.Config().slope)  # the layer's default, what a config gets
    z = np.linspace(lo, hi, 1001)
    fig, axes = plt.subplots(2, 5, figsize=(17, 7.2))
    for ax, panel in zip(axes.ravel(), ACTIVATION_PANELS, strict=True):
        if panel == "softsign vs tanh":
            _overlay_panel(ax, z)
        elif panel == "softmax":
            _softmax_bars(ax)
            continue
        elif panel.startswith("softmax"):
            _softmax_varied(ax)
            continue
        else:
            _function_panel(ax, panel, z, slope)
        if panel == "sigmoid":
            _sigmoid_slope(ax)
        if panel == "leaky_relu":
            _leaky_slope(ax, slope, z)
        ax.set_xlabel("x", fontsize=8)
        ax.axhline(0, color="k", lw=0.4)
        ax.axvline(0, color="k", lw=0.4)
        ax.grid(alpha=0.3)
    fig.suptitle(
        "Activation functions f (solid) and their derivatives f' (dashed), "
        "computed by dlrun's kernels",
        fontsize=11,
    )
    # fixed margins: tight_layout would render the ten panels once more (0.5 s)
    fig.subplots_adjust(left=0.035, right=0.99, top=0.875, bottom=0.07, wspace=0.28, hspace=0.42)
    return fig


def activations(path: Path, lo: float = -5.0, hi: float = 5.0) -> Path:
    """Write :func:`activations_figure` to ``path``."""
    return save(activations_figure(lo, hi), path, tight=False)


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


def mosaic(
    tiles: np.ndarray, cols: int, symmetric: bool = False, own_scale: bool = True, gap: int = 1
) -> np.ndarray:
    """Tiles (K, h, w) as one image: rows of ``cols`` tiles with ``gap`` pixels between
    them (NaN, drawn as background). With ``own_scale`` each tile is scaled by its own
    range: to [0, 1] (a constant tile to 0.5), or with ``symmetric`` to [-1, 1] by its
    largest |value| (zero stays 0); without, the values are kept (one shared scale).
    One picture with one colour map instead of one Axes per tile, each of which costs
    matplotlib about a MiB and a render."""
    k, h, w = tiles.shape
    rows = -(-k // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan)
    for i, t in enumerate(np.asarray(tiles, dtype=np.float64)):
        if own_scale and symmetric:
            top = np.abs(t).max()
            t = t / top if top > 0 else t
        elif own_scale:
            lo, hi = t.min(), t.max()
            t = (t - lo) / (hi - lo) if hi > lo else np.full_like(t, 0.5)
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = t
    return out


def _tile_labels(ax, labels: list[str], cols: int, h: int, w: int, gap: int) -> None:
    """Write ``labels[k]`` centred in the gap above tile k of a mosaic drawn by imshow
    (pixel centres at integers); the first row's labels go above the picture."""
    for k, label in enumerate(labels):
        r, c = divmod(k, cols)
        x = c * (w + gap) + (w - 1) / 2
        y = r * (h + gap) - 0.5 - gap / 2
        ax.text(x, y, label, ha="center", va="center", fontsize=7)


def _mosaic_axes(ax, image: np.ndarray, cmap: str, lo: float, hi: float, gap: int, bad: str) -> Any:
    """Draw a mosaic on ``ax`` as one picture in colour map ``cmap`` over [lo, hi], its
    gaps in colour ``bad`` (room above for the first row's labels, no ticks); returns the
    image, for its colour bar."""
    shown = ax.imshow(
        image,
        cmap=plt.get_cmap(cmap).with_extremes(bad=bad),
        vmin=lo,
        vmax=hi,
        interpolation="nearest",
    )
    ax.set_ylim(image.shape[0] - 0.5, -0.5 - gap)
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return shown


def filters_figure(weights: np.ndarray, cols: int = 8) -> plt.Figure:
    """The filters W (F, C, kh, kw) of a convolution layer, input channel 0, on one
    symmetric scale shared by all of them (blue negative, white 0, red positive, a colour
    bar in weight units), each labelled with its index, ``cols`` to a row.

    One Axes with one image of the whole mosaic and a colour bar: a figure with one Axes
    per filter cost matplotlib about a MiB each (18 MB for 32 filters)."""
    f, c, kh, kw = weights.shape
    cols = min(f, cols)
    gap = max(1, kh // 4)
    top = float(np.abs(weights[:, 0]).max()) or 1.0
    image = mosaic(weights[:, 0], cols, own_scale=False, gap=gap)
    rows = -(-f // cols)
    tile = 0.75  # inches per filter
    fig, ax = plt.subplots(figsize=(cols * tile + 1.6, rows * tile * kh / kw + 1.0))
    shown = _mosaic_axes(ax, image, "bwr", -top, top, gap, bad="0.85")
    _tile_labels(ax, [str(k) for k in range(f)], cols, kh, kw, gap)
    fig.colorbar(shown, ax=ax, fraction=0.04, pad=0.02, label="weight")
    channel = f"input channel 0 of {c}" if c > 1 else "one input channel"
    ax.set_title(f"First convolution layer: {f} learned {kh}x{kw} filters ({channel})", fontsize=9)
    return fig


def filters(weights: np.ndarray, path: Path) -> Path:
    """Write :func:`filters_figure` of ``weights`` (F, C, kh, kw) to ``path``."""
    return save(filters_figure(weights), path)


def feature_maps_figure(
    image: np.ndarray, maps: np.ndarray, n: int = 16, cols: int = 8
) -> plt.Figure:
    """One input image (left, grey) and the first ``n`` feature maps (F, H, W) a
    convolution layer makes of it (right, ``cols`` to a row, labelled "map k"), all maps on
    one scale with a colour bar: a bright map is a filter that responds strongly."""
    x = _image(image).astype(np.float64)
    span = float(x.max() - x.min())
    x = (x - x.min()) / span if span > 0 else np.zeros_like(x)  # raw bytes or scaled: 0 to 1
    shown_maps = maps[:n]
    k, h, w = shown_maps.shape
    cols = min(k, cols)
    rows = -(-k // cols)
    gap = max(1, h // 3)
    picture = mosaic(shown_maps, cols, own_scale=False, gap=gap)
    lo, hi = min(0.0, float(shown_maps.min())), float(shown_maps.max())
    hi = hi if hi > lo else lo + 1.0
    tile = 0.8
    fig, (ax_in, ax_maps) = plt.subplots(
        1,
        2,
        figsize=(tile * (cols + 2.0) + 1.9, rows * tile * 1.3 + 1.0),
        gridspec_kw={"width_ratios": [2.0, picture.shape[1] / w]},
    )
    ax_in.imshow(x, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax_in.set_xticks([])
    ax_in.set_yticks([])
    ax_in.set_title("input image", fontsize=9)
    shown = _mosaic_axes(ax_maps, picture, "viridis", lo, hi, gap, bad="white")
    _tile_labels(ax_maps, [f"map {i}" for i in range(k)], cols, h, w, gap)
    fig.colorbar(shown, ax=ax_maps, fraction=0.04, pad=0.02, shrink=0.8, label="feature map value")
    ax_maps.set_title(
        f"First convolution layer: feature maps 0-{k - 1} of {len(maps)} for this input "
        "(one scale for all)",
        fontsize=9,
    )
    return fig


def feature_maps(image: np.ndarray, maps: np.ndarray, path: Path, n: int = 16) -> Path:
    """Write :func:`feature_maps_figure` to ``path``."""
    return save(feature_maps_figure(image, maps, n), path)
