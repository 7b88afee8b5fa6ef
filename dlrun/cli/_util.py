"""Shared CLI pieces: the console, error handling, the --debug flag."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape

from dlrun.errors import DlrunError

#: Width of tables written to a file or a pipe (rich would cut them at 80 columns).
PIPE_WIDTH = 200


def make_console(stderr: bool = False) -> Console:
    """A rich console. On a terminal it takes the terminal's width; written to a file or
    a pipe (``dlrun runs > runs.txt``, a CI log) it is PIPE_WIDTH columns wide, unless
    $COLUMNS says otherwise, so that tables keep their cells whole."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(
        stderr=stderr, highlight=False, soft_wrap=True, width=PIPE_WIDTH if piped else None
    )


console = make_console()
err_console = make_console(stderr=True)

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
