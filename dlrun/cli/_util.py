"""Shared CLI pieces: the console, error handling, the --debug flag."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from dlrun.errors import DlrunError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

STATE = {"debug": False}


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn a DlrunError into one clear message and exit code 2 (traceback only with --debug)."""
    try:
        yield
    except DlrunError as exc:
        if STATE["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}")
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        if STATE["debug"]:
            raise
        err_console.print("interrupted")
        raise typer.Exit(130) from None


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
