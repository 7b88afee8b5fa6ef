"""Faults injected into sweep cells, inside training, in whatever process runs the cell.

Cells run in worker processes (forked from a fork server, or spawned), so a test cannot
monkeypatch ``dlrun.training.train.train`` in its own process and have the cells see it.
Instead it replaces the function the executors send to their workers::

    monkeypatch.setattr(executors, "run_cell", faulty({"adam:0": "segv"}))

``faulty`` returns a picklable ``functools.partial`` of :func:`run_cell_with_faults`, a
function of this (importable) module: the worker imports it and runs the real
``run_cell`` with one more training callback for the cells named in ``faults``.
A ``dlrun compare`` in a subprocess gets the same with :func:`install` (see CRASHING_CLI).

Keys: ``"<optimizer>"`` or ``"<optimizer>:<seed>"``. Actions, at the cell's first batch:

    segv         the process kills itself with SIGSEGV (as a crashing kernel would)
    exit3        os._exit(3): the process ends at once, no clean-up
    raise        RuntimeError("injected failure"): an ordinary failing run
    ("ctrl_c", pid)  SIGINT to ``pid`` (the sweep's process: Ctrl-C pressed there), then
                 wait until this run is asked to stop (the sweep forwards it)
    exit_after   not at a batch: os._exit(3) once the run has finished, before the cell
                 returns its outcome
"""

from __future__ import annotations

import functools
import os
import signal
import time
from typing import Any


def faulty(faults: dict[str, Any]) -> functools.partial:
    return functools.partial(run_cell_with_faults, faults)


def install(faults: dict[str, Any]) -> None:
    """In a process about to run ``dlrun compare``: its cells get ``faults``."""
    import dlrun.sweeps.executors as executors

    executors.run_cell = faulty(faults)


def _action(faults: dict[str, Any], config: dict[str, Any]) -> Any:
    name = config["optimizer"]["name"]
    return faults.get(f"{name}:{config['seed']}", faults.get(name))


def _act(action: Any, trainer: Any) -> None:
    if action == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(10)  # the signal is delivered before this returns
    elif action == "exit3":
        os._exit(3)
    elif action == "raise":
        raise RuntimeError("injected failure")
    elif isinstance(action, (tuple, list)) and action[0] == "ctrl_c":
        os.kill(int(action[1]), signal.SIGINT)
        deadline = time.monotonic() + 60
        while not trainer.stop_requested and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        raise ValueError(f"unknown fault {action!r}")


def run_cell_with_faults(faults: dict[str, Any], task: dict[str, Any]) -> dict[str, Any]:
    import dlrun.training.train as training
    from dlrun.sweeps import cell

    action = _action(faults, task["config"])
    if action is None:
        return cell.run_cell(task)
    if action == "exit_after":
        cell.run_cell(task)
        os._exit(3)
    real = training.train
    fired = []

    def once(trainer: Any) -> None:
        if not fired:
            fired.append(True)
            _act(action, trainer)

    def train(config: Any, **kwargs: Any) -> Any:
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or []), once]
        return real(config, **kwargs)

    training.train = train
    try:
        return cell.run_cell(task)
    finally:
        training.train = real


#: ``python -c CRASHING_CLI FAULTS compare ...``: ``dlrun compare`` with ``install(FAULTS)``
#: (FAULTS a JSON object), in a fresh interpreter started in the repository's root.
CRASHING_CLI = (
    "import json, os, sys; sys.path.insert(0, os.getcwd()); "
    "from tests.sweeps import faults; faults.install(json.loads(sys.argv.pop(1))); "
    "from dlrun.cli import main; sys.argv[0] = 'dlrun'; main()"
)
