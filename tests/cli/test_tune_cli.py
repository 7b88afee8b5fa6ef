"""dlrun tune on the command line: what a user sees, exit codes, bad input (exit 2)."""

from __future__ import annotations

import re

import pytest

from tests.cli.conftest import invoke
from tests.sweeps.tune_common import require_optuna, tiny_config

require_optuna()

LR = "optimizer.lr=log:1e-3:1"


def test_tune_shows_a_line_per_trial_the_best_trials_and_the_figures(tmp_path):
    config = tiny_config(tmp_path)
    study = tmp_path / "study"
    args = ["tune", config, "--param", LR, "--param", "train.batch_size=16,32"]
    args += ["--trials", 4, "--study-dir", study, "--startup-trials", 1]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if re.match(r"\[\d/4\] trial \d", line)]
    assert len(lines) == 4 and lines[-1].startswith("[4/4]")
    assert all("| best " in line and "pruned" in line for line in lines)
    assert "4 of 4 trials finished" in result.output
    assert "rank" in result.output and "batch_size" in result.output
    assert re.search(r"best: trial \d+  val_loss \d", result.output)
    assert "plot: " in result.output and (study / "plots" / "slice.png").is_file()
    # the trials are ordinary runs: dlrun runs lists them
    runs = invoke("runs", study)
    assert runs.exit_code == 0 and runs.output.count("trial-000") == 4

    # the same command again: nothing to do, the same table
    again = invoke(*args)
    assert again.exit_code == 0, again.output
    assert "continuing study: 4 of 4 trials finished before" in again.output
    assert not re.search(r"^\[\d/4\] trial", again.output, re.M)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", "optimizer.lrr=log:1e-4:1"], "unknown key 'lrr'"),
        (["--param", "optimizer.lr=float:1:0.1"], "inverted range"),
        (["--param", "optimizer.lr=log:1:1"], "empty range"),
        (["--param", "optimizer.lr=log:0:1"], "bounds > 0"),
        (["--param", LR, "--metric", "val_f1"], "metric 'val_f1' is not written"),
        (["--param", LR, "--storage", "postgresql://u:pw@127.0.0.1:1/x"], "cannot use the storage"),
        (["--param", LR, "--direction", "up"], "--direction must be"),
        (["--param", "optimizer.lr"], "no '='"),
    ],
)
def test_bad_input_exits_2_with_a_message_and_no_trial(tmp_path, args, message):
    config = tiny_config(tmp_path)
    result = invoke("tune", config, *args, "--study-dir", tmp_path / "s", "--trials", 2)
    assert result.exit_code == 2, result.output
    assert "error:" in result.output and message in result.output
    assert "Traceback" not in result.output
    assert not list((tmp_path / "s").glob("trial-*"))


def test_a_study_folder_of_another_command_exits_2(tmp_path):
    config = tiny_config(tmp_path)
    first = invoke("tune", config, "--param", LR, "--trials", 1, "--study-dir", tmp_path / "s")
    assert first.exit_code == 0, first.output
    other = invoke(
        "tune", config, "--param", "optimizer.lr=log:1e-2:1", "--trials", 1,
        "--study-dir", tmp_path / "s",
    )  # fmt: skip
    assert other.exit_code == 2
    assert "holds another study (different space)" in other.output
