"""Models: how a config's ``model`` section becomes a list of layers.

- ``sequential``: any stack of registered layers, of any depth.
- ``perceptron``: the single-layer perceptron of the course.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

import dlrun.nn.layers  # noqa: F401  (fills the layer registry)
from dlrun.config.registry import layers, models
from dlrun.config.settings import Settings
from dlrun.nn.layers.base import Layer


def make_layers(specs: list[dict[str, Any]]) -> list[Layer]:
    """Layer objects from resolved layer specs ``{type: ..., settings}``."""
    return [
        layers.build(
            {k: v for k, v in spec.items() if k != "name"},
            name=spec.get("name") or f"{spec['type']}_{i}",
        )
        for i, spec in enumerate(specs)
    ]


@models.register("sequential")
class Sequential:
    """A stack of layers applied in order: y = f_n(... f_2(f_1(x)))."""

    class Config(Settings):
        type: str = "sequential"
        init: str = Field("glorot_uniform", description="default initializer of weights")
        layers: list[dict[str, Any]] = Field(..., min_length=1, description="the layers, in order")

    @staticmethod
    def layers(config: dict[str, Any]) -> list[Layer]:
        return make_layers(config["layers"])


@models.register("perceptron")
class Perceptron:
    """Rosenblatt's perceptron: o = sign(w0 + sum_i w_i x_i), learned with w += eta (t - o) x.

    Built as a dense layer (its bias b is the course's w0, the weight of the
    constant input x0 = 1) followed by sign with a straight-through backward
    pass: with the quadratic cost and plain ``gd`` at batch size 1, the
    gradient step w -= eta dC/dw is exactly Rosenblatt's rule, because
    dC/do = o - t (the 1/2 of the quadratic cost cancels the 2 of the square)
    and the sign's derivative is taken as 1. Targets are +-1.

    sign(0) = +1 here, a deliberate choice: a point exactly on the line
    w0 + w . x = 0 is put in class +1, so o is always a class and t - o is 0 or
    +-2 (with the mathematical sign(0) = 0 such a point would give o = 0).
    """

    class Config(Settings):
        type: str = "perceptron"
        units: int = Field(1, ge=1, description="output units (1 for two classes)")
        init: str = Field("small_uniform", description="initial weights: small random values")

    @staticmethod
    def layers(config: dict[str, Any]) -> list[Layer]:
        return make_layers(
            [
                {
                    "type": "dense",
                    "units": config["units"],
                    "init": config["init"],
                    "name": "weights",
                },
                {"type": "sign", "straight_through": True, "name": "sign"},
            ]
        )
