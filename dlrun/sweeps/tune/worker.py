"""A worker: one warm process that runs trials of a study until it has its budget.

Every worker (the ``dlrun tune`` process itself with ``--jobs 1``; each of the
``--jobs N`` processes; a ``dlrun tune`` on another machine with the same
``--storage``) runs the same loop against the storage:

1. trials left RUNNING by a process that is gone are marked FAILED
   (:func:`reap_dead`; Optuna's heartbeat does it for databases, across machines);
2. finished = COMPLETE + PRUNED trials; when ``finished >= N`` the worker stops;
   when ``finished + running >= N`` it waits (a running trial may still fail, and
   its budget must then be spent again);
3. otherwise it runs one trial (``Study.optimize(n_trials=1)``: Optuna's ask, tell and
   heartbeat). A trial that finds, once it has its number, that ``N`` trials numbered
   before it are finished or running is not needed (two workers asked at once): it
   is marked failed with ``surplus`` before anything is trained.

So a study ends with exactly ``N`` finished trials, whatever was killed on the way.

A trial is :func:`dlrun.training.train.train` into the study folder (an ordinary run
directory ``trial-NNNN-<date>-<id>``). A callback reports the metric of every
finished epoch to Optuna; when the pruner says so the run stops after the batch, its
summary says ``pruned`` (and why) and the trial is PRUNED. A diverged run is a
result (the worst value); a run that fails is a FAILED trial (three in a row stop
the worker: something is wrong with the setup, not with one trial).
"""

from __future__ import annotations

import math
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrun.errors import DlrunError
from dlrun.sweeps.tune.config import Base, run_value
from dlrun.sweeps.tune.space import Param
from dlrun.sweeps.tune.storage import GRACE, open_storage, require_optuna

FINISHED = ("COMPLETE", "PRUNED")
#: Failed trials in a row after which a worker gives up.
MAX_FAILURES = 3
#: Seconds between two looks at the storage while other workers run the last trials.
POLL = 0.5

_stop_requested = False
#: In a --jobs worker process: the `dlrun tune` process (identity()) and when it was last
#: seen alive; when it is gone (even killed), the worker stops.
_parent: dict[str, Any] | None = None
_parent_seen = 0.0


@dataclass(frozen=True)
class Job:
    """What a worker runs (plain data: it is sent to worker processes)."""

    base: Base
    space: list[Param]
    metric: str
    direction: str
    pruner: dict[str, Any]
    trials: int
    seed: int
    storage: str
    study_name: str
    study_dir: str
    deadline: float | None = None  # time.time() after which no trial starts
    run_plots: bool = False


@dataclass
class WorkerReport:
    """What one worker did."""

    ran: int = 0
    interrupted: bool = False
    problem: str = ""  # why it stopped early (failures), "" otherwise
    failures: list[str] = field(default_factory=list)


class TrialFailed(Exception):
    """A trial that could not give a result (its run failed, or its config is invalid)."""


class Surplus(Exception):
    """A trial not needed: the study's budget was taken by trials numbered before it."""


class Interrupted(Exception):
    """The trial's run was stopped by Ctrl-C (SIGINT)."""


# --------------------------------------------------------------------------- processes
def identity() -> dict[str, Any]:
    """This process: host, PID and the PID's start time (a reused PID is another process)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "start": _start_time(os.getpid())}


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def _alive(worker: dict[str, Any]) -> bool:
    pid = worker.get("pid")
    if not isinstance(pid, int):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    start = _start_time(pid)
    return start is None or worker.get("start") in (None, start)


def reap_dead(study: Any, study_dir: Path | None = None) -> list[int]:
    """Mark FAILED the RUNNING trials whose process is gone; their numbers.

    A trial of this machine is gone when its PID is (or is another process now); a
    trial that never said which process runs it, after GRACE seconds. Databases
    also get Optuna's heartbeat check, which covers other machines.
    """
    optuna = require_optuna()
    from optuna.trial import TrialState

    optuna.storages.fail_stale_trials(study)  # heartbeats (databases only)
    host, now, reaped = socket.gethostname(), time.time(), []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = trial.user_attrs.get("worker")
        if isinstance(worker, dict):
            if worker.get("host") != host or _alive(worker):
                continue
            why = f"its process (PID {worker.get('pid')}) is gone"
        else:
            started = trial.datetime_start.timestamp() if trial.datetime_start else now
            if now - started < GRACE:
                continue
            why = f"no process claimed it for {GRACE} s"
        try:
            study.tell(trial.number, state=TrialState.FAIL)
        except (RuntimeError, ValueError):  # finished meanwhile (by its own process)
            continue
        reaped.append(trial.number)
        run_dir = trial.user_attrs.get("run_dir")
        if study_dir is not None and isinstance(run_dir, str):
            _mark_run(Path(study_dir) / run_dir, trial.number, why)
    return reaped


def _mark_run(path: Path, number: int, why: str) -> None:
    """Say in a killed trial's run directory that its trial failed (if it has no result)."""
    from dlrun.runs.rundir import RunDir

    if not path.is_dir():
        return
    run = RunDir(path)
    try:
        with run.lock():
            summary = run.summary()
            reason = f"trial {number} marked failed: {why}; its budget is spent again"
            if summary.get("status") in (None, "running"):
                run.write_summary({**summary, "status": "failed", "reason": reason})
            run.log(reason)
    except DlrunError:
        pass


def stopping() -> bool:
    """Ctrl-C was pressed, or (in a worker process) the process that started it is gone."""
    global _stop_requested, _parent_seen
    if _parent is not None and time.monotonic() - _parent_seen > POLL:
        _parent_seen = time.monotonic()
        if not _alive(_parent):
            _stop_requested = True
    return _stop_requested


def _note_stop(signum: int, frame: Any) -> None:
    global _stop_requested
    _stop_requested = True


@contextmanager
def stop_on_sigint() -> Iterator[None]:
    """Ctrl-C (SIGINT) asks the running trial to stop after its batch and the worker
    to start no other (training installs its own handler with the same effect)."""
    global _stop_requested
    _stop_requested = False
    try:
        previous = signal.signal(signal.SIGINT, _note_stop)
    except ValueError:  # not the main thread
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


@contextmanager
def without_run_plots(keep: bool) -> Iterator[None]:
    """Trials draw no figures of their own (about 1.3 s of a quickstart trial, against a
    target of 0.2 s of overhead): the run's log says how to draw them later. ``keep``
    leaves the figures on (``--run-plots``)."""
    from dlrun.runs import plots

    if keep:
        yield
        return
    saved = plots.run_plots

    def skipped(run: Any, *args: Any, **kwargs: Any) -> None:
        run.log("figures not drawn during tuning (dlrun tune --run-plots draws them)")

    plots.run_plots = skipped
    try:
        yield
    finally:
        plots.run_plots = saved


# --------------------------------------------------------------------------- one trial
class Reporter:
    """The trial's training callback: reports each finished epoch's metric to Optuna,
    stops the run when the pruner says so, and honours Ctrl-C."""

    def __init__(self, trial: Any, metric: str, prune: bool) -> None:
        self.trial, self.metric, self.prune = trial, metric, prune
        self.epoch = 0
        self.run_dir: Path | None = None
        self.pruned: tuple[int, float] | None = None
        self.spent = 0.0  # seconds in Optuna's calls during training (reports, pruner)

    def __call__(self, trainer: Any) -> None:
        if self.run_dir is None:
            start = time.perf_counter()
            self.run_dir = trainer.run.path
            self.trial.set_user_attr("run_dir", trainer.run.path.name)
            self.spent += time.perf_counter() - start
        if stopping():
            trainer.stop_requested = True
        rows = trainer.rows
        if not rows or rows[-1]["epoch"] <= self.epoch:
            return
        start = time.perf_counter()
        self.epoch = int(rows[-1]["epoch"])
        value = rows[-1].get(self.metric)
        if value is not None and math.isfinite(value):
            self.trial.report(float(value), self.epoch)
            if self.prune and self.pruned is None and self.trial.should_prune():
                self.pruned = (self.epoch, float(value))
                trainer.stop_requested = True
        self.spent += time.perf_counter() - start

    def last(self, final: dict[str, Any]) -> None:
        """Report the last epoch too (the callback sees an epoch's row at the next batch)."""
        epoch, value = final.get("epoch"), final.get(self.metric)
        if isinstance(epoch, (int, float)) and epoch > self.epoch and isinstance(value, float):
            if math.isfinite(value):
                self.epoch = int(epoch)
                self.trial.report(value, self.epoch)


class Objective:
    """``objective(trial)`` for Optuna: one training run of the trial's config."""

    def __init__(self, job: Job, study: Any) -> None:
        self.job, self.study = job, study
        self.worst = math.inf if job.direction == "minimize" else -math.inf
        self.failure = ""

    def _check_budget(self, trial: Any) -> None:
        from optuna.trial import TrialState

        states = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)
        ahead = [
            t
            for t in self.study.get_trials(deepcopy=False, states=states)
            if t.number < trial.number
        ]
        if len(ahead) >= self.job.trials:
            trial.set_user_attr("surplus", True)
            raise Surplus(f"trial {trial.number} not needed")

    def __call__(self, trial: Any) -> float:
        import optuna

        from dlrun.training.train import train

        job = self.job
        self.failure = ""
        trial.set_user_attr("worker", identity())
        self._check_budget(trial)
        values = {p.key: p.suggest(trial) for p in job.space}
        reporter = Reporter(trial, job.metric, job.pruner["name"] != "none")
        try:
            cfg = job.base.trial_config(values, where=f"trial {trial.number}")
            result = train(
                cfg,
                runs_dir=job.study_dir,
                name=f"trial-{trial.number:04d}",
                progress="silent",
                callbacks=[reporter],
                hparams=values,  # TensorBoard's HParams dashboard (log.tensorboard)
            )
        except DlrunError as exc:
            self._fail(trial, exc.message)
        except Exception as exc:  # a broken trial must not stop the study
            self._fail(trial, f"{type(exc).__name__}: {exc}")
        summary = result.summary
        status = summary.get("status", "failed")
        trial.set_user_attr(
            "run",
            {
                "dir": result.run_dir.name,
                "status": "pruned" if reporter.pruned else status,
                "epochs": summary.get("epochs"),
                "seconds": summary.get("seconds"),
                "optuna_seconds": round(reporter.spent, 4),
            },
        )
        if reporter.pruned is not None:
            epoch, value = reporter.pruned
            why = (
                f"pruned by the {job.pruner['name']} pruner after epoch {epoch} "
                f"({job.metric} {value:.4g})"
            )
            mark_pruned(result.run_dir, why)
            raise optuna.TrialPruned(why)
        reporter.last(summary.get("final") or {})
        if status == "interrupted":
            raise Interrupted(f"trial {trial.number} stopped by Ctrl-C")
        if status == "diverged":
            return self.worst
        if status != "completed":
            self._fail(trial, summary.get("reason") or f"run {status}")
        value = run_value(summary, job.metric)
        if value is None:
            self._fail(trial, f"the run has no finite {job.metric}")
        return value

    def _fail(self, trial: Any, reason: str) -> None:
        self.failure = reason
        trial.set_user_attr("error", reason)
        raise TrialFailed(reason)


def mark_pruned(run_dir: Path, why: str) -> None:
    """The run's summary and log say it was pruned (training left it "interrupted")."""
    from dlrun.runs.rundir import RunDir

    run = RunDir(run_dir)
    with run.lock():
        summary = run.summary()
        run.write_summary({**summary, "status": "pruned", "reason": why})
        run.log(f"status pruned: {why} (training stops a pruned run as it stops for Ctrl-C)")


# --------------------------------------------------------------------------- the loop
def make_sampler(job: Job, salt: tuple[int, ...]) -> Any:
    """TPE, seeded from ``--seed`` and ``salt`` (worker index, trials already there): two
    workers, or a resumed study, do not draw the same random start points again."""
    import numpy as np
    import optuna

    seed = int(np.random.SeedSequence([job.seed, *salt]).generate_state(1)[0])
    startup = min(10, max(3, job.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)


def make_pruner(pruner: dict[str, Any]) -> Any:
    import optuna

    if pruner["name"] == "none":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(
        n_startup_trials=pruner["startup_trials"], n_warmup_steps=pruner["warmup_epochs"]
    )


def load_study(job: Job, storage: Any, salt: tuple[int, ...] = (0,)) -> Any:
    optuna = require_optuna()
    return optuna.load_study(
        study_name=job.study_name,
        storage=storage,
        sampler=make_sampler(job, salt),
        pruner=make_pruner(job.pruner),
    )


def counts(study: Any) -> tuple[int, int]:
    """(finished, running) trials of the study."""
    finished = running = 0
    for t in study.get_trials(deepcopy=False):
        finished += t.state.name in FINISHED
        running += t.state.name in ("RUNNING", "WAITING")
    return finished, running


def run_worker(
    job: Job,
    index: int = 0,
    on_trial: Callable[[Any], None] | None = None,
    storage: Any = None,
) -> WorkerReport:
    """Run trials until the study has ``job.trials`` finished ones (or the deadline, or
    Ctrl-C, or MAX_FAILURES failed trials in a row)."""
    storage = storage if storage is not None else open_storage(job.storage)
    there = len(load_study(job, storage).get_trials(deepcopy=False))
    study = load_study(job, storage, (index, there))
    objective = Objective(job, study)
    report, failures = WorkerReport(), 0
    while not stopping():
        reap_dead(study, Path(job.study_dir))
        finished, running = counts(study)
        if finished >= job.trials:
            break
        if job.deadline is not None and time.time() >= job.deadline:
            break
        if finished + running >= job.trials:
            time.sleep(POLL)  # others run the last trials; one may fail and need redoing
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(TrialFailed, Surplus))
        except (Interrupted, KeyboardInterrupt):
            report.interrupted = True
            break
        finally:
            if on_trial is not None:
                on_trial(study)
        if objective.failure:
            failures += 1
            report.failures.append(objective.failure)
            if failures >= MAX_FAILURES:
                report.problem = f"{failures} trials in a row failed; the last: {objective.failure}"
                break
        else:
            failures = 0
            report.ran += 1
    report.interrupted = report.interrupted or _stop_requested
    return report


def worker_main(job: Job, index: int, threads: int, parent: dict[str, Any]) -> None:
    """Entry point of a ``--jobs N`` worker process (its exit code: 0, 1 failed, 130 Ctrl-C)."""
    from dlrun.runs.threads import set_threads

    global _parent
    _parent = parent
    os.setpgrp()  # Ctrl-C in the terminal goes to the parent, which passes it on
    signal.signal(signal.SIGINT, _note_stop)
    set_threads(threads)
    try:
        with without_run_plots(job.run_plots):
            report = run_worker(job, index)
    except DlrunError as exc:
        print(f"worker {index}: error: {exc.message}", flush=True)
        sys.exit(2)
    code = 130 if report.interrupted else 1 if report.problem else 0
    if report.problem:
        print(f"worker {index}: {report.problem}", flush=True)
    sys.exit(code)
