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
import sys
from collections.abc import Callable, Iterator
from typing import Any

from dlrun.errors import ConfigError


def did_you_mean(name: str, choices: list[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest choice, or ``""``."""
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry:
    """Named components of one kind (layers, losses, optimizers, ...), registered by the
    modules of ``home`` when they are imported (this module imports none of them)."""

    def __init__(self, kind: str, home: str, key: str = "name") -> None:
        self.kind = kind
        self.home = home
        self.key = key  # the config key that names the component: name, or type
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
        if name not in self._items:
            self._check_filled()
            at = f" at {where}" if where else ""
            raise ConfigError(
                f"unknown {self.kind} '{name}'{at}{did_you_mean(str(name), self.names())}; "
                f"known: {', '.join(self.names())}"
            )
        return self._items[name]

    def build(self, spec: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        """The component a resolved spec names, made from its settings:
        ``cls(cls.Config(**settings), *args, **kwargs)``. The one way configs become objects."""
        cls = self.get(spec[self.key])
        settings = {k: v for k, v in spec.items() if k != self.key or k in cls.Config.model_fields}
        return cls(cls.Config(**settings), *args, **kwargs)

    def names(self) -> list[str]:
        self._check_filled()
        return sorted(self._items)

    def _check_filled(self) -> None:
        if self.home not in sys.modules:  # a programming error, not a config error
            raise RuntimeError(f"import {self.home} before looking up {self.kind}s")

    def items(self) -> Iterator[tuple[str, Any]]:
        for name in self.names():
            yield name, self._items[name]

    def __contains__(self, name: object) -> bool:
        return name in self._items

    @staticmethod
    def describe(obj: Any) -> str:
        """First line of the component's docstring."""
        doc = (obj.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""


layers = Registry("layer", "dlrun.nn.layers", key="type")
activations = Registry("activation", "dlrun.nn.activations")
losses = Registry("loss", "dlrun.nn.losses")
optimizers = Registry("optimizer", "dlrun.optim.optimizers")
schedules = Registry("schedule", "dlrun.optim.schedules")
initializers = Registry("initializer", "dlrun.nn.initializers")
regularizers = Registry("regularizer", "dlrun.optim.regularizers")
datasets = Registry("dataset", "dlrun.data")
models = Registry("model", "dlrun.nn.models", key="type")

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
