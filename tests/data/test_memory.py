"""Giving memory back: freed heap pages (malloc_trim) and read pages of mapped files."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dlrun.data.memory import release_freed_memory, release_pages

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def status(field: str) -> float:
    """A /proc/self/status field in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise KeyError(field)


@linux
def test_release_pages_drops_what_was_read_of_a_mapped_array(tmp_path):
    np.save(tmp_path / "a.npy", np.arange(4 * 2**20, dtype=np.float32))  # 16 MiB
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert float(mapped.sum(dtype=np.float64)) > 0  # every page read
    before = status("RssFile")
    release_pages(mapped)
    assert status("RssFile") < before - 12
    assert mapped[-1] == 4 * 2**20 - 1  # still readable: pages come back from the page cache


def test_release_pages_leaves_arrays_in_memory_alone():
    a = np.ones(1000)
    release_pages(a)
    assert a.sum() == 1000


@linux
def test_freed_heap_memory_goes_back_to_the_system():
    """Freed arrays that glibc keeps in the heap (behind one still in use) stay resident
    until release_freed_memory; a C library without malloc_trim makes it a no-op."""
    np.ones(
        8 * 2**20 // 8
    )  # a freed large mapping raises glibc's threshold: the next come from the heap
    blocks = [np.ones(2**20 // 8) for _ in range(48)]  # 48 x 1 MiB, touched
    pin = np.ones(2**20 // 8)  # allocated after them: the heap cannot shrink from its top
    del blocks
    before = status("VmRSS")
    if not release_freed_memory():
        pytest.skip("this C library has no malloc_trim")
    assert status("VmRSS") < before - 24
    assert pin.sum() == 2**20 // 8
