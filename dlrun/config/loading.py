"""Config files as plain data: YAML load, ``extends:``, deep merge, dotted overrides.

    raw = load_yaml(path)            # safe loader; follows `extends:` (relative paths, deep merge)
    raw = apply_overrides(raw, ["optimizer.lr=0.01", "model.layers[1].units=64"])

Validation is ``dlrun.config.resolve``'s job; nothing here knows the components.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from dlrun.errors import ConfigError


def load_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a config file (safe loader) and merge the files it ``extends``."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ConfigError(f"'extends' cycle: {chain}")
    if not path.is_file():
        where = f" (extended from {_seen[-1]})" if _seen else ""
        raise ConfigError(f"config file not found: {path}{where}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(data).__name__}")
    parents = data.pop("extends", None)
    if parents is None:
        return data
    merged: dict[str, Any] = {}
    for parent in [parents] if isinstance(parents, str) else parents:
        base = load_yaml(path.parent / parent, (*_seen, resolved))
        merged = deep_merge(merged, base)
    return deep_merge(merged, data)


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]")


def parse_path(path: str) -> list[str | int]:
    """``"model.layers[1].units"`` -> ``["model", "layers", 1, "units"]``."""
    tokens: list[str | int] = []
    pos = 0
    for m in _TOKEN.finditer(path):
        between = path[pos : m.start()]
        if between not in ("", "."):
            raise ConfigError(f"bad key path '{path}' near '{between}'")
        tokens.append(m.group(1) if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not tokens or path[pos:]:
        raise ConfigError(f"bad key path '{path}'", hint="write keys like model.layers[1].units")
    return tokens


def format_path(tokens: tuple[Any, ...] | list[Any]) -> str:
    out = ""
    for t in tokens:
        out += f"[{t}]" if isinstance(t, int) else (f".{t}" if out else str(t))
    return out


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.path=value`` strings; values are parsed as YAML scalars."""
    raw = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' has no '='", hint="write --set key.path=value")
        key, text = item.split("=", 1)
        tokens = parse_path(key.strip())
        try:
            value = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            value = text
        node: Any = raw
        for i, tok in enumerate(tokens[:-1]):
            here = format_path(tokens[: i + 1])
            if isinstance(tok, int):
                if not isinstance(node, list) or not -len(node) <= tok < len(node):
                    size = len(node) if isinstance(node, list) else "no"
                    raise ConfigError(
                        f"override '{item}': {here} does not exist ({size} items there)"
                    )
                node = node[tok]
            else:
                if not isinstance(node, dict):
                    raise ConfigError(
                        f"override '{item}': {format_path(tokens[:i])} is not a mapping"
                    )
                node = node.setdefault(tok, {})
        last = tokens[-1]
        if isinstance(last, int):
            if not isinstance(node, list) or not -len(node) <= last < len(node):
                raise ConfigError(f"override '{item}': {format_path(tokens)} does not exist")
        elif not isinstance(node, dict):
            raise ConfigError(f"override '{item}': {format_path(tokens[:-1])} is not a mapping")
        node[last] = value
    return raw
