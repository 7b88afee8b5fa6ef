"""dlrun tune CONFIG --param KEY=RANGE ..."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from dlrun.cli import app
from dlrun.cli._util import INTERRUPTED, console, handle_errors


@app.command()
def tune(
    config: Path = typer.Argument(..., help="YAML config file: the base of every trial."),
    param: list[str] = typer.Option(
        [],
        "--param",
        "-p",
        help="A searched key: optimizer.lr=log:1e-4:1, model.layers[0].units=int:16:256, "
        "train.batch_size=16,32,64 (also float:LOW:HIGH, logint:LOW:HIGH). Repeatable.",
    ),
    space: Path = typer.Option(
        None, "--space", help="YAML file of KEY: RANGE (or a list of values).", show_default=False
    ),
    trials: int = typer.Option(20, "--trials", "-n", help="Finished trials the study ends with."),
    metric: str = typer.Option("val_loss", "--metric", help="A metrics.csv column to optimise."),
    direction: str = typer.Option(
        None,
        "--direction",
        help="minimize | maximize (default: maximize accuracies, minimize losses).",
        show_default=False,
    ),
    pruner: str = typer.Option("median", "--pruner", help="median | none"),
    startup_trials: int = typer.Option(
        5, "--startup-trials", help="Completed trials before the median pruner prunes."
    ),
    warmup_epochs: int = typer.Option(
        0, "--warmup-epochs", help="Epochs of every trial before it can be pruned."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of the sampler (TPE)."),
    jobs: int = typer.Option(
        1, "--jobs", "-j", help="Worker processes (each runs many trials; threads: cores // jobs)."
    ),
    timeout: float = typer.Option(
        None, "--timeout", help="Seconds after which no trial starts.", show_default=False
    ),
    storage: str = typer.Option(
        None,
        "--storage",
        help="postgresql://USER:PASSWORD@HOST/DB (workers on many machines), sqlite:///FILE "
        "or journal:FILE; default: a journal file in the study folder.",
        show_default=False,
    ),
    study_dir: Path = typer.Option(
        None,
        "--study-dir",
        help="Study folder: the trials' run directories, study.yaml, plots/ "
        "(default: RUNS_DIR/tune-<config name>).",
        show_default=False,
    ),
    study_name: str = typer.Option(
        None,
        "--study-name",
        help="The study's name in --storage (default: the study folder's name).",
        show_default=False,
    ),
    set_: list[str] = typer.Option(
        [], "--set", "-s", help="Fix a key in every trial: --set train.epochs=20"
    ),
    runs_dir: Path = typer.Option(Path("runs"), "--runs-dir", help="Folder of the study folder."),
    threads: int = typer.Option(
        None,
        "--threads",
        help="Threads per worker (default: $DLRUN_THREADS, else cores // jobs).",
        show_default=False,
    ),
    run_plots: bool = typer.Option(
        False, "--run-plots", help="Draw every trial's figures (about 1 s a trial)."
    ),
    top: int = typer.Option(5, "--top", help="Rows of the table of best trials."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the table, no line per trial."),
) -> None:
    """Search hyper-parameters with Optuna: every trial is an ordinary run in the study folder.

    The same command again continues the study (finished trials are kept; trials
    that a killed or interrupted process left are marked failed and run again), and
    a study folder made by another command is refused. Exit code 2 for bad input
    (before any trial starts), 1 when trials kept failing, 130 after Ctrl-C.
    """
    from dlrun.runs.threads import check_threads, default_threads
    from dlrun.sweeps.executors import prestart

    chosen = threads if threads is not None else None
    prestart(jobs, chosen)  # the workers' imports overlap the checks
    from dlrun.sweeps.tune.report import best_table
    from dlrun.sweeps.tune.study import tune as run_tune

    with handle_errors():
        check_threads(threads)
        result = run_tune(
            config,
            params=param,
            space_file=space,
            trials=trials,
            metric=metric,
            direction=direction,
            pruner=pruner,
            startup_trials=startup_trials,
            warmup_epochs=warmup_epochs,
            seed=seed,
            jobs=jobs,
            timeout=timeout,
            storage=storage,
            study_dir=study_dir,
            study_name=study_name,
            overrides=set_,
            runs_dir=runs_dir,
            threads=threads if threads is not None else default_threads(),
            run_plots=run_plots,
            progress="silent" if quiet else "plain",
            command=shlex.join(["dlrun", *sys.argv[1:]]),
        )
        pruned, failed = result.count("pruned"), result.count("failed")
        title = (
            f"study {result.study_name}: {result.finished} of {result.total} trials finished "
            f"({pruned} pruned, {failed} failed), {result.metric} ({result.direction})"
        )
        console.print(
            best_table(result.study, result.space, result.metric, result.direction, top, title)
        )
        if result.best is not None:
            chosen_values = "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                for k, v in result.best["params"].items()
            )
            console.print(
                f"best: trial {result.best['trial']}  {result.metric} {result.best['value']:.4g}  "
                f"{chosen_values}",
                markup=False,
            )
            if result.best["run_dir"]:
                console.print(f"best run: {result.best['run_dir']}", markup=False)
        console.print(f"study: {result.study_dir}  (storage {result.storage})", markup=False)
        for path in result.plots:
            console.print(f"plot: {path}", markup=False)
        for problem in result.problems:
            console.print(f"[bold red]{problem}[/]")
        if result.interrupted:
            console.print("interrupted: run the same command again to continue")
            raise typer.Exit(INTERRUPTED)
        if result.problems:
            raise typer.Exit(1)
