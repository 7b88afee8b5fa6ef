"""Convolution kernels (im2col, col2im, layout moves) against plain NumPy loops."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from dlrun.kernels.conv import col2im, im2col, masked_weight_grad, nchw_to_rows, rows_to_nchw
from tests import naive_conv

# (N, C, H, W), F, (kh, kw), (sh, sw), (top, bottom, left, right)
CASES = [
    ((2, 1, 5, 5), 2, (3, 3), (1, 1), (0, 0, 0, 0)),  # valid, one channel
    ((2, 3, 7, 6), 4, (3, 3), (1, 1), (1, 1, 1, 1)),  # padding 1 (= same at stride 1)
    ((3, 3, 7, 5), 2, (3, 2), (2, 2), (0, 0, 0, 0)),  # stride 2, odd sizes, odd window
    ((2, 3, 6, 7), 3, (4, 4), (2, 1), (1, 2, 1, 2)),  # asymmetric 'same' padding, even kernel
    ((1, 2, 4, 4), 2, (5, 5), (1, 1), (2, 2, 2, 2)),  # kernel larger than the raw input
]


def out_size(shape, kernel, stride, pad):
    _, _, h, w = shape
    return (
        (h + pad[0] + pad[1] - kernel[0]) // stride[0] + 1,
        (w + pad[2] + pad[3] - kernel[1]) // stride[1] + 1,
    )


def conv_by_kernels(x, w, b, stride, pad):
    """The layer's forward pass written out: im2col, one GEMM, back to NCHW."""
    n, c = x.shape[:2]
    f, _, kh, kw = w.shape
    ho, wo = out_size(x.shape, (kh, kw), stride, pad)
    cols = np.empty((c * kh * kw, n * ho * wo), dtype=x.dtype)
    im2col(x, kh, kw, stride[0], stride[1], pad[0], pad[2], ho, wo, cols)
    rows = w.reshape(f, -1) @ cols
    y = np.empty((n, f, ho, wo), dtype=x.dtype)
    rows_to_nchw(rows, b, y.reshape(n, f, ho * wo))
    return y, cols


def conv_backward_by_kernels(x, w, dy, cols, stride, pad):
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    ho, wo = dy.shape[2:]
    rows = np.empty((f, n * ho * wo), dtype=x.dtype)
    db = np.empty(f, dtype=x.dtype)
    nchw_to_rows(dy.reshape(n, f, ho * wo), dy.reshape(n, f, ho * wo), False, rows, db)
    dw = (rows @ cols.T).reshape(w.shape)
    dx = np.full(x.shape, np.nan, dtype=x.dtype)  # col2im must overwrite every entry
    col2im(w.reshape(f, -1).T @ rows, kh, kw, stride[0], stride[1], pad[0], pad[2], ho, wo, dx)
    return dx, dw, db


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("shape, filters, kernel, stride, pad", CASES)
def test_conv_forward_backward_match_naive(shape, filters, kernel, stride, pad, dtype, tol):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    w = rng.standard_normal((filters, shape[1], *kernel)).astype(dtype)
    b = rng.standard_normal(filters).astype(dtype)
    y, cols = conv_by_kernels(x, w, b, stride, pad)
    expected = naive_conv.conv2d(x, w, b, stride, pad)
    assert y.dtype == dtype and y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=tol, atol=tol)

    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dw, db = conv_backward_by_kernels(x, w, dy, cols, stride, pad)
    ex_dx, ex_dw, ex_db = naive_conv.conv2d_backward(x, w, dy, stride, pad)
    np.testing.assert_allclose(dx, ex_dx, rtol=tol, atol=tol)
    np.testing.assert_allclose(dw, ex_dw, rtol=tol, atol=tol)
    np.testing.assert_allclose(db, ex_db, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape, filters, kernel, stride, pad", CASES)
def test_im2col_matches_its_definition(shape, filters, kernel, stride, pad):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    n, c, h, w = shape
    kh, kw = kernel
    ho, wo = out_size(shape, kernel, stride, pad)
    cols = np.full((c * kh * kw, n * ho * wo), np.nan)
    im2col(x, kh, kw, stride[0], stride[1], pad[0], pad[2], ho, wo, cols)
    xp = naive_conv.padded(x, pad)
    for s in range(n):
        for oy in range(ho):
            for ox in range(wo):
                window = xp[s, :, oy * stride[0] : oy * stride[0] + kh, ox * stride[1] :][..., :kw]
                np.testing.assert_array_equal(cols[:, (s * ho + oy) * wo + ox], window.reshape(-1))


@pytest.mark.parametrize("shape, filters, kernel, stride, pad", CASES)
def test_col2im_is_the_adjoint_of_im2col(shape, filters, kernel, stride, pad):
    """<im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col transposed."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    n, c, h, w = shape
    kh, kw = kernel
    ho, wo = out_size(shape, kernel, stride, pad)
    cols = np.empty((c * kh * kw, n * ho * wo))
    im2col(x, kh, kw, stride[0], stride[1], pad[0], pad[2], ho, wo, cols)
    g = rng.standard_normal(cols.shape)
    dx = np.empty(shape)
    col2im(g, kh, kw, stride[0], stride[1], pad[0], pad[2], ho, wo, dx)
    assert np.vdot(cols, g) == pytest.approx(np.vdot(x, dx), rel=1e-12)


def test_course_example_first_value_is_4():
    """The course's 5x5 binary image and 3x3 'X' filter give [[4,3,4],[2,4,3],[2,3,4]]."""
    image = np.array(
        [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
        dtype=np.float32,
    )
    filt = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]], dtype=np.float32)
    y, _ = conv_by_kernels(
        image[None, None], filt[None, None], np.zeros(1, np.float32), (1, 1), (0, 0, 0, 0)
    )
    assert y[0, 0, 0, 0] == 4
    np.testing.assert_array_equal(y[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_bias_gradient_is_deterministic_and_exact_for_float32():
    """db is summed in float64 in a fixed order: equal across calls, close to the exact sum."""
    rng = np.random.default_rng(3)
    dy = rng.standard_normal((16, 4, 100)).astype(np.float32)
    rows = np.empty((4, 1600), np.float32)
    db1, db2 = np.empty(4, np.float32), np.empty(4, np.float32)
    nchw_to_rows(dy, dy, False, rows, db1)
    nchw_to_rows(dy, dy, False, rows, db2)
    np.testing.assert_array_equal(db1, db2)
    np.testing.assert_allclose(db1, dy.astype(np.float64).sum(axis=(0, 2)), rtol=1e-6)
    np.testing.assert_array_equal(rows, dy.transpose(1, 0, 2).reshape(4, -1))


def test_results_do_not_depend_on_the_number_of_threads():
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("needs 2 Numba threads")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((6, 3, 7, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    results = []
    for threads in (1, 2):
        numba.set_num_threads(threads)
        try:
            y, cols = conv_by_kernels(x, w, b, (1, 1), (1, 1, 1, 1))
            grads = conv_backward_by_kernels(x, w, y, cols, (1, 1), (1, 1, 1, 1))
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append((y, *grads))
    for one, two in zip(*results, strict=True):
        np.testing.assert_array_equal(one, two)


def test_nchw_to_rows_applies_the_relu_mask_from_the_output():
    rng = np.random.default_rng(4)
    dy = rng.standard_normal((5, 3, 7))
    y = np.maximum(rng.standard_normal((5, 3, 7)), 0.0)  # a ReLU output: zeros where masked
    dy[0, 0, 0] = np.nan  # a NaN under a masked entry stays visible (0 * NaN)
    y[0, 0, 0] = 0.0
    rows, db = np.empty((3, 35)), np.empty(3)
    nchw_to_rows(dy, y, True, rows, db)
    masked = np.where(y > 0, dy, 0.0 * dy)
    np.testing.assert_array_equal(rows, masked.transpose(1, 0, 2).reshape(3, -1))
    assert np.isnan(rows[0, 0]) and np.isnan(db[0])
    np.testing.assert_allclose(db[1:], masked[:, 1:].sum(axis=(0, 2)), rtol=1e-12)


@pytest.mark.parametrize("relu", [False, True])
def test_masked_weight_grad_is_dy_times_columns(relu):
    """dW = g @ cols.T and db = sum g, g = dy (masked by [y > 0] with relu), in float64;
    the same to the last bit with 1 or 2 threads; a NaN under the mask stays visible."""
    rng = np.random.default_rng(6)
    n, f, p, k = 5, 11, 13, 7  # 11 filters: blocks of 8 and 3
    dy = rng.standard_normal((n, f, p))
    y = np.maximum(rng.standard_normal((n, f, p)), 0.0)
    cols = rng.standard_normal((k, n * p))
    g = np.where(y > 0, dy, 0.0) if relu else dy
    rows = g.transpose(1, 0, 2).reshape(f, -1)
    results = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        try:
            dw, db = np.empty((f, k)), np.empty(f)
            masked_weight_grad(dy, y, relu, cols, dw, db)
        finally:
            numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        results.append((dw, db))
    np.testing.assert_allclose(results[0][0], rows @ cols.T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(results[0][1], rows.sum(axis=1), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    if relu:
        dy[0, 0, 0], y[0, 0, 0] = np.nan, 0.0
        masked_weight_grad(dy, y, relu, cols, dw, db)
        assert np.isnan(dw[0]).all() and np.isnan(db[0])
