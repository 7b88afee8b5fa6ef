"""Figures of a sweep: the learning curves of every setting, overlaid, and the figures
of the lessons whose runs record what they need.

``curves.png``       loss and accuracy per epoch: training (the mean over the epoch's
                     batches; and the training set in evaluation mode where recorded),
                     validation. Each setting is one line (the mean over its seeds) with a
                     band of +- one standard deviation. Runs that diverged are drawn one
                     by one, dashed, ending in an x at the epoch where they diverged, and
                     the legend says how many of the setting's runs diverged.
``curves_time.png``  the training loss against seconds of training, counted from the end
                     of epoch 1 (the first epoch of a process also loads the compiled
                     kernels), every run.
``budget.png``       (runs with ``log.totals``) the loss against epochs, against updates
                     and against seconds of training: batch, stochastic and mini-batch
                     gradient descent at one budget of gradient evaluations; with
                     ``log.every_step`` also the loss of every update's batch (one seed).
``step_sizes.png``   (runs with ``log.step_sizes``) each setting's effective learning rate
                     ||delta w|| / ||g|| and step length ||delta w|| per epoch.
``weights.png``      (sweeps with regularizers) a histogram of the final weights of each
                     setting, its seeds pooled: L1 piles weights at 0, L2 shrinks them all.

A figure whose data the runs do not have is not drawn (its function returns None).
Runs that stopped early (early stopping, divergence) count where they have values.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

#: Where a diverged run's curve ends: an x, in the setting's colour.
DIVERGED_MARKER = {"marker": "x", "markersize": 8, "markeredgewidth": 2}


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


def _band(ax: Any, x: np.ndarray, values: np.ndarray, label: str | None, color: Any) -> bool:
    values = np.where(np.isfinite(values), values, np.nan)
    have = ~np.all(np.isnan(values), axis=0)
    if not have.any():
        return False
    x, values = x[have], values[:, have]
    with warnings.catch_warnings():  # columns where only some runs have values are fine
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(values, axis=0)
        std = np.nanstd(values, axis=0)
        # +- one std, within the runs' own range (a log axis has no room below 0)
        low = np.maximum(mean - std, np.nanmin(values, axis=0))
        high = np.minimum(mean + std, np.nanmax(values, axis=0))
    ax.plot(x, mean, label=label, color=color, lw=1.4)
    if values.shape[0] > 1:
        ax.fill_between(x, low, high, color=color, alpha=0.18, lw=0)
    return True


def split_runs(group: dict[str, Any]) -> tuple[list[list[dict]], list[list[dict]]]:
    """A setting's curves: (runs that did not diverge, runs that diverged)."""
    curves = group["curves"]
    statuses = group.get("run_statuses") or ["completed"] * len(curves)
    ok = [c for c, s in zip(curves, statuses) if s != "diverged"]
    bad = [c for c, s in zip(curves, statuses) if s == "diverged"]
    return ok, bad


def diverged_label(group: dict[str, Any]) -> str:
    """The setting's legend entry: its label, and '(2/3 diverged)' when some did."""
    ok, bad = split_runs(group)
    if not bad:
        return group["label"]
    return f"{group['label']} ({len(bad)}/{len(ok) + len(bad)} diverged: x)"


def _finite_range(ax_values: list[np.ndarray]) -> tuple[float, float] | None:
    values = np.concatenate([v[np.isfinite(v)].ravel() for v in ax_values] or [np.empty(0)])
    values = values[values > 0]
    return (float(values.min()), float(values.max())) if values.size else None


def draw_diverged(
    ax: Any, x: np.ndarray, y: np.ndarray, color: Any, label: str | None, top: float | None
) -> bool:
    """One diverged run: its finite values dashed, an x at its last one (at the top edge
    when the value is above ``top``, the axis' upper limit). True if drawn."""
    ok = np.isfinite(y)
    if not ok.any():
        return False
    x, y = x[ok], y[ok]
    ax.plot(x, y, ls="--", lw=1, color=color, alpha=0.8, label=label)
    end = y[-1] if top is None else min(y[-1], top)
    ax.plot([x[-1]], [end], color=color, clip_on=False, ls="none", **DIVERGED_MARKER)
    return True


def sweep_name(folder: Path) -> str:
    """The sweep's name: its folder's (``folder`` is the sweep's plots/ folder)."""
    return Path(folder).resolve().parent.name


def sweep_curves(groups: list[dict[str, Any]], folder: Path) -> list[Path]:
    """Write every figure the runs have data for; return the files written."""
    return [p for p in (figure(groups, folder) for figure in FIGURES) if p is not None]


def curves_by_epoch(groups: list[dict[str, Any]], folder: Path) -> Path:
    """curves.png: loss and accuracy, train and val, mean +- std over seeds per setting;
    diverged runs one by one, marked where they diverged."""
    from dlrun.runs.figure import epoch_axis, log_y, plt, save  # matplotlib only here

    folder = Path(folder)
    rows = [r for g in groups for rows in g["curves"] for r in rows]
    have_acc = any("accuracy" in r for r in rows)
    have_eval = any("train_eval_loss" in r for r in rows)
    keys = [("loss", "train loss (mean over the epoch's batches)")]
    if have_eval:
        keys.append(("train_eval_loss", "train loss (end of epoch, evaluation mode)"))
    keys.append(("val_loss", "val loss"))
    if have_acc:
        keys.append(("accuracy", "train accuracy (mean over the epoch's batches)"))
        if have_eval:
            keys.append(("train_eval_accuracy", "train accuracy (end of epoch, evaluation mode)"))
        keys.append(("val_accuracy", "val accuracy"))
    cols = 3 if have_eval else 2
    rows_n = 2 if have_acc else 1
    fig, axes = plt.subplots(rows_n, cols, figsize=(5.5 * cols, 3.9 * rows_n), squeeze=False)
    # fixed margins: tight_layout would render the figure twice (this runs after the sweep)
    fig.subplots_adjust(
        left=0.07 * 2 / cols,
        right=0.98,
        bottom=0.12 / rows_n,
        top=1 - 0.16 / rows_n,
        wspace=0.22,
        hspace=0.35,
    )
    fig.suptitle(
        f"sweep {sweep_name(folder)}: each setting's mean over its seeds, "
        "band ± 1 standard deviation",
        fontsize=10,
        y=0.995,
    )
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    legend_key = "loss"
    for ax, (key, title) in zip(axes.ravel(), keys):
        drawn, kept = False, []
        diverged: list[tuple[np.ndarray, np.ndarray, Any, str | None]] = []
        for i, g in enumerate(groups):
            ok, bad = split_runs(g)
            label = diverged_label(g)
            if ok:
                x, values = _matrix(ok, key)
                kept.append(values)
                drawn |= _band(ax, x, values, label, colors[i % 10])
                label = None
            for rows_ in bad:
                x, values = _matrix([rows_], key)
                diverged.append((x, values[0], colors[i % 10], label))
                label = None
        span = _finite_range(kept)
        top = span[1] * 10 if span and key.endswith("loss") else None
        for x, y, color, label in diverged:
            drawn |= draw_diverged(ax, x, y, color, label, top)
        ax.set_title(title, fontsize=9)
        epoch_axis(ax)
        if key.endswith("loss") and drawn:
            ax.set_yscale("log")
            if span:  # the settings that trained fill the axis; a diverged x sits at the top
                ax.set_ylim(span[0] / 2, top)
            log_y(ax)
        ax.grid(alpha=0.3)
        if drawn and len(groups) <= 12 and key == legend_key:  # one legend serves all
            ax.legend(fontsize=7)
    for ax in axes.ravel()[len(keys) :]:
        ax.set_visible(False)
    return save(fig, folder / "curves.png", tight=False)


def curves_by_time(groups: list[dict[str, Any]], folder: Path) -> Path:
    """curves_time.png: training loss against seconds of training, every run."""
    from dlrun.runs.figure import log_y, plt, save

    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    fig.subplots_adjust(left=0.14, right=0.97, bottom=0.13, top=0.9)
    ax.set_title(f"sweep {sweep_name(folder)}: every run", fontsize=10)
    diverged, kept = [], []
    for i, g in enumerate(groups):
        label: str | None = diverged_label(g) if len(groups) <= 12 else None
        statuses = g.get("run_statuses") or ["completed"] * len(g["curves"])
        for rows, status in zip(g["curves"], statuses):
            if not rows:  # a run may have no epoch
                continue
            # time from the end of epoch 1: a process's first epoch also loads the kernels
            t = np.cumsum([0.0] + [float(r.get("seconds", np.nan)) for r in rows[1:]])
            loss = np.array([float(r.get("loss", np.nan)) for r in rows])
            if status == "diverged":
                diverged.append((t, loss, colors[i % 10], label))
            else:
                ax.plot(t, loss, color=colors[i % 10], lw=1, alpha=0.8, label=label)
                kept.append(loss)
            label = None
    span = _finite_range(kept)
    top = span[1] * 10 if span else None
    for t, loss, color, label in diverged:
        draw_diverged(ax, t, loss, color, label, top)
    ax.set_xlabel("seconds of training after epoch 1")
    ax.set_ylabel("train loss (mean over the epoch's batches)")
    ax.set_yscale("log")
    if span:
        ax.set_ylim(span[0] / 2, top)
    log_y(ax)
    ax.grid(alpha=0.3)
    if len(groups) <= 12 and any(g["curves"] for g in groups):
        ax.legend(fontsize=7)
    return save(fig, Path(folder) / "curves_time.png", tight=False)


def _has(groups: list[dict[str, Any]], key: str) -> bool:
    return any(key in r for g in groups for rows in g["curves"] for r in rows)


def curves_by_budget(groups: list[dict[str, Any]], folder: Path) -> Path | None:
    """budget.png: the training loss against epochs (sample gradients / n), against updates
    and against seconds of training (the first update, which also loads the kernels, not
    counted); mean +- std over seeds. The loss is the training set's in evaluation mode at
    each epoch's end where recorded (``log.train_eval``): the same measure for every
    variant, whatever its batch size. Drawn for runs with ``log.totals``."""
    if not _has(groups, "updates"):
        return None
    from dlrun.runs.figure import epoch_axis, log_y, plt, save

    key = "train_eval_loss" if _has(groups, "train_eval_loss") else "loss"
    what = "train loss (end of epoch)" if key == "train_eval_loss" else "train loss"
    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    fig, grid = plt.subplots(2, 2, figsize=(12, 8.2))
    axes = grid.ravel()
    fig.subplots_adjust(left=0.08, right=0.98, bottom=0.07, top=0.9, wspace=0.2, hspace=0.3)
    fig.suptitle(
        f"sweep {sweep_name(folder)}: one budget of gradient evaluations (each run computes "
        "the gradient of every training example once per epoch), three clocks",
        fontsize=10,
    )
    panels = (
        ("epoch", "per epoch: who learns most from the same samples"),
        ("updates", "per update: who learns most from one step"),
        ("train_seconds", "per second of training: who learns fastest"),
    )
    for ax, (xkey, title) in zip(axes, panels):
        for i, g in enumerate(groups):
            ok, _ = split_runs(g)
            if not ok:
                continue
            epochs, y = _matrix(ok, key)
            if xkey == "epoch":
                x = epochs.astype(float)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    x = np.nanmean(_matrix(ok, xkey)[1], axis=0)
            good = np.isfinite(x) & (x > 0 if xkey != "epoch" else True)
            _band(ax, x[good], y[:, good], g["label"], colors[i % 10])
        ax.set_title(title, fontsize=9)
        if xkey == "epoch":
            epoch_axis(ax)
        else:
            ax.set_xscale("log")
            ax.set_xlabel(
                "updates (log scale)" if xkey == "updates" else "seconds of training (log scale)"
            )
        ax.set_ylabel(what)
        log_y(ax)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if not _batch_losses(axes[3], groups, folder, colors):
        axes[3].set_visible(False)
    return save(fig, Path(folder) / "budget.png", tight=False)


#: Lowest batch loss budget.png draws (a single example's loss can be ~0).
BATCH_LOSS_FLOOR = 1e-3


def _batch_losses(ax: Any, groups: list[dict[str, Any]], folder: Path, colors: Any) -> bool:
    """budget.png's fourth panel: the loss of the batch each update's gradient came from,
    against the update, for the first run of each setting that has a steps.csv."""
    from dlrun.runs.figure import log_y
    from dlrun.runs.steps import FILE, read_steps

    drawn = False
    for i, g in enumerate(groups):
        for run_dir in g.get("run_dirs") or []:
            path = _run_path(folder, run_dir)
            if path is None or not (path / FILE).is_file():
                continue
            _, rows = read_steps(path / FILE)
            step = np.array([r["step"] for r in rows], dtype=float)
            loss = np.array([r["loss"] for r in rows], dtype=float)
            ok = np.isfinite(loss)
            many = ok.sum() > 2000  # thousands of single-example losses: a cloud of dots
            ax.plot(
                step[ok],
                np.maximum(loss[ok], BATCH_LOSS_FLOOR),
                ls="none" if many else "-",
                marker="." if many else None,
                ms=1.5,
                alpha=0.35 if many else 0.9,
                color=colors[i % 10],
                label=g["label"],
                rasterized=many,
            )
            drawn = True
            break
    if drawn:
        ax.set_xscale("log")
        ax.set_xlabel("updates (log scale)")
        ax.set_ylabel(f"loss of the update's batch (below {BATCH_LOSS_FLOOR:g} drawn there)")
        ax.set_title("every update's batch loss (one seed): the noise of small batches", fontsize=9)
        log_y(ax)
        ax.grid(alpha=0.3)
    return drawn


def step_sizes(groups: list[dict[str, Any]], folder: Path) -> Path | None:
    """step_sizes.png: each setting's effective learning rate ||delta w|| / ||g|| and step
    length ||delta w|| per epoch (means over the epoch's updates, then over seeds). Plain
    GD's effective rate is its lr; AdaGrad's falls as its sum of squared gradients grows.
    Drawn for runs with ``log.step_sizes``."""
    if not _has(groups, "effective_lr"):
        return None
    from dlrun.runs.figure import epoch_axis, log_y, plt, save

    colors = plt.cm.tab10(np.linspace(0, 1, 10))
    fig, axes = plt.subplots(1, 2, figsize=(13.5, 4.8))
    fig.subplots_adjust(left=0.06, right=0.78, bottom=0.12, top=0.86, wspace=0.22)
    fig.suptitle(
        f"sweep {sweep_name(folder)}: the step each optimizer really takes "
        "(means over each epoch's updates, then over seeds)",
        fontsize=10,
    )
    panels = (
        ("effective_lr", "effective learning rate ||Δw|| / ||g||"),
        ("update_norm", "step length ||Δw||"),
    )
    for ax, (key, title) in zip(axes, panels):
        for i, g in enumerate(groups):
            ok, _ = split_runs(g)
            if ok:
                x, values = _matrix(ok, key)
                _band(ax, x, values, g["label"], colors[i % 10])
        ax.set_title(title, fontsize=9)
        epoch_axis(ax)
        log_y(ax)
        ax.grid(alpha=0.3)
    if len(groups) <= 12:
        axes[1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return save(fig, Path(folder) / "step_sizes.png", tight=False)


def _run_path(folder: Path, run_dir: str | None) -> Path | None:
    """A run directory named in a sweep's outcome (relative to the sweep's folder)."""
    if not run_dir:
        return None
    path = Path(run_dir)
    return path if path.is_absolute() else Path(folder).parent / path


def delivered_weights(run_dir: Path) -> np.ndarray:
    """Every weight matrix entry (W, not biases) of a run, as the run delivers it: best.npz
    when early stopping restored it, else last.npz. A DlrunError if it has neither."""
    from dlrun.runs.checkpoint import load_params
    from dlrun.runs.rundir import RunDir

    restored = RunDir(Path(run_dir)).summary().get("restored_best_epoch") is not None
    params = load_params(Path(run_dir) / "checkpoints" / ("best.npz" if restored else "last.npz"))
    found = [v.ravel() for k, v in params.items() if k.endswith(".W")]
    return np.concatenate(found) if found else np.empty(0)


def final_weights(folder: Path, group: dict[str, Any]) -> np.ndarray:
    """The delivered weights of a setting's runs, seeds pooled (runs that cannot be read
    are left out)."""
    from dlrun.errors import DlrunError

    found = []
    for run_dir in group.get("run_dirs") or []:
        path = _run_path(folder, run_dir)
        if path is None:
            continue
        try:
            found.append(delivered_weights(path))
        except (DlrunError, OSError, ValueError):
            continue
    return np.concatenate(found) if found else np.empty(0)


#: |w| below this counts as zero in the histograms' titles (as ``sparsity`` counts it).
NEAR_ZERO = 1e-3


def weight_histograms(panels: list[tuple[str, np.ndarray]], path: Path, title: str) -> Path:
    """One histogram of weights per (label, weights) panel, log count axes, a common x range
    (the 99.5th percentile of |w|; the rest drawn at the edges); each title gives the
    fraction of |w| < NEAR_ZERO."""
    from dlrun.runs.figure import log_y, plt, save

    limit = max(float(np.percentile(np.abs(w), 99.5)) for _, w in panels) or 1.0
    bins = np.linspace(-limit, limit, 81)
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    height = 3.3 * rows + 0.6
    fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, height), squeeze=False)
    fig.subplots_adjust(  # in inches: room for a suptitle and two-line panel titles
        left=0.75 / (4.4 * cols), right=0.98, bottom=0.55 / height, top=1 - 1.0 / height,
        wspace=0.25, hspace=0.5,
    )  # fmt: skip
    fig.suptitle(title, fontsize=10)
    for ax, (label, w) in zip(axes.ravel(), panels):
        ax.hist(np.clip(w, -limit, limit), bins=bins, color="tab:blue", alpha=0.8)
        log_y(ax)
        near = float(np.mean(np.abs(w) < NEAR_ZERO))
        ax.set_title(f"{label}: {near:.0%} of |w| < {NEAR_ZERO:g}", fontsize=9)
        ax.set_xlabel(f"w (|w| > {limit:.2g} drawn at the edges)")
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("count (log)")
    for ax in axes.ravel()[len(panels) :]:
        ax.set_visible(False)
    return save(fig, Path(path), tight=False)


def weights(groups: list[dict[str, Any]], folder: Path) -> Path | None:
    """weights.png: a histogram of each setting's final weights, seeds pooled; drawn for
    sweeps where some setting has a regularizer."""
    if not any((g.get("config") or {}).get("regularizers") for g in groups):
        return None
    panels = [(g["label"], final_weights(folder, g)) for g in groups]
    panels = [(label, w) for label, w in panels if w.size]
    if not panels:
        return None
    title = (
        f"sweep {sweep_name(folder)}: the final weights of every layer's W (seeds pooled); "
        "L1 puts most at 0, L2 shrinks them all"
    )
    return weight_histograms(panels, Path(folder) / "weights.png", title)


FIGURES = (curves_by_epoch, curves_by_time, curves_by_budget, step_sizes, weights)
"""The sweep's figures; ``dlrun compare --jobs N`` draws them in its workers at once."""
