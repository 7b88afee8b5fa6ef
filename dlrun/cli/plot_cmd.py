"""dlrun plot activations"""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors

plot_app = typer.Typer(help="Draw figures.", no_args_is_help=True)
app.add_typer(plot_app, name="plot")


@plot_app.command("activations")
def activations(
    out: Path = typer.Option(Path("activations.png"), "--out", "-o", help="PNG file to write."),
) -> None:
    """Every activation function and its derivative in one PNG."""
    from dlrun.runs import pictures

    with handle_errors():
        console.print(f"wrote {pictures.activations(out)}")
