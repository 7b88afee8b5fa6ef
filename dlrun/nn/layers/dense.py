"""Dense (fully connected) layer.

Forward, for inputs x of shape (M, n_in) (a batch of vectors (N, n_in), or of
sequences (N, T, n_in), where it is applied at every time step):

    z = x W + b          W: (n_in, n_out), b: (n_out,)
    y = f(z)             f: an optional fused elementwise activation

Backward, given dC/dy of shape (M, n_out):

    dC/dz = dC/dy * f'(z)          (f' from y, fused with the bias sum)
    dC/db = sum_rows dC/dz
    dC/dW = x^T dC/dz
    dC/dx = dC/dz W^T

The products go through ``kernels.blas.dot`` (``np.dot`` on the BLAS chosen for their
shape); bias and activation are one Numba pass.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from dlrun.config.registry import layers
from dlrun.config.settings import Settings
from dlrun.errors import BuildError
from dlrun.kernels import activations as K
from dlrun.kernels import blas
from dlrun.nn import activations as acts
from dlrun.nn.layers.base import Layer, Shape


@layers.register("dense")
class Dense(Layer):
    """Fully connected layer y = f(x W + b), applied to the last axis."""

    class Config(Settings):
        units: Annotated[int, Field(gt=0)] | Literal["classes"] = Field(
            ..., description="number of output units, or 'classes' (the dataset's class count)"
        )
        activation: str = Field("identity", description="fused elementwise activation")
        slope: float = Field(0.01, gt=0, description="leaky_relu slope for x < 0")
        bias: bool = Field(True, description="learn a bias b")
        init: str | None = Field(None, description="initializer of W (default: model.init)")
        bias_init: str = Field("zeros", description="initializer of b")

    example = [
        {"config": {"units": 3, "activation": "tanh"}, "input_shape": (4,)},
        {"config": {"units": 3, "activation": "relu"}, "input_shape": (5, 4)},
    ]

    def build(self, input_shape: Shape, rng: np.random.Generator, dtype: Any) -> Shape:
        c = self.config
        if c.units == "classes":
            raise BuildError(
                f"layer '{self.name}': units: classes is only known once a classification "
                "dataset is loaded"
            )
        self.act = acts.get(c.activation, where=f"layer '{self.name}' activation")
        if not self.act.elementwise:
            raise BuildError(
                f"layer '{self.name}': activation '{c.activation}' is not elementwise and cannot "
                "be fused into dense",
                hint=f"add a separate layer {{type: {c.activation}}} after the dense layer",
            )
        if len(input_shape) not in (1, 2):
            raise BuildError(
                f"layer '{self.name}' (dense) takes vectors (features,) or sequences "
                f"(steps, features), but its input has shape {tuple(input_shape)}",
                hint="add {type: flatten} before it (e.g. after conv2d or pooling)",
            )
        n_in = int(input_shape[-1])
        self.input_shape = tuple(input_shape)
        self.output_shape = (*input_shape[:-1], c.units)
        self.has_kinks = self.act.has_kinks
        self.output_range = self.act.output_range
        self.add_param("W", self.init_array((n_in, c.units), n_in, c.units, rng, dtype, c.init))
        if c.bias:
            b = self.init_array((c.units,), n_in, c.units, rng, dtype, c.bias_init)
            self.add_param("b", b)
        self._zero_bias = np.zeros(c.units, dtype=dtype)
        return self.output_shape

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        c = self.config
        x2 = x.reshape(-1, x.shape[-1])
        y = blas.dot(x2, self.params["W"])  # np.dot: less call overhead than np.matmul
        b = self.params["b"] if c.bias else self._zero_bias
        K.bias_act_forward(y, b, self.act.code, c.slope, y)
        self._x, self._y = x2, y
        return y.reshape(*x.shape[:-1], c.units)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        c = self.config
        dy2 = dy.reshape(-1, c.units)
        dz = np.empty_like(dy2)
        db = self.grads["b"] if c.bias else np.empty_like(self._zero_bias)
        K.act_backward_bias(dy2, self._y, self.act.code, c.slope, dz, db)
        blas.dot(self._x.T, dz, out=self.grads["W"])
        if not self.input_grad:
            return None  # type: ignore[return-value]
        dx = blas.dot(dz, self.params["W"].T)
        return dx.reshape(*dy.shape[:-1], self._x.shape[1])
