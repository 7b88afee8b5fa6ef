"""dlrun warmup: a config's first passes choose every product's BLAS, so that its run then
starts with nothing to measure."""

from __future__ import annotations

import pytest
import yaml

from dlrun.kernels import blas_choice
from dlrun.kernels.blas_choice import MKL, OPENBLAS
from dlrun.runs.warmup import forget_machine, warmup
from dlrun.training.train import train
from tests.cli.conftest import invoke
from tests.conftest import small_config

WIDE = small_config(
    model={
        "type": "sequential",
        "layers": [
            {"type": "dense", "units": 512, "activation": "tanh"},
            {"type": "dense", "units": 512, "activation": "relu"},
            {"type": "dense", "units": 2},
            {"type": "softmax"},
        ],
    },
    train={"epochs": 1, "batch_size": 48},
)


@pytest.fixture
def config(tmp_path, monkeypatch):
    """WIDE as a file; auto policy over two candidates with faked, counted measurements
    (MKL 20% faster for every shape), a wisdom file of the test's own."""
    path = tmp_path / "wide.yaml"
    path.write_text(yaml.safe_dump(WIDE))
    monkeypatch.setenv("DLRUN_BLAS", "auto")
    monkeypatch.setenv("DLRUN_BLAS_WISDOM", str(tmp_path / "wisdom.json"))
    monkeypatch.setattr(blas_choice, "candidates", lambda: [OPENBLAS, MKL])
    monkeypatch.setattr(blas_choice, "load", lambda: 0.5)
    monkeypatch.setattr(blas_choice.time, "sleep", lambda s: None)
    calls: list[tuple] = []

    def measure(m, k, n, ta, tb, dtype, libs):
        calls.append((m, k, n, ta, tb))
        return {"openblas": 1.0, "mkl": 0.8}

    monkeypatch.setattr(blas_choice, "measure", measure)
    new_process()
    yield path, calls
    new_process()


def new_process() -> None:
    """Forget what this process chose and read: as a new process would start."""
    blas_choice.forget()
    blas_choice._wisdom.clear()


def test_warmup_makes_every_choice_a_run_then_needs(config, runs_dir, monkeypatch):
    path, calls = config
    seen = []
    used = warmup([path], report=seen.append)
    assert [c.key for c in seen] == list(used)
    # a full batch (48 rows) and the last one (200 * 0.6 = 120 training rows: 24), forward
    # and backward, and an evaluation pass
    assert "float32 NN 64x512x512" in used and "float32 NN 32x512x512" in used
    assert "float32 TN 512x64x512" in used and "float32 NT 64x512x512" in used
    assert {c.lib for c in used.values() if c.source == "measured"} == {"mkl"}
    assert calls
    new_process()
    calls.clear()
    result = train(WIDE, runs_dir=runs_dir)
    assert calls == []  # a warm start measures nothing
    log = (result.run_dir / "log.txt").read_text()
    assert "(measured" not in log and "BLAS for float32 NN 64x512x512" in log
    assert "(wisdom)" in log


def test_recalibrate_measures_again(config):
    path, calls = config
    warmup([path])
    first = len(calls)
    new_process()
    warmup([path])
    assert len(calls) == first  # remembered
    new_process()
    warmup([path], recalibrate=True)
    assert len(calls) == 2 * first
    assert forget_machine() == first // 2  # each class once (a win for MKL is measured twice)


def test_the_command_prints_each_choice(config):
    path, _ = config
    result = invoke("warmup", path)
    assert result.exit_code == 0, result.output
    assert "BLAS policy: auto" in result.output
    assert "float32 NN 64x512x512 (48x512x512): mkl (measured at load 0.5" in result.output
    assert "product classes: mkl" in result.output
    result = invoke("warmup", path.parent / "missing.yaml")
    assert result.exit_code == 2
