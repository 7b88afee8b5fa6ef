"""steps.csv (dlrun/runs/steps.py) and its figure (dlrun/runs/steps_plot.py)."""

import math

from dlrun.runs.steps import StepRecord, read_steps
from dlrun.runs.steps_plot import steps_figure


def row(step, epoch, loss, *norms):
    out = {"step": step, "epoch": epoch, "loss": loss}
    out.update({f"grad_norm/dense_{i}": v for i, v in enumerate(norms)})
    return out


def test_rows_are_appended_at_each_flush_and_read_back_exactly(tmp_path):
    record = StepRecord(tmp_path / "steps.csv")
    record.add(row(1, 1, 0.5, 1.25, 0.1))
    record.add(row(2, 1, 0.4, 1.0 / 3.0, 0.0))
    record.flush()
    record.add(row(3, 2, float("inf"), float("nan"), 2.0))
    record.flush()
    record.flush()  # nothing held: nothing written
    columns, rows = read_steps(tmp_path / "steps.csv")
    assert columns == ["step", "epoch", "loss", "grad_norm/dense_0", "grad_norm/dense_1"]
    assert [r["step"] for r in rows] == [1, 2, 3] and rows[1]["grad_norm/dense_0"] == 1.0 / 3.0
    assert math.isinf(rows[2]["loss"]) and math.isnan(rows[2]["grad_norm/dense_0"])


def test_keep_until_forgets_the_steps_after_a_checkpoint(tmp_path):
    path = tmp_path / "steps.csv"
    record = StepRecord(path)
    for step in range(1, 6):
        record.add(row(step, 1 + (step > 3), 0.1 * step, 1.0))
    record.flush()
    record.add(row(6, 2, 0.6, 1.0))  # in memory, past the checkpoint too
    with path.open("a") as f:
        f.write("7,2,0.7")  # a line cut short by a kill
    record.keep_until(4)
    assert [r["step"] for r in read_steps(path)[1]] == [1, 2, 3, 4]
    assert record.rows == []
    record.add(row(5, 2, 0.55, 2.0))
    record.flush()
    assert [r["loss"] for r in read_steps(path)[1]] == [0.1, 0.2, 0.30000000000000004, 0.4, 0.55]


def test_the_figure_of_a_diverged_run_marks_its_last_step(tmp_path):
    record = StepRecord(tmp_path / "steps.csv")
    for step in range(1, 40):
        grow = 1.5**step
        record.add(row(step, 1, 0.3 * grow, 10 * grow, grow, 0.0 if step > 30 else 0.1))
    record.add(row(40, 1, float("inf"), float("nan"), float("inf"), 0.0))
    record.flush()
    out = steps_figure(tmp_path / "steps.csv", tmp_path / "steps.png", {"name": "demo"}, "diverged")
    assert out.stat().st_size > 10_000
