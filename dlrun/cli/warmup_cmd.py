"""dlrun warmup CONFIG..."""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command()
def warmup(
    configs: list[Path] = typer.Argument(..., help="YAML config files to warm up."),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Override a key in every config: --set train.batch_size=128"
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        help="Threads for Numba kernels and BLAS, as the runs will use (the choice depends on it).",
    ),
    recalibrate: bool = typer.Option(
        False, "--recalibrate", help="Forget this machine's BLAS choices and measure again."
    ),
) -> None:
    """Compile the configs' kernels and choose the BLAS of each of their matrix products.

    Each config's network runs a full and a last training batch and an evaluation pass
    on its data: Numba caches the kernels, and the library that multiplies each product
    shape fastest here (OpenBLAS or MKL, measured once; [bold]DLRUN_BLAS[/] forces one)
    is remembered beside that cache, so later runs start without compiling or measuring.
    """
    from dlrun.kernels import blas_choice
    from dlrun.runs.blas_record import checked_policy
    from dlrun.runs.threads import check_threads, default_threads, set_threads
    from dlrun.runs.warmup import warmup as run_warmup

    with handle_errors():
        set_threads(check_threads(threads) if threads is not None else default_threads())
        console.print(f"BLAS policy: {checked_policy()}; wisdom: {blas_choice.wisdom_path()}")

        def report(choice: blas_choice.Choice) -> None:
            console.print(f"  {choice.describe()}", highlight=False)

        used = run_warmup(configs, set_, recalibrate, report)
        picked = [c.lib for c in used.values()]
        counts = ", ".join(f"{lib} {picked.count(lib)}" for lib in sorted(set(picked)))
        console.print(f"{len(used)} product classes: {counts or 'none'}")
