"""The course's convolution example and the pooling picture: values from dlrun's layers
against NumPy references, and what the figures write in their cells."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.runs import conv_pictures as C
from dlrun.runs.figure import plt


def correlate(image: np.ndarray, filt: np.ndarray) -> np.ndarray:
    """Valid cross-correlation by loops: y[i, j] = sum_ab x[i + a, j + b] w[a, b]."""
    kh, kw = filt.shape
    out = np.empty((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            out[i, j] = np.sum(image[i : i + kh, j : j + kw] * filt)
    return out


def blocks(x: np.ndarray, size: int) -> np.ndarray:
    """(H/size, W/size, size*size): the pixels of each window."""
    h, w = x.shape
    return (
        x.reshape(h // size, size, w // size, size).swapaxes(1, 2).reshape(h // size, w // size, -1)
    )


def cell_texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_course_example_gives_4_in_the_corner_and_the_numpy_correlation():
    result = C.convolve(C.COURSE_IMAGE, C.COURSE_FILTER)
    assert result[0, 0] == 4
    np.testing.assert_array_equal(result, correlate(C.COURSE_IMAGE, C.COURSE_FILTER))


def test_convolve_is_a_correlation_for_any_image_and_filter():
    rng = np.random.default_rng(0)
    image, filt = rng.standard_normal((7, 6)), rng.standard_normal((3, 2))  # not symmetric
    np.testing.assert_allclose(C.convolve(image, filt), correlate(image, filt), rtol=1e-12)


def test_conv_text_prints_the_three_matrices_and_the_first_sum():
    result = C.convolve(C.COURSE_IMAGE, C.COURSE_FILTER)
    text = C.conv_text(C.COURSE_IMAGE, C.COURSE_FILTER, result)
    printed = text.split("result = image * filter")[1].split("top-left")[0].splitlines()[1:]
    np.testing.assert_array_equal([[float(v) for v in row.split()] for row in printed], result)
    assert text.splitlines()[-1].endswith("= 4")
    assert "1*1 + 1*0 + 1*1 + 0*0 + 1*1 + 1*0 + 0*1 + 0*0 + 1*1" in text


def test_conv_figure_writes_the_numbers_and_outlines_the_top_left_window():
    result = C.convolve(C.COURSE_IMAGE, C.COURSE_FILTER)
    fig = C.conv_figure(C.COURSE_IMAGE, C.COURSE_FILTER, result)
    ax_image, ax_filter, ax_result = fig.axes
    assert cell_texts(ax_result) == [f"{v:.0f}" for v in result.ravel()]
    assert cell_texts(ax_image) == [f"{v:.0f}" for v in C.COURSE_IMAGE.ravel()]
    (window,) = ax_image.patches
    assert window.get_xy() == (-0.5, -0.5) and window.get_width() == window.get_height() == 3
    (corner,) = ax_result.patches
    assert corner.get_width() == corner.get_height() == 1
    assert any(t.get_text().endswith("= 4") for t in fig.texts)
    assert {"*", "="} <= {t.get_text() for t in fig.texts}
    plt.close(fig)


@pytest.mark.parametrize("seed", [None, 3])
def test_pooling_is_max_and_mean_of_each_2x2_window(seed):
    fmap = C.FEATURE_MAP if seed is None else np.random.default_rng(seed).standard_normal((6, 8))
    np.testing.assert_array_equal(C.pool(fmap, "max"), blocks(fmap, 2).max(axis=2))
    np.testing.assert_allclose(C.pool(fmap, "avg"), blocks(fmap, 2).mean(axis=2), rtol=1e-12)


def test_pooling_figure_cells_and_winners():
    maxed, averaged = C.pool(C.FEATURE_MAP, "max"), C.pool(C.FEATURE_MAP, "avg")
    fig = C.pooling_figure(C.FEATURE_MAP, maxed, averaged)
    ax_map, ax_max, ax_avg = fig.axes
    assert cell_texts(ax_max) == [f"{v:.0f}" for v in maxed.ravel()]
    assert cell_texts(ax_avg) == [f"{v:.2f}" for v in averaged.ravel()]  # 3.50 and 2.00 alike
    bold = [t.get_text() for t in ax_map.texts if t.get_fontweight() == "bold"]
    assert sorted(bold) == sorted(f"{v:.0f}" for v in maxed.ravel())  # each window's winner
    assert len(ax_map.patches) == 4  # one outline per window
    plt.close(fig)


def test_conv_and_pooling_write_pngs_and_reports(tmp_path):
    assert C.conv(tmp_path / "conv.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert C.pooling(tmp_path / "pooling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "4 3 4\n  2 4 3\n  2 3 4" in C.conv_report()
    assert "3.50 2.00\n  1.50 3.75" in C.pooling_report()
