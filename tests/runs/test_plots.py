"""Figures of runs: the epoch axis of the learning curves, gradient norms, titles, levels
(the pictures of filters and feature maps are tested in test_pictures.py)."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.runs.figure import epoch_axis, plt


@pytest.mark.parametrize("epochs", [3, 20, 60])
def test_epoch_axis_ticks_whole_epochs_only(epochs):
    fig, ax = plt.subplots()
    ax.plot(np.arange(1, epochs + 1), np.linspace(1, 0, epochs))
    epoch_axis(ax)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= epochs]
    plt.close(fig)
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_xlabel() == "epoch"


@pytest.mark.parametrize("layers, legend", [(3, True), (9, False)])
def test_grad_norm_lines_are_named_by_a_legend_or_a_colour_scale(layers, legend, monkeypatch):
    """Up to 8 layers each line is in the legend; beyond, a colour bar maps colour to layer."""
    import dlrun.runs.plots as P

    drawn = []
    monkeypatch.setattr(P, "save", lambda fig, path, tight=True: drawn.append(fig))
    rows = [
        {"epoch": e, **{f"grad_norm/d{i}": 10.0**-i * e for i in range(layers)}} for e in (1, 2)
    ]
    P.grad_norms(rows, None)
    fig = drawn[0]
    left = fig.axes[0]
    assert (left.get_legend() is not None) is legend
    colorbars = [ax for ax in fig.axes[2:] if ax.get_ylabel().startswith("layer")]
    assert len(colorbars) == (0 if legend else 1)
    plt.close(fig)


# --------------------------------------------------------------------------- run figures
def capture(monkeypatch):
    """Replace plots.save: the figures drawn are kept (open) instead of written."""
    import dlrun.runs.plots as P

    drawn = []
    monkeypatch.setattr(P, "save", lambda fig, path, tight=True: drawn.append(fig) or path)
    return drawn


def test_run_title_says_name_description_depth_epochs_and_final_numbers():
    from dlrun.runs.plots import run_title

    cfg = {"name": "vanishing_sigmoid", "description": "8 hidden sigmoid layers on spirals"}
    rows = [{"epoch": 1, **{f"grad_norm/dense_{i}": 1.0 for i in range(9)}}]
    summary = {
        "status": "completed",
        "epochs": 10,
        "final": {"test_accuracy": 0.51, "test_loss": 0.6931},
    }
    head, facts = run_title(cfg, summary, rows).split("\n")
    assert head == "vanishing_sigmoid: 8 hidden sigmoid layers on spirals"
    assert facts == "9 weight layers · 10 epochs · test accuracy 51.0% · test loss 0.693"
    # no test split: the validation numbers; a run that did not complete says so
    summary = {"status": "diverged", "epochs": 3, "final": {"val_loss": 12.5, "loss": 3.0}}
    assert run_title({"name": "x"}, summary, rows[:0]) == "x\n3 epochs · diverged · val loss 12.5"


def test_reference_costs_are_the_datasets_levels_in_units_of_the_quadratic_cost():
    from dlrun.runs.plots import reference_costs

    adding = {"data": {"name": "adding", "n": 100, "length": 10}, "loss": "quadratic"}
    assert reference_costs(adding, 1) == pytest.approx({"baseline": 1 / 12})
    # two outputs per row: C = 1/2 (e1^2 + e2^2) is twice the cost of one
    assert reference_costs(adding, 2) == pytest.approx({"baseline": 2 / 12})
    sine = {"data": {"name": "sine", "noise": 0.1}, "loss": {"name": "quadratic"}}
    assert reference_costs(sine, 1) == pytest.approx({"baseline": 0.255, "noise_floor": 0.005})
    assert reference_costs({**adding, "loss": "cross_entropy"}, 1) == {}
    assert reference_costs({"data": {"name": "moons"}, "loss": "quadratic"}, 2) == {}
    assert reference_costs({"data": {"name": "no_such_data"}, "loss": "quadratic"}, 1) == {}


def test_curves_draw_the_levels_and_pick_the_scale(monkeypatch):
    import dlrun.runs.plots as P

    drawn = capture(monkeypatch)
    rows = [{"epoch": e, "loss": 0.1 / e**3, "val_loss": 0.09 / e**3} for e in (1, 2, 3, 4)]
    P.curves(rows, None, "run\nfacts", {"baseline": 1 / 12, "noise_floor": 0.001}, "quadratic")
    ax = drawn[-1].axes[0]
    levels = {line.get_label(): line.get_ydata()[0] for line in ax.lines[2:]}
    assert levels == {
        "baseline: always predict the mean (0.0833)": pytest.approx(1 / 12),
        "noise floor: predict the noiseless signal (0.001)": pytest.approx(0.001),
    }
    assert ax.get_yscale() == "log"  # 0.1 down to 0.0014: more than 30x
    assert "quadratic cost" in ax.get_ylabel() and drawn[-1].get_suptitle() == "run\nfacts"
    evaluated = [
        {"epoch": e, "loss": 0.3, "train_eval_loss": 0.2, "val_loss": 0.25} for e in (1, 2)
    ]
    P.curves(evaluated, None)
    labels = [line.get_label() for line in drawn[-1].axes[0].lines]
    assert labels == [
        "train (mean over the epoch's batches)",
        "train (end of epoch)",  # log.train_eval: the training set in evaluation mode
        "validation (end of epoch)",
    ]
    flat = [{"epoch": e, "loss": 0.69 + 0.001 * e, "accuracy": 0.5} for e in (1, 2, 3)]
    P.curves(flat, None)
    loss_ax, acc_ax = drawn[-1].axes
    assert loss_ax.get_yscale() == "linear" and loss_ax.get_ylim()[0] <= 0  # from 0: flat
    assert acc_ax.get_ylim()[0] <= 0 and acc_ax.get_ylim()[1] == pytest.approx(1.02)
    for fig in drawn:
        plt.close(fig)


def test_grad_norms_of_one_layer_is_one_linear_panel_and_one_number_no_figure(monkeypatch):
    import dlrun.runs.plots as P

    drawn = capture(monkeypatch)
    perceptron = [{"epoch": e, "grad_norm/weights": g} for e, g in ((1, 1.7), (2, 0.5), (3, 0.0))]
    P.grad_norms(perceptron, "x.png")
    (ax,) = drawn[-1].axes
    assert ax.get_yscale() == "linear" and ax.get_ylim()[0] < 0 < ax.get_ylim()[1]  # 0 shows
    assert ax.get_xlabel() == "epoch"
    assert P.grad_norms(perceptron[:1], "x.png") is None and len(drawn) == 1
    deep_one_epoch = [{"epoch": 1, **{f"grad_norm/d{i}": 4.0**i for i in range(5)}}]
    P.grad_norms(deep_one_epoch, "x.png")
    (ax,) = drawn[-1].axes
    assert ax.get_xlabel().startswith("layer") and ax.get_yscale() == "log"
    assert "1/4 per layer" in ax.get_title()  # 4^0 / 4^4 over 4 steps
    for fig in drawn:
        plt.close(fig)


@pytest.mark.parametrize(
    "types, symbol",
    [({"rnn_0": "rnn"}, "dC/dS_t"), ({"lstm_0": "lstm"}, "dC/dh_t"), ({}, "dC/dh_t")],
)
def test_grad_through_time_names_the_state_it_measures(monkeypatch, types, symbol):
    import dlrun.runs.plots as P

    drawn = capture(monkeypatch)
    name = next(iter(types), "layer")
    record = {
        "initial": {name: [0.01, 0.1, 1.0]},
        "final": {name: [0.5, 0.7, 1.0]},
        "layers": types,
    }
    P.grad_through_time(record, None)
    ax = drawn[0].axes[0]
    assert symbol in ax.get_ylabel() and ax.get_yscale() == "log"
    if types:
        assert ("cell" not in ax.get_ylabel()) and (
            ("LSTM" in ax.get_ylabel()) == (types[name] == "lstm")
        )
    assert [line.get_label().split(", ")[-1] for line in ax.lines] == [
        "before training",
        "after training",
    ]
    plt.close(drawn[0])


def test_a_regression_run_draws_its_datasets_baseline(runs_dir, monkeypatch):
    """End to end: an adding-problem run hands the curves its dataset's baseline 1/12, a
    classification run none."""
    import dlrun.runs.plots as P
    from dlrun.training.train import train
    from tests.conftest import small_config

    seen = []
    monkeypatch.setattr(
        P, "curves", lambda rows, path, title, levels, loss: seen.append((title, levels, loss))
    )
    adding = small_config(
        data={"name": "adding", "n": 64, "length": 6},
        model={
            "type": "sequential",
            "layers": [{"type": "rnn", "units": 4}, {"type": "dense", "units": 1}],
        },
        loss="quadratic",
        train={"epochs": 1, "batch_size": 16},
    )
    train(adding, runs_dir=runs_dir, name="adding_run")
    train(small_config(train={"epochs": 1, "batch_size": 16}), runs_dir=runs_dir, name="moons_run")
    (title, levels, loss), (title2, levels2, _) = seen
    assert levels == pytest.approx({"baseline": 1 / 12}) and loss == "quadratic"
    assert title.startswith("adding_run\n2 weight layers · 1 epoch · test loss")
    assert levels2 == {} and title2.startswith("moons_run\n2 weight layers")


def test_a_vanished_gradient_is_named_and_leaves_the_axis_at_its_bottom(monkeypatch):
    """A trained RNN's gradient can underflow to exactly 0 at the first steps: those are
    named in the legend, not drawn at an invented 1e-30, and the axis shows 12 decades."""
    import dlrun.runs.plots as P

    values, note = P.through_time_line([0.0, 0.0, 1e-25, 1e-3, 0.5])
    assert np.isnan(values[:2]).all() and values[2] == 1e-25
    assert note == "; exactly 0 (underflow) for t <= 2"
    assert P.through_time_line([1e-3, 0.5])[1] == ""
    drawn = capture(monkeypatch)
    record = {"final": {"rnn_0": [0.0, 0.0, 1e-25, 1e-3, 0.5]}, "layers": {"rnn_0": "rnn"}}
    P.grad_through_time(record, None)
    ax = drawn[0].axes[0]
    low, high = ax.get_ylim()
    assert 0.5 * 1e-12 / 2 <= low < 1e-11 and high == pytest.approx(1.0)
    assert ax.lines[0].get_label().endswith("for t <= 2")
    plt.close(drawn[0])
