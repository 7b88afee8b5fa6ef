"""Standalone activation layers: ``{type: relu}``, ``{type: tanh}``, ...

    y = f(x)  elementwise;      dC/dx = dC/dy * f'(x)   (f' written with y)

Formulas and derivatives: ``dlrun/kernels/activations.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from dlrun.config.registry import layers
from dlrun.config.settings import Settings
from dlrun.kernels import activations as K
from dlrun.nn import activations as acts
from dlrun.nn.layers.base import Layer, Shape


class ActivationLayer(Layer):
    """Elementwise activation (base class; ``fn`` names the function)."""

    fn = "identity"
    slope = 0.01
    example = {"config": {}, "input_shape": (3, 4)}

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        spec = acts.get(self.fn)
        self.code, self.output_range, self.has_kinks = spec.code, spec.output_range, spec.has_kinks
        return super().build(input_shape, rng, dtype)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = np.empty_like(x)
        K.act_forward(x.reshape(-1), self.code, self.slope, y.reshape(-1))
        self._y = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = np.empty_like(dy)
        K.act_backward(dy.reshape(-1), self._y.reshape(-1), self.code, self.slope, dx.reshape(-1))
        return dx


def _simple(name: str) -> type[ActivationLayer]:
    spec = acts.SPECS[name]
    doc = f"Activation layer: {name}(x) = {spec.formula}, derivative {spec.derivative}."
    return layers.register(name)(
        type(name.capitalize(), (ActivationLayer,), {"fn": name, "__doc__": doc})
    )


Sigmoid = _simple("sigmoid")
Tanh = _simple("tanh")
Softsign = _simple("softsign")
ReLU = _simple("relu")
Softplus = _simple("softplus")


@layers.register("leaky_relu")
class LeakyReLU(ActivationLayer):
    """Activation layer: x if x > 0 else slope x (the course's x / a: slope = 1 / a).

    The default slope 0.01 is a = 100."""

    fn = "leaky_relu"

    class Config(Settings):
        slope: float | None = Field(None, gt=0, description="slope for x < 0 (default 0.01)")
        a: float | None = Field(
            None, gt=0, description="the course's divisor: x / a, i.e. slope 1/a"
        )

        @model_validator(mode="after")
        def _fill(self) -> LeakyReLU.Config:
            if self.slope is None:
                object.__setattr__(self, "slope", 1.0 / self.a if self.a else 0.01)
            return self

    example = {"config": {"slope": 0.1}, "input_shape": (3, 4)}

    @property
    def slope(self) -> float:  # type: ignore[override]
        return float(self.config.slope)


@layers.register("sign")
class Sign(ActivationLayer):
    """Activation layer: sign(x) = +1 if x >= 0 else -1 (the perceptron's output).

    sign(0) = +1, not the mathematical 0: the output is always a class.

    Its derivative is 0 wherever it exists, so no gradient flows through it.
    With ``straight_through: true`` the backward pass instead passes dC/dy
    unchanged (derivative taken as 1): with the quadratic cost and plain
    gradient descent this turns backpropagation into Rosenblatt's rule
    w <- w + eta (t - o) x, which is how the ``perceptron`` model learns.
    """

    fn = "sign"

    class Config(Settings):
        straight_through: bool = Field(False, description="backward passes dy unchanged")

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self.config.straight_through:
            return dy.copy()
        return super().backward(dy)


@layers.register("softmax")
class Softmax(Layer):
    """Softmax over the last axis: o_j = e^z_j / sum_k e^z_k.

    Backward (Jacobian do_j/dz_k = o_j (delta_jk - o_k)):
    dC/dz_j = o_j (dC/do_j - sum_k dC/do_k o_k).  With the cross_entropy loss
    the network skips this layer and uses the fused, stable softmax + CE kernel.
    """

    output_range = (0.0, 1.0)
    example = {"config": {}, "input_shape": (2, 5)}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = np.empty_like(x)
        K.softmax_rows(K.as_rows(x), K.as_rows(y))
        self._y = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = np.empty_like(dy)
        K.softmax_backward(K.as_rows(dy), K.as_rows(self._y), K.as_rows(dx))
        return dx
