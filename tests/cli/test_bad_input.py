"""Bad input on the command line: one message and exit 2, never a traceback; Ctrl-C in
``train`` exits 130 (issue 19, defects 3, 6 and 10)."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import pytest
import yaml

from dlrun.cli import main
from dlrun.errors import ConfigError
from dlrun.runs.threads import check_threads, default_threads
from tests.cli.conftest import invoke
from tests.conftest import small_config


@pytest.fixture
def cfg_file(tmp_path: Path) -> Path:
    path = tmp_path / "small.yaml"
    path.write_text(yaml.safe_dump(small_config()))
    return path


def assert_bad_input(result, *phrases: str) -> None:
    """Exit 2 with ``error: ...`` naming each phrase, and no exception escaped."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert "error:" in result.output and "Traceback" not in result.output
    for phrase in phrases:
        assert phrase in result.output, result.output


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("value", ["abc", "1.5", "0", "-2"])
def test_bad_dlrun_threads(cfg_file, tmp_path, monkeypatch, value) -> None:
    monkeypatch.setenv("DLRUN_THREADS", value)
    result = invoke("train", cfg_file, "--runs-dir", tmp_path / "runs", "-q")
    assert_bad_input(result, "DLRUN_THREADS", value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("value", ["0", "-2"])
def test_threads_below_one(cfg_file, tmp_path, value) -> None:
    result = invoke("train", cfg_file, "--runs-dir", tmp_path / "runs", "--threads", value)
    assert_bad_input(result, "--threads must be >= 1", value)
    assert not (tmp_path / "runs").exists()


def test_thread_settings(monkeypatch) -> None:
    monkeypatch.delenv("DLRUN_THREADS", raising=False)
    assert default_threads() is None
    monkeypatch.setenv("DLRUN_THREADS", " 2 ")
    assert default_threads() == 2
    assert check_threads(None) is None and check_threads(3) == 3
    with pytest.raises(ConfigError, match="--jobs must be >= 1, got 0"):
        check_threads(0, "--jobs")


def test_an_escaped_dlrun_error_is_still_one_message(monkeypatch, capsys, tmp_path) -> None:
    """`dlrun compare` reads DLRUN_THREADS before its error handling starts: the program's
    entry point reports the error too."""
    monkeypatch.setenv("DLRUN_THREADS", "abc")
    monkeypatch.setattr(sys, "argv", ["dlrun", "compare", str(tmp_path / "none.yaml")])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "error: DLRUN_THREADS must be a whole number" in err and "Traceback" not in err


# --------------------------------------------------------------------------- Ctrl-C
def test_interrupted_train_exits_130(cfg_file, tmp_path, monkeypatch) -> None:
    from dlrun.training import train as training

    real = training.train

    def press_ctrl_c(trainer) -> None:
        if trainer.step == 2:
            os.kill(os.getpid(), signal.SIGINT)

    def train_and_press(*args, **kwargs):
        return real(*args, callbacks=[press_ctrl_c], **kwargs)

    monkeypatch.setattr(training, "train", train_and_press)
    runs = tmp_path / "runs"
    result = invoke("train", cfg_file, "--runs-dir", runs, "-q", "--set", "train.epochs=50")
    assert result.exit_code == 130, result.output
    assert "status: interrupted" in result.output
    run_dir = next(runs.iterdir())
    assert f"dlrun train --resume {run_dir}" in result.output.replace("\n", "")
    resumed = invoke("train", "--resume", run_dir, "-q")
    assert resumed.exit_code == 0 and "status: completed" in resumed.output


# --------------------------------------------------------------------------- configs
def test_config_show_refuses_an_alias_bomb_at_once(tmp_path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines))
    assert_bad_input(invoke("config", "show", path), str(path), "aliases")


@pytest.mark.parametrize("value", ["&a [1, *a]", "&a {name: gd, more: *a}"])
def test_config_show_refuses_a_recursive_alias_in_set(cfg_file, value) -> None:
    result = invoke("config", "show", cfg_file, "--set", f"optimizer={value}")
    assert_bad_input(result, "--set optimizer=", "alias")


@pytest.mark.parametrize("extends", ["3", "0.5", "[1, 2]"])
def test_config_show_extends_a_number(tmp_path, extends) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(f"extends: {extends}\n")
    assert_bad_input(invoke("config", "show", path), "extends must be a file name")


def test_config_show_cuts_a_long_error_list(tmp_path) -> None:
    keys = "\n".join(f"k{i}: 1" for i in range(500))
    path = tmp_path / "c.yaml"
    path.write_text(f"data: {{name: xor}}\nmodel: {{type: sequential}}\n{keys}\n")
    result = invoke("config", "show", path)
    assert_bad_input(result, "unknown key 'k0'", "... and 480 more")
    assert len(result.output.splitlines()) < 30


# --------------------------------------------------------------------------- data.path
@pytest.mark.parametrize("download", ["true", "false"])
def test_train_with_a_missing_data_path(tmp_path, download) -> None:
    missing = tmp_path / "no-such-folder"
    result = invoke(
        "train",
        Path(__file__).parents[2] / "configs" / "mlp_fashion_mnist.yaml",
        "--runs-dir",
        tmp_path / "runs",
        "--set",
        f"data.path={missing}",
        "--set",
        f"data.download={download}",
    )
    assert_bad_input(result, f"data.path {missing} does not exist")
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- memory
def test_a_layer_too_large_to_allocate_is_one_message(tmp_path) -> None:
    """(Found by the fuzzer: units 2147483648 gave numpy's _ArrayMemoryError traceback.)
    2**40 units of 32 inputs is 256 TiB: refused at once, nothing is allocated."""
    cfg = small_config()
    cfg["model"]["layers"][0]["units"] = 2**40
    path = tmp_path / "huge.yaml"
    path.write_text(yaml.safe_dump(cfg))
    result = invoke("train", path, "--runs-dir", tmp_path / "runs", "-q")
    assert result.exit_code == 1, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)
    assert "error: out of memory: Unable to allocate" in result.output
    assert "Traceback" not in result.output
