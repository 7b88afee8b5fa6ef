"""The reference levels a regression dataset reports (baseline, noise floor) match the
data it generates: checked on large samples against NumPy's variance."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.data.base import DataConfig, Dataset
from dlrun.data.sequences import Adding, Sine
from dlrun.data.synthetic import Moons, SineRegression


def targets(dataset: Dataset) -> np.ndarray:
    splits = dataset.load(np.random.default_rng(0))
    return splits.train.y.reshape(-1).astype(np.float64)


def test_adding_baseline_is_the_variance_of_the_sum():
    data = Adding(
        Adding.Config(name="adding", n=40_000, length=10, val_fraction=0, test_fraction=0)
    )
    y = targets(data)
    levels = data.reference_mse()
    assert set(levels) == {"baseline"}  # the sum has no noise: no floor to draw
    assert levels["baseline"] == pytest.approx(1 / 6)
    # predicting the mean: the sample's mean squared error is its variance
    assert np.mean((y - y.mean()) ** 2) == pytest.approx(levels["baseline"], rel=0.03)
    # the quadratic cost 1/2 (t - o)^2 of that prediction is the course's 0.083
    assert 0.5 * levels["baseline"] == pytest.approx(0.0833, abs=5e-5)


@pytest.mark.parametrize("noise", [0.05, 0.3])
def test_sine_levels(noise):
    config = Sine.Config(
        name="sine", n=4000, length=20, noise=noise, val_fraction=0, test_fraction=0
    )
    noisy = targets(Sine(config))
    clean = targets(Sine(config.model_copy(update={"noise": 0.0})))  # same draws, no noise
    levels = Sine(config).reference_mse()
    assert levels["noise_floor"] == pytest.approx(noise**2)
    # predicting the noiseless wave costs the noise's variance
    assert np.mean((noisy - clean) ** 2) == pytest.approx(levels["noise_floor"], rel=0.03)
    # predicting the mean (0) costs the variance of the noisy values
    assert np.mean(noisy**2) == pytest.approx(levels["baseline"], rel=0.03)


@pytest.mark.parametrize("periods", [1.0, 0.3, 1.7])
def test_sine_regression_levels(periods):
    config = SineRegression.Config(
        name="sine_regression", n=200_000, noise=0.1, periods=periods,
        val_fraction=0, test_fraction=0,
    )  # fmt: skip
    noisy = targets(SineRegression(config))
    clean = targets(SineRegression(config.model_copy(update={"noise": 0.0})))
    levels = SineRegression(config).reference_mse()
    assert np.mean((noisy - clean) ** 2) == pytest.approx(levels["noise_floor"], rel=0.02)
    assert np.mean((noisy - noisy.mean()) ** 2) == pytest.approx(levels["baseline"], rel=0.02)


def test_classification_and_the_base_report_nothing():
    assert Moons(Moons.Config(name="moons")).reference_mse() == {}
    assert Dataset(DataConfig(name="x")).reference_mse() == {}
