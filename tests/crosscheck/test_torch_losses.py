"""dlrun's losses against PyTorch's, in float64: the value (averaged over the rows: the
samples, or samples x time steps for sequence outputs) and dC/d(input) by torch's autograd.
The fused losses take logits, as torch's cross_entropy and binary_cross_entropy_with_logits.
"""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.config.registry import losses
from dlrun.nn import losses as _losses  # noqa: F401  (fills the loss registry)
from tests.crosscheck.common import import_torch, numpy, tensor

torch = import_torch(module_level=True)
F = torch.nn.functional

SHAPES = [
    pytest.param((7, 3), id="rows"),
    pytest.param((4, 5, 3), id="sequence"),  # many-to-many: one row per sample and step
]


def dlrun_loss(name, o, t):
    return losses.get(name)().value_and_grad(o.copy(), t.copy())


def check(name, o, t, torch_loss):
    value, grad = dlrun_loss(name, o, t)
    ot = tensor(torch, o, True)
    reference = torch_loss(ot)
    (g,) = torch.autograd.grad(reference, [ot])
    assert value == pytest.approx(reference.item(), rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, numpy(g), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("shape", SHAPES)
def test_quadratic_is_half_the_summed_squared_error_per_row(shape):
    rng = np.random.default_rng(0)
    o, t = rng.standard_normal(shape), rng.standard_normal(shape)
    rows = int(np.prod(shape[:-1]))
    tt = tensor(torch, t)
    check("quadratic", o, t, lambda ot: 0.5 * F.mse_loss(ot, tt, reduction="sum") / rows)


@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["logits", "huge-logits"])
@pytest.mark.parametrize("shape", SHAPES)
def test_cross_entropy_agrees_with_torch_cross_entropy(shape, scale):
    rng = np.random.default_rng(1)
    z = scale * rng.standard_normal(shape)
    labels = rng.integers(0, shape[-1], shape[:-1])
    lt = torch.tensor(labels.reshape(-1))
    k = shape[-1]
    check("cross_entropy", z, labels, lambda zt: F.cross_entropy(zt.reshape(-1, k), lt))


@pytest.mark.parametrize("units", [1, 3])
@pytest.mark.parametrize("scale", [1.0, 300.0], ids=["logits", "huge-logits"])
@pytest.mark.parametrize("shape", SHAPES)
def test_binary_cross_entropy_agrees_with_torch_on_logits(shape, scale, units):
    """Summed over the output units, averaged over the rows."""
    rng = np.random.default_rng(2)
    shape = (*shape[:-1], units)
    z = scale * rng.standard_normal(shape)
    t = rng.integers(0, 2, shape).astype(np.float64)
    tt, rows = tensor(torch, t), int(np.prod(shape[:-1]))
    check(
        "binary_cross_entropy",
        z,
        t,
        lambda zt: F.binary_cross_entropy_with_logits(zt, tt, reduction="sum") / rows,
    )
