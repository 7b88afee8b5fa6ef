"""Search spaces: ``--param`` texts (or a space file) -> parameters Optuna can sample.

One parameter per config key (a dotted path with list indices)::

    optimizer.lr=log:1e-4:1              float, log-uniform in [1e-4, 1]
    train.momentum=float:0.5:0.99        float, uniform (float:LOW:HIGH:STEP for a grid)
    model.layers[0].units=int:16:256     integer, uniform (int:LOW:HIGH:STEP)
    train.batch_size=logint:8:512        integer, log-uniform
    train.batch_size=16,32,64            one of the listed values (parsed as YAML scalars)

A space file (``--space FILE``, or a sweep's ``tune.params``) is a mapping of the
same: ``{optimizer.lr: "log:1e-4:1", train.batch_size: [16, 32, 64]}``.

Bad ranges are ConfigErrors naming the parameter: an empty or inverted range, a
log range with a bound <= 0, integer bounds that are not integers, a list with
one value or a repeated one. Whether the key exists is checked against the
config (``dlrun.sweeps.tune.config.check_space``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlrun.config import loading as L
from dlrun.config.loading import safe_load
from dlrun.errors import ConfigError
from dlrun.sweeps.spec import parse_scalar

KINDS = ("log", "float", "int", "logint")
FORMS = "log:LOW:HIGH, float:LOW:HIGH[:STEP], int:LOW:HIGH[:STEP], logint:LOW:HIGH, or values a,b,c"


@dataclass(frozen=True)
class Param:
    """One searched config key: a range (``kind`` in KINDS) or a list of ``choices``."""

    key: str
    kind: str  # log | float | int | logint | choice
    low: float | int | None = None
    high: float | int | None = None
    step: float | int | None = None
    choices: tuple[Any, ...] = ()

    def describe(self) -> dict[str, Any]:
        """A plain mapping (for study.yaml and the study's identity)."""
        if self.kind == "choice":
            return {"kind": "choice", "choices": list(self.choices)}
        out: dict[str, Any] = {"kind": self.kind, "low": self.low, "high": self.high}
        if self.step is not None:
            out["step"] = self.step
        return out

    def text(self) -> str:
        """The ``--param`` form of this parameter."""
        if self.kind == "choice":
            return f"{self.key}=" + ",".join(str(c) for c in self.choices)
        tail = f":{self.step}" if self.step is not None else ""
        return f"{self.key}={self.kind}:{self.low}:{self.high}{tail}"

    def probes(self) -> list[Any]:
        """Values that must each make a valid config: both bounds, or every choice."""
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def suggest(self, trial: Any) -> Any:
        """Sample this parameter in an Optuna trial."""
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind in ("int", "logint"):
            step = int(self.step or 1)
            log = self.kind == "logint"
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=step, log=log)
        return trial.suggest_float(
            self.key, float(self.low), float(self.high), step=self.step, log=self.kind == "log"
        )


def _number(text: str, where: str, integer: bool) -> float | int:
    value = parse_scalar(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: '{text}' is not a number", hint=f"write {FORMS}")
    if not math.isfinite(value):
        raise ConfigError(f"{where}: bounds must be finite (given: {text})")
    if integer:
        if float(value) != int(value):
            raise ConfigError(f"{where}: integer range with a bound that is not whole ({text})")
        return int(value)
    return float(value)


def _range(key: str, kind: str, parts: list[str], where: str) -> Param:
    integer = kind in ("int", "logint")
    if len(parts) not in (2, 3) or (len(parts) == 3 and kind in ("log", "logint")):
        form = f"{kind}:LOW:HIGH" + ("[:STEP]" if kind in ("int", "float") else "")
        raise ConfigError(f"{where}: write {form}")
    low, high = (_number(p, where, integer) for p in parts[:2])
    step = _number(parts[2], where, integer) if len(parts) == 3 else None
    if low == high:
        raise ConfigError(
            f"{where}: empty range [{low}, {high}]",
            hint="a fixed value is not a search: use --set key=value",
        )
    if low > high:
        raise ConfigError(f"{where}: inverted range: low {low} is above high {high}")
    if kind in ("log", "logint") and low <= 0:
        raise ConfigError(
            f"{where}: a log range needs bounds > 0 (given low {low})",
            hint=f"e.g. {key}=log:1e-4:{high}",
        )
    if step is not None and not 0 < step <= high - low:
        raise ConfigError(f"{where}: step {step} must be > 0 and at most high - low")
    return Param(key, kind, low, high, step)


def _choices(key: str, values: list[Any], where: str) -> Param:
    if not values or any(v == "" for v in values):
        raise ConfigError(f"{where}: no values", hint=f"write {FORMS}")
    if len(values) == 1:
        raise ConfigError(
            f"{where}: one value is not a search", hint="give two or more, or use --set key=value"
        )
    for v in values:
        if v is not None and not isinstance(v, (bool, int, float, str)):
            raise ConfigError(f"{where}: values must be numbers, strings or booleans (got {v!r})")
    shown = [repr(v) for v in values]
    if len(set(shown)) != len(shown):
        raise ConfigError(f"{where}: a value is listed twice ({', '.join(shown)})")
    return Param(key, "choice", choices=tuple(values))


def parse_spec(key: str, spec: Any, where: str) -> Param:
    """One parameter from its key and its spec (a text as after '=' or a list of values)."""
    key = key.strip()
    L.parse_path(key)  # a malformed path is an error before anything else
    if isinstance(spec, list):
        return _choices(key, spec, where)
    if not isinstance(spec, str):
        raise ConfigError(f"{where}: expected {FORMS}, got {spec!r}")
    text = spec.strip()
    head, _, rest = text.partition(":")
    if head.strip() in KINDS and rest:
        return _range(key, head.strip(), rest.split(":"), where)
    if ":" in text and "," not in text:
        raise ConfigError(f"{where}: unknown range '{text}'", hint=f"write {FORMS}")
    return _choices(key, [parse_scalar(v) for v in text.split(",")], where)


def parse_param(text: str) -> Param:
    """One ``--param KEY=SPEC`` text."""
    where = f"--param {text}"
    if "=" not in text:
        raise ConfigError(f"{where}: no '='", hint="write --param optimizer.lr=log:1e-4:1")
    key, spec = text.split("=", 1)
    return parse_spec(key, spec, where)


def load_space_file(path: Path) -> list[Param]:
    """The parameters of a space file: a mapping of key -> spec."""
    if not path.is_file():
        raise ConfigError(f"space file not found: {path}")
    try:
        data = safe_load(path.read_text(encoding="utf-8"), str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if isinstance(data, dict) and "params" in data and len(data) == 1:
        data = data["params"]
    return space_from_mapping(data, str(path))


def space_from_mapping(data: Any, where: str) -> list[Param]:
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"{where}: a search space is a mapping of key -> range, e.g. "
            "{optimizer.lr: 'log:1e-4:1'}"
        )
    return [parse_spec(str(k), v, f"{where}: {k}") for k, v in data.items()]


def build_space(params: list[str], space_file: Path | None = None) -> list[Param]:
    """The search space of ``--param`` texts and an optional space file (each key once)."""
    space = load_space_file(space_file) if space_file is not None else []
    space += [parse_param(p) for p in params]
    if not space:
        raise ConfigError(
            "nothing to search: give --param KEY=RANGE (or --space FILE)",
            hint="e.g. --param optimizer.lr=log:1e-4:1",
        )
    keys = [p.key for p in space]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ConfigError(f"parameter '{twice[0]}' is given twice; keep one range")
    return space


def describe_space(space: list[Param]) -> dict[str, Any]:
    return {p.key: p.describe() for p in space}
