"""dlrun sample RUN_DIR"""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command()
def sample(
    run_dir: Path = typer.Argument(..., help="A run trained on the 'text' dataset."),
    length: int = typer.Option(300, "--length", "-n", help="Characters to generate."),
    temperature: float = typer.Option(
        0.8, "--temperature", "-t", help="< 1: safer choices, > 1: more surprising ones."
    ),
    prime: str = typer.Option(
        "", "--prime", "-p", help="Text to start from (default: one random character)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampling."),
    checkpoint: str = typer.Option("best", "--checkpoint", help="best or last."),
) -> None:
    """Generate text from a next-character model, one character at a time."""
    from dlrun.runs.sampling import sample_from_run

    with handle_errors():
        console.print(
            sample_from_run(str(run_dir), length, temperature, prime, seed, checkpoint),
            markup=False,
        )
