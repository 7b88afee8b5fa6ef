"""dlrun config show CONFIG"""

from __future__ import annotations

from pathlib import Path

import typer
import yaml

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors

config_app = typer.Typer(help="Inspect config files.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def show(
    config: Path = typer.Argument(..., help="YAML config file."),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Override a key: --set optimizer.lr=0.01"
    ),
) -> None:
    """Print the resolved config: extends merged, overrides applied, every default filled in."""
    from dlrun.config.resolve import load

    with handle_errors():
        console.print(yaml.safe_dump(load(config, set_), sort_keys=False), end="", markup=False)
