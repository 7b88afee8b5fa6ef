"""The machinery of ``dlrun tour``: run a lesson's experiments, keep its pictures, check its numbers.

A lesson (:mod:`dlrun.tour.lessons`) is a function of a :class:`Tour`. It trains
shipped configs (:meth:`Tour.train`), runs shipped sweeps (:meth:`Tour.compare`),
draws or copies pictures into the tour's folder (:meth:`Tour.keep`,
:meth:`Tour.draw`) and states the numbers a learner should see, each with the
range it must fall in (:meth:`Tour.expect`). ``numbers.json`` in the tour's
folder holds every number with its range; a number outside its range makes the
tour fail (exit code 1), so the tour is also the test of what docs/course.md
promises.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError, DlrunError
from dlrun.runs.rundir import RunDir, atomic_write


@dataclass
class Number:
    """A number the tour states: its measured value and the range it must fall in."""

    key: str
    value: float
    lo: float
    hi: float
    what: str
    section: int = 0  # the lesson that states it

    @property
    def ok(self) -> bool:
        return self.lo <= self.value <= self.hi


@dataclass
class TourResult:
    """What a tour produced: its numbers and pictures (also on disk in ``out``)."""

    out: Path
    numbers: list[Number] = field(default_factory=list)
    pictures: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # per lesson

    @property
    def failed(self) -> list[Number]:
        return [n for n in self.numbers if not n.ok]


class Tour:
    """One lesson's workspace: where its runs go, where its pictures go, what it measured.

    ``configs``: the folder of shipped configs (``configs/`` of the repository).
    ``runs_dir``: where the tour's runs and sweeps are written. ``out``: the
    folder of the pictures and ``numbers.json`` (docs/course in the repository).
    """

    def __init__(
        self,
        configs: Path,
        runs_dir: Path,
        out: Path,
        lesson: str,
        say: Callable[[str], None],
        shared: dict[str, Any] | None = None,
    ) -> None:
        self.configs, self.runs_dir, self.out = Path(configs), Path(runs_dir), Path(out)
        self.lesson, self.say = lesson, say
        self.numbers: list[Number] = []
        self.pictures: list[Path] = []
        self.shared = {} if shared is None else shared  # runs that later lessons reuse

    def once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` the first time a lesson of this tour asks for ``key``, the same result
        after that (lesson 12 draws the RNN of lesson 11 beside its LSTM)."""
        if key not in self.shared:
            self.shared[key] = make()
        return self.shared[key]

    # ----------------------------------------------------------------- experiments
    def config(self, name: str) -> Path:
        """configs/<name>.yaml (``name`` may hold a sub-folder: ``sweeps/optimizers``)."""
        path = self.configs / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(
                f"the tour needs {path}, which does not exist",
                hint="run `dlrun tour` in the repository's folder, or pass --configs",
            )
        return path

    def train(
        self,
        name: str,
        *overrides: str,
        run_name: str | None = None,
        callbacks: list[Callable[[Any], None]] | None = None,
    ) -> RunDir:
        """Train configs/<name>.yaml with ``overrides`` (``callbacks``: called by the
        trainer after every batch); the finished run's directory."""
        from dlrun.training.train import train

        started = time.perf_counter()
        result = train(
            self.config(name),
            runs_dir=self.runs_dir / self.lesson,
            overrides=list(overrides),
            name=run_name,
            callbacks=callbacks,
        )
        final = result.summary.get("final") or {}
        shown = "  ".join(
            f"{k} {final[k]:.4g}" for k in ("test_accuracy", "test_loss") if k in final
        )
        setting = f" {' '.join(overrides)}" if overrides else ""
        self.say(
            f"  train {name}{setting}: {result.summary['status']}  {shown}  "
            f"({time.perf_counter() - started:.1f} s)"
        )
        return RunDir(result.run_dir)

    def compare(self, name: str, *overrides: str, seeds: int | None = None) -> Any:
        """Run the sweep configs/<name>.yaml (cells done before are kept); its SweepResult."""
        from dlrun.sweeps.compare import compare

        started = time.perf_counter()
        result = compare(
            self.config(name),
            runs_dir=self.runs_dir / self.lesson,
            overrides=list(overrides),
            seeds=seeds,
            jobs=2,  # one process per core: the cells of a sweep are independent
        )
        if not result.ok:
            failed = "; ".join(f"{label}: {why}" for label, why in result.failed)
            raise DlrunError(f"sweep {name} of the tour did not finish: {failed}")
        self.say(
            f"  compare {name}: {len(result.rows)} runs ({time.perf_counter() - started:.1f} s)"
        )
        return result

    # ----------------------------------------------------------------- pictures
    def keep(self, source: Path, name: str) -> Path:
        """Copy a picture a run or sweep drew into the tour's folder as ``name``."""
        source = Path(source)
        if not source.is_file():
            raise DlrunError(f"the tour expected the picture {source}, which was not drawn")
        target = self.out / name
        atomic_write(target, lambda f: f.write(source.read_bytes()))
        self.pictures.append(target)
        return target

    def draw(self, name: str, figure: Callable[..., Path], *args: Any, **kwargs: Any) -> Path:
        """Draw ``figure(out / name, *args, **kwargs)`` into the tour's folder."""
        path = Path(figure(self.out / name, *args, **kwargs))
        self.pictures.append(path)
        return path

    # ----------------------------------------------------------------- numbers
    def expect(self, key: str, value: float, lo: float, hi: float, what: str) -> float:
        """State a number: ``value`` must lie in [lo, hi]. ``key`` names it in numbers.json
        and docs/course.md; ``what`` says in words what it is."""
        section = int(self.lesson.split("-")[0])
        number = Number(key, float(value), float(lo), float(hi), what, section)
        self.numbers.append(number)
        mark = "ok" if number.ok else f"OUTSIDE [{lo:g}, {hi:g}]"
        self.say(f"    {key} = {number.value:.4g}  ({what}; {mark})")
        return number.value


def sweep_values(result: Any, metric: str) -> dict[str, list[float]]:
    """Per setting of a finished sweep, ``metric`` of each seed's run (e.g. ``test_accuracy``,
    ``accuracy@5``, ``gap``), read from the runs' folders."""
    from dlrun.sweeps.results import metric_value

    out: dict[str, list[float]] = {}
    for row in result.rows:
        run = RunDir(Path(result.sweep_dir) / row["run_dir"])  # relative to the sweep
        outcome = {
            "status": row["status"],
            "summary": run.read_json("summary.json"),
            "curves": run.metrics(),
        }
        value = metric_value(outcome, metric, result.sweep.target)
        setting = ",".join(str(row[k]) for k in result.sweep.axes) or "base"
        out.setdefault(setting, []).append(float("nan") if value is None else float(value))
    return out


def write_numbers(result: TourResult) -> Path:
    """numbers.json: every number of the tour, its range and whether it holds."""
    table = {
        n.key: {
            "section": n.section,
            "value": n.value,
            "expected": [n.lo, n.hi],
            "ok": n.ok,
            "what": n.what,
        }
        for n in result.numbers
    }
    path = result.out / "numbers.json"
    atomic_write(path, lambda f: f.write(json.dumps(table, indent=1).encode() + b"\n"))
    return path
