"""Which BLAS multiplies each shape of matrix product: chosen by measurement, remembered.

No library wins every shape: on an Intel Xeon MKL was 3.3x faster than OpenBLAS for the
first convolution's K = 9 product and 12x slower for the 64 x 3136 x 128 dense product;
on AMD EPYC it lost nearly everywhere. So, like FFTW's "wisdom" and cuDNN's benchmark
mode, the first time a product of a new *shape class* is asked for, each candidate
library multiplies matrices of that shape a few times and the fastest is kept:

    class      dtype, transposes, and M, K, N each rounded up to a power of two
               ("float32 NT 64x512x256" holds 64 x 512 x 156 and the last batch's 32 x 512 x 156)
    measure    rounds that alternate the libraries (the machine's load falls on both),
               each sample at least 0.2 ms of products after an untimed one; per
               library the median of the faster half of >= 5 rounds (load only adds time)
    keep       OpenBLAS (NumPy's own) unless another library's time is more than
               MARGIN (10%) below its: a tie is noise, and OpenBLAS keeps results as they
               were; a product under SMALL (1 MFLOP, microseconds) is not measured
    remember   in the wisdom file, keyed by the machine (CPU model, library versions,
               threads) and the class: a later run reads the choice and measures nothing
               (but for a choice measured while the load left no core free: on a
               crowded machine OpenBLAS's threads, which wait for one another, slowed
               up to 100-fold, so the first start on a quieter machine measures again)

The setting ``DLRUN_BLAS`` (``auto``, the default; ``openblas``; ``mkl``) forces one
library for every product, for reproducibility and tests. With only OpenBLAS installed
nothing is measured. The wisdom file is ``$DLRUN_BLAS_WISDOM`` if set, else
``blas_wisdom.json`` beside Numba's cache of the kernels (``$NUMBA_CACHE_DIR``, or
``dlrun/kernels/__pycache__``; ``~/.cache/dlrun`` when that cannot be written).

A *recording* (``begin``/``end``, one per training run) keeps every class used, with its
choice and where the choice came from, and calls ``on_choice`` at each class's first
use (the run writes it to its folder); ``pins`` (a resumed run's saved choices) take
precedence over everything else, so a resumed run multiplies exactly as before.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

from dlrun.kernels import blas_libs
from dlrun.kernels.blas_libs import MKL, NAMES, OPENBLAS, product

POLICIES = ("auto", "openblas", "mkl")
#: Another library is chosen only when its time is below (1 - MARGIN) x OpenBLAS's.
MARGIN = 0.10
#: Calibration of one class: at least MIN_ROUNDS rounds, then more until BUDGET seconds
#: have passed or MAX_ROUNDS rounds were run; a sample is >= SAMPLE seconds of products.
MIN_ROUNDS, MAX_ROUNDS, BUDGET, SAMPLE = 5, 31, 0.25, 2e-4
#: Products of fewer floating-point operations (2 M K N) stay on OpenBLAS unmeasured: they
#: take microseconds, mostly call overhead, where MKL's was the larger (10 vs 1 us at 4x2x4).
SMALL = 1 << 20
WISDOM_FORMAT = 1


@dataclass
class Choice:
    """The library of one shape class: ``lib`` (a name of ``blas_libs.NAMES``), the first
    exact ``shape`` (M, K, N) it was used for, ``source`` (run, forced, only, small,
    wisdom, measured) and the measured ``seconds`` per library (empty unless measured)."""

    key: str
    lib: str
    shape: tuple[int, int, int]
    source: str
    seconds: dict[str, float] = field(default_factory=dict)
    load: float | None = None

    def describe(self) -> str:
        """One line for a log: ``float32 NN 64x1024x256 (64x784x256): openblas (measured:
        openblas 0.41 ms, mkl 0.62 ms)``."""
        m, k, n = self.shape
        text = f"{self.key} ({m}x{k}x{n}): {self.lib} ({self.source}"
        if self.load is not None:
            text += f" at load {self.load:.1f}"
        if self.seconds:
            text += ": " + ", ".join(f"{lib} {1e3 * s:.3g} ms" for lib, s in self.seconds.items())
        return text + ")"


def _round_up(x: int) -> int:
    """The power of two >= x (0 for 0)."""
    return 1 << (x - 1).bit_length() if x > 0 else 0


def shape_class(m: int, k: int, n: int, ta: bool, tb: bool, dtype: Any) -> str:
    """``"float32 NT 64x512x256"``: the class of op(a) (M, K) @ op(b) (K, N), op a
    transpose where ``ta``/``tb``; M, K, N rounded up to powers of two."""
    flags = ("T" if ta else "N") + ("T" if tb else "N")
    return f"{np.dtype(dtype).name} {flags} {_round_up(m)}x{_round_up(k)}x{_round_up(n)}"


# ----------------------------------------------------------------------- policy
_policy_override: str | None = None


def policy() -> str:
    """``auto``, ``openblas`` or ``mkl``: :func:`set_policy`'s, else ``$DLRUN_BLAS``, else
    auto. A ValueError names a value that is none of these."""
    value = _policy_override or os.environ.get("DLRUN_BLAS", "").strip().lower() or "auto"
    if value not in POLICIES:
        raise ValueError(f"DLRUN_BLAS must be one of {', '.join(POLICIES)}, got '{value}'")
    return value


def set_policy(value: str | None) -> None:
    """Force a policy in this process (None: back to ``$DLRUN_BLAS``); forgets earlier choices."""
    global _policy_override
    if value is not None and value not in POLICIES:
        raise ValueError(f"the BLAS policy must be one of {', '.join(POLICIES)}, got '{value}'")
    _policy_override = value
    forget()


def candidates() -> list[int]:
    """The libraries the policy lets products run on (codes of ``blas_libs``). A forced
    library that is not installed is a ValueError saying how to install it."""
    pol = policy()
    if pol == "openblas":
        return [OPENBLAS]
    if pol == "mkl":
        if blas_libs.mkl() is None:
            raise ValueError(
                "DLRUN_BLAS=mkl, but MKL is not installed (no libmkl_rt in "
                f"{Path(sys.prefix, 'lib')}): pip install -e '.[mkl]', or set DLRUN_MKL_LIB"
            )
        if blas_libs.mkl_problem():
            raise ValueError(f"DLRUN_BLAS=mkl, but {blas_libs.mkl_problem()}")
        return [MKL]
    return [lib.code for lib in blas_libs.loaded()] or [OPENBLAS]


# ----------------------------------------------------------------------- wisdom
def wisdom_path() -> Path:
    """Where choices are remembered between runs (see the module docstring)."""
    given = os.environ.get("DLRUN_BLAS_WISDOM", "").strip()
    if given:
        return Path(given)
    import numba

    if numba.config.CACHE_DIR:
        return Path(numba.config.CACHE_DIR) / "dlrun_blas_wisdom.json"
    beside = Path(__file__).resolve().parent / "__pycache__"
    try:
        beside.mkdir(exist_ok=True)
        if os.access(beside, os.W_OK):
            return beside / "blas_wisdom.json"
    except OSError:
        pass
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "dlrun" / "blas_wisdom.json"


def cpu() -> dict[str, Any]:
    """The CPU: ``model``, ``vendor`` and the instruction-set ``flags`` that matter to
    matrix products (avx2, fma, avx512f, avx512_bf16, amx_tile, ...), from /proc/cpuinfo."""
    model, vendor, flags = platform.processor() or platform.machine(), "", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                name, _, value = line.partition(":")
                name = name.strip()
                if name == "model name":
                    model = value.strip()
                elif name == "vendor_id":
                    vendor = value.strip()
                elif name == "flags":
                    flags = set(value.split())
                    break  # the first processor's block is enough
    except OSError:
        pass
    wanted = ("avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile")
    return {"model": model, "vendor": vendor, "flags": [f for f in wanted if f in flags]}


def machine_key() -> str:
    """What a measurement holds for: CPU, library versions, BLAS threads (worked out once
    per process, again after :func:`forget`)."""
    if _machine:
        return _machine[0]
    libs = " + ".join(lib.describe() for lib in blas_libs.loaded()) or "numpy's blas"
    threads = blas_libs.threads(OPENBLAS) or os.cpu_count()
    _machine.append(f"{cpu()['model']} | {libs} | {threads} threads")
    return _machine[0]


_machine: list[str] = []


def _read_wisdom(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("format") != WISDOM_FORMAT:
        return {}
    machines = data.get("machines")
    return machines if isinstance(machines, dict) else {}


def _known(machine: str, key: str) -> str | None:
    """The remembered choice of class ``key`` on ``machine`` (re-reading the file once per
    class not yet known: another process may have measured it meanwhile)."""
    entry = _wisdom.get(machine, {}).get(key)
    if entry is None:
        _wisdom.clear()
        _wisdom.update(_read_wisdom(wisdom_path()))
        entry = _wisdom.get(machine, {}).get(key)
    if not isinstance(entry, dict) or entry.get("choice") not in NAMES:
        return None
    if busy(entry.get("load", 0)) and not busy(load()):
        return None  # measured while other work held the cores: measure again, now it is quiet
    return entry["choice"]


def load() -> float:
    """The machine's load: runnable processes, averaged over the last minute."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return 0.0


def busy(level: float) -> bool:
    """Whether ``level`` of load leaves no core free: OpenBLAS's threads, waiting for one
    another, then slowed up to 100-fold, MKL's (which sleep at once) far less; a choice
    measured so holds only until a quieter start measures again."""
    return level >= (os.cpu_count() or 1)


def _remember(machine: str, choice: Choice) -> str:
    """Add ``choice`` to the wisdom file (merged under a lock with what other processes
    wrote); returns "" or why it could not be saved."""
    entry = {"choice": choice.lib, "shape": list(choice.shape), "seconds": choice.seconds}
    entry["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    entry["load"] = choice.load  # how busy the machine was
    _wisdom.setdefault(machine, {})[choice.key] = entry
    path = wisdom_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            machines = _read_wisdom(path)
            machines.setdefault(machine, {})[choice.key] = entry
            text = json.dumps({"format": WISDOM_FORMAT, "machines": machines}, indent=1)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".blas_wisdom.")
            with os.fdopen(fd, "w") as f:
                f.write(text + "\n")
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
    except OSError as exc:
        return f"not saved: {exc.strerror or exc}"
    return ""


# ----------------------------------------------------------------------- measuring
def _operands(m: int, k: int, n: int, ta: bool, tb: bool, dtype: Any):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return (a.T if ta else a), (b.T if tb else b), np.empty((m, n), dtype=dtype)


def measure(
    m: int, k: int, n: int, ta: bool, tb: bool, dtype: Any, libs: list[int]
) -> dict[str, float]:
    """Seconds of one op(a) (M, K) @ op(b) (K, N) on each library of ``libs`` (the
    :func:`lower_quartile` of the rounds), on
    random operands laid out as the layers store them. The libraries take turns, round
    after round, so a burst of load from other processes falls on all of them."""
    a, b, c = _operands(m, k, n, ta, tb, dtype)
    for lib in libs:  # warm-up: MKL loads its kernels at its first product
        product(a, b, c, lib)
    start = time.perf_counter()
    product(a, b, c, libs[0])
    once = max(time.perf_counter() - start, 1e-7)
    reps = max(1, math.ceil(SAMPLE / once))
    samples: dict[int, list[float]] = {lib: [] for lib in libs}
    began = time.perf_counter()
    for r in range(MAX_ROUNDS):
        for lib in libs if r % 2 == 0 else libs[::-1]:
            product(a, b, c, lib)  # untimed: the first call after another library's waits
            start = time.perf_counter()  # for its threads to wake (up to 75 ms when busy)
            for _ in range(reps):
                product(a, b, c, lib)
            samples[lib].append((time.perf_counter() - start) / reps)
        if r + 1 >= MIN_ROUNDS and time.perf_counter() - began > BUDGET:
            break
    return {NAMES[lib]: lower_quartile(samples[lib]) for lib in libs}


def lower_quartile(values: list[float]) -> float:
    """The median of the faster half: load from other processes only ever adds time, and
    on a shared machine it spoils up to half the samples (OpenBLAS's spinning threads
    slowed 100-fold while other work held the cores)."""
    ordered = sorted(values)
    return median(ordered[: max(1, (len(ordered) + 1) // 2)])


def pick(seconds: dict[str, float]) -> str:
    """The library to keep from measured times: OpenBLAS unless another is more than
    MARGIN faster (then the fastest)."""
    best = min(seconds, key=seconds.get)
    base = seconds.get("openblas")
    if base is None or seconds[best] < (1 - MARGIN) * base:
        return best
    return "openblas"


def calibrate(
    key: str, m: int, k: int, n: int, ta: bool, tb: bool, dtype: Any, libs: list[int]
) -> Choice:
    """Measure and pick. A library other than OpenBLAS must win twice, in two measurements
    0.1 s apart: a burst of load that slowed OpenBLAS alone in the first is then not
    written down for good. The times kept are each library's faster measurement."""
    level = load()
    seconds = measure(m, k, n, ta, tb, dtype, libs)
    if pick(seconds) != "openblas":
        time.sleep(0.1)
        again = measure(m, k, n, ta, tb, dtype, libs)
        winner = pick(again) if pick(again) == pick(seconds) else "openblas"
        seconds = {lib: min(seconds[lib], again[lib]) for lib in seconds}
        return Choice(key, winner, (m, k, n), "measured", seconds, level)
    return Choice(key, "openblas", (m, k, n), "measured", seconds, level)


# ----------------------------------------------------------------------- choosing
_wisdom: dict[str, dict[str, Any]] = {}
_decided: dict[str, Choice] = {}  # this process's choices, by class
_by_shape: dict[tuple, int] = {}  # (m, k, n, ta, tb, dtype char) -> lib code, this recording
_used: dict[str, Choice] = {}  # classes used in this recording
_pins: dict[str, str] = {}
_fallback: str | None = None
_on_choice: Callable[[Choice], None] | None = None


def decide(m: int, k: int, n: int, ta: bool, tb: bool, dtype: Any) -> Choice:
    """The choice for a product of this shape (see the module docstring), from the first
    of: the recording's pins, a forced policy, this process's earlier choice, the only
    candidate, a small product (OpenBLAS), the wisdom file, a measurement."""
    key = shape_class(m, k, n, ta, tb, dtype)
    if key in _pins:
        choice = Choice(key, _pins[key], (m, k, n), "run")
    elif _fallback is not None:  # a resumed run's class it never met: as its others were
        choice = Choice(key, _fallback, (m, k, n), "run")
    elif policy() != "auto":
        choice = Choice(key, NAMES[candidates()[0]], (m, k, n), "forced")
    elif key in _decided:
        choice = _decided[key]
    else:
        choice = _decided[key] = _measured_or_known(key, m, k, n, ta, tb, dtype)
    if choice.lib == "mkl" and blas_libs.prepare_mkl() is None:  # set up before a kernel calls it
        problem = blas_libs.mkl_problem()
        if choice.source in ("run", "forced"):
            raise ValueError(f"{choice.key} must be multiplied by MKL, but {problem}")
        choice = _decided[key] = Choice(key, "openblas", (m, k, n), f"only: {problem}")
    return choice


def _measured_or_known(key: str, m: int, k: int, n: int, ta: bool, tb: bool, dtype: Any) -> Choice:
    """The automatic choice of a class: the only candidate, OpenBLAS for a small product,
    the wisdom file's, or a new measurement (then written to the wisdom file)."""
    libs = candidates()
    if len(libs) == 1:
        return Choice(key, NAMES[libs[0]], (m, k, n), "only")
    if 2 * m * k * n < SMALL:
        return Choice(key, "openblas", (m, k, n), "small")
    machine = machine_key()
    known = _known(machine, key)
    if known is not None and NAMES.index(known) in libs:
        return Choice(key, known, (m, k, n), "wisdom")
    choice = calibrate(key, m, k, n, ta, tb, dtype, libs)
    note = _remember(machine, choice)
    if note:
        choice.source += f", {note}"
    return choice


def lib_for(m: int, k: int, n: int, ta: bool, tb: bool, dtype: np.dtype) -> int:
    """The library code for op(a) (M, K) @ op(b) (K, N): a dictionary look-up after the
    first product of the shape in this recording."""
    shape = (m, k, n, ta, tb, dtype.char)
    lib = _by_shape.get(shape)
    if lib is not None:
        return lib
    choice = decide(m, k, n, ta, tb, dtype)
    if choice.key not in _used:
        _used[choice.key] = choice
        if _on_choice is not None:
            _on_choice(choice)
    lib = _by_shape[shape] = NAMES.index(choice.lib)
    return lib


_generation = [0]


def generation() -> int:
    """A number that changes whenever choices may have changed (a new recording, forgotten
    choices): a caller may keep the libraries it was given until it changes."""
    return _generation[0]


def begin(
    pins: dict[str, str] | None = None,
    on_choice: Callable[[Choice], None] | None = None,
    fallback: str | None = None,
) -> None:
    """Start a recording: ``pins`` (class -> library name) decide their classes whatever the
    policy, and ``fallback`` (a library name) every other class when given;
    ``on_choice(choice)`` is called at each class's first use."""
    global _on_choice, _fallback
    for key, lib in [*(pins or {}).items(), ("fallback", fallback or "openblas")]:
        if lib not in NAMES:
            raise ValueError(f"BLAS choice of '{key}' is '{lib}', not one of {', '.join(NAMES)}")
    _pins.clear()
    _pins.update(pins or {})
    _fallback = fallback
    _on_choice = on_choice
    _used.clear()
    _by_shape.clear()
    _generation[0] += 1


def end() -> dict[str, Choice]:
    """End the recording; returns the choices it used, by class."""
    used = dict(_used)
    begin()
    return used


def forget() -> None:
    """Forget this process's choices (after the thread count changed: they may differ)."""
    _decided.clear()
    _by_shape.clear()
    _generation[0] += 1
    _machine.clear()
