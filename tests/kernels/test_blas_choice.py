"""The per-shape choice of the BLAS: classes, the margin, the policy, wisdom, recordings.

Measurements are replaced by given times where the test is about the decision (so the
result does not depend on the machine's load); the warm-start test measures for real in
a first process and checks that a second one measures nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlrun.kernels import blas_choice, blas_libs
from dlrun.kernels.blas_choice import MKL, OPENBLAS
from tests.kernels.mkl import needs_mkl

ROOT = Path(__file__).resolve().parents[2]
F32 = np.dtype(np.float32)


@pytest.fixture
def chooser(tmp_path, monkeypatch):
    """Auto policy, an empty wisdom file of its own, two candidates (MKL need not be
    installed: measurements are faked), and no choices left from other tests."""
    monkeypatch.setenv("DLRUN_BLAS", "auto")
    monkeypatch.setenv("DLRUN_BLAS_WISDOM", str(tmp_path / "wisdom.json"))
    monkeypatch.setattr(blas_choice, "candidates", lambda: [OPENBLAS, MKL])
    monkeypatch.setattr(blas_choice, "load", lambda: 0.5)  # a quiet machine
    blas_choice._wisdom.clear()
    blas_choice.forget()
    yield tmp_path / "wisdom.json"
    blas_choice.end()
    blas_choice._wisdom.clear()
    blas_choice.forget()


def fake_measure(monkeypatch, seconds: dict[str, float]) -> list[tuple]:
    """Make every measurement return ``seconds``; returns the list of shapes measured."""
    calls: list[tuple] = []

    def measure(m, k, n, ta, tb, dtype, libs):
        calls.append((m, k, n, ta, tb))
        return dict(seconds)

    monkeypatch.setattr(blas_choice, "measure", measure)
    monkeypatch.setattr(blas_choice.time, "sleep", lambda s: None)
    return calls


def test_shape_classes_round_up_to_powers_of_two_and_keep_transposes():
    assert blas_choice.shape_class(64, 156, 512, False, False, F32) == "float32 NN 64x256x512"
    # the last batch of an epoch (fewer rows) falls in the same class while above half
    assert blas_choice.shape_class(50, 156, 512, False, False, F32) == "float32 NN 64x256x512"
    assert blas_choice.shape_class(784, 64, 256, True, False, F32) == "float32 TN 1024x64x256"
    assert blas_choice.shape_class(64, 256, 784, False, True, np.float64) == (
        "float64 NT 64x256x1024"
    )
    assert blas_choice.shape_class(1, 9, 0, False, False, F32) == "float32 NN 1x16x0"


def test_openblas_is_kept_unless_another_library_is_clearly_faster():
    assert blas_choice.pick({"openblas": 1.0, "mkl": 0.95}) == "openblas"  # 5%: noise
    assert blas_choice.pick({"openblas": 1.0, "mkl": 1.5}) == "openblas"
    assert blas_choice.pick({"openblas": 1.0, "mkl": 0.85}) == "mkl"
    assert blas_choice.pick({"mkl": 2.0}) == "mkl"


def test_a_measured_choice_is_remembered_and_a_warm_start_measures_nothing(chooser, monkeypatch):
    calls = fake_measure(monkeypatch, {"openblas": 2.0e-3, "mkl": 1.0e-3})
    first = blas_choice.decide(64, 3136, 128, False, False, F32)
    assert (first.lib, first.source) == ("mkl", "measured")
    assert len(calls) == 2  # a win for MKL is measured twice before it is believed
    saved = json.loads(chooser.read_text())["machines"][blas_choice.machine_key()]
    assert saved["float32 NN 64x4096x128"]["choice"] == "mkl"
    assert saved["float32 NN 64x4096x128"]["shape"] == [64, 3136, 128]
    # a new process: nothing in memory, the file says it all
    blas_choice.forget()
    blas_choice._wisdom.clear()
    monkeypatch.setattr(blas_choice, "measure", lambda *a: pytest.fail("measured again"))
    again = blas_choice.decide(60, 3000, 128, False, False, F32)  # the same class
    assert (again.lib, again.source) == ("mkl", "wisdom")


def test_a_win_seen_only_once_is_not_believed(chooser, monkeypatch):
    times = iter([{"openblas": 2.0, "mkl": 1.0}, {"openblas": 1.0, "mkl": 1.0}])
    monkeypatch.setattr(blas_choice, "measure", lambda *a: next(times))
    monkeypatch.setattr(blas_choice.time, "sleep", lambda s: None)
    choice = blas_choice.decide(64, 784, 256, False, False, F32)
    assert choice.lib == "openblas"
    assert choice.seconds == {"openblas": 1.0, "mkl": 1.0}  # the faster of the two each


def test_a_choice_measured_on_a_crowded_machine_is_measured_again_when_quiet(chooser, monkeypatch):
    fake_measure(monkeypatch, {"openblas": 9.0, "mkl": 1.0})
    monkeypatch.setattr(blas_choice, "load", lambda: 2.0 * os.cpu_count())
    crowded = blas_choice.decide(64, 784, 256, False, False, F32)
    assert crowded.lib == "mkl" and crowded.load == 2.0 * os.cpu_count()
    assert "at load" in crowded.describe()
    blas_choice.forget()  # a new process, still crowded: the choice holds
    assert blas_choice.decide(64, 784, 256, False, False, F32).source == "wisdom"
    blas_choice.forget()  # a new process on a quiet machine: measured again
    monkeypatch.setattr(blas_choice, "load", lambda: 0.1)
    calls = fake_measure(monkeypatch, {"openblas": 1.0, "mkl": 2.0})
    quiet = blas_choice.decide(64, 784, 256, False, False, F32)
    assert (quiet.lib, quiet.source, len(calls)) == ("openblas", "measured", 1)
    blas_choice.forget()
    assert blas_choice.decide(64, 784, 256, False, False, F32).source == "wisdom"


def test_small_products_and_single_candidates_are_not_measured(chooser, monkeypatch):
    monkeypatch.setattr(blas_choice, "measure", lambda *a: pytest.fail("measured"))
    small = blas_choice.decide(4, 2, 4, False, False, F32)
    assert (small.lib, small.source) == ("openblas", "small")
    monkeypatch.setattr(blas_choice, "candidates", lambda: [OPENBLAS])
    only = blas_choice.decide(512, 512, 512, False, False, F32)
    assert (only.lib, only.source) == ("openblas", "only")
    assert not chooser.exists()  # nothing worth remembering


def test_a_forced_policy_decides_every_class(chooser, monkeypatch):
    monkeypatch.setattr(blas_choice, "measure", lambda *a: pytest.fail("measured"))
    monkeypatch.setenv("DLRUN_BLAS", "openblas")
    choice = blas_choice.decide(64, 3136, 128, False, False, F32)
    assert (choice.lib, choice.source) == ("openblas", "forced")


def test_a_bad_policy_names_the_allowed_values(monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "cublas")
    with pytest.raises(ValueError, match="auto, openblas, mkl.*'cublas'"):
        blas_choice.policy()
    with pytest.raises(ValueError, match="must be one of"):
        blas_choice.set_policy("fast")


def test_forcing_mkl_without_mkl_says_how_to_install_it(monkeypatch):
    monkeypatch.setenv("DLRUN_BLAS", "mkl")
    monkeypatch.setattr(blas_libs, "mkl", lambda: None)
    with pytest.raises(ValueError, match=r"pip install -e '\.\[mkl\]'"):
        blas_choice.candidates()


def test_a_session_records_each_class_once_and_pins_win(chooser, monkeypatch):
    fake_measure(monkeypatch, {"openblas": 1.0, "mkl": 3.0})
    seen = []
    blas_choice.begin({"float32 NN 64x1024x256": "mkl"}, seen.append)
    assert blas_choice.lib_for(64, 784, 256, False, False, F32) == MKL  # pinned
    assert blas_choice.lib_for(64, 784, 256, False, False, F32) == MKL
    assert blas_choice.lib_for(50, 784, 256, False, False, F32) == MKL  # same class
    assert blas_choice.lib_for(784, 64, 256, True, False, F32) == OPENBLAS  # measured
    assert [(c.key, c.lib, c.source) for c in seen] == [
        ("float32 NN 64x1024x256", "mkl", "run"),
        ("float32 TN 1024x64x256", "openblas", "measured"),
    ]
    used = blas_choice.end()
    assert set(used) == {"float32 NN 64x1024x256", "float32 TN 1024x64x256"}
    # the next recording starts afresh: its first use is reported again, without the pin
    seen.clear()
    blas_choice.begin(None, seen.append)
    assert blas_choice.lib_for(64, 784, 256, False, False, F32) == OPENBLAS
    assert [c.source for c in seen] == ["measured"]


def test_a_fallback_decides_every_class_without_a_pin(chooser, monkeypatch):
    monkeypatch.setattr(blas_choice, "measure", lambda *a: pytest.fail("measured"))
    blas_choice.begin({}, None, fallback="openblas")
    assert blas_choice.decide(64, 3136, 128, False, False, F32).source == "run"
    with pytest.raises(ValueError, match="'gpu'"):
        blas_choice.begin({"float32 NN 1x1x1": "gpu"})


def test_the_machine_key_names_cpu_libraries_and_threads():
    key = blas_choice.machine_key()
    assert blas_choice.cpu()["model"] in key
    assert "threads" in key
    for lib in blas_libs.loaded():
        assert lib.describe() in key


def test_wisdom_lives_beside_numbas_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("DLRUN_BLAS_WISDOM", raising=False)
    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))
    assert blas_choice.wisdom_path() == tmp_path / "dlrun_blas_wisdom.json"
    monkeypatch.setattr(numba.config, "CACHE_DIR", "")
    kernels = Path(blas_choice.__file__).resolve().parent
    assert blas_choice.wisdom_path().parent in (
        kernels / "__pycache__",
        Path.home() / ".cache/dlrun",
    )


WARM = """
import json, sys
import numpy as np
from dlrun.kernels import blas_choice
measured = []
real = blas_choice.measure
blas_choice.measure = lambda *a: measured.append(a) or real(*a)
blas_choice.load = lambda: 0.5  # however busy the machine: this test is not about load
c = blas_choice.decide(64, 784, 256, False, False, np.dtype(np.float32))
print(json.dumps({"source": c.source, "lib": c.lib, "measured": len(measured)}))
"""


@needs_mkl
def test_a_second_process_reads_the_first_ones_measurement(tmp_path):
    """The real thing, across processes: the first one measures and saves, the second
    one (a warm start) takes the saved choice without a single product."""
    env = {**os.environ, "DLRUN_BLAS": "auto", "DLRUN_BLAS_WISDOM": str(tmp_path / "w.json")}

    def run() -> dict:
        out = subprocess.run(
            [sys.executable, "-c", WARM], env=env, cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.strip().splitlines()[-1])

    cold, warm = run(), run()
    assert cold["source"] == "measured" and cold["measured"] >= 1
    assert warm == {"source": "wisdom", "lib": cold["lib"], "measured": 0}


@needs_mkl
def test_a_real_measurement_times_both_libraries(monkeypatch):
    seconds = blas_choice.measure(64, 784, 256, False, False, F32, [OPENBLAS, MKL])
    assert set(seconds) == {"openblas", "mkl"}
    assert all(0 < s < 1 for s in seconds.values())
