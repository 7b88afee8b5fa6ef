"""dlrun plot through-time, dlrun plot grad-norms: several runs in one figure, on one scale
(the commands join ``dlrun plot`` of :mod:`dlrun.cli.plot_cmd`)."""

from __future__ import annotations

import math
from pathlib import Path

import typer
from rich.table import Table

from dlrun.cli._util import console, handle_errors
from dlrun.cli.plot_cmd import plot_app
from dlrun.errors import ConfigError


def _g(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3g}"


@plot_app.command("through-time")
def through_time(
    runs: list[Path] = typer.Argument(
        ..., metavar="RUN_DIR...", help="Run directories of networks with an rnn or lstm layer."
    ),
    out: Path = typer.Option(Path("through_time.png"), "--out", "-o", help="PNG file to write."),
    relative: bool = typer.Option(
        False, "--relative", help="Divide each line by its value at the last time step."
    ),
) -> None:
    """||dC/dh_t|| per time step of every run, before and after training, on one scale.

    Example: dlrun plot through-time runs/rnn_adding-* runs/lstm_adding-* --out through_time.png
    """
    from dlrun.runs import overlays

    with handle_errors():
        path, rows = overlays.through_time(runs, out, relative)
        table = Table("run", "layer", "when", "||dC/dh_1||", "||dC/dh_T||", "step 1 / step T")
        for r in rows:
            table.add_row(
                r["run"], f"{r['layer']} ({r['type']})", r["when"],
                _g(r["first"]), _g(r["last"]), _g(r["ratio"]),
            )  # fmt: skip
        console.print(table)
        console.print(f"wrote {path}")


@plot_app.command("grad-norms")
def grad_norms(
    runs: list[Path] = typer.Argument(..., metavar="RUN_DIR...", help="Run directories."),
    out: Path = typer.Option(Path("grad_norms.png"), "--out", "-o", help="PNG file to write."),
    epoch: str = typer.Option(
        "1", "--epoch", help="Which epoch's gradient norms: a number, or 'last'."
    ),
) -> None:
    """Each layer's weight-gradient norm against its depth, one line per run, one log scale.

    Example: dlrun plot grad-norms runs/vanishing_sigmoid-* runs/vanishing_relu-* --out g.png
    """
    from dlrun.runs import overlays

    with handle_errors():
        if epoch == "last":
            which = None
        elif epoch.isdigit() and int(epoch) >= 1:
            which = int(epoch)
        else:
            raise ConfigError(f"--epoch must be a number >= 1 or 'last', got '{epoch}'")
        path, rows = overlays.grad_norms_by_depth(runs, out, which)
        table = Table("run", "epoch", "layers", "layer 1", "last layer", "ratio", "per layer")
        for r in rows:
            table.add_row(
                r["run"], str(r["epoch"]), str(r["layers"]), _g(r["first"]), _g(r["last"]),
                _g(r["ratio"]), _g(r["per_layer"]),
            )  # fmt: skip
        console.print(table)
        console.print(f"wrote {path}")
