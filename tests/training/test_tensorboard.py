"""TensorBoard event files (``log.tensorboard``), read back with TensorBoard's own reader:
scalars equal metrics.csv, histograms of every tensor, the batch loss, gradient through
time, hyper-parameters, each step once after a resume, a crash or a rollback; a missing
extra is a clear error, and a run without the flag does not import the writer."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from dlrun.errors import ConfigError
from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir
from dlrun.training.tensorboard import TensorBoardLogger, hyperparameters
from dlrun.training.train import train
from tests.conftest import ROOT, small_config
from tests.training.tensorboard_common import (
    hparams,
    read,
    require_tensorboard,
    scalars,
    session_status,
)
from tests.training.test_divergence import OVERFLOW
from tests.training.test_train import interrupt_at

# moons n=200: 120 training samples, batches of 16 -> 8 updates an epoch (the last of 8)
BATCHES = 8
SIZES = [16] * 7 + [8]


def logged(epochs=3, **log):
    cfg = small_config(train={"epochs": epochs, "batch_size": 16})
    cfg["log"] = {"tensorboard": True, "histograms": 1, "batch_every": 1, **log}
    return cfg


def f32(value):
    """A value as TensorBoard keeps a scalar (float32)."""
    return float(np.float32(value))


def assert_scalars_equal_metrics(run_dir, epochs):
    rows = RunDir(run_dir).metrics()
    assert [r["epoch"] for r in rows] == list(range(1, epochs + 1))
    acc = read(run_dir / "tensorboard")
    for column in rows[0]:
        if column == "epoch":
            continue
        assert scalars(acc, column) == [(r["epoch"], f32(r[column])) for r in rows], column
    return acc


def assert_each_step_once(acc):
    for tag in acc.Tags()["scalars"]:
        steps = [s for s, _ in scalars(acc, tag)]
        assert steps == sorted(set(steps)), tag
    for tag in acc.Tags()["histograms"]:
        steps = [e.step for e in acc.Histograms(tag)]
        assert steps == sorted(set(steps)), tag


# --------------------------------------------------------------------------- one run
def test_scalars_equal_metrics_csv_and_every_tensor_has_histograms(runs_dir):
    require_tensorboard()
    result = train(logged(), runs_dir=runs_dir, overrides=["optimizer.lr=0.2"])
    assert result.summary["status"] == "completed"
    acc = assert_scalars_equal_metrics(result.run_dir, 3)
    final = result.summary["final"]
    for key in ("test_loss", "test_accuracy"):
        assert scalars(acc, key) == [(3, f32(final[key]))]
    # weights after the last update of each epoch: the last epoch's are the checkpoint's
    params = checkpoint.load(result.run_dir / "checkpoints" / "last.npz")[0]
    names = {"dense_0.W", "dense_0.b", "dense_1.W", "dense_1.b"}
    assert {k.split("/", 1)[1] for k in acc.Tags()["histograms"]} == names
    for name in names:
        for kind in ("weights", "gradients"):
            assert [e.step for e in acc.Histograms(f"{kind}/{name}")] == [1, 2, 3]
        last = acc.Histograms(f"weights/{name}")[-1].histogram_value
        w = params[name].astype(np.float64)
        assert last.num == w.size
        assert (last.min, last.max) == (w.min(), w.max())
        assert last.sum == pytest.approx(w.sum(), rel=1e-9, abs=1e-12)
    text = acc.Tensors("config/text_summary")[0].tensor_proto.string_val[0].decode()
    assert "tensorboard: true" in text and "lr: 0.2" in text
    hp = hparams(result.run_dir / "tensorboard")
    assert hp == {
        "optimizer.name": "gd",
        "optimizer.lr": 0.2,
        "train.batch_size": 16,
        "seed": 3,
    }
    assert session_status(result.run_dir / "tensorboard") == "STATUS_SUCCESS"


def test_the_batch_loss_is_the_mean_over_the_last_n_batches(runs_dir):
    require_tensorboard()
    result = train(logged(batch_every=1), runs_dir=runs_dir)
    rows = RunDir(result.run_dir).metrics()
    per_batch = scalars(read(result.run_dir / "tensorboard" / "batches"), "batch/loss")
    assert [s for s, _ in per_batch] == list(range(1, 3 * BATCHES + 1))
    for e, row in enumerate(rows):  # the epoch's loss is the batches' mean per sample
        values = [v for _, v in per_batch[e * BATCHES : (e + 1) * BATCHES]]
        assert np.dot(values, SIZES) / sum(SIZES) == pytest.approx(row["loss"], rel=1e-5)
    # every 3 batches: the mean per sample of those 3 (across an epoch's end too)
    again = train(logged(batch_every=3), runs_dir=runs_dir)
    every3 = scalars(read(again.run_dir / "tensorboard" / "batches"), "batch/loss")
    assert [s for s, _ in every3] == list(range(3, 3 * BATCHES + 1, 3))
    sizes = SIZES * 3
    values = [v for _, v in per_batch]
    for step, value in every3:
        window = range(step - 3, step)
        want = sum(values[i] * sizes[i] for i in window) / sum(sizes[i] for i in window)
        assert value == pytest.approx(want, rel=1e-5)


def test_histograms_every_n_epochs_and_none(runs_dir):
    require_tensorboard()
    every2 = read(train(logged(epochs=4, histograms=2), runs_dir=runs_dir).run_dir / "tensorboard")
    assert [e.step for e in every2.Histograms("weights/dense_0.W")] == [2, 4]
    none = train(logged(histograms=0, batch_every=0), runs_dir=runs_dir).run_dir / "tensorboard"
    assert read(none).Tags()["histograms"] == []
    assert not (none / "batches").exists()


def test_recurrent_layers_log_gradient_through_time(runs_dir):
    require_tensorboard()
    cfg = {
        "seed": 0,
        "data": {"name": "adding", "n": 200, "length": 10, "val_fraction": 0.1},
        "model": {
            "type": "sequential",
            "layers": [{"type": "rnn", "units": 8}, {"type": "dense", "units": 1}],
        },
        "loss": "quadratic",
        "optimizer": {"name": "adam", "lr": 0.01},
        "train": {"epochs": 2, "batch_size": 32},
        "log": {"tensorboard": True},
    }
    result = train(cfg, runs_dir=runs_dir)
    record = RunDir(result.run_dir).read_json("grad_through_time.json")
    for when in ("initial", "final"):
        acc = read(result.run_dir / "tensorboard" / "grad_through_time" / when)
        want = [(t, f32(v)) for t, v in enumerate(record[when]["rnn_0"], start=1)]
        assert scalars(acc, "grad_through_time/rnn_0") == want
    main = read(result.run_dir / "tensorboard")
    first = scalars(main, "grad_through_time/rnn_0/first_step")
    last = scalars(main, "grad_through_time/rnn_0/last_step")
    assert [s for s, _ in first] == [s for s, _ in last] == [1, 2]
    assert all(v > 0 for _, v in first + last)


# --------------------------------------------------------------------------- resume
def test_a_resumed_run_has_each_step_once(runs_dir):
    require_tensorboard()
    cfg = logged(epochs=4)
    part = train(cfg, runs_dir=runs_dir, callbacks=[interrupt_at(11)])  # in epoch 2
    assert part.summary["status"] == "interrupted"
    assert scalars(read(part.run_dir / "tensorboard"), "loss")[-1][0] == 1
    resumed = train({}, resume=part.run_dir)
    assert resumed.summary["status"] == "completed"
    acc = assert_scalars_equal_metrics(part.run_dir, 4)
    assert_each_step_once(acc)
    assert [e.step for e in acc.Histograms("weights/dense_1.W")] == [1, 2, 3, 4]
    batches = scalars(read(part.run_dir / "tensorboard" / "batches"), "batch/loss")
    assert [s for s, _ in batches] == list(range(1, 4 * BATCHES + 1))
    assert session_status(part.run_dir / "tensorboard") == "STATUS_SUCCESS"


def test_a_crash_after_the_checkpoint_leaves_no_step_twice(runs_dir):
    """A crash in epoch 3 with checkpoints every 3 epochs: the resumed run starts again
    from epoch 0, and TensorBoard drops what the crashed process wrote (the epochs'
    ``seconds`` differ between the two processes, so a kept old value would show)."""
    require_tensorboard()
    cfg = logged(epochs=4)
    cfg["train"]["checkpoint_every"] = 3

    def crash(trainer):
        if trainer.step == 2 * BATCHES + 3:
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        train(cfg, runs_dir=runs_dir, callbacks=[crash])
    (run_dir,) = runs_dir.iterdir()
    first = read(run_dir / "tensorboard")
    assert [s for s, _ in scalars(first, "seconds")] == [1, 2]
    train({}, resume=run_dir)
    acc = assert_scalars_equal_metrics(run_dir, 4)
    assert_each_step_once(acc)
    batches = scalars(read(run_dir / "tensorboard" / "batches"), "batch/loss")
    assert [s for s, _ in batches] == list(range(1, 4 * BATCHES + 1))


def test_epochs_a_stopped_process_did_not_flush_are_written_on_resume(runs_dir, monkeypatch):
    """As if the process had been killed before its writer flushed epoch 2: the resumed
    run writes that epoch's row again, from metrics.csv."""
    require_tensorboard()
    real = TensorBoardLogger._scalars
    monkeypatch.setattr(
        TensorBoardLogger, "_scalars", lambda self, row: row["epoch"] != 2 and real(self, row)
    )
    part = train(logged(epochs=4), runs_dir=runs_dir, callbacks=[interrupt_at(20)])
    assert [s for s, _ in scalars(read(part.run_dir / "tensorboard"), "loss")] == [1]
    monkeypatch.setattr(TensorBoardLogger, "_scalars", real)
    train({}, resume=part.run_dir)
    assert_each_step_once(assert_scalars_equal_metrics(part.run_dir, 4))


def test_a_rollback_in_one_process_keeps_each_step_once(runs_dir):
    require_tensorboard()
    cfg = small_config(**OVERFLOW)
    cfg["log"] = {"tensorboard": True, "batch_every": 1}
    result = train(cfg, runs_dir=runs_dir)
    assert result.summary["rollbacks"] == 3  # step 1 ran four times
    batches = scalars(read(result.run_dir / "tensorboard" / "batches"), "batch/loss")
    assert [s for s, _ in batches] == [1]
    acc = read(result.run_dir / "tensorboard")
    assert [s for s, _ in scalars(acc, "loss")] == [1]  # the diverged epoch's row
    assert session_status(result.run_dir / "tensorboard") == "STATUS_FAILURE"


# --------------------------------------------------------------------------- edges
def test_a_logging_error_is_logged_and_the_run_goes_on(runs_dir, monkeypatch):
    require_tensorboard()

    def broken(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tensorboardX.SummaryWriter.add_scalar", broken)
    result = train(logged(), runs_dir=runs_dir)
    assert result.summary["status"] == "completed"
    log = (result.run_dir / "log.txt").read_text()
    assert "tensorboard logging stopped: OSError: disk full" in log


def test_without_tensorboardx_asking_for_it_is_a_config_error(runs_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)  # import tensorboardX fails
    with pytest.raises(ConfigError, match="needs the tensorboardX package") as info:
        train(logged(), runs_dir=runs_dir)
    assert "pip install 'dlrun[tensorboard]'" in str(info.value)
    assert info.value.exit_code == 2
    assert not runs_dir.exists()  # refused before the run directory was made


def test_a_run_without_the_flag_does_not_import_the_writer(tmp_path):
    code = (
        "import sys\n"
        "import dlrun.cli\n"
        "from dlrun.training.train import train\n"
        "from tests.conftest import small_config\n"
        f"r = train(small_config(), runs_dir={str(tmp_path)!r})\n"
        "assert r.summary['status'] == 'completed'\n"
        "assert not (r.run_dir / 'tensorboard').exists()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorboardX', 'tensorboard')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_hyperparameters_are_key_settings_overrides_and_given_values():
    cfg = {
        "seed": 4,
        "optimizer": {"name": "adam", "lr": 0.001},
        "train": {"batch_size": "full"},
        "model": {"layers": [{"units": 8}, {"units": 3}]},
        "regularizers": [{"name": "l2", "alpha": 0.01}],
        "log": {"tensorboard": True},
    }
    overrides = ["model.layers[0].units=8", "regularizers=[{name: l2, alpha: 0.01}]"]
    overrides += ["log.tensorboard=true", "missing.key=x"]
    hp = hyperparameters(cfg, overrides, {"variant": "l2", "seed": 4})
    assert hp == {
        "optimizer.name": "adam",
        "optimizer.lr": 0.001,
        "train.batch_size": "full",
        "seed": 4,
        "model.layers[0].units": 8,
        "regularizers": '[{"alpha": 0.01, "name": "l2"}]',
        "missing.key": "x",
        "variant": "l2",
    }
