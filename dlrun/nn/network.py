"""The network: a sequence of layers, their parameters in one flat buffer, and a loss.

    net = Network.from_config(cfg)            # layers from the model section
    net.build(input_shape, rng, dtype)        # shapes checked, params initialised
    loss, out = net.train_step_grads(x, t)    # forward (training), loss, backward: fills net.grads
    y = net.predict(x)                        # forward, evaluation mode, in batches

All parameters live in ``net.params`` (1-D) and all gradients in ``net.grads``;
each layer's ``params[k]`` / ``grads[k]`` are views into them, so an optimizer
updates the whole network in one pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlrun.config.registry import losses, models
from dlrun.errors import BuildError, CheckpointError
from dlrun.kernels.penalties import segment_sum_squares
from dlrun.nn import models as _models  # noqa: F401  (fills the model registry)
from dlrun.nn.fused.plan import describe, plan_steps
from dlrun.nn.layers.base import Layer, Shape
from dlrun.nn.losses import Loss

#: Inputs per evaluation-mode forward pass (predict, evaluate). As small as the usual
#: training batch: the activations of a CNN's first convolution for 256 images take 26 MB,
#: and larger passes measured no faster (64 vs 256 images: 1.71 vs 1.74 s for the
#: Fashion-MNIST CNN's 10,000 test images, medians of four).
EVAL_BATCH = 64


class Network:
    def __init__(self, layers: list[Layer], loss: Loss, init: str = "glorot_uniform") -> None:
        self.layers = layers
        self.loss = loss
        for layer in layers:
            layer.default_init = init
        self.params = np.empty(0)
        self.grads = np.empty(0)
        self.dtype: Any = np.float32

    @classmethod
    def from_config(cls, cfg: dict[str, Any], n_classes: int | None = None) -> Network:
        """The network a resolved config describes. ``units: classes`` in a layer becomes
        ``n_classes`` (the dataset's number of classes)."""
        model = models.get(cfg["model"]["type"])
        if n_classes is not None and "layers" in cfg["model"]:
            layers = [
                {**spec, "units": n_classes} if spec.get("units") == "classes" else spec
                for spec in cfg["model"]["layers"]
            ]
            cfg = {**cfg, "model": {**cfg["model"], "layers": layers}}
        loss = losses.get(cfg["loss"])()
        return cls(model.layers(cfg["model"]), loss, cfg["model"].get("init", "glorot_uniform"))

    # ------------------------------------------------------------------ build
    def build(
        self,
        input_shape: Shape,
        rng: np.random.Generator,
        dtype: Any = np.float32,
        fuse: bool = True,
    ) -> Shape:
        """Build every layer for ``input_shape``, flatten the parameters, plan the training
        steps (fused where ``fuse``); returns the output shape."""
        self.dtype = np.dtype(dtype)
        shape = tuple(input_shape)
        self.input_shape = shape
        for i, layer in enumerate(self.layers):
            try:
                shape = tuple(layer.build(shape, rng, self.dtype))
            except (ValueError, IndexError, TypeError) as exc:  # BuildError passes through
                raise BuildError(
                    f"layer {i} '{layer.name}' ({layer.registered_name}) cannot take input of "
                    f"shape {shape}: {exc}"
                ) from None
            if any(d <= 0 for d in shape):
                raise BuildError(
                    f"layer {i} '{layer.name}' ({layer.registered_name}) turns input shape "
                    f"{layer.input_shape} into {shape}, which is empty"
                )
        self.output_shape = shape
        # dC/d(data) is never needed: no layer up to the first one with parameters computes
        # its input gradient, and the parameter-free layers before it are skipped in backward
        self.first_trained = next(
            (i for i, layer in enumerate(self.layers) if layer.params), len(self.layers)
        )
        for layer in self.layers[: self.first_trained + 1]:
            layer.input_grad = False
        fused = self.loss.fuses
        self.fused = bool(fused) and self.layers[-1].registered_name == fused
        if fused and not self.fused:
            raise BuildError(
                f"loss '{self.loss.registered_name}' expects the network to end in a "
                f"'{fused}' layer, but it ends in '{self.layers[-1].registered_name}'",
                hint=f"add {{type: {fused}}} as the last layer",
            )
        self._flatten()
        self.plan_training(fuse)
        return shape

    def plan_training(self, fuse: bool = True) -> None:
        """The steps of the training and evaluation passes (``dlrun.nn.fused.plan``): the
        body's layers, some of them fused into one step when ``fuse``."""
        starts = {
            (layer, key): int(start)
            for (layer, key, _), start in zip(self.param_items(), self.bounds)
        }
        self.steps = plan_steps(self.body, self.params, self.grads, starts, fuse)
        first = self.layers[self.first_trained] if self.first_trained < len(self.layers) else None
        self.first_step = next(
            (i for i, s in enumerate(self.steps) if first in s.layers), len(self.steps)
        )

    def plan_lines(self) -> list[str]:
        """The fused steps of the plan, one line each (written to the run's log.txt)."""
        return describe(self.steps)

    def _flatten(self) -> None:
        """Move every parameter into one buffer and point the layers at views of it."""
        items = self.param_items()
        total = sum(a.size for _, _, a in items)
        self.params = np.empty(total, dtype=self.dtype)
        self.grads = np.zeros(total, dtype=self.dtype)
        offset = 0
        self.bounds = np.zeros(len(items) + 1, dtype=np.int64)
        self.tensor_names = [f"{layer.name}.{key}" for layer, key, _ in items]
        for i, (layer, key, value) in enumerate(items):
            n = value.size
            self.bounds[i + 1] = offset + n
            self.params[offset : offset + n] = value.reshape(-1)
            layer.params[key] = self.params[offset : offset + n].reshape(value.shape)
            layer.grads[key] = self.grads[offset : offset + n].reshape(value.shape)
            offset += n

    def grad_sum_squares(self) -> np.ndarray:
        """sum g^2 of every gradient tensor (float64, in ``tensor_names`` order), one pass."""
        out = np.empty(len(self.tensor_names))
        segment_sum_squares(self.grads, self.bounds, out)
        return out

    def param_items(self) -> list[tuple[Layer, str, np.ndarray]]:
        return [(layer, k, v) for layer in self.layers for k, v in layer.params.items()]

    def describe(self) -> list[tuple[str, str, Shape, int]]:
        """(name, type, output shape, parameter count) per layer."""
        return [
            (l.name, l.registered_name, l.output_shape, sum(v.size for v in l.params.values()))
            for l in self.layers
        ]

    # ------------------------------------------------------------------ passes
    @property
    def body(self) -> list[Layer]:
        """The layers run before the loss (all but a final layer fused into the loss)."""
        return self.layers[:-1] if self.fused else self.layers

    def forward(
        self, x: np.ndarray, training: bool, layers: list[Layer] | None = None
    ) -> np.ndarray:
        for layer in self.layers if layers is None else layers:
            x = layer.forward(x, training)
        return x

    def forward_steps(self, x: np.ndarray, training: bool) -> np.ndarray:
        """Forward through the body (to the loss input), step by step."""
        for step in self.steps:
            x = step.forward(x, training)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """After a training :meth:`forward_steps`: fill every layer's grads; returns dC/dx
        only if the first layer computes it."""
        steps = self.steps
        start = 0 if steps and steps[0].input_grad else self.first_step
        for step in reversed(steps[start:]):
            dy = step.backward(dy)
        return dy

    def train_step_grads(self, x: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
        """Forward in training mode, loss, backward. Returns the loss and the loss input."""
        out = self.forward_steps(x, True)
        value, dout = self.loss.value_and_grad(out, t)
        self.backward(dout)
        return value, out

    def loss_of(self, x: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
        """Loss in evaluation mode (no gradients) and the loss input (logits if fused)."""
        out = self.forward_steps(x, False)
        o2 = out.reshape(-1, out.shape[-1])
        value = self.loss.kernel(o2, self.loss.rows(t, o2), np.empty_like(o2))
        return float(value), out

    def predict(self, x: np.ndarray, batch_size: int = EVAL_BATCH) -> np.ndarray:
        """Outputs of the whole network (evaluation mode), computed in batches."""
        tail = self.layers[len(self.body) :]  # the layer fused into the loss, if any
        parts = [
            self.forward(
                self.forward_steps(x[i : i + batch_size].astype(self.dtype, copy=False), False),
                False,
                tail,
            ).copy()
            for i in range(0, len(x), batch_size)
        ]
        return np.concatenate(parts) if parts else np.empty((0, *self.output_shape), self.dtype)

    # ------------------------------------------------------------------ state
    def state_dict(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Every parameter by ``layer.key``: copies, or with ``copy=False`` views of the live
        buffer (for writing a checkpoint at once, without a second copy in memory)."""
        return {
            f"{layer.name}.{key}": value.copy() if copy else value
            for layer, key, value in self.param_items()
        }

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        expected = {f"{layer.name}.{key}": value for layer, key, value in self.param_items()}
        missing = sorted(set(expected) - set(state))
        extra = sorted(set(state) - set(expected))
        if missing or extra:
            raise CheckpointError(
                f"checkpoint does not match the network: missing {missing or 'none'}, "
                f"unexpected {extra or 'none'}"
            )
        for key, target in expected.items():
            value = state[key]
            if value.shape != target.shape:
                raise CheckpointError(
                    f"checkpoint parameter '{key}' has shape {value.shape}, "
                    f"the network expects {target.shape}"
                )
            target[...] = value
