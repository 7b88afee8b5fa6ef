"""Training controls wired into the loop: optimizers, penalties, clipping, schedules,
augmentation, dropout, the divergence guard, and exact resume with all of them."""

import json
import math

import numpy as np
import pytest

from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.conftest import REGRESSION, small_config
from tests.training.test_evaluate import reference_metrics
from tests.training.test_train import interrupt_at, params_of


def test_penalty_is_part_of_the_reported_loss(runs_dir):
    lr, alpha = 0.3, 0.5  # small_config's gd rate
    full = {"epochs": 1, "batch_size": "full"}
    plain = train(small_config(train=full), runs_dir=runs_dir)
    reg = train(
        small_config(train=full, regularizers=[{"name": "l2", "alpha": alpha}]),
        runs_dir=runs_dir,
    )
    from dlrun.config.resolve import resolve
    from dlrun.nn.network import Network
    from dlrun.runs.build import make_streams

    # the weights both runs start from (same seed): built again from the config
    cfg = resolve(small_config())
    net = Network.from_config(cfg)
    net.build((2,), make_streams(cfg["seed"])["init"], np.float32)
    w0 = net.state_dict()
    # one full-batch step: the reported loss is the data loss at w0 plus alpha/2 sum W^2
    first = RunDir(reg.run_dir).metrics()[0]["loss"]
    base = RunDir(plain.run_dir).metrics()[0]["loss"]
    penalty = (
        0.5
        * alpha
        * sum(float(np.sum(w0[k].astype(np.float64) ** 2)) for k in w0 if k.endswith(".W"))
    )
    assert penalty > 0.1
    assert first == pytest.approx(base + penalty, rel=1e-5)
    # ... and its gradient alpha W0 is in the step: W_reg = W_plain - lr alpha W0, while the
    # biases (not penalised without include_biases) take the same step in both runs
    w_plain, w_reg = params_of(plain.run_dir, "last"), params_of(reg.run_dir, "last")
    assert (
        set(w_plain)
        == set(w_reg)
        == set(w0)
        == {"dense_0.W", "dense_0.b", "dense_1.W", "dense_1.b"}
    )
    for key in w0:
        shrink = lr * alpha * w0[key].astype(np.float64) if key.endswith(".W") else 0.0
        np.testing.assert_allclose(
            w_reg[key].astype(np.float64), w_plain[key] - shrink, rtol=0, atol=2e-6, err_msg=key
        )


def test_l1_gives_sparser_weights_than_l2(runs_dir):
    common = dict(train={"epochs": 30, "batch_size": 16}, optimizer={"name": "gd", "lr": 0.1})
    l1 = train(
        small_config(regularizers=[{"name": "l1", "alpha": 0.01}], **common), runs_dir=runs_dir
    )
    l2 = train(
        small_config(regularizers=[{"name": "l2", "alpha": 0.01}], **common), runs_dir=runs_dir
    )
    assert l1.summary["sparsity"] > l2.summary["sparsity"] + 0.05


@pytest.mark.parametrize("policy", ["stop", "rollback"])
def test_divergence_guard(runs_dir, policy):
    cfg = small_config(
        optimizer={"name": "gd", "lr": 1e4},
        train={"epochs": 3, "batch_size": 16, "divergence": {"policy": policy, "max_rollbacks": 2}},
        **REGRESSION,
    )
    result = train(cfg, runs_dir=runs_dir)
    s = result.summary
    assert s["status"] == "diverged"
    assert "non-finite" in s["reason"] and (
        "layer 'dense_" in s["reason"] or "gradient of 'dense_" in s["reason"]
    )
    assert s["rollbacks"] == (2 if policy == "rollback" else 0)
    params = params_of(result.run_dir)  # the last good checkpoint is kept and finite
    assert all(np.isfinite(v).all() for v in params.values())
    assert json.loads((result.run_dir / "summary.json").read_text())["status"] == "diverged"


def test_rollback_halves_the_rate_until_training_works(runs_dir):
    cfg = small_config(
        optimizer={"name": "gd", "lr": 40.0},
        train={
            "epochs": 3,
            "batch_size": 16,
            "divergence": {"policy": "rollback", "max_rollbacks": 20},
        },
        **REGRESSION,
    )
    s = train(cfg, runs_dir=runs_dir).summary
    assert s["status"] == "completed" and s["rollbacks"] >= 1
    assert s["final"]["lr"] == pytest.approx(40.0 * 0.5 ** s["rollbacks"])
    assert math.isfinite(s["final"]["test_loss"])


def test_clipping_keeps_an_exploding_setting_finite(runs_dir):
    base = dict(optimizer={"name": "gd", "lr": 30.0}, **REGRESSION)
    wild = train(
        small_config(train={"epochs": 3, "batch_size": 16}, **base), runs_dir=runs_dir
    ).summary
    clipped = train(
        small_config(
            train={"epochs": 3, "batch_size": 16, "clip": {"mode": "global_norm", "limit": 0.01}},
            **base,
        ),
        runs_dir=runs_dir,
    ).summary
    assert wild["status"] == "diverged"
    assert clipped["status"] == "completed"


def test_schedule_sets_the_rate_per_epoch(runs_dir):
    cfg = small_config(
        schedule={"name": "step", "step_size": 1, "gamma": 0.5},
        train={"epochs": 3, "batch_size": 16},
    )
    rows = RunDir(train(cfg, runs_dir=runs_dir).run_dir).metrics()
    assert [r["lr"] for r in rows] == pytest.approx([0.3, 0.15, 0.075])


def test_noise_augmentation_for_vectors_changes_training_only(runs_dir):
    a = train(small_config(), runs_dir=runs_dir)
    b = train(
        small_config(train={"epochs": 3, "batch_size": 16, "augment": {"noise": 0.3}}),
        runs_dir=runs_dir,
    )
    ra, rb = RunDir(a.run_dir).metrics(), RunDir(b.run_dir).metrics()
    # training: the same first weights see other inputs, so the first epoch's loss differs
    assert abs(ra[0]["loss"] - rb[0]["loss"]) > 1e-3
    # evaluation: the clean inputs. The last epoch's val_loss and the final test metrics
    # are those of the last weights on the splits as stored, by NumPy
    for split, recorded in (("val", rb[-1]), ("test", b.summary["final"])):
        ref = reference_metrics(b.run_dir, split, "last")
        assert recorded[f"{split}_loss"] == pytest.approx(ref["loss"], rel=1e-5), split
        assert recorded[f"{split}_accuracy"] == pytest.approx(ref["accuracy"], abs=1e-9), split


@pytest.mark.parametrize("optimizer", ["adam", "nadam", "adadelta", "momentum"])
def test_exact_resume_with_stateful_optimizer_dropout_and_augmentation(runs_dir, optimizer):
    cfg = small_config(
        optimizer={"name": optimizer},
        model={
            "type": "sequential",
            "layers": [
                {"type": "dense", "units": 16, "activation": "relu"},
                {"type": "dropout", "rate": 0.3},
                {"type": "dense", "units": 2},
                {"type": "softmax"},
            ],
        },
        schedule={"name": "cosine", "epochs": 4},
        train={"epochs": 4, "batch_size": 16, "augment": {"noise": 0.05}},
    )
    full = train(cfg, runs_dir=runs_dir / "a")
    part = train(cfg, runs_dir=runs_dir / "b", callbacks=[interrupt_at(11)])
    assert part.summary["status"] == "interrupted"
    train({}, resume=part.run_dir)
    a, b = (
        checkpoint.load(full.run_dir / "checkpoints" / "last.npz"),
        checkpoint.load(part.run_dir / "checkpoints" / "last.npz"),
    )
    for key in a[0]:
        np.testing.assert_array_equal(a[0][key], b[0][key])
    for key in a[1]:
        np.testing.assert_array_equal(a[1][key], b[1][key])
