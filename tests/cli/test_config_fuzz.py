"""A seeded fuzzer of the shipped configs (issue 19): whatever a config holds, dlrun
answers with a result (exit 0) or one message (exit 2, or 1 for a run that diverged
or failed), never a traceback or a signal.

Each case is a shipped ``configs/*.yaml`` with 1-3 mutations: a key deleted, a value
replaced (another type, a random string, a negative, huge, NaN or infinite number,
nested lists or mappings, lists shared through aliases, a list that holds itself), an
unknown key added, ``extends`` set to anything, the YAML text cut or garbled, or a
``--set`` of a random key path to random YAML text (aliases included).

- ``test_config_show_survives_mutated_configs``: every case through ``dlrun config
  show`` in this process (typer's CliRunner); fast, in the default suite.
- ``test_train_survives_mutated_configs`` (slow): a sample of the cases that config
  show accepts, shrunk to one epoch on small data, through ``dlrun train`` in a
  subprocess (a segfault shows as a negative return code), with 4 GiB of address
  space (a huge layer is a MemoryError, not a machine out of memory).

A failure lists each case's exact input (the YAML text and the --set arguments) to
reproduce it. ``FUZZ_SEED``, ``FUZZ_CASES`` and ``FUZZ_TRAIN_CASES`` in the environment
change the seed, the number of cases per config and the number of runs trained.
"""

from __future__ import annotations

import os
import random
import reprlib
import resource
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from dlrun.config.loading import format_path
from tests.cli.conftest import invoke
from tests.conftest import CONFIGS, ROOT

SEED = int(os.environ.get("FUZZ_SEED", "19"))
CASES_PER_CONFIG = int(os.environ.get("FUZZ_CASES", "15"))
TRAIN_CASES = int(os.environ.get("FUZZ_TRAIN_CASES", "12"))
TRAIN_TIMEOUT = 180.0
MEMORY_LIMIT = 4 << 30
FILES = sorted(CONFIGS.glob("*.yaml"))

Path_ = tuple[Any, ...]


@dataclass
class Case:
    """One fuzzed input: config text, --set arguments, and what was done to it."""

    source: str
    text: str
    sets: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)

    def args(self, path: Path) -> list[str]:
        return [str(path), *(a for s in self.sets for a in ("--set", s))]

    def describe(self) -> str:
        sets = " ".join(f"--set {s!r}" for s in self.sets)
        return (
            f"--- from {self.source}: {'; '.join(self.steps)}\n"
            f"--- args: {sets or '(none)'}\n{self.text[:3000]}"
        )


# --------------------------------------------------------------------------- values
def nested_list(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


def shared_lists(levels: int, width: int) -> list[Any]:
    """Lists holding one list many times: safe_dump writes them with aliases (a bomb)."""
    value: list[Any] = ["x"] * width
    for _ in range(levels):
        value = [value] * width
    return value


def self_holding() -> list[Any]:
    """A list that holds itself (safe_dump writes &id001 [1, *id001])."""
    value: list[Any] = [1]
    value.append(value)
    return value


STRINGS = ["", " ", "abc", "x" * 300, "null", "nan", "-1", "1e999", "\0", "é✓", "{", "*a", "~"]
NUMBERS = [0, -1, -7, -(10**6), 10**9, 10**18, 10**19, 10**40, 10**400, 0.5, -0.5, 1e-320]
FLOATS = [float("nan"), float("inf"), -float("inf"), 1e308, -1e308, -0.0]


def weird_value(rng: random.Random) -> tuple[Any, str]:
    """A value of another type or an extreme size, and its name for the report."""
    kind = rng.choice(
        ["string", "number", "float", "nested", "deep", "bool", "null", "empty", "mapping"]
        + ["shared", "self", "list"]
    )
    makers: dict[str, Callable[[], Any]] = {
        "string": lambda: rng.choice(STRINGS),
        "number": lambda: rng.choice(NUMBERS),
        "float": lambda: rng.choice(FLOATS),
        "nested": lambda: nested_list(rng.randint(1, 6)),
        "deep": lambda: nested_list(rng.choice([40, 60, 200])),
        "bool": lambda: rng.choice([True, False]),
        "null": lambda: None,
        "empty": lambda: rng.choice([[], {}]),
        "mapping": lambda: {rng.choice(["name", "type", "x", "units"]): rng.choice(STRINGS)},
        "shared": lambda: shared_lists(rng.choice([2, 8]), rng.choice([3, 9])),
        "self": self_holding,
        "list": lambda: [rng.choice(NUMBERS) for _ in range(rng.randint(1, 4))],
    }
    value = makers[kind]()
    return value, f"{kind} {_short(value)}"


def _short(value: Any) -> str:
    """A short repr (reprlib: a shared-list bomb is not expanded)."""
    return reprlib.repr(value)


SET_VALUES = [
    "&a [1, *a]",
    "&a {name: gd, x: *a}",
    "[[[[[[[[[[1]]]]]]]]]]",
    "{",
    "- 1",
    "-5",
    "1e999",
    ".nan",
    "10000000000000000000000",
    "abc",
    "''",
    "{a: &x [1,1,1,1,1,1,1,1,1], b: &y [*x,*x,*x,*x,*x,*x,*x,*x,*x], c: [*y,*y,*y,*y,*y,*y,*y,*y,*y]}",
    "!!python/object/apply:os.system ['echo hacked']",
]
SET_KEYS = ["a..b", "x[", "[3]", "model.layers[99].units", "data", "train.", ".", "a[-1]"]


# --------------------------------------------------------------------------- mutations
def leaves(data: Any, path: Path_ = (), seen: set[int] | None = None) -> list[Path_]:
    """Every key path in ``data`` (mapping keys and list indices), depth first; a list
    or mapping met again (shared, or holding itself) is not entered twice."""
    seen = set() if seen is None else seen
    seen.add(id(data))
    out: list[Path_] = []
    items = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in items:
        out.append((*path, key))
        if isinstance(value, (dict, list)) and id(value) not in seen and len(path) < 50:
            out.extend(leaves(value, (*path, key), seen))
    return out


def parent_of(data: Any, path: Path_) -> Any:
    for key in path[:-1]:
        data = data[key]
    return data


def delete_key(raw: dict[str, Any], rng: random.Random) -> str:
    paths = [p for p in leaves(raw) if isinstance(parent_of(raw, p), dict)]
    path = rng.choice(paths)
    del parent_of(raw, path)[path[-1]]
    return f"delete {format_path(path)}"


def replace_value(raw: dict[str, Any], rng: random.Random) -> str:
    path = rng.choice(leaves(raw))
    value, name = weird_value(rng)
    parent_of(raw, path)[path[-1]] = value
    return f"{format_path(path)} = {name}"


def add_key(raw: dict[str, Any], rng: random.Random) -> str:
    mappings = [()] + [p for p in leaves(raw) if isinstance(parent_of(raw, (*p, 0)), dict)]
    path = rng.choice(mappings)
    key = rng.choice(["extra", "unitz", "lr", "name", "type", "x" * 80])
    value, name = weird_value(rng)
    parent_of(raw, (*path, key))[key] = value
    return f"add {format_path((*path, key))} = {name}"


def tweak_number(raw: dict[str, Any], rng: random.Random) -> str:
    """A number replaced by another of its type, small, odd or extreme (the config
    often stays valid: these cases reach training)."""
    paths = [p for p in leaves(raw) if _is_number(parent_of(raw, p)[p[-1]])]
    if not paths:
        return replace_value(raw, rng)
    path = rng.choice(paths)
    old = parent_of(raw, path)[path[-1]]
    if isinstance(old, int):
        new: Any = rng.choice([0, 1, 2, 3, 7, 100, 4096, -1, 10**6, 10**9, 2**31, 2**63])
    else:
        new = rng.choice([0.0, 1e-12, 0.999, 1.0, 2.0, 1e6, 1e30, 1e308, -1.0, float("nan")])
    parent_of(raw, path)[path[-1]] = new
    return f"{format_path(path)}: {old!r} -> {new!r}"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def set_extends(raw: dict[str, Any], rng: random.Random) -> str:
    value = rng.choice([3, 2.5, None, [], [1], {"a": "b"}, "", "missing.yaml", ["base/x.yaml"]])
    raw["extends"] = value
    return f"extends = {value!r}"


MUTATIONS: list[Callable[[dict[str, Any], random.Random], str]] = [
    tweak_number,
    tweak_number,
    tweak_number,
    delete_key,
    replace_value,
    replace_value,
    replace_value,
    add_key,
    set_extends,
]


def garble(text: str, rng: random.Random) -> tuple[str, str]:
    """The YAML text cut, or one character replaced or inserted."""
    at = rng.randrange(len(text))
    how = rng.choice(["cut", "replace", "insert"])
    char = rng.choice(list(":-[]{}&*!|>'\"#%@`\t\n ") + ["é", "\0"])
    if how == "cut":
        return text[:at], f"text cut at {at}"
    if how == "replace":
        return text[:at] + char + text[at + 1 :], f"text[{at}] = {char!r}"
    return text[:at] + char + text[at:], f"insert {char!r} at {at}"


def random_set(raw: dict[str, Any], rng: random.Random) -> str:
    paths = leaves(raw)
    key = format_path(rng.choice(paths)) if paths and rng.random() < 0.8 else rng.choice(SET_KEYS)
    if rng.random() < 0.5:
        value = rng.choice(SET_VALUES)
    else:
        value = yaml.safe_dump(weird_value(rng)[0], default_flow_style=True).strip()
        value = value.removesuffix("\n...").removesuffix("...").strip()
    return f"{key}={value}"


def absolute_extends(raw: dict[str, Any], folder: Path) -> None:
    """``extends`` of a shipped config, made absolute (the case is written elsewhere)."""
    parents = raw.get("extends")
    if isinstance(parents, str):
        raw["extends"] = str(folder / parents)
    elif isinstance(parents, list):
        raw["extends"] = [str(folder / p) for p in parents]


def make_case(path: Path, rng: random.Random) -> Case:
    raw = yaml.safe_load(path.read_text())
    absolute_extends(raw, path.parent)
    steps = [rng.choice(MUTATIONS)(raw, rng) for _ in range(rng.randint(1, 3))]
    try:
        text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    except RecursionError:
        text, steps = "data: {name: xor}\n", [*steps, "(could not dump)"]
    if rng.random() < 0.15:
        text, step = garble(text, rng)
        steps.append(step)
    sets = [random_set(raw, rng) for _ in range(rng.random() < 0.3)]
    return Case(path.name, text, sets, steps)


def all_cases() -> list[Case]:
    rng = random.Random(SEED)
    return [make_case(path, rng) for path in FILES for _ in range(CASES_PER_CONFIG)]


# --------------------------------------------------------------------------- checks
def show_problem(case: Case, tmp_path: Path) -> str | None:
    """None if ``dlrun config show`` answered (exit 0, or 2 with a message), else why not."""
    path = tmp_path / "case.yaml"
    path.write_text(case.text, encoding="utf-8")
    result = invoke("config", "show", *case.args(path))
    if result.exit_code == 0 and result.exception is None:
        return None
    if result.exit_code == 2 and isinstance(result.exception, SystemExit):
        if "error:" in result.output and "Traceback" not in result.output:
            return None
    exc = result.exception
    what = f"{type(exc).__name__}: {str(exc)[:300]}" if exc else result.output[-500:]
    return f"exit {result.exit_code}: {what}"


def test_config_show_survives_mutated_configs(tmp_path: Path) -> None:
    cases = all_cases()
    problems = [(case, show_problem(case, tmp_path)) for case in cases]
    found = [f"{why}\n{case.describe()}" for case, why in problems if why is not None]
    print(f"fuzzed {len(cases)} configs through config show (seed {SEED}): {len(found)} bad")
    assert not found, f"{len(found)} of {len(cases)} cases:\n\n" + "\n\n".join(found)


# --------------------------------------------------------------------------- train
def small_data(case: Case, tmp_path: Path) -> list[str] | None:
    """--set arguments for one epoch on little data, or None if the case does not resolve."""
    from dlrun.config import registry
    from dlrun.config.resolve import load
    from dlrun.errors import DlrunError

    path = tmp_path / "case.yaml"
    path.write_text(case.text, encoding="utf-8")
    try:
        cfg = load(path, case.sets)
    except DlrunError:
        return None
    fields = registry.datasets.get(cfg["data"]["name"]).Config.model_fields
    sets = ["train.epochs=1"]
    for key, value in (("n", 96), ("n_train", 96), ("max_chars", 2000), ("download", False)):
        if key in fields:
            sets.append(f"data.{key}={str(value).lower()}")
    return sets


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def train_problem(case: Case, tmp_path: Path) -> str | None:
    """None if ``dlrun train`` ended with a result or a message, else what happened."""
    path = tmp_path / "case.yaml"
    path.write_text(case.text, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLRUN_")}
    command = [sys.executable, "-c", "from dlrun.cli import main; main()", "train"]
    command += [*case.args(path), "--runs-dir", str(tmp_path / "runs"), "-q", "--threads", "1"]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=TRAIN_TIMEOUT,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        return f"no answer within {TRAIN_TIMEOUT:.0f} s"
    if done.returncode < 0:
        return f"killed by signal {-done.returncode}: {done.stderr[-1500:]}"
    if done.returncode in (0, 1, 2) and "Traceback" not in done.stderr:
        return None
    return f"exit {done.returncode}: {done.stderr[-1500:]}"


@pytest.mark.slow
def test_train_survives_mutated_configs(tmp_path: Path) -> None:
    rng = random.Random(SEED + 1)
    candidates = []
    for case in all_cases():
        sets = small_data(case, tmp_path)
        if sets is not None:
            candidates.append(Case(case.source, case.text, [*case.sets, *sets], case.steps))
    sample = rng.sample(candidates, min(TRAIN_CASES, len(candidates)))
    found = []
    for case in sample:
        why = train_problem(case, tmp_path)
        if why is not None:
            found.append(f"{why}\n{case.describe()}")
    print(f"trained {len(sample)} of {len(candidates)} valid fuzzed configs: {len(found)} bad")
    assert not found, f"{len(found)} of {len(sample)} runs:\n\n" + "\n\n".join(found)
