"""The one error family of dlrun.

Every error a user can cause (a bad config, a missing file, a corrupt checkpoint,
a diverged run) is a :class:`DlrunError`. The CLI prints its message and exits
with ``exit_code``; a traceback is shown only with ``--debug``.
"""

from __future__ import annotations


class DlrunError(Exception):
    """Base of every error dlrun reports to a user.

    ``hint`` is an optional sentence telling the user how to fix it.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class ConfigError(DlrunError):
    """A config file, key, value or override is wrong."""


class DataError(DlrunError):
    """A dataset is missing, truncated, corrupt or inconsistent."""


class CheckpointError(DlrunError):
    """A checkpoint or run directory cannot be read or is inconsistent."""


class BuildError(ConfigError):
    """A network cannot be built from its config (shapes do not fit, ...)."""


class RunFilesError(DlrunError):
    """A run directory cannot be written (not writable, not a folder, disk full, ...)."""

    exit_code = 1
