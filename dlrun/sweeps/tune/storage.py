"""Where a study lives: Optuna's journal file in the study folder, or a database URL.

    (default)                      <study-dir>/study.journal  (Optuna's JournalStorage,
                                   appended under an flock: dlrun.sweeps.tune.journal)
    --storage journal:PATH         a journal file elsewhere (e.g. on a shared disk)
    --storage sqlite:///PATH.db    SQLite through Optuna's RDBStorage
    --storage postgresql://USER:PASSWORD@HOST:PORT/DB   (any SQLAlchemy URL)

The default is the journal file, not SQLite: both let several processes work on
one study, but every write to SQLite is a locked transaction (each per-epoch report
of a trial, each heartbeat), about 30 ms here against well under 1 ms for an appended
journal line, and "database is locked" waits grow with the workers. Databases
(RDBStorage) get Optuna's heartbeat: a trial whose process stopped beating for
``GRACE`` seconds (a killed worker on another machine) is marked failed by the
next worker that looks. Trials of a dead process on this machine are found at
once (``dlrun.sweeps.tune.worker.reap_dead``), for every kind of storage.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

from dlrun.errors import ConfigError

DEFAULT_FILE = "study.journal"
#: Seconds between two heartbeats of a running trial, and silence after which it is stale.
HEARTBEAT, GRACE = 5, 60


def require_optuna() -> Any:
    """The optuna module (quiet), or a ConfigError saying how to install it."""
    try:
        import optuna
    except ImportError:
        raise ConfigError(
            "dlrun tune needs Optuna, which is not installed",
            hint="pip install 'dlrun[tune]'",
        ) from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def storage_url(storage: str | None, study_dir: Path) -> str:
    """The storage as one text: ``journal:PATH`` (absolute) or a database URL."""
    if storage is None or not storage.strip():
        return f"journal:{(Path(study_dir) / DEFAULT_FILE).resolve()}"
    storage = storage.strip()
    if storage.startswith("journal:"):
        path = storage[len("journal:") :]
        if not path:
            raise ConfigError("--storage journal:PATH needs a file path")
        return f"journal:{Path(path).expanduser().resolve()}"
    if "://" not in storage:
        raise ConfigError(
            f"--storage '{storage}' is not a URL",
            hint="write postgresql://USER:PASSWORD@HOST/DB, sqlite:///study.db or journal:FILE",
        )
    return storage


def shown(url: str) -> str:
    """The URL with its password hidden (for messages, study.yaml and tables)."""
    if url.startswith("journal:") or "@" not in url:
        return url
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url.split("://", 1)[0] + "://***@" + url.rsplit("@", 1)[-1]


def _engine_kwargs(url: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    elif url.startswith(("postgresql", "postgres")):
        kwargs["connect_args"] = {"connect_timeout": 10}
    elif url.startswith("mysql"):
        kwargs["connect_args"] = {"connect_timeout": 10}
    return kwargs


def _postgres_driver(url: str) -> str:
    """``postgres(ql)://`` without a driver -> ``postgresql+psycopg://`` when psycopg (the
    driver the ``tune`` extra brings) is there: SQLAlchemy 2.0 would look for psycopg2."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            import importlib.util

            driver = "+psycopg" if importlib.util.find_spec("psycopg") else ""
            return f"postgresql{driver}://" + url[len(scheme) :]
    return url


def open_storage(url: str) -> Any:
    """An Optuna storage for ``url``; ConfigError (exit 2) if it cannot be used."""
    optuna = require_optuna()
    if url.startswith("journal:"):
        from dlrun.sweeps.tune.journal import FlockJournal

        path = Path(url[len("journal:") :])
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = FlockJournal(str(path))
        except OSError as exc:
            raise ConfigError(f"cannot open the study journal {path}: {exc}") from None
        return optuna.storages.JournalStorage(backend)
    url = _postgres_driver(url)
    try:
        return _rdb_storage(optuna, url)
    except ImportError as exc:
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None) or "?"
        raise ConfigError(
            f"storage {shown(url)} needs a database driver that is not installed ({missing})",
            hint="pip install 'dlrun[tune]' (it brings psycopg, the PostgreSQL driver)",
        ) from None
    except Exception as exc:  # sqlalchemy: bad URL, unknown dialect, unreachable server
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"cannot use the storage {shown(url)}: {first}",
            hint="check the URL, that the server runs and accepts this user, or leave "
            "--storage out to keep the study in its folder",
        ) from None


def _rdb_storage(optuna: Any, url: str, attempts: int = 5) -> Any:
    """Optuna's RDBStorage; when several workers start at once, one of them creates the
    tables and the others may collide with it (a unique-key violation in the database's
    catalogue): they try again, then find the tables made."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(
                url,
                engine_kwargs=_engine_kwargs(url),
                heartbeat_interval=HEARTBEAT,
                grace_period=GRACE,
            )
        except sqlalchemy.exc.IntegrityError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 * (attempt + 1))
