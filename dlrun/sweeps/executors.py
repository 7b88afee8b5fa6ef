"""Where the cells of a sweep run: this process, local worker processes, a Dask cluster.

Every executor calls :func:`dlrun.sweeps.cell.run_cell` on each task and hands
each outcome to ``on_done`` as soon as it arrives; ``on_done`` returns False to
stop (fail-fast, or a run reported Ctrl-C). ``run`` returns True when it was
stopped by Ctrl-C, after collecting what the running cells returned.

``local`` with ``jobs > 1``: a ``ProcessPoolExecutor`` with the ``forkserver``
context (``spawn`` where there is none). Each worker gets ``cores // jobs``
threads: the thread variables (NUMBA_NUM_THREADS, OMP/OPENBLAS/MKL_NUM_THREADS)
are in the environment the fork server (or worker) is started with, so they
hold before NumPy or Numba is imported. At most
``jobs`` cells are handed out at a time, so nothing waits in a queue that
could not be cancelled. Workers run in their own process group: Ctrl-C
reaches only this process, which asks each running worker (SIGINT) to stop
after its current batch, the way ``dlrun train`` stops.

``dask``: ``distributed.Client(address)`` with a connect timeout; the same
tasks become Dask futures. Dask cannot interrupt a running task: on Ctrl-C the
pending cells are cancelled and the running ones finish on the workers.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import contextmanager
from typing import Any

from dlrun.errors import ConfigError
from dlrun.sweeps.cell import THREAD_VARS, limit_threads, run_cell, stop_on_sigint

OnDone = Callable[[dict[str, Any]], bool]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Threads for each of ``jobs`` processes so that jobs x threads <= cores."""
    return max(1, cores() // jobs)


@contextmanager
def thread_env(threads: int) -> Iterator[None]:
    """Set the thread variables for processes started inside the block, then restore them."""
    saved = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def failed(task: dict[str, Any], reason: str) -> dict[str, Any]:
    return {
        "hash": task["hash"],
        "status": "failed",
        "reason": reason,
        "run_dir": None,
        "summary": {},
        "curves": [],
        "seconds": 0.0,
        "worker": None,
    }


class InProcess:
    """One cell after another in this process (``--jobs 1``): no start-up cost."""

    name = "local"

    def __init__(self, threads: int | None = None) -> None:
        self.threads = threads

    def __enter__(self) -> InProcess:
        if self.threads is not None:
            limit_threads(self.threads)
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def run(self, tasks: list[dict[str, Any]], on_done: OnDone) -> bool:
        for task in tasks:
            try:
                outcome = run_cell(task)
            except KeyboardInterrupt:  # between two runs
                return True
            if not on_done(outcome):
                return outcome["status"] == "interrupted"
        return False


# The forkserver imports dlrun (NumPy, Numba, matplotlib) once and each worker is a fork of
# it, so the workers do not each pay the imports. Its environment (the thread variables) is
# fixed when it starts: a later pool that needs another thread count is spawned instead.
PRELOAD = ["dlrun.sweeps.cell", "dlrun.training.train", "dlrun.config.catalog", "dlrun.runs.plots"]
_forkserver_threads: int | None = None


def _context(threads: int) -> Any:
    global _forkserver_threads
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    if _forkserver_threads is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _forkserver_threads = threads
        return ctx
    return multiprocessing.get_context("forkserver" if _forkserver_threads == threads else "spawn")


def prestart(jobs: int, threads: int | None = None) -> None:
    """Start the fork server now, so that its imports overlap the sweep's validation.

    It only imports modules; no cell runs before the sweep is valid.
    """
    if not isinstance(jobs, int) or jobs < 2:
        return
    n = min(threads or threads_per_job(jobs), threads_per_job(jobs))
    ctx = _context(n)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with thread_env(n):
            forkserver.ensure_running()


def _init_worker(threads: int) -> None:
    os.environ.update({k: str(threads) for k in THREAD_VARS})
    os.setpgrp()  # Ctrl-C in the terminal goes to the parent, which decides
    stop_on_sigint()


class LocalPool:
    """Cells in ``jobs`` local processes, ``cores // jobs`` threads each."""

    name = "local"

    def __init__(self, jobs: int, threads: int | None = None) -> None:
        self.jobs = jobs
        self.threads = min(threads or threads_per_job(jobs), threads_per_job(jobs))
        self.pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def _submit(self, task: dict[str, Any]) -> Future:
        if self.pool is None:
            self.pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=_context(self.threads),
                initializer=_init_worker,
                initargs=(self.threads,),
            )
        with thread_env(self.threads):  # workers are spawned inside submit()
            return self.pool.submit(run_cell, {**task, "threads": self.threads})

    def _workers(self) -> list[Any]:
        return list(getattr(self.pool, "_processes", {}).values()) if self.pool else []

    def run(self, tasks: list[dict[str, Any]], on_done: OnDone) -> bool:
        queue = list(tasks)
        running: dict[Future, dict[str, Any]] = {}
        stop = False

        def collect(fut: Future) -> None:
            nonlocal stop
            task = running.pop(fut)
            try:
                outcome = fut.result()
            except Exception as exc:  # the worker process died
                outcome = failed(task, f"worker process failed: {type(exc).__name__}: {exc}")
            if not on_done(outcome):
                stop = True

        try:
            while running or (queue and not stop):
                while queue and not stop and len(running) < self.jobs:
                    task = queue.pop(0)
                    try:
                        running[self._submit(task)] = task
                    except Exception as exc:  # broken pool
                        on_done(failed(task, f"could not start a worker: {exc}"))
                        stop = True
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    collect(fut)
        except KeyboardInterrupt:
            self._stop_running(running, collect, on_done)
            return True
        return False

    def _stop_running(
        self, running: dict[Future, dict[str, Any]], collect: Any, on_done: OnDone
    ) -> None:
        """Ctrl-C: each running cell stops after its batch; a second Ctrl-C kills the workers."""
        for proc in self._workers():
            try:
                os.kill(proc.pid, signal.SIGINT)
            except (OSError, AttributeError):
                pass
        try:
            while running:
                done, _ = wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                for fut in done:
                    collect(fut)
        except KeyboardInterrupt:
            for proc in self._workers():
                proc.terminate()
            for task in running.values():
                on_done({**failed(task, "killed by a second Ctrl-C"), "status": "interrupted"})
            running.clear()


class DaskCluster:
    """Cells as futures on a Dask distributed cluster at ``address``."""

    name = "dask"

    def __init__(self, address: str, timeout: float = 5.0) -> None:
        self.address, self.timeout = address, timeout
        self.client: Any = None

    def __enter__(self) -> DaskCluster:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "--executor dask needs the 'distributed' package",
                hint="pip install 'dlrun[cluster]'",
            ) from None
        try:
            self.client = Client(self.address, timeout=self.timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {self.address} "
                f"(waited {self.timeout:g} s): {exc}",
                hint="start one with `dask scheduler` and `dask worker ADDRESS`, or check --address",
            ) from None
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def run(self, tasks: list[dict[str, Any]], on_done: OnDone) -> bool:
        from distributed import as_completed

        futures = [
            self.client.submit(
                run_cell, task, key=f"dlrun-cell-{task['hash'][:16]}-{os.getpid()}-{i}", pure=False
            )
            for i, task in enumerate(tasks)
        ]
        by_key = {f.key: t for f, t in zip(futures, tasks)}
        try:
            with self.client.as_current():  # as_completed looks for the current client
                for fut in as_completed(futures):
                    try:
                        outcome = fut.result()
                    except Exception as exc:
                        reason = f"dask task failed: {type(exc).__name__}: {exc}"
                        outcome = failed(by_key[fut.key], reason)
                    if not on_done(outcome):
                        self.client.cancel(futures)
                        return outcome["status"] == "interrupted"
        except KeyboardInterrupt:
            self.client.cancel(futures)
            return True
        return False


def make_executor(
    executor: str,
    jobs: int,
    address: str | None,
    timeout: float = 5.0,
    threads: int | None = None,
) -> Any:
    """The executor for ``--executor`` / ``--jobs`` / ``--address`` / ``--threads`` (validated).

    ``threads``: per process; with ``jobs > 1`` at most ``cores // jobs``.
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads must be an integer >= 1 (given: {threads})")
    if executor not in ("local", "dask"):
        raise ConfigError(f"unknown executor '{executor}'; known: local, dask")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be an integer >= 1 (given: {jobs})")
    if executor == "dask":
        if not address:
            raise ConfigError("--executor dask needs --address tcp://HOST:PORT of the scheduler")
        return DaskCluster(address, timeout)
    if address:
        raise ConfigError("--address is only used with --executor dask")
    return InProcess(threads) if jobs == 1 else LocalPool(jobs, threads)
