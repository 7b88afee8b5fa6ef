"""gemm, NumPy's BLAS called from inside a Numba kernel."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from threadpoolctl import threadpool_info

from dlrun.kernels import blas

pytestmark = pytest.mark.skipif(not blas.available(), reason="NumPy's BLAS is not ILP64 OpenBLAS")


@njit(cache=True)
def product(a, b, c):
    blas.gemm(a, b, c)


@njit(cache=True)
def products_per_step(x, w, out):
    for t in range(x.shape[0]):
        blas.gemm(x[t], w, out[t])


def test_numpy_wheels_blas_is_found():
    """NumPy's PyPI wheels ship an ILP64 OpenBLAS (``libscipy_openblas64_`` or
    ``libopenblas64_``): there, the kernels must find it, or the LSTM silently loses
    its one-call loops."""
    files = [i["filepath"] for i in threadpool_info() if i["internal_api"] == "openblas"]
    if not any("openblas64" in f for f in files):
        pytest.skip(f"not a NumPy wheel's OpenBLAS: {files}")
    assert blas.available()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (64, 156, 512), (17, 1, 9)])
def test_gemm_matches_matmul(dtype, m, k, n):
    rng = np.random.default_rng(m * 100 + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype=dtype)
    product(a, b, c)
    np.testing.assert_array_equal(c, a @ b)  # the same BLAS routine: the same bits


def test_gemm_on_rows_of_three_dimensional_arrays():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 5))
    w = rng.standard_normal((5, 3))
    out = np.zeros((4, 6, 3))
    products_per_step(x, w, out)
    np.testing.assert_array_equal(out, x @ w)


def test_gemm_rejects_mismatched_shapes():
    a, b, c = np.ones((2, 3)), np.ones((4, 5)), np.ones((2, 5))
    with pytest.raises(ValueError, match="shapes"):
        product(a, b, c)
    with pytest.raises(ValueError, match="shapes"):
        product(np.ones((2, 4)), b, np.ones((3, 5)))


@njit(cache=True)
def product_tn(a, b, c):
    blas.gemm_tn(a, b, c)


@njit(cache=True)
def product_nt(a, b, c):
    blas.gemm_nt(a, b, c)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (3, 5, 7), (784, 64, 256), (9, 1, 17)])
def test_transposed_gemms_match_numpy_on_the_stored_arrays(dtype, m, k, n):
    """x.T @ dz and dz @ W.T as the dense layer writes them with np.dot: the same bits."""
    rng = np.random.default_rng(m + 7 * n)
    a = rng.standard_normal((k, m)).astype(dtype)  # stored (K, M): op(a) = a.T
    b = rng.standard_normal((k, n)).astype(dtype)
    c = np.full((m, n), np.nan, dtype=dtype)
    product_tn(a, b, c)
    np.testing.assert_array_equal(c, np.dot(a.T, b))
    a2 = rng.standard_normal((m, k)).astype(dtype)
    b2 = rng.standard_normal((n, k)).astype(dtype)  # stored (N, K): op(b) = b.T
    c2 = np.full((m, n), np.nan, dtype=dtype)
    product_nt(a2, b2, c2)
    np.testing.assert_array_equal(c2, np.dot(a2, b2.T))


def test_transposed_gemms_reject_mismatched_shapes():
    with pytest.raises(ValueError, match="shapes"):
        product_tn(np.ones((3, 2)), np.ones((4, 5)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="shapes"):
        product_nt(np.ones((2, 3)), np.ones((5, 4)), np.ones((2, 5)))
    with pytest.raises(ValueError, match="shapes"):
        product_nt(np.ones((2, 3)), np.ones((5, 3)), np.ones((2, 4)))
