"""Full-size accuracy targets of the shipped image and sequence configs (minutes each).

python -m pytest -m slow tests/test_targets_slow.py
"""

from pathlib import Path

import pytest

from dlrun.training.train import train
from tests.conftest import CONFIGS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not Path("/usr/share/datasets/fashion-mnist").is_dir(),
        reason="needs Debian's dataset-fashion-mnist",
    ),
]


@pytest.mark.parametrize(
    "config,target",
    [("mlp_fashion_mnist", 0.87), ("cnn_fashion_mnist", 0.91), ("lstm_fashion_rows", 0.87)],
)
def test_fashion_mnist_targets(runs_dir, config, target):
    result = train(CONFIGS / f"{config}.yaml", runs_dir=runs_dir)
    assert result.summary["final"]["test_accuracy"] >= target
