"""A cell that crashes its process (a segfault, an exit) fails alone: issue 19, item 2.

The cell's worker dies; the cell is marked failed with the signal or exit code (in the
outcome, results.csv and its run directory), a new worker takes the dead one's place, and
every other cell runs; results.csv, the table and the figures are written. A rerun runs
only the cells that did not complete.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
import yaml

import dlrun.sweeps.executors as executors
from dlrun.sweeps.compare import compare
from tests.conftest import ROOT, small_config
from tests.sweeps.faults import CRASHING_CLI, faulty

CRASHES = {"adam:0": "segv", "gd:1": "exit3"}


def tiny_sweep():
    return {
        "name": "tiny",
        "base": small_config(train={"epochs": 2, "batch_size": 32}),
        "grid": {"optimizer.name": ["gd", "adam"]},
        "seeds": 2,
    }


def read_csv(path):
    with open(path, encoding="utf-8") as f:
        return list(csv.DictReader(f))


def check_crashed_sweep(sweep_dir):
    """gd:0 and adam:1 completed; gd:1 exited with code 3 and adam:0 died of SIGSEGV."""
    rows = read_csv(sweep_dir / "results.csv")
    assert [(r["optimizer.name"], r["seed"], r["status"]) for r in rows] == [
        ("gd", "0", "completed"),
        ("gd", "1", "failed"),
        ("adam", "0", "failed"),
        ("adam", "1", "completed"),
    ]
    index = json.loads((sweep_dir / "cells.json").read_text())["cells"]
    reasons = {e["label"]: e["outcome"]["reason"] for e in index.values()}
    assert "exited with code 3" in reasons["optimizer=gd,seed=1"]
    assert "killed by SIGSEGV (signal 11)" in reasons["optimizer=adam,seed=0"]
    for row in rows:  # every run directory says how it ended
        summary = json.loads((sweep_dir / row["run_dir"] / "summary.json").read_text())
        assert summary["status"] == row["status"]
        if row["status"] == "failed":
            assert "the worker process" in summary["reason"]
    for name in ("curves.png", "curves_time.png"):
        assert (sweep_dir / "plots" / name).stat().st_size > 10_000


@pytest.mark.timeout(300)
def test_crashing_cells_fail_alone_with_local_processes(runs_dir, monkeypatch):
    monkeypatch.setattr(executors, "run_cell", faulty(CRASHES))
    result = compare(tiny_sweep(), runs_dir=runs_dir, jobs=2)
    check_crashed_sweep(result.sweep_dir)
    assert result.ran == 4 and sorted(label for label, _ in result.failed) == [
        "optimizer=adam,seed=0",
        "optimizer=gd,seed=1",
    ]
    assert [p.name for p in result.plots] == ["curves.png", "curves_time.png"]
    assert result.groups[0]["metrics"]["val_accuracy"]["n"] == 1  # the completed seed counts

    again = compare(tiny_sweep(), runs_dir=runs_dir, jobs=2)  # still crashing: only those
    assert again.ran == 2 and again.skipped == 2 and len(again.failed) == 2

    monkeypatch.undo()  # the cells do not crash any more
    fixed = compare(tiny_sweep(), runs_dir=runs_dir, jobs=2)
    assert fixed.ok and fixed.ran == 2 and fixed.skipped == 2


@pytest.mark.timeout(300)
def test_crashing_cells_fail_alone_with_one_job(tmp_path):
    """``dlrun compare --jobs 1`` in a fresh process: before, the first segfault took the
    whole command with it (no results.csv); now its one worker is replaced."""
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(small_config(train={"epochs": 2, "batch_size": 32})))
    runs = tmp_path / "runs"
    cmd = [sys.executable, "-c", CRASHING_CLI, json.dumps(CRASHES), "compare", str(config)]
    cmd += ["--grid", "optimizer.name=gd,adam", "--seeds", "2", "--name", "tiny"]
    cmd += ["--runs-dir", str(runs), "--jobs", "1"]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=240)
    assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
    check_crashed_sweep(runs / "tiny")
    assert "2 failed:" in out.stdout and "SIGSEGV" in out.stdout
    assert "val_accuracy" in out.stdout  # the table


def test_a_worker_that_dies_after_its_run_finished_keeps_the_result(runs_dir, monkeypatch):
    """The run wrote its summary (completed) before the process died: a result stands."""
    monkeypatch.setattr(executors, "run_cell", faulty({"gd": "exit_after"}))
    sweep = {**tiny_sweep(), "grid": {"optimizer.name": ["gd"]}, "seeds": 1}
    result = compare(sweep, runs_dir=runs_dir)
    assert result.ok and result.ran == 1
    (row,) = read_csv(result.sweep_dir / "results.csv")
    assert row["status"] == "completed" and float(row["final_val_accuracy"]) > 0
    log = (result.sweep_dir / row["run_dir"] / "log.txt").read_text()
    assert (
        "the process died after the run had finished (the worker process exited with code 3" in log
    )
