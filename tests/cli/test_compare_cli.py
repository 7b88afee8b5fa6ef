"""dlrun compare on the command line: table, exit codes, clear errors."""

from __future__ import annotations

import csv
import json
import socket

import pytest
import yaml

import dlrun.sweeps.executors as executors
from tests.cli.conftest import invoke
from tests.conftest import small_config
from tests.sweeps.faults import faulty


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "small.yaml"
    cfg = small_config()
    cfg["train"]["epochs"] = 2
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_help_lists_the_options():
    result = invoke("compare", "--help")
    assert result.exit_code == 0
    for option in (
        "--grid",
        "--seeds",
        "--set",
        "--jobs",
        "--executor",
        "--address",
        "--fail-fast",
        "--runs-dir",
        "--name",
    ):
        assert option in result.output
    assert "compare" in invoke("--help").output


def test_config_plus_grid_prints_the_table_and_writes_the_sweep(cfg_file, tmp_path):
    runs = tmp_path / "runs"
    args = (
        "compare",
        cfg_file,
        "--grid",
        "optimizer.name=gd,adam",
        "--seeds",
        "2",
        "--runs-dir",
        runs,
        "--set",
        "train.epochs=1",
    )
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "[4/4]" in result.output and "±" in result.output
    assert "adam" in result.output and "val_accuracy" in result.output
    with open(runs / "small" / "results.csv", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows] == ["completed"] * 4
    assert {r["epochs"] for r in rows} == {"1"}
    again = invoke(*args)
    assert again.exit_code == 0 and "(0 run, 4 done before)" in again.output


def test_a_sweep_file_with_a_relative_base(cfg_file, tmp_path):
    sweep = tmp_path / "sweeps" / "lr.yaml"
    sweep.parent.mkdir()
    sweep.write_text(
        "base: ../small.yaml\n"
        "zip: {optimizer.lr: [0.1, 0.5], train.batch_size: [8, full]}\n"
        "metrics: [loss, loss@1, val_accuracy]\n"
        "target: {metric: val_accuracy, value: 0.5}\n"
    )
    result = invoke("compare", sweep, "--runs-dir", tmp_path / "runs", "--quiet")
    assert result.exit_code == 0, result.output
    assert "epochs to val_accuracy >= 0.5" in result.output and "loss@1" in result.output
    assert (tmp_path / "runs" / "lr" / "plots" / "curves.png").is_file()


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--grid", "optimizer.nme=gd"], "unknown key 'nme' at optimizer.nme"),
        (["--grid", "optimizer.name=gd,adamm"], "unknown optimizer 'adamm'"),
        (["--grid", "optimizer.lr=0.1,-2"], "greater than 0"),
        (["--grid", "optimizer.name"], "has no '='"),
        (["--jobs", "0"], "--jobs must be an integer >= 1"),
        (["--executor", "dask"], "needs --address"),
    ],
)
def test_bad_sweeps_exit_2_with_one_message(cfg_file, tmp_path, extra, message):
    result = invoke("compare", cfg_file, "--runs-dir", tmp_path / "runs", *extra)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_unreachable_dask_address_exits_2(cfg_file, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke(
        "compare",
        cfg_file,
        "--runs-dir",
        tmp_path / "runs",
        "--executor",
        "dask",
        "--address",
        f"tcp://127.0.0.1:{port}",
        "--timeout",
        "1",
    )
    assert result.exit_code == 2 and "cannot reach the Dask scheduler" in result.output


def test_failed_cells_are_listed_and_exit_1(cfg_file, tmp_path, monkeypatch):
    monkeypatch.setattr(executors, "run_cell", faulty({"adam": "raise"}))  # in the workers
    result = invoke(
        "compare", cfg_file, "--grid", "optimizer.name=adam,gd", "--runs-dir", tmp_path / "runs"
    )
    assert result.exit_code == 1, result.output
    assert (
        "1 failed" in result.output
        and "optimizer=adam,seed=3: RuntimeError: injected failure" in result.output
    )
    assert "optimizer=gd,seed=3: completed" in result.output  # the failure did not stop it

    fast = invoke(
        "compare",
        cfg_file,
        "--grid",
        "optimizer.name=adam,gd",
        "--fail-fast",
        "--runs-dir",
        tmp_path / "runs2",
    )
    assert fast.exit_code == 1 and "[1/2] optimizer=adam,seed=3: failed" in fast.output
    assert "[2/2]" not in fast.output


def test_another_sweep_in_the_same_folder_exits_2(cfg_file, tmp_path):
    runs = tmp_path / "runs"
    assert (
        invoke(
            "compare",
            cfg_file,
            "--grid",
            "optimizer.name=gd",
            "--runs-dir",
            runs,
            "--set",
            "train.epochs=1",
        ).exit_code
        == 0
    )
    other = invoke("compare", cfg_file, "--grid", "optimizer.name=adam", "--runs-dir", runs)
    assert other.exit_code == 2 and "holds a different sweep" in other.output


@pytest.mark.slow
def test_ctrl_c_with_local_processes_stops_cleanly(cfg_file, tmp_path):
    """SIGINT to `dlrun compare --jobs 2`: running cells stop after their batch, exit 130,
    finished cells are kept and the next run does only the rest."""
    import os
    import signal
    import subprocess
    import sys
    import time

    runs = tmp_path / "runs"
    cmd = [
        sys.executable,
        "-c",
        "from dlrun.cli import main; main()",
        "compare",
        str(cfg_file),
        "--grid",
        "optimizer.name=gd,adam,momentum,rmsprop",
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--runs-dir",
        str(runs),
        "--set",
        "train.epochs=400",
    ]
    # SIGINT as a terminal delivers it: a pytest started as a background job of a
    # non-interactive shell ignores SIGINT, and its children would inherit that
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    cells = runs / "small" / "cells"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(cells.glob("*/metrics.csv"))) < 2:
        time.sleep(0.2)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, out
    with open(runs / "small" / "results.csv", encoding="utf-8") as f:
        statuses = [r["status"] for r in csv.DictReader(f)]
    assert "interrupted" in statuses and "not run" in statuses, statuses
    assert set(statuses) <= {"completed", "interrupted", "not run"}
    for run in cells.iterdir():  # every run directory says how it ended
        status = json.loads((run / "summary.json").read_text())["status"]
        assert status in ("completed", "interrupted")
