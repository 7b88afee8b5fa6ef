"""dlrun runs [RUNS_DIR]"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command()
def runs(
    runs_dir: Path = typer.Argument(Path("runs"), help="Folder holding run directories."),
) -> None:
    """A table of runs: name, status, epochs, best monitored metric, duration."""
    from dlrun.runs.rundir import list_runs

    with handle_errors():
        table = Table(title=str(runs_dir))
        for col, just in (
            ("run", "left"),
            ("status", "left"),
            ("epochs", "right"),
            ("best", "right"),
            ("test acc", "right"),
            ("seconds", "right"),
        ):
            table.add_column(col, justify=just, no_wrap=col == "run")  # type: ignore[arg-type]
        for r in list_runs(runs_dir):
            monitor = r.get("monitor") if isinstance(r.get("monitor"), str) else "val_loss"
            best = _section(r, "best").get(monitor)
            test = _section(r, "final").get("test_accuracy")
            table.add_row(
                r["name"],
                str(r.get("status", "running?")),
                str(r.get("epochs", "")),
                f"{monitor} {best:.4g}" if isinstance(best, float) else "",
                f"{test:.4f}" if isinstance(test, float) else "",
                f"{r['seconds']:.1f}" if isinstance(r.get("seconds"), float) else "",
            )
        console.print(table)


def _section(summary: dict, key: str) -> dict:
    """``summary[key]`` if it is a mapping (a damaged summary may hold anything there)."""
    value = summary.get(key)
    return value if isinstance(value, dict) else {}
