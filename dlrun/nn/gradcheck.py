"""Gradient checking by central differences, shared by ``dlrun gradcheck`` and the tests.

For a layer with output y(x, theta) we take the scalar L = sum(y * R) for a
fixed random R, so dL/dy = R, and compare what backprop gives,

    dL/dx = layer.backward(R),   dL/dtheta = layer.grads[...]

with the central difference (L(v + eps) - L(v - eps)) / (2 eps) for every
entry v of x and of each parameter, in float64. An entry passes when

    |analytic - numeric| <= atol + rtol * |numeric|    (eps 1e-6, atol 1e-5, rtol 1e-3)

Kinks (ReLU at 0, sign at 0): when a layer has kinks and an entry fails, the
one-sided slopes (L(v + eps) - L(v)) / eps and (L(v) - L(v - eps)) / eps are
compared. Where they disagree, a kink lies within eps of v and the entry is
counted as skipped, not failed. A real bug leaves the two slopes in agreement
with each other and not with backprop, and still fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dlrun.nn.layers.base import Layer, Shape

EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3


@dataclass
class Row:
    what: str
    max_abs: float
    max_rel: float
    n: int
    failed: int
    skipped: int = 0

    @property
    def passed(self) -> bool:
        return self.failed == 0


@dataclass
class Report:
    name: str
    rows: list[Row] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(r.passed for r in self.rows)

    def text(self) -> str:
        lines = [f"{self.name}: {'PASS' if self.passed else 'FAIL'}"]
        if self.error:
            lines.append(f"  error: {self.error}")
        for r in self.rows:
            lines.append(
                f"  {r.what:<12} max_abs {r.max_abs:.2e} max_rel {r.max_rel:.2e} "
                f"failed {r.failed}/{r.n} skipped(kink) {r.skipped}"
            )
        return "\n".join(lines)


def compare(
    what: str,
    analytic: np.ndarray,
    f: Callable[[], float],
    v: np.ndarray,
    kinks: bool,
    eps: float = EPS,
    atol: float = ATOL,
    rtol: float = RTOL,
    max_entries: int | None = None,
) -> Row:
    """Check ``analytic`` = d f / d v entry by entry, perturbing ``v`` in place.

    With ``max_entries``, a tensor larger than that is checked at that many entries
    drawn at random (fixed seed): a 3136 x 128 dense layer would otherwise need
    800,000 passes through the network.
    """
    flat = v.reshape(-1)
    if max_entries is not None and flat.size > max_entries:
        entries = np.sort(np.random.default_rng(0).choice(flat.size, max_entries, replace=False))
    else:
        entries = np.arange(flat.size)
    a_flat = np.asarray(analytic, dtype=np.float64).reshape(-1)
    max_abs = max_rel = 0.0
    failed = skipped = 0

    def at(i: int, value: float) -> float:
        old = flat[i]
        flat[i] = value
        out = f()
        flat[i] = old
        return out

    for i in entries:
        x0 = flat[i]
        up, down = at(i, x0 + eps), at(i, x0 - eps)
        num = (up - down) / (2 * eps)
        err = abs(a_flat[i] - num)
        if err > atol + rtol * abs(num):
            if kinks:
                # one-sided slopes disagree where the function has a kink within eps
                mid = f()
                right, left = (up - mid) / eps, (mid - down) / eps
                if abs(right - left) > atol + rtol * abs(num):
                    skipped += 1
                    continue
            failed += 1
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(abs(num), 1e-8))
    return Row(what, max_abs, max_rel, len(entries), failed, skipped)


def check_layer(
    layer: Layer,
    input_shape: Shape,
    batch: int = 2,
    seed: int = 0,
    built: bool = False,
    training: bool = True,
    max_entries: int | None = None,
) -> Report:
    """Check dL/dx and dL/dparams of ``layer`` (built here in float64 unless ``built``)."""
    rng = np.random.default_rng(seed)
    report = Report(layer.name)
    if not built:
        layer.build(tuple(input_shape), rng, np.float64)
    x = rng.standard_normal((batch, *input_shape))
    if np.issubdtype(getattr(layer, "input_dtype", np.float64), np.integer):
        x = rng.integers(0, 2, size=x.shape).astype(np.float64)

    def run() -> np.ndarray:
        layer.set_rng(np.random.default_rng(seed + 1))  # the same dropout mask every call
        return layer.forward(x, training)

    y = run()
    r = rng.standard_normal(y.shape)

    def loss() -> float:
        return float(np.sum(run() * r))

    run()
    dx = np.array(layer.backward(r.copy()), dtype=np.float64)
    grads = {k: g.astype(np.float64).copy() for k, g in layer.grads.items()}
    kinks = bool(getattr(layer, "has_kinks", False))
    report.rows.append(compare("input", dx, loss, x, kinks, max_entries=max_entries))
    for key, g in grads.items():
        report.rows.append(compare(key, g, loss, layer.params[key], kinks, max_entries=max_entries))
    return report


def check_loss(loss: Any, shape: Shape = (4, 3), seed: int = 0) -> Report:
    """Check dC/d(input) of a registered loss (logits for the fused ones)."""
    rng = np.random.default_rng(seed)
    o = rng.standard_normal(shape) * 2
    if loss.integer_targets:
        t = rng.integers(0, shape[-1], size=shape[:-1])
    elif loss.fuses == "sigmoid":
        t = rng.uniform(size=shape)
    else:
        t = rng.standard_normal(shape)
    report = Report(loss.registered_name)
    _, grad = loss.value_and_grad(o, t)
    report.rows.append(compare("input", grad, lambda: loss.value_and_grad(o, t)[0], o, False))
    return report


def layer_examples(cls: type[Layer]) -> list[dict[str, Any]]:
    ex = cls.example
    return list(ex) if isinstance(ex, list) else [ex]


def check_registered(names: list[str] | None = None) -> list[Report]:
    """Check every registered layer (each of its examples) and loss, or those named."""
    from dlrun.config.registry import layers, losses

    reports = []
    for name, cls in layers.items():
        if names and name not in names:
            continue
        for i, ex in enumerate(layer_examples(cls)):
            layer = cls(cls.Config(**ex["config"]), name=name if i == 0 else f"{name}[{i}]")
            try:
                reports.append(check_layer(layer, tuple(ex["input_shape"])))
            except Exception as exc:  # a crash is a failed check, reported with the layer name
                reports.append(Report(layer.name, error=f"{type(exc).__name__}: {exc}"))
    for name, cls in losses.items():
        if names and name not in names:
            continue
        reports.append(check_loss(cls()))
    if names:
        known = set(layers.names()) | set(losses.names())
        for name in names:
            if name not in known:
                from dlrun.config.registry import did_you_mean
                from dlrun.errors import ConfigError

                raise ConfigError(
                    f"nothing registered as '{name}'{did_you_mean(name, sorted(known))}; "
                    f"layers: {', '.join(layers.names())}; losses: {', '.join(losses.names())}"
                )
    return reports


def check_network(
    cfg: dict[str, Any],
    input_shape: Shape,
    batch: int = 2,
    seed: int = 0,
    n_classes: int | None = None,
    max_entries: int | None = 200,
) -> list[Report]:
    """Check each layer of the network a config builds (at its real input shape, small
    batch), then the whole network end to end through the loss w.r.t. every parameter."""
    from dlrun.nn.network import Network

    net = Network.from_config(cfg, n_classes)
    rng = np.random.default_rng(seed)
    net.build(input_shape, rng, np.float64)
    for layer in net.layers:
        layer.input_grad = True  # check dC/dx of the first layer too
    reports = [
        check_layer(layer, layer.input_shape, batch, seed, built=True, max_entries=max_entries)
        for layer in net.body
    ]
    x = rng.standard_normal((batch, *input_shape))
    out_shape = net.body[-1].output_shape if net.body else input_shape
    if net.loss.integer_targets:
        t = rng.integers(0, out_shape[-1], size=(batch, *out_shape[:-1]))
    elif net.loss.fuses == "sigmoid":
        t = rng.uniform(size=(batch, *out_shape))
    else:
        t = rng.standard_normal((batch, *out_shape))

    def loss() -> float:
        for layer in net.layers:
            layer.set_rng(np.random.default_rng(seed + 1))
        out = net.forward_steps(x, True)
        return net.loss.value_and_grad(out, t)[0]

    for layer in net.layers:
        layer.set_rng(np.random.default_rng(seed + 1))
    out = net.forward_steps(x, True)
    dout = net.loss.value_and_grad(out, t)[1]
    net.backward(dout)
    kinks = any(getattr(layer, "has_kinks", False) for layer in net.layers)
    end = Report("network (end to end, all parameters)")
    end.rows.append(
        compare("params", net.grads.copy(), loss, net.params, kinks, max_entries=max_entries)
    )
    reports.append(end)
    return reports
