"""The architecture holds: imports point down only and form no cycle, counting the
imports inside functions too.

    cli -> sweeps -> training -> runs -> config (resolve, schema, catalog)
        -> nn | optim | data -> config (registry, loading, settings), errors -> kernels
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dlrun"

#: Top to bottom. A module may import its own layer's modules (within the same group)
#: and any layer below its own.
LAYERS = [
    ("cli", ["dlrun.cli"]),
    ("tour", ["dlrun.tour"]),
    ("sweeps", ["dlrun.sweeps"]),
    ("training", ["dlrun.training"]),
    ("runs", ["dlrun.runs"]),
    ("resolution", ["dlrun.config.resolve", "dlrun.config.schema", "dlrun.config.catalog"]),
    ("nn", ["dlrun.nn"]),
    ("optim", ["dlrun.optim"]),
    ("data", ["dlrun.data"]),
    ("foundation", ["dlrun.config", "dlrun.errors", "dlrun"]),
    ("kernels", ["dlrun.kernels"]),
]
#: Layers that sit side by side: neither imports the other.
SIBLINGS = {"nn", "optim", "data"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Every dlrun module ``name`` imports, at any depth of its code."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            # `from pkg import mod` imports the module pkg.mod when there is one
            targets = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: imports_of(name) for name in MODULES}


def layer_of(name: str) -> int:
    for i, (_, prefixes) in enumerate(LAYERS):
        if any(name == p or name.startswith(p + ".") for p in prefixes):
            return i
    raise AssertionError(f"module {name} is in no layer")


def test_every_module_is_in_a_layer():
    for name in MODULES:
        layer_of(name)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name):
    here = layer_of(name)
    for target in GRAPH[name]:
        there = layer_of(target)
        if there == here:
            continue
        assert there > here, (
            f"{name} ({LAYERS[here][0]}) imports {target} ({LAYERS[there][0]}), which sits above it"
        )
        assert not (LAYERS[here][0] in SIBLINGS and LAYERS[there][0] in SIBLINGS), (
            f"{name} imports {target}: {LAYERS[here][0]} and {LAYERS[there][0]} are siblings"
        )


def test_settings_is_a_leaf():
    assert GRAPH["dlrun.config.settings"] == set()


def test_no_import_cycle():
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(GRAPH[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target) :] + [target]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(GRAPH):
        if name not in state:
            visit(name)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The graph counts an import inside a function (the way a cycle hides)."""
    assert "dlrun.runs.build" in GRAPH["dlrun.runs.sampling"]
