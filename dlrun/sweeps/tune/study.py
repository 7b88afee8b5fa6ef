"""``tune``: the library function behind ``dlrun tune``.

    from dlrun.sweeps.tune.study import tune
    result = tune("configs/quickstart.yaml", ["optimizer.lr=log:1e-4:1"], trials=20)
    result.best["params"]   # {'optimizer.lr': 0.0123...}

Everything is checked before any trial starts (each a ConfigError, exit 2): the
space, each parameter's key and bounds against the config, the metric against the
columns its runs write (the data are loaded and the network built, nothing is
trained), the study folder and the storage's identity, the storage itself. Then
``jobs`` workers (``dlrun.sweeps.tune.worker``) run trials until the study has ``trials``
finished ones; the study's trials.csv and figures are written at the end.
"""

from __future__ import annotations

import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError
from dlrun.sweeps.tune.config import (
    check_metric,
    check_space,
    infer_direction,
    load_base,
    metric_columns,
)
from dlrun.sweeps.tune.report import TrialLog, best_value, outcome, trial_row
from dlrun.sweeps.tune.space import Param, build_space, describe_space
from dlrun.sweeps.tune.storage import open_storage, require_optuna, shown, storage_url
from dlrun.sweeps.tune.study_dir import Identity, StudyDir, check_storage_identity
from dlrun.sweeps.tune.worker import (
    Job,
    identity,
    run_worker,
    stop_on_sigint,
    without_run_plots,
    worker_main,
)

PRUNERS = ("median", "none")


@dataclass
class TuneResult:
    """A study after this command: its trials, the best one, where things are."""

    study_dir: Path
    study_name: str
    storage: str
    metric: str
    direction: str
    space: list[Param]
    total: int
    rows: list[dict[str, Any]]
    best: dict[str, Any] | None
    study: Any = None
    plots: list[Path] = field(default_factory=list)
    interrupted: bool = False
    problems: list[str] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(r["state"] == state for r in self.rows)

    @property
    def finished(self) -> int:
        return sum(r["state"] in ("completed", "diverged", "pruned") for r in self.rows)


def _check_numbers(trials: int, jobs: int, timeout: float | None, pruner: str, **more: int) -> None:
    if not isinstance(trials, int) or trials < 1:
        raise ConfigError(f"--trials must be a whole number >= 1 (given: {trials})")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be a whole number >= 1 (given: {jobs})")
    if timeout is not None and not timeout > 0:
        raise ConfigError(f"--timeout must be a number of seconds > 0 (given: {timeout})")
    if pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner '{pruner}'; known: {', '.join(PRUNERS)}")
    for name, value in more.items():
        if not isinstance(value, int) or value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must be a whole number >= 0")


def tune(
    config: str | Path | dict[str, Any],
    params: list[str] | None = None,
    space_file: Path | None = None,
    trials: int = 20,
    metric: str = "val_loss",
    direction: str | None = None,
    pruner: str = "median",
    startup_trials: int = 5,
    warmup_epochs: int = 0,
    seed: int = 0,
    jobs: int = 1,
    timeout: float | None = None,
    storage: str | None = None,
    study_dir: str | Path | None = None,
    study_name: str | None = None,
    overrides: list[str] | None = None,
    runs_dir: str | Path = "runs",
    threads: int | None = None,
    run_plots: bool = False,
    progress: str = "silent",
    command: str = "",
) -> TuneResult:
    """Tune the keys of ``params`` (``KEY=SPEC``, see ``dlrun.sweeps.tune.space``) of ``config``
    until the study has ``trials`` finished (completed or pruned) trials.

    ``metric``: a metrics.csv column; ``direction`` (minimize | maximize) is inferred
    for losses and accuracies. ``pruner``: ``median`` (Optuna's MedianPruner: no pruning
    before ``startup_trials`` trials completed nor before epoch ``warmup_epochs``) or
    ``none``. ``jobs``: worker processes on this machine (``threads`` each, default
    cores // jobs). ``timeout``: seconds after which no trial starts. ``storage``: a
    database URL or ``journal:FILE`` (default: a journal in the study folder, which is
    ``study_dir``, default ``runs_dir/tune-<config name>``). ``run_plots``: draw each
    trial's figures (off by default: about 1.3 s a trial).
    The same call again continues the study; another config or space is refused.
    """
    require_optuna()
    _check_numbers(
        trials, jobs, timeout, pruner, startup_trials=startup_trials, warmup_epochs=warmup_epochs
    )
    space = build_space(list(params or []), space_file)
    base = load_base(config, overrides)
    if (base.resolved.get("log") or {}).get("tensorboard"):
        from dlrun.training.tensorboard import require_writer

        require_writer()  # the extra missing: one clear error before any trial
    check_space(base, space)
    check_metric(metric, metric_columns(base.resolved), base.source)
    direction = infer_direction(metric, direction)
    pruner_spec = {"name": pruner}
    if pruner != "none":
        pruner_spec |= {"startup_trials": startup_trials, "warmup_epochs": warmup_epochs}
    name = base.resolved.get("name") or "study"
    folder = StudyDir(Path(study_dir) if study_dir is not None else Path(runs_dir) / f"tune-{name}")
    url = storage_url(storage, folder.path)
    ident = Identity(base.hash, describe_space(space), metric, direction, pruner_spec, seed)
    folder.check(ident, shown(url))
    study_name = study_name or folder.path.resolve().name
    store = open_storage(url)
    study = _open_study(store, study_name, direction, ident, shown(url))
    info = {
        "config": base.source or "(mapping)",
        "storage": shown(url),
        "study_name": study_name,
        "command": command,
        "params": [p.text() for p in space],
    }
    folder.prepare(ident, info)
    job = Job(
        base=base,
        space=space,
        metric=metric,
        direction=direction,
        pruner=pruner_spec,
        trials=trials,
        seed=seed,
        storage=url,
        study_name=study_name,
        study_dir=str(folder.path.resolve()),
        deadline=time.time() + timeout if timeout is not None else None,
        run_plots=run_plots,
    )
    log = TrialLog(trials, metric, direction, space, progress)
    log.start(study)
    interrupted, problems = _run(job, jobs, threads, log, study, store)
    return _finish(job, folder, study, interrupted, problems, shown(url))


def _open_study(store: Any, name: str, direction: str, ident: Identity, where: str) -> Any:
    import optuna

    try:
        study = optuna.create_study(
            storage=store, study_name=name, direction=direction, load_if_exists=True
        )
    except Exception as exc:  # a storage that answers but refuses (permissions, schema)
        raise ConfigError(f"cannot open study '{name}' in {where}: {exc}") from None
    check_storage_identity(study, ident, f"study '{name}' in {where}")
    return study


def _run(
    job: Job, jobs: int, threads: int | None, log: TrialLog, study: Any, store: Any
) -> tuple[bool, list[str]]:
    """Run the workers: this process (jobs == 1) or ``jobs`` processes. (interrupted, problems)"""
    from dlrun.runs.threads import set_threads

    if jobs == 1:
        set_threads(threads)
        with stop_on_sigint(), without_run_plots(job.run_plots):
            report = run_worker(job, 0, on_trial=log.poll, storage=store)
        log.poll(study)
        return report.interrupted, [report.problem] if report.problem else []
    return _run_processes(job, jobs, threads, log, study)


def _run_processes(
    job: Job, jobs: int, threads: int | None, log: TrialLog, study: Any
) -> tuple[bool, list[str]]:
    """``jobs`` warm worker processes (forked from the fork server that ``dlrun compare``
    uses, the thread variables set before NumPy is imported); this one shows progress."""
    from dlrun.sweeps.executors import _context, thread_env, threads_per_job

    n = min(threads or threads_per_job(jobs), threads_per_job(jobs))
    ctx = _context(n)
    procs = []
    with thread_env(n):
        for i in range(jobs):
            proc = ctx.Process(
                target=worker_main, args=(job, i, n, identity()), name=f"dlrun-tune-{i}"
            )
            proc.start()
            procs.append(proc)
    interrupted = False
    try:  # Ctrl-C reaches this process (even one started with SIGINT ignored, as by `&`)
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    except ValueError:  # not the main thread
        previous = None
    try:
        _preload_plotting()  # while the workers run: the figures at the end start sooner
        while any(p.is_alive() for p in procs):
            time.sleep(0.5)
            log.poll(study)
    except KeyboardInterrupt:
        interrupted = True
        log.note("Ctrl-C: each worker stops after its batch (press again to kill them)")
        for p in procs:
            if p.pid is not None and p.is_alive():
                os.kill(p.pid, signal.SIGINT)
        try:
            for p in procs:
                p.join()
        except KeyboardInterrupt:
            for p in procs:
                p.kill()
                p.join()
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
    log.poll(study)
    problems = []
    for i, p in enumerate(procs):
        if p.exitcode == 130:
            interrupted = True
        elif p.exitcode not in (0, None):
            problems.append(f"worker {i} stopped with exit code {p.exitcode}")
    return interrupted, problems


def _preload_plotting() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import optuna.visualization.matplotlib  # noqa: F401


def _finish(
    job: Job,
    folder: StudyDir,
    study: Any,
    interrupted: bool,
    problems: list[str],
    storage: str,
) -> TuneResult:
    from dlrun.runs.rundir import write_csv
    from dlrun.sweeps.tune.plots import study_plots

    trials = study.get_trials(deepcopy=False)
    rows = [trial_row(t, job.space) for t in trials]
    write_csv(folder.trials_csv, rows)
    best_trial = best_value(trials, job.direction)
    best = None
    if best_trial is not None:
        run = best_trial.user_attrs.get("run") or {}
        best = {
            "trial": best_trial.number,
            "value": best_trial.value,
            "params": dict(best_trial.params),
            "run_dir": str(folder.path / run["dir"]) if run.get("dir") else None,
        }
    plots = study_plots(study, len(job.space), folder.plots_dir, job.metric)
    finished = sum(outcome(t) in ("completed", "diverged", "pruned") for t in trials)
    if finished < job.trials and not interrupted and not problems:
        problems.append(
            f"the study has {finished} of {job.trials} finished trials (--timeout reached): "
            "run the same command again to continue"
            if job.deadline is not None
            else f"the study has {finished} of {job.trials} finished trials"
        )
    return TuneResult(
        study_dir=folder.path,
        study_name=job.study_name,
        storage=storage,
        metric=job.metric,
        direction=job.direction,
        space=job.space,
        total=job.trials,
        rows=rows,
        best=best,
        study=study,
        plots=plots,
        interrupted=interrupted,
        problems=problems,
    )
