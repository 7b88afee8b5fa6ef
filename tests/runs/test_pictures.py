"""Pictures: the activation figure (sigma'(0), LeakyReLU's slope, softsign over tanh,
softmax), the mosaic of tiles, and the labelled filter and feature-map figures."""

from __future__ import annotations

import re

import matplotlib.image
import numpy as np
import pytest

from dlrun.nn import activations as acts
from dlrun.nn.layers.activation import LeakyReLU
from dlrun.runs import pictures as P
from dlrun.runs.figure import plt


@pytest.fixture(scope="module")
def activation_axes():
    """The activation figure's Axes by panel name (the figure is built once)."""
    fig = P.activations_figure()
    axes = dict(zip(P.ACTIVATION_PANELS, fig.axes[: len(P.ACTIVATION_PANELS)], strict=True))
    yield axes
    plt.close(fig)


def texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_sigma_prime_at_zero_is_dlruns_derivative(activation_axes):
    (note,) = [t for t in texts(activation_axes["sigmoid"]) if t.startswith("σ'(0)")]
    shown = float(re.match(r"σ'\(0\) = ([0-9.]+)", note).group(1))
    computed = acts.SPECS["sigmoid"].derivative_at(np.zeros(1))[0]
    assert shown == computed == pytest.approx(0.25)  # sigma(0) (1 - sigma(0)) = 1/4
    assert "1/4" in note and "^L" in note


def test_leaky_relu_slope_label_is_the_slope_drawn_and_the_default(activation_axes):
    default = LeakyReLU.Config().slope
    ax = activation_axes["leaky_relu"]
    assert any(f"slope {default:g} for x < 0" in t for t in texts(ax))
    line = ax.lines[0]
    x, y = line.get_xdata(), line.get_ydata()
    neg = x < 0
    np.testing.assert_allclose(y[neg], default * x[neg], rtol=1e-6)


def test_softsign_and_tanh_share_one_panel(activation_axes):
    ax = activation_axes["softsign vs tanh"]
    curves = {line.get_label().split(":")[0]: line for line in ax.lines}
    z = curves["tanh"].get_xdata()
    np.testing.assert_allclose(curves["tanh"].get_ydata(), np.tanh(z), atol=1e-12)
    np.testing.assert_allclose(curves["softsign"].get_ydata(), z / (1 + np.abs(z)), atol=1e-12)


def test_softmax_bars_are_softmax_and_sum_to_one(activation_axes):
    ax = activation_axes["softmax"]
    z = np.array(P.SOFTMAX_LOGITS)
    assert len(ax.containers) == len(P.SOFTMAX_TEMPERATURES)
    for bars, t in zip(ax.containers, P.SOFTMAX_TEMPERATURES, strict=True):
        heights = np.array([b.get_height() for b in bars])
        expected = np.exp(z / t) / np.exp(z / t).sum()
        np.testing.assert_allclose(heights, expected, rtol=1e-12)
        assert heights.sum() == pytest.approx(1.0)
        assert f"T = {t:g}: sum = 1.000" in [e.get_text() for e in ax.get_legend().get_texts()]


def test_softmax_outputs_stack_to_one(activation_axes):
    ax = activation_axes["softmax, one logit varied"]
    (total,) = [line for line in ax.lines if line.get_label() == "sum = 1"]
    np.testing.assert_allclose(total.get_ydata(), 1.0, rtol=1e-12)


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "softsign", "relu", "softplus", "sign"])
def test_each_function_panel_is_titled_with_its_formula(activation_axes, name):
    title = activation_axes[name].get_title()
    assert acts.SPECS[name].formula in title and acts.SPECS[name].derivative in title


def test_mosaic_lays_tiles_out_in_rows_with_gaps_each_on_its_own_scale():
    tiles = np.stack([np.arange(6.0).reshape(2, 3) * (i + 1) for i in range(5)])
    tiles[4] = 7.0  # constant
    out = P.mosaic(tiles, cols=3)
    assert out.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert np.isnan(out[2]).all() and np.isnan(out[:, 3]).all() and np.isnan(out[:, 7]).all()
    np.testing.assert_allclose(out[0:2, 0:3], np.arange(6.0).reshape(2, 3) / 5)
    np.testing.assert_allclose(out[0:2, 4:7], out[0:2, 0:3])  # scaled by its own range
    np.testing.assert_allclose(out[3:5, 4:7], 0.5)  # tile 4 (second row, second column)
    assert np.isnan(out[3:5, 8:11]).all()  # no sixth tile


def test_mosaic_symmetric_keeps_zero_at_zero():
    tiles = np.array([[[-2.0, 1.0]], [[0.0, 0.0]]])
    out = P.mosaic(tiles, cols=2, symmetric=True)
    np.testing.assert_allclose(out[0, :2], [-1.0, 0.5])
    np.testing.assert_allclose(out[0, 3:], [0.0, 0.0])


def test_mosaic_on_a_shared_scale_keeps_the_values_and_the_gap_width():
    tiles = np.arange(12.0).reshape(3, 2, 2)
    out = P.mosaic(tiles, cols=2, own_scale=False, gap=2)
    assert out.shape == (2 + 2 + 2, 2 + 2 + 2)
    np.testing.assert_array_equal(out[0:2, 4:6], tiles[1])
    np.testing.assert_array_equal(out[4:6, 0:2], tiles[2])
    assert np.isnan(out[2:4]).all() and np.isnan(out[4:6, 2:]).all()


@pytest.mark.parametrize("channels", [1, 3])
def test_filters_figure_labels_each_filter_on_one_scale_with_a_colour_bar(tmp_path, channels):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((12, channels, 3, 3))
    fig = P.filters_figure(weights)
    ax, bar = fig.axes
    assert bar.get_ylabel() == "weight"
    assert texts(ax) == [str(k) for k in range(12)]
    image = ax.images[0]
    top = np.abs(weights[:, 0]).max()
    assert image.get_clim() == pytest.approx((-top, top))  # 0 is white
    data = np.ma.filled(image.get_array(), np.nan)
    np.testing.assert_array_equal(data[0:3, 4:7], weights[1, 0])  # the values themselves
    assert "12 learned 3x3 filters" in ax.get_title()
    path = P.filters(weights, tmp_path / "filters.png")
    assert matplotlib.image.imread(path).shape[1] > 600


def test_feature_maps_figure_labels_the_maps_and_the_input(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (1, 10, 10)).astype(np.uint8)  # raw bytes, as in a split
    maps = np.maximum(rng.standard_normal((20, 10, 10)), 0.0)
    fig = P.feature_maps_figure(image, maps)
    ax_in, ax_maps, bar = fig.axes
    assert ax_in.get_title() == "input image"
    shown = ax_in.images[0].get_array()
    assert shown.min() == 0.0 and shown.max() == 1.0  # the image's own range, not clipped
    assert texts(ax_maps) == [f"map {k}" for k in range(16)]
    assert "feature maps 0-15 of 20" in ax_maps.get_title()
    assert ax_maps.images[0].get_clim() == pytest.approx((0.0, maps[:16].max()))
    assert bar.get_ylabel() == "feature map value"
    path = P.feature_maps(image, maps, tmp_path / "maps.png")
    assert matplotlib.image.imread(path).shape[1] > 600
