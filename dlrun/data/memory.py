"""Handing memory a run no longer needs back to the operating system.

- :func:`release_freed_memory`: NumPy's arrays come from the C heap. Once a
  large array has been freed, glibc serves later large arrays from the heap
  instead of mapping fresh pages, and keeps freed heap pages in the process, so
  a run's resident memory stays at its highest point. ``malloc_trim`` returns
  them; the trainer calls it when it lets the training set go.
- :func:`release_pages`: the pages of a memory-mapped array that this process
  has read stay resident (and count in its peak) until they are dropped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import mmap
from typing import Any

import numpy as np


@functools.cache
def _libc() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "malloc_trim") else None


def release_freed_memory() -> bool:
    """Return the C heap's free pages to the system (glibc's ``malloc_trim(0)``).

    True if the C library has it (glibc), False otherwise (nothing done)."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True


def release_pages(array: np.ndarray, upto: int | None = None) -> None:
    """Drop this process's resident pages of a memory-mapped ``array`` (all of them, or
    those wholly before byte ``upto`` of its data). They stay in the page cache: a later
    read maps them back without I/O. So reading a mapped file does not add the file's
    size to the peak memory of a process that only copies parts of it. No-op for an
    array in memory."""
    mm = getattr(array, "_mmap", None)
    if mm is None or not hasattr(mm, "madvise") or not hasattr(mmap, "MADV_DONTNEED"):
        return
    base = np.frombuffer(mm, np.uint8).ctypes.data
    start = array.ctypes.data - base
    end = len(mm) if upto is None else start + upto
    end -= end % mmap.PAGESIZE
    if end > 0:
        mm.madvise(mmap.MADV_DONTNEED, 0, end)
