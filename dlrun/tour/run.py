"""``dlrun tour``: the lessons in the course's order, into one folder of pictures and numbers."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from dlrun.errors import ConfigError
from dlrun.tour.lessons import LESSONS
from dlrun.tour.tour import Number, Tour, TourResult, write_numbers


def run_tour(
    configs: Path,
    runs_dir: Path,
    out: Path,
    only: list[int] | None = None,
    say: Callable[[str], None] = print,
) -> TourResult:
    """Run the lessons (all, or the sections in ``only``) in the course's order, write their
    pictures and ``numbers.json`` into ``out``. Runs go into a new folder under ``runs_dir``."""
    known = [number for number, _, _ in LESSONS]
    unknown = sorted(set(only or []) - set(known))
    if unknown:
        raise ConfigError(
            f"the tour has no section {', '.join(map(str, unknown))}",
            hint=f"sections: {', '.join(map(str, known))}",
        )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = Path(runs_dir) / f"tour-{time.strftime('%Y%m%d-%H%M%S')}"
    result = TourResult(out)
    shared: dict = {}
    for number, name, lesson in LESSONS:
        if only and number not in only:
            continue
        say(f"{number}. {name}")
        started = time.perf_counter()
        tour = Tour(configs, runs, out, f"{number:02d}-{name}", say, shared)
        lesson(tour)
        result.numbers += tour.numbers
        result.pictures += tour.pictures
        result.seconds[name] = time.perf_counter() - started
    if only:  # a partial tour keeps the numbers of the sections it did not run
        old = out / "numbers.json"
        kept = json.loads(old.read_text()) if old.is_file() else {}
        others = [
            Number(k, v["value"], *v["expected"], v["what"], v.get("section", 0))
            for k, v in kept.items()
            if v.get("section", 0) not in only
        ]
        result.numbers = sorted(others + result.numbers, key=lambda n: n.section)
    write_numbers(result)
    return result
