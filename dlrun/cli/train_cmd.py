"""dlrun train CONFIG"""

from __future__ import annotations

from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import INTERRUPTED, console, handle_errors


@app.command()
def train(
    config: Path = typer.Argument(
        None, help="YAML config file (not needed with --resume).", show_default=False
    ),
    set_: list[str] = typer.Option(
        [],
        "--set",
        "-s",
        help="Override a key: --set optimizer.lr=0.01 --set model.layers[1].units=64",
    ),
    runs_dir: Path = typer.Option(
        Path("runs"), "--runs-dir", help="Folder that receives the run directory."
    ),
    name: str = typer.Option(
        None, "--name", help="Run name (default: the config's name or file stem)."
    ),
    resume: Path = typer.Option(None, "--resume", help="Continue an interrupted run directory."),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="One plain line per epoch, no progress bar."
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        help="Threads for Numba kernels and BLAS (default: $DLRUN_THREADS, else all cores).",
    ),
    tensorboard: bool = typer.Option(
        False,
        "--tensorboard",
        help="Also write TensorBoard event files into RUN_DIR/tensorboard/ (log.tensorboard; "
        "needs pip install 'dlrun[tensorboard]'); watch with: tensorboard --logdir RUNS_DIR",
    ),
) -> None:
    """Train one network; everything about the run goes into its run directory.

    Ctrl-C stops after the current batch, writes a checkpoint and marks the run
    interrupted; continue it with [bold]dlrun train --resume RUN_DIR[/].
    """
    from dlrun.errors import ConfigError
    from dlrun.runs.threads import check_threads, default_threads, set_threads
    from dlrun.training.train import train as run_training

    with handle_errors():
        if config is None and resume is None:
            raise ConfigError("give a CONFIG file, or --resume RUN_DIR")
        if tensorboard:
            set_ = _with_tensorboard(set_, resume)
        set_threads(check_threads(threads) if threads is not None else default_threads())
        _announce_compile()
        result = run_training(
            config if resume is None else {},
            runs_dir=runs_dir,
            overrides=set_,
            name=name,
            resume=resume,
            progress="plain" if quiet else "rich",
        )
        s = result.summary
        console.print(f"run: {result.run_dir}")
        if (result.run_dir / "tensorboard").is_dir():
            console.print(f"watch it with: tensorboard --logdir {result.run_dir.parent}")
        final = s.get("final", {})
        shown = {
            k: v
            for k, v in final.items()
            if k.startswith("test_") or k in ("loss", "val_loss", "val_accuracy")
        }
        console.print(f"status: {s['status']}" + (f" ({s['reason']})" if s.get("reason") else ""))
        if shown:
            console.print("  ".join(f"{k} {v:.4g}" for k, v in shown.items()))
        if s["status"] in ("diverged", "failed"):
            raise typer.Exit(1)
        if s["status"] == "interrupted":
            console.print(f"continue it with: dlrun train --resume {result.run_dir}")
            raise typer.Exit(INTERRUPTED)


def _with_tensorboard(overrides: list[str], resume: Path | None) -> list[str]:
    """--tensorboard is ``log.tensorboard=true``; a resumed run keeps its config, so there
    it only confirms what the run already does."""
    from dlrun.errors import ConfigError
    from dlrun.runs.rundir import RunDir

    if resume is None:
        return [*overrides, "log.tensorboard=true"]
    if not (RunDir.open(resume).config().get("log") or {}).get("tensorboard"):
        raise ConfigError(
            f"--tensorboard cannot be added when resuming {resume}: a resumed run keeps its "
            "config, and its log.tensorboard is off",
            hint="start a new run with --tensorboard",
        )
    return overrides


def _announce_compile() -> None:
    """Say so when Numba has no cached machine code yet (the first run compiles)."""
    import os

    import numba

    import dlrun.kernels.activations as k

    cache = numba.config.CACHE_DIR or os.path.join(os.path.dirname(k.__file__), "__pycache__")
    if not any(name.endswith(".nbi") for _, _, files in os.walk(cache) for name in files):
        console.print("[dim]compiling kernels (first run only)...[/]")
