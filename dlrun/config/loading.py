"""Config files as plain data: YAML load, ``extends:``, deep merge, dotted overrides.

    raw = load_yaml(path)            # safe loader; follows `extends:` (relative paths, deep merge)
    raw = apply_overrides(raw, ["optimizer.lr=0.01", "model.layers[1].units=64"])
    value = safe_load(text, where)   # any YAML text (files, --set values), within the limits

Every YAML text is read by :func:`safe_load`: the safe loader (libyaml's when
installed), and a config may not nest deeper than ``MAX_DEPTH`` levels, hold
an alias inside its own anchor (``&a [1, *a]``), or use aliases that add more
than ``MAX_ALIAS_NODES`` values to what is written (a few hundred bytes of
nested aliases would otherwise expand to billions of values).

Validation is ``dlrun.config.resolve``'s job; nothing here knows the components.
"""

from __future__ import annotations

import copy
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dlrun.errors import ConfigError

#: Deepest nesting of lists and mappings a YAML text may have (configs use 4-5 levels).
MAX_DEPTH = 50
#: Most values that aliases (``*name``, ``<<: *name``) may add to those written out.
MAX_ALIAS_NODES = 10_000

_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(
    text: str, where: str, *, max_depth: int = MAX_DEPTH, loader: type | None = None
) -> Any:
    """``yaml.safe_load(text)`` within the limits above (``max_depth`` levels).

    ``where`` names the text in messages and YAML error marks (a file path, or
    ``--set key=value``). Raises :class:`ConfigError` for a text beyond the
    limits, and ``yaml.YAMLError`` for one that is not valid YAML. ``loader``
    replaces the default loader class (for tests of the pure-Python one).
    """
    stream = io.StringIO(text)
    stream.name = where
    parser = (loader or _Loader)(stream)
    try:
        node = parser.get_single_node()
        if node is None:
            return None
        check_node(node, where, max_depth)
        return parser.construct_document(node)
    except RecursionError:  # the pure-Python composer recurses once per level
        raise ConfigError(f"{where}: nested more than {max_depth} levels deep") from None
    finally:
        parser.dispose()


def check_node(node: yaml.Node, where: str, max_depth: int = MAX_DEPTH) -> None:
    """ConfigError if the composed YAML ``node`` is recursive, deeper than ``max_depth``
    levels, or if its aliases expand it by more than ``MAX_ALIAS_NODES`` values."""
    sizes: dict[int, tuple[int, int]] = {}
    expanded, _ = _measure(node, _Walk(where, max_depth), 1, set(), sizes)
    added = expanded - len(sizes)
    if added > MAX_ALIAS_NODES:
        raise ConfigError(
            f"{where}: its aliases (*name) expand it to {expanded:,} values, {added:,} more "
            f"than are written out (at most {MAX_ALIAS_NODES:,} allowed)",
            hint="write the repeated parts out, or use fewer aliases",
        )


@dataclass(frozen=True)
class _Walk:
    """What :func:`_measure` reports against: the text's name and its depth limit."""

    where: str
    max_depth: int

    def too_deep(self, node: yaml.Node) -> ConfigError:
        return ConfigError(
            f"{self.where}: nested more than {self.max_depth} levels deep, {_mark(node)}"
        )


def _measure(
    node: yaml.Node, walk: _Walk, depth: int, path: set[int], sizes: dict[int, tuple[int, int]]
) -> tuple[int, int]:
    """(values, levels) of ``node`` with its aliases expanded, memoized in ``sizes``
    by node identity (an alias is the very node of its anchor); ``path`` holds the
    nodes being measured (the ones an alias inside them must not name)."""
    key = id(node)
    if key in path:
        raise ConfigError(
            f"{walk.where}: an alias refers to the list or mapping it is part of "
            f"(as in &a [1, *a]), {_mark(node)}",
            hint="an alias may only repeat a node that is complete where the alias appears",
        )
    if key not in sizes:
        if depth > walk.max_depth:
            raise walk.too_deep(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        path.add(key)
        measured = [_measure(c, walk, depth + 1, path, sizes) for c in children]
        path.discard(key)
        sizes[key] = (1 + sum(m[0] for m in measured), 1 + max((m[1] for m in measured), default=0))
    values, levels = sizes[key]
    if depth + levels - 1 > walk.max_depth:
        raise walk.too_deep(node)
    return values, levels


def _mark(node: yaml.Node) -> str:
    """``line L, column C`` of the node's start."""
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}"


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
        data = safe_load(path.read_text(encoding="utf-8"), str(path))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys, got {type(data).__name__}")
    parents = data.pop("extends", None)
    if parents is None:
        return data
    merged: dict[str, Any] = {}
    for parent in _parent_names(parents, path):
        base = load_yaml(path.parent / parent, (*_seen, resolved))
        merged = deep_merge(merged, base)
    return deep_merge(merged, data)


def _parent_names(parents: Any, path: Path) -> list[str]:
    """The file names ``extends:`` gives: one name, or a list of names."""
    names = [parents] if isinstance(parents, str) else parents
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError(
            f"{path}: extends must be a file name or a list of file names, got {parents!r}",
            hint="write extends: base/mlp.yaml (relative to this file)",
        )
    return names


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
    if len(tokens) >= MAX_DEPTH:
        raise ConfigError(
            f"key path '{path[:60]}...' has {len(tokens)} levels (at most {MAX_DEPTH - 1})"
        )
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
            where, depth = f"--set {item}", MAX_DEPTH - len(tokens)
            value = safe_load(text, where, max_depth=depth) if text.strip() else ""
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
