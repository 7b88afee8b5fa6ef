"""dlrun compare SWEEP"""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command()
def compare(
    sweep: Path = typer.Argument(..., help="Sweep file (or a config file with --grid / --seeds)."),
    grid: list[str] = typer.Option(
        [], "--grid", "-g", help="Sweep a key: --grid optimizer.name=gd,momentum,adam (repeatable)."
    ),
    seeds: int = typer.Option(
        None, "--seeds", help="Seeds 0..N-1 for every setting.", show_default=False
    ),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Fix a key in every cell: --set train.epochs=5"
    ),
    runs_dir: Path = typer.Option(
        Path("runs"), "--runs-dir", help="Folder that receives the sweep folder."
    ),
    name: str = typer.Option(
        None, "--name", help="Sweep folder name (default: the sweep's name or file stem)."
    ),
    jobs: int = typer.Option(
        1, "--jobs", "-j", help="Local processes (threads per process: cores // jobs)."
    ),
    executor: str = typer.Option("local", "--executor", help="local | dask"),
    address: str = typer.Option(
        None,
        "--address",
        help="Dask scheduler, e.g. tcp://127.0.0.1:8786, or tls://HOST:PORT with --tls-*.",
    ),
    tls_ca_file: Path = typer.Option(
        None,
        "--tls-ca-file",
        help="Dask over TLS: the CA certificate that signed the cluster's certificates.",
        show_default=False,
    ),
    tls_cert: Path = typer.Option(
        None,
        "--tls-cert",
        help="Dask over TLS: this client's certificate (PEM).",
        show_default=False,
    ),
    tls_key: Path = typer.Option(
        None, "--tls-key", help="Dask over TLS: this client's private key.", show_default=False
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        help="Threads per process (default: $DLRUN_THREADS, else cores // jobs).",
        show_default=False,
    ),
    timeout: float = typer.Option(5.0, "--timeout", help="Seconds to wait for the Dask scheduler."),
    fail_fast: bool = typer.Option(False, "--fail-fast", help="Stop at the first failed cell."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the table, no line per cell."),
) -> None:
    """Run every cell of a sweep and show one table (mean ± std over seeds) and one plot.

    Running the same sweep again skips the cells already done and reruns failed
    or interrupted ones. Cells run in worker processes: a cell that crashes its
    process is marked failed (with its signal or exit code) and the others go on.
    Exit code 1 when a cell failed, 2 for a bad sweep.

    With --executor dask, whoever controls the scheduler can run code in this
    process and this process runs code on the workers: on a shared network use a
    tls:// scheduler and --tls-ca-file, --tls-cert, --tls-key.
    """
    from dlrun.runs.threads import default_threads
    from dlrun.sweeps.executors import prestart

    if executor == "local":  # the workers' imports overlap ours and the sweep's validation
        prestart(jobs, threads if threads is not None else default_threads())
    from dlrun.sweeps.compare import compare as run_compare

    with handle_errors():
        result = run_compare(
            sweep,
            runs_dir=runs_dir,
            jobs=jobs,
            executor=executor,
            address=address,
            timeout=timeout,
            tls={"ca_file": tls_ca_file, "cert": tls_cert, "key": tls_key},
            threads=threads if threads is not None else default_threads(),
            fail_fast=fail_fast,
            grid=grid or None,
            seeds=seeds,
            overrides=set_,
            name=name,
            progress="silent" if quiet else "plain",
        )
        console.print(result.table())
        console.print(
            f"sweep: {result.sweep_dir}  ({result.ran} run, {result.skipped} done before)"
        )
        for path in result.plots:
            console.print(f"plot: {path}")
        if result.failed:
            console.print(f"[bold red]{len(result.failed)} failed:[/]")
            for label, reason in result.failed:
                console.print(f"  {label}: {reason}", markup=False)
        if result.interrupted:
            console.print("interrupted: run the same command again to continue")
            raise typer.Exit(130)
        if result.failed:
            raise typer.Exit(1)
