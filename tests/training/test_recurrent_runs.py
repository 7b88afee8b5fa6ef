"""The course's recurrent part, run end to end: BPTT in training, gradient through time,
the adding problem, text generation."""

import json

import numpy as np
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.conftest import CONFIGS, ROOT


def adding(kind, length, n, epochs, runs_dir, lr=0.01):
    cfg = {
        "seed": 0,
        "data": {
            "name": "adding",
            "n": n,
            "length": length,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
        },
        "model": {
            "type": "sequential",
            "layers": [{"type": kind, "units": 16}, {"type": "dense", "units": 1}],
        },
        "loss": "quadratic",
        "optimizer": {"name": "adam", "lr": lr},
        "train": {
            "epochs": epochs,
            "batch_size": 32,
            "clip": {"mode": "global_norm", "limit": 1.0},
        },
    }
    return train(cfg, runs_dir=runs_dir)


BASELINE = (
    1 / 12
)  # quadratic cost 1/2 E(t - mean)^2 of always predicting the mean: Var(sum)/2 = 1/12


def test_gradient_through_time_is_logged_and_vanishes_for_the_rnn(runs_dir):
    result = adding("rnn", 30, 200, 1, runs_dir)
    record = json.loads((result.run_dir / "grad_through_time.json").read_text())
    first = np.array(record["initial"]["rnn_0"])
    assert len(first) == 30 and len(record["final"]["rnn_0"]) == 30
    assert first[0] < 0.1 * first[-1]  # the earliest step gets the smallest share of the gradient
    assert (result.run_dir / "plots" / "grad_through_time.png").is_file()


def test_lstm_solves_a_short_adding_problem_the_rnn_does_not_beat_much(runs_dir):
    """T = 20, the same data, budget and optimizer for both: the LSTM gets below a tenth of
    the baseline; the RNN, trained the same way, stays above that bar, at many times the
    LSTM's loss (measured with seeds 0-3: the RNN at 0.19-0.83 of the baseline, the LSTM
    at 0.009-0.013, 16-77 times less)."""
    lstm = adding("lstm", 20, 2000, 12, runs_dir).summary["final"]["test_loss"]
    rnn = adding("rnn", 20, 2000, 12, runs_dir).summary["final"]["test_loss"]
    assert lstm < 0.1 * BASELINE
    assert rnn > 0.1 * BASELINE
    assert rnn > 5 * lstm


def test_rnn_sine_many_to_many(runs_dir):
    result = train(
        CONFIGS / "rnn_sine.yaml", runs_dir=runs_dir, overrides=["train.epochs=4", "data.n=300"]
    )
    rows = RunDir(result.run_dir).metrics()
    assert rows[-1]["val_loss"] < 0.5 * rows[0]["val_loss"]


def test_text_model_and_sample(runs_dir, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's text path is relative to the project
    result = train(
        CONFIGS / "lstm_text.yaml",
        runs_dir=runs_dir,
        overrides=["train.epochs=2", "model.layers[0].units=32", "data.step=10"],
    )
    runner = CliRunner()
    out = runner.invoke(
        app, ["sample", str(result.run_dir), "--length", "50", "--prime", "The ", "--seed", "1"]
    )
    assert out.exit_code == 0, out.output
    text = out.output.rstrip("\n")
    assert text.startswith("The ") and len(text) == 54
    vocab = set((ROOT / "datasets" / "text" / "course.txt").read_text())
    assert set(text) <= vocab
    again = runner.invoke(
        app, ["sample", str(result.run_dir), "--length", "50", "--prime", "The ", "--seed", "1"]
    )
    assert again.output == out.output  # seeded
    bad = runner.invoke(app, ["sample", str(result.run_dir), "--prime", "\u00e9t\u00e9"])
    assert bad.exit_code == 2


def test_sample_on_a_model_that_is_not_text(runs_dir):
    from tests.conftest import small_config

    result = train(small_config(), runs_dir=runs_dir)
    out = CliRunner().invoke(app, ["sample", str(result.run_dir)])
    assert out.exit_code == 2 and "not a text model" in out.output


def test_adding_lengths_sweep_expands_to_rnn_and_lstm_over_four_lengths():
    from dlrun.sweeps.spec import load_sweep

    sweep = load_sweep(CONFIGS / "sweeps" / "adding_lengths.yaml")
    kinds = {
        (c.config["model"]["layers"][0]["type"], c.config["data"]["length"]) for c in sweep.cells
    }
    assert kinds == {(k, t) for k in ("rnn", "lstm") for t in (10, 50, 100, 200)}
