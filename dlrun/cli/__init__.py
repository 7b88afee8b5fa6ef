"""The ``dlrun`` command line: a thin layer over functions that also work from Python."""

from __future__ import annotations

import importlib
import sys

import typer

from dlrun import __version__
from dlrun.cli import _util
from dlrun.errors import DlrunError

app = typer.Typer(
    name="dlrun",
    help="Train neural networks described by YAML files, with hand-written Numba kernels.",
    rich_markup_mode="rich",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dlrun {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Train, compare and check neural networks described by YAML configs."""
    _util.STATE["debug"] = debug


# each command module registers itself on `app` when imported
for _command in (
    "compare",
    "config",
    "eval",
    "gradcheck",
    "list",
    "plot",
    "plot_runs",
    "plot_weights",
    "runs",
    "sample",
    "schema",
    "tour",
    "train",
    "tune",
    "warmup",
):
    importlib.import_module(f"dlrun.cli.{_command}_cmd")

__all__ = ["app", "main"]


def main() -> None:
    """The ``dlrun`` program. A DlrunError that a command let escape (one raised
    outside its ``handle_errors`` block) is still reported as one message."""
    try:
        app()
    except DlrunError as exc:
        if _util.STATE["debug"]:
            raise
        _util.report(exc)
        sys.exit(exc.exit_code)
