"""The figures of a run: curves, gradient norms, decision boundary, gradient through time
(matplotlib, Agg backend: no screen needed). Pictures of filters, feature maps and
activations are in :mod:`dlrun.runs.pictures`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.runs.figure import epoch_axis, log_y, margins, plt, save


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
    margins(fig)
    return save(fig, path, tight=False)


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
    margins(fig, left=1.0, wspace=0.35)  # log axes: wide tick labels
    return save(fig, path, tight=False)


#: Multiply-adds a decision-boundary figure may cost (a few seconds at most).
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
    margins(fig, left=0.55)
    return save(fig, path, tight=False)


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
        from dlrun.runs import pictures

        pictures.filters(convs[0].params["W"], run.plots / "filters.png")
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
        pictures.feature_maps(splits.test.x[0], x[0], run.plots / "feature_maps.png")


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
    margins(fig, left=1.0)
    return save(fig, path, tight=False)
