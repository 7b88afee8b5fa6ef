"""Every component package, imported so that their decorators fill the registries.

The registries themselves (``dlrun.config.registry``) import nothing: whoever needs all of
them filled (config resolution, the JSON Schema, ``dlrun list``) calls :func:`load`.
A new layer or dataset module is listed in its package's ``__init__``; the registry test
checks that none is missing.
"""

from __future__ import annotations

import dlrun.data  # noqa: F401  (datasets)
import dlrun.nn.layers  # noqa: F401  (layers)
from dlrun.config.registry import ALL, Registry
from dlrun.nn import activations, initializers, losses, models  # noqa: F401
from dlrun.optim import optimizers, regularizers, schedules  # noqa: F401


def load() -> dict[str, Registry]:
    """Every registry by kind, filled."""
    return ALL
