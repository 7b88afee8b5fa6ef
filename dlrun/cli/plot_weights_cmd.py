"""dlrun plot weights RUN_DIR...: a histogram of each run's final weights, side by side
(L1 against L2: L1 puts many weights at exactly 0, L2 shrinks all of them). The command
joins ``dlrun plot`` of :mod:`dlrun.cli.plot_cmd`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from rich.table import Table

from dlrun.cli._util import console, handle_errors
from dlrun.cli.plot_cmd import plot_app


def _regularizers(run_dir: Path) -> str:
    """'l1 (alpha 0.003)' and the like, from the run's config ('none' without)."""
    from dlrun.runs.rundir import RunDir

    specs = RunDir(run_dir).config().get("regularizers") or []
    return ", ".join(f"{r['name']} (alpha {r.get('alpha', '?')})" for r in specs) or "none"


@plot_app.command("weights")
def weights(
    runs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="Run directories."),
    out: Path = typer.Option(Path("weights.png"), "--out", "-o", help="PNG file to write."),
) -> None:
    """A histogram of each run's final weights (every layer's W; best.npz when early stopping
    restored it), with the share of |w| < 1e-3 that summary.json calls sparsity.

    Example: dlrun plot weights runs/l1-* runs/l2-* --out weights.png
    """
    from dlrun.runs.rundir import RunDir
    from dlrun.sweeps.plots import NEAR_ZERO, delivered_weights, weight_histograms

    with handle_errors():
        panels, table = [], Table("run", "regularizers", "weights", "|w| < 1e-3", "mean |w|")
        for run_dir in runs:
            RunDir.open(run_dir)  # a clear error for a folder that is no run
            w = delivered_weights(run_dir)
            regs = _regularizers(run_dir)
            panels.append((f"{run_dir.name[:28]}\n{regs}", w))
            near, mean = float(np.mean(np.abs(w) < NEAR_ZERO)), float(np.mean(np.abs(w)))
            table.add_row(run_dir.name, regs, f"{w.size:,}", f"{near:.1%}", f"{mean:.3g}")
        console.print(table)
        path = weight_histograms(panels, out, "final weights of every layer's W, per run")
        console.print(f"wrote {path}")
