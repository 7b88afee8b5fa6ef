"""dlrun eval RUN_DIR"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command("eval")
def eval_(
    run_dir: Path = typer.Argument(..., help="A run directory made by dlrun train."),
    split: str = typer.Option("test", "--split", help="train, val or test."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best or last."),
) -> None:
    """Metrics of a saved checkpoint on one split of the run's dataset."""
    from dlrun.training.evaluation import evaluate_run

    with handle_errors():
        metrics = evaluate_run(run_dir, split, checkpoint)
        table = Table(title=f"{run_dir} ({checkpoint}, {split})")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for k, v in metrics.items():
            if isinstance(v, float):
                table.add_row(k, f"{v:.6g}")
        console.print(table)
        if "confusion" in metrics:
            names = metrics["class_names"]
            cm = Table(title="confusion matrix (rows: true, columns: predicted)")
            cm.add_column("")
            for name in names:
                cm.add_column(name[:8], justify="right")
            for name, row in zip(names, metrics["confusion"]):
                cm.add_row(name[:12], *(str(int(c)) for c in row))
            console.print(cm)
