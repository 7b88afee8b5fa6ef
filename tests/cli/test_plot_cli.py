"""dlrun plot conv | pooling | optimizers: what they print, the PNG they write, bad input."""

from __future__ import annotations

import numpy as np

from tests.cli.conftest import invoke

PNG = b"\x89PNG\r\n\x1a\n"


def matrix_after(output: str, header: str, rows: int) -> np.ndarray:
    """The ``rows`` lines of numbers printed under the line starting with ``header``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header)) + 1
    return np.array([[float(v) for v in line.split()] for line in lines[start : start + rows]])


def test_plot_conv_prints_the_course_result_with_4_in_the_corner(tmp_path):
    out = tmp_path / "conv.png"
    result = invoke("plot", "conv", "--out", out)
    assert result.exit_code == 0, result.output
    image = matrix_after(result.output, "image (5x5)", 5)
    filt = matrix_after(result.output, "filter (3x3)", 3)
    y = matrix_after(result.output, "result = image * filter", 3)
    reference = np.array(
        [[np.sum(image[i : i + 3, j : j + 3] * filt) for j in range(3)] for i in range(3)]
    )
    np.testing.assert_array_equal(y, reference)
    assert y[0, 0] == 4
    assert "top-left:" in result.output and result.output.count("= 4") == 1
    assert out.read_bytes()[:8] == PNG


def test_plot_pooling_prints_max_and_average(tmp_path):
    out = tmp_path / "pool.png"
    result = invoke("plot", "pooling", "--out", out)
    assert result.exit_code == 0, result.output
    fmap = matrix_after(result.output, "feature map (4x4)", 4)
    windows = fmap.reshape(2, 2, 2, 2).swapaxes(1, 2).reshape(2, 2, 4)
    np.testing.assert_array_equal(matrix_after(result.output, "max pooling", 2), windows.max(2))
    np.testing.assert_allclose(matrix_after(result.output, "average pooling", 2), windows.mean(2))
    assert out.read_bytes()[:8] == PNG


def test_plot_optimizers_one_surface(tmp_path):
    out = tmp_path / "paths.png"
    result = invoke("plot", "optimizers", "--out", out, "--surface", "valley", "--steps", "5")
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == PNG


def test_plot_optimizers_bad_input_exit_2(tmp_path):
    out = tmp_path / "paths.png"
    result = invoke("plot", "optimizers", "--out", out, "--surface", "saddel")
    assert result.exit_code == 2 and "did you mean 'saddle'" in result.output
    assert invoke("plot", "optimizers", "--out", out, "--steps", "0").exit_code == 2
    assert not out.exists()
