import pytest
import yaml

from dlrun.config import loading as L
from dlrun.config import resolve as C
from dlrun.errors import ConfigError
from tests.conftest import small_config


def write(path, data):
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def test_defaults_are_filled_in(tmp_path):
    cfg = C.load(write(tmp_path / "run.yaml", small_config()))
    assert cfg["name"] == "run"
    assert cfg["model"]["layers"][0] == {
        "type": "dense",
        "units": 8,
        "activation": "tanh",
        "slope": 0.01,
        "bias": True,
        "init": None,
        "bias_init": "zeros",
    }
    assert cfg["optimizer"]["name"] == "gd" and cfg["optimizer"]["lr"] == 0.3
    assert cfg["schedule"]["name"] == "constant"
    assert cfg["train"]["shuffle"] is True and cfg["data"]["val_fraction"] == 0.2
    # the filled config validates again to itself (it is what the run directory keeps)
    assert C.resolve(cfg) == cfg


def test_extends_deep_merges_relative_to_the_file(tmp_path):
    (tmp_path / "base").mkdir()
    write(tmp_path / "base" / "common.yaml", small_config())
    write(tmp_path / "child.yaml", {"extends": "base/common.yaml", "train": {"epochs": 7}})
    cfg = C.load(tmp_path / "child.yaml")
    assert cfg["train"]["epochs"] == 7 and cfg["train"]["batch_size"] == 16
    assert cfg["data"]["name"] == "moons"


def test_extends_cycle_is_reported(tmp_path):
    write(tmp_path / "a.yaml", {"extends": "b.yaml"})
    write(tmp_path / "b.yaml", {"extends": "a.yaml"})
    with pytest.raises(ConfigError, match="'extends' cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        C.load(tmp_path / "a.yaml")


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found: .*nope.yaml"):
        C.load(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        C.load(write(tmp_path / "bad.yaml", "data: [unclosed"))
    with pytest.raises(ConfigError, match="must be a mapping"):
        C.load(write(tmp_path / "list.yaml", "- 1\n- 2\n"))


def test_yaml_is_read_with_the_safe_loader(tmp_path):
    with pytest.raises(ConfigError, match="not valid YAML"):
        C.load(write(tmp_path / "evil.yaml", "seed: !!python/object/apply:os.system ['true']\n"))


def test_unknown_key_suggests_the_closest(tmp_path):
    cfg = small_config()
    cfg["train"]["epoch"] = 3
    with pytest.raises(ConfigError) as exc:
        C.load(write(tmp_path / "typo.yaml", cfg))
    msg = str(exc.value)
    assert "typo.yaml" in msg and "unknown key 'epoch' at train.epoch" in msg
    assert "did you mean 'epochs'?" in msg


def test_unknown_layer_key_names_the_layer_path(tmp_path):
    cfg = small_config()
    cfg["model"]["layers"][1]["unit"] = 4
    with pytest.raises(
        ConfigError, match=r"unknown key 'unit' at model\.layers\[1\]\.unit.*did you mean 'units'"
    ):
        C.load(write(tmp_path / "c.yaml", cfg))


def test_wrong_type_or_range_names_path_value_and_rule(tmp_path):
    cfg = small_config()
    cfg["model"]["layers"][0]["units"] = -3
    with pytest.raises(ConfigError) as exc:
        C.load(write(tmp_path / "c.yaml", cfg))
    msg = str(exc.value)
    assert "model.layers[0].units" in msg and "-3" in msg and "greater than 0" in msg
    cfg = small_config()
    cfg["train"]["epochs"] = "many"
    with pytest.raises(ConfigError, match=r"train\.epochs.*'many'"):
        C.load(write(tmp_path / "c.yaml", cfg))


def test_unknown_component_lists_known_names(tmp_path):
    cfg = small_config()
    cfg["model"]["layers"][0]["type"] = "dens"
    with pytest.raises(
        ConfigError, match=r"unknown layer 'dens'.*did you mean 'dense'.*known: .*dense"
    ):
        C.load(write(tmp_path / "c.yaml", cfg))


def test_overrides_with_dotted_and_indexed_paths(tmp_path):
    path = write(tmp_path / "c.yaml", small_config())
    cfg = C.load(
        path,
        [
            "optimizer.lr=0.01",
            "model.layers[0].units=64",
            "train.batch_size=full",
            "model.layers[-1].type=softmax",
            "data.noise=0.2",
        ],
    )
    assert cfg["optimizer"]["lr"] == 0.01 and isinstance(cfg["optimizer"]["lr"], float)
    assert cfg["model"]["layers"][0]["units"] == 64
    assert cfg["train"]["batch_size"] == "full"
    assert cfg["data"]["noise"] == 0.2


@pytest.mark.parametrize(
    "override,match",
    [
        ("model.layers[5].units=3", r"model\.layers\[5\] does not exist \(3 items there\)"),
        ("optimizer.lr", "has no '='"),
        ("model..units=3", "bad key path"),
        ("seed.x=1", "seed is not a mapping"),
        ("train.epocs=2", "unknown key 'epocs' at train.epocs"),
    ],
)
def test_bad_overrides(tmp_path, override, match):
    with pytest.raises(ConfigError, match=match):
        C.load(write(tmp_path / "c.yaml", small_config()), [override])


def test_parse_and_format_path_round_trip():
    tokens = L.parse_path("model.layers[12].units")
    assert tokens == ["model", "layers", 12, "units"]
    assert L.format_path(tokens) == "model.layers[12].units"


def test_json_schema_covers_registered_components():
    from dlrun.config.schema import json_schema

    schema = json_schema()
    layer_variants = schema["properties"]["model"]["oneOf"]
    sequential = next(v for v in layer_variants if v["title"] == "sequential")
    names = {v["title"] for v in sequential["properties"]["layers"]["items"]["oneOf"]}
    assert {"dense", "relu", "softmax", "sign"} <= names
    assert "unit" not in schema["properties"]
    assert {v["title"] for v in schema["properties"]["optimizer"]["oneOf"]} >= {"gd"}


def test_splits_must_leave_a_training_set(tmp_path):
    cfg = small_config()
    cfg["data"].update(val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ConfigError, match="val_fraction \\+ test_fraction must be < 1"):
        C.load(write(tmp_path / "c.yaml", cfg))
