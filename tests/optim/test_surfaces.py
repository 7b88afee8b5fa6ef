"""The 2-D test surfaces and the optimizers' paths on them: gradients against central
differences, paths against hand-written NumPy loops, and what the figure claims."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.errors import ConfigError
from dlrun.optim import surfaces as S

VALLEY, SADDLE, LOCAL = S.SURFACES["valley"], S.SURFACES["saddle"], S.SURFACES["local"]


@pytest.mark.parametrize("name", list(S.SURFACES))
def test_gradient_is_the_derivative_of_f(name):
    surface = S.SURFACES[name]
    rng = np.random.default_rng(0)
    x0, x1, y0, y1 = surface.box
    h = 1e-6
    for w in rng.uniform([x0, y0], [x1, y1], size=(20, 2)):
        numeric = [
            (surface.value(w + h * e) - surface.value(w - h * e)) / (2 * h) for e in np.eye(2)
        ]
        np.testing.assert_allclose(surface.grad(w), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", list(S.SURFACES))
def test_marked_points_are_stationary_and_minima_are_minima(name):
    surface = S.SURFACES[name]
    for point in (*surface.minima, *surface.saddles):
        np.testing.assert_allclose(surface.grad(np.array(point)), 0.0, atol=1e-12)
    rng = np.random.default_rng(1)
    for point in surface.minima:
        around = np.array(point) + 1e-3 * rng.standard_normal((50, 2))
        assert (surface.value(around) > surface.value(np.array(point))).all()


def valley_grad(w):
    """d/dw of (x^2 / 25 + 4 y^2) / 2, written out again."""
    return np.array([w[0] / 25.0, 4.0 * w[1]])


def test_gd_path_is_the_plain_numpy_loop():
    lr, steps = 0.3, 25
    path = S.trajectory(VALLEY, "gd", lr=lr, steps=steps)
    w = np.array(VALLEY.start)
    expected = [w.copy()]
    for _ in range(steps):
        w -= lr * valley_grad(w)
        expected.append(w.copy())
    np.testing.assert_array_equal(path, expected)


@pytest.mark.parametrize("alpha", [0.9, 0.5])
def test_momentum_path_is_the_course_rule(alpha):
    """delta_w(n) = -eta g + alpha delta_w(n-1); w += delta_w(n); the setting reaches the
    optimizer built through the registry."""
    lr, steps = 0.1, 12
    path = S.trajectory(VALLEY, "momentum", lr=lr, steps=steps, alpha=alpha)
    w, delta = np.array(VALLEY.start), np.zeros(2)
    for n in range(1, steps + 1):
        delta = -lr * valley_grad(w) + alpha * delta
        w = w + delta
        np.testing.assert_allclose(path[n], w, rtol=1e-13, atol=1e-15)


def test_nesterov_path_is_the_look_ahead_point_of_the_classical_rule():
    """Classical Nesterov (gradient at w + alpha v): v = alpha v - eta grad(w + alpha v),
    w = w + v. dlrun stores the look-ahead point w + alpha v, so that is its path."""
    lr, alpha, steps = 0.1, 0.9, 12
    path = S.trajectory(VALLEY, "nesterov", lr=lr, steps=steps)
    w, v = np.array(VALLEY.start), np.zeros(2)
    for n in range(1, steps + 1):
        v = alpha * v - lr * valley_grad(w + alpha * v)
        w = w + v
        np.testing.assert_allclose(path[n], w + alpha * v, rtol=1e-12, atol=1e-14)
    # and it is not momentum's path
    assert not np.allclose(path, S.trajectory(VALLEY, "momentum", lr=lr, steps=steps))


def test_on_the_valley_momentum_gets_lower_than_gd_in_the_same_steps():
    paths = S.trajectories(VALLEY)
    f_gd, f_momentum = VALLEY.value(paths["gd"][-1]), VALLEY.value(paths["momentum"][-1])
    assert f_momentum < f_gd / 100
    assert f_gd > 0.01  # GD still crawls along the floor


@pytest.mark.parametrize("name", S.OPTIMIZERS)
def test_on_the_saddle_a_start_exactly_on_the_ridge_stays_on_it(name):
    path = S.trajectory(SADDLE, name, start=SADDLE.ridge_start)
    assert (path[:, 1] == 0.0).all()


def test_on_the_saddle_gd_on_the_ridge_ends_at_the_saddle_point_and_off_it_escapes():
    stuck = S.trajectory(SADDLE, "gd", start=SADDLE.ridge_start)
    np.testing.assert_allclose(stuck[-1], SADDLE.saddles[0], atol=1e-6)
    path = S.trajectory(SADDLE, "gd")
    assert SADDLE.start[1] == pytest.approx(0.001)
    np.testing.assert_allclose(path[-1], SADDLE.minima[1], atol=1e-3)  # the minimum y = +1


def test_on_the_saddle_every_rule_but_adadelta_leaves_the_ridge():
    paths = S.trajectories(SADDLE)
    for name, path in paths.items():
        if name == "adadelta":  # y does reach 1, x barely moves (its slow start)
            assert path[-1, 1] > 0.9 and path[-1, 0] < -1.4
        else:
            assert SADDLE.value(path[-1]) < -0.45, name  # near a minimum (f = -0.5)


def basin(path: np.ndarray) -> str:
    """Which minimum of the local surface a path ends at (or 'none')."""
    (x_global, _), (x_local, _) = LOCAL.minima
    end = path[-1]
    for which, x in (("global", x_global), ("local", x_local)):
        if np.hypot(end[0] - x, end[1]) < 0.05:
            return which
    return "none"


def test_on_the_local_surface_what_the_figure_shows():
    (x_global, _), (x_local, _) = LOCAL.minima
    assert x_global < 0 < x_local
    assert LOCAL.value(np.array(LOCAL.minima[0])) < LOCAL.value(np.array(LOCAL.minima[1]))
    ends = {name: basin(path) for name, path in S.trajectories(LOCAL).items()}
    assert ends == {
        "gd": "local",
        "momentum": "global",
        "nesterov": "global",
        "adagrad": "local",
        "adadelta": "none",
        "rmsprop": "local",
        "adam": "local",
        "adamax": "local",
        "nadam": "local",
    }


def test_the_basin_depends_on_the_rate_as_the_docstring_says():
    assert basin(S.trajectory(LOCAL, "momentum", lr=0.03)) == "local"
    assert basin(S.trajectory(LOCAL, "gd", lr=0.1)) == "global"


def test_bad_surface_and_steps_are_config_errors():
    with pytest.raises(ConfigError, match="unknown surface 'vally'.*valley"):
        S.get("vally")
    with pytest.raises(ConfigError, match="steps"):
        S.trajectory(VALLEY, "gd", steps=-1)
    with pytest.raises(ConfigError, match="unknown optimizer"):
        S.trajectory(VALLEY, "adamw")
