"""A run keeps its BLAS choices: env.json and log.txt record them, and a resumed run
multiplies with the same libraries, so it ends bit-identical to the uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlrun.errors import CheckpointError, ConfigError
from dlrun.kernels import blas_choice, blas_libs
from dlrun.runs.rundir import RunDir
from dlrun.training.train import train
from tests.conftest import small_config
from tests.kernels.mkl import needs_mkl
from tests.training.test_train import interrupt_at, params_of

CONFIG = small_config(
    model={
        "type": "sequential",
        "layers": [
            {"type": "dense", "units": 64, "activation": "tanh"},
            {"type": "dense", "units": 32, "activation": "relu"},
            {"type": "dense", "units": 2},
            {"type": "softmax"},
        ],
    },
    train={"epochs": 3, "batch_size": 32},
)


@pytest.fixture(autouse=True)
def fresh_choices(tmp_path, monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS_WISDOM", str(tmp_path / "wisdom.json"))
    blas_choice.forget()
    yield
    blas_choice.forget()


def blas_of(run_dir) -> dict:
    return json.loads((run_dir / "env.json").read_text())["blas"]


def assert_same_run(a, b) -> None:
    """Bit-identical parameters and metrics (but the seconds)."""
    pa, pb = params_of(a.run_dir), params_of(b.run_dir)
    assert pa.keys() == pb.keys()
    for key in pa:
        np.testing.assert_array_equal(pa[key], pb[key])
    ma, mb = RunDir(a.run_dir).metrics(), RunDir(b.run_dir).metrics()
    for ra, rb in zip(ma, mb, strict=True):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb


def test_a_run_records_its_policy_libraries_and_choices(runs_dir, monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "openblas")
    result = train(CONFIG, runs_dir=runs_dir)
    entry = blas_of(result.run_dir)
    assert entry["policy"] == "openblas"
    assert "openblas" in entry["libraries"] and entry["cpu"]["model"]
    # the MLP's products: per layer forward x W, backward x^T dz, and dz W^T past the first
    assert "float32 NN 32x64x32" in entry["choices"]  # layer 2's forward, batches of 32
    assert "float32 TN 64x32x32" in entry["choices"]  # its weight gradient
    assert set(entry["choices"].values()) == {"openblas"}
    log = (result.run_dir / "log.txt").read_text()
    assert "BLAS for float32 NN 32x64x32 (32x64x32): openblas (forced)" in log


@needs_mkl
@pytest.mark.parametrize("stop_step", [4, 9])
def test_a_run_on_mkl_resumes_bit_identically(runs_dir, monkeypatch, stop_step):
    monkeypatch.setenv("DLRUN_BLAS", "mkl")
    full = train(CONFIG, runs_dir=runs_dir / "a")
    part = train(CONFIG, runs_dir=runs_dir / "b", callbacks=[interrupt_at(stop_step)])
    assert part.summary["status"] == "interrupted"
    assert set(blas_of(part.run_dir)["choices"].values()) == {"mkl"}
    resumed = train({}, resume=part.run_dir)
    assert resumed.summary["status"] == "completed"
    assert_same_run(full, resumed)
    # and the libraries mattered: the same run on OpenBLAS ends elsewhere in the last bits
    monkeypatch.setenv("DLRUN_BLAS", "openblas")
    other = train(CONFIG, runs_dir=runs_dir / "c")
    assert any(
        not np.array_equal(v, params_of(full.run_dir)[k])
        for k, v in params_of(other.run_dir).items()
    )


@needs_mkl
def test_a_resumed_run_keeps_its_choices_whatever_dlrun_blas_says(runs_dir, monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "mkl")
    full = train(CONFIG, runs_dir=runs_dir / "a")
    part = train(CONFIG, runs_dir=runs_dir / "b", callbacks=[interrupt_at(6)])
    monkeypatch.setenv("DLRUN_BLAS", "openblas")
    resumed = train({}, resume=part.run_dir)
    assert_same_run(full, resumed)
    log = (part.run_dir / "log.txt").read_text()
    assert "DLRUN_BLAS=openblas ignored: the run keeps its choices" in log
    assert "(run)" in log  # choices taken from the run
    assert blas_of(part.run_dir)["policy"] == "mkl"


@needs_mkl
def test_a_run_on_mkl_cannot_resume_without_mkl(runs_dir, monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "mkl")
    part = train(CONFIG, runs_dir=runs_dir, callbacks=[interrupt_at(3)])
    monkeypatch.setenv("DLRUN_BLAS", "auto")
    monkeypatch.setattr(blas_libs, "loaded", lambda: [blas_libs.openblas()])
    with pytest.raises(CheckpointError, match=r"with mkl, which is not installed"):
        train({}, resume=part.run_dir)


def test_a_run_from_before_the_choice_resumes_on_openblas(runs_dir, monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "openblas")
    full = train(CONFIG, runs_dir=runs_dir / "a")
    part = train(CONFIG, runs_dir=runs_dir / "b", callbacks=[interrupt_at(5)])
    env = json.loads((part.run_dir / "env.json").read_text())
    del env["blas"]  # as written before the choice existed
    (part.run_dir / "env.json").write_text(json.dumps(env))
    monkeypatch.setenv("DLRUN_BLAS", "auto")
    resumed = train({}, resume=part.run_dir)
    assert_same_run(full, resumed)
    assert "made before per-shape choices: OpenBLAS" in (part.run_dir / "log.txt").read_text()
    assert set(blas_of(part.run_dir)["choices"].values()) == {"openblas"}


def test_a_bad_dlrun_blas_is_a_config_error(runs_dir, monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "fastest")
    with pytest.raises(ConfigError, match="DLRUN_BLAS must be one of auto, openblas, mkl"):
        train(CONFIG, runs_dir=runs_dir)
    assert not runs_dir.exists()  # refused before any run folder was made
