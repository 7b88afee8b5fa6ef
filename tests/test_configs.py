"""Every shipped config resolves, and builds its network on its dataset's input shape."""

import numpy as np
import pytest

from dlrun.config.resolve import load
from dlrun.errors import DataError
from dlrun.nn.network import Network
from dlrun.runs.build import load_data, make_streams
from tests.conftest import CONFIGS, ROOT

FILES = sorted(p for p in CONFIGS.glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_config_resolves_and_builds(path, monkeypatch):
    monkeypatch.chdir(ROOT)
    cfg = load(path)
    assert cfg["name"]
    if cfg["data"]["name"] == "mnist":
        return  # no Debian package: built without its data below
    cfg["data"] = {**cfg["data"], **({"download": False} if "download" in cfg["data"] else {})}
    try:
        splits = load_data(cfg, make_streams(cfg["seed"])["data"])
    except DataError as exc:
        pytest.fail(f"dataset of {path.name} not available: {exc}")
    net = Network.from_config(cfg, splits.n_classes)
    net.build(splits.input_shape, make_streams(cfg["seed"])["init"])
    assert net.params.size > 0


def test_cnn_mnist_builds_on_28x28_digits_without_the_data():
    """MNIST has no Debian package, so the config's network is built on the shape of its
    images, (1, 28, 28) with 10 classes, without loading them: every layer's output shape
    (conv 3x3 padding 1 keeps 28x28, each 2x2 pool halves it), the parameter count, and one
    evaluation pass giving a distribution over the 10 digits for each image."""
    cfg = load(CONFIGS / "cnn_mnist.yaml")
    assert cfg["data"]["name"] == "mnist"
    net = Network.from_config(cfg, n_classes=10)
    net.build((1, 28, 28), make_streams(cfg["seed"])["init"], np.dtype(cfg["dtype"]))
    shapes = [(layer.registered_name, layer.output_shape) for layer in net.layers]
    assert shapes == [
        ("conv2d", (32, 28, 28)),
        ("maxpool2d", (32, 14, 14)),
        ("conv2d", (64, 14, 14)),
        ("maxpool2d", (64, 7, 7)),
        ("flatten", (64 * 7 * 7,)),
        ("dense", (128,)),
        ("dense", (10,)),
        ("softmax", (10,)),
    ]
    sizes = {k: v.shape for k, v in net.state_dict().items()}
    assert sizes == {
        "conv2d_0.W": (32, 1, 3, 3),
        "conv2d_0.b": (32,),
        "conv2d_2.W": (64, 32, 3, 3),
        "conv2d_2.b": (64,),
        "dense_5.W": (3136, 128),
        "dense_5.b": (128,),
        "dense_6.W": (128, 10),
        "dense_6.b": (10,),
    }
    assert net.params.size == sum(int(np.prod(s)) for s in sizes.values())
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    out = net.predict(x)
    assert out.shape == (3, 10) and np.isfinite(out).all()
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-5)
