"""dlrun plot through-time and dlrun plot grad-norms: several runs in one figure; the
numbers they print are the ones the runs recorded; bad input is one clear message."""

from __future__ import annotations

import json

import matplotlib.image
import pytest

from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.cli.conftest import invoke
from tests.conftest import small_config


def adding_run(runs_dir, kind):
    cfg = small_config(
        data={"name": "adding", "n": 64, "length": 8},
        model={
            "type": "sequential",
            "layers": [{"type": kind, "units": 4}, {"type": "dense", "units": 1}],
        },
        loss="quadratic",
        optimizer={"name": "adam", "lr": 0.01},
        train={"epochs": 2, "batch_size": 16},
    )
    return train(cfg, runs_dir=runs_dir, name=f"{kind}_adding").run_dir


def deep_run(runs_dir, activation):
    layers = [{"type": "dense", "units": 6, "activation": activation} for _ in range(3)]
    cfg = small_config(
        model={
            "type": "sequential",
            "layers": [*layers, {"type": "dense", "units": 2}, {"type": "softmax"}],
        },
        train={"epochs": 2, "batch_size": 32},
    )
    return train(cfg, runs_dir=runs_dir, name=f"deep_{activation}").run_dir


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    return {
        "rnn": adding_run(folder, "rnn"),
        "lstm": adding_run(folder, "lstm"),
        "sigmoid": deep_run(folder, "sigmoid"),
        "relu": deep_run(folder, "relu"),
    }


def table_rows(output, first_cell):
    """The cells of the printed table's rows that start with ``first_cell``."""
    return [
        [c.strip() for c in line.split("│")[1:-1]]
        for line in output.splitlines()
        if line.startswith("│") and line.split("│")[1].strip() == first_cell
    ]


def test_through_time_draws_rnn_and_lstm_and_prints_what_they_recorded(runs, tmp_path):
    out = tmp_path / "tt.png"
    result = invoke("plot", "through-time", runs["rnn"], runs["lstm"], "--out", out)
    assert result.exit_code == 0, result.output
    assert matplotlib.image.imread(out).shape[1] > 1000  # two panels side by side
    for kind in ("rnn", "lstm"):
        record = json.loads((runs[kind] / "grad_through_time.json").read_text())
        assert record["layers"] == {f"{kind}_0": kind}
        rows = table_rows(result.output, f"{kind}_adding")
        assert [r[1:3] for r in rows] == [
            [f"{kind}_0 ({kind})", "before training"],
            [f"{kind}_0 ({kind})", "after training"],
        ]
        for row, when in zip(rows, ("initial", "final")):
            norms = record[when][f"{kind}_0"]
            assert float(row[3]) == pytest.approx(norms[0], rel=2e-3)
            assert float(row[5]) == pytest.approx(norms[0] / norms[-1], rel=2e-3)
    assert invoke("plot", "through-time", runs["rnn"], "--out", out, "--relative").exit_code == 0


def test_grad_norms_one_line_per_run_with_the_recorded_ratio(runs, tmp_path):
    out = tmp_path / "g.png"
    result = invoke("plot", "grad-norms", runs["sigmoid"], runs["relu"], "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file()
    for activation in ("sigmoid", "relu"):
        row = RunDir(runs[activation]).metrics()[0]
        norms = [v for k, v in row.items() if k.startswith("grad_norm/")]
        (cells,) = table_rows(result.output, f"deep_{activation}")
        assert cells[1:3] == ["1", "4"]
        assert float(cells[5]) == pytest.approx(norms[0] / norms[-1], rel=2e-3)
        assert float(cells[6]) == pytest.approx((norms[0] / norms[-1]) ** (1 / 3), rel=2e-3)
    last = invoke("plot", "grad-norms", runs["sigmoid"], "--out", out, "--epoch", "last")
    assert last.exit_code == 0 and table_rows(last.output, "deep_sigmoid")[0][1] == "2"


def test_bad_input_is_one_message(runs, tmp_path):
    out = tmp_path / "x.png"
    cases = [
        (("through-time", runs["sigmoid"]), "no record of the gradient through time"),
        (("through-time", tmp_path), "is not a run directory"),
        (("grad-norms", runs["relu"], "--epoch", "7"), "has no epoch 7"),
        (("grad-norms", runs["relu"], "--epoch", "first"), "--epoch must be a number"),
    ]
    for args, message in cases:
        result = invoke("plot", *args, "--out", out)
        assert result.exit_code == 2, result.output
        assert message in result.output and "Traceback" not in result.output
    assert not out.exists()
