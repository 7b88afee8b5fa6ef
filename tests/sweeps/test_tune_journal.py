"""The study journal: Optuna's file format, appended under an flock, robust to a line cut
short by a crash, read incrementally."""

from __future__ import annotations

import json

from tests.sweeps.tune_common import require_optuna

optuna = require_optuna()

from dlrun.sweeps.tune.journal import FlockJournal  # noqa: E402


def _study(path, backend=None):
    storage = optuna.storages.JournalStorage(backend or FlockJournal(str(path)))
    return optuna.create_study(storage=storage, study_name="s", load_if_exists=True)


def test_optunas_own_backend_reads_what_it_writes(tmp_path):
    path = tmp_path / "study.journal"
    study = _study(path)
    study.optimize(lambda t: t.suggest_float("x", 0, 1) ** 2, n_trials=3)
    theirs = optuna.storages.journal.JournalFileBackend(str(path))
    again = optuna.load_study(study_name="s", storage=optuna.storages.JournalStorage(theirs))
    assert [t.params for t in again.trials] == [t.params for t in study.trials]


def test_reads_are_incremental_and_see_other_writers(tmp_path):
    path = tmp_path / "study.journal"
    a, b = FlockJournal(str(path)), FlockJournal(str(path))
    a.append_logs([{"op": 1}, {"op": 2}])
    assert list(b.read_logs(0)) == [{"op": 1}, {"op": 2}]
    b.append_logs([{"op": 3}])
    assert list(a.read_logs(2)) == [{"op": 3}]
    assert list(a.read_logs(1)) == [{"op": 2}, {"op": 3}]


def test_a_line_cut_short_by_a_crash_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "study.journal"
    j = FlockJournal(str(path))
    j.append_logs([{"op": 1}])
    with open(path, "ab") as f:
        f.write(json.dumps({"op": 2}).encode()[:5])  # a crash in the middle of a write
    assert list(FlockJournal(str(path)).read_logs(0)) == [{"op": 1}]  # not yet whole
    j.append_logs([{"op": 3}])  # the next append starts a new line
    assert list(FlockJournal(str(path)).read_logs(0)) == [{"op": 1}, {"op": 3}]
    assert list(FlockJournal(str(path)).read_logs(1)) == [{"op": 3}]
