"""dlrun's layers against PyTorch's, in float64: the output of a training pass, and for one
random upstream gradient dy, dC/dx and every parameter gradient of backward.

The layers' weights are moved into PyTorch's layouts (``W`` of dense is (in, out), torch's
(out, in); the LSTM's gate blocks are reordered), so a wrong layout in dlrun fails here.
"""

from __future__ import annotations

import numpy as np
import pytest

import dlrun.nn.layers  # noqa: F401  (fills the layer registry)
from dlrun.config.registry import layers
from tests.crosscheck.common import import_torch, numpy, tensor

torch = import_torch(module_level=True)
F = torch.nn.functional


def dlrun_layer(name, config, x, seed=0):
    """Layer ``name`` built for ``x`` with random parameters (biases too), its training
    output for ``x``, a random upstream gradient dy and backward's dC/dx."""
    cls = layers.get(name)
    layer = cls(cls.Config(**config), name=name)
    layer.build(x.shape[1:], np.random.default_rng(seed), np.float64)
    rng = np.random.default_rng(seed + 1)
    for value in layer.params.values():
        value[...] = rng.normal(0.0, 0.5, value.shape)
    y = layer.forward(x.copy(), True)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy.copy())
    return layer, y, dy, dx


def grads_for(y, dy, leaves):
    """torch's gradients of sum(y * dy) with respect to ``leaves``: backward for dy."""
    return [numpy(g) for g in torch.autograd.grad(y, leaves, grad_outputs=tensor(torch, dy))]


def close(actual, expected, what):
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-12, err_msg=what)


# ---------------------------------------------------------------------------- dense
ACTIVATIONS = {
    "identity": lambda z: z,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.1),
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softsign": F.softsign,
    "softplus": F.softplus,
}


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("shape", [(6, 5), (3, 4, 5)], ids=["rows", "sequence"])
def test_dense_agrees_with_torch_linear(activation, shape):
    x = np.random.default_rng(7).standard_normal(shape)
    config = {"units": 4, "activation": activation, "slope": 0.1}
    layer, y, dy, dx = dlrun_layer("dense", config, x)
    p = layer.params
    xt, W, b = tensor(torch, x, True), tensor(torch, p["W"], True), tensor(torch, p["b"], True)
    yt = ACTIVATIONS[activation](F.linear(xt, W.T, b))  # torch's weight is (out, in)
    close(y, numpy(yt), "y")
    gx, gW, gb = grads_for(yt, dy, [xt, W, b])
    close(dx, gx, "dx")
    close(layer.grads["W"], gW, "dW")
    close(layer.grads["b"], gb, "db")


# ---------------------------------------------------------------------------- conv2d
def same_pads(size, kernel, stride):
    """Keras's 'same': ceil(size / stride) outputs, the odd padding pixel after."""
    total = max((-(-size // stride) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


CONVOLUTIONS = [
    pytest.param({"filters": 3, "kernel_size": 3}, (2, 2, 7, 6), id="3x3-valid"),
    pytest.param({"filters": 4, "kernel_size": 3, "padding": "same"}, (2, 3, 6, 5), id="3x3-same"),
    pytest.param(
        {"filters": 3, "kernel_size": [2, 3], "stride": 2, "padding": "same"},
        (2, 2, 8, 7),
        id="2x3-stride2-same",  # padded unevenly: the odd pixel after
    ),
    pytest.param(
        {"filters": 2, "kernel_size": [2, 3], "stride": 2, "padding": 1},
        (2, 1, 7, 8),
        id="2x3-stride2-pad1",
    ),
    pytest.param(
        {"filters": 2, "kernel_size": 3, "stride": [1, 2], "padding": [0, 2]},
        (3, 2, 6, 6),
        id="3x3-stride1x2-pad0x2",
    ),
    pytest.param(
        {"filters": 3, "kernel_size": 3, "padding": 1, "activation": "relu"},
        (2, 2, 5, 5),
        id="3x3-pad1-relu",
    ),
    pytest.param({"filters": 2, "kernel_size": 1, "bias": False}, (2, 3, 4, 4), id="1x1-no-bias"),
]


@pytest.mark.parametrize("config,shape", CONVOLUTIONS)
def test_conv2d_agrees_with_torch_conv2d(config, shape):
    x = np.random.default_rng(3).standard_normal(shape)
    layer, y, dy, dx = dlrun_layer("conv2d", config, x)
    kh, kw = np.broadcast_to(config["kernel_size"], 2)
    sh, sw = np.broadcast_to(config.get("stride", 1), 2)
    padding = config.get("padding", "valid")
    if padding == "valid":
        pads = (0, 0, 0, 0)
    elif padding == "same":
        (top, bottom), (left, right) = same_pads(shape[2], kh, sh), same_pads(shape[3], kw, sw)
        pads = (left, right, top, bottom)
    else:
        ph, pw = np.broadcast_to(padding, 2)
        pads = (int(pw), int(pw), int(ph), int(ph))
    xt, W = tensor(torch, x, True), tensor(torch, layer.params["W"], True)
    leaves = [xt, W]
    b = None
    if "b" in layer.params:
        b = tensor(torch, layer.params["b"], True)
        leaves.append(b)
    yt = F.conv2d(F.pad(xt, pads), W, b, stride=(int(sh), int(sw)))
    if config.get("activation") == "relu":
        yt = F.relu(yt)
    close(y, numpy(yt), "y")
    grads = grads_for(yt, dy, leaves)
    close(dx, grads[0], "dx")
    close(layer.grads["W"], grads[1], "dW")
    if b is not None:
        close(layer.grads["b"], grads[2], "db")


# ---------------------------------------------------------------------------- pooling
POOLS = [
    pytest.param({"size": 2}, (2, 3, 6, 8), id="2x2"),  # non-overlapping 2 x 2: the fast path
    pytest.param({"size": 2}, (2, 2, 7, 5), id="2x2-odd"),  # the last row, column dropped
    pytest.param({"size": [3, 2], "stride": 1}, (2, 2, 5, 6), id="3x2-stride1"),  # overlapping
    pytest.param({"size": 3, "stride": 2}, (1, 2, 7, 7), id="3x3-stride2"),
]
TORCH_POOL = {"maxpool2d": F.max_pool2d, "avgpool2d": F.avg_pool2d}


@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("config,shape", POOLS)
@pytest.mark.parametrize("name", sorted(TORCH_POOL))
def test_pooling_agrees_with_torch(name, config, shape, ties):
    """With ties (pixels from {0, 1, 2}) both give a window's gradient to its first maximum
    in row-major order."""
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, shape).astype(np.float64) if ties else rng.standard_normal(shape)
    layer, y, dy, dx = dlrun_layer(name, config, x)
    size = tuple(np.broadcast_to(config["size"], 2).tolist())
    stride = tuple(np.broadcast_to(config.get("stride", config["size"]), 2).tolist())
    xt = tensor(torch, x, True)
    yt = TORCH_POOL[name](xt, size, stride)
    close(y, numpy(yt), "y")
    (gx,) = grads_for(yt, dy, [xt])
    close(dx, gx, "dx")


# ---------------------------------------------------------------------------- softmax
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)], ids=["rows", "sequence"])
def test_softmax_layer_agrees_with_torch_softmax(shape):
    x = 3.0 * np.random.default_rng(2).standard_normal(shape)
    _, y, dy, dx = dlrun_layer("softmax", {}, x)
    xt = tensor(torch, x, True)
    yt = torch.softmax(xt, dim=-1)
    close(y, numpy(yt), "y")
    close(dx, grads_for(yt, dy, [xt])[0], "dx")


# ---------------------------------------------------------------------------- recurrent
N, T, FEATURES, H = 4, 6, 3, 5
RECURRENT = [
    pytest.param(seq, state, id=f"{'many' if seq else 'one'}-{state}")
    for seq in (False, True)
    for state in ("zero", "learned")
]


def initial(layer, key, learned):
    """The initial state as a (1, N, H) input of torch's RNN / LSTM, from a leaf (H,)."""
    value = layer.params[key] if learned else np.zeros(H)
    leaf = tensor(torch, value, True)
    return leaf, leaf.reshape(1, 1, H).expand(1, N, H)


@pytest.mark.parametrize("return_sequences,initial_state", RECURRENT)
def test_rnn_agrees_with_torch_rnn(return_sequences, initial_state):
    """dlrun's S_t = tanh(X_t U + S_{t-1} W + b) is torch's RNN with weight_ih = U^T,
    weight_hh = W^T, bias_ih = b and bias_hh = 0."""
    x = np.random.default_rng(11).standard_normal((N, T, FEATURES))
    learned = initial_state == "learned"
    config = {"units": H, "return_sequences": return_sequences, "initial_state": initial_state}
    layer, y, dy, dx = dlrun_layer("rnn", config, x)
    p = layer.params
    rnn = torch.nn.RNN(FEATURES, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(tensor(torch, p["U"].T))
        rnn.weight_hh_l0.copy_(tensor(torch, p["W"].T))
        rnn.bias_ih_l0.copy_(tensor(torch, p["b"]))
        rnn.bias_hh_l0.zero_()
    xt = tensor(torch, x, True)
    h0, h0_batch = initial(layer, "h0", learned)
    out, _ = rnn(xt, h0_batch)
    yt = out if return_sequences else out[:, -1]
    close(y, numpy(yt), "y")
    leaves = [xt, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, h0]
    gx, g_ih, g_hh, g_b, g_h0 = grads_for(yt, dy, leaves)
    close(dx, gx, "dx")
    close(layer.grads["U"], g_ih.T, "dU")
    close(layer.grads["W"], g_hh.T, "dW")
    close(layer.grads["b"], g_b, "db")
    if learned:
        close(layer.grads["h0"], g_h0, "dh0")


# dlrun's LSTM: W (H + F, 4H), rows [h_{t-1}, x_t], column blocks f, i, o, C~;
# torch's: weight_hh (4H, H) and weight_ih (4H, F), row blocks i, f, g (= C~), o.
DLRUN_GATES, TORCH_GATES = "fiog", "ifgo"


def reorder(a, source, target):
    """The last axis's four H-blocks, from gate order ``source`` to ``target``."""
    blocks = dict(zip(source, np.split(a, 4, axis=-1)))
    return np.concatenate([blocks[g] for g in target], axis=-1)


@pytest.mark.parametrize("return_sequences,initial_state", RECURRENT)
def test_lstm_agrees_with_torch_lstm_with_the_gates_mapped(return_sequences, initial_state):
    x = np.random.default_rng(13).standard_normal((N, T, FEATURES))
    learned = initial_state == "learned"
    config = {"units": H, "return_sequences": return_sequences, "initial_state": initial_state}
    layer, y, dy, dx = dlrun_layer("lstm", config, x)
    p = layer.params
    W = reorder(p["W"], DLRUN_GATES, TORCH_GATES)  # (H + F, 4H), torch's gate order
    lstm = torch.nn.LSTM(FEATURES, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_hh_l0.copy_(tensor(torch, W[:H].T))
        lstm.weight_ih_l0.copy_(tensor(torch, W[H:].T))
        lstm.bias_ih_l0.copy_(tensor(torch, reorder(p["b"], DLRUN_GATES, TORCH_GATES)))
        lstm.bias_hh_l0.zero_()
    xt = tensor(torch, x, True)
    h0, h0_batch = initial(layer, "h0", learned)
    c0, c0_batch = initial(layer, "c0", learned)
    out, _ = lstm(xt, (h0_batch, c0_batch))
    yt = out if return_sequences else out[:, -1]
    close(y, numpy(yt), "y")
    leaves = [xt, lstm.weight_hh_l0, lstm.weight_ih_l0, lstm.bias_ih_l0, h0, c0]
    gx, g_hh, g_ih, g_b, g_h0, g_c0 = grads_for(yt, dy, leaves)
    close(dx, gx, "dx")
    g_W = np.concatenate([g_hh.T, g_ih.T])  # (H + F, 4H), torch's gate order
    close(layer.grads["W"], reorder(g_W, TORCH_GATES, DLRUN_GATES), "dW")
    close(layer.grads["b"], reorder(g_b, TORCH_GATES, DLRUN_GATES), "db")
    if learned:
        close(layer.grads["h0"], g_h0, "dh0")
        close(layer.grads["c0"], g_c0, "dc0")


def test_gate_reordering_round_trips():
    a = np.arange(2 * 4 * 3).reshape(2, 12)
    there = reorder(a, DLRUN_GATES, TORCH_GATES)
    np.testing.assert_array_equal(there[:, 3:6], a[:, 0:3])  # f: dlrun's first, torch's second
    np.testing.assert_array_equal(there[:, 6:9], a[:, 9:12])  # C~ / g: dlrun's last, torch's third
    np.testing.assert_array_equal(reorder(there, TORCH_GATES, DLRUN_GATES), a)


# The variants torch's modules lack (a sigmoid RNN, a sigmoid candidate C~), against
# torch's autograd through the forward formulas written with torch operations.
@pytest.mark.parametrize("return_sequences", [False, True], ids=["one", "many"])
def test_sigmoid_rnn_agrees_with_torch_autograd(return_sequences):
    x = np.random.default_rng(17).standard_normal((N, T, FEATURES))
    config = {"units": H, "activation": "sigmoid", "return_sequences": return_sequences}
    layer, y, dy, dx = dlrun_layer("rnn", config, x)
    xt = tensor(torch, x, True)
    U, W, b = (tensor(torch, layer.params[k], True) for k in ("U", "W", "b"))
    s, states = torch.zeros(N, H, dtype=torch.float64), []
    for t in range(T):
        s = torch.sigmoid(xt[:, t] @ U + s @ W + b)
        states.append(s)
    yt = torch.stack(states, dim=1) if return_sequences else s
    close(y, numpy(yt), "y")
    gx, gU, gW, gb = grads_for(yt, dy, [xt, U, W, b])
    close(dx, gx, "dx")
    close(layer.grads["U"], gU, "dU")
    close(layer.grads["W"], gW, "dW")
    close(layer.grads["b"], gb, "db")


@pytest.mark.parametrize("return_sequences", [False, True], ids=["one", "many"])
def test_lstm_with_a_sigmoid_candidate_agrees_with_torch_autograd(return_sequences):
    x = np.random.default_rng(19).standard_normal((N, T, FEATURES))
    config = {"units": H, "candidate_activation": "sigmoid", "return_sequences": return_sequences}
    layer, y, dy, dx = dlrun_layer("lstm", config, x)
    xt = tensor(torch, x, True)
    W, b = tensor(torch, layer.params["W"], True), tensor(torch, layer.params["b"], True)
    h = c = torch.zeros(N, H, dtype=torch.float64)
    hs = []
    for t in range(T):
        z = torch.cat([h, xt[:, t]], dim=1) @ W + b
        f, i, o, g = torch.sigmoid(z).split(H, dim=1)  # every block a sigmoid here
        c = f * c + i * g
        h = o * torch.tanh(c)
        hs.append(h)
    yt = torch.stack(hs, dim=1) if return_sequences else h
    close(y, numpy(yt), "y")
    gx, gW, gb = grads_for(yt, dy, [xt, W, b])
    close(dx, gx, "dx")
    close(layer.grads["W"], gW, "dW")
    close(layer.grads["b"], gb, "db")
