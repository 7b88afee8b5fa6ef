"""Divergence: no checkpoint ever holds a non-finite parameter, a rollback always goes back
to a finite state, a non-finite validation loss ends the run as diverged, and summary.json
stays valid JSON."""

import copy
import json

import numpy as np
import pytest

from dlrun.config.loading import apply_overrides, load_yaml
from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.conftest import CONFIGS, small_config

# one batch per epoch and a step so large that the first update overflows the weights,
# while the loss and gradients the guard sees before it are finite
OVERFLOW = dict(
    optimizer={"name": "adam", "lr": 3e38},
    train={"epochs": 5, "batch_size": "full", "divergence": {"policy": "rollback"}},
)


def finite_checkpoints(run_dir):
    files = sorted((run_dir / "checkpoints").glob("*.npz"))
    assert files
    for path in files:
        params = checkpoint.load_params(path)
        for key, value in params.items():
            assert np.isfinite(value).all(), f"{path.name}: {key}"


def strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path.name} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("policy", ["rollback", "stop"])
def test_an_update_that_overflows_the_weights_never_reaches_a_checkpoint(runs_dir, policy):
    cfg = small_config(**copy.deepcopy(OVERFLOW))  # other tests use OVERFLOW as it is
    cfg["train"]["divergence"]["policy"] = policy
    result = train(cfg, runs_dir=runs_dir)
    assert result.summary["status"] == "diverged"
    assert "parameters became non-finite" in result.summary["reason"]
    assert result.summary["rollbacks"] == (3 if policy == "rollback" else 0)
    finite_checkpoints(result.run_dir)
    log = (result.run_dir / "log.txt").read_text()
    if policy == "rollback":  # each rollback reloaded a finite state and halved the rate
        assert log.count("rolled back to the last checkpoint") == 3
        assert "lr x0.125" in log
    strict_json(result.run_dir / "summary.json")


def test_a_non_finite_validation_loss_is_divergence(runs_dir):
    """The quickstart at lr 1e5: every training batch's loss and gradients are finite, but
    the weights after the first epoch give NaN on the validation set."""
    cfg = apply_overrides(
        load_yaml(CONFIGS / "quickstart.yaml"), ["optimizer.lr=1e5", "train.epochs=5"]
    )
    result = train(cfg, runs_dir=runs_dir)
    summary = strict_json(result.run_dir / "summary.json")
    assert summary["status"] == "diverged"
    assert summary["reason"].startswith("val_loss became non-finite at epoch 1")
    assert summary["epochs"] < 5
    rows = RunDir(result.run_dir).metrics()
    assert len(rows) == summary["epochs"]  # the epoch that diverged is recorded
    finite_checkpoints(result.run_dir)


def test_summary_json_writes_null_for_non_finite_numbers(tmp_path):
    run = RunDir(tmp_path)
    run.write_summary({"final": {"loss": float("nan"), "x": [float("inf"), 1.0]}, "n": 2})
    data = strict_json(tmp_path / "summary.json")
    assert data == {"final": {"loss": None, "x": [None, 1.0]}, "n": 2}
