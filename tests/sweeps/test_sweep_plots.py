"""The sweep figures (dlrun/sweeps/plots.py) and the gap (dlrun/sweeps/results.py): diverged
runs marked where they diverged, the budget, step-size and weight figures drawn only from
runs that recorded their data."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dlrun.runs.figure as figure
from dlrun.runs.rundir import RunDir
from dlrun.sweeps import plots
from dlrun.sweeps.results import metric_value
from dlrun.training.train import train
from tests.conftest import small_config


def curve(losses, **columns):
    rows = []
    for i, loss in enumerate(losses):
        row = {"epoch": i + 1, "loss": loss, "val_loss": loss * 1.1}
        row.update({k: v[i] for k, v in columns.items()})
        rows.append(row)
    return rows


@pytest.fixture
def captured(monkeypatch):
    """The figures the plot functions make, kept open instead of written."""
    figures = {}

    def keep(fig, path, tight=True):
        figures[path.name] = fig
        return path

    monkeypatch.setattr(figure, "save", keep)
    yield figures
    figure.plt.close("all")


def x_markers(ax):
    return [line for line in ax.get_lines() if line.get_marker() == "x"]


def test_diverged_runs_end_in_an_x_where_they_diverged(tmp_path, captured):
    groups = [
        {
            "label": "clip",
            "curves": [curve([1.0, 0.5, 0.3, 0.2]), curve([0.9, 0.6, 0.4, 0.25])],
            "run_statuses": ["completed", "completed"],
        },
        {
            "label": "no_clip",
            "curves": [curve([1.0, 0.4, 1e20]), curve([1.0, 1e3, 1e30, float("inf")])],
            "run_statuses": ["diverged", "diverged"],
        },
    ]
    plots.curves_by_epoch(groups, tmp_path / "plots")
    ax = captured["curves.png"].axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["clip", "no_clip (2/2 diverged: x)"]
    marks = x_markers(ax)
    top = ax.get_ylim()[1]
    assert top == pytest.approx(10.0)  # ten times the largest loss of the runs that trained
    # at the last finite epoch of each diverged run, drawn at the top edge when above it
    assert sorted(float(m.get_xdata()[0]) for m in marks) == [3.0, 3.0]
    assert all(float(m.get_ydata()[0]) == pytest.approx(top) for m in marks)
    plots.curves_by_time(groups, tmp_path / "plots")
    assert len(x_markers(captured["curves_time.png"].axes[0])) == 2


def test_a_setting_where_some_runs_diverged_keeps_its_band_for_the_others(tmp_path, captured):
    groups = [
        {
            "label": "lr=1",
            "curves": [curve([1.0, 0.5, 0.2]), curve([1.0, 50.0])],
            "run_statuses": ["completed", "diverged"],
        }
    ]
    plots.curves_by_epoch(groups, tmp_path / "plots")
    ax = captured["curves.png"].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["lr=1 (1/2 diverged: x)"]
    assert len(x_markers(ax)) == 1


def test_figures_need_the_columns_their_runs_record(tmp_path):
    groups = [{"label": "a", "curves": [curve([1.0, 0.5])], "config": {"regularizers": []}}]
    assert plots.curves_by_budget(groups, tmp_path) is None
    assert plots.step_sizes(groups, tmp_path) is None
    assert plots.weights(groups, tmp_path) is None
    written = plots.sweep_curves(groups, tmp_path)
    assert [p.name for p in written] == ["curves.png", "curves_time.png"]


def test_the_budget_figure_draws_three_clocks(tmp_path, captured):
    def run(losses, per_epoch, seconds):
        n = len(losses)
        return curve(
            losses,
            train_eval_loss=losses,
            updates=[per_epoch * (i + 1) for i in range(n)],
            train_seconds=[seconds * (i + 1) for i in range(n)],
        )

    groups = [
        {"label": "batch", "curves": [run([1.0, 0.9, 0.8], 1, 0.001)]},
        {"label": "stochastic", "curves": [run([0.7, 0.3, 0.2], 600, 0.05)]},
    ]
    plots.curves_by_budget(groups, tmp_path)
    axes = captured["budget.png"].axes
    assert [a.get_xscale() for a in axes[:3]] == ["linear", "log", "log"]
    updates = [line.get_xdata() for line in axes[1].get_lines()]
    assert [list(u) for u in updates] == [[1, 2, 3], [600, 1200, 1800]]
    assert not axes[3].get_visible()  # no steps.csv: no batch-loss panel


def test_the_step_size_figure_draws_each_setting(tmp_path, captured):
    groups = [
        {
            "label": "adagrad",
            "curves": [curve([1, 1], effective_lr=[1.0, 0.5], update_norm=[2, 1])],
        },
        {"label": "adam", "curves": [curve([1, 1], effective_lr=[0.1, 0.1], update_norm=[1, 1])]},
    ]
    plots.step_sizes(groups, tmp_path)
    left = captured["step_sizes.png"].axes[0]
    assert [list(line.get_ydata()) for line in left.get_lines()] == [[1.0, 0.5], [0.1, 0.1]]


def test_the_weight_histograms_read_each_runs_final_weights(runs_dir, captured):
    cfg = small_config(train={"epochs": 3, "batch_size": 16})
    cfg["regularizers"] = [{"name": "l1", "alpha": 0.01}]
    l1 = train(cfg, runs_dir=runs_dir)
    plain = train(small_config(train={"epochs": 3, "batch_size": 16}), runs_dir=runs_dir)
    folder = runs_dir / "sweep" / "plots"
    groups = [
        {"label": "l1", "curves": [[]], "run_dirs": [str(l1.run_dir)], "config": cfg},
        {"label": "none", "curves": [[]], "run_dirs": [str(plain.run_dir)], "config": {}},
    ]
    weights = plots.final_weights(folder, groups[0])
    assert weights.size == 2 * 8 + 8 * 2  # the two W matrices, no biases
    assert float(np.mean(np.abs(weights) < 1e-3)) == pytest.approx(l1.summary["sparsity"])
    plots.weights(groups, folder)
    titles = [ax.get_title() for ax in captured["weights.png"].axes if ax.get_visible()]
    assert titles[0] == f"l1: {l1.summary['sparsity']:.0%} of |w| < 0.001"
    assert titles[1].startswith("none: ")


# --------------------------------------------------------------------------- the gap
def test_the_gap_uses_the_training_set_in_evaluation_mode_when_recorded():
    final = {"accuracy": 0.80, "train_eval_accuracy": 0.95, "val_accuracy": 0.85}
    outcome = {"summary": {"final": final}}
    assert metric_value(outcome, "gap") == pytest.approx(0.10)
    del final["train_eval_accuracy"]  # a run without log.train_eval: the running accuracy
    assert metric_value(outcome, "gap") == pytest.approx(-0.05)


def test_the_gap_of_an_early_stopped_run_is_its_restored_epochs(runs_dir):
    cfg = small_config(train={"epochs": 6, "batch_size": 16})
    cfg["train"]["early_stopping"] = {"monitor": "val_loss", "patience": 2, "restore_best": True}
    cfg["log"] = {"train_eval": True}
    result = train(cfg, runs_dir=runs_dir)
    rows = RunDir(result.run_dir).metrics()
    best = next(r for r in rows if r["epoch"] == result.summary["best_epoch"])
    gap = metric_value({"summary": result.summary}, "gap")
    assert gap == pytest.approx(best["train_eval_accuracy"] - best["val_accuracy"])
    assert math.isfinite(gap)
