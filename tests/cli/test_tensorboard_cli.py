"""dlrun train --tensorboard: the flag, the message without the extra, and a resume."""

from __future__ import annotations

import sys

import pytest
import yaml

from dlrun.runs.rundir import RunDir
from tests.cli.conftest import invoke
from tests.conftest import small_config
from tests.training.tensorboard_common import hparams, read, require_tensorboard, scalars


@pytest.fixture
def cfg_file(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_config(train={"epochs": 2, "batch_size": 16})))
    return path


def only_run(runs):
    (run_dir,) = runs.iterdir()
    return run_dir


def test_train_with_tensorboard_writes_the_event_files(cfg_file, tmp_path):
    require_tensorboard()
    runs = tmp_path / "runs"
    result = invoke("train", cfg_file, "--runs-dir", runs, "--quiet", "--tensorboard")
    assert result.exit_code == 0, result.output
    assert f"watch it with: tensorboard --logdir {runs}" in result.output
    run_dir = only_run(runs)
    assert RunDir(run_dir).config()["log"]["tensorboard"] is True
    assert (run_dir / "overrides.txt").read_text() == "log.tensorboard=true\n"
    assert [s for s, _ in scalars(read(run_dir / "tensorboard"), "val_loss")] == [1, 2]
    assert "log.tensorboard" not in hparams(run_dir / "tensorboard")  # not a hyper-parameter


def test_train_without_the_flag_writes_no_event_files(cfg_file, tmp_path):
    runs = tmp_path / "runs"
    result = invoke("train", cfg_file, "--runs-dir", runs, "--quiet")
    assert result.exit_code == 0, result.output
    assert "tensorboard" not in result.output
    assert not (only_run(runs) / "tensorboard").exists()


def test_tensorboard_without_the_extra_says_how_to_install_it(cfg_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX fails
    runs = tmp_path / "runs"
    result = invoke("train", cfg_file, "--runs-dir", runs, "--tensorboard")
    assert result.exit_code == 2, result.output
    assert "needs the tensorboardX package" in result.output
    assert "pip install 'dlrun[tensorboard]'" in result.output
    assert not runs.exists()


def test_tensorboard_cannot_be_added_when_resuming(cfg_file, tmp_path):
    runs = tmp_path / "runs"
    assert invoke("train", cfg_file, "--runs-dir", runs, "--quiet").exit_code == 0
    result = invoke("train", "--resume", only_run(runs), "--tensorboard")
    assert result.exit_code == 2, result.output
    assert "a resumed run keeps its config" in result.output
