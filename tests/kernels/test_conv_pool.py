"""Fused convolution-output + 2x2 max-pool kernels against the unfused kernels they replace."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from dlrun.kernels.conv import im2col, nchw_to_rows, rows_to_nchw
from dlrun.kernels.conv_pool import (
    im2col_phased,
    phased_to_pooled,
    phased_weight_grad,
    pooled_to_rows,
    pooled_weight_grad,
    rows_to_pooled,
)
from dlrun.kernels.pool import maxpool_backward_2x2, maxpool_forward_2x2

# N, F, Ho, Wo of the convolution's output (odd sizes: the pool drops a row / column)
SHAPES = [(3, 4, 6, 8), (2, 3, 7, 5), (1, 9, 2, 2)]


def unfused(yt, b, relu, shape):
    """rows_to_nchw then maxpool_forward_2x2: the layer-by-layer way."""
    n, f, ho, wo = shape
    z = np.empty((n, f, ho * wo), yt.dtype)
    rows_to_nchw(yt, b, z, relu)
    y = np.empty((n * f, ho // 2, wo // 2), yt.dtype)
    code = np.empty(y.shape, np.uint8)
    maxpool_forward_2x2(z.reshape(n * f, ho, wo), y, code)
    return z, y.reshape(n, f, ho // 2, wo // 2), code.reshape(n, f, ho // 2, wo // 2)


def case(shape, dtype, seed=0):
    n, f, ho, wo = shape
    rng = np.random.default_rng(seed)
    yt = (np.round(2 * rng.standard_normal((f, n * ho * wo))) / 2).astype(dtype)  # many ties
    b = (np.round(2 * rng.standard_normal(f)) / 2).astype(dtype)
    return rng, yt, b


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_rows_to_pooled_equals_maps_then_pool(shape, relu, dtype):
    n, f, ho, wo = shape
    _, yt, b = case(shape, dtype)
    _, y_ref, code_ref = unfused(yt, b, relu, shape)
    y = np.empty((n, f, ho // 2, wo // 2), dtype)
    code = np.empty(y.shape, np.uint8)
    rows_to_pooled(yt, b, relu, wo, y, code)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(code, code_ref)


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_pooled_to_rows_equals_unpool_then_rows(shape, relu):
    """dC/dY in the GEMM layout: exactly what maxpool backward then nchw_to_rows give;
    db the same sum; the same with 1 or 2 threads."""
    n, f, ho, wo = shape
    rng, yt, b = case(shape, np.float64, seed=1)
    z, y, code = unfused(yt, b, relu, shape)
    dy = rng.standard_normal(y.shape)
    dz = np.empty((n * f, ho, wo))
    maxpool_backward_2x2(dy.reshape(n * f, ho // 2, wo // 2), code.reshape(n * f, *y.shape[2:]), dz)
    rows_ref, db_ref = np.empty_like(yt), np.empty(f)
    nchw_to_rows(dz.reshape(n, f, -1), z, relu, rows_ref, db_ref)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            rows, db = np.full_like(yt, np.nan), np.empty(f)
            pooled_to_rows(dy, y, code, relu, ho, wo, rows, db)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append((rows, db))
    np.testing.assert_array_equal(results[0][0], rows_ref)
    np.testing.assert_allclose(results[0][1], db_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", SHAPES)
def test_pooled_weight_grad_is_rows_times_columns(shape, relu):
    n, f, ho, wo = shape
    rng, yt, b = case(shape, np.float64, seed=2)
    _, y, code = unfused(yt, b, relu, shape)
    dy = rng.standard_normal(y.shape)
    cols = rng.standard_normal((5, n * ho * wo))
    rows, db_ref = np.empty_like(yt), np.empty(f)
    pooled_to_rows(dy, y, code, relu, ho, wo, rows, db_ref)
    dw, db = np.empty((f, 5)), np.empty(f)
    pooled_weight_grad(dy, y, code, relu, ho, wo, cols, dw, db)
    np.testing.assert_allclose(dw, rows @ cols.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12, atol=1e-12)


def test_a_nan_under_the_relu_mask_stays_visible():
    shape = (1, 1, 2, 2)
    yt = np.array([[-1.0, -2.0, -3.0, -4.0]])
    y, code = np.empty((1, 1, 1, 1)), np.empty((1, 1, 1, 1), np.uint8)
    rows_to_pooled(yt, np.zeros(1), True, 2, y, code)
    assert y[0, 0, 0, 0] == 0.0 and code[0, 0, 0, 0] == 0  # all masked: the first wins
    rows, db = np.empty((1, 4)), np.empty(1)
    pooled_to_rows(np.full((1, 1, 1, 1), np.nan), y, code, True, *shape[2:], rows, db)
    assert np.isnan(rows[0, 0]) and np.isnan(db[0]) and (rows[0, 1:] == 0).all()


# ---------------------------------------------------------------- phase-ordered columns
# N, F, Ho, Wo with even Ho and Wo; 11 filters make a block of 8 and one of 3
EVEN_SHAPES = [(3, 4, 6, 8), (2, 11, 2, 4), (1, 9, 4, 2)]


def phase_order(n: int, ho: int, wo: int) -> np.ndarray:
    """For each phase-ordered column, the natural column (n, y, x) it holds."""
    order = [
        (i * ho + 2 * oy + a) * wo + 2 * ox + b
        for i in range(n)
        for a in (0, 1)
        for b in (0, 1)
        for oy in range(ho // 2)
        for ox in range(wo // 2)
    ]
    return np.array(order)


@pytest.mark.parametrize(
    "x_shape, kernel, stride, pad",
    [((2, 3, 6, 8), (3, 3), (1, 1), (1, 1)), ((1, 2, 9, 7), (2, 3), (2, 1), (0, 1))],
)
def test_im2col_phased_is_im2col_with_columns_in_phase_order(x_shape, kernel, stride, pad):
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, pad
    n, c, h, w = x_shape
    ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    ho, wo = ho - ho % 2, wo - wo % 2  # an even output (the bottom/right padding implied)
    x = np.random.default_rng(3).standard_normal(x_shape)
    ref = np.empty((c * kh * kw, n * ho * wo))
    im2col(x, kh, kw, sh, sw, ph, pw, ho, wo, ref)
    cols = np.full_like(ref, np.nan)
    im2col_phased(x, kh, kw, sh, sw, ph, pw, ho, wo, cols)
    np.testing.assert_array_equal(cols, ref[:, phase_order(n, ho, wo)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", EVEN_SHAPES)
def test_phased_to_pooled_equals_rows_to_pooled(shape, relu, dtype):
    """The same maxima and winners (ties included) from the phase-ordered product."""
    n, f, ho, wo = shape
    _, yt, b = case(shape, dtype)
    y_ref = np.empty((n, f, ho // 2, wo // 2), dtype)
    code_ref = np.empty(y_ref.shape, np.uint8)
    rows_to_pooled(yt, b, relu, wo, y_ref, code_ref)
    y = np.empty((n, f, ho * wo // 4), dtype)
    code = np.empty(y.shape, np.uint8)
    phased_to_pooled(np.ascontiguousarray(yt[:, phase_order(n, ho, wo)]), b, relu, y, code)
    np.testing.assert_array_equal(y, y_ref.reshape(y.shape))
    np.testing.assert_array_equal(code, code_ref.reshape(code.shape))


@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("shape", EVEN_SHAPES)
def test_phased_weight_grad_is_rows_times_columns(shape, relu):
    """dW = dY @ cols.T and db = sum dY, dY the unpooled gradient (as pooled_to_rows
    writes it); the same with 1 or 2 threads."""
    n, f, ho, wo = shape
    rng, yt, b = case(shape, np.float64, seed=2)
    _, y, code = unfused(yt, b, relu, shape)
    dy = rng.standard_normal(y.shape)
    cols = rng.standard_normal((5, n * ho * wo))
    rows, db_ref = np.empty_like(yt), np.empty(f)
    pooled_to_rows(dy, y, code, relu, ho, wo, rows, db_ref)
    flat = [a.reshape(n, f, -1) for a in (dy, y, code)]
    phased = np.ascontiguousarray(cols[:, phase_order(n, ho, wo)])
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            dw, db = np.full((f, 5), np.nan), np.full(f, np.nan)
            phased_weight_grad(*flat, relu, phased, dw, db)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append((dw, db))
    np.testing.assert_allclose(results[0][0], rows @ cols.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], db_ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
