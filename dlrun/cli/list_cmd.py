"""dlrun list"""

from __future__ import annotations

import typer
from rich.table import Table

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command("list")
def list_(
    kind: str = typer.Argument(None, help="Only this registry, e.g. layers or optimizers."),
) -> None:
    """Everything registered (layers, activations, losses, optimizers, ...) with a one-line description."""
    from dlrun.config import catalog
    from dlrun.config import registry as R
    from dlrun.errors import ConfigError

    with handle_errors():
        kinds = catalog.load()
        if kind is not None:
            if kind not in kinds:
                raise ConfigError(f"unknown registry '{kind}'; known: {', '.join(kinds)}")
            kinds = {kind: kinds[kind]}
        for title, reg in kinds.items():
            table = Table(title=title, title_justify="left", show_header=False, box=None)
            table.add_column("name", style="bold cyan")
            table.add_column("description")
            for name, obj in reg.items():
                table.add_row(name, R.Registry.describe(obj))
            console.print(table)
            console.print()
