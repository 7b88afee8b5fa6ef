"""Config text dlrun refuses: alias bombs, recursive aliases, deep nesting, bad ``extends``;
and long error lists cut to their first lines (issue 19, defects 3 and 10)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from dlrun.config import loading, resolve
from dlrun.config.loading import apply_overrides, load_yaml, safe_load
from dlrun.config.resolve import load
from dlrun.errors import ConfigError
from tests.conftest import CONFIGS

LOADERS = [yaml.SafeLoader] + ([yaml.CSafeLoader] if hasattr(yaml, "CSafeLoader") else [])
LOADER_IDS = [cls.__name__ for cls in LOADERS]

VALID = """
data: {name: xor}
model:
  type: sequential
  layers:
    - &hidden {type: dense, units: 4, activation: tanh}
    - *hidden
    - {type: dense, units: 2}
    - {type: softmax}
"""


def bomb(levels: int = 9, width: int = 9) -> str:
    """A few hundred bytes whose aliases expand to width**levels strings."""
    lines = [f"l0: &l0 [{', '.join(['x'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def write(tmp_path: Path, text: str, name: str = "c.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_alias_bomb_is_refused_at_once(loader) -> None:
    text = bomb()
    assert len(text) < 600
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=r"aliases \(\*name\) expand it to 490,329,064 values"):
        safe_load(text, "bomb.yaml", loader=loader)
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_merge_key_bomb_is_refused(loader) -> None:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{i}: &m{i} {{<<: [*m{i - 1}, *m{i - 1}]}}" for i in range(1, 16)]
    with pytest.raises(ConfigError, match="aliases"):
        safe_load("\n".join(lines), "merge.yaml", loader=loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
@pytest.mark.parametrize(
    "text", ["a: &a [1, *a]", "a: &a {b: *a}", "a: &a {<<: *a}", "a: &a [[[*a]]]"]
)
def test_recursive_alias_is_refused(text: str, loader) -> None:
    with pytest.raises(ConfigError, match=r"refers to the list or mapping it is part of"):
        safe_load(text, "self.yaml", loader=loader)


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
@pytest.mark.parametrize("levels", [loading.MAX_DEPTH + 1, 900])
def test_deep_nesting_is_refused(levels: int, loader) -> None:
    with pytest.raises(ConfigError, match=r"nested more than 50 levels deep"):
        safe_load("[" * levels + "]" * levels, "deep.yaml", loader=loader)


@pytest.mark.parametrize("levels", [900, 5000])
def test_deep_nesting_in_a_file_is_a_config_error(tmp_path: Path, levels: int) -> None:
    """(libyaml itself refuses more than 1,000 levels: not valid YAML.)"""
    path = write(tmp_path, "a: " + "[" * levels + "]" * levels)
    with pytest.raises(ConfigError, match=r"nested more than 50 levels|nesting depth"):
        load_yaml(path)


def test_deep_nesting_through_an_alias_is_refused() -> None:
    """Each part is shallow; the alias puts one inside the other."""
    inner = "[" * 30 + "]" * 30
    text = f"a: &a {inner}\nb: {'[' * 30}*a{']' * 30}"
    with pytest.raises(ConfigError, match="nested more than"):
        safe_load(text, "deep.yaml")


@pytest.mark.parametrize("loader", LOADERS, ids=LOADER_IDS)
def test_reasonable_aliases_and_nesting_still_load(loader) -> None:
    data = safe_load(VALID, "ok.yaml", loader=loader)
    assert data["model"]["layers"][0] == data["model"]["layers"][1]
    depth = loading.MAX_DEPTH - 1
    assert safe_load("[" * depth + "]" * depth, "ok.yaml", loader=loader) is not None
    small_bomb = bomb(levels=4, width=9)  # 9**4 = 6,561 values from aliases: allowed
    assert len(safe_load(small_bomb, "ok.yaml", loader=loader)["l3"]) == 9


def test_shipped_configs_load_as_yaml_reads_them() -> None:
    for path in sorted(CONFIGS.rglob("*.yaml")):
        text = path.read_text()
        assert safe_load(text, str(path)) == yaml.safe_load(text), path


def test_config_file_limits_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, bomb())
    with pytest.raises(ConfigError, match=f"^{path}: its aliases"):
        load(path)
    path = write(tmp_path, "data: &a {name: xor, more: [*a]}\n", "self.yaml")
    with pytest.raises(ConfigError, match=f"^{path}: an alias refers"):
        load(path)
    resolved = load(write(tmp_path, VALID, "ok.yaml"))
    assert resolved["model"]["layers"][1]["units"] == 4


@pytest.mark.parametrize(
    "value", ["&a [1, *a]", "&a {name: gd, x: *a}", bomb().replace("\n", ", ").join("{}")]
)
def test_override_values_within_the_limits(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^--set optimizer="):
        apply_overrides({}, [f"optimizer={value}"])


def test_override_key_path_and_value_depth_are_limited() -> None:
    with pytest.raises(ConfigError, match="levels"):
        apply_overrides({}, [".".join(["k"] * 3000) + "=1"])
    path = ".".join(["k"] * 45)
    apply_overrides({}, [f"{path}=[[[1]]]"])
    with pytest.raises(ConfigError, match="nested more than"):
        apply_overrides({}, [f"{path}={'[' * 10}{']' * 10}"])


def test_override_text_that_is_not_yaml_stays_a_string() -> None:
    assert apply_overrides({}, ["name=[oops"]) == {"name": "[oops"}


@pytest.mark.parametrize("extends", ["3", "2.5", "[3]", "[base.yaml, 7]", "{a: b.yaml}", "''"])
def test_extends_must_name_files(tmp_path: Path, extends: str) -> None:
    path = write(tmp_path, f"extends: {extends}\ndata: {{name: xor}}\n")
    with pytest.raises(ConfigError, match=r"extends must be a file name or a list of file names"):
        load_yaml(path)


def test_extends_a_list_of_files_still_works(tmp_path: Path) -> None:
    write(tmp_path, "seed: 3\n", "a.yaml")
    write(tmp_path, "dtype: float64\n", "b.yaml")
    path = write(tmp_path, "extends: [a.yaml, b.yaml]\nseed: 4\n")
    assert load_yaml(path) == {"seed": 4, "dtype": "float64"}


def test_long_error_lists_are_cut(tmp_path: Path) -> None:
    keys = "\n".join(f"unknown_{i}: 1" for i in range(2000))
    path = write(tmp_path, f"data: {{name: xor}}\nmodel: {{type: sequential}}\n{keys}\n")
    with pytest.raises(ConfigError) as info:
        load(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 1 + resolve.MAX_ERRORS + 1
    assert lines[1].startswith("  unknown key 'unknown_0'")
    assert lines[-1] == f"  ... and {2000 - resolve.MAX_ERRORS:,} more"


def test_long_given_values_are_cut(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"data: {{name: xor}}\nmodel: {{type: sequential}}\nseed: {'9' * 5000}x\n"
    )
    with pytest.raises(ConfigError) as info:
        load(path)
    assert len(str(info.value)) < 400 and "..." in str(info.value)
