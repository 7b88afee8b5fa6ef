"""``train.fuse``: the fused steps are an optional speed-up of the layers' own code.

With ``fuse: false`` the layers' own ``forward``/``backward`` are what run; with
``fuse: true`` (the default) a dense stack and a conv + pool pair run as fused steps. Both
give the same trained network: bit for bit where a fused step claims it (dense stacks),
otherwise to rounding (conv + pool, float64). log.txt says which plan ran.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from dlrun.config.loading import apply_overrides, load_yaml
from dlrun.kernels import blas
from dlrun.nn.layers.conv2d import Conv2D
from dlrun.nn.layers.dense import Dense
from dlrun.nn.layers.pool2d import MaxPool2D
from dlrun.runs import checkpoint
from dlrun.training.train import train
from tests.conftest import CONFIGS

FASHION = pytest.mark.skipif(
    not __import__("pathlib").Path("/usr/share/datasets/fashion-mnist").is_dir(),
    reason="needs Debian's dataset-fashion-mnist",
)


def course_config(name, *overrides):
    return apply_overrides(load_yaml(CONFIGS / f"{name}.yaml"), list(overrides))


MLP = ("quickstart", "data.n=400", "train.epochs=2")
CNN = (
    "cnn_fashion_mnist",
    "data.n_train=96",
    "train.epochs=1",
    "train.batch_size=32",
    "train.early_stopping=null",
    "dtype=float64",
    "model.layers[0].filters=4",
    "model.layers[2].filters=6",
    "model.layers[5].units=16",
)
RNN = (
    "rnn_sine",
    "dtype=float64",
    "data.n=96",
    "train.epochs=2",
    "model.layers=[{type: rnn, units: 8, return_sequences: true},"
    " {type: dense, units: 8, activation: tanh}, {type: dense, units: 1}]",
)


def trained(runs_dir, spec, fuse):
    name, *overrides = spec
    result = train(course_config(name, *overrides, f"train.fuse={fuse}"), runs_dir=runs_dir)
    assert result.summary["status"] == "completed"
    params = checkpoint.load_params(result.run_dir / "checkpoints" / "last.npz")
    return result, params, (result.run_dir / "log.txt").read_text()


def count_calls(monkeypatch, *classes):
    """Count every call of each class's own forward and backward."""
    calls = Counter()
    for cls in classes:
        for method in ("forward", "backward"):
            original = getattr(cls, method)

            def wrapped(self, *args, _original=original, _key=f"{cls.__name__}.{method}"):
                calls[_key] += 1
                return _original(self, *args)

            monkeypatch.setattr(cls, method, wrapped)
    return calls


def without_seconds(final):
    return {k: v for k, v in final.items() if k != "seconds"}


@pytest.mark.skipif(not blas.available(), reason="dense stacks need ILP64 OpenBLAS")
def test_fused_and_unfused_mlp_runs_end_bit_for_bit_the_same(runs_dir):
    fused, p_fused, log_fused = trained(runs_dir / "a", MLP, True)
    plain, p_plain, log_plain = trained(runs_dir / "b", MLP, False)
    assert "dense_0 + dense_1 + dense_2 as one step (DenseStack)" in log_fused
    assert "no fused step" in log_plain
    assert p_fused.keys() == p_plain.keys()
    for key in p_fused:
        np.testing.assert_array_equal(p_fused[key], p_plain[key], err_msg=key)
    assert without_seconds(fused.summary["final"]) == without_seconds(plain.summary["final"])


@pytest.mark.skipif(not blas.available(), reason="dense stacks need ILP64 OpenBLAS")
def test_fused_and_unfused_recurrent_runs_agree_to_rounding(runs_dir):
    """A stack that passes dC/dx back (here into the RNN) computes it with another BLAS
    call than the layer does (x W^T as one transposed product), which may round the last
    bit differently: equal to rounding, not bit for bit."""
    fused, p_fused, log_fused = trained(runs_dir / "a", RNN, True)
    plain, p_plain, _ = trained(runs_dir / "b", RNN, False)
    assert "dense_1 + dense_2 as one step (DenseStack)" in log_fused
    for key in p_fused:
        np.testing.assert_allclose(p_fused[key], p_plain[key], rtol=1e-11, atol=1e-13)
    assert fused.summary["final"]["loss"] == pytest.approx(plain.summary["final"]["loss"], 1e-11)


@FASHION
def test_fused_and_unfused_cnn_runs_agree_to_rounding(runs_dir):
    fused, p_fused, log_fused = trained(runs_dir / "a", CNN, True)
    plain, p_plain, log_plain = trained(runs_dir / "b", CNN, False)
    assert "conv2d_0 + maxpool2d_1 as one step (ConvPool)" in log_fused
    assert "conv2d_2 + maxpool2d_3 as one step (ConvPool)" in log_fused
    assert "dense_5 + dense_6 as one step (DenseStack)" in log_fused or not blas.available()
    for key in p_fused:
        np.testing.assert_allclose(p_fused[key], p_plain[key], rtol=1e-9, atol=1e-12)
    start = course_config(*CNN)  # training moved the weights: the comparison is not vacuous
    assert start["train"]["epochs"] == 1
    assert fused.summary["final"]["loss"] == pytest.approx(plain.summary["final"]["loss"], 1e-9)


def test_without_fusing_the_dense_layers_own_code_trains(runs_dir, monkeypatch):
    calls = count_calls(monkeypatch, Dense)
    trained(runs_dir, MLP, False)
    assert calls["Dense.backward"] > 0 and calls["Dense.forward"] > calls["Dense.backward"]
    if blas.available():
        calls.clear()
        trained(runs_dir, MLP, True)
        assert calls["Dense.backward"] == 0  # the fused step ran instead


@FASHION
def test_without_fusing_the_conv_and_pool_layers_own_code_trains(runs_dir, monkeypatch):
    calls = count_calls(monkeypatch, Conv2D, MaxPool2D)
    trained(runs_dir, CNN, False)
    assert calls["Conv2D.backward"] > 0 and calls["MaxPool2D.backward"] > 0
    calls.clear()
    trained(runs_dir, CNN, True)
    assert calls["Conv2D.backward"] == 0 and calls["MaxPool2D.backward"] == 0
