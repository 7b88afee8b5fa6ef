"""conv2d layer: shapes, values against NumPy loops, gradients, in-place grads, errors."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.errors import BuildError
from dlrun.nn.gradcheck import check_layer
from dlrun.nn.layers.conv2d import EVAL_CHUNK, Conv2D
from tests import naive_conv


def make(**config) -> Conv2D:
    return Conv2D(Conv2D.Config(**config))


def built(input_shape, dtype=np.float64, seed=0, **config) -> Conv2D:
    layer = make(**config)
    layer.build(input_shape, np.random.default_rng(seed), dtype)
    return layer


@pytest.mark.parametrize(
    "config, input_shape, output_shape",
    [
        ({"filters": 4, "kernel_size": 3}, (1, 28, 28), (4, 26, 26)),
        ({"filters": 4, "kernel_size": 3, "padding": "same"}, (1, 28, 28), (4, 28, 28)),
        ({"filters": 4, "kernel_size": 3, "padding": 1}, (3, 7, 5), (4, 7, 5)),
        ({"filters": 2, "kernel_size": 3, "stride": 2, "padding": "same"}, (1, 7, 8), (2, 4, 4)),
        ({"filters": 2, "kernel_size": 4, "padding": "same"}, (1, 6, 5), (2, 6, 5)),
        ({"filters": 2, "kernel_size": [2, 3], "stride": [1, 2]}, (2, 5, 9), (2, 4, 4)),
        ({"filters": 2, "kernel_size": 3, "padding": [0, 2]}, (1, 5, 5), (2, 3, 7)),
    ],
)
def test_output_shape(config, input_shape, output_shape):
    layer = built(input_shape, **config)
    assert layer.output_shape == output_shape
    assert layer.params["W"].shape == (
        config["filters"],
        input_shape[0],
        *np.broadcast_to(config["kernel_size"], (2,)),
    )
    x = np.random.default_rng(0).standard_normal((2, *input_shape))
    assert layer.forward(x, True).shape == (2, *output_shape)


# config, input shape, padding as (top, bottom, left, right), stride
VALUE_CASES = [
    ({"filters": 3, "kernel_size": 3}, (1, 6, 5), (0, 0, 0, 0), (1, 1)),
    ({"filters": 2, "kernel_size": 3, "padding": "same"}, (3, 5, 6), (1, 1, 1, 1), (1, 1)),
    ({"filters": 2, "kernel_size": 3, "padding": 1, "stride": 2}, (3, 7, 7), (1, 1, 1, 1), (2, 2)),
    (
        {"filters": 2, "kernel_size": 2, "padding": "same", "stride": 2},
        (2, 5, 5),
        (0, 1, 0, 1),
        (2, 2),
    ),
]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize("config, input_shape, pad, stride", VALUE_CASES)
def test_forward_backward_match_naive(config, input_shape, pad, stride, dtype, tol):
    layer = built(input_shape, dtype, **config)
    rng = np.random.default_rng(1)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    x = rng.standard_normal((3, *input_shape)).astype(dtype)
    y = layer.forward(x, True)
    assert y.dtype == dtype
    w, b = layer.params["W"], layer.params["b"]
    np.testing.assert_allclose(y, naive_conv.conv2d(x, w, b, stride, pad), rtol=tol, atol=tol)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = layer.backward(dy)
    ex_dx, ex_dw, ex_db = naive_conv.conv2d_backward(x, w, dy, stride, pad)
    assert dx.dtype == dtype
    np.testing.assert_allclose(dx, ex_dx, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.grads["W"], ex_dw, rtol=tol, atol=tol)
    np.testing.assert_allclose(layer.grads["b"], ex_db, rtol=tol, atol=tol)


@pytest.mark.parametrize("example", Conv2D.example)
def test_gradcheck_examples(example):
    report = check_layer(make(**example["config"]), example["input_shape"], batch=2, seed=0)
    assert report.passed, report.text()


@pytest.mark.parametrize(
    "config, input_shape",
    [
        ({"filters": 2, "kernel_size": 3, "bias": False}, (3, 5, 5)),
        ({"filters": 2, "kernel_size": 2, "stride": 2, "padding": "same"}, (2, 5, 3)),
    ],
)
def test_gradcheck_more_shapes(config, input_shape):
    report = check_layer(make(**config), input_shape, batch=2, seed=1)
    assert report.passed, report.text()


def test_input_gradient_by_local_central_differences():
    """Independent of dlrun.nn.gradcheck: dL/dx of L = sum(y * R) by central differences."""
    layer = built((2, 4, 5), filters=2, kernel_size=3, stride=2, padding=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 4, 5))
    r = rng.standard_normal((2, *layer.output_shape))
    layer.forward(x, True)
    dx = layer.backward(r)
    numeric = naive_conv.central_difference(lambda: float(np.sum(layer.forward(x, True) * r)), x)
    np.testing.assert_allclose(dx, numeric, rtol=1e-6, atol=1e-8)


def test_course_example():
    image = np.array(
        [[1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1], [0, 0, 1, 1, 0], [0, 1, 1, 0, 0]],
        dtype=np.float32,
    )
    layer = built((1, 5, 5), np.float32, filters=1, kernel_size=3)
    layer.params["W"][...] = np.array([[1, 0, 1], [0, 1, 0], [1, 0, 1]])
    layer.params["b"][...] = 0
    y = layer.forward(image[None, None], False)
    assert y[0, 0, 0, 0] == 4
    np.testing.assert_array_equal(y[0, 0], [[4, 3, 4], [2, 4, 3], [2, 3, 4]])


def test_grads_are_written_into_flat_buffer_views_and_params_read_at_call_time():
    layer = built((2, 5, 5), filters=3, kernel_size=3)
    flat_p = np.zeros(layer.params["W"].size + 3)
    flat_g = np.full_like(flat_p, np.nan)
    n_w = layer.params["W"].size
    flat_p[:n_w] = layer.params["W"].reshape(-1)
    layer.params = {"W": flat_p[:n_w].reshape(3, 2, 3, 3), "b": flat_p[n_w:]}
    layer.grads = {"W": flat_g[:n_w].reshape(3, 2, 3, 3), "b": flat_g[n_w:]}
    x = np.random.default_rng(3).standard_normal((2, 2, 5, 5))
    dy = np.ones((2, 3, 3, 3))
    layer.forward(x, True)
    layer.backward(dy)
    assert np.all(np.isfinite(flat_g)), "backward must fill the gradient views in place"
    _, ex_dw, ex_db = naive_conv.conv2d_backward(x, layer.params["W"], dy)
    np.testing.assert_allclose(flat_g[:n_w].reshape(3, 2, 3, 3), ex_dw)
    np.testing.assert_allclose(flat_g[n_w:], ex_db)
    flat_p[n_w:] = 5.0  # the bias changes through the buffer: the next forward sees it
    y = layer.forward(x, True)
    np.testing.assert_allclose(y, naive_conv.conv2d(x, layer.params["W"], np.full(3, 5.0)))


def test_batch_sizes_can_change_between_calls():
    layer = built((1, 6, 6), filters=2, kernel_size=3, padding="same")
    rng = np.random.default_rng(4)
    w, b = layer.params["W"], layer.params["b"]
    for n in (4, 3, 4, 1, 4):
        x = rng.standard_normal((n, 1, 6, 6))
        y = layer.forward(x, True)
        np.testing.assert_allclose(y, naive_conv.conv2d(x, w, b, pad=(1, 1, 1, 1)), atol=1e-12)
        dy = rng.standard_normal(y.shape)
        dx = layer.backward(dy)
        ex_dx, _, _ = naive_conv.conv2d_backward(x, w, dy, pad=(1, 1, 1, 1))
        np.testing.assert_allclose(dx, ex_dx, atol=1e-12)
    assert layer._work["cols"].size == 9 * 4 * 36, "one buffer, sized for the largest batch"


def test_evaluation_in_chunks_matches_and_shares_the_training_buffers():
    """An evaluation forward runs in chunks, in the training batch's buffers (its memory
    does not add to theirs), and forgets that batch's columns: a backward needs a new
    training forward."""
    layer = built((2, 5, 5), filters=3, kernel_size=3, padding="same")
    rng = np.random.default_rng(6)
    w, b = layer.params["W"], layer.params["b"]
    x = rng.standard_normal((3, 2, 5, 5))
    layer.forward(x, True)
    big = rng.standard_normal((EVAL_CHUNK * 2 + 5, 2, 5, 5))  # two full chunks and a partial one
    y_big = layer.forward(big, False)
    np.testing.assert_allclose(y_big, naive_conv.conv2d(big, w, b, pad=(1, 1, 1, 1)), atol=1e-12)
    assert set(layer._work) == {"cols", "rows"}
    assert layer._work["cols"].size == 2 * 9 * EVAL_CHUNK * 25, "evaluation memory is one chunk"
    dy = rng.standard_normal((3, 3, 5, 5))
    with pytest.raises(RuntimeError, match="training forward"):
        layer.backward(dy)
    layer.forward(x, True)
    dx = layer.backward(dy)
    ex_dx, ex_dw, _ = naive_conv.conv2d_backward(x, w, dy, pad=(1, 1, 1, 1))
    np.testing.assert_allclose(dx, ex_dx, atol=1e-12)
    np.testing.assert_allclose(layer.grads["W"], ex_dw, atol=1e-12)
    assert layer._work["cols"].size == 2 * 9 * EVAL_CHUNK * 25, "no second set of buffers"


def test_outputs_are_fresh_arrays():
    """A later forward must not overwrite an earlier result (gradcheck, predictions)."""
    layer = built((1, 4, 4), filters=2, kernel_size=3)
    rng = np.random.default_rng(5)
    x1, x2 = rng.standard_normal((2, 1, 4, 4)), rng.standard_normal((2, 1, 4, 4))
    y1 = layer.forward(x1, False)
    keep = y1.copy()
    layer.forward(x2, False)
    np.testing.assert_array_equal(y1, keep)


def test_no_bias_and_initializer():
    layer = built((2, 5, 5), filters=4, kernel_size=3, bias=False, init="zeros")
    assert set(layer.params) == {"W"} and set(layer.grads) == {"W"}
    assert not layer.params["W"].any()
    he = built((2, 5, 5), seed=0, filters=64, kernel_size=3, init="he_uniform")
    bound = np.sqrt(6.0 / (2 * 3 * 3))  # fan_in = C * kh * kw
    assert np.abs(he.params["W"]).max() <= bound
    assert np.abs(he.params["W"]).max() > 0.9 * bound
    assert he.params["W"].dtype == np.float64


def test_config_round_trip():
    layer = make(filters=8, kernel_size=[3, 5], stride=2, padding="same")
    config = layer.get_config()
    assert config["type"] == "conv2d"
    config.pop("type")
    again = Conv2D(Conv2D.Config(**config))
    again.build((1, 9, 9), np.random.default_rng(0), np.float32)
    layer.build((1, 9, 9), np.random.default_rng(0), np.float32)
    assert again.output_shape == layer.output_shape == (8, 5, 5)


@pytest.mark.parametrize(
    "input_shape, needles",
    [
        ((784,), ("reshape", "image dataset")),  # the hint depends on a reshape layer existing
        ((28, 28), ("reshape", "channel axis")),
        ((1, 2, 28, 28), ("(channels, height, width)",)),
    ],
)
def test_non_image_input_is_a_build_error(input_shape, needles):
    layer = Conv2D(Conv2D.Config(filters=2), name="conv1")
    with pytest.raises(BuildError) as info:
        layer.build(input_shape, np.random.default_rng(0), np.float32)
    text = str(info.value)
    assert "conv1" in text and str(input_shape) in text
    assert any(needle in text for needle in needles), text


def test_kernel_larger_than_padded_input_is_a_build_error():
    layer = Conv2D(Conv2D.Config(filters=2, kernel_size=5), name="conv2")
    with pytest.raises(BuildError, match=r"conv2.*5x5.*larger than.*4x4.*\(3, 4, 4\)"):
        layer.build((3, 4, 4), np.random.default_rng(0), np.float32)
    # the same kernel fits once padded
    ok = Conv2D(Conv2D.Config(filters=2, kernel_size=5, padding=1))
    assert ok.build((3, 4, 4), np.random.default_rng(0), np.float32) == (2, 2, 2)


@pytest.mark.parametrize(
    "bad",
    [
        {"filters": 0},
        {"filters": 2, "kernel_size": 0},
        {"filters": 2, "stride": [1, 0]},
        {"filters": 2, "padding": "full"},
        {"filters": 2, "padding": -1},
        {"filters": 2, "kernel": 3},
    ],
)
def test_bad_settings_are_rejected(bad):
    with pytest.raises(ValidationError):
        Conv2D.Config(**bad)


def test_fused_relu_equals_conv_then_relu_layer():
    from dlrun.nn.layers.activation import ReLU
    from dlrun.nn.layers.conv2d import Conv2D

    rng = np.random.default_rng(3)
    plain = Conv2D(Conv2D.Config(filters=4, kernel_size=3, padding=1))
    fused = Conv2D(Conv2D.Config(filters=4, kernel_size=3, padding=1, activation="relu"))
    relu = ReLU()
    for layer in (plain, fused):
        layer.build((2, 6, 5), np.random.default_rng(0), np.float64)
    relu.build(plain.output_shape, rng, np.float64)
    x = rng.standard_normal((3, 2, 6, 5))
    y = fused.forward(x, True)
    np.testing.assert_allclose(y, relu.forward(plain.forward(x, True), True))
    dy = rng.standard_normal(y.shape)
    dx_fused = fused.backward(dy)
    dx_plain = plain.backward(relu.backward(dy))
    np.testing.assert_allclose(dx_fused, dx_plain)
    for key in ("W", "b"):
        np.testing.assert_allclose(fused.grads[key], plain.grads[key])


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 1e-4)])
@pytest.mark.parametrize(
    "config, input_shape, direct",
    [
        ({"filters": 10, "kernel_size": 3, "padding": 1, "activation": "relu"}, (1, 6, 5), True),
        ({"filters": 3, "kernel_size": [1, 3], "stride": 2, "bias": False}, (3, 7, 7), True),
        ({"filters": 2, "kernel_size": 3}, (2, 5, 5), False),  # K = 18: dY @ cols.T
    ],
)
def test_first_layer_weight_gradient_matches_naive(
    config, input_shape, direct, dtype, tol, monkeypatch
):
    """A layer that computes no dC/dx takes dW and db straight from dy when its columns
    are few (C*kh*kw <= SMALL_K): the same gradients as the NumPy reference."""
    import dlrun.nn.layers.conv2d as conv_module

    calls = []
    kernel = conv_module.masked_weight_grad
    monkeypatch.setattr(conv_module, "masked_weight_grad", lambda *a: (calls.append(1), kernel(*a)))
    layer = built(input_shape, dtype, **config)
    layer.input_grad = False
    rng = np.random.default_rng(5)
    if "b" in layer.params:
        layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    x = rng.standard_normal((4, *input_shape)).astype(dtype)
    y = layer.forward(x, True)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert layer.backward(dy) is None
    assert bool(calls) == direct
    w = layer.params["W"]
    b = layer.params.get("b", np.zeros(w.shape[0], dtype))
    stride = (config.get("stride", 1),) * 2
    pad = (1, 1, 1, 1) if config.get("padding") == 1 else (0, 0, 0, 0)
    if config.get("activation") == "relu":
        dy = dy * (naive_conv.conv2d(x, w, b, stride, pad) > 0)
    _, ex_dw, ex_db = naive_conv.conv2d_backward(x, w, dy, stride, pad)
    np.testing.assert_allclose(layer.grads["W"], ex_dw, rtol=tol, atol=tol)
    if "b" in layer.grads:
        np.testing.assert_allclose(layer.grads["b"], ex_db, rtol=tol, atol=tol)
