"""Registries: one class, one instance per kind of component.

A component registers itself by decorator::

    @layers.register("dense")
    class Dense(Layer): ...

and is found by name (``layers.get("dense")``). An unknown name raises a
:class:`ConfigError` that lists the known names and the closest match.
The first line of a component's docstring is its one-line description in
``dlrun list``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Any

from dlrun.errors import ConfigError


def did_you_mean(name: str, choices: list[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    """Named components of one kind (layers, losses, optimizers, ...)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}

    def register(self, name: str) -> Callable[[Any], Any]:
        """Decorator that registers a class or function under ``name``."""

        def add(obj: Any) -> Any:
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            obj.registered_name = name
            return obj

        return add

    def get(self, name: str, *, where: str = "") -> Any:
        """The component called ``name``; a ConfigError naming the known ones if none."""
        _load_components()
        if name not in self._items:
            at = f" at {where}" if where else ""
            raise ConfigError(
                f"unknown {self.kind} '{name}'{at}{did_you_mean(str(name), self.names())}; "
                f"known: {', '.join(self.names())}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        _load_components()
        return sorted(self._items)

    def items(self) -> Iterator[tuple[str, Any]]:
        _load_components()
        for name in self.names():
            yield name, self._items[name]

    def __contains__(self, name: object) -> bool:
        _load_components()
        return name in self._items

    @staticmethod
    def describe(obj: Any) -> str:
        """First line of the component's docstring."""
        doc = (obj.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


layers = Registry("layer")
activations = Registry("activation")
losses = Registry("loss")
optimizers = Registry("optimizer")
schedules = Registry("schedule")
initializers = Registry("initializer")
regularizers = Registry("regularizer")
datasets = Registry("dataset")
models = Registry("model")

ALL = {
    "layers": layers,
    "activations": activations,
    "losses": losses,
    "optimizers": optimizers,
    "schedules": schedules,
    "initializers": initializers,
    "regularizers": regularizers,
    "datasets": datasets,
    "models": models,
}

_loaded = False


def _load_components() -> None:
    """Import the modules whose decorators fill the registries (once)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import dlrun.components  # noqa: F401
