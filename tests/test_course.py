"""The course's claims, run from the shipped configs (issue: "the course, runnable")."""

import json
import math

import numpy as np
import pytest

from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.conftest import CONFIGS


def run(name, runs_dir, *overrides):
    return train(CONFIGS / f"{name}.yaml", runs_dir=runs_dir, overrides=list(overrides))


def test_perceptron_cannot_learn_xor(runs_dir):
    result = run("xor_perceptron", runs_dir)
    assert result.summary["status"] == "completed"
    accuracies = [r["accuracy"] for r in RunDir(result.run_dir).metrics()]
    assert max(accuracies) <= 0.75 and result.summary["final"]["test_accuracy"] <= 0.75


def test_perceptron_learns_and(runs_dir):
    assert run("and_perceptron", runs_dir).summary["final"]["test_accuracy"] == 1.0


def test_one_hidden_layer_learns_xor(runs_dir):
    assert run("xor_mlp", runs_dir).summary["final"]["test_accuracy"] == 1.0


@pytest.mark.parametrize("depth,min_acc", [(0, 0.8), (3, 0.93), (20, 0.9)])
def test_depth(runs_dir, depth, min_acc):
    result = run(f"depth_{depth}", runs_dir)
    assert result.summary["final"]["test_accuracy"] >= min_acc
    assert (result.run_dir / "plots" / "decision_boundary.png").is_file()


def test_depth_0_is_a_straight_line_and_depth_3_is_not(runs_dir):
    # moons are not linearly separable: the logistic-regression boundary loses accuracy
    linear = run("depth_0", runs_dir).summary["final"]["test_accuracy"]
    deep = run("depth_3", runs_dir).summary["final"]["test_accuracy"]
    assert deep > linear + 0.05


def grad_norms_by_depth(result):
    row = RunDir(result.run_dir).metrics()[0]
    return np.array([v for k, v in row.items() if k.startswith("grad_norm/")])


def test_vanishing_gradient_with_sigmoid_not_with_relu(runs_dir):
    sig = run("vanishing_sigmoid", runs_dir, "train.epochs=1")
    rel = run("vanishing_relu", runs_dir, "train.epochs=1")
    s, r = grad_norms_by_depth(sig), grad_norms_by_depth(rel)
    assert len(s) == len(r) == 9
    # sigmoid: every layer nearer the input gets a smaller gradient, overall by orders of magnitude
    assert np.all(np.diff(s) > 0)
    assert s[0] / s[-1] < 1e-3
    # relu: the first layer keeps a gradient of the same order as the last
    assert r[0] / r[-1] > 1e-1
    assert (sig.run_dir / "plots" / "grad_norms.png").is_file()


def test_sine_regression_with_the_quadratic_cost(runs_dir):
    result = run("sine_regression", runs_dir, "train.epochs=60")
    # noise 0.05: the quadratic cost 1/2 (t - o)^2 bottoms out near 0.5 * 0.05^2
    assert result.summary["final"]["test_loss"] < 0.01


def test_quickstart_is_a_real_job(runs_dir):
    """The whole job as configured: 60 epochs of 900 training samples in mini-batches of 32
    (its wall time is a benchmark's business, not a test's)."""
    result = run("quickstart", runs_dir)
    s = json.loads((result.run_dir / "summary.json").read_text())
    assert s["status"] == "completed" and s["final"]["test_accuracy"] > 0.9
    n_train = 1500 - 300 - 300  # val_fraction and test_fraction 0.2
    assert s["epochs"] == 60 and s["steps"] == 60 * math.ceil(n_train / 32)
    assert [r["epoch"] for r in RunDir(result.run_dir).metrics()] == list(range(1, 61))
