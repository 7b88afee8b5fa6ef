"""Data augmentation: new training examples from old ones, drawn from the run's random stream.

A small random affine transform per image (rotation, zoom, shift, optional
mirror) plus optional Gaussian noise. The label does not change, so only
transforms that keep the class are allowed: that is why the rotation is
limited (default at most 10 degrees either way): rotate a 6 far enough and it
becomes a 9, and the network is taught the wrong label. Mirroring is off by default for the
same reason: digits and letters are not symmetric (a mirrored 2 is no 2),
though it is fine for many photographs and for clothing.

``noise`` alone also works on vector inputs (N, F): noise injection, one of
the course's regularizers: x + e, e ~ N(0, noise^2).

Two ways to use it (``train.augment.copies``):

- on the fly (``copies: 0``, the default): every training batch is transformed anew,
  so the network never sees the same example twice;
- offline (``copies: k``): the course's dataset augmentation. Before training, k
  transformed copies of every training example are made once and added to the
  training set (N examples become (k + 1) N); the epochs then go over that fixed,
  larger set (:func:`augmented_copies`).

Everything random comes from the generator passed in, so a resumed run that
restores that generator repeats the same augmentations exactly.

    batch (N, C, H, W) -> for each image n, draw
        angle_n ~ U(-rotation, rotation)           degrees, counterclockwise on screen
        s_n     ~ U(scale[0], scale[1])            zoom about the centre
        dx_n, dy_n ~ U(-t_x, t_x), U(-t_y, t_y)     pixels (t = translate, or translate * W, H)
        flip_n  ~ Bernoulli(1/2) if hflip
    and resample (bilinear, ``fill`` outside):  out_n = T(dx, dy) . F(flip) . R(angle) . S(s) . x_n
    then add N(0, noise^2) to every value.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, model_validator

from dlrun.config.settings import Settings
from dlrun.data.base import Split
from dlrun.errors import ConfigError
from dlrun.kernels.augment import affine_bilinear


class AugmentConfig(Settings):
    """Random transforms applied to each training batch (never to val/test)."""

    rotation: float = Field(
        10.0,
        ge=0.0,
        le=180.0,
        description="maximum rotation in degrees, either way; keep it small: "
        "a 6 rotated far enough is a 9",
    )
    scale: tuple[float, float] = Field(
        (0.9, 1.1), description="range of the zoom factor; (1, 1) for none"
    )
    translate: float = Field(0.1, ge=0.0, description="maximum shift, either way, per axis")
    translate_units: Literal["fraction", "pixels"] = Field(
        "fraction", description="translate as a fraction of the image size, or in pixels"
    )
    hflip: bool = Field(False, description="mirror left-right half of the images")
    noise: float = Field(0.0, ge=0.0, description="std of the Gaussian noise added")
    fill: float = Field(0.0, description="value of pixels that come from outside the image")
    copies: int = Field(
        0,
        ge=0,
        description="0: transform every batch anew (on the fly); k > 0: make k transformed "
        "copies of every training example once, before training, and add them to the "
        "training set (offline dataset augmentation)",
    )

    @model_validator(mode="after")
    def _check_scale(self) -> AugmentConfig:
        low, high = self.scale
        if not 0.0 < low <= high:
            raise ValueError(
                f"scale must be [low, high] with 0 < low <= high, got {list(self.scale)}"
            )
        return self

    @property
    def geometric(self) -> bool:
        """True if some setting moves pixels (rotation, zoom, shift or flip)."""
        return bool(self.rotation or self.scale != (1.0, 1.0) or self.translate or self.hflip)

    @property
    def identity(self) -> bool:
        """True if :func:`augment` would return its input unchanged."""
        return not self.geometric and not self.noise


@dataclass
class Transforms:
    """One affine transform per image: what :func:`sample_transforms` draws."""

    angle: np.ndarray  # (N,) degrees, counterclockwise on screen
    scale: np.ndarray  # (N,) zoom factor
    shift: np.ndarray  # (N, 2) pixels (dx right, dy down)
    flip: np.ndarray  # (N,) bool, mirror left-right


def sample_transforms(
    n: int, height: int, width: int, rng: np.random.Generator, config: AugmentConfig
) -> Transforms:
    """Draw ``n`` transforms from ``rng`` (always in the same order: angle, scale, shift, flip)."""
    angle = rng.uniform(-config.rotation, config.rotation, size=n)
    scale = rng.uniform(config.scale[0], config.scale[1], size=n)
    t = config.translate
    tx, ty = (t * width, t * height) if config.translate_units == "fraction" else (t, t)
    shift = np.stack([rng.uniform(-tx, tx, size=n), rng.uniform(-ty, ty, size=n)], axis=1)
    flip = rng.random(n) < 0.5 if config.hflip else np.zeros(n, dtype=bool)
    return Transforms(angle=angle, scale=scale, shift=shift, flip=flip)


def inverse_maps(t: Transforms, height: int, width: int) -> np.ndarray:
    """(N, 6) inverse maps (a, b, tx, c, d, ty) for :func:`affine_bilinear`.

    In pixel coordinates about the centre (u = column - cx, v = row - cy, rows
    pointing down), the forward map is ``p_out = F R S p_in + shift`` with
    ``R = [[cos, sin], [-sin, cos]]`` (counterclockwise on screen), ``S = s I``
    and ``F = diag(-1, 1)`` when mirrored. Its inverse is
    ``p_in = (1/s) R^T F (p_out - shift)``.
    """
    theta = np.deg2rad(t.angle)
    cos, sin = np.cos(theta), np.sin(theta)
    f = np.where(t.flip, -1.0, 1.0)
    # (1/s) R^T F = (1/s) [[cos * f, -sin], [sin * f, cos]]
    a, b = cos * f / t.scale, -sin / t.scale
    c, d = sin * f / t.scale, cos / t.scale
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    ox, oy = cx + t.shift[:, 0], cy + t.shift[:, 1]  # output point that comes from the centre
    tx = cx - (a * ox + b * oy)
    ty = cy - (c * ox + d * oy)
    return np.stack([a, b, tx, c, d, ty], axis=1).astype(np.float64)


def transform_images(x: np.ndarray, t: Transforms, fill: float = 0.0) -> np.ndarray:
    """Apply transform ``n`` of ``t`` to image ``x[n]``; x (N, C, H, W) -> new array."""
    x = np.ascontiguousarray(x)
    out = np.empty_like(x)
    affine_bilinear(x, inverse_maps(t, x.shape[2], x.shape[3]), float(fill), out)
    return out


def augment(x: np.ndarray, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A randomly transformed copy of the batch ``x``; ``x`` itself is not changed.

    x: (N, C, H, W) images, or (N, F) vectors (then only ``noise`` applies:
    the default geometric settings are skipped, other non-zero ones are an error).
    Same dtype and shape out. Driven only by ``rng``.
    """
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"augment needs float inputs, got {x.dtype}")
    images = x.ndim == 4
    if not images and (moving := _moving_settings(config)):
        raise ConfigError(
            f"augment.{moving[0]} moves pixels and needs images (N, C, H, W); the inputs "
            f"have shape {x.shape}; for vectors use only augment.noise"
        )
    if images and config.geometric:
        transforms = sample_transforms(len(x), x.shape[2], x.shape[3], rng, config)
        out = transform_images(x, transforms, config.fill)
    else:
        out = x.copy()
    if config.noise:
        out += rng.standard_normal(out.shape, dtype=out.dtype) * out.dtype.type(config.noise)
    return out


#: Examples transformed at a time when the copies are made (bounds the temporary arrays).
COPY_CHUNK = 4096


def augmented_copies(
    split: Split, rng: np.random.Generator, config: AugmentConfig, dtype: Any = np.float32
) -> Split:
    """Offline dataset augmentation: ``split`` followed by ``config.copies`` transformed
    copies of it, as one new split of ``dtype`` inputs (scale 1, offset 0).

    x (N, ...) -> (N (k + 1), ...): rows 0..N-1 are the originals (as the network sees
    them, ``split.take``), rows jN..(j + 1)N - 1 copy j of every example, each drawn
    once from ``rng`` with :func:`augment`; y is repeated k + 1 times. ``split`` is not
    changed. With ``copies: 0`` the split comes back as it is.
    """
    k = config.copies
    if k == 0:
        return split
    n = len(split)
    original = split.take(slice(None), dtype)
    x = np.empty((n * (k + 1), *original.shape[1:]), dtype=original.dtype)
    x[:n] = original
    for j in range(1, k + 1):
        for i in range(0, n, COPY_CHUNK):
            chunk = original[i : i + COPY_CHUNK]
            x[j * n + i : j * n + i + len(chunk)] = augment(chunk, rng, config)
    y = np.concatenate([split.y] * (k + 1))
    return Split(x, y)


def _moving_settings(config: AugmentConfig) -> list[str]:
    """Geometric settings changed from their defaults to something that moves pixels.

    (Compared with the defaults, not with the keys the user typed: a resolved
    config written with every default filled in must load the same way.)
    """
    fields = AugmentConfig.model_fields
    return [
        key
        for key in ("rotation", "scale", "translate", "hflip")
        if getattr(config, key) != fields[key].default
        and getattr(config, key) not in (0.0, (1.0, 1.0), False)
    ]


def augmentation_figure(
    x: np.ndarray, rng: np.random.Generator, config: AugmentConfig, path: Path, n: int = 8
) -> Path:
    """Write a PNG of ``n`` examples: originals on top, augmented copies below.

    Uses ``rng`` (give it a generator of its own, not the training stream).
    Images (N, C, H, W) are drawn as pictures (channel 0, or RGB when C = 3);
    vectors (N, F) as two lines per example.
    """
    from matplotlib.figure import Figure

    x = x[:n]
    y = augment(x, rng, config)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    k = len(x)
    if x.ndim == 4:
        fig = Figure(figsize=(1.4 * k, 3.0))
        axes = fig.subplots(2, k, squeeze=False)
        for row, batch, label in ((0, x, "original"), (1, y, "augmented")):
            for i in range(k):
                ax = axes[row, i]
                if batch.shape[1] == 3:
                    ax.imshow(np.clip(batch[i].transpose(1, 2, 0), 0.0, 1.0))
                else:
                    ax.imshow(batch[i, 0], cmap="gray", vmin=x.min(), vmax=x.max())
                ax.set_xticks([])
                ax.set_yticks([])
            axes[row, 0].set_ylabel(label)
    else:
        flat_x, flat_y = x.reshape(k, -1), y.reshape(k, -1)
        fig = Figure(figsize=(2.2 * k, 2.2))
        axes = fig.subplots(1, k, squeeze=False)
        for i in range(k):
            axes[0, i].plot(flat_x[i], label="original")
            axes[0, i].plot(flat_y[i], label="augmented", alpha=0.7)
        axes[0, 0].legend(fontsize="small")
    fig.suptitle(f"augmentation: {_describe(config)}", fontsize="small")
    fig.savefig(path, dpi=100)
    return path


def _describe(config: AugmentConfig) -> str:
    parts = []
    if config.rotation:
        parts.append(f"rotation ±{config.rotation:g}°")
    if config.scale != (1.0, 1.0):
        parts.append(f"scale {config.scale[0]:g}–{config.scale[1]:g}")
    if config.translate:
        unit = "" if config.translate_units == "pixels" else " of size"
        parts.append(f"shift ±{config.translate:g}{unit}")
    if config.hflip:
        parts.append("mirror")
    if config.noise:
        parts.append(f"noise σ={config.noise:g}")
    if config.copies:
        parts.append(f"{config.copies} offline cop{'y' if config.copies == 1 else 'ies'} each")
    return ", ".join(parts) or "none"


__all__ = [
    "AugmentConfig",
    "Transforms",
    "augment",
    "augmentation_figure",
    "augmented_copies",
    "inverse_maps",
    "sample_transforms",
    "transform_images",
]
