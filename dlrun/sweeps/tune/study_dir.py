"""The study folder and the study's identity: what makes a study resumable, and refused
when the command is another one.

    <study-dir>/
      study.yaml          what was searched: config (and its hash), space, metric,
                          direction, pruner, seed, storage; the identity hash
      study.journal       the study itself (Optuna's journal), unless --storage says where
      trial-0000-<date>-<id>/   one ordinary run directory per trial (dlrun runs lists them)
      trials.csv          one row per trial: state, value, parameters, run directory
      plots/              Optuna's figures of the study

The identity is the hash of what decides the trials' results: the resolved base
config, the search space, the metric and its direction, the pruner and the seed.
The number of trials, ``--jobs`` and ``--timeout`` are not part of it: the same
command with a larger ``--trials`` extends a study. The identity is also kept in
the study's user attributes in the storage, so that workers on other machines
(their own study folders, one database) are checked against it too.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

from dlrun.config.loading import safe_load
from dlrun.errors import ConfigError
from dlrun.runs.rundir import atomic_write_text
from dlrun.sweeps.spec import digest

STUDY_FILE = "study.yaml"
#: Key of the identity in the study's user attributes (in the storage).
ATTR = "dlrun_identity"


@dataclass(frozen=True)
class Identity:
    """What a study searches; two commands with equal identities continue one study."""

    config_hash: str
    space: dict[str, Any]
    metric: str
    direction: str
    pruner: dict[str, Any]
    seed: int

    @property
    def hash(self) -> str:
        return digest(asdict(self))

    def describe(self) -> dict[str, Any]:
        return {**asdict(self), "identity": self.hash}

    def differences(self, theirs: dict[str, Any]) -> list[str]:
        """Names of the fields in which a stored identity differs from this one."""
        mine = asdict(self)
        names = {"config_hash": "config"}
        return [names.get(k, k) for k in mine if digest(mine[k]) != digest(theirs.get(k))]


def refuse(where: str, ident: Identity, theirs: dict[str, Any]) -> ConfigError:
    differ = ident.differences(theirs) or ["identity"]
    return ConfigError(
        f"{where} holds another study (different {', '.join(differ)}): "
        f"its trials are not trials of this command",
        hint="give another --study-dir (or --study-name), or remove that study",
    )


class StudyDir:
    """One study's folder."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.study_file = self.path / STUDY_FILE
        self.plots_dir = self.path / "plots"
        self.trials_csv = self.path / "trials.csv"

    def read(self) -> dict[str, Any] | None:
        """study.yaml, or None for a folder that holds no study yet."""
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"{self.path} exists and is not a folder")
        if not self.study_file.is_file():
            return None
        try:
            data = safe_load(self.study_file.read_text(encoding="utf-8"), str(self.study_file))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read {self.study_file}: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.study_file} is not a study description")
        return data

    def check(self, ident: Identity, storage: str) -> None:
        """ConfigError (touching nothing) if this folder holds another study, or is a
        folder of something else."""
        data = self.read()
        if data is None:
            if self.path.is_dir() and any(p.name != "study.journal" for p in self.path.iterdir()):
                raise ConfigError(
                    f"{self.path} exists and is not a study folder (no {STUDY_FILE})",
                    hint="give another --study-dir, or remove that folder",
                )
            return
        if data.get("identity") != ident.hash:
            raise refuse(f"study folder {self.path}", ident, data)
        if data.get("storage") != storage:
            raise ConfigError(
                f"study folder {self.path} keeps its study in {data.get('storage')}, "
                f"not in {storage}",
                hint="give the same --storage as before (or none for the folder's own journal)",
            )

    def prepare(self, ident: Identity, info: dict[str, Any]) -> None:
        """Write study.yaml (once: a later command checks against it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.plots_dir.mkdir(exist_ok=True)
        if not self.study_file.is_file():
            text = yaml.safe_dump({**info, **ident.describe()}, sort_keys=False)
            atomic_write_text(self.study_file, text)


def check_storage_identity(study: Any, ident: Identity, where: str) -> None:
    """Claim the study in its storage for this identity, or ConfigError if it holds
    trials of another command (or of something that is not dlrun)."""
    theirs = study.user_attrs.get(ATTR)
    if theirs is None:
        if study.get_trials(deepcopy=False):
            raise ConfigError(
                f"{where} already has trials that dlrun tune did not make",
                hint="give another --study-name",
            )
        study.set_user_attr(ATTR, ident.describe())
        return
    if not isinstance(theirs, dict) or theirs.get("identity") != ident.hash:
        raise refuse(where, ident, theirs if isinstance(theirs, dict) else {})
