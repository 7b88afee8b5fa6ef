"""Imports every module whose decorators fill the registries.

Every module in the ``dlrun.layers`` and ``dlrun.data`` packages is imported,
so a new layer or dataset file registers itself without being listed here.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import dlrun.data
import dlrun.layers

_MODULES = (
    "dlrun.activations",
    "dlrun.losses",
    "dlrun.initializers",
    "dlrun.optimizers",
    "dlrun.schedules",
    "dlrun.regularizers",
    "dlrun.models",
)

for _package in (dlrun.layers, dlrun.data):
    for _info in pkgutil.iter_modules(_package.__path__):
        if not _info.name.startswith("_"):
            importlib.import_module(f"{_package.__name__}.{_info.name}")

for _name in _MODULES:
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)
