"""The study's default storage: Optuna's journal (one JSON line per operation, the format
of Optuna's ``JournalFileBackend``) in a file, appended under an ``flock``.

Optuna's own file backend takes its lock by creating a lock file, and a worker that
finds it taken sleeps with exponential backoff (up to 1 s a try), then fsyncs every
append: two workers that report every epoch of their trials spent more time waiting
than training (``--jobs 2`` was no faster than ``--jobs 1`` on quickstart trials).
Here the lock is the kernel's: a waiting worker wakes as soon as it is released, and
a killed worker's lock ends with its process (no stale lock file, no 30 s grace
period). Appends are not fsynced: a killed process loses nothing (its lines are in
the page cache); an operating-system crash may lose the last lines, which then read
as trials that never finished, and a line cut short is skipped.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from typing import Any

from optuna.storages.journal import BaseJournalBackend


class FlockJournal(BaseJournalBackend):
    """A journal file shared by processes on one machine (or an NFS mount with locks)."""

    def __init__(self, path: str) -> None:
        self.path = str(path)
        os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644))
        self._offsets: dict[int, int] = {0: 0}  # lines read -> byte offset after them

    def read_logs(self, log_number_from: int) -> Iterator[dict[str, Any]]:
        """The operations from number ``log_number_from`` on (whole lines only)."""
        known = max(n for n in self._offsets if n <= log_number_from)
        with open(self.path, "rb") as f:
            fcntl.flock(f, fcntl.LOCK_SH)  # no append is half-visible while we read
            f.seek(self._offsets[known])
            lines = f.read().split(b"\n")[:-1]  # the last piece has no newline yet
        number, offset = known, self._offsets[known]
        for line in lines:
            offset += len(line) + 1
            try:
                log = json.loads(line)
            except ValueError:  # a line cut short by a crash: that operation is lost
                continue
            number += 1  # operations are numbered as Optuna counts them: whole ones
            self._offsets[number] = offset
            if number > log_number_from:
                yield log

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = "".join(json.dumps(log, separators=(",", ":")) + "\n" for log in logs).encode()
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                data = b"\n" + data  # after a line cut short (a crash): start a new one
            while data:
                data = data[os.write(fd, data) :]
        finally:
            os.close(fd)  # and the lock with it
