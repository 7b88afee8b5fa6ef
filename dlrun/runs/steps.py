"""Every update of a run, one row each: ``steps.csv`` (with ``log.every_step``).

metrics.csv holds one row per epoch: means over the epoch's batches. Some lessons happen
between two rows: an exploding gradient throws the weights away within a few updates, and
stochastic gradient descent's noise is a property of single updates. steps.csv keeps each
update::

    step, epoch, loss, grad_norm/<layer>, ...

``step`` counts updates from 1, ``loss`` is the batch's loss C before the update, and
``grad_norm/<layer>`` is ||dC/dW|| of each weight matrix (before clipping), from the
input's layer to the output's. A step whose loss or gradient is not finite (where a run
diverged) is the last row, with its non-finite values.

Rows are kept in memory for the epoch in progress and appended to the file at each epoch's
end (and when the run stops). A resumed or rolled-back run first drops the rows after its
checkpoint's step (:meth:`StepRecord.keep_until`), so the file always describes the
updates that led to the weights it continues from.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from dlrun.runs.rundir import atomic_write_text

FILE = "steps.csv"


def _cell(value: Any) -> Any:
    return repr(value) if isinstance(value, float) else value


class StepRecord:
    """The rows of steps.csv: :meth:`add` one per update, :meth:`flush` to the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.rows: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)

    def flush(self) -> None:
        """Append the rows held in memory to the file (its header first if it is new)."""
        if not self.rows:
            return
        new = not self.path.is_file() or self.path.stat().st_size == 0
        columns = list(self.rows[0]) if new else read_header(self.path)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if new:
            writer.writerow(columns)
        for row in self.rows:
            writer.writerow([_cell(row.get(k, "")) for k in columns])
        with self.path.open("a", encoding="utf-8") as f:
            f.write(buf.getvalue())
        self.rows = []

    def keep_until(self, step: int) -> None:
        """Forget the rows after update ``step``, in memory and in the file (rewritten
        atomically; lines cut short by a kill are dropped too)."""
        self.rows = [r for r in self.rows if r["step"] <= step]
        if not self.path.is_file():
            return
        columns, rows = read_steps(self.path)
        kept = [r for r in rows if r["step"] <= step]
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        for row in kept:
            writer.writerow([_cell(row[k]) for k in columns])
        atomic_write_text(self.path, buf.getvalue())


def read_header(path: Path) -> list[str]:
    with Path(path).open(encoding="utf-8", newline="") as f:
        return next(csv.reader(f), [])


def read_steps(path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """(columns, rows) of a steps.csv: numbers (``step`` and ``epoch`` as int, the rest as
    float, NaN where empty); rows that are not whole are left out."""
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    with Path(path).open(encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        columns = next(reader, [])
        for raw in reader:
            if len(raw) != len(columns):
                continue
            try:
                row = {k: float(v) if v != "" else math.nan for k, v in zip(columns, raw)}
            except ValueError:
                continue
            if not (math.isfinite(row.get("step", math.nan)) and "epoch" in row):
                continue
            row["step"], row["epoch"] = int(row["step"]), int(row["epoch"])
            rows.append(row)
    return columns, rows
