"""Gradient clipping vs NumPy: by value, per-array norm, global norm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.optim.clipping import (
    ClipConfig,
    apply_clipping,
    clip_by_global_norm,
    clip_by_norm,
    clip_by_value,
    global_norm,
)


def grads(dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(0)
    return [(scale * rng.standard_normal(s)).astype(dtype) for s in [(3, 5), (11,), (2, 2, 3)]]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_by_value(dtype):
    gs = grads(dtype, scale=2.0)
    want = [np.clip(g, -0.5, 0.5) for g in gs]
    clip_by_value(gs, 0.5)
    for g, w in zip(gs, want, strict=True):
        assert g.dtype == dtype
        np.testing.assert_array_equal(g, w)


def test_clip_by_norm_rescales_only_large_arrays():
    gs = grads()
    gs[1] *= 0.01  # small: left alone
    before = [g.copy() for g in gs]
    norms = clip_by_norm(gs, 1.0)
    np.testing.assert_allclose(norms, [np.linalg.norm(b) for b in before], rtol=1e-13)
    for g, b, n in zip(gs, before, norms, strict=True):
        if n > 1.0:
            np.testing.assert_allclose(g, b / n, rtol=1e-13)
            assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-12)
        else:
            np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_clip_by_global_norm(dtype):
    gs = grads(dtype)
    before = [g.astype(np.float64) for g in gs]
    want_norm = math.sqrt(sum(float((b**2).sum()) for b in before))
    norm = clip_by_global_norm(gs, 2.0)
    assert norm == pytest.approx(want_norm, rel=1e-12)
    assert want_norm > 2.0
    for g, b in zip(gs, before, strict=True):
        np.testing.assert_allclose(g, b * (2.0 / want_norm), rtol=1e-6)
    assert global_norm(gs) == pytest.approx(2.0, rel=1e-6)


def test_global_norm_below_limit_is_untouched():
    gs = grads()
    before = [g.copy() for g in gs]
    norm = clip_by_global_norm(gs, 1e6)
    assert norm == pytest.approx(global_norm(before))
    for g, b in zip(gs, before, strict=True):
        np.testing.assert_array_equal(g, b)


def test_nan_norm_leaves_gradients_for_the_nan_guard():
    gs = grads()
    gs[0][0, 0] = np.nan
    before = [g.copy() for g in gs]
    assert math.isnan(clip_by_global_norm(gs, 1.0))
    for g, b in zip(gs, before, strict=True):
        np.testing.assert_array_equal(g, b)


@pytest.mark.parametrize("mode", ["value", "norm", "global_norm"])
def test_apply_clipping_returns_norm_before_and_clips(mode):
    gs = grads(scale=3.0)
    before = global_norm(gs)
    reference = [g.copy() for g in gs]
    {"value": clip_by_value, "norm": clip_by_norm, "global_norm": clip_by_global_norm}[mode](
        reference, 0.8
    )
    assert apply_clipping(ClipConfig(mode=mode, limit=0.8), gs) == pytest.approx(before)
    for g, r in zip(gs, reference, strict=True):
        np.testing.assert_array_equal(g, r)


def test_apply_clipping_none_only_measures():
    gs = grads()
    before = [g.copy() for g in gs]
    assert apply_clipping(None, gs) == pytest.approx(
        math.sqrt(sum(float((b**2).sum()) for b in before))
    )
    for g, b in zip(gs, before, strict=True):
        np.testing.assert_array_equal(g, b)


def test_large_array_norm_matches_numpy():
    g = np.random.default_rng(3).standard_normal(100_003).astype(np.float32)
    want = np.sqrt(np.sum(g.astype(np.float64) ** 2))
    assert global_norm([g]) == pytest.approx(want, rel=1e-12)


def test_bad_config_and_limits():
    with pytest.raises(ValidationError, match="limit"):
        ClipConfig(mode="norm", limit=0.0)
    with pytest.raises(ValidationError, match="mode"):
        ClipConfig(mode="l2", limit=1.0)
    with pytest.raises(ValueError, match="limit must be > 0"):
        clip_by_value(grads(), -1.0)
    with pytest.raises(ValueError, match="C-contiguous"):
        clip_by_global_norm([np.ones((4, 4))[:, ::2]], 1.0)
