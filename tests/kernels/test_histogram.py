"""Histogram kernels against NumPy: np.histogram's counts, min, max, sum and sum of squares."""

import numpy as np
import pytest

from dlrun.kernels.histogram import bucket_counts, moments


def counts_of(a, edges):
    out = np.empty(len(edges) - 1, dtype=np.int64)
    bucket_counts(a, edges, out)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bins", [1, 7, 64])
def test_bucket_counts_are_numpys(dtype, bins):
    rng = np.random.default_rng(bins)
    a = (rng.standard_normal(20_000) * 0.05).astype(dtype)
    edges = np.linspace(float(a.min()), float(a.max()), bins + 1)
    np.testing.assert_array_equal(counts_of(a, edges), np.histogram(a, bins=edges)[0])


def test_values_on_the_edges_go_where_numpy_puts_them():
    # every value is an edge (or the last edge): the rounding of (v - lo) * scale is checked
    edges = np.linspace(-1.0, 2.0, 31)
    a = np.concatenate(
        [edges, edges[::3], np.nextafter(edges, np.inf), np.nextafter(edges, -np.inf)]
    )
    a = a[(a >= edges[0]) & (a <= edges[-1])]
    np.testing.assert_array_equal(counts_of(a, edges), np.histogram(a, bins=edges)[0])
    thirds = np.arange(300) / 3.0  # 0.1 steps that are not exact in binary
    e = np.linspace(0.0, 99.6666, 17)
    t = thirds[thirds <= e[-1]]
    np.testing.assert_array_equal(counts_of(t, e), np.histogram(t, bins=e)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_moments_are_min_max_sum_and_sum_of_squares(dtype):
    a = np.random.default_rng(0).uniform(-3, 5, 10_001).astype(dtype)
    lo, hi, s, s2 = moments(a)
    b = a.astype(np.float64)
    assert (lo, hi) == (b.min(), b.max())
    assert s == pytest.approx(b.sum(), rel=1e-12)
    assert s2 == pytest.approx(b.dot(b), rel=1e-12)
    one = moments(np.array([2.5], dtype=dtype))
    assert one == (2.5, 2.5, 2.5, 6.25)


def test_a_non_finite_value_makes_the_sums_non_finite():
    for bad in (np.nan, np.inf, -np.inf):
        a = np.array([0.1, bad, 0.3], dtype=np.float32)
        _, _, s, s2 = moments(a)
        assert not (np.isfinite(s) and np.isfinite(s2))
