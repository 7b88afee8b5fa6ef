"""The course's worked examples of convolution and pooling, computed by dlrun's own
layers and drawn with the numbers in the cells (``dlrun plot conv``, ``dlrun plot pooling``).

Convolution: the course slides a 3x3 filter shaped like an X over a 5x5 binary image;
each output is the sum of the products of the filter with the 3x3 window under it, so
the top-left output is 4 and the whole result is 3x3 (5 - 3 + 1 = 3 per side)::

    y[i, j] = sum_{a, b} x[i + a, j + b] * w[a, b]

This is cross-correlation (the filter is not flipped), as in deep-learning libraries
and dlrun's ``conv2d``; the X filter is symmetric, so flipping it would change nothing.

Pooling: max and average pooling with 2x2 windows and stride 2 on one 4x4 feature map,
by dlrun's ``maxpool2d`` and ``avgpool2d``: each output is the largest value, or the
mean, of one window; the map halves in each direction.

Each drawing is a function returning a matplotlib Figure (tests read its texts) and a
function that writes it as PNG.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.runs.figure import plt, save

#: The course's 5x5 binary image.
COURSE_IMAGE = np.array(
    [
        [1, 1, 1, 0, 0],
        [0, 1, 1, 1, 0],
        [0, 0, 1, 1, 1],
        [0, 0, 1, 1, 0],
        [0, 1, 1, 0, 0],
    ],
    dtype=np.float64,
)
#: The course's 3x3 filter (an X).
COURSE_FILTER = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float64)
#: A 4x4 feature map for the pooling picture: each 2x2 window has a different winner.
FEATURE_MAP = np.array(
    [
        [1, 3, 2, 1],
        [4, 6, 5, 0],
        [3, 1, 1, 2],
        [0, 2, 4, 8],
    ],
    dtype=np.float64,
)

#: One pale colour per pooling window, reused for the output cell it makes.
WINDOW_COLOURS = ("#cfe3f7", "#fde2c4", "#d5efd0", "#ecd9f2")


def _layer(spec: dict[str, Any], input_shape: tuple[int, ...]) -> Any:
    """A registered layer built for float64 inputs of ``input_shape`` (C, H, W)."""
    import dlrun.nn.layers  # noqa: F401  (fills the layer registry)
    from dlrun.config import registry

    layer = registry.layers.build(spec)
    layer.build(input_shape, np.random.default_rng(0), np.float64)
    return layer


def convolve(image: np.ndarray, filt: np.ndarray) -> np.ndarray:
    """``image`` (H, W) * ``filt`` (kh, kw) by dlrun's conv2d layer (one filter, no bias,
    no padding, stride 1): (H - kh + 1, W - kw + 1)."""
    layer = _layer(
        {"type": "conv2d", "filters": 1, "kernel_size": list(filt.shape)}, (1, *image.shape)
    )
    layer.params["W"][...] = filt
    layer.params["b"][...] = 0.0
    return layer.forward(image[None, None].astype(np.float64), False)[0, 0]


def pool(feature_map: np.ndarray, kind: str, size: int = 2) -> np.ndarray:
    """``kind`` (``max`` or ``avg``) pooling of ``feature_map`` (H, W) by dlrun's
    ``maxpool2d`` / ``avgpool2d`` layer, ``size`` x ``size`` windows, stride ``size``."""
    layer = _layer({"type": f"{kind}pool2d", "size": size}, (1, *feature_map.shape))
    return layer.forward(feature_map[None, None].astype(np.float64), False)[0, 0]


def _number(v: float) -> str:
    """A number: whole numbers without decimals, others with two."""
    return f"{v:.0f}" if float(v).is_integer() else f"{v:.2f}"


def _numbers(values: np.ndarray) -> list[list[str]]:
    """The cells of ``values`` (H, W) as text: whole numbers without decimals, or every
    cell with two when one of them needs them (a column of 3.50 and 2.00, not 2)."""
    whole = all(float(v).is_integer() for v in values.ravel())
    return [[f"{v:.0f}" if whole else f"{v:.2f}" for v in row] for row in values]


def matrix_text(values: np.ndarray) -> str:
    """Rows of numbers, right-aligned, as printed by ``dlrun plot conv``."""
    cells = _numbers(values)
    width = max(len(c) for row in cells for c in row)
    return "\n".join("  " + " ".join(c.rjust(width) for c in row) for row in cells)


def top_left_sum(image: np.ndarray, filt: np.ndarray) -> str:
    """The top-left output written out: ``1*1 + 1*0 + ... = 4``."""
    kh, kw = filt.shape
    window = image[:kh, :kw]
    terms = " + ".join(
        f"{_number(a)}*{_number(b)}" for a, b in zip(window.ravel(), filt.ravel(), strict=True)
    )
    return f"{terms} = {_number(float(np.sum(window * filt)))}"


def conv_text(image: np.ndarray, filt: np.ndarray, result: np.ndarray) -> str:
    """What ``dlrun plot conv`` prints: the image, the filter, the result, the first sum."""
    return (
        f"image ({image.shape[0]}x{image.shape[1]}):\n{matrix_text(image)}\n"
        f"filter ({filt.shape[0]}x{filt.shape[1]}):\n{matrix_text(filt)}\n"
        f"result = image * filter ({result.shape[0]}x{result.shape[1]}, dlrun's conv2d layer):\n"
        f"{matrix_text(result)}\n"
        f"top-left: {top_left_sum(image, filt)}"
    )


def _cells(
    ax: Any,
    values: np.ndarray,
    title: str,
    colours: np.ndarray | None = None,
    bold: np.ndarray | None = None,
) -> None:
    """A grid of cells with their numbers written in them; ``colours`` (H, W, 3) or a
    white background; ``bold`` (H, W) marks cells whose numbers are drawn in bold red."""
    h, w = values.shape
    background = np.ones((h, w, 3)) if colours is None else colours
    ax.imshow(background, interpolation="nearest")
    text = _numbers(values)
    for i in range(h):
        for j in range(w):
            strong = bold is not None and bold[i, j]
            ax.text(
                j,
                i,
                text[i][j],
                ha="center",
                va="center",
                fontsize=13,
                fontweight="bold" if strong else "normal",
                color="tab:red" if strong else "black",
            )
    ax.set_xticks(np.arange(-0.5, w), minor=True)
    ax.set_yticks(np.arange(-0.5, h), minor=True)
    ax.grid(which="minor", color="0.3", lw=0.8)
    ax.tick_params(which="both", length=0)
    ax.set_xticks(range(w), [str(j) for j in range(w)], fontsize=7)
    ax.set_yticks(range(h), [str(i) for i in range(h)], fontsize=7)
    ax.set_title(title, fontsize=10)


def _box(ax: Any, top: int, left: int, height: int, width: int, colour: str, lw: float = 3) -> None:
    """A rectangle around cells [top, top + height) x [left, left + width)."""
    from matplotlib.patches import Rectangle

    ax.add_patch(
        Rectangle((left - 0.5, top - 0.5), width, height, fill=False, ec=colour, lw=lw, zorder=3)
    )


def _operator(fig: Any, ax_left: Any, ax_right: Any, symbol: str) -> None:
    """``symbol`` (*, =, ->) written in the gap between two Axes."""
    left, right = ax_left.get_position(), ax_right.get_position()
    x = (left.x1 + right.x0) / 2
    y = (left.y0 + left.y1) / 2
    fig.text(x, y, symbol, ha="center", va="center", fontsize=22)


def conv_figure(image: np.ndarray, filt: np.ndarray, result: np.ndarray) -> Any:
    """image * filter = result, numbers in the cells, the top-left window and the output
    it makes outlined in red, the top-left sum written out underneath."""
    fig, axes = plt.subplots(
        1,
        3,
        figsize=(10.5, 4.4),
        gridspec_kw={
            "width_ratios": list(
                map(float, (image.shape[1], filt.shape[1] + 1, result.shape[1] + 1))
            )
        },
    )
    ax_image, ax_filter, ax_result = axes
    kh, kw = filt.shape
    grey = np.where(image[..., None] > 0, 0.82, 1.0) * np.ones(3)
    _cells(ax_image, image, f"image x ({image.shape[0]}x{image.shape[1]})", colours=grey)
    _box(ax_image, 0, 0, kh, kw, "tab:red")
    _cells(
        ax_filter,
        filt,
        f"filter w ({kh}x{kw})",
        colours=np.where(filt[..., None] > 0, 0.82, 1.0) * np.ones(3),
    )
    _box(ax_filter, 0, 0, kh, kw, "tab:red")
    _cells(ax_result, result, f"result y ({result.shape[0]}x{result.shape[1]})")
    _box(ax_result, 0, 0, 1, 1, "tab:red")
    fig.suptitle(
        "Convolution, the course's example: y[i, j] = sum over a, b of x[i+a, j+b] w[a, b]\n"
        "(computed by dlrun's conv2d layer, bias 0; the window slides one cell at a time)",
        fontsize=11,
    )
    fig.text(
        0.5,
        0.04,
        f"top-left (red): {top_left_sum(image, filt)}",
        ha="center",
        fontsize=10,
        color="tab:red",
    )
    fig.subplots_adjust(left=0.04, right=0.98, top=0.8, bottom=0.14, wspace=0.35)
    _operator(fig, ax_image, ax_filter, "*")
    _operator(fig, ax_filter, ax_result, "=")
    return fig


def conv_report() -> str:
    """What ``dlrun plot conv`` prints: the course's example computed by dlrun's conv2d."""
    return conv_text(COURSE_IMAGE, COURSE_FILTER, convolve(COURSE_IMAGE, COURSE_FILTER))


def conv(path: Path) -> Path:
    """Compute the course's example with dlrun's conv2d and draw it to ``path``."""
    result = convolve(COURSE_IMAGE, COURSE_FILTER)
    return save(conv_figure(COURSE_IMAGE, COURSE_FILTER, result), path, tight=False)


def _window_colours(shape: tuple[int, int], size: int) -> np.ndarray:
    """(H, W, 3) colours: one of WINDOW_COLOURS per size x size window (cycled)."""
    from matplotlib.colors import to_rgb

    h, w = shape
    out = np.ones((h, w, 3))
    for i in range(h // size):
        for j in range(w // size):
            colour = to_rgb(WINDOW_COLOURS[(i * (w // size) + j) % len(WINDOW_COLOURS)])
            out[i * size : (i + 1) * size, j * size : (j + 1) * size] = colour
    return out


def pooling_figure(
    feature_map: np.ndarray, maxed: np.ndarray, averaged: np.ndarray, size: int = 2
) -> Any:
    """The feature map with its windows in colour (each window's maximum in bold red),
    and the max-pooled and average-pooled maps, each cell in its window's colour."""
    h, w = feature_map.shape
    fig, axes = plt.subplots(
        1, 3, figsize=(11, 4.4), gridspec_kw={"width_ratios": [w, w / 2 + 1, w / 2 + 1]}
    )
    ax_map, ax_max, ax_avg = axes
    colours = _window_colours((h, w), size)
    winners = np.zeros((h, w), dtype=bool)
    for i in range(h // size):
        for j in range(w // size):
            block = feature_map[i * size : (i + 1) * size, j * size : (j + 1) * size]
            a, b = np.unravel_index(np.argmax(block), block.shape)
            winners[i * size + a, j * size + b] = True
            _box(ax_map, i * size, j * size, size, size, "0.2", lw=2.5)
    _cells(
        ax_map,
        feature_map,
        f"feature map ({h}x{w}), {size}x{size} windows, stride {size}",
        colours,
        winners,
    )
    small = colours[::size, ::size]
    _cells(
        ax_max,
        maxed,
        f"max pooling ({maxed.shape[0]}x{maxed.shape[1]})\nthe largest of each window",
        small,
    )
    _cells(
        ax_avg,
        averaged,
        f"average pooling ({averaged.shape[0]}x{averaged.shape[1]})\nthe mean of each window",
        small,
    )
    fig.suptitle(
        f"Pooling: each {size}x{size} window (one colour) becomes one number "
        "(dlrun's maxpool2d and avgpool2d layers)",
        fontsize=11,
    )
    i0 = feature_map[:size, :size]
    fig.text(
        0.5,
        0.04,
        f"first (blue) window: max({', '.join(_number(v) for v in i0.ravel())}) = "
        f"{_number(maxed[0, 0])};  ({' + '.join(_number(v) for v in i0.ravel())}) / "
        f"{size * size} = {_number(averaged[0, 0])}",
        ha="center",
        fontsize=10,
    )
    fig.subplots_adjust(left=0.04, right=0.98, top=0.78, bottom=0.14, wspace=0.35)
    _operator(fig, ax_map, ax_max, "→")
    return fig


def pooling_report() -> str:
    """What ``dlrun plot pooling`` prints: FEATURE_MAP and its max and average pooling."""
    maxed, averaged = pool(FEATURE_MAP, "max"), pool(FEATURE_MAP, "avg")
    h, w = FEATURE_MAP.shape
    return (
        f"feature map ({h}x{w}):\n{matrix_text(FEATURE_MAP)}\n"
        f"max pooling 2x2, stride 2 (dlrun's maxpool2d):\n{matrix_text(maxed)}\n"
        f"average pooling 2x2, stride 2 (dlrun's avgpool2d):\n{matrix_text(averaged)}"
    )


def pooling(path: Path) -> Path:
    """Pool FEATURE_MAP with dlrun's layers and draw it to ``path``."""
    maxed, averaged = pool(FEATURE_MAP, "max"), pool(FEATURE_MAP, "avg")
    return save(pooling_figure(FEATURE_MAP, maxed, averaged), path, tight=False)
