"""Figures of a sweep: the learning curves of every setting, overlaid.

``curves.png``: loss and accuracy, train and val, per epoch; each setting is
one line (the mean over its seeds) with a band of +- one standard deviation.
``curves_time.png``: the training loss against seconds of training, counted
from the end of epoch 1 (the first epoch of a process also loads the compiled
kernels); batch and stochastic gradient descent look different per second
than per epoch.
Runs that stopped early (early stopping, divergence) count where they have values.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np


def _matrix(curves: list[list[dict[str, Any]]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """Epochs and a (runs, epochs) array of ``key`` (NaN where a run has no value)."""
    last = max((int(r["epoch"]) for rows in curves for r in rows), default=0)
    values = np.full((len(curves), last), np.nan)
    for i, rows in enumerate(curves):
        for r in rows:
            v = r.get(key)
            if v is not None:
                values[i, int(r["epoch"]) - 1] = float(v)
    return np.arange(1, last + 1), values


def _band(ax: Any, x: np.ndarray, values: np.ndarray, label: str, color: Any) -> bool:
    values = np.where(np.isfinite(values), values, np.nan)
    have = ~np.all(np.isnan(values), axis=0)
    if not have.any():
        return False
    x, values = x[have], values[:, have]
    with warnings.catch_warnings():  # columns where only some runs have values are fine
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
    ax.plot(x, mean, label=label, color=color, lw=1.4)
    if values.shape[0] > 1:
        ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.18, lw=0)
    return True


def sweep_curves(groups: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write curves.png and curves_time.png; return the files written."""
    return [figure(groups, folder) for figure in FIGURES]


def curves_by_epoch(groups: list[dict[str, Any]], folder: Path) -> Path:
    """curves.png: loss and accuracy, train and val, mean +- std over seeds per setting."""
    from dlrun.runs.figure import epoch_axis, log_y, plt, save  # matplotlib only here

    folder = Path(folder)
    have_acc = any("accuracy" in r for g in groups for rows in g["curves"] for r in rows)
    keys = [("loss", "train loss"), ("val_loss", "val loss")]
    if have_acc:
        keys += [("accuracy", "train accuracy"), ("val_accuracy", "val accuracy")]
    rows_n = 2 if have_acc else 1
    fig, axes = plt.subplots(rows_n, 2, figsize=(11, 3.9 * rows_n), squeeze=False)
    # fixed margins: tight_layout would render the figure twice (this runs after the sweep)
    fig.subplots_adjust(
        left=0.07, right=0.98, bottom=0.12 / rows_n, top=1 - 0.08 / rows_n, wspace=0.22, hspace=0.35
    )
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    for ax, (key, title) in zip(axes.ravel(), keys):
        drawn = False
        for i, g in enumerate(groups):
            if g["curves"]:
                x, values = _matrix(g["curves"], key)
                drawn |= _band(ax, x, values, g["label"], colors[i % 10])
        ax.set_title(title)
        epoch_axis(ax)
        if key.endswith("loss"):
            log_y(ax)
        ax.grid(alpha=0.3)
        if drawn and len(groups) <= 12 and key == "loss":  # one legend serves all four
            ax.legend(fontsize=7)
    return save(fig, folder / "curves.png", tight=False)


def curves_by_time(groups: list[dict[str, Any]], folder: Path) -> Path:
    """curves_time.png: training loss against seconds of training, every run."""
    from dlrun.runs.figure import log_y, plt, save

    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    fig, ax = plt.subplots(figsize=(6, 4))
    fig.subplots_adjust(left=0.13, right=0.97, bottom=0.13, top=0.9)
    for i, g in enumerate(groups):
        for j, rows in enumerate(r for r in g["curves"] if r):  # a run may have no epoch
            # time from the end of epoch 1: a process's first epoch also loads the kernels
            t = np.cumsum([0.0] + [float(r.get("seconds", np.nan)) for r in rows[1:]])
            loss = [float(r.get("loss", np.nan)) for r in rows]
            ax.plot(
                t,
                loss,
                color=colors[i % 10],
                lw=1,
                alpha=0.8,
                label=g["label"] if j == 0 and len(groups) <= 12 else None,
            )
    ax.set_xlabel("seconds of training after epoch 1")
    ax.set_ylabel("train loss")
    log_y(ax)
    ax.grid(alpha=0.3)
    if len(groups) <= 12 and any(g["curves"] for g in groups):
        ax.legend(fontsize=7)
    return save(fig, Path(folder) / "curves_time.png", tight=False)


FIGURES = (curves_by_epoch, curves_by_time)
"""The sweep's figures; ``dlrun compare --jobs N`` draws them in its workers at once."""
