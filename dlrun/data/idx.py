"""IDX files (the MNIST format): read, write, and a memory-mapped decoded cache.

An IDX file is a 4-byte magic number, one big-endian uint32 per dimension, then
the values in C order, big-endian::

    byte 0, 1   0x00 0x00
    byte 2      type: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32,
                      0x0D float32, 0x0E float64
    byte 3      number of dimensions d
    4 .. 4+4d   size of each dimension (uint32, big-endian)
    then        prod(sizes) values; the file ends exactly there

A file whose name ends in ``.gz`` is gzip-compressed. Anything that does not
fit (short, too long, bad magic, broken gzip stream) is a :class:`DataError`
naming the file and what is wrong.

Decoding the 47 MB of MNIST's training images from gzip takes about a second;
:func:`load_idx_cached` keeps a decoded ``.npy`` copy that later runs map into
memory instantly, and rebuilds it when the source changed or the copy is damaged.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import struct
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from dlrun.data.memory import release_pages
from dlrun.errors import DataError

#: IDX type byte -> big-endian NumPy dtype of the stored values.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_OF_DTYPE = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"
CACHE_FORMAT = 1


def read_idx(path: Path) -> np.ndarray:
    """The array stored in the IDX file ``path`` (gzip if it ends in ``.gz``).

    Returns a writable array in native byte order with the file's shape and
    type (uint8 for MNIST). Raises :class:`DataError` for a missing, truncated,
    oversized or corrupt file.
    """
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 4:
        raise DataError(f"IDX file {path} is truncated: {len(data)} bytes, no complete header")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in IDX_TYPES:
        looks_gzip = data[:2] == _GZIP_MAGIC
        hint = (
            "it looks gzip-compressed: give it a name ending in .gz"
            if looks_gzip
            else "is it an IDX (MNIST-format) file?"
        )
        raise DataError(
            f"IDX file {path} has a bad magic number {data[:4].hex(' ')} "
            f"(expected 00 00 <type> <ndim>, type one of "
            f"{', '.join(f'{c:#04x}' for c in IDX_TYPES)}); {hint}"
        )
    if ndim == 0:
        raise DataError(f"IDX file {path} declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(
            f"IDX file {path} is truncated: the header needs {header} bytes "
            f"for {ndim} dimensions, the file has {len(data)}"
        )
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_TYPES[code]
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(data) - header
    if payload != expected:
        what = "truncated" if payload < expected else "too long"
        raise DataError(
            f"IDX file {path} is {what}: shape {shape} of {dtype.newbyteorder('=').name} "
            f"needs {expected} bytes of data after the header, the file has {payload}"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return array.reshape(shape).astype(dtype.newbyteorder("="), copy=True)


def _read_bytes(path: Path) -> bytes:
    """The (decompressed) bytes of ``path``; DataError if unreadable or bad gzip."""
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"IDX file {path} does not exist") from None
    except IsADirectoryError:
        raise DataError(f"IDX file {path} is a directory") from None
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise DataError(f"IDX file {path} is not a valid gzip stream ({e})") from None
    except OSError as e:
        raise DataError(f"IDX file {path} cannot be read: {e}") from None


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzip-compressed if ``path`` ends in ``.gz``).

    The dtype must be one of uint8, int8, int16, int32, float32, float64.
    The file is written to a temporary name and renamed, so it is never partial.
    """
    path = Path(path)
    array = np.asarray(array)
    code = _TYPE_OF_DTYPE.get(array.dtype.newbyteorder("="))
    if code is None:
        allowed = ", ".join(d.newbyteorder("=").name for d in IDX_TYPES.values())
        raise TypeError(f"write_idx: dtype {array.dtype} has no IDX type; allowed: {allowed}")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: an IDX array needs 1 to 255 dimensions, got {array.ndim}")
    header = struct.pack(f">HBB{array.ndim}I", 0, code, array.ndim, *array.shape)
    body = np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    content = header + body
    if path.name.endswith(".gz"):
        content = gzip.compress(content, mtime=0)
    _atomic_write(path, lambda f: f.write(content))


# -- decoded cache -------------------------------------------------------------------


def load_idx_cached(source: Path, cache_dir: Path | None) -> np.ndarray:
    """``read_idx(source)`` through a decoded ``.npy`` copy in ``cache_dir``.

    The copy is ``<cache_dir>/<source name without .gz>.npy`` with a JSON
    sidecar recording the source (path, size, mtime) and the copy (shape,
    dtype, size, CRC-32). A copy is used, memory-mapped read-only, only if all of
    these still hold; otherwise (stale, truncated, damaged, missing sidecar) the
    source is decoded again and the copy rewritten atomically. With
    ``cache_dir=None``, or when the folder cannot be written, the decoded array
    is returned without a copy.
    """
    source = Path(source)
    if cache_dir is None:
        return read_idx(source)
    stem = source.name[:-3] if source.name.endswith(".gz") else source.name
    npy = Path(cache_dir) / f"{stem}.npy"
    meta_path = Path(cache_dir) / f"{stem}.npy.json"
    try:
        stat = source.stat()
    except OSError as e:
        raise DataError(f"IDX file {source} cannot be read: {e}") from None
    origin = {
        "source": str(source.resolve()),
        "source_size": stat.st_size,
        "source_mtime_ns": stat.st_mtime_ns,
    }
    cached = _open_cache(npy, meta_path, origin)
    if cached is not None:
        return cached
    array = read_idx(source)
    meta = {
        "format": CACHE_FORMAT,
        **origin,
        "shape": list(array.shape),
        "dtype": array.dtype.str,
        "crc32": zlib.crc32(array),
    }
    try:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        _atomic_write(npy, lambda f: np.save(f, array, allow_pickle=False))
        meta["npy_size"] = npy.stat().st_size
        _atomic_write(meta_path, lambda f: f.write(json.dumps(meta, indent=1).encode()))
    except OSError:
        return array  # read-only or full disk: work from memory this time
    return array


def _open_cache(npy: Path, meta_path: Path, origin: dict[str, Any]) -> np.ndarray | None:
    """The memory-mapped cached array if it is present, current and intact, else None."""
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != CACHE_FORMAT:
            return None
        if any(meta.get(key) != value for key, value in origin.items()):
            return None  # the source file changed (or another source wrote this cache)
        if npy.stat().st_size != meta["npy_size"]:
            return None
        array = np.load(npy, mmap_mode="r", allow_pickle=False)
        if list(array.shape) != meta["shape"] or array.dtype.str != meta["dtype"]:
            return None
        if zlib.crc32(array) != meta["crc32"]:
            return None
        release_pages(array)  # the check read every page; the copies made from it come later
        return array
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def copy_rows(array: np.ndarray, idx: np.ndarray | None = None, window: int = 4096) -> np.ndarray:
    """``array[idx]`` (``idx`` ascending; None: every row) as a new in-memory array, read
    ``window`` rows of ``array`` at a time, releasing each window's mapped pages behind it
    (:func:`dlrun.data.memory.release_pages`): the peak is the copy, not the copy plus the file."""
    rows = np.arange(len(array)) if idx is None else np.asarray(idx)
    out = np.empty((len(rows), *array.shape[1:]), dtype=array.dtype)
    row_bytes = array.strides[0] if array.ndim else 0
    bounds = np.searchsorted(rows, np.arange(0, len(array) + window, window))
    for a, b in zip(bounds[:-1], bounds[1:]):
        if b > a:
            out[a:b] = array[rows[a:b]]
            release_pages(array, upto=int(rows[b - 1]) * row_bytes)
    return out


def _atomic_write(path: Path, write: Any) -> None:
    """Write through ``write(file)`` into a temporary file next to ``path``, then rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; a shared cache must stay readable
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
