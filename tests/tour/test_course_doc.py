"""docs/course.md: its code references point at their lines, it states every number the
tour checks, and it has a section for every lesson."""

import json
import re

from dlrun.tour import lessons
from tests.conftest import ROOT

COURSE = ROOT / "docs" / "course.md"
NUMBERS = ROOT / "docs" / "course" / "numbers.json"
#: [`path:line`](../path#Lline): `excerpt`, as scripts/course_refs.py writes them
REFERENCE = re.compile(r"\[`(dlrun/[^`:]+):(\d+)`\]\(\.\./([^)#]+)#L(\d+)\): `([^`]+)`")


def test_every_code_reference_points_at_its_excerpt():
    refs = REFERENCE.findall(COURSE.read_text())
    assert len(refs) >= 20
    wrong = []
    for path, line, link, link_line, excerpt in refs:
        lines = (ROOT / path).read_text().splitlines()
        n = int(line)
        if link != path or link_line != line or n > len(lines) or excerpt not in lines[n - 1]:
            wrong.append(f"{path}:{line} `{excerpt}`")
    assert not wrong, f"run python scripts/course_refs.py; stale references: {wrong}"


def test_course_md_states_every_number_of_the_tour():
    table = json.loads(NUMBERS.read_text())
    text = COURSE.read_text()
    missing = [key for key in table if f"`{key}`" not in text]
    assert not missing, f"docs/course.md does not state {missing}"


def test_course_md_has_a_section_per_lesson_in_order():
    text = COURSE.read_text()
    found = [int(n) for n in re.findall(r"^## (\d+)\. ", text, flags=re.M)]
    assert found == list(range(1, 13))
    assert {number for number, _, _ in lessons.LESSONS} <= set(found)


def test_every_picture_the_course_shows_is_committed():
    shown = re.findall(r"\]\((course/[^)]+\.png)\)", COURSE.read_text())
    assert shown
    missing = [p for p in shown if not (COURSE.parent / p).is_file()]
    assert not missing
