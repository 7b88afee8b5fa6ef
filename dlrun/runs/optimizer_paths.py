"""The figure of the nine optimizers' paths on the 2-D test surfaces of
:mod:`dlrun.optim.surfaces` (``dlrun plot optimizers``).

One row per surface, three panels:

1. the contours of f with the path of each optimizer (start: black star, end: a dot in
   the optimizer's colour, minima: black crosses);
2. momentum against Nesterov alone (with GD for reference), every step a dot, zoomed on
   where they differ: Nesterov's look-ahead gradient brakes before momentum overshoots;
3. f(w) - f(global minimum) against the step, on a log scale, one line per optimizer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.config.registry import did_you_mean
from dlrun.errors import ConfigError
from dlrun.optim import surfaces as S
from dlrun.runs.figure import log_y, plt, save

#: One colour per optimizer (matplotlib's tab10 without the grey), the momentum family
#: solid, the adaptive ones dashed.
COLOURS = dict(
    zip(
        S.OPTIMIZERS,
        ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown",
         "tab:pink", "tab:olive", "tab:cyan"),
        strict=True,
    )
)  # fmt: skip
#: Light greys for the filled contours, darker towards the minima (drawn opaque: a
#: transparent contourf costs a second in Agg for each panel).
_PAPER = plt.matplotlib.colors.LinearSegmentedColormap.from_list("paper", ["0.72", "0.98"])
STYLES = {name: "-" if name in ("gd", "momentum", "nesterov") else "--" for name in S.OPTIMIZERS}


def _contours(ax: Any, surface: S.Surface, box: tuple[float, float, float, float]) -> None:
    """Filled contours of f over ``box``, levels spaced evenly in log(f - f_min + 0.1) so
    that the floor of a valley has as many lines as its walls."""
    x0, x1, y0, y1 = box
    x, y = np.meshgrid(np.linspace(x0, x1, 151), np.linspace(y0, y1, 151))
    z = surface.f(x, y)
    low = min(surface.value(np.array(surface.minima))) if surface.minima else z.min()
    shifted = np.log(z - low + 0.1)
    levels = np.linspace(shifted.min(), shifted.max(), 18)
    ax.contourf(x, y, shifted, levels=levels, cmap=_PAPER)
    ax.contour(x, y, shifted, levels=levels, colors="0.55", linewidths=0.5, linestyles="solid")
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("x (weight 1)")
    ax.set_ylabel("y (weight 2)")


def _marks(ax: Any, surface: S.Surface, names: bool) -> None:
    """The start (star), the minima (crosses) and saddle points (plus signs); with
    ``names``, each minimum named global or local when their values differ."""
    ax.plot(*surface.start, "k*", ms=13, zorder=5)
    values = [float(surface.value(np.array(m))) for m in surface.minima]
    for (x, y), value in zip(surface.minima, values, strict=True):
        ax.plot(x, y, "kx", ms=9, mew=2, zorder=5)
        if names and max(values) - min(values) > 1e-9:
            which = "global" if value == min(values) else "local"
            ax.annotate(
                f"{which} minimum\nf = {value:.2f}",
                (x, y),
                xytext=(0, -14),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=7,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
            )
    for x, y in surface.saddles:
        ax.plot(x, y, "k+", ms=11, mew=2, zorder=5)


def _clipped(path: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """``path`` with points far outside the box set to NaN (a line leaving the picture is
    cut at its edge by the axes; a point at 1e30 would break the drawing)."""
    x0, x1, y0, y1 = box
    w, h = x1 - x0, y1 - y0
    far = (
        ~np.isfinite(path).all(axis=1)
        | (path[:, 0] < x0 - 10 * w)
        | (path[:, 0] > x1 + 10 * w)
        | (path[:, 1] < y0 - 10 * h)
        | (path[:, 1] > y1 + 10 * h)
    )
    out = path.copy()
    out[far] = np.nan
    return out


def draw_surface(axes: Any, surface: S.Surface, paths: dict[str, np.ndarray]) -> None:
    """Fill three Axes (paths, momentum vs Nesterov, f against step) for one surface."""
    steps = len(next(iter(paths.values()))) - 1
    ax_paths, ax_mn, ax_f = axes

    _contours(ax_paths, surface, surface.box)
    for name, path in paths.items():
        p = _clipped(path, surface.box)
        ax_paths.plot(p[:, 0], p[:, 1], STYLES[name], color=COLOURS[name], lw=1.4)
        ax_paths.plot(*p[-1], "o", color=COLOURS[name], ms=6, mec="k", mew=0.6, zorder=4)
    if surface.ridge_start is not None:
        stuck = S.trajectory(surface, "gd", steps=steps, start=surface.ridge_start)
        ax_paths.plot(stuck[:, 0], stuck[:, 1] - 0.02, ":", color="k", lw=1.6,
                      label=f"gd started exactly on the ridge y = 0\n"
                      f"(drawn 0.02 lower): ends at the saddle ({stuck[-1, 0]:.0e}, 0)")  # fmt: skip
        ax_paths.legend(loc="lower right", fontsize=7, framealpha=0.9)
    _marks(ax_paths, surface, names=True)
    ax_paths.set_title(
        f"{surface.name}: {surface.formula}\n{surface.what}, {steps} steps", fontsize=9
    )

    _contours(ax_mn, surface, surface.zoom)
    for name in ("gd", "momentum", "nesterov"):
        p = _clipped(paths[name], surface.zoom)
        lr = surface.lrs[name]
        ax_mn.plot(
            p[:, 0], p[:, 1], ".-", color=COLOURS[name], lw=1.0, ms=4, label=f"{name} (lr {lr:g})"
        )
    _marks(ax_mn, surface, names=False)
    ax_mn.legend(loc="lower right", fontsize=7, framealpha=0.9)
    ax_mn.set_title(
        "zoom: momentum vs Nesterov (alpha 0.9), one dot per step\n"
        "Nesterov's gradient at the look-ahead point brakes earlier",
        fontsize=9,
    )

    low = min(surface.value(np.array(surface.minima)))
    t = np.arange(steps + 1)
    gaps = {name: np.maximum(surface.value(p) - low, 1e-12) for name, p in paths.items()}
    for name, gap in gaps.items():
        label = f"{name}: {surface.lrs[name]:g}"
        ax_f.plot(t, gap, STYLES[name], color=COLOURS[name], lw=1.4, label=label)
    ax_f.set_xlabel("step")
    ax_f.set_ylabel("f(w) - f(global minimum)")
    log_y(ax_f)
    ax_f.set_ylim(bottom=max(1e-12, min(float(np.nanmin(g)) for g in gaps.values()) / 3))
    ax_f.grid(alpha=0.3)
    ax_f.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="learning rate",
                title_fontsize=7, frameon=False)  # fmt: skip
    ax_f.set_title("how far above the global minimum (log scale)", fontsize=9)


def _key(fig: Any) -> None:
    """One legend for the whole figure: the optimizers' colours and the markers."""
    from matplotlib.lines import Line2D

    handles = [
        Line2D([], [], ls=STYLES[n], color=COLOURS[n], lw=1.6, label=n) for n in S.OPTIMIZERS
    ]
    handles += [
        Line2D([], [], ls="", marker="*", color="k", ms=11, label="start"),
        Line2D([], [], ls="", marker="o", color="0.6", mec="k", ms=6, label="end"),
        Line2D([], [], ls="", marker="x", color="k", mew=2, ms=8, label="minimum"),
        Line2D([], [], ls="", marker="+", color="k", mew=2, ms=10, label="saddle point"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8,
               bbox_to_anchor=(0.5, 1 - 0.55 / fig.get_size_inches()[1]), frameon=False)  # fmt: skip


def figure(names: list[str], steps: int | None = None) -> Any:
    """The figure for the surfaces ``names`` (one row each), paths of ``steps`` steps
    (default: each surface's own)."""
    rows = len(names)
    height = 4.6 * rows + 1.3
    fig, axes = plt.subplots(
        rows,
        3,
        figsize=(17, height),
        squeeze=False,
        gridspec_kw={"width_ratios": [1.25, 1.0, 1.0]},
    )
    for row, name in zip(axes, names, strict=True):
        surface = S.get(name)
        draw_surface(row, surface, S.trajectories(surface, steps))
    fig.suptitle(
        "The nine optimizers of dlrun (their own update kernels) on 2-D surfaces: "
        "the two weights w = (x, y), the gradient from the formula",
        fontsize=11,
    )
    _key(fig)
    fig.text(
        0.5,
        0.005,
        "Solid: gradient descent and its momentum forms; dashed: adaptive per-weight rates. "
        "AdaDelta runs as in its paper (no rate: lr 1, eps 1e-6); its first steps are about "
        "sqrt(eps) = 0.001 long and grow slowly, so it barely moves here.",
        ha="center",
        va="bottom",
        fontsize=8,
    )
    fig.tight_layout(rect=(0, 0.02, 1, 1 - 0.75 / height))
    return fig


def optimizers(path: Path, surface: str = "all", steps: int | None = None) -> Path:
    """Write the figure for ``surface`` (a name, or ``all`` for every surface) to ``path``."""
    if surface != "all" and surface not in S.SURFACES:
        raise ConfigError(
            f"--surface {surface!r}: not a surface{did_you_mean(surface, [*S.SURFACES, 'all'])}; "
            f"choose one of {', '.join(S.SURFACES)}, or all"
        )
    names = list(S.SURFACES) if surface == "all" else [surface]
    return save(figure(names, steps), path, tight=False)
