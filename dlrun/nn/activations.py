"""Activation functions of the course, registered by name.

Each entry gives the kernel code (see ``dlrun/kernels/activations.py`` for the
formulas and derivatives), the output range and whether it has a kink. They
are used by the standalone activation layers (``{type: relu}``) and fused into
``dense`` (``{type: dense, units: 64, activation: relu}``).

Leaky ReLU: the course writes f(x) = x / a for x < 0 with a large a (say 100);
the usual form is f(x) = s x with slope s. So s = 1 / a: ``slope: 0.01`` and
``a: 100`` mean the same thing; give either (slope wins when both are set).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dlrun.config.registry import activations
from dlrun.kernels import activations as K


@dataclass(frozen=True)
class Activation:
    name: str
    code: int
    formula: str
    derivative: str
    output_range: tuple[float, float] | None = None
    has_kinks: bool = False
    elementwise: bool = True

    def __call__(self, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
        """f(z) for plotting and tests (any shape)."""
        out = np.empty_like(z)
        K.act_forward(z.reshape(-1), self.code, slope, out.reshape(-1))
        return out

    def derivative_at(self, z: np.ndarray, slope: float = 0.01) -> np.ndarray:
        """f'(z) (any shape), computed from y = f(z) as the backward pass does."""
        y = self(z, slope)
        out = np.empty_like(z)
        K.act_backward(np.ones(z.size, z.dtype), y.reshape(-1), self.code, slope, out.reshape(-1))
        return out


SPECS: dict[str, Activation] = {}


def _register(act: Activation) -> None:
    SPECS[act.name] = act
    class_doc = f"{act.formula};  derivative {act.derivative}"
    entry = type(act.name, (), {"__doc__": class_doc, "spec": act})
    activations.register(act.name)(entry)


for _a in (
    Activation("sigmoid", K.SIGMOID, "1 / (1 + e^-x)", "f(1 - f)", (0.0, 1.0)),
    Activation("tanh", K.TANH, "tanh x", "1 - f^2", (-1.0, 1.0)),
    Activation("softsign", K.SOFTSIGN, "x / (1 + |x|)", "1 / (1 + |x|)^2", (-1.0, 1.0)),
    Activation("relu", K.RELU, "max(0, x)", "1 if x > 0 else 0", None, True),
    Activation("leaky_relu", K.LEAKY_RELU, "x if x > 0 else slope x", "1 or slope", None, True),
    Activation("softplus", K.SOFTPLUS, "ln(1 + e^x)", "sigmoid(x)"),
    Activation("sign", K.SIGN, "+1 if x >= 0 else -1", "0 (except at 0)", (-1.0, 1.0), True),
    Activation("identity", K.IDENTITY, "x", "1"),
):
    _register(_a)

SPECS["softmax"] = Activation(
    "softmax", -1, "e^x_j / sum e^x_k", "o_j(d_jk - o_k)", (0, 1), False, False
)
_softmax_doc = "e^x_j / sum_k e^x_k over the last axis;  Jacobian o_j (delta_jk - o_k)"
activations.register("softmax")(
    type(
        "softmax",
        (),
        {
            "__doc__": _softmax_doc,
            "spec": SPECS["softmax"],
        },
    )
)


def get(name: str, where: str = "") -> Activation:
    """The activation called ``name`` (ConfigError listing the known ones otherwise)."""
    return activations.get(name, where=where).spec
