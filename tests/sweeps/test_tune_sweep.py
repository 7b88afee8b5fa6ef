"""Tuned sweeps: a sweep file's ``tune:`` section tunes each setting, then runs its seeds
at the best values; the table and results.csv show the chosen values."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml

from dlrun.errors import ConfigError
from dlrun.runs.rundir import RunDir
from dlrun.sweeps.compare import compare
from dlrun.sweeps.spec import load_sweep
from tests.conftest import CONFIGS
from tests.sweeps.tune_common import finished, journal_study, require_optuna, tiny_config

require_optuna()


def tuned_sweep(tmp_path: Path, **tune) -> dict:
    base = yaml.safe_load(tiny_config(tmp_path).read_text())
    return {
        "name": "tsw",
        "base": base,
        "grid": {"optimizer.name": ["gd", "adam"]},
        "seeds": 2,
        "metrics": ["val_loss"],
        "tune": {"params": {"optimizer.lr": "log:1e-3:1"}, "trials": 3, **tune},
    }


def test_each_setting_is_tuned_then_its_seeds_run_at_the_best_value(tmp_path):
    runs = tmp_path / "runs"
    result = compare(tuned_sweep(tmp_path), runs_dir=runs)
    assert result.ran == 4 and not result.failed
    with open(runs / "tsw" / "results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for name in ("gd", "adam"):
        study = journal_study(runs / "tsw" / "tune" / f"optimizer={name}")
        assert finished(study) == 3
        # the tuning runs use seed 2, one after the reported seeds 0 and 1
        trial_dir = (
            runs / "tsw" / "tune" / f"optimizer={name}" / study.trials[0].user_attrs["run"]["dir"]
        )
        assert RunDir(trial_dir).config()["seed"] == 2
        best = float(f"{study.best_trial.params['optimizer.lr']:.4g}")
        mine = [r for r in rows if r["optimizer.name"] == name]
        assert [float(r["optimizer.lr"]) for r in mine] == [best, best]
        for r in mine:  # the runs trained at the chosen value
            cfg = RunDir(runs / "tsw" / r["run_dir"]).config()
            assert cfg["optimizer"]["lr"] == best and cfg["optimizer"]["name"] == name
    table = result.table()
    headers = [c.header for c in table.columns]
    assert "lr (tuned)" in headers
    # the same sweep again: the studies are finished, the cells done
    again = compare(tuned_sweep(tmp_path), runs_dir=runs)
    assert again.ran == 0 and again.skipped == 4


@pytest.mark.parametrize(
    "change, message",
    [
        ({"params": {"optimizer.lrr": "log:1e-3:1"}}, "unknown key 'lrr'"),
        ({"params": {"optimizer.lr": "log:0:1"}}, "bounds > 0"),
        ({"params": {"optimizer.name": "log:1e-3:1"}}, "both tuned and swept"),
        ({"metric": "val_f1"}, "not written by runs"),
        ({"trials": 0}, "trials"),
    ],
)
def test_a_bad_tune_section_is_refused_before_anything_runs(tmp_path, change, message):
    sweep = tuned_sweep(tmp_path)
    sweep["tune"].update(change)
    with pytest.raises(ConfigError, match=message):
        compare(sweep, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs" / "tsw").exists()


def test_the_shipped_tuned_sweep_is_valid():
    sweep = load_sweep(CONFIGS / "sweeps" / "optimizers_tuned.yaml")
    assert len(sweep.cells) == 27 and sweep.tune is not None
    assert sweep.tune.params == {"optimizer.lr": "log:1e-4:10"}
    from dlrun.sweeps.tune.sweep import check_tune

    check_tune(sweep)
