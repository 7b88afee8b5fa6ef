"""Pooling kernels against plain NumPy loops."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.kernels.pool import avgpool_backward, avgpool_forward, maxpool_backward, maxpool_forward
from tests import naive_conv

# (N, C, H, W), (kh, kw), (sh, sw)
CASES = [
    ((2, 3, 4, 4), (2, 2), (2, 2)),
    ((2, 1, 7, 5), (2, 2), (2, 2)),  # odd sizes: last row/column dropped
    ((1, 2, 6, 7), (3, 2), (1, 2)),  # overlapping windows along H
    ((3, 2, 5, 5), (3, 3), (2, 2)),  # overlapping windows, stride 2
]


def out_hw(shape, size, stride):
    return (shape[2] - size[0]) // stride[0] + 1, (shape[3] - size[1]) // stride[1] + 1


def maxpool_by_kernels(x, size, stride):
    n, c, h, w = x.shape
    ho, wo = out_hw(x.shape, size, stride)
    y = np.empty((n * c, ho, wo), dtype=x.dtype)
    arg = np.empty((n * c, ho, wo), dtype=np.int32)
    maxpool_forward(x.reshape(n * c, h, w), *size, *stride, y, arg)
    return y.reshape(n, c, ho, wo), arg


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, size, stride", CASES)
def test_maxpool_matches_naive(shape, size, stride, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape).astype(dtype)
    y, arg = maxpool_by_kernels(x, size, stride)
    expected, where = naive_conv.maxpool2d(x, size, stride)
    np.testing.assert_array_equal(y, expected.astype(dtype))

    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = np.full((shape[0] * shape[1], *shape[2:]), np.nan, dtype=dtype)
    maxpool_backward(dy.reshape(-1, *y.shape[2:]), arg, dx)
    ex_dx = naive_conv.maxpool2d_backward(dy.astype(np.float64), where, shape)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(dx.reshape(shape), ex_dx, rtol=tol, atol=tol)


def test_maxpool_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.array(
        [
            [
                [1.0, 5.0, 5.0, 0.0],
                [5.0, 5.0, 2.0, 2.0],
                [3.0, 3.0, 0.0, 0.0],
                [3.0, 3.0, 0.0, 0.0],
            ],
        ]
    )[None]  # (1, 1, 4, 4)
    y, arg = maxpool_by_kernels(x, (2, 2), (2, 2))
    np.testing.assert_array_equal(y[0, 0], [[5, 5], [3, 0]])
    # top-left -> (0, 1); top-right -> (0, 2); bottom-left -> (2, 0); bottom-right -> (2, 2)
    np.testing.assert_array_equal(arg[0], [[0 * 4 + 1, 0 * 4 + 2], [2 * 4 + 0, 2 * 4 + 2]])
    dx = np.empty((1, 4, 4))
    maxpool_backward(np.ones((1, 2, 2)), arg, dx)
    expected = np.zeros((4, 4))
    expected[0, 1] = expected[0, 2] = expected[2, 0] = expected[2, 2] = 1.0
    np.testing.assert_array_equal(dx[0], expected)


def test_maxpool_overlapping_windows_accumulate_gradient():
    """One pixel that wins two overlapping windows receives both gradients."""
    x = np.zeros((1, 1, 3))
    x[0, 0, 1] = 9.0  # the centre of a 1x3 row wins both 1x2 windows (stride 1)
    y = np.empty((1, 1, 2))
    arg = np.empty((1, 1, 2), dtype=np.int32)
    maxpool_forward(x, 1, 2, 1, 1, y, arg)
    dx = np.empty((1, 1, 3))
    maxpool_backward(np.array([[[2.0, 3.0]]]), arg, dx)
    np.testing.assert_array_equal(dx[0, 0], [0.0, 5.0, 0.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape, size, stride", CASES)
def test_avgpool_matches_naive(shape, size, stride, dtype):
    rng = np.random.default_rng(1)
    n, c, h, w = shape
    ho, wo = out_hw(shape, size, stride)
    x = rng.standard_normal(shape).astype(dtype)
    y = np.empty((n * c, ho, wo), dtype=dtype)
    avgpool_forward(x.reshape(n * c, h, w), *size, *stride, y)
    tol = 1e-6 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(
        y.reshape(n, c, ho, wo), naive_conv.avgpool2d(x, size, stride), rtol=tol, atol=tol
    )

    dy = rng.standard_normal((n * c, ho, wo)).astype(dtype)
    dx = np.full((n * c, h, w), np.nan, dtype=dtype)
    avgpool_backward(dy, *size, *stride, dx)
    expected = naive_conv.avgpool2d_backward(dy.reshape(n, c, ho, wo), size, stride, shape)
    np.testing.assert_allclose(dx.reshape(shape), expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", [(2, 3, 4, 4), (2, 1, 7, 5), (1, 2, 6, 9)])
def test_maxpool_2x2_fast_path_equals_the_general_kernels(shape):
    from dlrun.kernels.pool import maxpool_backward_2x2, maxpool_forward_2x2

    rng = np.random.default_rng(7)
    x = rng.integers(0, 3, size=shape).astype(np.float32)  # many ties
    y, arg = maxpool_by_kernels(x, (2, 2), (2, 2))
    n, c, h, w = shape
    y2 = np.empty((n * c, h // 2, w // 2), np.float32)
    code = np.empty(y2.shape, np.uint8)
    maxpool_forward_2x2(x.reshape(n * c, h, w), y2, code)
    np.testing.assert_array_equal(y2, y.reshape(y2.shape))
    oy, ox = np.indices(y2.shape[1:])
    np.testing.assert_array_equal(  # the same winner as the general kernel's flat index
        (2 * oy + code // 2) * w + 2 * ox + code % 2, arg
    )
    dy = rng.standard_normal(y2.shape).astype(np.float32)
    want, got = np.empty((n * c, h, w), np.float32), np.full((n * c, h, w), np.nan, np.float32)
    maxpool_backward(dy, arg, want)
    maxpool_backward_2x2(dy, code, got)  # overwrites every entry, past the last window too
    np.testing.assert_array_equal(got, want)
