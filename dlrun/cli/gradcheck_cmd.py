"""dlrun gradcheck [NAME ...]"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dlrun.cli import app
from dlrun.cli._util import console, handle_errors


@app.command()
def gradcheck(
    names: list[str] = typer.Argument(
        None, help="Layers or losses to check (default: all registered)."
    ),
    config: Path = typer.Option(
        None, "--config", "-c", help="Check the network this config builds."
    ),
    set_: list[str] = typer.Option([], "--set", "-s", help="Override a config key."),
    max_entries: int = typer.Option(
        200,
        "--max-entries",
        help="With --config: check at most this many random entries per tensor.",
    ),
) -> None:
    """Check every layer's and loss's gradients against central differences (float64).

    eps 1e-6; an entry passes when |analytic - numeric| <= 1e-5 + 1e-3 |numeric|.
    Differences that straddle a kink (ReLU or sign at 0) are skipped and counted.
    Exit code 1 if anything fails.
    """
    from dlrun.nn import gradcheck as G

    with handle_errors():
        if config is not None:
            from dlrun.config.resolve import load
            from dlrun.runs.build import load_data, make_streams

            cfg = load(config, set_)
            splits = load_data(cfg, make_streams(cfg["seed"])["data"])
            reports = G.check_network(
                cfg, splits.input_shape, n_classes=splits.n_classes, max_entries=max_entries
            )
        else:
            reports = G.check_registered(names or None)
        table = Table(title="gradient check (float64, central differences)")
        for col in (
            "component",
            "tensor",
            "max abs err",
            "max rel err",
            "checked",
            "kink skips",
            "result",
        ):
            table.add_column(
                col, justify="left" if col in ("component", "tensor", "result") else "right"
            )
        for rep in reports:
            if rep.error:
                table.add_row(rep.name, "-", "-", "-", "-", "-", f"[red]ERROR {rep.error}[/]")
            for row in rep.rows:
                ok = "[green]pass[/]" if row.passed else f"[red]FAIL ({row.failed})[/]"
                table.add_row(
                    rep.name,
                    row.what,
                    f"{row.max_abs:.1e}",
                    f"{row.max_rel:.1e}",
                    str(row.n),
                    str(row.skipped),
                    ok,
                )
        console.print(table)
        failed = [r.name for r in reports if not r.passed]
        if failed:
            console.print(f"[red]{len(failed)} failed:[/] {', '.join(failed)}")
            raise typer.Exit(1)
        console.print(f"[green]all {len(reports)} passed[/]")
