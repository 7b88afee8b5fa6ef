"""Shared by the tests of ``dlrun tune``: Optuna (a skip without it, a failure with
``DLRUN_REQUIRE_TUNE=1``, which ``.ci/run`` sets after installing the ``tune`` extra),
a tiny config, reading a study back, and ``dlrun`` in a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

HINT = 'pip install -e ".[tune]"'


def require_optuna() -> Any:
    """The optuna module; a skip without it (a failure with DLRUN_REQUIRE_TUNE=1)."""
    try:
        import optuna
    except ImportError:
        if os.environ.get("DLRUN_REQUIRE_TUNE") == "1":
            pytest.fail(f"DLRUN_REQUIRE_TUNE=1 but optuna is not installed ({HINT})")
        pytest.skip(f"needs optuna ({HINT}); CI installs it", allow_module_level=True)
    return optuna


def tiny_config(tmp_path: Path, epochs: int = 3, **changes: Any) -> Path:
    """A 3-class spirals run of 300 points (a validation split) that trains in ~0.1 s."""
    cfg: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "data": {"name": "spirals", "n": 300, "classes": 3, "val_fraction": 0.2},
        "model": {
            "type": "sequential",
            "layers": [
                {"type": "dense", "units": 16, "activation": "relu"},
                {"type": "dense", "units": 3},
                {"type": "softmax"},
            ],
        },
        "loss": "cross_entropy",
        "optimizer": {"name": "momentum", "lr": 0.05},
        "train": {"epochs": epochs, "batch_size": 32},
    }
    cfg.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def journal_study(study_dir: Path, name: str | None = None) -> Any:
    """The study kept in a study folder's journal (read from this process)."""
    optuna = require_optuna()
    from optuna.storages.journal import JournalFileBackend

    storage = optuna.storages.JournalStorage(JournalFileBackend(str(study_dir / "study.journal")))
    return optuna.load_study(study_name=name or study_dir.resolve().name, storage=storage)


def states(study: Any) -> dict[int, str]:
    """Trial number -> state name."""
    return {t.number: t.state.name for t in study.get_trials(deepcopy=False)}


def finished(study: Any) -> int:
    return sum(s in ("COMPLETE", "PRUNED") for s in states(study).values())


DLRUN = "import sys; from dlrun.cli import main; sys.argv[0] = 'dlrun'; main()"


def dlrun_process(*args: Any, cwd: Path, **kwargs: Any) -> subprocess.Popen:
    """``dlrun ARGS`` in a fresh interpreter (stdout and stderr in one pipe)."""
    return subprocess.Popen(
        [sys.executable, "-c", DLRUN, *[str(a) for a in args]],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )
