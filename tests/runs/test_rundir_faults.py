"""Run directories under faults: locks, damaged files, file-system errors."""

import errno
import json
import os
import signal
import stat
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.errors import CheckpointError, RunFilesError
from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir, list_runs
from dlrun.training.train import train
from tests.conftest import small_config


def cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.fixture
def interrupted_run(runs_dir):
    """A run stopped in its 4th of 6 epochs (as Ctrl-C leaves it: 3 epochs in
    metrics.csv), and the same run whole."""
    cfg = small_config(train={"epochs": 6, "batch_size": "full"})

    def stop_at_epoch_3(trainer):
        if trainer.step == 4:  # one batch an epoch: the first of epoch 4
            trainer.stop_requested = True

    part = train(cfg, runs_dir=runs_dir / "part", callbacks=[stop_at_epoch_3])
    assert part.summary["status"] == "interrupted"
    whole = train(cfg, runs_dir=runs_dir / "whole")
    return part.run_dir, whole


def weights(run_dir):
    return checkpoint.load_params(run_dir / "checkpoints" / "last.npz")


# ---------------------------------------------------------------------------- locks
def test_a_run_being_trained_is_refused_naming_the_holder(interrupted_run):
    run_dir, _ = interrupted_run
    with RunDir(run_dir).lock():
        with pytest.raises(CheckpointError, match=f"another process \\(PID {os.getpid()}\\)"):
            train(None, resume=run_dir)


def test_a_lock_dies_with_its_process(interrupted_run):
    run_dir, whole = interrupted_run
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from dlrun.runs.rundir import RunDir\n"
            f"with RunDir({str(run_dir)!r}).lock():\n"
            "    print('locked', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(CheckpointError, match=f"PID {holder.pid}"):
        train(None, resume=run_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    result = train(None, resume=run_dir)  # the killed holder's lock is gone
    assert result.summary["status"] == "completed"
    for key, value in weights(whole.run_dir).items():
        np.testing.assert_array_equal(weights(run_dir)[key], value)


# ---------------------------------------------------------------------------- damaged files
@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b"[]", b"null", b"{"])
def test_listing_reports_an_unreadable_summary(interrupted_run, content):
    run_dir, _ = interrupted_run
    (run_dir / "summary.json").write_bytes(content)
    runs = {r["name"]: r for r in list_runs(run_dir.parent)}
    assert runs[run_dir.name]["status"] == "unreadable"
    result = cli("runs", run_dir.parent)
    assert result.exit_code == 0 and "unreadable" in result.output


@pytest.mark.parametrize("best", ["null", "[]", '"x"'])
def test_listing_takes_a_summary_with_odd_sections(interrupted_run, best):
    run_dir, _ = interrupted_run
    summary = json.loads((run_dir / "summary.json").read_text())
    text = json.dumps({**summary, "final": None}).replace('"best": {', '"old": {')
    (run_dir / "summary.json").write_text(text[:-1] + f', "best": {best}}}')
    result = cli("runs", run_dir.parent)
    assert result.exit_code == 0, result.output
    assert run_dir.name[:20] in result.output


@pytest.mark.parametrize("content", [b"\x00\xff binary", b"[]", b"null"])
def test_resume_goes_on_past_a_damaged_summary(interrupted_run, content):
    run_dir, whole = interrupted_run
    (run_dir / "summary.json").write_bytes(content)
    result = train(None, resume=run_dir)
    assert result.summary["status"] == "completed"
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


@pytest.mark.parametrize("cut", ["mid-number", "mid-row", "garbage row", "extra rows"])
def test_resume_rebuilds_metrics_from_the_checkpoint(interrupted_run, cut):
    run_dir, whole = interrupted_run
    path = run_dir / "metrics.csv"
    text = path.read_text()
    lines = text.splitlines()
    assert len(lines) == 4  # header and epochs 1..3
    if cut == "mid-number":  # the last row cut inside a number: '1.4569e'
        last = lines[-1]
        path.write_text(
            "\n".join(lines[:-1])
            + "\n"
            + last[: last.index("e") + 1 if "e" in last else len(last) // 2]
        )
    elif cut == "mid-row":
        path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][: len(lines[-1]) // 2])
    elif cut == "garbage row":
        path.write_text(text + "4,not,a,row\n")
    else:  # rows past the checkpoint (written by a process killed before it saved)
        path.write_text(text + lines[-1].replace("3,", "4,", 1) + "\n")
    result = train(None, resume=run_dir)
    assert result.summary["status"] == "completed"
    got = RunDir(run_dir).metrics()
    want = RunDir(whole.run_dir).metrics()
    # a damaged row of epoch 3 is lost (its numbers are gone); nothing else is
    lost = {3} if cut in ("mid-number", "mid-row") else set()
    assert [r["epoch"] for r in got] == [e for e in range(1, 7) if e not in lost]
    assert "whole rows of the checkpoint's 3" in (run_dir / "log.txt").read_text() or not lost
    for mine, theirs in zip(got[-3:], want[3:]):  # the epochs trained after the resume
        assert {k: v for k, v in mine.items() if k != "seconds"} == {
            k: v for k, v in theirs.items() if k != "seconds"
        }


def test_a_checkpoint_with_a_string_epoch_is_a_clear_error(interrupted_run):
    run_dir, _ = interrupted_run
    last = run_dir / "checkpoints" / "last.npz"
    params, opt, meta, perm = checkpoint.load(last)
    meta["epoch"] = "3"
    checkpoint.save(last, params, opt, meta, perm)
    result = cli("train", "--resume", run_dir)
    assert result.exit_code == 2
    assert "bad metadata" in result.output and "Traceback" not in result.output


def test_runs_of_a_missing_folder_is_an_error(tmp_path):
    result = cli("runs", tmp_path / "no" / "such")
    assert result.exit_code == 2 and "no runs folder" in result.output


def test_run_files_are_as_readable_as_any_file(runs_dir):
    result = train(small_config(train={"epochs": 1}), runs_dir=runs_dir)
    want = 0o666 & ~_umask()
    for name in ("config.yaml", "summary.json", "metrics.csv", "checkpoints/last.npz"):
        mode = stat.S_IMODE((result.run_dir / name).stat().st_mode)
        assert mode == want, f"{name}: {oct(mode)}"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------------------- file system
def test_a_file_where_the_runs_folder_should_be(tmp_path):
    blocker = tmp_path / "runs"
    blocker.write_text("not a folder")
    result = cli("train", "configs/xor_mlp.yaml", "--runs-dir", blocker / "x")
    assert result.exit_code == 1
    assert "cannot create a run directory" in result.output and "Traceback" not in result.output
    assert blocker.read_text() == "not a folder"


def test_a_very_long_name_is_cut_to_fit(runs_dir):
    result = train(small_config(train={"epochs": 1}), runs_dir=runs_dir, name="n" * 300)
    assert result.summary["status"] == "completed"
    assert len(result.run_dir.name) < 255


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EFBIG])
def test_a_full_disk_fails_the_run_clearly_and_keeps_what_was_written(runs_dir, monkeypatch, code):
    real_save = checkpoint.save
    calls = []

    def failing_save(path, *args, **kwargs):
        calls.append(path.name)
        if calls.count("last.npz") == 3:  # epoch 2's: the start's and epoch 1's are written
            raise OSError(code, os.strerror(code), str(path))
        return real_save(path, *args, **kwargs)

    monkeypatch.setattr(checkpoint, "save", failing_save)
    with pytest.raises(RunFilesError, match=os.strerror(code)) as info:
        train(small_config(train={"epochs": 5, "batch_size": "full"}), runs_dir=runs_dir)
    assert info.value.exit_code == 1
    run_dir = next(runs_dir.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and os.strerror(code) in summary["reason"]
    params, _, meta, _ = checkpoint.load(run_dir / "checkpoints" / "last.npz")
    assert meta["epoch"] == 1 and all(np.isfinite(v).all() for v in params.values())


FASHION = "/usr/share/datasets/fashion-mnist"


@pytest.mark.skipif(not os.path.isdir(FASHION), reason="needs Debian's dataset-fashion-mnist")
def test_the_data_folder_used_is_in_log_and_env(runs_dir):
    cfg = small_config(
        data={"name": "fashion_mnist", "n_train": 64, "download": False},
        model={
            "type": "sequential",
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}, {"type": "softmax"}],
        },
        train={"epochs": 1, "batch_size": 32},
    )
    result = train(cfg, runs_dir=runs_dir)
    env = json.loads((result.run_dir / "env.json").read_text())
    assert env["data_source"] == os.path.realpath(FASHION) or env["data_source"].startswith("/")
    assert f"data read from {env['data_source']}" in (result.run_dir / "log.txt").read_text()


def test_generated_data_has_no_source(runs_dir):
    result = train(small_config(train={"epochs": 1}), runs_dir=runs_dir)
    assert json.loads((result.run_dir / "env.json").read_text())["data_source"] is None
    assert "data read from" not in (result.run_dir / "log.txt").read_text()
