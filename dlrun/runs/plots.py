"""The figures of a run: learning curves, gradient norms, decision boundary, gradient
through time (matplotlib, Agg backend: no screen needed).

Every figure says which run it shows: a title with the config's name and description,
the number of weight layers, the epochs and the final numbers (:func:`run_title`).
The learning curves of a regression whose data fixes reference levels draw them
(:func:`reference_costs`: the adding problem's baseline, the sine's noise floor).
Pictures of filters, feature maps and activations are in :mod:`dlrun.runs.pictures`;
figures that put several runs on one scale in :mod:`dlrun.runs.overlays`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.runs.figure import epoch_axis, log_y, margins, plt, save

#: The loss on an axis label, by its registered name.
LOSS_LABELS = {
    "quadratic": "quadratic cost 1/2 (t - o)^2",
    "cross_entropy": "cross-entropy -ln o_label",
    "binary_cross_entropy": "binary cross-entropy",
}

#: The reference levels of :meth:`dlrun.data.base.Dataset.reference_mse`, in a legend.
LEVEL_LABELS = {
    "baseline": ("baseline: always predict the mean", ":", "0.35"),
    "noise_floor": ("noise floor: predict the noiseless signal", "-.", "tab:green"),
}

#: A loss axis is logarithmic when its values span more than this factor.
LOG_SPAN = 30.0


# --------------------------------------------------------------------------- what a run is
def loss_name(cfg: dict[str, Any]) -> str:
    """The registered name of the run's loss ('' if the config has none)."""
    loss = cfg.get("loss", "")
    return str(loss.get("name", "") if isinstance(loss, dict) else loss)


def weight_layers(rows: list[dict[str, Any]]) -> list[str]:
    """The layers whose weight-gradient norm metrics.csv records: the network's depth."""
    return [k[len("grad_norm/") :] for k in (rows[0] if rows else {}) if k.startswith("grad_norm/")]


def _number(key: str, value: float) -> str:
    return f"{value:.1%}" if key.endswith("accuracy") else f"{value:.3g}"


def final_numbers(summary: dict[str, Any]) -> str:
    """'test accuracy 97.5% · test loss 0.081': the final numbers of the last split
    measured (test, else validation, else training)."""
    final = summary.get("final") or {}
    for prefix, split in (("test_", "test"), ("val_", "val"), ("", "train")):
        parts = [
            f"{split} {key} {_number(key, final[prefix + key])}"
            for key in ("accuracy", "loss")
            if isinstance(final.get(prefix + key), int | float)
        ]
        if parts:
            return " · ".join(parts)
    return ""


def run_title(cfg: dict[str, Any], summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Two lines: 'name: description', then depth, epochs, status if not completed, and
    the final numbers, e.g. 'xor_mlp: 2-4-2 network ... / 2 weight layers · 500 epochs ·
    test accuracy 100.0% · test loss 0.0062'."""
    name = cfg.get("name") or "run"
    headline = f"{name}: {cfg['description']}" if cfg.get("description") else str(name)
    depth = len(weight_layers(rows))
    facts = [f"{depth} weight layer{'s' if depth != 1 else ''}"] if depth else []
    epochs = summary.get("epochs", len(rows))
    facts.append(f"{epochs} epoch{'s' if epochs != 1 else ''}")
    status = summary.get("status")
    if status and status != "completed":
        facts.append(status)
    numbers = final_numbers(summary)
    if numbers:
        facts.append(numbers)
    return headline + "\n" + " · ".join(facts)


def reference_costs(cfg: dict[str, Any], outputs_per_row: int) -> dict[str, float]:
    """The reference levels the run's dataset reports (:meth:`Dataset.reference_mse`,
    mean squared errors per target value), as values of the run's quadratic cost: a row
    of k outputs costs 1/2 sum_k (t_k - o_k)^2, k/2 times the mean squared error. {} for
    another loss, a dataset without levels, or a data section that no longer builds."""
    if loss_name(cfg) != "quadratic" or "data" not in cfg:
        return {}
    import dlrun.data  # noqa: F401  (fills the dataset registry)
    from dlrun.config.registry import datasets
    from dlrun.errors import DlrunError

    try:
        levels = datasets.build(cfg["data"]).reference_mse()
    except (DlrunError, ValueError, TypeError, KeyError):
        return {}
    return {key: 0.5 * outputs_per_row * value for key, value in levels.items()}


def _suptitle(fig: Any, title: str | None) -> None:
    if title:
        fig.suptitle(title, fontsize=9, y=0.99, va="top")


# --------------------------------------------------------------------------- curves
#: (column prefix, line style, legend): how each split's curve is drawn.
SERIES = (
    ("", "-", "train (mean over the epoch's batches)"),
    ("train_eval_", "-.", "train (end of epoch)"),
    ("val_", "--", "validation (end of epoch)"),
)


def curves(
    rows: list[dict[str, Any]],
    path: Path,
    title: str | None = None,
    levels: dict[str, float] | None = None,
    loss: str = "",
) -> Path:
    """Loss and accuracy per epoch: the training batches' mean while the weights change,
    the validation set (and, where recorded, the training set) at the epoch's end.

    ``levels``: reference values of the loss drawn as horizontal lines, by name
    (``baseline``, ``noise_floor``; see :func:`reference_costs`). The loss axis is
    logarithmic when the values span more than LOG_SPAN, else linear from 0; the
    accuracy axis ends at 1 and starts at 0 when an accuracy is below 0.7.
    """
    levels = levels or {}
    has_acc = any("accuracy" in r for r in rows)
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 6, 4.3))
    axes = np.atleast_1d(axes)
    epochs = [r["epoch"] for r in rows]
    marker = "o" if len(rows) <= 3 else None  # a curve of one or two points must show
    for ax, key in zip(axes, ("loss", "accuracy")):
        drawn: list[float] = []
        for prefix, style, label in SERIES:
            values = np.array([r.get(prefix + key, np.nan) for r in rows], dtype=float)
            if not np.all(np.isnan(values)):
                ax.plot(epochs, values, style, marker=marker, label=label)
                drawn.extend(values[np.isfinite(values)])
        epoch_axis(ax)
        if key == "loss":
            for name, value in levels.items():
                text, style, colour = LEVEL_LABELS.get(name, (name, ":", "0.5"))
                ax.axhline(value, ls=style, color=colour, lw=1.3, label=f"{text} ({value:.3g})")
                drawn.append(value)
            ax.set_ylabel(f"loss: {LOSS_LABELS.get(loss, loss)}" if loss else "loss")
            positive = [v for v in drawn if v > 0]
            if positive and min(drawn) > 0 and max(positive) / min(positive) > LOG_SPAN:
                log_y(ax)
            elif drawn and min(drawn) >= 0:  # from 0, a little below: a line at 0 shows
                top = ax.get_ylim()[1]
                ax.set_ylim(-0.02 * top, top)
        else:
            ax.set_ylabel("accuracy (share classified right)")
            if drawn:
                ax.set_ylim(-0.02 if min(drawn) < 0.7 else None, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    _suptitle(fig, title)
    margins(fig, left=0.95, top=0.75 if title else 0.4, wspace=0.3)
    return save(fig, path, tight=False)


# --------------------------------------------------------------------------- gradient norms
def depth_ratio(first: float, last: float, layers: int) -> str:
    """'layer 1 gets 5e-06 x layer 9's gradient (1/4.6 per layer)': how the weight
    gradient changes from the last layer to the first, overall and as the geometric mean
    factor per layer (the course's (1/4)^n for sigmoid layers)."""
    ratio = first / last
    step = ratio ** (1 / max(layers - 1, 1))
    per = f"1/{1 / step:.2g}" if step < 0.5 else f"x{step:.2f}"
    return f"layer 1 gets {ratio:.2g} x layer {layers}'s gradient ({per} per layer)"


def grad_norms(rows: list[dict[str, Any]], path: Path, title: str | None = None) -> Path | None:
    """L2 norm of each layer's weight gradient (mean over an epoch's batches): per epoch,
    and by depth in the first and last epoch (log scales).

    One weight layer: the per-epoch panel alone, on a linear axis from 0 (a perceptron's
    gradient is 0 once every point is right, which a log axis cannot show). One epoch:
    the depth panel alone. One layer and one epoch: a single number, no figure (None).
    """
    keys = [k for k in rows[0] if k.startswith("grad_norm/")]
    by_epoch, by_depth = len(rows) > 1, len(keys) > 1
    if not (by_epoch or by_depth):
        return None
    panels = int(by_epoch) + int(by_depth)
    fig, axes = plt.subplots(1, panels, figsize=(5.2 * panels, 4.2))
    axes = list(np.atleast_1d(axes))
    if by_epoch:
        a = axes.pop(0)
        for i, k in enumerate(keys):
            a.plot(
                [r["epoch"] for r in rows],
                [r[k] for r in rows],
                label=f"layer {k[10:]}" if len(keys) <= 8 else None,
                color=plt.cm.viridis(i / max(len(keys) - 1, 1)),
            )
        epoch_axis(a)
        a.set_ylabel("||dC/dW|| (mean over the epoch's batches)")
        if len(keys) == 1:
            a.set_ylim(-0.02 * a.get_ylim()[1], a.get_ylim()[1])  # 0 shows, above the axis
            a.set_title(
                "one weight layer: its gradient per epoch (the bias not counted)", fontsize=8
            )
            a.legend(fontsize=7)
        else:
            log_y(a)
            a.set_title("each layer's weight gradient per epoch", fontsize=8)
            if len(keys) <= 8:
                a.legend(fontsize=7)
            else:  # too many layers for a legend: the colour scale says which line is which
                from matplotlib.cm import ScalarMappable
                from matplotlib.colors import Normalize

                scale = ScalarMappable(Normalize(1, len(keys)), plt.cm.viridis)
                fig.colorbar(scale, ax=a, pad=0.02, label="layer (1 = nearest the input)")
        a.grid(alpha=0.3)
    if by_depth:
        b = axes.pop(0)
        first, last = rows[0], rows[-1]
        depth = range(1, len(keys) + 1)
        b.plot(depth, [first[k] for k in keys], "o-", label=f"epoch {int(first['epoch'])}")
        if by_epoch:
            b.plot(depth, [last[k] for k in keys], "s-", label=f"epoch {int(last['epoch'])}")
        log_y(b)
        b.set_xlabel("layer (1 = nearest the input)")
        b.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
        b.set_ylabel("||dC/dW||")
        if first[keys[-1]] > 0 and first[keys[0]] > 0:
            b.set_title(
                f"epoch {int(first['epoch'])}: "
                + depth_ratio(first[keys[0]], first[keys[-1]], len(keys)),
                fontsize=8,
            )
        b.legend(fontsize=7)
        b.grid(alpha=0.3)
    _suptitle(fig, title)
    margins(fig, left=1.0, top=0.8 if title else 0.4, wspace=0.35)  # log axes: wide labels
    return save(fig, path, tight=False)


# --------------------------------------------------------------------------- decision boundary
#: Multiply-adds a decision-boundary figure may cost (a few seconds at most).
GRID_BUDGET = 4e9


def decision_boundary(
    net: Any, splits: Any, targets: Any, path: Path, title: str | None = None
) -> Path:
    """The class the network assigns to every point of the plane, with the training points.

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
    k = max(splits.n_classes or 0, int(labels.max()) + 1, int(y.max()) + 1, 2)
    names = list(splits.class_names) or [str(i) for i in range(k)]
    from matplotlib.colors import ListedColormap

    fig, ax = plt.subplots(figsize=(5.6, 5.2))
    # one colour per class, the same in the regions and the points (also when the network
    # assigns only some of the classes): a level between each two class numbers
    colours = plt.cm.tab10(np.arange(k) % 10) if k <= 10 else plt.cm.viridis(np.linspace(0, 1, k))
    ax.contourf(
        gx,
        gy,
        labels.reshape(gx.shape),
        alpha=0.3,
        cmap=ListedColormap(colours),
        levels=np.arange(k + 1) - 0.5,
    )
    few = len(np.unique(x, axis=0)) <= 16  # a truth table: four points drawn large
    for c in range(k):
        mine = y == c
        if mine.any():
            ax.scatter(
                x[mine, 0],
                x[mine, 1],
                color=colours[c],
                s=90 if few else 12,
                edgecolors="k",
                linewidths=0.8 if few else 0.3,
                label=f"class {names[c] if c < len(names) else c}",
                zorder=3,
            )
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_title("shaded: the class the network assigns; dots: training points", fontsize=8)
    if k <= 10:
        ax.legend(fontsize=7, loc="upper right", framealpha=0.85)
    _suptitle(fig, title)
    margins(fig, left=0.85, top=0.8 if title else 0.4)
    return save(fig, path, tight=False)


# --------------------------------------------------------------------------- through time
#: What ``state_grad_norms`` measures, by recurrent layer type (the course's names).
STATE_NAMES = {
    "rnn": "||dC/dS_t||, S_t the RNN's state",
    "lstm": "||dC/dh_t||, h_t the LSTM's hidden state",
}


def state_label(types: list[str]) -> str:
    """The y label of a gradient-through-time axis for layers of these types."""
    kinds = sorted(set(types))
    if len(kinds) == 1 and kinds[0] in STATE_NAMES:
        return STATE_NAMES[kinds[0]]
    return "||dC/dh_t||, h_t the hidden state (the RNN's S_t)"


#: A gradient-through-time axis shows at most this many decades below its largest value.
DECADES = 12


def through_time_line(norms: Any) -> tuple[np.ndarray, str]:
    """The norms to draw on a log axis (0 left out: NaN) and a note for the legend when
    the first steps' gradient is exactly 0 (it underflowed: below the dtype's range)."""
    norms = np.asarray(norms, dtype=float)
    zero = np.flatnonzero(norms <= 0)
    note = ""
    if len(zero) and zero[0] == 0:
        k = int(np.argmax(norms > 0)) if (norms > 0).any() else len(norms)
        note = f"; exactly 0 (underflow) for t <= {k}"
    return np.where(norms > 0, norms, np.nan), note


def floor_log_axis(ax: Any, values: list[np.ndarray]) -> None:
    """Log y axis over the values drawn, at most DECADES decades deep: a vanished gradient
    leaves the axis at its bottom instead of squeezing every other line to its top."""
    finite = np.concatenate([v[np.isfinite(v)] for v in values] or [np.ones(1)])
    if finite.size:
        top = finite.max()
        ax.set_ylim(max(finite.min(), top * 10.0**-DECADES) / 2, top * 2)
    log_y(ax)


def grad_through_time(record: dict[str, Any], path: Path, title: str | None = None) -> Path:
    """||dC/dh_t|| against the time step t, per recurrent layer, before and after training.

    ``record`` as written by :func:`dlrun.training.callbacks.record_grad_through_time`:
    {"initial" | "final": {layer: [norm per step]}, "layers": {layer: type}}; the norm is
    over one batch (the first 64 training sequences), C their mean cost."""
    types = record.get("layers", {})
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    drawn = []
    for when, style, words in (("initial", "--", "before"), ("final", "-", "after")):
        for name, norms in record.get(when, {}).items():
            values, note = through_time_line(norms)
            drawn.append(values)
            ax.plot(
                range(1, len(values) + 1),
                values,
                style,
                label=f"{name} ({types.get(name, 'recurrent')}), {words} training{note}",
            )
    ax.set_xlabel("time step t")
    ax.set_ylabel(state_label(list(types.values())), fontsize=8)
    floor_log_axis(ax, drawn)
    ax.set_title("gradient of the cost reaching each step (first 64 sequences)", fontsize=8)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    _suptitle(fig, title)
    margins(fig, left=1.0, top=0.8 if title else 0.4)
    return save(fig, path, tight=False)


# --------------------------------------------------------------------------- all of a run
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
    cfg = run.config()
    title = run_title(cfg, run.summary(), rows)
    levels = reference_costs(cfg, int(net.output_shape[-1])) if splits.task == "regression" else {}
    curves(rows, run.plots / "curves.png", title, levels, loss_name(cfg))
    if any(k.startswith("grad_norm/") for k in rows[0]):
        grad_norms(rows, run.plots / "grad_norms.png", title)
    if splits.task == "classification" and splits.input_shape == (2,):
        decision_boundary(net, splits, targets, run.plots / "decision_boundary.png", title)
    if (run.path / "grad_through_time.json").is_file():
        record = run.read_json("grad_through_time.json")
        record.setdefault(  # a record written before it named the layer types
            "layers",
            {
                layer.name: layer.registered_name
                for layer in net.layers
                if hasattr(layer, "state_grad_norms")
            },
        )
        grad_through_time(record, run.plots / "grad_through_time.png", title)
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
