"""dlrun compare and dlrun tune with ``log.tensorboard``: one TensorBoard tree per sweep or
study, each cell or trial a run of its own with its values as hyper-parameters."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from dlrun.errors import ConfigError
from dlrun.runs.rundir import RunDir
from dlrun.sweeps.compare import compare
from tests.conftest import small_config
from tests.training.tensorboard_common import hparams, read, require_tensorboard, scalars

LRS = [0.1, 0.3]


def lr_sweep():
    return {
        "name": "lrs",
        "base": small_config(train={"epochs": 2, "batch_size": 32}),
        "set": {"log.tensorboard": True, "log.batch_every": 2},
        "grid": {"optimizer.lr": LRS},
    }


def tensorboard_runs(folder: Path) -> dict[str, Path]:
    """TensorBoard's runs under ``folder`` (as ``tensorboard --logdir folder`` lists them)."""
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer

    mux = EventMultiplexer()
    mux.AddRunsFromDirectory(str(folder))
    return {name: folder / name for name in mux.Runs()}


def test_compare_writes_every_cell_as_a_run_with_its_values_as_hparams(tmp_path):
    require_tensorboard()
    result = compare(lr_sweep(), runs_dir=tmp_path)
    assert result.ok
    runs = tensorboard_runs(result.sweep_dir)
    cells = {name: path for name, path in runs.items() if name.endswith("/tensorboard")}
    assert len(cells) == len(LRS)
    seen = []
    for name, path in sorted(cells.items()):
        assert name.startswith("cells/lr_")  # named by the cell's values
        hp = hparams(path)
        assert hp["optimizer.lr"] == pytest.approx(RunDir(path.parent).config()["optimizer"]["lr"])
        assert hp["seed"] == 3 and hp["optimizer.name"] == "gd"
        seen.append(hp["optimizer.lr"])
        rows = RunDir(path.parent).metrics()
        assert [s for s, _ in scalars(read(path), "val_loss")] == [r["epoch"] for r in rows]
    assert sorted(seen) == pytest.approx(LRS)
    # the batch loss of each cell is a run below the cell's
    assert sum(name.endswith("/tensorboard/batches") for name in runs) == len(LRS)


def test_compare_without_the_extra_is_refused_before_any_cell(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboardX", None)
    with pytest.raises(ConfigError, match="needs the tensorboardX package"):
        compare(lr_sweep(), runs_dir=tmp_path)
    assert not (tmp_path / "lrs").exists()


def test_tune_writes_every_trial_with_its_parameters_as_hparams(tmp_path):
    require_tensorboard()
    from tests.sweeps.tune_common import require_optuna, tiny_config

    require_optuna()
    from dlrun.sweeps.tune.study import tune

    result = tune(
        tiny_config(tmp_path, epochs=2),
        ["optimizer.lr=log:1e-3:0.3"],
        trials=2,
        pruner="none",
        study_dir=tmp_path / "study",
        overrides=["log.tensorboard=true"],
    )
    trials = sorted(result.study.get_trials(deepcopy=False), key=lambda t: t.number)
    runs = tensorboard_runs(tmp_path / "study")
    assert len(trials) == 2
    for trial in trials:
        prefix = f"trial-{trial.number:04d}-"
        (name,) = [n for n in runs if n.startswith(prefix) and n.endswith("/tensorboard")]
        hp = hparams(runs[name])
        assert hp["optimizer.lr"] == pytest.approx(trial.params["optimizer.lr"])
        assert "log.tensorboard" not in hp
