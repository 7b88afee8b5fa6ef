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

#: Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
INTERRUPTED = 130


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn a DlrunError into one clear message and its exit code (2), a MemoryError into
    one message and exit code 1, Ctrl-C into exit code 130 (tracebacks only with --debug)."""
    try:
        yield
    except DlrunError as exc:
        if STATE["debug"]:
            raise
        report(exc)
        raise typer.Exit(exc.exit_code) from None
    except MemoryError as exc:  # e.g. a layer of 2**31 units: numpy cannot allocate it
        if STATE["debug"]:
            raise
        report(out_of_memory(exc))
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        if STATE["debug"]:
            raise
        err_console.print("interrupted")
        raise typer.Exit(INTERRUPTED) from None


def out_of_memory(exc: MemoryError) -> DlrunError:
    """A MemoryError as one message (numpy's names the array it could not allocate)."""
    what = str(exc) or "an allocation failed"
    return DlrunError(
        f"out of memory: {what}",
        hint="a layer, batch or dataset in the config is probably far larger than meant",
    )


def report(exc: DlrunError) -> None:
    """Print ``exc`` as ``error: message`` (and ``hint: ...``) on stderr."""
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    if exc.hint:
        err_console.print(f"[yellow]hint:[/] {escape(exc.hint)}")


def stdout_is_terminal() -> bool:
    return sys.stdout.isatty()
