"""Figures that put several runs on one scale: the gradient through time of an RNN and an
LSTM side by side (``dlrun plot through-time``), the weight-gradient norm by depth of a
sigmoid and a ReLU network (``dlrun plot grad-norms``).

Each figure function reads the run directories, draws, and returns the file written with
the numbers it drew, one row per line, for the command to print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.errors import DlrunError
from dlrun.runs.rundir import RunDir


class RunContentError(DlrunError):
    """A run directory lacks what a figure needs (no gradient-norm columns, no record of
    the gradient through time)."""


def _open(path: Path) -> tuple[RunDir, dict[str, Any], dict[str, Any], list[dict[str, float]]]:
    run = RunDir.open(Path(path))
    return run, run.config(), run.summary(), run.metrics()


def _name(cfg: dict[str, Any], path: Path) -> str:
    return str(cfg.get("name") or Path(path).name)


def _layer_types(cfg: dict[str, Any]) -> dict[str, str]:
    """Layer name -> type from a run's config (a layer's default name is type_index), for
    records written before grad_through_time.json named the layer types."""
    specs = (cfg.get("model") or {}).get("layers") or []
    return {
        str(spec.get("name") or f"{spec.get('type')}_{i}"): str(spec.get("type"))
        for i, spec in enumerate(specs)
        if isinstance(spec, dict)
    }


# --------------------------------------------------------------------------- through time
def through_time(runs: list[Path], out: Path, relative: bool = False) -> tuple[Path, list[dict]]:
    """||dC/dh_t|| per time step t of every recurrent layer of ``runs``: before training
    (left) and after it (right), on one log scale. ``relative``: each line divided by its
    value at the last step, T (the share of the gradient at the output that reaches t).

    Returns the PNG and one row per line: run, layer, type, when, the norms at the first
    and the last step and their ratio.
    """
    from dlrun.runs.figure import margins, plt, save
    from dlrun.runs.plots import final_numbers, floor_log_axis, state_label, through_time_line

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6), sharey=True)
    rows: list[dict[str, Any]] = []
    types: list[str] = []
    drawn: list[np.ndarray] = []
    for i, path in enumerate(runs):
        run, cfg, summary, _ = _open(path)
        record = run.read_json("grad_through_time.json")
        if not record.get("initial") and not record.get("final"):
            raise RunContentError(
                f"run {run.path} has no record of the gradient through time "
                "(grad_through_time.json)",
                hint="only runs of a network with an rnn or lstm layer record it",
            )
        kinds = record.get("layers") or _layer_types(cfg)
        name = _name(cfg, run.path)
        for ax, when, words in ((axes[0], "initial", "before"), (axes[1], "final", "after")):
            for j, (layer, norms) in enumerate(record.get(when, {}).items()):
                norms = np.asarray(norms, dtype=float)
                kind = kinds.get(layer, "recurrent")
                types.append(kind)
                values, note = through_time_line(
                    norms / norms[-1] if relative and norms[-1] > 0 else norms
                )
                drawn.append(values)
                label = f"{name}: {layer} ({kind})"
                if when == "final" and final_numbers(summary):
                    label += f", {final_numbers(summary)}"
                ax.plot(
                    np.arange(1, len(norms) + 1),
                    values,
                    color=plt.cm.tab10((i + j) % 10),
                    ls="-" if kind == "lstm" else "--",
                    label=label + note,
                )
                rows.append(
                    {
                        "run": name,
                        "layer": layer,
                        "type": kind,
                        "when": f"{words} training",
                        "first": float(norms[0]),
                        "last": float(norms[-1]),
                        "ratio": float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan"),
                    }
                )
    quantity = state_label(types)
    for ax, words in zip(axes, ("before training", "after training")):
        ax.set_title(words, fontsize=9)
        ax.set_xlabel("time step t")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    axes[0].set_ylabel(
        f"{quantity}\ndivided by its value at the last step" if relative else quantity,
        fontsize=8,
    )
    floor_log_axis(axes[0], drawn)  # the panels share the y axis
    fig.suptitle(
        "gradient of the cost reaching each time step (first 64 training sequences); "
        "the same scale in both panels",
        fontsize=9,
    )
    margins(fig, left=1.05, top=0.6, wspace=0.08)
    return save(fig, out, tight=False), rows


# --------------------------------------------------------------------------- by depth
def grad_norms_by_depth(
    runs: list[Path], out: Path, epoch: int | None = 1
) -> tuple[Path, list[dict]]:
    """Each layer's weight-gradient norm ||dC/dW|| (mean over an epoch's batches) against
    its depth, one line per run, on one log scale. ``epoch``: which epoch's row of
    metrics.csv (None: the last one).

    Returns the PNG and one row per run: run, epoch, layers, the first and the last
    layer's norm, their ratio and the geometric-mean factor per layer.
    """
    from dlrun.runs.figure import log_y, margins, plt, save
    from dlrun.runs.plots import depth_ratio, final_numbers, weight_layers

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    rows: list[dict[str, Any]] = []
    for i, path in enumerate(runs):
        run, cfg, summary, metrics = _open(path)
        layers = weight_layers(metrics)
        if not layers:
            raise RunContentError(
                f"run {run.path} has no per-layer gradient norms (grad_norm/ columns of "
                "metrics.csv)",
                hint="pass directories of runs that completed at least one epoch",
            )
        row = (
            metrics[-1]
            if epoch is None
            else next((r for r in metrics if r["epoch"] == epoch), None)
        )
        if row is None:
            raise RunContentError(
                f"run {run.path} has no epoch {epoch} (its epochs: 1 to {len(metrics)})",
                hint="choose an epoch every run has, or --epoch last",
            )
        norms = np.array([row[f"grad_norm/{k}"] for k in layers], dtype=float)
        depth = np.arange(1, len(norms) + 1)
        name = _name(cfg, run.path)
        ratio = depth_ratio(norms[0], norms[-1], len(norms)) if norms[-1] > 0 else ""
        ax.plot(
            depth,
            np.maximum(norms, 1e-30),
            "o-",
            color=plt.cm.tab10(i % 10),
            label="\n".join(x for x in (f"{name}: {final_numbers(summary)}", ratio) if x),
        )
        rows.append(
            {
                "run": name,
                "epoch": int(row["epoch"]),
                "layers": len(norms),
                "first": float(norms[0]),
                "last": float(norms[-1]),
                "ratio": float(norms[0] / norms[-1]) if norms[-1] > 0 else float("nan"),
                "per_layer": float((norms[0] / norms[-1]) ** (1 / max(len(norms) - 1, 1)))
                if norms[-1] > 0 and norms[0] > 0
                else float("nan"),
                "final": final_numbers(summary),
            }
        )
    log_y(ax)
    ax.set_xlabel("layer (1 = nearest the input)")
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_ylabel("||dC/dW|| (mean over the epoch's batches)")
    which = "the last epoch" if epoch is None else f"epoch {epoch}"
    ax.set_title(f"weight-gradient norm by depth, {which}: every run on one scale", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    margins(fig, left=1.0, top=0.4)
    return save(fig, out, tight=False), rows
