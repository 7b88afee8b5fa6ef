"""IDX reader/writer and the decoded cache."""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from dlrun.data import idx
from dlrun.data.idx import load_idx_cached, read_idx, write_idx
from dlrun.errors import DataError

DTYPES = ["uint8", "int8", "int16", "int32", "float32", "float64"]


def reference_idx_bytes(array: np.ndarray, code: int) -> bytes:
    """The IDX encoding written out by hand: magic, big-endian sizes, big-endian values."""
    head = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    return head + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_each_dtype(tmp_path: Path, dtype: str, gz: bool) -> None:
    rng = np.random.default_rng(0)
    array = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.dtype.isnative
    assert back.shape == (3, 4, 5)
    np.testing.assert_array_equal(back, array)
    back[0, 0, 0] = 1  # writable


@pytest.mark.parametrize(
    "dtype,code",
    [("uint8", 8), ("int8", 9), ("int16", 11), ("int32", 12), ("float32", 13), ("float64", 14)],
)
def test_reads_hand_made_file_and_writes_same_bytes(tmp_path: Path, dtype: str, code: int) -> None:
    array = np.arange(-6, 6).reshape(2, 6).astype(dtype)
    hand = tmp_path / "hand.idx"
    hand.write_bytes(reference_idx_bytes(array, code))
    np.testing.assert_array_equal(read_idx(hand), array)
    ours = tmp_path / "ours.idx"
    write_idx(ours, array)
    assert ours.read_bytes() == hand.read_bytes()


def test_gzip_is_real_gzip(tmp_path: Path) -> None:
    array = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "x.gz", array)
    assert gzip.decompress((tmp_path / "x.gz").read_bytes()) == reference_idx_bytes(array, 8)


def test_write_rejects_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="uint16"):
        write_idx(tmp_path / "x.idx", np.zeros(3, dtype=np.uint16))


def good_bytes() -> bytes:
    return reference_idx_bytes(np.arange(24, dtype=np.uint8).reshape(2, 3, 4), 8)


@pytest.mark.parametrize(
    "content,what",
    [
        (good_bytes()[:-1], "truncated"),
        (good_bytes() + b"\x00", "too long"),
        (good_bytes()[:10], "truncated"),  # inside the dimension sizes
        (good_bytes()[:2], "truncated"),
        (b"\x01\x00" + good_bytes()[2:], "bad magic"),
        (b"\x00\x00\x07" + good_bytes()[3:], "bad magic"),  # unknown type byte
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (gzip.compress(good_bytes()), "gzip-compressed"),  # gzip data without .gz name
    ],
)
def test_bad_raw_files_raise_data_error_naming_file(tmp_path: Path, content: bytes, what) -> None:
    path = tmp_path / "broken-idx3-ubyte"
    path.write_bytes(content)
    with pytest.raises(DataError, match=what) as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_size_mismatch_message_gives_both_sizes(tmp_path: Path) -> None:
    path = tmp_path / "short.idx"
    path.write_bytes(good_bytes()[:-5])
    with pytest.raises(DataError, match="needs 24 bytes.*has 19"):
        read_idx(path)


@pytest.mark.parametrize(
    "content",
    [
        b"this is not gzip at all",
        gzip.compress(good_bytes())[:-12],  # stream cut before its end
        gzip.compress(good_bytes())[:15] + b"\xff" * 20,  # garbage in the deflate data
    ],
)
def test_bad_gzip_raises_data_error_naming_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match="gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_truncated_inside_valid_gzip(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    path.write_bytes(gzip.compress(good_bytes()[:-3]))
    with pytest.raises(DataError, match="truncated"):
        read_idx(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope.gz")


# -- cache ------------------------------------------------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "train-images-idx3-ubyte.gz"
    path.parent.mkdir()
    write_idx(path, np.random.default_rng(3).integers(0, 256, (7, 28, 28), dtype=np.uint8))
    return path


class CountReads:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = idx.read_idx

        def counting(path: Path) -> np.ndarray:
            self.calls += 1
            return real(path)

        monkeypatch.setattr(idx, "read_idx", counting)


def test_cache_built_then_reused_memory_mapped(tmp_path: Path, source: Path, monkeypatch) -> None:
    reads = CountReads(monkeypatch)
    cache = tmp_path / "cache"
    first = load_idx_cached(source, cache)
    npy = cache / "train-images-idx3-ubyte.npy"
    assert reads.calls == 1 and npy.is_file() and npy.with_suffix(".npy.json").is_file()
    stamp = npy.stat().st_mtime_ns
    second = load_idx_cached(source, cache)
    assert reads.calls == 1, "second load decoded the source again"
    assert isinstance(second, np.memmap) and not second.flags.writeable
    assert npy.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(second, read_idx(source))


def test_stale_cache_rebuilt_when_source_changes(tmp_path: Path, source: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    load_idx_cached(source, cache)
    new = np.zeros((7, 28, 28), dtype=np.uint8)
    write_idx(source, new)
    later = source.stat().st_mtime_ns + 10**9
    os.utime(source, ns=(later, later))
    reads = CountReads(monkeypatch)
    np.testing.assert_array_equal(load_idx_cached(source, cache), new)
    assert reads.calls == 1
    load_idx_cached(source, cache)
    assert reads.calls == 1  # the rebuilt copy is current


def test_cache_from_another_source_is_not_used(tmp_path: Path, source: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    load_idx_cached(source, cache)
    other = tmp_path / "other" / source.name
    other.parent.mkdir()
    write_idx(other, np.ones((2, 28, 28), dtype=np.uint8))
    np.testing.assert_array_equal(load_idx_cached(other, cache), np.ones((2, 28, 28)))


def flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-100])


def garble_meta(path: Path) -> None:
    path.with_suffix(".npy.json").write_text("{not json")


def reshape_in_meta(path: Path) -> None:
    meta = path.with_suffix(".npy.json")
    meta.write_text(meta.read_text().replace('"shape": [\n  7,', '"shape": [\n  8,'))


def delete_meta(path: Path) -> None:
    path.with_suffix(".npy.json").unlink()


@pytest.mark.parametrize(
    "damage", [flip_last_byte, truncate, garble_meta, reshape_in_meta, delete_meta]
)
def test_corrupt_cache_detected_and_rebuilt(
    tmp_path: Path, source: Path, monkeypatch, damage
) -> None:
    cache = tmp_path / "cache"
    expected = load_idx_cached(source, cache).copy()
    npy = cache / "train-images-idx3-ubyte.npy"
    damage(npy)
    reads = CountReads(monkeypatch)
    np.testing.assert_array_equal(load_idx_cached(source, cache), expected)
    assert reads.calls == 1
    assert isinstance(load_idx_cached(source, cache), np.memmap)
    assert reads.calls == 1


def test_unwritable_cache_falls_back_to_memory(tmp_path: Path, source: Path) -> None:
    blocker = tmp_path / "file-not-folder"
    blocker.write_text("")
    np.testing.assert_array_equal(load_idx_cached(source, blocker / "cache"), read_idx(source))


def test_real_fashion_mnist_labels_decode_exactly() -> None:
    """Our writer re-encodes Debian's label file to the same bytes it decompresses to."""
    path = Path("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz")
    if not path.is_file():
        pytest.skip("apt-get install dataset-fashion-mnist to run this test")
    labels = read_idx(path)
    assert labels.shape == (60000,) and labels.dtype == np.uint8
    assert reference_idx_bytes(labels, 8) == gzip.decompress(path.read_bytes())


@pytest.mark.parametrize("every", [1, 7, None])
def test_copy_rows_equals_indexing(tmp_path: Path, every: int | None) -> None:
    a = np.random.default_rng(0).integers(0, 255, size=(10_000, 4, 5), dtype=np.uint8)
    np.save(tmp_path / "a.npy", a)
    mapped = np.load(tmp_path / "a.npy", mmap_mode="r")
    rows = None if every is None else np.arange(3, 10_000, every)
    got = idx.copy_rows(mapped, rows, window=1000)
    assert type(got) is np.ndarray and got.flags.c_contiguous
    np.testing.assert_array_equal(got, a if rows is None else a[rows])
    np.testing.assert_array_equal(mapped, a)  # released pages read back intact
    np.testing.assert_array_equal(idx.copy_rows(a, rows), got)  # in memory: plain copy


PEAK_OF_COPY = """
import sys, numpy as np
from dlrun.data import idx
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
mapped = np.load(sys.argv[1], mmap_mode="r")
rows = np.arange(0, len(mapped), 10)  # a tenth of the rows, spread over the whole file
open("/proc/self/clear_refs", "w").write("5")  # reset the peak
before = hwm()
if sys.argv[2] == "copy_rows":
    out = idx.copy_rows(mapped, rows)
else:
    out = np.asarray(mapped[rows])
print(hwm() - before)
"""


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="Linux /proc needed")
def test_copy_rows_does_not_keep_the_mapped_file_resident(tmp_path: Path) -> None:
    """Copying a tenth of a 64 MiB mapped file: plain indexing maps all of it, copy_rows
    keeps the peak near the 6.4 MiB copy."""
    import subprocess
    import sys

    np.save(tmp_path / "big.npy", np.ones((65_536, 1024), dtype=np.uint8))
    peaks = {}
    for how in ("copy_rows", "indexing"):
        out = subprocess.run(
            [sys.executable, "-c", PEAK_OF_COPY, str(tmp_path / "big.npy"), how],
            capture_output=True,
            text=True,
            check=True,
        )
        peaks[how] = float(out.stdout)
    assert peaks["indexing"] > 50, peaks  # the measurement sees the mapped pages
    assert peaks["copy_rows"] < 6.4 + 12, peaks
