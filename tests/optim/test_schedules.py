"""Learning-rate schedules: values per epoch/step, plateau logic, state round trips."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from dlrun.config.registry import schedules
from dlrun.errors import CheckpointError, ConfigError
from dlrun.optim.schedules import build_schedule


def make(base_lr=0.1, **section):
    return build_schedule(section, base_lr)


def test_all_registered_with_a_description():
    names = {"constant", "step", "exponential", "cosine", "warmup", "reduce_on_plateau"}
    assert names <= set(schedules.names())
    for name in names:
        assert schedules.describe(schedules.get(name))


def test_constant():
    s = make(0.3, name="constant")
    assert [s.lr(e, 100 * e) for e in range(5)] == [0.3] * 5


def test_step_decay():
    s = make(1.0, name="step", step_size=3, gamma=0.5)
    assert [s.lr(e, 0) for e in range(8)] == [1, 1, 1, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_exponential():
    s = make(0.2, name="exponential", gamma=0.9)
    for e in range(6):
        assert s.lr(e, 0) == pytest.approx(0.2 * 0.9**e, rel=1e-15)


def test_cosine_endpoints_midpoint_and_after():
    s = make(1.0, name="cosine", epochs=10, min_lr=0.1)
    assert s.lr(0, 0) == pytest.approx(1.0)
    assert s.lr(5, 0) == pytest.approx(0.55)
    assert s.lr(10, 0) == pytest.approx(0.1)
    assert s.lr(25, 0) == pytest.approx(0.1)
    for e in range(1, 10):
        want = 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * e / 10))
        assert s.lr(e, 0) == pytest.approx(want)
        assert s.lr(e, 0) < s.lr(e - 1, 0)


def test_cosine_rejects_min_above_base():
    with pytest.raises(ConfigError, match="min_lr"):
        make(0.01, name="cosine", epochs=5, min_lr=0.1)


def test_warmup_linear_then_constant():
    s = make(1.0, name="warmup", warmup_steps=4)
    assert [s.lr(0, k) for k in range(7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0, 1.0]
    s = make(1.0, name="warmup", warmup_steps=2, start_factor=0.5)
    assert [s.lr(0, k) for k in range(3)] == [0.75, 1.0, 1.0]


def test_warmup_wraps_another_schedule():
    s = make(
        1.0, name="warmup", warmup_steps=10, then={"name": "step", "step_size": 1, "gamma": 0.5}
    )
    assert s.lr(0, 4) == pytest.approx(0.5)  # half warmed-up, epoch 0 rate 1.0
    assert s.lr(2, 40) == pytest.approx(0.25)  # after warm-up: the step schedule alone


def test_warmup_bad_inner_schedule_names_where():
    with pytest.raises(ConfigError, match="schedule.then.name"):
        make(1.0, name="warmup", then={"name": "cosinus"})
    with pytest.raises(ConfigError, match="schedule.then.epochs"):
        make(1.0, name="warmup", then={"name": "cosine"})


def feed(s, values, monitor="val_loss"):
    rates = []
    for epoch, v in enumerate(values):
        s.observe(epoch, {monitor: v})
        rates.append(s.lr(epoch + 1, 0))
    return rates


def test_reduce_on_plateau_min_mode_with_patience():
    s = make(1.0, name="reduce_on_plateau", factor=0.5, patience=2)
    # improves, improves, flat, flat -> reduce; flat, flat -> reduce
    rates = feed(s, [1.0, 0.9, 0.9, 0.95, 0.9, 0.91])
    assert rates == [1.0, 1.0, 1.0, 0.5, 0.5, 0.25]


def test_reduce_on_plateau_min_delta_and_max_mode():
    s = make(1.0, name="reduce_on_plateau", factor=0.1, patience=1, min_delta=0.05)
    assert feed(s, [1.0, 0.97]) == [1.0, pytest.approx(0.1)]  # 0.03 < min_delta: no improvement
    s = make(1.0, name="reduce_on_plateau", monitor="val_accuracy", mode="max", patience=1)
    assert feed(s, [0.5, 0.6, 0.55], monitor="val_accuracy") == [1.0, 1.0, pytest.approx(0.1)]


def test_reduce_on_plateau_cooldown_and_min_lr():
    s = make(1.0, name="reduce_on_plateau", factor=0.5, patience=1, cooldown=2, min_lr=0.3)
    rates = feed(s, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
    # reduce at epoch 1; epochs 2-3 cool down; epoch 4 counts and reduces to the floor
    assert rates == [1.0, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3]


def test_reduce_on_plateau_nan_is_not_an_improvement():
    s = make(1.0, name="reduce_on_plateau", factor=0.5, patience=1)
    assert feed(s, [1.0, float("nan")]) == [1.0, 0.5]


def test_reduce_on_plateau_missing_metric_is_a_config_error():
    s = make(1.0, name="reduce_on_plateau", monitor="val_loss")
    with pytest.raises(ConfigError, match="'val_loss'.*available: loss"):
        s.observe(0, {"loss": 1.0})


@pytest.mark.parametrize(
    "section",
    [
        {"name": "reduce_on_plateau", "factor": 0.5, "patience": 1, "cooldown": 1},
        {"name": "warmup", "then": {"name": "reduce_on_plateau", "factor": 0.5, "patience": 1}},
        {"name": "cosine", "epochs": 8},
    ],
)
def test_state_round_trip_through_json_continues_identically(section):
    values = [1.0, 0.8, 0.8, 0.81, 0.9, 0.7, 0.7, 0.7]
    full = make(1.0, **section)
    full_rates = feed(full, values)

    first = make(1.0, **section)
    feed(first, values[:4])
    saved = json.loads(json.dumps(first.state_dict(), allow_nan=False))
    second = make(1.0, **section)
    second.load_state_dict(saved)
    rates = []
    for epoch, v in enumerate(values[4:], start=4):
        second.observe(epoch, {"val_loss": v})
        rates.append(second.lr(epoch + 1, 0))
    assert rates == full_rates[4:]
    assert second.state_dict() == full.state_dict()


def test_load_state_dict_rejects_foreign_state():
    with pytest.raises(CheckpointError):
        make(1.0, name="constant").load_state_dict({"lr": 0.1})
    with pytest.raises(CheckpointError, match="expected"):
        make(1.0, name="reduce_on_plateau").load_state_dict({"lr": 0.1})


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("step", "step_size", 0),
        ("step", "gamma", -1.0),
        ("exponential", "gamma", 0.0),
        ("cosine", "epochs", 0),
        ("warmup", "warmup_steps", 0),
        ("reduce_on_plateau", "mode", "up"),
        ("reduce_on_plateau", "factor", 1.0),
        ("reduce_on_plateau", "patience", -1),
        ("constant", "gamma", 0.5),
    ],
)
def test_bad_config_values(name, key, value):
    section = {"name": name, key: value}
    if name == "cosine" and key != "epochs":
        section["epochs"] = 5
    with pytest.raises(ValidationError, match=key):
        schedules.get(name).Config(**section)
    with pytest.raises(ConfigError, match=f"schedule.{key}"):
        build_schedule(section, 0.1)


def test_unknown_schedule_and_bad_base_lr():
    with pytest.raises(ConfigError, match="did you mean 'cosine'"):
        make(0.1, name="cosin")
    with pytest.raises(ConfigError, match="must be > 0"):
        make(0.0, name="constant")
