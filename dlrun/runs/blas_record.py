"""A run's BLAS choices: written to its folder as they are made, read back when it resumes.

Which library multiplies each shape class (``kernels.blas_choice``) decides the last
bits of every product, so a run keeps its choices: ``env.json`` holds, under ``blas``,
the policy, the CPU, the libraries and their versions, and each class the run used with
its library (``choices``); ``log.txt`` gets one line per class, with the times when it
was measured. A resumed run takes its classes' libraries from there whatever the
machine's wisdom or ``DLRUN_BLAS`` say now, and a run from before the choice existed
(no ``blas`` in its env.json) stays on OpenBLAS, as it was trained: either way it
continues to the bit as if never stopped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dlrun.errors import CheckpointError, ConfigError
from dlrun.kernels import blas_choice, blas_libs
from dlrun.runs.rundir import RunDir


def checked_policy() -> str:
    """``$DLRUN_BLAS`` (auto, openblas or mkl), or a ConfigError saying what is allowed;
    ``mkl`` also needs MKL installed."""
    try:
        blas_choice.candidates()  # a forced library must be installed
        return blas_choice.policy()
    except ValueError as exc:
        raise ConfigError(str(exc), hint="unset DLRUN_BLAS to choose per shape") from None


def describe() -> dict[str, Any]:
    """The policy, the CPU (model, vendor, flags), each library the policy allows with its
    version, and where measurements are kept: ``env.json``'s ``blas`` entry."""
    policy = checked_policy()
    candidates = blas_choice.candidates()  # MKL unprepared where it is never a candidate
    return {
        "policy": policy,
        "cpu": blas_choice.cpu(),
        "libraries": {
            lib.name: lib.version for lib in blas_libs.loaded() if lib.code in candidates
        },
        "wisdom": str(blas_choice.wisdom_path()),
        "choices": {},
    }


@contextmanager
def recorded(run: RunDir, resumed: bool) -> Iterator[None]:
    """Products inside are one recording of the chooser, written in ``run``'s env.json and
    log.txt; a ``resumed`` run first takes back its recorded choices."""
    env = run.read_json("env.json")
    saved = env.get("blas")
    entry = describe()
    pins, fallback = {}, None
    if resumed and not isinstance(saved, dict):
        fallback = "openblas"
        run.log("BLAS: the run was made before per-shape choices: OpenBLAS for every product")
    elif resumed:
        pins = {k: v for k, v in saved.get("choices", {}).items() if isinstance(v, str)}
        missing = sorted(set(pins.values()) - {lib.name for lib in blas_libs.loaded()})
        if missing:
            raise CheckpointError(
                f"run {run.path} multiplied matrices with {', '.join(missing)}, which is not "
                "installed here, so it cannot continue to the same results",
                hint="pip install -e '.[mkl]' (the mkl extra), then resume again",
            )
        entry = {**saved, "choices": dict(pins)}
        if entry["policy"] != checked_policy():
            run.log(f"BLAS: DLRUN_BLAS={checked_policy()} ignored: the run keeps its choices")
    env["blas"] = entry
    run.write_json("env.json", env)

    def on_choice(choice: blas_choice.Choice) -> None:
        run.log(f"BLAS for {choice.describe()}")
        if entry["choices"].get(choice.key) != choice.lib:
            entry["choices"][choice.key] = choice.lib
            run.write_json("env.json", env)

    blas_choice.begin(pins, on_choice, fallback)
    try:
        yield
    finally:
        blas_choice.end()
