"""The optimizer-paths figure: what it draws is the optimizers' own paths, titled and
explained; bad surface names are refused."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.errors import ConfigError
from dlrun.optim import surfaces as S
from dlrun.runs import optimizer_paths as O
from dlrun.runs.figure import plt


@pytest.fixture(scope="module")
def saddle_figure():
    fig = O.figure(["saddle"], steps=8)
    yield fig
    plt.close(fig)


def test_the_paths_panel_draws_each_optimizers_path(saddle_figure):
    ax_paths = saddle_figure.axes[0]
    surface = S.SURFACES["saddle"]
    drawn = [line for line in ax_paths.lines if line.get_linestyle() in ("-", "--")]
    assert len(drawn) == len(S.OPTIMIZERS)
    for line, name in zip(drawn, S.OPTIMIZERS, strict=True):
        expected = S.trajectory(surface, name, steps=8)
        np.testing.assert_array_equal(line.get_xdata(), expected[:, 0])
        np.testing.assert_array_equal(line.get_ydata(), expected[:, 1])
        assert line.get_color() == O.COLOURS[name]
    assert "x² - y² + y⁴ / 2" in ax_paths.get_title() and "8 steps" in ax_paths.get_title()
    assert ax_paths.get_xlabel() and ax_paths.get_ylabel()


def test_the_ridge_start_is_drawn_and_said_to_end_at_the_saddle(saddle_figure):
    ax_paths = saddle_figure.axes[0]
    (ridge,) = [line for line in ax_paths.lines if line.get_linestyle() == ":"]
    assert "exactly on the ridge" in ridge.get_label() and "ends at the saddle" in ridge.get_label()
    np.testing.assert_allclose(ridge.get_ydata(), -0.02)  # y = 0, drawn just below


def test_momentum_vs_nesterov_panel_and_the_legends(saddle_figure):
    ax_paths, ax_mn, ax_f = saddle_figure.axes[:3]
    labels = [line.get_label() for line in ax_mn.lines if not line.get_label().startswith("_")]
    assert labels == ["gd (lr 0.2)", "momentum (lr 0.05)", "nesterov (lr 0.05)"]
    assert "momentum vs Nesterov" in ax_mn.get_title()
    key = [t.get_text() for t in saddle_figure.legends[0].get_texts()]
    assert key[: len(S.OPTIMIZERS)] == list(S.OPTIMIZERS)
    assert {"start", "end", "minimum", "saddle point"} <= set(key)
    assert ax_f.get_yscale() == "log" and ax_f.get_xlabel() == "step"
    assert [t.get_text() for t in ax_f.get_legend().get_texts()] == [
        f"{n}: {S.SURFACES['saddle'].lrs[n]:g}" for n in S.OPTIMIZERS
    ]


def test_local_minima_are_named_global_and_local():
    fig = O.figure(["local"], steps=2)
    notes = [t.get_text() for t in fig.axes[0].texts]
    assert any(n.startswith("global minimum") for n in notes)
    assert any(n.startswith("local minimum") for n in notes)
    plt.close(fig)


def test_bad_surface_is_a_config_error_with_a_suggestion(tmp_path):
    with pytest.raises(ConfigError, match="'vally'.*did you mean 'valley'.*or all"):
        O.optimizers(tmp_path / "x.png", "vally")
    assert not (tmp_path / "x.png").exists()
