"""Where the cells of a sweep run: local worker processes, or a Dask cluster.

Every executor calls :func:`dlrun.sweeps.cell.run_cell` on each task and hands
each outcome to ``on_done`` as soon as it arrives; ``on_done`` returns False to
stop (fail-fast, or a run reported Ctrl-C). ``run`` returns True when it was
stopped by Ctrl-C, after collecting what the running cells returned.

``local`` (``--jobs N``, also ``--jobs 1``): N warm worker processes, each one
cell at a time over its own pipe, reused from cell to cell (the imports and the
compiled kernels are loaded once per worker, not once per cell). No cell runs
in this process, so a cell that crashes its process (a segfault in a kernel, an
``os._exit``, the out-of-memory killer) takes only its worker with it: that
cell is marked ``failed`` with the signal or exit code, its run directory says
so, a new worker takes the dead one's place, and every other cell runs; the
results, the table and the figures are written for what completed.

Workers are forked from a fork server (``spawn`` where there is none) that
imports dlrun once. Each worker gets ``cores // jobs`` threads (with
``--jobs 1`` and no ``--threads``: the libraries' defaults): the thread
variables (NUMBA_NUM_THREADS, OMP/OPENBLAS/MKL_NUM_THREADS) are in the
environment the fork server (or worker) is started with, so they hold before
NumPy or Numba is imported. Workers run in their own process group: Ctrl-C
reaches only this process, which asks each running worker (SIGINT) to stop
after its current batch, the way ``dlrun train`` stops.

``dask``: ``distributed.Client(address)`` with a connect timeout and, for a
``tls://`` scheduler, the TLS certificates (:func:`dask_security`); the same
tasks become Dask futures. Dask pickles tasks and results: whoever controls
the scheduler can run code in this process, and this process runs code on
the workers, so use TLS (mutual, with your own CA) on any network that others
share. Dask cannot interrupt a running task: on Ctrl-C the pending cells are
cancelled and the running ones finish on the workers. A cell that kills its
Dask worker is retried by Dask on other workers (``distributed.scheduler.
allowed-failures``), then reported failed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError
from dlrun.sweeps.cell import (
    THREAD_VARS,
    crashed_outcome,
    existing_runs,
    run_cell,
    stop_on_sigint,
)

OnDone = Callable[[dict[str, Any]], bool]


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_job(jobs: int) -> int:
    """Threads for each of ``jobs`` processes so that jobs x threads <= cores."""
    return max(1, cores() // jobs)


def pool_threads(jobs: int, threads: int | None) -> int | None:
    """Threads of each of ``jobs`` workers: ``threads``, at most cores // jobs; None (the
    libraries' defaults, from this process's environment) for one worker and no ``threads``."""
    if jobs == 1 and threads is None:
        return None
    return min(threads or threads_per_job(jobs), threads_per_job(jobs))


@contextmanager
def thread_env(threads: int | None) -> Iterator[None]:
    """Set the thread variables for processes started inside the block, then restore them
    (None: leave the environment as it is)."""
    if threads is None:
        yield
        return
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


def death_reason(exitcode: int | None) -> str:
    """Why a worker process ended, for a cell's reason: its signal or its exit code."""
    if exitcode is None:
        return "the worker process stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        why = " (the out-of-memory killer sends it, too)" if -exitcode == signal.SIGKILL else ""
        return f"the worker process was killed by {name} (signal {-exitcode}){why}"
    return f"the worker process exited with code {exitcode}"


# The forkserver imports dlrun (NumPy, Numba, matplotlib) once and each worker is a fork of
# it, so the workers do not each pay the imports. Its environment (the thread variables) is
# fixed when it starts: a later pool that needs another thread count is spawned instead.
PRELOAD = [
    "dlrun.sweeps.executors",
    "dlrun.sweeps.cell",
    "dlrun.training.train",
    "dlrun.config.catalog",
    "dlrun.runs.plots",
]
_UNSET: Any = object()
_forkserver_threads: Any = _UNSET


def _context(threads: int | None) -> Any:
    """The multiprocessing context for workers with ``threads`` threads (None: this
    process's environment): the fork server if it was started for that count."""
    global _forkserver_threads
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    if _forkserver_threads is _UNSET:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _forkserver_threads = threads
        return ctx
    return multiprocessing.get_context("forkserver" if _forkserver_threads == threads else "spawn")


def prestart(jobs: int, threads: int | None = None) -> None:
    """Start the fork server now, so that its imports overlap the sweep's validation.

    It only imports modules; no cell runs before the sweep is valid.
    """
    if not isinstance(jobs, int) or jobs < 1:
        return
    n = pool_threads(jobs, threads)
    ctx = _context(n)
    if ctx.get_start_method() == "forkserver":
        from multiprocessing import forkserver

        with thread_env(n):
            forkserver.ensure_running()


def _init_worker(threads: int | None) -> None:
    if threads is not None:
        os.environ.update({k: str(threads) for k in THREAD_VARS})
    os.setpgrp()  # Ctrl-C in the terminal goes to the parent, which decides
    stop_on_sigint()


def _worker_main(conn: Any, threads: int | None) -> None:
    """A worker's loop: receive ``(function, args)``, send back ``(True, result)`` or
    ``(False, "Error: message")``; None or a closed pipe ends it."""
    _init_worker(threads)
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        fn, args = job
        try:
            reply: tuple[bool, Any] = (True, fn(*args))
        except BaseException as exc:  # noqa: BLE001 (SystemExit too: the reason is sent back)
            reply = (False, f"{type(exc).__name__}: {exc}")
        try:
            conn.send(reply)
        except (OSError, ValueError):  # the parent is gone
            return
        except Exception as exc:  # a result that cannot be pickled
            conn.send((False, f"cannot send the result back: {type(exc).__name__}: {exc}"))


class WorkerDied(RuntimeError):
    """A worker process ended while it had a call to answer."""

    def __init__(self, exitcode: int | None, pid: int | None) -> None:
        super().__init__(death_reason(exitcode))
        self.exitcode, self.pid = exitcode, pid


class _Worker:
    """One worker process and the pipe to it; one call at a time."""

    def __init__(self, ctx: Any, threads: int | None, index: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(
            target=_worker_main, args=(child, threads), name=f"dlrun-worker-{index}", daemon=True
        )
        try:
            with thread_env(threads):
                self.process.start()
        finally:
            child.close()
        self.busy = False

    @property
    def name(self) -> str:
        return f"{socket.gethostname()}:{self.process.pid}"

    def send(self, job: tuple[Callable[..., Any], tuple[Any, ...]]) -> None:
        self.conn.send(job)
        self.busy = True

    def receive(self) -> Any:
        """The answer to the call sent; WorkerDied (the process reaped) if it ended."""
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            raise WorkerDied(self.reap(), self.process.pid) from None
        self.busy = False
        if not ok:
            raise RuntimeError(value)
        return value

    def reap(self) -> int | None:
        """Wait (briefly) for the process to end; its exit code (negative: the signal)."""
        self.process.join(timeout=5)
        if self.process.exitcode is None:  # pipe closed but still running: end it
            self.process.kill()
            self.process.join(timeout=5)
            return None
        return self.process.exitcode

    def close(self, wait_s: float) -> None:
        """Ask the worker to end (a busy one: to stop its run after the batch, as Ctrl-C
        does), wait up to ``wait_s`` seconds, then kill it."""
        try:
            if self.busy and self.process.pid is not None:
                os.kill(self.process.pid, signal.SIGINT)
                self.conn.close()  # its answer has nowhere to go: it ends once it is done
            elif self.process.is_alive():
                self.conn.send(None)
        except (OSError, ValueError):
            pass
        self.process.join(timeout=wait_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class _Call:
    """What :meth:`LocalPool.submit` returns: ``result()`` waits for the answer (a call
    that found no idle worker is sent then)."""

    def __init__(self, pool: LocalPool, job: tuple[Callable[..., Any], tuple[Any, ...]]) -> None:
        self.pool, self.job = pool, job
        self.worker = pool._send(job) if pool._idle() is not None else None

    def result(self) -> Any:
        if self.worker is None:
            self.worker = self.pool._send(self.job)
        try:
            return self.worker.receive()
        except WorkerDied:
            self.pool._discard(self.worker)
            raise


class LocalPool:
    """Cells in ``jobs`` local worker processes, ``cores // jobs`` threads each."""

    name = "local"

    def __init__(self, jobs: int, threads: int | None = None) -> None:
        self.jobs = jobs
        self.threads = pool_threads(jobs, threads)
        self.workers: list[_Worker | None] = [None] * jobs
        self.started = 0  # worker processes started (replacements included)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    def describe(self) -> str:
        threads = "default" if self.threads is None else self.threads
        return f"{self.name}, {self.jobs} worker{'s' if self.jobs > 1 else ''} x {threads} threads"

    @property
    def pool(self) -> LocalPool:
        """What ``compare`` draws the figures with (``submit``)."""
        return self

    def shutdown(self, wait_s: float = 10.0) -> None:
        for i, w in enumerate(self.workers):
            if w is not None:
                w.close(wait_s)
                self.workers[i] = None

    # ------------------------------------------------------------------ workers
    def _idle(self) -> int | None:
        """Index of a slot that can take a call now (empty, or an idle worker)."""
        for i, w in enumerate(self.workers):
            if w is None or not w.busy:
                return i
        return None

    def _discard(self, worker: _Worker) -> None:
        for i, w in enumerate(self.workers):
            if w is worker:
                w.conn.close()
                self.workers[i] = None

    def _send(self, job: tuple[Callable[..., Any], tuple[Any, ...]]) -> _Worker:
        """Send ``job`` to an idle worker (started here if its slot is empty or its process
        has ended); OSError if no worker could take it."""
        i = self._idle()
        if i is None:
            raise RuntimeError("no idle worker")  # callers check first
        for _attempt in range(2):
            w = self.workers[i]
            if w is not None and not w.process.is_alive():
                w.reap()
                self._discard(w)
                w = None
            if w is None:
                w = self.workers[i] = _Worker(_context(self.threads), self.threads, self.started)
                self.started += 1
            try:
                w.send(job)
                return w
            except (OSError, ValueError):  # it died before it could take the job
                w.reap()
                self._discard(w)
        raise OSError("the worker process died before it could take the cell")

    def submit(self, fn: Callable[..., Any], *args: Any) -> _Call:
        """Run ``fn(*args)`` in a worker (for the figures, after the cells)."""
        return _Call(self, (fn, args))

    # ------------------------------------------------------------------ cells
    def run(self, tasks: list[dict[str, Any]], on_done: OnDone) -> bool:
        queue = list(tasks)
        running: dict[_Worker, tuple[dict[str, Any], set[str], float]] = {}
        stop = False

        def collect(w: _Worker) -> None:
            nonlocal stop
            task, before, start = running.pop(w)
            try:
                outcome = w.receive()
            except WorkerDied as died:
                self._discard(w)
                reason = f"{died}; the cell's worker was replaced"
                outcome = crashed_outcome(
                    task, reason, before, time.perf_counter() - start, f"{w.name} (died)"
                )
            except RuntimeError as exc:  # run_cell raised (it does not; SystemExit would)
                outcome = crashed_outcome(
                    task, f"the cell raised {exc}", before, time.perf_counter() - start, w.name
                )
            if not on_done(outcome):
                stop = True

        def start(task: dict[str, Any]) -> None:
            nonlocal stop
            before = existing_runs(task)
            try:
                w = self._send((run_cell, ({**task, "threads": self.threads},)))
            except Exception as exc:  # noqa: BLE001 (cannot start a process: this cell fails)
                if not on_done(failed(task, f"could not start a worker process: {exc}")):
                    stop = True
                return
            running[w] = (task, before, time.perf_counter())

        try:
            while running or (queue and not stop):
                while queue and not stop and self._idle() is not None:
                    start(queue.pop(0))
                self._wait(running, collect)
        except KeyboardInterrupt:
            self._stop_running(running, collect, on_done)
            return True
        return False

    @staticmethod
    def _wait(running: dict[_Worker, Any], collect: Callable[[_Worker], None]) -> None:
        """Collect every running worker that answered or ended (waits at most 0.5 s)."""
        if not running:
            return
        handles = {}
        for w in running:
            handles[id(w.conn)] = w
            handles[w.process.sentinel] = w
        ready = wait([w.conn for w in running] + [w.process.sentinel for w in running], 0.5)
        done = []
        for r in ready:
            w = handles[r if isinstance(r, int) else id(r)]
            if w not in done:
                done.append(w)
        for w in done:
            collect(w)

    def _stop_running(
        self,
        running: dict[_Worker, Any],
        collect: Callable[[_Worker], None],
        on_done: OnDone,
    ) -> None:
        """Ctrl-C: each running cell stops after its batch; a second Ctrl-C kills the workers."""
        for w in running:
            try:
                os.kill(w.process.pid, signal.SIGINT)
            except (OSError, TypeError):
                pass
        try:
            while running:
                self._wait(running, collect)
        except KeyboardInterrupt:
            for w, (task, _, _) in list(running.items()):
                w.process.kill()
                w.reap()
                self._discard(w)
                on_done({**failed(task, "killed by a second Ctrl-C"), "status": "interrupted"})
            running.clear()


# --------------------------------------------------------------------------- Dask
def dask_security(
    address: str,
    ca_file: str | Path | None = None,
    cert: str | Path | None = None,
    key: str | Path | None = None,
) -> Any:
    """The ``distributed.Security`` for a client of the scheduler at ``address``.

    With certificates (all three: the CA that signed the cluster's certificates, this
    client's certificate and its private key): mutual TLS with encryption required, so
    the address must be ``tls://``. Without them: None for ``tcp://`` (no TLS, no
    authentication), and for ``tls://`` Dask's own configuration
    (``distributed.comm.tls.*``) if it names a client certificate; else a ConfigError.
    """
    given = {"--tls-ca-file": ca_file, "--tls-cert": cert, "--tls-key": key}
    tls = address.startswith("tls://")
    if not any(given.values()):
        if not tls:
            return None
        from distributed import Security

        configured = Security()
        if configured.tls_ca_file and configured.tls_client_cert:
            return configured
        raise ConfigError(
            f"the Dask scheduler at {address} requires TLS: give this client's certificates",
            hint="--tls-ca-file CA.pem --tls-cert CLIENT.pem --tls-key CLIENT.key "
            "(or set distributed.comm.tls.ca-file and .client.cert/.key in Dask's config)",
        )
    missing = [name for name, value in given.items() if not value]
    if missing:
        raise ConfigError(
            f"TLS needs all of --tls-ca-file, --tls-cert and --tls-key (missing: "
            f"{', '.join(missing)})",
            hint="the CA that signed the cluster's certificates, this client's certificate "
            "and its key",
        )
    for name, value in given.items():
        path = Path(str(value))
        try:
            with path.open("rb") as f:
                f.read(1)
        except OSError as exc:
            raise ConfigError(f"{name} {path}: {exc.strerror or exc}") from None
    if not tls:
        raise ConfigError(
            f"TLS certificates given but the address is {address}",
            hint="a TLS scheduler's address starts with tls://, e.g. tls://HOST:8786",
        )
    from distributed import Security

    return Security(
        tls_ca_file=str(ca_file),
        tls_client_cert=str(cert),
        tls_client_key=str(key),
        require_encryption=True,
    )


class DaskCluster:
    """Cells as futures on a Dask distributed cluster at ``address``."""

    name = "dask"

    def __init__(self, address: str, timeout: float = 5.0, security: Any = None) -> None:
        self.address, self.timeout, self.security = address, timeout, security
        self.client: Any = None

    def __enter__(self) -> DaskCluster:
        try:
            from distributed import Client
        except ImportError:
            raise ConfigError(
                "--executor dask needs the 'distributed' package",
                hint="pip install 'dlrun[cluster]'",
            ) from None
        kwargs: dict[str, Any] = {"timeout": self.timeout, "set_as_default": False}
        if self.security is not None:
            kwargs["security"] = self.security
        try:
            self.client = Client(self.address, **kwargs)
        except (OSError, TimeoutError, ValueError) as exc:
            raise self._refused(exc) from None
        return self

    def _refused(self, exc: Exception) -> ConfigError:
        """The error for a connection that failed: TLS refused, or nobody there."""
        text = f"{type(exc).__name__}: {exc}" if not str(exc).startswith("TLS") else str(exc)
        if self.security is not None and any(w in text for w in ("TLS", "SSL", "certificate")):
            return ConfigError(
                f"the TLS connection to the Dask scheduler at {self.address} was refused: {text}",
                hint="--tls-ca-file must be the CA that signed the cluster's certificates, and "
                "--tls-cert/--tls-key a certificate and key that this CA signed",
            )
        hint = "start one with `dask scheduler` and `dask worker ADDRESS`, or check --address"
        if self.security is None:
            hint += "; a scheduler that requires TLS (tls://) refuses a client without certificates"
        return ConfigError(
            f"cannot reach the Dask scheduler at {self.address} (waited {self.timeout:g} s): {exc}",
            hint=hint,
        )

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
                        if type(exc).__name__ == "KilledWorker":
                            reason = (
                                "every Dask worker that ran this cell died (the cell crashes its "
                                f"process; see the workers' logs): {exc}"
                            )
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
    tls: dict[str, Any] | None = None,
) -> Any:
    """The executor for ``--executor`` / ``--jobs`` / ``--address`` / ``--threads`` (validated).

    ``threads``: per process; with ``jobs > 1`` at most ``cores // jobs``. ``tls``: the
    Dask client's certificates, ``{"ca_file", "cert", "key"}`` (see :func:`dask_security`).
    """
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise ConfigError(f"--threads must be an integer >= 1 (given: {threads})")
    if executor not in ("local", "dask"):
        raise ConfigError(f"unknown executor '{executor}'; known: local, dask")
    if not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"--jobs must be an integer >= 1 (given: {jobs})")
    tls = {k: v for k, v in (tls or {}).items() if v}
    if executor == "dask":
        if not address:
            raise ConfigError(
                "--executor dask needs --address tcp://HOST:PORT (or tls://HOST:PORT) "
                "of the scheduler"
            )
        return DaskCluster(address, timeout, dask_security(address, **tls))
    if address:
        raise ConfigError("--address is only used with --executor dask")
    if tls:
        raise ConfigError("--tls-ca-file, --tls-cert and --tls-key are for --executor dask")
    return LocalPool(jobs, threads)
