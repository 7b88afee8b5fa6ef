"""What the ``log:`` section adds to a run (dlrun/training/trainer.py): the training set in
evaluation mode (train_eval), the optimizer's real steps (step_sizes), running totals
(totals), every update (every_step); a run that diverges mid-epoch keeps its last epoch;
offline augmentation; and a resumed run with all of them is the uninterrupted run."""

import math
import os
import signal

import numpy as np
import pytest

from dlrun.runs import checkpoint
from dlrun.runs.build import load_run
from dlrun.runs.rundir import RunDir
from dlrun.runs.steps import read_steps
from dlrun.training.evaluation import evaluate
from dlrun.training.train import train
from tests.conftest import REGRESSION, small_config

DROPOUT_MODEL = {
    "type": "sequential",
    "layers": [
        {"type": "dense", "units": 32, "activation": "relu"},
        {"type": "dropout", "rate": 0.5},
        {"type": "dense", "units": 2},
        {"type": "softmax"},
    ],
}


def logged(*keys, **changes):
    cfg = small_config(**changes)
    cfg["log"] = {k: True for k in keys}
    return cfg


def rows_of(result):
    return RunDir(result.run_dir).metrics()


def params_of(run_dir, which="last"):
    return checkpoint.load(run_dir / "checkpoints" / f"{which}.npz")[0]


def without(row, *keys):
    return {k: v for k, v in row.items() if k not in keys}


# --------------------------------------------------------------------------- train_eval
def test_train_eval_is_the_training_set_in_evaluation_mode_with_the_epochs_weights(runs_dir):
    cfg = logged("train_eval", model=DROPOUT_MODEL, train={"epochs": 4, "batch_size": 16})
    result = train(cfg, runs_dir=runs_dir)
    rows = rows_of(result)
    assert all({"train_eval_loss", "train_eval_accuracy"} <= set(r) for r in rows)
    # recomputed apart: the last checkpoint's weights on the training split, dropout off
    _, net, splits, targets = load_run(result.run_dir, "last")
    again = evaluate(net, splits.train, targets)
    assert rows[-1]["train_eval_loss"] == pytest.approx(again["loss"], rel=1e-6)
    assert rows[-1]["train_eval_accuracy"] == again["accuracy"]
    # the running numbers (dropout on, weights changing) are another measurement
    assert any(r["accuracy"] != r["train_eval_accuracy"] for r in rows)
    assert any(abs(r["loss"] - r["train_eval_loss"]) > 1e-3 for r in rows)


def test_train_eval_draws_from_no_random_stream(runs_dir):
    """Dropout draws from its stream at every training batch: a run that also evaluates
    the training set each epoch has exactly the same weights and metrics."""
    train_cfg = {"epochs": 3, "batch_size": 16}
    plain = train(small_config(model=DROPOUT_MODEL, train=train_cfg), runs_dir=runs_dir / "a")
    cfg = logged("train_eval", model=DROPOUT_MODEL, train=train_cfg)
    evaluated = train(cfg, runs_dir=runs_dir / "b")
    for key, value in params_of(plain.run_dir).items():
        np.testing.assert_array_equal(params_of(evaluated.run_dir)[key], value)
    extra = ("seconds", "train_eval_loss", "train_eval_accuracy")
    assert [without(r, *extra) for r in rows_of(plain)] == [
        without(r, *extra) for r in rows_of(evaluated)
    ]


def test_train_eval_gives_the_same_numbers_every_time(runs_dir):
    cfg = logged("train_eval", model=DROPOUT_MODEL, train={"epochs": 2, "batch_size": 16})
    a, b = train(cfg, runs_dir=runs_dir / "a"), train(cfg, runs_dir=runs_dir / "b")
    pick = ("train_eval_loss", "train_eval_accuracy")
    assert [[r[k] for k in pick] for r in rows_of(a)] == [[r[k] for k in pick] for r in rows_of(b)]


# --------------------------------------------------------------------------- step_sizes
class Steps:
    """A callback that measures every update from outside the trainer: the parameters after
    it, and the gradient the optimizer was given (still in net.grads after the step). The
    parameters before the first update are the first last.npz (written before training)."""

    def __init__(self):
        self.before = None
        self.by_epoch = {}

    def __call__(self, trainer):
        net = trainer.net
        if self.before is None:
            saved = params_of(trainer.run.path)
            names = [f"{layer.name}.{key}" for layer, key, _ in net.param_items()]
            self.before = np.concatenate([saved[n].ravel() for n in names]).astype(np.float64)
        now = net.params.astype(np.float64)
        step = np.linalg.norm(now - self.before)
        grad = np.linalg.norm(net.grads.astype(np.float64))
        epoch = trainer.epoch + 1  # the epoch in progress (its end is not yet counted)
        self.by_epoch.setdefault(epoch, []).append((step, grad))
        self.before = now


def test_step_sizes_are_the_weights_change_per_update(runs_dir):
    """update_norm = mean ||w_after - w_before||, effective_lr = mean ||w_after - w_before||
    / ||g|| over the epoch's updates, checked with plain NumPy from a callback."""
    cfg = logged("step_sizes", optimizer={"name": "adagrad", "lr": 0.1})
    cfg["train"] = {"epochs": 3, "batch_size": 16}
    watch = Steps()
    rows = rows_of(train(cfg, runs_dir=runs_dir, callbacks=[watch]))
    for row in rows:
        steps = watch.by_epoch[row["epoch"]]
        assert len(steps) == 8
        assert row["update_norm"] == pytest.approx(np.mean([s for s, _ in steps]), rel=1e-4)
        assert row["effective_lr"] == pytest.approx(np.mean([s / g for s, g in steps]), rel=1e-4)


def test_plain_gradient_descent_steps_at_its_learning_rate(runs_dir):
    cfg = logged("step_sizes", optimizer={"name": "gd", "lr": 0.3})
    for row in rows_of(train(cfg, runs_dir=runs_dir)):
        assert row["effective_lr"] == pytest.approx(0.3, rel=1e-4)


def test_adagrads_effective_rate_falls_adams_does_not(runs_dir):
    """AdaGrad divides by the root of the sum of every squared gradient so far: its rate
    can only fall. Adam divides by a moving average: its rate stays level or rises."""

    def rates(name, lr):
        cfg = logged("step_sizes", optimizer={"name": name, "lr": lr})
        cfg["train"] = {"epochs": 8, "batch_size": 16}
        return np.array([r["effective_lr"] for r in rows_of(train(cfg, runs_dir=runs_dir))])

    adagrad, adam = rates("adagrad", 0.05), rates("adam", 0.003)
    # ||delta w|| / ||g|| weighs each weight's own rate lr / sqrt(G_i) by its gradient, so
    # it may tick up when the gradient moves to other weights; the trend only falls
    assert np.all(adagrad[1:] < adagrad[0]) and np.all(adagrad[4:] < adagrad[1])
    assert adagrad[-1] < 0.5 * adagrad[0]
    assert adam[-1] > 0.8 * adam[0]


# --------------------------------------------------------------------------- totals
def test_totals_count_updates_and_seconds_of_training(runs_dir):
    result = train(logged("totals", train={"epochs": 3, "batch_size": 16}), runs_dir=runs_dir)
    rows = rows_of(result)
    assert [r["updates"] for r in rows] == [8, 16, 24]
    times = [r["train_seconds"] for r in rows]
    assert all(b >= a for a, b in zip(times, times[1:])) and times[-1] > 0
    # the first update is not timed: epoch 1 counts at most the epoch's seconds
    assert times[0] <= rows[0]["seconds"]


# --------------------------------------------------------------------------- every_step
def test_every_step_has_one_row_per_update_and_the_epochs_means(runs_dir):
    cfg = logged("every_step", train={"epochs": 3, "batch_size": 16})
    result = train(cfg, runs_dir=runs_dir)
    columns, steps = read_steps(result.run_dir / "steps.csv")
    assert columns == ["step", "epoch", "loss", "grad_norm/dense_0", "grad_norm/dense_1"]
    assert [s["step"] for s in steps] == list(range(1, 25))
    assert (result.run_dir / "plots" / "steps.png").stat().st_size > 10_000
    sizes = np.array([16] * 7 + [8])  # 120 training samples in batches of 16
    for row in rows_of(result):
        epoch = [s for s in steps if s["epoch"] == row["epoch"]]
        assert len(epoch) == 8
        loss = np.array([s["loss"] for s in epoch])
        assert row["loss"] == pytest.approx(float(loss @ sizes / sizes.sum()), rel=1e-9)
        for key in columns[3:]:
            assert row[key] == pytest.approx(np.mean([s[key] for s in epoch]), rel=1e-9)


# --------------------------------------------------------------------------- divergence
def diverging_regression(**log):
    """The quadratic cost at lr 30: it overflows in the second epoch, after some updates."""
    cfg = small_config(
        optimizer={"name": "gd", "lr": 30.0}, train={"epochs": 5, "batch_size": 16}, **REGRESSION
    )
    cfg["log"] = log
    return cfg


def test_a_run_that_diverges_mid_epoch_keeps_its_last_epoch_and_draws_it(runs_dir):
    result = train(diverging_regression(every_step=True), runs_dir=runs_dir)
    s = result.summary
    assert s["status"] == "diverged"
    rows = rows_of(result)
    # the epochs done, and the one it diverged in: the means of its batches before that
    assert [r["epoch"] for r in rows] == list(range(1, s["epochs"] + 2))
    assert "val_loss" not in rows[-1] or math.isnan(rows[-1]["val_loss"])
    plots = result.run_dir / "plots"
    for name in ("curves.png", "grad_norms.png", "steps.png"):
        assert (plots / name).stat().st_size > 10_000, name
    _, steps = read_steps(result.run_dir / "steps.csv")
    assert steps[-1]["step"] == s["steps"] + 1  # the step that diverged is the last row
    last = steps[-1]
    assert not all(math.isfinite(v) for k, v in last.items() if k not in ("step", "epoch"))
    assert all(math.isfinite(v) for st in steps[:-1] for v in st.values())
    assert f"step {s['steps'] + 1}" in s["reason"]


# --------------------------------------------------------------------------- augmentation
def test_offline_augmentation_trains_on_the_copies(runs_dir):
    """copies: 2 makes 120 training examples 360: 23 updates of 16 per epoch; the batches
    come from the fixed larger set (the augment stream is drawn once, before training)."""
    aug = {"noise": 0.1, "copies": 2}
    cfg = small_config(train={"epochs": 2, "batch_size": 16, "augment": aug})
    result = train(cfg, runs_dir=runs_dir)
    assert result.summary["steps"] == 2 * math.ceil(360 / 16)
    on_the_fly = small_config(train={"epochs": 2, "batch_size": 16, "augment": {"noise": 0.1}})
    assert train(on_the_fly, runs_dir=runs_dir).summary["steps"] == 2 * 8


# --------------------------------------------------------------------------- resume
def interrupt_at(step):
    def callback(trainer):
        if trainer.step == step:
            os.kill(os.getpid(), signal.SIGINT)

    return callback


@pytest.mark.parametrize("stop_step", [11, 38])  # mid-epoch 1, mid-epoch 3 (15 an epoch)
def test_resume_with_every_log_option_is_the_uninterrupted_run(runs_dir, stop_step):
    """Dropout, offline augmentation and every log option: an interrupted and resumed run
    ends with the same weights, metrics (times aside) and steps.csv as one never stopped."""
    cfg = logged(
        "train_eval",
        "step_sizes",
        "totals",
        "every_step",
        model=DROPOUT_MODEL,
        train={"epochs": 3, "batch_size": 16, "augment": {"noise": 0.1, "copies": 1}},
    )
    full = train(cfg, runs_dir=runs_dir / "a")
    part = train(cfg, runs_dir=runs_dir / "b", callbacks=[interrupt_at(stop_step)])
    assert part.summary["status"] == "interrupted" and part.summary["steps"] == stop_step
    resumed = train({}, resume=part.run_dir)
    assert resumed.summary["status"] == "completed"
    for key, value in params_of(full.run_dir).items():
        np.testing.assert_array_equal(params_of(part.run_dir)[key], value)
    times = ("seconds", "train_seconds")
    a, b = rows_of(full), rows_of(resumed)
    assert len(a) == len(b) == 3
    assert [without(r, *times) for r in a] == [without(r, *times) for r in b]
    assert read_steps(full.run_dir / "steps.csv") == read_steps(part.run_dir / "steps.csv")
