"""dlrun plot weights: each run's final weights in one figure; the shares it prints are
the runs' own (summary.json's sparsity); a folder that is no run is one clear message."""

from __future__ import annotations

import matplotlib.image

from dlrun.training.train import train
from tests.cli.conftest import invoke
from tests.conftest import small_config


def regularized(runs_dir, name, alpha):
    cfg = small_config(train={"epochs": 20, "batch_size": 16})
    cfg["regularizers"] = [{"name": name, "alpha": alpha}]
    return train(cfg, runs_dir=runs_dir, name=name)


def test_l1_and_l2_side_by_side(runs_dir, tmp_path):
    l1, l2 = regularized(runs_dir, "l1", 0.01), regularized(runs_dir, "l2", 0.01)
    out = tmp_path / "weights.png"
    result = invoke("plot", "weights", l1.run_dir, l2.run_dir, "--out", out)
    assert result.exit_code == 0, result.output
    for run in (l1, l2):  # the share of |w| < 1e-3 on the run's row: its summary's sparsity
        row = next(line for line in result.output.splitlines() if run.run_dir.name in line)
        assert f"{run.summary['sparsity']:.1%}" in row
    assert l1.summary["sparsity"] > l2.summary["sparsity"]
    assert matplotlib.image.imread(out).shape[1] > 800  # two panels side by side


def test_a_folder_that_is_no_run_is_one_message(tmp_path):
    result = invoke("plot", "weights", tmp_path, "--out", tmp_path / "w.png")
    assert result.exit_code == 2
    assert "is not a run directory" in result.output
    assert not (tmp_path / "w.png").exists()
