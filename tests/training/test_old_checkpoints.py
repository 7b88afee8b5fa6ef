"""A run directory written by the code before the package was restructured (its checkpoint
format is unchanged) resumes and ends exactly where the same run, uninterrupted, ended."""

import json
import shutil
from pathlib import Path

import pytest

from dlrun.training.train import train

FIXTURES = Path(__file__).parent / "fixtures"


def test_an_interrupted_run_of_the_old_layout_resumes_exactly(tmp_path):
    run_dir = tmp_path / "old_format_run"
    shutil.copytree(FIXTURES / "run_written_before_restructure", run_dir)
    (run_dir / "plots").mkdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "interrupted"
    result = train(None, resume=run_dir)
    assert result.summary["status"] == "completed"
    want = json.loads((FIXTURES / "whole_final.json").read_text())
    got = {k: v for k, v in result.summary["final"].items() if k in want}
    assert got == pytest.approx(want, rel=0, abs=0)  # the same floats, to the bit
