"""dlrun tune as a library: search, pruning, resume (also after SIGKILL), --jobs 2, bad
input refused before any trial, search spaces."""

from __future__ import annotations

import math
import os
import signal
import time
from pathlib import Path

import pytest

from dlrun.errors import ConfigError
from dlrun.runs.rundir import RunDir, list_runs
from tests.sweeps.tune_common import (
    dlrun_process,
    finished,
    journal_study,
    require_optuna,
    states,
    tiny_config,
)

require_optuna()

from dlrun.sweeps.tune.space import parse_param  # noqa: E402  (after the skip without optuna)
from dlrun.sweeps.tune.study import tune  # noqa: E402

LR = "optimizer.lr=log:1e-3:1"


def _summaries(study_dir: Path) -> dict[str, dict]:
    return {r["name"]: r for r in list_runs(study_dir)}


# --------------------------------------------------------------------------- search
def test_best_trial_is_the_best_run_and_every_trial_is_a_run(tmp_path):
    config = tiny_config(tmp_path)
    result = tune(config, [LR], trials=5, pruner="none", study_dir=tmp_path / "s", seed=1)
    runs = _summaries(tmp_path / "s")
    assert len(runs) == 5 and all(r["status"] == "completed" for r in runs.values())
    assert sorted(n.split("-")[1] for n in runs) == ["0000", "0001", "0002", "0003", "0004"]
    # the best trial's value is the smallest final val_loss among the runs' summaries
    best_run = min(runs.values(), key=lambda r: r["final"]["val_loss"])
    assert result.best["value"] == pytest.approx(best_run["final"]["val_loss"], rel=1e-12)
    assert Path(result.best["run_dir"]).name == best_run["name"]
    # the run trained with the trial's value
    cfg = RunDir(Path(result.best["run_dir"])).config()
    assert cfg["optimizer"]["lr"] == pytest.approx(result.best["params"]["optimizer.lr"])
    # trials.csv, study.yaml and the study's figures
    assert (tmp_path / "s" / "trials.csv").read_text().count("\n") == 6
    assert {p.name for p in result.plots} >= {"optimization_history.png", "slice.png"}
    # trials draw no figures of their own (unless run_plots)
    assert not list((tmp_path / "s").glob("trial-*/plots/*.png"))


def test_accuracy_is_maximised_and_importances_drawn_for_two_params(tmp_path):
    config = tiny_config(tmp_path)
    result = tune(
        config,
        [LR, "model.layers[0].units=int:4:32"],
        trials=4,
        metric="val_accuracy",
        pruner="none",
        study_dir=tmp_path / "s",
    )
    assert result.direction == "maximize"
    finals = [r["final"]["val_accuracy"] for r in _summaries(tmp_path / "s").values()]
    assert result.best["value"] == pytest.approx(max(finals), rel=1e-12)
    assert isinstance(result.best["params"]["model.layers[0].units"], int)
    assert "param_importances.png" in {p.name for p in result.plots}


# --------------------------------------------------------------------------- pruning
def test_the_median_pruner_prunes_and_the_run_says_so(tmp_path):
    config = tiny_config(tmp_path, epochs=6)
    result = tune(
        config,
        ["optimizer.lr=log:1e-5:1"],
        trials=8,
        pruner="median",
        startup_trials=1,
        study_dir=tmp_path / "s",
    )
    study = journal_study(tmp_path / "s")
    pruned = [t for t in study.trials if t.state.name == "PRUNED"]
    assert pruned, "no trial was pruned"
    assert finished(study) == 8 and result.count("pruned") == len(pruned)
    for trial in pruned:
        run = RunDir(tmp_path / "s" / trial.user_attrs["run"]["dir"])
        summary = run.summary()
        assert summary["status"] == "pruned"
        assert "median pruner" in summary["reason"]
        assert summary["epochs"] < 6
        assert "status pruned" in (run.path / "log.txt").read_text()
        assert trial.intermediate_values  # it reported its epochs before it was pruned


def test_no_pruner_prunes_nothing(tmp_path):
    config = tiny_config(tmp_path)
    tune(config, ["optimizer.lr=log:1e-5:1"], trials=4, pruner="none", study_dir=tmp_path / "s")
    assert set(states(journal_study(tmp_path / "s")).values()) == {"COMPLETE"}


# --------------------------------------------------------------------------- resume
def test_the_same_call_again_extends_the_study_and_keeps_its_trials(tmp_path):
    config = tiny_config(tmp_path)
    first = tune(config, [LR], trials=3, pruner="none", study_dir=tmp_path / "s")
    again = tune(config, [LR], trials=3, pruner="none", study_dir=tmp_path / "s")
    assert [r["trial"] for r in again.rows] == [0, 1, 2]  # nothing ran again
    more = tune(config, [LR], trials=5, pruner="none", study_dir=tmp_path / "s")
    assert [r["trial"] for r in more.rows] == [0, 1, 2, 3, 4]
    kept = [r["optimizer.lr"] for r in more.rows[:3]]
    assert kept == [r["optimizer.lr"] for r in first.rows]
    assert len(list_runs(tmp_path / "s")) == 5


@pytest.mark.parametrize(
    "change",
    [
        {"params": ["optimizer.lr=log:1e-4:1"]},
        {"overrides": ["train.epochs=4"]},
        {"metric": "val_accuracy"},
        {"seed": 7},
        {"pruner": "none"},
    ],
    ids=["space", "config", "metric", "seed", "pruner"],
)
def test_a_study_folder_of_another_command_is_refused(tmp_path, change):
    config = tiny_config(tmp_path)
    tune(config, [LR], trials=1, study_dir=tmp_path / "s")
    args = {"params": [LR], "trials": 2, "study_dir": tmp_path / "s", **change}
    with pytest.raises(ConfigError, match="holds another study"):
        tune(config, **args)
    assert len(list_runs(tmp_path / "s")) == 1


def test_a_folder_that_is_not_a_study_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a study folder"):
        tune(tiny_config(tmp_path), [LR], trials=1, study_dir=tmp_path / "s")


def test_resume_after_sigkill_ends_with_exactly_n_finished_trials(tmp_path):
    """SIGKILL a real `dlrun tune` in the middle of a trial; the same command again
    marks that trial failed, runs its budget again, and the study has exactly N."""
    config = tiny_config(tmp_path, epochs=40)
    args = ["tune", config, "--param", LR, "--trials", 5, "--pruner", "none"]
    args += ["--study-dir", tmp_path / "s", "--seed", 3]
    proc = dlrun_process(*args, cwd=tmp_path)
    killed_trial = None
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
            if not (tmp_path / "s" / "study.journal").is_file():
                continue
            study = journal_study(tmp_path / "s")
            running = [
                t
                for t in study.get_trials(deepcopy=False)
                if t.state.name == "RUNNING" and "run_dir" in t.user_attrs
            ]
            if finished(study) >= 1 and running:
                killed_trial = running[0].number
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.wait(timeout=60)
    assert killed_trial is not None, f"no trial was running to kill: {proc.stdout.read()}"
    assert states(journal_study(tmp_path / "s"))[killed_trial] == "RUNNING"

    again = dlrun_process(*args, cwd=tmp_path)
    out, _ = again.communicate(timeout=300)
    assert again.returncode == 0, out
    assert "continuing study" in out and "its budget is spent again" in out
    study = journal_study(tmp_path / "s")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))  # no trial number twice
    assert finished(study) == 5
    assert states(study)[killed_trial] == "FAIL"
    # the killed trial's run directory says what happened to it
    run_dir = study.trials[killed_trial].user_attrs["run_dir"]
    summary = RunDir(tmp_path / "s" / run_dir).summary()
    assert summary["status"] == "failed" and "is gone" in summary["reason"]


# --------------------------------------------------------------------------- workers
def test_two_workers_share_the_study(tmp_path):
    config = tiny_config(tmp_path, epochs=8)
    result = tune(config, [LR], trials=6, pruner="none", jobs=2, study_dir=tmp_path / "s")
    study = journal_study(tmp_path / "s")
    numbers = [t.number for t in study.trials]
    assert numbers == sorted(set(numbers)) and finished(study) == 6
    workers = {r["worker"] for r in result.rows if r["state"] == "completed"}
    assert len(workers) == 2, workers  # two processes, each ran trials
    assert os.getpid() not in {int(w.split(":")[1]) for w in workers}
    assert len(list_runs(tmp_path / "s")) == len(numbers)


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "params, more, message",
    [
        (["optimizer.lrr=log:1e-4:1"], {}, "unknown key 'lrr'"),
        (["model.layers[9].units=int:4:8"], {}, r"model.layers\[9\] does not exist"),
        (["optimizer.lr=log:1:1"], {}, "empty range"),
        (["optimizer.lr=float:0.5:0.1"], {}, "inverted range"),
        (["optimizer.lr=log:0:1"], {}, "log range needs bounds > 0"),
        (["optimizer.lr=log:-1:1"], {}, "log range needs bounds > 0"),
        (["optimizer.lr=int:1.5:4"], {}, "not whole"),
        (["train.batch_size=16"], {}, "one value is not a search"),
        (["optimizer.name=gd,bogus"], {}, "unknown optimizer 'bogus'"),
        (["optimizer.lr=between:1:2"], {}, "unknown range"),
        ([LR], {"metric": "val_acc"}, "not written by runs"),
        ([LR], {"metric": "test_accuracy"}, "measured once, after training"),
        ([LR], {"metric": "lr"}, "small or large"),
        ([LR], {"storage": "postgresql://u:secret@127.0.0.1:1/db"}, "cannot use the storage"),
        ([LR], {"storage": "nosuchdb://x"}, "cannot use the storage"),
        ([LR], {"trials": 0}, "--trials"),
        ([LR], {"jobs": 0}, "--jobs"),
        ([LR], {"timeout": -1.0}, "--timeout"),
        ([LR], {"pruner": "hyperband"}, "unknown pruner"),
        ([], {}, "nothing to search"),
    ],
)
def test_bad_input_is_refused_before_any_trial(tmp_path, params, more, message):
    with pytest.raises(ConfigError, match=message) as info:
        tune(tiny_config(tmp_path), params, study_dir=tmp_path / "s", **more)
    assert "secret" not in str(info.value)  # a password is never shown
    assert not list((tmp_path / "s").glob("trial-*"))


def test_the_metric_of_a_config_without_validation_set_is_refused(tmp_path):
    data = {"name": "spirals", "n": 300, "classes": 3, "val_fraction": 0}
    config = tiny_config(tmp_path, data=data)
    with pytest.raises(ConfigError, match="val_loss") as info:
        tune(config, [LR], study_dir=tmp_path / "s")
    assert "val_fraction" in (info.value.hint or "")


# --------------------------------------------------------------------------- space
@pytest.mark.parametrize(
    "text, kind, low, high, choices",
    [
        ("optimizer.lr=log:1e-4:1", "log", 1e-4, 1.0, ()),
        ("train.batch_size=logint:8:512", "logint", 8, 512, ()),
        ("model.layers[0].units=int:16:256:16", "int", 16, 256, ()),
        ("optimizer.beta=float:0.5:0.99", "float", 0.5, 0.99, ()),
        ("train.batch_size=16,32,64", "choice", None, None, (16, 32, 64)),
        ("optimizer.name=gd,adam", "choice", None, None, ("gd", "adam")),
    ],
)
def test_param_forms(text, kind, low, high, choices):
    p = parse_param(text)
    assert (p.kind, p.low, p.high, p.choices) == (kind, low, high, choices)
    if kind == "int":
        assert p.step == 16 and isinstance(p.low, int)
    assert parse_param(p.text()) == p


def test_a_diverged_trial_is_the_worst_result_not_a_failure(tmp_path):
    config = tiny_config(
        tmp_path,
        data={"name": "sine_regression", "n": 200, "val_fraction": 0.2},
        model={"type": "sequential", "layers": [{"type": "dense", "units": 1}]},
        loss="quadratic",
        optimizer={"name": "gd", "lr": 0.1},
    )
    result = tune(
        config, ["optimizer.lr=1e3,1e5"], trials=2, pruner="none", study_dir=tmp_path / "s"
    )
    study = journal_study(tmp_path / "s")
    assert {r["state"] for r in result.rows} == {"diverged"} and finished(study) == 2
    assert all(t.state.name == "COMPLETE" and t.value == math.inf for t in study.trials)
    assert {r["status"] for r in list_runs(tmp_path / "s")} == {"diverged"}
    assert result.best is None  # no finite result to call best
