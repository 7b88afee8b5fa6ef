"""Figures that only the tour draws: the perceptron's learning rule at work.

The run figures (curves, gradient norms, decision boundaries) are in
:mod:`dlrun.runs.plots`; pictures of activations, convolution and pooling in
:mod:`dlrun.runs.pictures`, :mod:`dlrun.runs.conv_pictures` and
:mod:`dlrun.runs.optimizer_paths`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class LineHistory:
    """A perceptron's line w1 x1 + w2 x2 + w0 = 0 after each update, and its data.

    A Trainer callback (called after every batch): with ``batch_size: 1`` each
    call sees one application of the learning rule w += eta (t - o) x.
    """

    lines: list[np.ndarray] = field(default_factory=list)  # (w0, w1, w2) per update
    x: np.ndarray | None = None  # (n, 2) training inputs
    y: np.ndarray | None = None  # (n,) class labels 0 / 1

    def __call__(self, trainer: Any) -> None:
        dense = trainer.net.layers[0]
        w = np.asarray(dense.params["W"], dtype=np.float64)[:, 0]
        b = float(np.asarray(dense.params["b"]).ravel()[0])
        self.lines.append(np.array([b, w[0], w[1]]))
        if self.x is None:
            self.x = np.asarray(trainer.splits.train.x, dtype=np.float64)
            self.y = np.asarray(trainer.splits.train.y).ravel()

    def errors(self) -> np.ndarray:
        """Training points on the wrong side of the line after each update."""
        assert self.x is not None and self.y is not None
        w = np.array(self.lines)  # (updates, 3)
        side = w[:, 1:] @ self.x.T + w[:, :1]  # (updates, n): w0 + w . x
        predicted = (side >= 0).astype(int)  # dlrun's sign(0) = +1: class 1
        return (predicted != self.y[None, :]).sum(axis=1)


def _draw_line(ax: Any, w: np.ndarray, lo: float, hi: float, **style: Any) -> None:
    """The line w0 + w1 x1 + w2 x2 = 0 across [lo, hi]^2."""
    w0, w1, w2 = w
    xs = np.array([lo, hi])
    if abs(w2) > 1e-12:
        ax.plot(xs, -(w0 + w1 * xs) / w2, **style)
    elif abs(w1) > 1e-12:
        ax.plot([-w0 / w1] * 2, xs, **style)


def perceptron_rule(path: Path, histories: dict[str, LineHistory], title: str) -> Path:
    """One panel per problem: the data and the perceptron's line after each update (light
    to dark), and below, the points on the wrong side of the line per update."""
    from dlrun.runs.figure import plt, save

    names = list(histories)
    fig, axes = plt.subplots(
        2,
        len(names),
        figsize=(4.6 * len(names), 7.4),
        squeeze=False,
        gridspec_kw={"height_ratios": [3, 1.4]},
    )
    lo, hi = -0.5, 1.5
    for col, name in enumerate(names):
        h = histories[name]
        ax = axes[0, col]
        n = len(h.lines)
        wrong = h.errors()
        separated = int(np.argmax(wrong == 0)) + 1 if (wrong == 0).any() else None
        shown = min(separated or n, 40)  # after separation the rule changes nothing
        for k in range(shown):
            colour = plt.cm.Blues(0.25 + 0.6 * k / max(shown, 1))
            _draw_line(ax, h.lines[k], lo, hi, color=colour, lw=0.8)
        _draw_line(ax, h.lines[-1], lo, hi, color="C3", lw=2.2, label=f"after update {n}")
        for label, marker, colour in ((0, "o", "white"), (1, "s", "black")):
            pts = h.x[h.y == label]
            ax.scatter(
                pts[:, 0],
                pts[:, 1],
                s=110,
                marker=marker,
                c=colour,
                edgecolors="k",
                zorder=3,
                label=f"class {label} (t = {2 * label - 1:+d})",
            )
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.set_xlabel("x1")
        ax.set_ylabel("x2")
        ax.set_title(f"{name}: the line after updates 1-{shown} (light to dark)", fontsize=9)
        ax.legend(fontsize=7, loc="upper left")
        ax2 = axes[1, col]
        ax2.step(np.arange(1, n + 1), wrong, where="post", color="C3")
        ax2.set_ylim(-0.2, len(h.y) + 0.2)
        ax2.set_xlabel("update (one training point each)")
        ax2.set_ylabel("points misclassified")
        ax2.grid(alpha=0.3)
        verdict = f"separated after update {separated}" if separated else "never separated"
        ax2.set_title(f"{name}: {verdict}", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return save(fig, path)
