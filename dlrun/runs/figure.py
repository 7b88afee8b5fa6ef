"""What every figure shares: the Agg backend (no screen needed), atomic PNG writing,
axes of epochs and log scales, fixed margins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig: Any, path: Path, tight: bool = True) -> Path:
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


def margins(fig: Any, left: float = 0.75, top: float = 0.4, wspace: float = 0.3) -> None:
    """Fixed margins in inches, room for tick labels and axis labels: the figures every
    run draws skip tight_layout's second render."""
    w, h = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / w, right=1 - 0.2 / w, bottom=0.55 / h, top=1 - top / h, wspace=wspace
    )
