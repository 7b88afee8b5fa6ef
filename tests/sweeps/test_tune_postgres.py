"""Two ``dlrun tune`` workers on one study in a real PostgreSQL server (Optuna's RDB
storage), as on two machines: each its own study folder, one ``--storage`` URL.

The test starts its own server on 127.0.0.1 from Debian's ``postgresql`` package
(``.ci/run`` installs it): a data directory made with initdb in a fresh temporary
folder, the server run as the ``postgres`` user when the test runs as root (as CI
does; PostgreSQL refuses to run as root). It skips when the binaries are absent,
except with ``DLRUN_REQUIRE_POSTGRES=1`` (set by ``.ci/run``), where that is a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sweeps.tune_common import dlrun_process, require_optuna, tiny_config

require_optuna()


def _binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL server on 127.0.0.1 (trust authentication, user dlrun); its URL."""
    bindir = _binaries()
    if bindir is None or not (bindir / "initdb").exists():
        if os.environ.get("DLRUN_REQUIRE_POSTGRES") == "1":
            pytest.fail("DLRUN_REQUIRE_POSTGRES=1 but PostgreSQL is not installed")
        pytest.skip("needs PostgreSQL's server binaries (apt-get install postgresql)")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="dlrun-pg-"))
    if os.geteuid() == 0:  # the server refuses to run as root
        import pwd

        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the server")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def run(*cmd: str) -> None:
        done = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{cmd[0]} failed: {done.stdout}\n{done.stderr}"

    run(str(bindir / "initdb"), "-D", str(data), "-U", "dlrun", "--auth=trust", "-E", "UTF8")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(
        str(bindir / "pg_ctl"),
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(folder / "log"),
        "-w",
        "start",
    )
    try:
        yield f"postgresql://dlrun@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def _study(url: str, name: str):
    import optuna

    return optuna.load_study(study_name=name, storage=url.replace("://", "+psycopg://", 1))


def test_two_workers_on_one_postgres_study_finish_exactly_n_trials(tmp_path, postgres_url):
    config = tiny_config(tmp_path, epochs=40)
    n = 6
    common = ["tune", config, "--param", "optimizer.lr=log:1e-3:1", "--trials", n]
    common += ["--pruner", "none", "--storage", postgres_url, "--study-name", "shared"]
    workers = [
        dlrun_process(*common, "--study-dir", tmp_path / f"machine{i}", cwd=tmp_path)
        for i in (1, 2)
    ]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    for worker, out in zip(workers, outputs):
        assert worker.returncode == 0, out
        assert "@127.0.0.1" in out and "trials finished" in out

    study = _study(postgres_url, "shared")
    numbers = [t.number for t in study.trials]
    assert len(numbers) == len(set(numbers))  # no trial number twice
    assert sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials) == n
    pids = {t.user_attrs["worker"]["pid"] for t in study.trials if t.state.name == "COMPLETE"}
    assert len(pids) == 2, "both workers should have run trials"
    # every trial's run directory is in the study folder of the worker that ran it
    runs = [p.name for i in (1, 2) for p in (tmp_path / f"machine{i}").glob("trial-*")]
    assert sorted(r.split("-")[1] for r in runs) == [f"{k:04d}" for k in sorted(numbers)]

    # a third worker with another search space is refused by the study in the database
    other = dlrun_process(
        "tune", config, "--param", "optimizer.lr=log:1e-2:1", "--trials", n, "--pruner", "none",
        "--storage", postgres_url, "--study-name", "shared",
        "--study-dir", tmp_path / "machine3", cwd=tmp_path,
    )  # fmt: skip
    out, _ = other.communicate(timeout=120)
    assert other.returncode == 2 and "holds another study (different space)" in out
    assert len(_study(postgres_url, "shared").trials) == len(numbers)
