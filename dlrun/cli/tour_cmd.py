"""dlrun tour"""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command()
def tour(
    out: Path = typer.Option(Path("docs/course"), "--out", "-o", help="Folder of the pictures."),
    sections: str = typer.Option(
        "", "--sections", help="Only these sections, e.g. 1,3,12 (default: all)."
    ),
    configs: Path = typer.Option(Path("configs"), "--configs", help="The shipped configs."),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Where the runs go."),
    threads: int = typer.Option(
        None,
        "--threads",
        help="Threads for Numba kernels and BLAS (default: $DLRUN_THREADS, else all cores; "
        "on a busy machine 1 is often fastest).",
    ),
) -> None:
    """Run the course's lessons in order, draw the pictures of docs/course.md and check its
    numbers: exit code 1 if any number falls outside the range the tour promises."""
    from dlrun.errors import ConfigError
    from dlrun.runs.threads import check_threads, default_threads, set_threads
    from dlrun.tour.run import run_tour

    with handle_errors():
        set_threads(check_threads(threads) if threads is not None else default_threads())
        try:
            only = [int(s) for s in sections.split(",") if s.strip()]
        except ValueError:
            raise ConfigError(f"--sections takes numbers like 1,3,12, not '{sections}'") from None
        result = run_tour(
            configs, runs_dir, out, only, say=lambda s: console.print(s, markup=False)
        )
        total = sum(result.seconds.values())
        console.print(
            f"{len(result.pictures)} pictures and {len(result.numbers)} numbers in {out} "
            f"({total:.0f} s)"
        )
        if result.failed:
            for n in result.failed:
                console.print(
                    f"[red]{n.key} = {n.value:.4g}, expected {n.lo:g} to {n.hi:g}[/] ({n.what})"
                )
            raise typer.Exit(1)
