"""gemm, NumPy's BLAS (and MKL, where installed) called from inside a Numba kernel."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from threadpoolctl import threadpool_info

from dlrun.kernels import blas, blas_libs
from tests.kernels.mkl import needs_mkl

pytestmark = pytest.mark.skipif(not blas.available(), reason="NumPy's BLAS is not ILP64 OpenBLAS")


@njit(cache=True)
def product(a, b, c, lib=blas.OPENBLAS):
    blas.gemm(a, b, c, lib)


@njit(cache=True)
def products_per_step(x, w, out):
    for t in range(x.shape[0]):
        blas.gemm(x[t], w, out[t], blas.OPENBLAS)


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
def product_tn(a, b, c, lib=blas.OPENBLAS):
    blas.gemm_tn(a, b, c, lib)


@njit(cache=True)
def product_nt(a, b, c, lib=blas.OPENBLAS):
    blas.gemm_nt(a, b, c, lib)


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


# ----------------------------------------------------------------------- both libraries

#: A product of every shape class the course's networks use (M, K, N, a stored transposed,
#: b stored transposed), as their layers write them.
LAYER_PRODUCTS = {
    "mlp forward 784->256": (64, 784, 256, False, False),
    "mlp forward 128->10": (64, 128, 10, False, False),
    "mlp dW x^T dz": (784, 64, 256, True, False),
    "mlp dx dz W^T": (64, 128, 256, False, True),
    "last batch of an epoch": (32, 784, 256, False, False),
    "conv1 W @ cols (K = 9)": (32, 9, 10816, False, False),
    "conv2 W @ cols": (64, 288, 7744, False, False),
    "conv2 dW = dY cols^T": (64, 7744, 288, False, True),
    "conv2 dcols = W^T dY": (288, 64, 7744, True, False),
    "dense after the convolutions": (64, 1600, 128, False, False),
    "lstm step": (64, 156, 512, False, False),
    "lstm step backward": (64, 512, 128, False, False),
    "lstm dW": (156, 1792, 512, True, False),
    "lstm dx": (1792, 512, 28, False, True),
    "rnn step": (64, 32, 32, False, False),
    "one row": (1, 784, 256, False, False),
}


def operands(m, k, n, ta, tb, dtype, seed=0):
    """op(a) (M, K) and op(b) (K, N), each stored as the layers store it (a transposed
    view where ta / tb)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return (a.T if ta else a), (b.T if tb else b)


def assert_within_rounding(c, a, b):
    """|c - a @ b| <= 2 K eps |a| @ |b| elementwise (the error bound of a sum of K
    products in c's precision), with a @ b computed in float64."""
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    bound = 2 * a.shape[1] * np.finfo(c.dtype).eps * (np.abs(a64) @ np.abs(b64))
    err = np.abs(c.astype(np.float64) - a64 @ b64)
    assert np.all(err <= bound + np.finfo(c.dtype).tiny), f"largest error {err.max():.3g}"


@needs_mkl
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("where", list(LAYER_PRODUCTS))
def test_both_libraries_agree_to_rounding_on_every_layer_shape(where, dtype):
    a, b = operands(*LAYER_PRODUCTS[where], dtype)
    by_openblas = blas.product(a, b, None, blas.OPENBLAS)
    by_mkl = blas.product(a, b, None, blas.MKL)
    np.testing.assert_array_equal(by_openblas, np.dot(a, b))  # OpenBLAS is np.dot itself
    assert by_mkl.dtype == dtype and by_mkl.shape == by_openblas.shape
    assert_within_rounding(by_openblas, a, b)
    assert_within_rounding(by_mkl, a, b)


@needs_mkl
@pytest.mark.parametrize("where", ["mlp forward 784->256", "lstm step", "conv2 W @ cols"])
def test_mkl_from_a_kernel_is_mkl_from_python(where):
    """gemm(..., MKL) in Numba and the Python path call the same routine with the same
    arguments: the same bits, and not OpenBLAS's."""
    m, k, n, _, _ = LAYER_PRODUCTS[where]
    a, b = operands(m, k, n, False, False, np.float32)
    c = np.full((m, n), np.nan, dtype=np.float32)
    product(a, b, c, blas.MKL)
    np.testing.assert_array_equal(c, blas.product(a, b, None, blas.MKL))
    assert_within_rounding(c, a, b)


@needs_mkl
def test_mkl_transposed_kernels_and_out_arguments():
    a, b = operands(784, 64, 256, True, False, np.float32)  # a is a transposed view
    c = np.full((784, 256), np.nan, dtype=np.float32)
    product_tn(np.ascontiguousarray(a.T), b, c, blas.MKL)
    assert_within_rounding(c, a, b)
    out = np.full((784, 256), np.nan, dtype=np.float32)
    assert blas.product(a, b, out, blas.MKL) is out
    np.testing.assert_array_equal(out, c)
    # an operand that is neither row- nor column-contiguous is copied, not misread
    wide = np.random.default_rng(1).standard_normal((784, 128)).astype(np.float32)
    assert_within_rounding(blas.product(wide[:, ::2], b, None, blas.MKL), wide[:, ::2], b)


@pytest.mark.parametrize("policy", ["openblas", pytest.param("mkl", marks=needs_mkl)])
def test_dot_and_matmul_follow_the_policy(policy, monkeypatch):
    from dlrun.kernels import blas_choice

    monkeypatch.setenv("DLRUN_BLAS", policy)
    blas_choice.forget()
    blas_choice.begin()
    try:
        a, b = operands(64, 256, 128, False, True, np.float32)
        want = blas.product(a, b, None, blas_libs.NAMES.index(policy))
        np.testing.assert_array_equal(blas.dot(a, b), want)
        np.testing.assert_array_equal(blas.matmul(a, b), want)
        out = np.empty((64, 128), np.float32)
        assert blas.dot(a, b, out=out) is out
        np.testing.assert_array_equal(out, want)
        assert blas.lib_for(a, b) == blas_libs.NAMES.index(policy)
    finally:
        blas_choice.end()
        blas_choice.forget()


TORCH_FIRST = """
import sys
import numpy as np
import torch  # brings GNU OpenMP (libgomp) into the global symbols before MKL
from dlrun.kernels import blas_libs
from tests.kernels.test_blas import LAYER_PRODUCTS, operands
wrong = []
for where, (m, k, n, ta, tb) in LAYER_PRODUCTS.items():
    a, b = operands(m, k, n, ta, tb, np.float32)
    c = blas_libs.product(a, b, None, blas_libs.MKL)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    bound = 2 * k * np.finfo(np.float32).eps * (np.abs(a).astype(np.float64) @ np.abs(b))
    if not np.all(np.abs(c - exact) <= bound):
        wrong.append(where)
print(blas_libs.mkl().threading, wrong)
"""


@needs_mkl
def test_mkl_is_right_after_pytorch_was_imported_first():
    """PyTorch's libgomp, global before MKL, once made every MKL product wrong (MKL's Intel
    OpenMP layer calling libgomp): MKL now takes GNU's layer there."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("torch")
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", TORCH_FIRST], cwd=root, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["gnu", "[]"]


@needs_mkl
def test_an_mkl_that_fails_its_self_check_is_not_used(monkeypatch):
    from dlrun.kernels import blas_choice

    def wrong(library, a, b, c, *layouts):
        c[...] = 0.0
        return c

    monkeypatch.setattr(blas_libs, "_gemm", wrong)
    blas_libs.prepare_mkl.cache_clear()
    try:
        assert blas_libs.prepare_mkl() is None
        assert "failed a check" in blas_libs.mkl_problem()
        assert [lib.name for lib in blas_libs.loaded()] == ["openblas"]
        monkeypatch.setenv("DLRUN_BLAS", "mkl")
        with pytest.raises(ValueError, match="DLRUN_BLAS=mkl, but MKL's products failed"):
            blas_choice.candidates()
        with pytest.raises(RuntimeError, match="MKL cannot multiply here"):
            blas.product(np.ones((2, 2)), np.ones((2, 2)), None, blas.MKL)
    finally:
        monkeypatch.undo()
        blas_libs._problem.clear()
        blas_libs.prepare_mkl.cache_clear()
        assert blas_libs.prepare_mkl() is not None
