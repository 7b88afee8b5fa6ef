"""Synthetic datasets of the course, generated from the run's seed.

Truth tables (``xor``, ``and``, ``or``) have four points; with ``repeat`` they
are repeated so that an epoch holds several updates. They are not split:
train, val and test are the same four points (what matters is whether the
model can represent the table at all).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from dlrun.config.registry import datasets
from dlrun.data.base import DataConfig, Dataset, Split, Splits, split_arrays

_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)


class TableConfig(DataConfig):
    repeat: int = Field(
        1, ge=1, le=1_000_000, description="copies of the 4 rows in the training set"
    )
    signed: bool = Field(False, description="inputs in {-1, +1} instead of {0, 1}")


def _table(config: TableConfig, labels: list[int]) -> Splits:
    x = _CORNERS * 2 - 1 if config.signed else _CORNERS.copy()
    y = np.array(labels, dtype=np.int64)
    train = Split(np.tile(x, (config.repeat, 1)), np.tile(y, config.repeat))
    return Splits(train, Split(x, y), Split(x, y), "classification", 2, ["0", "1"])


@datasets.register("xor")
class Xor(Dataset):
    """XOR truth table: 4 points, 2 classes, not linearly separable."""

    Config = TableConfig

    def load(self, rng: np.random.Generator) -> Splits:
        return _table(self.config, [0, 1, 1, 0])


@datasets.register("and")
class And(Dataset):
    """AND truth table: 4 points, linearly separable."""

    Config = TableConfig

    def load(self, rng: np.random.Generator) -> Splits:
        return _table(self.config, [0, 0, 0, 1])


@datasets.register("or")
class Or(Dataset):
    """OR truth table: 4 points, linearly separable."""

    Config = TableConfig

    def load(self, rng: np.random.Generator) -> Splits:
        return _table(self.config, [0, 1, 1, 1])


class CloudConfig(DataConfig):
    n: int = Field(1000, ge=4, description="number of points")
    noise: float = Field(0.1, ge=0, description="standard deviation of added gaussian noise")


def _finish(
    x: np.ndarray, y: np.ndarray, rng: np.random.Generator, c: DataConfig, k: int
) -> Splits:
    names = [str(i) for i in range(k)]
    return split_arrays(
        x.astype(np.float32),
        y.astype(np.int64),
        rng,
        c.val_fraction,
        c.test_fraction,
        "classification",
        k,
        names,
    )


@datasets.register("xor_noisy")
class XorNoisy(Dataset):
    """Noisy XOR: gaussian clouds around the 4 corners of the square, labelled by XOR."""

    class Config(CloudConfig):
        noise: float = Field(0.15, ge=0)

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        corner = rng.integers(0, 4, size=c.n)
        x = _CORNERS[corner] * 2 - 1 + rng.normal(0, c.noise, size=(c.n, 2))
        y = np.array([0, 1, 1, 0])[corner]
        return _finish(x, y, rng, c, 2)


@datasets.register("moons")
class Moons(Dataset):
    """Two interleaving half circles in 2-D, 2 classes."""

    Config = CloudConfig

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        y = rng.integers(0, 2, size=c.n)
        angle = rng.uniform(0, np.pi, size=c.n)
        x = np.where(
            y[:, None] == 0,
            np.stack([np.cos(angle), np.sin(angle)], 1),
            np.stack([1 - np.cos(angle), 0.5 - np.sin(angle)], 1),
        )
        x = x + rng.normal(0, c.noise, size=x.shape)
        return _finish(x - [0.5, 0.25], y, rng, c, 2)


@datasets.register("circles")
class Circles(Dataset):
    """A small circle inside a large one in 2-D, 2 classes."""

    class Config(CloudConfig):
        factor: float = Field(0.5, gt=0, lt=1, description="inner radius / outer radius")

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        y = rng.integers(0, 2, size=c.n)
        angle = rng.uniform(0, 2 * np.pi, size=c.n)
        radius = np.where(y == 1, c.factor, 1.0)
        x = np.stack([np.cos(angle), np.sin(angle)], 1) * radius[:, None]
        return _finish(x + rng.normal(0, c.noise, size=x.shape), y, rng, c, 2)


@datasets.register("spirals")
class Spirals(Dataset):
    """k interleaved spiral arms in 2-D, k classes."""

    class Config(CloudConfig):
        classes: int = Field(2, ge=2, description="number of arms (classes)")
        turns: float = Field(1.0, gt=0, description="turns of each arm")
        noise: float = Field(0.05, ge=0)

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        y = rng.integers(0, c.classes, size=c.n)
        r = rng.uniform(0.05, 1.0, size=c.n)
        theta = r * c.turns * 2 * np.pi + y * 2 * np.pi / c.classes
        x = np.stack([r * np.cos(theta), r * np.sin(theta)], 1)
        return _finish(x + rng.normal(0, c.noise, size=x.shape), y, rng, c, c.classes)


@datasets.register("blobs")
class Blobs(Dataset):
    """Gaussian blobs around random centres, one class per blob."""

    class Config(CloudConfig):
        classes: int = Field(3, ge=2, description="number of blobs (classes)")
        features: int = Field(2, ge=1, description="input dimension")
        spread: float = Field(1.0, gt=0, description="standard deviation of each blob")
        noise: float = Field(0.0, ge=0)

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        centres = rng.uniform(-5, 5, size=(c.classes, c.features))
        y = rng.integers(0, c.classes, size=c.n)
        x = centres[y] + rng.normal(0, c.spread, size=(c.n, c.features))
        return _finish(
            x + rng.normal(0, c.noise, size=x.shape) if c.noise else x, y, rng, c, c.classes
        )


@datasets.register("sine_regression")
class SineRegression(Dataset):
    """Regression: t = sin(x) + noise for x uniform in [-pi, pi] (use the quadratic cost)."""

    class Config(CloudConfig):
        periods: float = Field(1.0, gt=0, description="periods of the sine over the input range")

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        x = rng.uniform(-np.pi, np.pi, size=(c.n, 1))
        t = np.sin(c.periods * x) + rng.normal(0, c.noise, size=x.shape)
        return split_arrays(
            x.astype(np.float32),
            t.astype(np.float32),
            rng,
            c.val_fraction,
            c.test_fraction,
            "regression",
        )

    def reference_mse(self) -> dict[str, float]:
        """noise_floor: Var(noise) = noise^2; baseline: sin(p x) over the symmetric range
        has mean 0 and E[sin^2(p x)] = 1/2 - sin(2 pi p) / (4 pi p), plus the noise."""
        c = self.config
        p = c.periods
        spread = 0.5 - np.sin(2 * np.pi * p) / (4 * np.pi * p)
        return {"baseline": float(spread + c.noise**2), "noise_floor": c.noise**2}
