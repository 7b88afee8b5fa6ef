"""The networks' products on either BLAS: the course's layers and fused steps give the same
outputs and gradients to float32 rounding with MKL as with OpenBLAS, and the dense step
stays bit-identical to its layers whichever library multiplies."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.config.resolve import resolve
from dlrun.kernels import blas, blas_choice
from dlrun.nn.network import Network
from tests.conftest import small_config
from tests.kernels.mkl import needs_mkl

pytestmark = [
    needs_mkl,
    pytest.mark.skipif(not blas.available(), reason="NumPy's BLAS is not ILP64 OpenBLAS"),
]

DENSE = [
    {"type": "flatten"},
    {"type": "dense", "units": 32, "activation": "relu"},
    {"type": "dense", "units": 16, "activation": "tanh"},
    {"type": "dense", "units": 4},
]
CONV = [
    {"type": "conv2d", "filters": 8, "kernel_size": 3, "activation": "relu"},
    {"type": "maxpool2d", "size": 2},
    {"type": "conv2d", "filters": 16, "kernel_size": 3, "padding": "same", "activation": "relu"},
    {"type": "maxpool2d", "size": 2},
    {"type": "flatten"},
    {"type": "dense", "units": 4},
]
LSTM = [{"type": "lstm", "units": 24}, {"type": "dense", "units": 4}]
RNN = [{"type": "rnn", "units": 24, "return_sequences": True}, {"type": "rnn", "units": 12},
       {"type": "dense", "units": 4}]  # fmt: skip
NETWORKS = {  # name: (layers, input shape of one example)
    "mlp": (DENSE, (1, 12, 12)),
    "cnn": (CONV, (1, 12, 12)),
    "lstm": (LSTM, (12, 12)),
    "rnn": (RNN, (12, 12)),
}


@pytest.fixture
def policy(monkeypatch):
    """``policy(name)``: every product of what follows on that library."""

    def use(name: str) -> None:
        monkeypatch.setenv("DLRUN_BLAS", name)
        blas_choice.forget()
        blas_choice.begin()

    yield use
    blas_choice.end()
    blas_choice.forget()


def build(name: str, fuse: bool = True) -> Network:
    layers, shape = NETWORKS[name]
    cfg = small_config(model={"type": "sequential", "layers": [*layers, {"type": "softmax"}]})
    net = Network.from_config(resolve(cfg))
    net.build(shape, np.random.default_rng(0), np.float32, fuse=fuse)
    return net


def step(net: Network, rows: int = 20) -> tuple[float, np.ndarray, np.ndarray]:
    """One training pass on fixed data: (loss, loss input, gradients)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((rows, *net.input_shape)).astype(np.float32)
    value, out = net.train_step_grads(x, rng.integers(0, 4, size=rows))
    return value, out.copy(), net.grads.copy()


@pytest.mark.parametrize("name", list(NETWORKS))
def test_mkl_and_openblas_train_the_same_network_to_rounding(name, policy):
    policy("openblas")
    value_o, out_o, grads_o = step(build(name))
    policy("mkl")
    value_m, out_m, grads_m = step(build(name))
    assert value_m == pytest.approx(value_o, rel=1e-5)
    np.testing.assert_allclose(out_m, out_o, rtol=1e-4, atol=1e-5)
    scale = np.abs(grads_o).max()
    assert scale > 0
    np.testing.assert_allclose(grads_m, grads_o, rtol=1e-3, atol=1e-5 * scale)
    # and MKL really multiplied: float32 sums in another order differ somewhere
    assert not np.array_equal(grads_m, grads_o)


def test_the_dense_step_equals_its_layers_to_the_bit_on_mkl(policy):
    policy("mkl")
    fused, plain = build("mlp"), build("mlp", fuse=False)
    assert [type(s).__name__ for s in fused.steps] == ["Flatten", "DenseStack"]
    for a, b in zip(step(fused), step(plain)):
        np.testing.assert_array_equal(a, b)
