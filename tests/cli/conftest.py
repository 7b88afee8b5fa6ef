"""Shared by the CLI tests: one runner, ``invoke``, and --debug reset after each test."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from dlrun.cli import app
from dlrun.cli._util import STATE

runner = CliRunner()


def invoke(*args):
    """Run ``dlrun ARGS`` in-process; paths may be given as Path objects."""
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def _reset_debug():
    yield
    STATE["debug"] = False
