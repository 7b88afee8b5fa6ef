"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# wide, plain consoles so that CLI output (rich tables) is not wrapped in the tests
os.environ["COLUMNS"] = "200"
# every product on NumPy's OpenBLAS, measured nothing: results the same on every machine
# (tests/kernels/test_blas_choice.py tests the per-shape choice, and MKL, explicitly)
os.environ.setdefault("DLRUN_BLAS", "openblas")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture
def runs_dir(tmp_path: Path) -> Path:
    return tmp_path / "runs"


def small_config(**changes):
    """A tiny classification run that trains in well under a second."""
    cfg = {
        "seed": 3,
        "data": {"name": "moons", "n": 200, "noise": 0.1},
        "model": {
            "type": "sequential",
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 2},
                {"type": "softmax"},
            ],
        },
        "loss": "cross_entropy",
        "optimizer": {"name": "gd", "lr": 0.3},
        "train": {"epochs": 3, "batch_size": 16},
    }
    for key, value in changes.items():
        cfg[key] = value
    return cfg


# a small regression setting (quadratic cost on t = sin(x)), for small_config(**REGRESSION)
REGRESSION = dict(
    data={"name": "sine_regression", "n": 200},
    model={
        "type": "sequential",
        "layers": [
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 1},
        ],
    },
    loss="quadratic",
)
