"""Every shipped config resolves, and builds its network on its dataset's input shape."""

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
        pytest.skip("MNIST has no Debian package; its config is checked by resolving only")
    cfg["data"] = {**cfg["data"], **({"download": False} if "download" in cfg["data"] else {})}
    try:
        splits = load_data(cfg, make_streams(cfg["seed"])["data"])
    except DataError as exc:
        pytest.fail(f"dataset of {path.name} not available: {exc}")
    net = Network.from_config(cfg, splits.n_classes)
    net.build(splits.input_shape, make_streams(cfg["seed"])["init"])
    assert net.params.size > 0
