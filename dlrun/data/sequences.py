"""Sequence datasets for the recurrent layers: x has shape (N, T, F).

adding       the adding problem (long-range memory, regression)
sine         next-value prediction on noisy sine waves (regression)
text         next-character prediction on a UTF-8 text file (classification per step)
image_rows   an image dataset read row by row: (N, 1, 28, 28) -> (N, 28, 28)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from dlrun.config.registry import datasets
from dlrun.data.base import DataConfig, Dataset, Split, Splits, split_arrays
from dlrun.errors import ConfigError, DataError


@datasets.register("adding")
class Adding(Dataset):
    """Adding problem: sum the two marked numbers of a long sequence (regression, T x 2)."""

    class Config(DataConfig):
        n: int = Field(2000, ge=2, description="number of sequences")
        length: int = Field(50, ge=2, description="time steps T per sequence")

    def load(self, rng: np.random.Generator) -> Splits:
        """x[:, t] = (value in [0, 1], marker 0/1); one marker in the first half of the
        sequence and one in the second (Hochreiter & Schmidhuber 1997, Le et al. 2015),
        so the first marked number must be remembered for ~T/2 steps;
        y = the sum of the two marked values, shape (N, 1)."""
        c = self.config
        n, T = c.n, c.length
        half = T // 2
        x = np.zeros((n, T, 2), dtype=np.float32)
        x[:, :, 0] = rng.uniform(0.0, 1.0, size=(n, T))
        rows = np.arange(n)
        first = rng.integers(0, half, size=n)
        second = rng.integers(half, T, size=n)
        x[rows, first, 1] = 1.0
        x[rows, second, 1] = 1.0
        y = (x[rows, first, 0] + x[rows, second, 0]).reshape(n, 1)
        return split_arrays(x, y, rng, c.val_fraction, c.test_fraction, "regression")

    def reference_mse(self) -> dict[str, float]:
        """baseline: y = u1 + u2 with u1, u2 independent and uniform on [0, 1], so always
        predicting the mean E[y] = 1 costs Var(y) = 2 * 1/12 = 1/6 (the quadratic cost
        1/2 (t - o)^2 of it is 1/12 = 0.083); there is no noise (floor 0)."""
        return {"baseline": 2 / 12}


@datasets.register("sine")
class Sine(Dataset):
    """Noisy sine waves: predict the next value (many-to-many, or the one after the last)."""

    class Config(DataConfig):
        n: int = Field(1000, ge=2, description="number of sequences")
        length: int = Field(50, ge=1, description="time steps T per sequence")
        period_min: float = Field(10.0, gt=0, description="shortest period, in time steps")
        period_max: float = Field(30.0, gt=0, description="longest period, in time steps")
        noise: float = Field(0.05, ge=0, description="std of the Gaussian noise on each value")
        target: Literal["next_sequence", "next_value"] = Field(
            "next_sequence",
            description="y (N, T, 1) = x shifted by one step, or y (N, 1) = the value after x",
        )

        @model_validator(mode="after")
        def _periods(self) -> Sine.Config:
            if self.period_min > self.period_max:
                raise ValueError(
                    f"period_min={self.period_min} is larger than period_max={self.period_max}"
                )
            return self

    def load(self, rng: np.random.Generator) -> Splits:
        """v_t = sin(2 pi t / period + phase) + noise, t = 0..T, random period and phase per
        sequence; x = v_0..v_{T-1}: (N, T, 1); y = v_1..v_T: (N, T, 1) or v_T: (N, 1)."""
        c = self.config
        period = rng.uniform(c.period_min, c.period_max, size=(c.n, 1))
        phase = rng.uniform(0.0, 2 * np.pi, size=(c.n, 1))
        t = np.arange(c.length + 1)
        v = np.sin(2 * np.pi * t / period + phase) + rng.normal(0.0, c.noise, (c.n, c.length + 1))
        v = v.astype(np.float32)
        x = v[:, :-1, None]
        y = v[:, 1:, None] if c.target == "next_sequence" else v[:, -1:]
        return split_arrays(
            x, np.ascontiguousarray(y), rng, c.val_fraction, c.test_fraction, "regression"
        )

    def reference_mse(self) -> dict[str, float]:
        """noise_floor: Var(noise) = noise^2, what predicting the noiseless wave exactly
        costs (no model does better: the noise of the next value is independent of the
        past); baseline: with a uniform phase, sin has mean 0 and variance 1/2, so always
        predicting 0 costs 1/2 + noise^2."""
        c = self.config
        return {"baseline": 0.5 + c.noise**2, "noise_floor": c.noise**2}


def read_text(path: Path) -> str:
    """The whole file as text; DataError if missing, unreadable, not UTF-8 or empty."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if path.is_absolute():
            raise DataError(f"text file not found: {path}") from None
        raise DataError(
            f"text file not found: {path} (a relative data.path is read from the current "
            f"folder, {Path.cwd()}, or the project folder)",
            hint="run dlrun from the folder the path starts in, or give data.path as an "
            "absolute path",
        ) from None
    except OSError as e:
        raise DataError(f"cannot read text file {path}: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DataError(
            f"text file {path} is not UTF-8: byte {e.start} (0x{raw[e.start]:02x}) cannot be "
            "decoded",
            hint="convert it, e.g. iconv -f latin1 -t utf-8",
        ) from None
    if not text:
        raise DataError(f"text file {path} is empty")
    return text


def one_hot(ids: np.ndarray, size: int) -> np.ndarray:
    """float32 one-hot encoding of integer ids: shape ids.shape + (size,)."""
    out = np.zeros((*ids.shape, size), dtype=np.float32)
    np.put_along_axis(out, ids[..., None], 1.0, axis=-1)
    return out


@datasets.register("text")
class Text(Dataset):
    """Next-character prediction on a UTF-8 text file: x one-hot (N, T, V), y labels (N, T)."""

    class Config(DataConfig):
        path: str = Field(..., description="UTF-8 text file")
        seq_len: int = Field(50, ge=1, description="characters T per sequence")
        step: int | None = Field(
            None, ge=1, description="distance between sequence starts (default: seq_len)"
        )
        max_chars: int | None = Field(None, ge=2, description="use only the first characters")

    def file(self) -> Path:
        path = Path(self.config.path).expanduser()
        if not path.is_absolute() and not path.exists() and self.root is not None:
            if (self.root / path).exists():
                return self.root / path
        return path

    def load(self, rng: np.random.Generator) -> Splits:
        """Every ``step`` characters, x = chars[s : s+T] one-hot and y = chars[s+1 : s+T+1]
        as indices into the vocabulary (the sorted distinct characters = class_names)."""
        c = self.config
        path = self.file()
        text = read_text(path)
        if c.max_chars is not None:
            text = text[: c.max_chars]
        vocab = sorted(set(text))
        T = c.seq_len
        if len(text) < T + 1:
            raise DataError(
                f"text file {path} has {len(text)} characters; data.seq_len={T} needs at "
                f"least {T + 1}"
            )
        index = {ch: i for i, ch in enumerate(vocab)}
        ids = np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text))
        starts = np.arange(0, len(text) - T, c.step or T)
        windows = starts[:, None] + np.arange(T)[None, :]
        x_ids, y = ids[windows], ids[windows + 1]
        if len(starts) < 2:
            raise DataError(
                f"text file {path} gives only {len(starts)} sequence of {T} characters",
                hint="use a longer file or a smaller data.seq_len / data.step",
            )
        splits = split_arrays(
            one_hot(x_ids, len(vocab)),
            y,
            rng,
            c.val_fraction,
            c.test_fraction,
            "classification",
            n_classes=len(vocab),
            class_names=vocab,
        )
        splits.source = str(path.resolve())
        return splits


@datasets.register("image_rows")
class ImageRows(Dataset):
    """An image dataset as sequences of rows: (N, C, H, W) -> (N, H, W * C), classification."""

    class Config(DataConfig):
        base: str = Field("fashion_mnist", description="registered image dataset to read")
        path: str | None = Field(None, description="passed to the base dataset")
        n_train: int | None = Field(None, ge=2, description="passed to the base dataset")
        val_fraction: float = Field(1 / 12, ge=0.0, lt=1.0, description="passed to the base")
        download: bool = Field(True, description="passed to the base dataset")
        test_fraction: float | None = Field(
            None, description="not used: the base dataset's test split is used"
        )

    def base_dataset(self) -> Dataset:
        c = self.config
        cls = datasets.get(c.base, where="data.base")
        if cls is ImageRows:
            raise ConfigError("data.base cannot be image_rows itself")
        fields = cls.Config.model_fields
        given = {"path": c.path, "n_train": c.n_train, "download": c.download}
        settings = {"name": c.base, "val_fraction": c.val_fraction}
        for key, value in given.items():
            if key in fields:
                settings[key] = value
            elif value != type(c).model_fields[key].default:
                raise ConfigError(
                    f"data.{key} is set but the base dataset '{c.base}' has no '{key}' setting"
                )
        return cls(cls.Config(**settings), root=self.root)

    def load(self, rng: np.random.Generator) -> Splits:
        """Each image row is one time step: x[n, t] = row t of image n (all channels)."""
        c = self.config
        splits = self.base_dataset().load(rng)

        def rows(part: Split | None) -> Split | None:
            if part is None:
                return None
            x = part.x
            if x.ndim != 4:
                raise DataError(
                    f"data.base '{c.base}' gives inputs of shape {x.shape[1:]}; image_rows "
                    "needs images (C, H, W)"
                )
            n, ch, h, w = x.shape
            seq = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).reshape(n, h, w * ch)
            return Split(seq, part.y, part.scale, part.offset)

        if splits.task != "classification":
            raise DataError(f"data.base '{c.base}' is not a classification dataset")
        return Splits(
            train=rows(splits.train),
            val=rows(splits.val),
            test=rows(splits.test),
            task=splits.task,
            n_classes=splits.n_classes,
            class_names=list(splits.class_names),
            source=splits.source,
        )
