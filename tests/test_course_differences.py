"""The deliberate differences from the course's formulas that the docstrings state hold in
the code (defaults and values), and the docstrings quote the course's forms where they
say they do (issue 18, item 10)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import dlrun
import dlrun.nn.layers.lstm as lstm_module
import dlrun.nn.layers.rnn as rnn_module
import dlrun.optim.optimizers as optimizers_module
from dlrun.nn import activations
from dlrun.nn.layers.activation import LeakyReLU
from dlrun.nn.layers.lstm import LSTM
from dlrun.nn.layers.rnn import RNN
from dlrun.nn.losses import Quadratic
from dlrun.optim.optimizers import AdaDelta, AdaGrad, Adam, AdaMax, Nadam, RMSProp
from dlrun.optim.regularizers import L2

PACKAGE = Path(dlrun.__file__).parent


def test_rnn_quotes_the_course_and_names_tanh_and_the_bias():
    doc = rnn_module.__doc__
    assert "S_t = sigma(U X_t + W S_{t-1})" in doc and "O_t = softmax(V S_t)" in doc
    assert "tanh by default" in doc and "bias b" in doc
    layer = RNN(RNN.Config(units=2))
    assert layer.config.activation == "tanh"  # the stated default, not the course's sigma
    layer.build((3, 2), np.random.default_rng(0), np.float64)
    assert set(layer.params) == {"U", "W", "b"}  # the bias the course's state lacks
    assert "course does not use" in doc  # truncated BPTT is dlrun's option


def test_no_course_bptt_truncate_and_no_lstm_claimed_exactly_as_the_course():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        assert "bptt_truncate" not in text, path
        assert not re.search(r"exactly as in\s+the\s+course", text), path


def test_lstm_candidate_and_forget_bias_defaults_are_the_stated_ones():
    doc = lstm_module.__doc__
    assert "the course writes sigma" in doc and "forget_bias" in doc
    config = LSTM.Config(units=3)
    assert config.candidate_activation == "tanh" and config.forget_bias == 1.0
    layer = LSTM(config)
    layer.build((4, 2), np.random.default_rng(0), np.float64)
    b = layer.params["b"]
    np.testing.assert_array_equal(b[:3], 1.0)  # the forget block starts at 1
    np.testing.assert_array_equal(b[3:], 0.0)


def test_sign_of_zero_is_plus_one():
    sign = activations.get("sign")
    np.testing.assert_array_equal(sign(np.array([-0.5, 0.0, 0.5])), [-1.0, 1.0, 1.0])


def test_the_half_in_the_quadratic_cost_and_the_l2_penalty():
    o, t = np.array([[0.0, 0.0]]), np.array([[1.0, 3.0]])
    cost, grad = Quadratic().value_and_grad(o, t)
    assert cost == pytest.approx(0.5 * (1 + 9))
    np.testing.assert_allclose(grad, o - t)  # the 1/2 makes dC/do = o - t
    reg = L2(L2.Config(name="l2", alpha=0.1))
    w = np.array([1.0, -2.0])
    assert reg.penalty([w]) == pytest.approx(0.1 * 0.5 * 5)


def test_leaky_relu_slope_is_one_over_the_courses_a():
    assert LeakyReLU.Config().slope == 0.01
    assert LeakyReLU.Config(a=20).slope == pytest.approx(1 / 20)


@pytest.mark.parametrize(
    "cls, eps",
    [
        (AdaGrad, 1e-7),
        (AdaDelta, 1e-6),
        (RMSProp, 1e-8),
        (Adam, 1e-8),
        (AdaMax, 1e-8),
        (Nadam, 1e-8),
    ],
)
def test_eps_defaults_are_the_documented_ones(cls, eps):
    assert cls.Config().eps == eps
    stated = optimizers_module.__doc__.split("The eps defaults")[1].split(".\n")[0]
    # the first value after the name: "RMSProp, Adam, AdaMax and Nadam 1e-8" gives each 1e-8
    value = re.search(rf"{cls.__name__}\b[^0-9]*?(\de-\d)", stated)
    assert value is not None and float(value.group(1)) == eps
