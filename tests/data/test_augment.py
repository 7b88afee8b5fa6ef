"""Augmentation: the affine kernel against a plain NumPy reference, determinism, noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.data.augment import (
    AugmentConfig,
    Transforms,
    augment,
    augmentation_figure,
    augmented_copies,
    sample_transforms,
    transform_images,
)
from dlrun.data.base import Split
from dlrun.errors import ConfigError

IDENTITY = dict(rotation=0, scale=(1, 1), translate=0, hflip=False, noise=0)


def reference_transform(x: np.ndarray, t: Transforms, fill: float = 0.0) -> np.ndarray:
    """Slow and independent: complex numbers in y-up coordinates, explicit bilinear loops.

    Output pixel (row, col) is the point z = (col - cx - dx) + i * (cy + dy - row);
    undo the mirror (z -> -conj(z)), the rotation (z * e^{-i angle}) and the zoom (z / s),
    then read the input there.
    """
    n, channels, h, w = x.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    out = np.zeros(x.shape, dtype=np.float64)
    for k in range(n):
        turn = np.exp(-1j * np.deg2rad(t.angle[k]))
        for row in range(h):
            for col in range(w):
                z = complex(col - cx - t.shift[k, 0], cy + t.shift[k, 1] - row)
                if t.flip[k]:
                    z = -z.conjugate()
                z = z * turn / t.scale[k]
                src_col, src_row = z.real + cx, cy - z.imag
                c0, r0 = int(np.floor(src_col)), int(np.floor(src_row))
                u, v = src_col - c0, src_row - r0
                for ch in range(channels):
                    total = 0.0
                    for rr, cc, weight in (
                        (r0, c0, (1 - u) * (1 - v)),
                        (r0, c0 + 1, u * (1 - v)),
                        (r0 + 1, c0, (1 - u) * v),
                        (r0 + 1, c0 + 1, u * v),
                    ):
                        inside = 0 <= rr < h and 0 <= cc < w
                        total += weight * (x[k, ch, rr, cc] if inside else fill)
                    out[k, ch, row, col] = total
    return out


def transforms(angle, scale=1.0, shift=(0.0, 0.0), flip=False, n=1) -> Transforms:
    return Transforms(
        angle=np.full(n, float(angle)),
        scale=np.full(n, float(scale)),
        shift=np.tile(np.asarray(shift, dtype=np.float64), (n, 1)),
        flip=np.full(n, flip),
    )


def bar_image(h: int = 9, w: int = 9) -> np.ndarray:
    """A horizontal bar right of the centre, shape (1, 1, h, w) float64."""
    x = np.zeros((1, 1, h, w))
    x[0, 0, h // 2, w // 2 + 1 :] = 1.0
    return x


def test_identity_settings_return_input_exactly() -> None:
    rng = np.random.default_rng(0)
    for x in (rng.random((5, 2, 7, 6), dtype=np.float32), rng.standard_normal((4, 10))):
        out = augment(x, np.random.default_rng(1), AugmentConfig(**IDENTITY))
        assert out is not x and out.dtype == x.dtype
        np.testing.assert_array_equal(out, x)
    assert AugmentConfig(**IDENTITY).identity and not AugmentConfig().identity


def test_identity_transform_through_kernel_is_exact() -> None:
    x = np.random.default_rng(0).random((3, 2, 5, 8), dtype=np.float32)
    np.testing.assert_array_equal(transform_images(x, transforms(0.0, n=3)), x)


def test_rotation_by_90_degrees_is_rot90() -> None:
    """Counterclockwise as displayed, like np.rot90."""
    x = np.random.default_rng(0).random((2, 3, 6, 6))
    for angle, k in ((90, 1), (-90, -1), (180, 2)):
        out = transform_images(x, transforms(angle, n=2))
        np.testing.assert_allclose(out, np.rot90(x, k=k, axes=(2, 3)), atol=1e-9)
    bar = transform_images(bar_image(), transforms(90))[0, 0]
    assert bar[:4, 4].sum() == pytest.approx(4.0) and bar[4, 5:].sum() == pytest.approx(0.0)


@pytest.mark.parametrize(
    "angle,scale,shift,flip",
    [
        (30.0, 1.0, (0.0, 0.0), False),
        (-12.5, 1.2, (1.5, -2.25), False),
        (7.0, 0.8, (0.3, 0.6), True),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_transform_matches_numpy_reference(angle, scale, shift, flip, dtype) -> None:
    x = np.random.default_rng(1).random((2, 2, 9, 11)).astype(dtype)
    t = transforms(angle, scale, shift, flip, n=2)
    out = transform_images(x, t, fill=0.25)
    assert out.dtype == dtype
    expected = reference_transform(x.astype(np.float64), t, fill=0.25)
    np.testing.assert_allclose(out, expected, atol=1e-12 if dtype == np.float64 else 1e-6)


def test_mirror_and_integer_shift() -> None:
    x = np.random.default_rng(2).random((1, 1, 5, 7))
    np.testing.assert_allclose(transform_images(x, transforms(0, flip=True)), x[..., ::-1])
    shifted = transform_images(x, transforms(0, shift=(2.0, -1.0)))
    expected = np.zeros_like(x)
    expected[0, 0, :4, 2:] = x[0, 0, 1:, :5]  # right by 2, up by 1, zeros flow in
    np.testing.assert_allclose(shifted, expected, atol=1e-12)


def test_augment_applies_the_sampled_transforms() -> None:
    x = np.random.default_rng(3).random((6, 1, 8, 8))
    config = AugmentConfig(rotation=25, scale=(0.8, 1.2), translate=2, translate_units="pixels")
    out = augment(x, np.random.default_rng(7), config)
    t = sample_transforms(6, 8, 8, np.random.default_rng(7), config)
    assert np.all(np.abs(t.angle) <= 25) and np.ptp(t.angle) > 0
    assert np.all((t.scale >= 0.8) & (t.scale <= 1.2)) and np.all(np.abs(t.shift) <= 2)
    np.testing.assert_allclose(out, reference_transform(x, t), atol=1e-12)


def test_translate_fraction_scales_with_image_size() -> None:
    t = sample_transforms(2000, 20, 40, np.random.default_rng(0), AugmentConfig(translate=0.1))
    assert 3.9 < np.abs(t.shift[:, 0]).max() <= 4.0 and 1.9 < np.abs(t.shift[:, 1]).max() <= 2.0


def test_hflip_mirrors_about_half() -> None:
    t = sample_transforms(4000, 8, 8, np.random.default_rng(0), AugmentConfig(hflip=True))
    assert 0.45 < t.flip.mean() < 0.55
    assert not sample_transforms(50, 8, 8, np.random.default_rng(0), AugmentConfig()).flip.any()


def test_same_seed_same_output_input_untouched() -> None:
    x = np.random.default_rng(4).random((8, 1, 12, 12), dtype=np.float32)
    before = x.copy()
    config = AugmentConfig(rotation=15, noise=0.05, hflip=True)
    a = augment(x, np.random.default_rng(11), config)
    b = augment(x, np.random.default_rng(11), config)
    c = augment(x, np.random.default_rng(12), config)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_array_equal(x, before)


def test_resumed_stream_repeats_augmentations() -> None:
    """Saving the generator state and restoring it repeats the next batches exactly."""
    x = np.random.default_rng(5).random((4, 1, 10, 10))
    rng = np.random.default_rng(3)
    augment(x, rng, AugmentConfig(noise=0.1))
    saved = rng.bit_generator.state
    first = [augment(x, rng, AugmentConfig(noise=0.1)) for _ in range(2)]
    resumed = np.random.default_rng()
    resumed.bit_generator.state = saved
    again = [augment(x, resumed, AugmentConfig(noise=0.1)) for _ in range(2)]
    for p, q in zip(first, again, strict=True):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_noise_std_as_configured(dtype) -> None:
    x = np.full((400, 250), 0.5, dtype=dtype)
    out = augment(x, np.random.default_rng(0), AugmentConfig(noise=0.2))
    diff = (out - x).astype(np.float64)
    assert out.dtype == dtype
    assert abs(diff.std() - 0.2) < 0.2 * 0.01 and abs(diff.mean()) < 0.002


def test_vectors_get_noise_only() -> None:
    x = np.zeros((2000, 5))
    out = augment(x, np.random.default_rng(0), AugmentConfig(noise=0.1))  # default rotation skipped
    assert abs(out.std() - 0.1) < 0.005
    resolved = AugmentConfig(**AugmentConfig(noise=0.1).model_dump(mode="json"))  # every default
    assert augment(x, np.random.default_rng(0), resolved).shape == x.shape
    with pytest.raises(ConfigError, match="augment.rotation .* needs images"):
        augment(x, np.random.default_rng(0), AugmentConfig(rotation=5, noise=0.1))


def test_bad_settings_rejected() -> None:
    with pytest.raises(ValidationError, match="0 < low <= high"):
        AugmentConfig(scale=(1.2, 0.8))
    with pytest.raises(ValidationError):
        AugmentConfig(rotation=200)
    with pytest.raises(ValidationError):
        AugmentConfig(rotate=10)  # unknown key
    with pytest.raises(TypeError, match="float"):
        augment(np.zeros((2, 3), dtype=np.uint8), np.random.default_rng(0), AugmentConfig())


def test_figure_written(tmp_path: Path) -> None:
    images = np.random.default_rng(0).random((10, 1, 28, 28), dtype=np.float32)
    path = augmentation_figure(
        images, np.random.default_rng(0), AugmentConfig(), tmp_path / "a.png"
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    vectors = np.random.default_rng(0).random((4, 20))
    path = augmentation_figure(
        vectors, np.random.default_rng(0), AugmentConfig(noise=0.1), tmp_path / "plots" / "v.png"
    )
    assert path.stat().st_size > 1000


# --------------------------------------------------------------------------- offline copies
def test_offline_copies_are_the_originals_then_k_augmented_copies():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.integers(0, 2, 50)
    config = AugmentConfig(noise=0.2, copies=3)
    out = augmented_copies(Split(x, y), np.random.default_rng(1), config)
    assert out.x.shape == (200, 3) and out.x.dtype == np.float32
    np.testing.assert_array_equal(out.x[:50], x)
    np.testing.assert_array_equal(out.y, np.tile(y, 4))
    noise = out.x[50:].reshape(3, 50, 3) - x
    assert not np.allclose(noise[0], noise[1])  # each copy drawn anew
    assert noise.std() == pytest.approx(0.2, rel=0.1) and abs(noise.mean()) < 0.03
    # the same generator state gives the same copies (a resumed run draws them again)
    again = augmented_copies(Split(x, y), np.random.default_rng(1), config)
    np.testing.assert_array_equal(again.x, out.x)


def test_offline_copies_read_stored_pixels_as_the_network_sees_them():
    """A split of uint8 pixels with a scale: originals and copies are floats in [0, 1]."""
    rng = np.random.default_rng(2)
    pixels = rng.integers(0, 256, size=(6, 1, 8, 8), dtype=np.uint8)
    split = Split(pixels, np.arange(6), scale=1 / 255)
    config = AugmentConfig(
        rotation=0, scale=(1, 1), translate=1, translate_units="pixels", copies=2
    )
    out = augmented_copies(split, np.random.default_rng(3), config)
    assert out.x.shape == (18, 1, 8, 8) and out.scale == 1.0
    np.testing.assert_allclose(out.x[:6], pixels / 255, rtol=1e-6)
    assert out.x.max() <= 1.0 and not np.allclose(out.x[6:12], out.x[:6])


def test_no_copies_leaves_the_split_as_it_is():
    split = Split(np.zeros((4, 2), np.float32), np.zeros(4, int))
    assert augmented_copies(split, np.random.default_rng(0), AugmentConfig(noise=0.1)) is split
