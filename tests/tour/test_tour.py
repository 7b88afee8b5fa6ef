"""dlrun tour: lessons run, pictures land in the tour's folder, numbers are checked."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.errors import ConfigError
from dlrun.tour import run
from dlrun.tour.figures import LineHistory
from dlrun.tour.run import run_tour
from tests.conftest import CONFIGS, ROOT

COURSE = ROOT / "docs" / "course.md"
NUMBERS = ROOT / "docs" / "course" / "numbers.json"


def test_perceptron_and_activation_lessons_draw_and_check(tmp_path):
    said = []
    result = run_tour(CONFIGS, tmp_path / "runs", tmp_path / "out", only=[1, 3], say=said.append)
    assert {p.name for p in result.pictures} == {"01-perceptron-rule.png", "03-activations.png"}
    assert all(p.is_file() and p.stat().st_size > 10_000 for p in result.pictures)
    assert not result.failed
    table = json.loads((tmp_path / "out" / "numbers.json").read_text())
    assert table["and_perceptron.test_accuracy"]["value"] == 1.0
    assert table["xor_perceptron.best_accuracy"]["value"] <= 0.75
    assert table["sigmoid.derivative_at_0"]["value"] == 0.25
    assert any("xor_perceptron" in line for line in said)


def test_a_partial_tour_replaces_its_sections_numbers_and_keeps_the_others(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    entry = {"value": 2.0, "expected": [1, 3], "ok": True, "what": "x"}
    (out / "numbers.json").write_text(
        json.dumps(
            {
                "other.number": {**entry, "section": 1},
                "a.number.section.3.no.longer.states": {**entry, "section": 3},
            }
        )
    )
    run_tour(CONFIGS, tmp_path / "runs", out, only=[3], say=lambda s: None)
    table = json.loads((out / "numbers.json").read_text())
    assert set(table) == {"other.number", "sigmoid.derivative_at_0"}
    assert table["other.number"]["section"] == 1
    assert table["sigmoid.derivative_at_0"]["section"] == 3


def test_unknown_section_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="no section 99"):
        run_tour(CONFIGS, tmp_path / "runs", tmp_path / "out", only=[99])
    assert not (tmp_path / "runs").exists()


def test_a_number_outside_its_range_fails_the_tour(tmp_path, monkeypatch):
    def lesson(t):
        t.expect("made.up", 5.0, 0.0, 1.0, "a number the tour gets wrong")

    monkeypatch.setattr(run, "LESSONS", [(1, "made_up", lesson)])
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["tour", "--out", str(out), "--runs-dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "made.up = 5, expected 0 to 1" in result.output
    assert json.loads((out / "numbers.json").read_text())["made.up"]["ok"] is False


def test_missing_configs_folder_is_one_clear_error(tmp_path):
    result = CliRunner().invoke(
        app,
        ["tour", "--sections", "1", "--configs", str(tmp_path / "nowhere"), "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "nowhere/and_perceptron.yaml" in result.output and "Traceback" not in result.output


def test_line_history_counts_points_on_the_wrong_side():
    h = LineHistory(lines=[np.array([-1.5, 1.0, 1.0]), np.array([-0.5, 1.0, 1.0])])
    h.x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    h.y = np.array([0, 0, 0, 1])  # AND
    assert h.errors().tolist() == [0, 2]  # x1 + x2 >= 1.5 is AND; >= 0.5 is OR
    h.y = np.array([0, 1, 1, 0])  # XOR
    assert h.errors().tolist() == [3, 1]


@pytest.mark.slow
def test_the_whole_tour_holds_its_numbers(tmp_path):
    """The whole tour, as `dlrun tour` runs it: every number in its range, the same numbers
    as the committed docs/course/numbers.json (which docs/course.md states), every committed
    picture drawn again."""
    numbers = ROOT / "docs" / "course" / "numbers.json"
    result = run_tour(CONFIGS, tmp_path / "runs", tmp_path / "out", say=lambda s: None)
    assert not result.failed, [(n.key, n.value, n.lo, n.hi) for n in result.failed]
    assert {n.key for n in result.numbers} == set(json.loads(numbers.read_text()))
    assert {p.name for p in numbers.parent.glob("*.png")} == {p.name for p in result.pictures}
