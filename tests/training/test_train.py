import json
import os
import signal

import numpy as np
import pytest

from dlrun.errors import CheckpointError, ConfigError
from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.conftest import REGRESSION, small_config


def params_of(run_dir, which="last"):
    return checkpoint.load(run_dir / "checkpoints" / f"{which}.npz")[0]


@pytest.mark.parametrize("batch_size,steps", [("full", 1), (1, 120), (16, 8), (50, 3)])
def test_batch_size_gives_the_number_of_updates(runs_dir, batch_size, steps):
    # 200 samples: test 40, val 40, train 120 (the last mini-batch of 16 is partial and kept)
    cfg = small_config(train={"epochs": 2, "batch_size": batch_size})
    result = train(cfg, runs_dir=runs_dir)
    assert result.summary["steps"] == 2 * steps


def test_run_directory_contents(runs_dir):
    result = train(small_config(), runs_dir=runs_dir, overrides=["optimizer.lr=0.2"], name="demo")
    d = result.run_dir
    assert d.parent == runs_dir and d.name.startswith("demo-")
    for name in (
        "config.yaml",
        "overrides.txt",
        "env.json",
        "metrics.csv",
        "summary.json",
        "log.txt",
        "checkpoints/last.npz",
        "checkpoints/best.npz",
        "plots/curves.png",
        "plots/decision_boundary.png",
        "plots/grad_norms.png",
    ):
        assert (d / name).is_file(), name
    assert (d / "overrides.txt").read_text() == "optimizer.lr=0.2\n"
    header = (d / "metrics.csv").read_text().splitlines()[0].split(",")
    assert header == [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
        "grad_norm/dense_0",
        "grad_norm/dense_1",
    ]
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert 0.5 < summary["final"]["test_accuracy"] <= 1.0
    assert summary["best"]["epoch"] == summary["best_epoch"]
    env = json.loads((d / "env.json").read_text())
    assert {"dlrun", "numpy", "numba", "python", "platform"} <= set(env)
    assert RunDir(d).config()["optimizer"]["lr"] == 0.2


def test_training_lowers_the_loss(runs_dir):
    result = train(small_config(train={"epochs": 15, "batch_size": 8}), runs_dir=runs_dir)
    rows = RunDir(result.run_dir).metrics()
    assert rows[-1]["loss"] < 0.5 * rows[0]["loss"]
    assert rows[-1]["accuracy"] > 0.85


def interrupt_at(step):
    """A callback that presses Ctrl-C (a real SIGINT) after the given update."""

    def callback(trainer):
        if trainer.step == step:
            os.kill(os.getpid(), signal.SIGINT)

    return callback


@pytest.mark.parametrize("stop_step", [5, 8])  # mid-epoch, and right at an epoch's end
def test_resume_gives_exactly_the_uninterrupted_run(runs_dir, stop_step):
    cfg = small_config(train={"epochs": 4, "batch_size": 16})
    full = train(cfg, runs_dir=runs_dir / "a")
    part = train(cfg, runs_dir=runs_dir / "b", callbacks=[interrupt_at(stop_step)])
    assert part.summary["status"] == "interrupted"
    assert part.summary["steps"] == stop_step
    resumed = train({}, resume=part.run_dir)
    assert resumed.run_dir == part.run_dir
    assert resumed.summary["status"] == "completed"
    for key, value in params_of(full.run_dir).items():
        np.testing.assert_array_equal(params_of(part.run_dir)[key], value)
    a, b = RunDir(full.run_dir).metrics(), RunDir(part.run_dir).metrics()
    assert len(a) == len(b) == 4
    for ra, rb in zip(a, b):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb
    fa, fb = dict(full.summary["final"]), dict(resumed.summary["final"])
    fa.pop("seconds"), fb.pop("seconds")
    assert fa == fb


def test_resume_of_a_completed_run_is_refused(runs_dir):
    result = train(small_config(), runs_dir=runs_dir)
    with pytest.raises(CheckpointError, match="already completed"):
        train({}, resume=result.run_dir)


def test_crash_while_writing_a_checkpoint_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "last.npz"
    good = {"dense_0.W": np.arange(6.0).reshape(2, 3)}
    checkpoint.save(path, good, {"step": np.array(1)}, {"epoch": 1})

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(path, {"dense_0.W": np.zeros((2, 3))}, {}, {"epoch": 2})
    monkeypatch.undo()
    params, opt, meta, _ = checkpoint.load(path)
    np.testing.assert_array_equal(params["dense_0.W"], good["dense_0.W"])
    assert meta == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.npz"]  # no temporary file left


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "last.npz"
    bad.write_bytes(b"this is not a zip")
    for load in (checkpoint.load, checkpoint.load_params):
        with pytest.raises(CheckpointError, match=r"last\.npz is corrupt"):
            load(bad)
        with pytest.raises(CheckpointError, match="not found"):
            load(tmp_path / "none.npz")
    truncated = tmp_path / "best.npz"
    checkpoint.save(truncated, {"d.W": np.ones(3)}, {"m": np.ones(3)}, {"epoch": 1})
    truncated.write_bytes(truncated.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match=r"best\.npz is corrupt") as info:
        checkpoint.load_params(truncated)
    assert "not a complete .npz archive" in str(info.value)
    tiny = tmp_path / "tiny.npz"
    tiny.write_bytes(b"xx")  # np.load alone would call this "pickled (object) data"
    with pytest.raises(CheckpointError, match=r"not a complete \.npz archive: 2 bytes") as info:
        checkpoint.load(tiny)
    assert "pickle" not in str(info.value)


def test_load_params_reads_the_parameters_alone(tmp_path, monkeypatch):
    path = tmp_path / "best.npz"
    checkpoint.save(path, {"d.W": np.arange(3.0)}, {"m": np.ones(3), "step": np.array(2)}, {})
    read = []
    real = np.lib.npyio.NpzFile.__getitem__
    monkeypatch.setattr(
        np.lib.npyio.NpzFile, "__getitem__", lambda z, key: read.append(key) or real(z, key)
    )
    params = checkpoint.load_params(path)
    assert list(params) == ["d.W"] and read == ["param/d.W"]
    np.testing.assert_array_equal(params["d.W"], np.arange(3.0))


def test_checkpoints_load_without_pickle(runs_dir):
    result = train(small_config(), runs_dir=runs_dir)
    with np.load(result.run_dir / "checkpoints" / "last.npz", allow_pickle=False) as z:
        assert "meta" in z.files and any(k.startswith("param/") for k in z.files)


def test_bad_config_creates_no_run_directory(runs_dir):
    cfg = small_config()
    cfg["model"]["layers"][0]["units"] = 0
    with pytest.raises(ConfigError):
        train(cfg, runs_dir=runs_dir)
    cfg = small_config()
    cfg["model"]["layers"] = cfg["model"]["layers"][:-1]  # cross_entropy without softmax
    with pytest.raises(ConfigError):
        train(cfg, runs_dir=runs_dir)
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_regression_run_has_no_accuracy(runs_dir):
    result = train(small_config(**REGRESSION), runs_dir=runs_dir)
    assert "test_loss" in result.summary["final"] and "accuracy" not in result.summary["final"]


def test_early_stopping_restores_the_best_weights(runs_dir):
    es = {"monitor": "val_loss", "patience": 2, "restore_best": True}
    cfg = small_config(
        train={"epochs": 40, "batch_size": 8, "early_stopping": es},
        optimizer={"name": "gd", "lr": 3.0},
    )
    result = train(cfg, runs_dir=runs_dir)
    s = result.summary
    rows = RunDir(result.run_dir).metrics()
    val = [r["val_loss"] for r in rows]
    # early stopping fired: patience (2) epochs after the lowest val_loss, long before 40
    assert s["status"] == "completed" and s["reason"].startswith("early stopping")
    assert s["epochs"] == len(rows) < 40
    assert s["best_epoch"] == 1 + int(np.argmin(val))
    assert s["epochs"] == s["best_epoch"] + 2
    assert min(val[s["best_epoch"] :]) >= val[s["best_epoch"] - 1]
    assert s["restored_best_epoch"] == s["best_epoch"]
    best, last = params_of(result.run_dir, "best"), params_of(result.run_dir, "last")
    assert any(not np.array_equal(best[k], last[k]) for k in best)
    from dlrun.training.evaluation import evaluate_run

    # the final test metrics are those of the best checkpoint, not of the last weights
    on_best = evaluate_run(result.run_dir, "test", "best", plots=False)["loss"]
    on_last = evaluate_run(result.run_dir, "test", "last", plots=False)["loss"]
    assert s["final"]["test_loss"] == pytest.approx(on_best, rel=1e-6)
    assert abs(on_last - on_best) > 1e-4


def test_missing_dataset_fails_before_a_run_directory_is_made(runs_dir, tmp_path, monkeypatch):
    from dlrun.data import sources
    from dlrun.errors import DataError

    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "nowhere",))
    monkeypatch.delenv("DLRUN_DATA", raising=False)
    cfg = small_config(
        data={"name": "fashion_mnist", "path": str(tmp_path / "empty"), "download": False},
        model={
            "type": "sequential",
            "layers": [{"type": "flatten"}, {"type": "dense", "units": 10}, {"type": "softmax"}],
        },
    )
    with pytest.raises(DataError, match="fashion"):
        train(cfg, runs_dir=runs_dir, root=tmp_path)
    assert not runs_dir.exists()


def test_a_dataset_too_large_to_make_is_a_data_error_before_a_run_directory(runs_dir, monkeypatch):
    """numpy's OverflowError or MemoryError while a dataset is made becomes one DataError
    naming the dataset (a fuzzed config once asked for 1e100 copies of XOR)."""
    from dlrun.data import synthetic
    from dlrun.errors import DataError

    def too_large(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(synthetic, "_table", too_large)
    cfg = small_config(data={"name": "xor"})
    with pytest.raises(DataError, match="dataset 'xor' could not be loaded: MemoryError"):
        train(cfg, runs_dir=runs_dir)
    assert not runs_dir.exists()


def test_second_ctrl_c_aborts_and_keeps_the_last_checkpoint(runs_dir):
    def press_twice(trainer):
        if trainer.step == 3:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt):
        train(small_config(), runs_dir=runs_dir, callbacks=[press_twice])
    run_dir = next(runs_dir.iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "second Ctrl-C" in summary["reason"]
    # last.npz is still the checkpoint written before training: step 0, the initial weights
    params, _, meta, _ = checkpoint.load(run_dir / "checkpoints" / "last.npz")
    assert meta["step"] == 0 and meta["epoch"] == 0
    from dlrun.config.resolve import resolve
    from dlrun.nn.network import Network
    from dlrun.runs.build import make_streams

    cfg = resolve(small_config())
    net = Network.from_config(cfg)
    net.build((2,), make_streams(cfg["seed"])["init"], np.float32)
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(params[key], value)


def orders_seen(monkeypatch, cfg, runs_dir):
    """The training samples of every update, in the order the trainer took them, as one
    array per epoch (the trainer reads a batch with ``Split.take(indices)``; evaluation and
    figures read slices, which are not recorded)."""
    from dlrun.data.base import Split

    taken = []
    real = Split.take

    def take(split, idx, dtype=np.float32):
        if isinstance(idx, np.ndarray):
            taken.append(np.array(idx))
        return real(split, idx, dtype)

    monkeypatch.setattr(Split, "take", take)
    result = train(cfg, runs_dir=runs_dir)
    monkeypatch.undo()
    epochs, steps = result.summary["epochs"], result.summary["steps"]
    assert len(taken) == steps and steps % epochs == 0
    per_epoch = steps // epochs
    return [np.concatenate(taken[e * per_epoch : (e + 1) * per_epoch]) for e in range(epochs)]


@pytest.mark.parametrize("batch_size", [16, 1])
def test_the_training_set_is_reshuffled_every_epoch(runs_dir, monkeypatch, batch_size):
    cfg = small_config(train={"epochs": 4, "batch_size": batch_size, "shuffle": True})
    orders = orders_seen(monkeypatch, cfg, runs_dir)
    n = 120  # 200 samples less 40 for validation and 40 for test
    assert len(orders) == 4
    for order in orders:  # every sample once per epoch
        np.testing.assert_array_equal(np.sort(order), np.arange(n))
    for a in range(4):
        assert not np.array_equal(orders[a], np.arange(n))
        for b in range(a):
            assert not np.array_equal(orders[a], orders[b]), (a, b)


def test_without_shuffle_every_epoch_takes_the_samples_in_order(runs_dir, monkeypatch):
    cfg = small_config(train={"epochs": 3, "batch_size": 16, "shuffle": False})
    orders = orders_seen(monkeypatch, cfg, runs_dir)
    assert len(orders) == 3
    for order in orders:
        np.testing.assert_array_equal(order, np.arange(120))
