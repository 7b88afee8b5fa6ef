"""The dataset contract: a registered class turns its config and a seeded
random stream into train / val / test arrays.

    @datasets.register("moons")
    class Moons(Dataset):
        '''Two interleaving half circles (2-D, 2 classes).'''
        class Config(DataConfig):
            n: int = 1000
        def load(self, rng) -> Splits: ...

Inputs ``x`` have shape ``(N, *input_shape)`` (float32); classification targets
``y`` are integer labels ``(N,)``, regression targets are floats ``(N, k)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from dlrun.config.settings import Settings
from dlrun.kernels.data import gather_rows

Task = Literal["classification", "regression"]


class DataConfig(Settings):
    """Settings every dataset has."""

    name: str
    val_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="share of train held out")
    test_fraction: float = Field(0.2, ge=0.0, lt=1.0, description="share held out for test")

    @model_validator(mode="after")
    def _leave_a_training_set(self) -> DataConfig:
        test = self.test_fraction or 0.0
        if self.val_fraction + test >= 1.0:
            raise ValueError(
                f"val_fraction + test_fraction must be < 1 to leave a training set "
                f"(given {self.val_fraction} + {test})"
            )
        return self


@dataclass
class Split:
    """Inputs and targets of one split.

    ``x`` may be stored compactly (image pixels as uint8); the network sees
    ``x * scale + offset`` in its own dtype, computed one batch at a time by
    :meth:`take`, so a 60,000-image training set costs 47 MB instead of 188 MB.
    """

    x: np.ndarray
    y: np.ndarray
    scale: float = 1.0
    offset: float = 0.0

    def __len__(self) -> int:
        return len(self.x)

    def take(self, idx: np.ndarray | slice, dtype: Any = np.float32) -> np.ndarray:
        """Inputs ``x[idx] * scale + offset`` as a new array of ``dtype``."""
        if isinstance(idx, np.ndarray) and self.x.flags.c_contiguous and len(self.x):
            rows = np.asarray(self.x).reshape(len(self.x), -1)
            t = np.dtype(dtype).type
            out = np.empty((len(idx), rows.shape[1]), dtype=dtype)
            gather_rows(
                rows, idx, t(self.scale), t(self.offset),
                self.scale != 1.0, self.offset != 0.0, out,
            )  # fmt: skip
            return out.reshape(len(idx), *self.x.shape[1:])
        x = np.array(self.x[idx], dtype=dtype)
        if self.scale != 1.0:
            x *= x.dtype.type(self.scale)
        if self.offset != 0.0:
            x += x.dtype.type(self.offset)
        return x

    def inputs(self, dtype: Any = np.float32) -> np.ndarray:
        """All inputs, as the network sees them."""
        return self.take(slice(None), dtype)


@dataclass
class Splits:
    """A dataset's splits. ``source`` is the folder (or file) a file dataset read,
    as an absolute path; None for generated data."""

    train: Split
    val: Split | None
    test: Split | None
    task: Task
    n_classes: int | None = None
    class_names: list[str] = field(default_factory=list)
    source: str | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.x.shape[1:])

    def for_figures(self, rows: int = 2000, budget: int = 256 * 1024) -> Splits:
        """These splits with the training inputs cut to their first ``rows`` (a copy), at
        most ``budget`` bytes of inputs but never fewer than 64 rows, and no validation
        split: all that a run's figures draw (2-D points for a decision boundary, a few
        images for the augmentation figure), so that the full training set can be freed
        before plotting."""
        train = self.train
        row_bytes = max(train.x[:1].nbytes, 1)
        rows = min(rows, max(64, budget // row_bytes))
        if len(train) > rows:
            x, y = np.array(train.x[:rows]), np.array(train.y[:rows])
            train = Split(x, y, train.scale, train.offset)
        return replace(self, train=train, val=None)


class Dataset:
    """Base class of every dataset."""

    Config: ClassVar[type[DataConfig]] = DataConfig

    def __init__(self, config: DataConfig, root: Path | None = None) -> None:
        self.config = config
        #: project root (where ``datasets/`` lives); file datasets look there
        self.root = root

    def load(self, rng: np.random.Generator) -> Splits:
        raise NotImplementedError

    def reference_mse(self) -> dict[str, float]:
        """Mean squared errors per target value that the data's definition fixes, for
        learning-curve figures to draw beside the loss: ``baseline`` (always predicting the
        targets' mean: their variance) and ``noise_floor`` (predicting the noiseless signal
        exactly: the variance of the noise on the targets). {} where the data fixes none."""
        return {}


def split_arrays(
    x: np.ndarray,
    y: np.ndarray,
    rng: np.random.Generator,
    val_fraction: float,
    test_fraction: float,
    task: Task,
    n_classes: int | None = None,
    class_names: list[str] | None = None,
) -> Splits:
    """Shuffle once with ``rng`` and cut into train / val / test."""
    n = len(x)
    order = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    test, val, train = np.split(order, [n_test, n_test + n_val])

    def part(idx: np.ndarray) -> Split | None:
        return Split(x[idx], y[idx]) if len(idx) else None

    return Splits(
        train=Split(x[train], y[train]),
        val=part(val),
        test=part(test),
        task=task,
        n_classes=n_classes,
        class_names=class_names or [],
    )
