"""Training steps: a conv2d -> 2x2 max-pool pair runs as one ConvPool step, with the same
results as the two layers one after the other."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.config.resolve import resolve
from dlrun.nn.fused.conv_pool import ConvPool
from dlrun.nn.gradcheck import check_network
from dlrun.nn.network import Network
from tests.conftest import small_config


def cnn_config(first, second, pool=None, activation="relu", bias=True):
    pool = pool or {"type": "maxpool2d", "size": 2}
    conv = {"type": "conv2d", "kernel_size": 3, "padding": 1, "bias": bias}
    return small_config(
        model={
            "type": "sequential",
            "layers": [
                {**conv, "filters": first, "activation": activation},
                dict(pool),
                {**conv, "filters": second, "activation": activation},
                dict(pool),
                {"type": "flatten"},
                {"type": "dense", "units": 3},
                {"type": "softmax"},
            ],
        }
    )


def build(cfg, shape, dtype=np.float64):
    net = Network.from_config(resolve(cfg))
    net.build(shape, np.random.default_rng(0), dtype)
    return net


def test_conv_then_2x2_maxpool_becomes_one_step():
    net = build(cnn_config(4, 5), (1, 8, 8))
    kinds = [type(s).__name__ for s in net.steps]
    assert kinds == ["ConvPool", "ConvPool", "Flatten", "Dense"]
    assert net.first_step == 0 and net.steps[0].conv is net.layers[0]
    for pool in ({"type": "maxpool2d", "size": 3}, {"type": "avgpool2d", "size": 2}):
        other = build(cnn_config(4, 5, pool=pool), (1, 9, 9))
        assert not any(isinstance(s, ConvPool) for s in other.steps)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize(
    "channels, hw, activation, bias",
    [
        (1, (8, 8), "relu", True),  # first layer K = 9: dW straight from the pooled gradient,
        # its columns in pooling-phase order (even sizes)
        (2, (7, 9), "relu", True),  # K = 18, odd sizes: the pools drop a row and a column
        (1, (6, 6), "identity", False),
        (1, (7, 9), "relu", True),  # K = 9, odd sizes: the columns in their natural order
    ],
)
def test_fused_training_pass_equals_layer_by_layer(
    channels, hw, activation, bias, dtype, tol, monkeypatch
):
    """(A first layer's product is pooled in chunks: 2 images here, so 5 make 2 + 2 + 1.)"""
    import dlrun.nn.fused.conv_pool as conv_pool

    monkeypatch.setattr(conv_pool, "TRAIN_CHUNK", 2)
    shape = (channels, *hw)
    cfg = cnn_config(4, 6, activation=activation, bias=bias)
    fused, plain = build(cfg, shape, dtype), build(cfg, shape, dtype)
    plain.plan_training(fuse=False)
    assert any(isinstance(s, ConvPool) for s in fused.steps)
    assert not any(isinstance(s, ConvPool) for s in plain.steps)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, *shape)).astype(dtype)
    t = rng.integers(0, 3, size=5)
    for _ in range(3):  # through a few updates: the two stay together
        value_f, out_f = fused.train_step_grads(x, t)
        value_p, out_p = plain.train_step_grads(x, t)
        assert value_f == pytest.approx(value_p, rel=tol)
        np.testing.assert_allclose(out_f, out_p, rtol=tol, atol=tol)
        np.testing.assert_allclose(fused.grads, plain.grads, rtol=tol, atol=tol)
        assert np.abs(fused.grads).max() > 0
        for net in (fused, plain):
            net.params -= 0.1 * net.grads
    np.testing.assert_allclose(fused.predict(x), plain.predict(x), rtol=tol, atol=tol)


def test_fused_network_passes_gradcheck_end_to_end():
    """check_network's end-to-end check runs the training steps (ConvPool included)
    against central differences in float64. (It checks every layer's input gradient
    too, so no layer takes a first layer's shortcuts here: those are checked against
    the unfused layers above.)"""
    cfg = resolve(cnn_config(3, 4))
    reports = check_network(cfg, (1, 6, 7), batch=2, seed=0)
    assert all(r.passed for r in reports), "\n".join(r.text() for r in reports)
    net = build(cnn_config(3, 4), (1, 6, 7))
    assert isinstance(net.steps[0], ConvPool)


@pytest.mark.parametrize("hw", [(7, 6), (8, 6)])  # the first layer's columns phased for (8, 6)
def test_fused_evaluation_in_chunks_equals_layer_by_layer(hw, monkeypatch):
    """Evaluation runs the pair as one step too, in chunks of EVAL_CHUNK inputs (a first
    layer's in TRAIN_CHUNK), in the training buffers, forgetting the training batch's
    columns (as the convolution alone does)."""
    import dlrun.nn.fused.conv_pool as conv_pool
    import dlrun.nn.layers.conv2d as conv_module

    monkeypatch.setattr(conv_module, "EVAL_CHUNK", 3)
    monkeypatch.setattr(conv_pool, "TRAIN_CHUNK", 2)
    cfg = cnn_config(3, 4)
    fused, plain = build(cfg, (1, *hw)), build(cfg, (1, *hw))
    plain.plan_training(fuse=False)
    assert fused.steps[0].phased == (hw[0] % 2 == 0)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, 1, *hw))
    fused.train_step_grads(x, rng.integers(0, 3, size=7))
    assert fused.layers[0]._cols is not None
    np.testing.assert_allclose(fused.predict(x), plain.predict(x), rtol=1e-12)
    for conv in (fused.layers[0], fused.layers[2]):
        assert conv._cols is None and set(conv._work) == {"cols", "rows"}
    value_f, out_f = fused.loss_of(x, np.arange(7) % 3)
    value_p, out_p = plain.loss_of(x, np.arange(7) % 3)
    assert value_f == pytest.approx(value_p, rel=1e-12)
    np.testing.assert_allclose(out_f, out_p, rtol=1e-12)


def test_first_layer_product_is_pooled_in_chunks_never_held_whole(monkeypatch):
    """A first convolution with K <= SMALL_K keeps its batch's columns (its backward needs
    them) but makes its product TRAIN_CHUNK images at a time: the work buffer for the
    product holds one chunk, not the batch."""
    import dlrun.nn.fused.conv_pool as conv_pool

    monkeypatch.setattr(conv_pool, "TRAIN_CHUNK", 3)
    net = build(cnn_config(4, 5), (1, 8, 8))
    rng = np.random.default_rng(2)
    net.train_step_grads(rng.standard_normal((7, 1, 8, 8)), rng.integers(0, 3, size=7))
    first, second = net.layers[0], net.layers[2]
    assert net.steps[0].phased and not net.steps[1].phased
    assert first._cols.shape == (9, 7 * 64)
    assert first._work["rows"].size == 4 * 3 * 64  # filters x chunk x positions
    assert second._work["rows"].size == 5 * 7 * 16  # not a first layer: the whole batch
