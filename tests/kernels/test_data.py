import numpy as np
import pytest

from dlrun.data.base import Split
from dlrun.kernels.data import gather_rows


@pytest.mark.parametrize(
    "src, dtype", [(np.uint8, np.float32), (np.float32, np.float32), (np.uint8, np.float64)]
)
@pytest.mark.parametrize("scale, offset", [(1 / 255, 0.0), (1.0, 0.0), (1.0, 0.5), (0.5, -0.25)])
def test_take_matches_numpy_gather_cast_scale_offset(src, dtype, scale, offset):
    rng = np.random.default_rng(0)
    x = (rng.random((50, 3, 4)) * 255).astype(src)
    idx = rng.permutation(50)[:17]
    split = Split(x=x, y=np.zeros(50), scale=scale, offset=offset)
    want = np.array(x[idx], dtype=dtype)
    if scale != 1.0:
        want *= want.dtype.type(scale)
    if offset != 0.0:
        want += want.dtype.type(offset)
    got = split.take(idx, dtype)
    assert got.dtype == dtype and got.shape == (17, 3, 4)
    np.testing.assert_array_equal(got, want)  # bit-identical: resume stays exact


def test_gather_rows_kernel_directly():
    x = np.arange(12, dtype=np.uint8).reshape(4, 3)
    out = np.empty((2, 3), np.float32)
    gather_rows(x, np.array([3, 1]), np.float32(2), np.float32(1), True, True, out)
    np.testing.assert_array_equal(out, [[19, 21, 23], [7, 9, 11]])


def test_take_rejects_an_index_out_of_range():
    split = Split(x=np.zeros((5, 2), np.uint8), y=np.zeros(5))
    with pytest.raises(IndexError):
        split.take(np.array([0, 5]))
