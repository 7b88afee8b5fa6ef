"""Figures: the tiled pictures of filters and feature maps (drawn without axes), and the
epoch axis of the learning curves."""

from __future__ import annotations

import matplotlib.image
import numpy as np
import pytest

from dlrun.runs.figure import epoch_axis, plt
from dlrun.runs.pictures import feature_maps, filters, mosaic


def test_mosaic_lays_tiles_out_in_rows_with_gaps_each_on_its_own_scale():
    tiles = np.stack([np.arange(6.0).reshape(2, 3) * (i + 1) for i in range(5)])
    tiles[4] = 7.0  # constant
    out = mosaic(tiles, cols=3)
    assert out.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert np.isnan(out[2]).all() and np.isnan(out[:, 3]).all() and np.isnan(out[:, 7]).all()
    np.testing.assert_allclose(out[0:2, 0:3], np.arange(6.0).reshape(2, 3) / 5)
    np.testing.assert_allclose(out[0:2, 4:7], out[0:2, 0:3])  # scaled by its own range
    np.testing.assert_allclose(out[3:5, 4:7], 0.5)  # tile 4 (second row, second column)
    assert np.isnan(out[3:5, 8:11]).all()  # no sixth tile


def test_mosaic_symmetric_keeps_zero_at_zero():
    tiles = np.array([[[-2.0, 1.0]], [[0.0, 0.0]]])
    out = mosaic(tiles, cols=2, symmetric=True)
    np.testing.assert_allclose(out[0, :2], [-1.0, 0.5])
    np.testing.assert_allclose(out[0, 3:], [0.0, 0.0])


@pytest.mark.parametrize("channels", [1, 3])
def test_filter_and_feature_map_pictures(tmp_path, channels):
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((12, channels, 3, 3))
    png = matplotlib.image.imread(filters(weights, tmp_path / "filters.png"))
    zoom = 80 // 3
    assert png.shape[:2] == ((2 * 4 - 1) * zoom, (8 * 4 - 1) * zoom)  # 2 rows of 8
    image = rng.random((channels, 10, 10))
    maps = rng.standard_normal((20, 10, 10))
    png = matplotlib.image.imread(feature_maps(image, maps, tmp_path / "maps.png"))
    zoom = 84 // 10
    assert png.shape[:2] == ((2 * 11 - 1) * zoom, (10 + 2 + 8 * 11 - 1) * zoom)  # 16 maps


@pytest.mark.parametrize("epochs", [3, 20, 60])
def test_epoch_axis_ticks_whole_epochs_only(epochs):
    fig, ax = plt.subplots()
    ax.plot(np.arange(1, epochs + 1), np.linspace(1, 0, epochs))
    epoch_axis(ax)
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= epochs]
    plt.close(fig)
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks
    assert ax.get_xlabel() == "epoch"


@pytest.mark.parametrize("layers, legend", [(3, True), (9, False)])
def test_grad_norm_lines_are_named_by_a_legend_or_a_colour_scale(layers, legend, monkeypatch):
    """Up to 8 layers each line is in the legend; beyond, a colour bar maps colour to layer."""
    import dlrun.runs.plots as P

    drawn = []
    monkeypatch.setattr(P, "save", lambda fig, path, tight=True: drawn.append(fig))
    rows = [
        {"epoch": e, **{f"grad_norm/d{i}": 10.0**-i * e for i in range(layers)}} for e in (1, 2)
    ]
    P.grad_norms(rows, None)
    fig = drawn[0]
    left = fig.axes[0]
    assert (left.get_legend() is not None) is legend
    colorbars = [ax for ax in fig.axes[2:] if ax.get_ylabel().startswith("layer")]
    assert len(colorbars) == (0 if legend else 1)
    plt.close(fig)
