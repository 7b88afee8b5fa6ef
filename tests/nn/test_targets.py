"""The network's output is checked against the dataset's targets and the loss when the
network is built, before any kernel runs."""

import numpy as np
import pytest

from dlrun.config.resolve import resolve
from dlrun.errors import BuildError
from dlrun.nn.network import Network
from dlrun.nn.targets import check_output
from tests.conftest import small_config


def net_of(layers, loss="cross_entropy", input_shape=(2,)):
    cfg = resolve(small_config(model={"type": "sequential", "layers": layers}, loss=loss))
    net = Network.from_config(cfg)
    net.build(input_shape, np.random.default_rng(0), np.float64)
    return net


DENSE3 = [{"type": "dense", "units": 3}, {"type": "softmax"}]
SEQ = [{"type": "rnn", "units": 4, "return_sequences": True}, {"type": "dense", "units": 1}]


@pytest.mark.parametrize(
    "layers, loss, shape, task, classes, target, message",
    [
        (
            DENSE3,
            "cross_entropy",
            (2,),
            "classification",
            2,
            (),
            "3 output units for a dataset of 2",
        ),
        (
            [{"type": "dense", "units": 1}, {"type": "sigmoid"}],
            "binary_cross_entropy",
            (2,),
            "classification",
            3,
            (),
            "needs one output unit and two classes",
        ),
        (DENSE3, "cross_entropy", (2,), "classification", 3, (5,), "labels of shape (5,)"),
        (SEQ, "quadratic", (5, 2), "regression", None, (1,), "target has shape (1,)"),
        (
            [{"type": "rnn", "units": 4}, {"type": "dense", "units": 1}],
            "quadratic",
            (5, 2),
            "regression",
            None,
            (5, 1),
            "return_sequences: true",
        ),
        (
            [{"type": "dense", "units": 2}],
            "quadratic",
            (2,),
            "regression",
            None,
            (1,),
            "target has shape (1,)",
        ),
    ],
)
def test_a_mismatched_output_is_a_build_error_naming_both_shapes(
    layers, loss, shape, task, classes, target, message
):
    net = net_of(layers, loss, shape)
    with pytest.raises(BuildError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_output(net, task, classes, target)


@pytest.mark.parametrize(
    "layers, loss, shape, task, classes, target",
    [
        (DENSE3, "cross_entropy", (2,), "classification", 3, ()),
        (
            [{"type": "dense", "units": 1}, {"type": "sign"}],
            "quadratic",
            (2,),
            "classification",
            2,
            (),
        ),
        (
            [{"type": "dense", "units": 2}, {"type": "tanh"}],
            "quadratic",
            (2,),
            "classification",
            2,
            (),
        ),
        (
            [{"type": "rnn", "units": 4, "return_sequences": True}, *DENSE3],
            "cross_entropy",
            (5, 2),
            "classification",
            3,
            (5,),
        ),
        (SEQ, "quadratic", (5, 2), "regression", None, (5, 1)),
    ],
)
def test_matching_outputs_pass(layers, loss, shape, task, classes, target):
    check_output(net_of(layers, loss, shape), task, classes, target)


def test_a_mismatched_course_config_stops_before_training_with_exit_2(tmp_path):
    from typer.testing import CliRunner

    from dlrun.cli import app

    runs = tmp_path / "runs"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "configs/quickstart.yaml",
            "--set",
            "model.layers[2].units=2",
            "--runs-dir",
            str(runs),
        ],
    )
    assert result.exit_code == 2
    assert "2 output units for a dataset of 3 classes" in result.output
    assert "Traceback" not in result.output
    assert not runs.exists()  # nothing was created: the check runs before the run directory
