"""The layer contract.

A layer is a thin class registered by name in ``dlrun.config.registry.layers``. It
holds its settings (``Config``, a pydantic model validated from the YAML),
its parameters and their gradients (dicts with the same keys), and calls
kernels for the arithmetic::

    build(input_shape, rng, dtype) -> output_shape     # shapes exclude the batch axis
    forward(x, training) -> y                           # caches what backward needs
    backward(dy) -> dx                                  # fills self.grads[...] in place

After ``build`` the network moves every parameter into one flat buffer and
re-points ``params[k]`` and ``grads[k]`` at views of it; so a layer must write
gradients *into* ``self.grads[k]`` (``out=`` or ``[...] =``) and never rebind
them, and must read parameters through ``self.params[k]`` at call time.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from dlrun.config.registry import initializers
from dlrun.config.settings import Settings
from dlrun.nn import initializers as _initializers  # noqa: F401  (fills the registry)

Shape = tuple[int, ...]


class Layer:
    """Base class of every layer."""

    class Config(Settings):
        pass

    #: Points where the function is not differentiable (gradcheck skips
    #: finite differences that straddle them).
    has_kinks: ClassVar[bool] = False
    #: Range of the output when it is bounded, e.g. (-1, 1) for tanh; used to
    #: encode class targets for the quadratic cost.
    output_range: ClassVar[tuple[float, float] | None] = None
    #: A small instance for ``dlrun gradcheck`` and the registry-wide test:
    #: ``{"config": {...layer settings...}, "input_shape": (...)}`` (no batch axis).
    #: Several examples may be given as a list of such dicts.
    example: ClassVar[dict[str, Any] | list[dict[str, Any]]] = {"config": {}, "input_shape": (4,)}
    #: Whether backward must return dC/dx. The network turns it off for its first layer
    #: (nothing needs the gradient of the data), which saves a product per batch.
    input_grad: bool = True
    #: Initializer used when the layer's own ``init`` is not set (from ``model.init``).
    default_init: str = "glorot_uniform"

    def __init__(self, config: Settings | None = None, name: str = "") -> None:
        self.config = config if config is not None else self.Config()
        self.name = name or getattr(self, "registered_name", type(self).__name__.lower())
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: Shape = ()
        self.output_shape: Shape = ()

    # -- to be written by each layer ---------------------------------------
    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        """Create parameters for inputs of ``input_shape``; return the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.input_shape
        return self.output_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @property
    def layers(self) -> tuple[Layer, ...]:
        """A layer is a step of the training pass on its own (``dlrun.nn.fused.plan.Step``)."""
        return (self,)

    # -- shared helpers ----------------------------------------------------
    def add_param(self, key: str, value: np.ndarray) -> None:
        """Register a parameter and a zeroed gradient of the same shape."""
        self.params[key] = value
        self.grads[key] = np.zeros_like(value)

    def init_array(
        self,
        shape: Shape,
        fan_in: int,
        fan_out: int,
        rng: np.random.Generator,
        dtype: Any,
        init: str | None = None,
    ) -> np.ndarray:
        """Initial values from the initializer named ``init``, else the model's default.

        The network sets ``self.default_init`` (config ``model.init``) before ``build``.
        """
        name = init or self.default_init
        return initializers.get(name, where=f"layer '{self.name}'")(
            shape, fan_in, fan_out, rng, dtype
        )

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give a stochastic layer (dropout) its random stream; others ignore it."""

    def get_config(self) -> dict[str, Any]:
        """The layer's config as it would be written in YAML (round-trips through build)."""
        return {"type": self.registered_name, **self.config.model_dump(mode="json")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name}: {self.input_shape} -> {self.output_shape})"
