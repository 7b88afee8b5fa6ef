"""Where dataset files are found, and how they are fetched when they are not.

:func:`locate` returns the first folder holding every file of a dataset (each
file as ``f`` or ``f.gz``), looking in this order:

1. the config's ``data.path``: when given, the only place looked in (a
   missing folder, or one that lacks a file, is an error naming it);
2. ``$DLRUN_DATA/<name>/``;
3. ``<root>/datasets/<name>/`` (root: the project root, default the current folder);
4. ``/usr/share/datasets/<name>/``, where Debian packages put datasets
   (``apt-get install dataset-fashion-mnist`` installs the four gzip files in
   ``/usr/share/datasets/fashion-mnist/``, with a hyphen: each dataset lists
   such folder aliases).

Failing that, the files are downloaded from the dataset's official address
into ``<root>/datasets/<name>/``: streamed into a temporary file in that folder
with a progress bar, checked against the published checksum, and only then
renamed into place. A checksum mismatch, a cut connection or a response
larger than ``MAX_DOWNLOAD_BYTES`` (checked against Content-Length up front,
and while streaming) leaves no file behind. ``$DLRUN_MIRROR`` (or the
``mirror`` argument) replaces the official addresses by
``<mirror>/<name>/<file>``, e.g. a lab server or a test server on 127.0.0.1.
Only the standard library talks HTTP.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dlrun.errors import DataError

if TYPE_CHECKING:
    import http.client

    from rich.progress import Progress

#: Folders where system packages install datasets (Debian: /usr/share/datasets).
#: They are never written to (decoded caches go to the cache folder instead).
SYSTEM_DIRS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
TIMEOUT = 30.0
CHUNK = 1 << 16
#: Most bytes one downloaded file may have (the largest real one, Fashion-MNIST's
#: training images, is 26 MB): an endless response stops here instead of filling the disk.
MAX_DOWNLOAD_BYTES = 256 << 20
USER_AGENT = "dlrun/0.1 (+https://github.com; dataset download)"


@dataclass(frozen=True)
class Remote:
    """Where a dataset's files are published and their published checksums.

    ``checksums`` maps each served file name (e.g. ``train-images-idx3-ubyte.gz``)
    to its hex digest under ``algorithm``; ``urls`` are base addresses tried in
    order (the official one first).
    """

    urls: tuple[str, ...]
    checksums: dict[str, str]
    algorithm: str = "md5"
    homepage: str = ""
    #: Debian package that installs the files under /usr/share/datasets.
    debian_package: str | None = None
    #: Other folder names the files may sit in (e.g. Debian's "fashion-mnist").
    aliases: tuple[str, ...] = field(default=())


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

REMOTES: dict[str, Remote] = {
    # MD5s published with torchvision's MNIST loader for the original files of
    # yann.lecun.com/exdb/mnist (which now often refuses scripted downloads; the
    # PyTorch mirror serves the identical files).
    "mnist": Remote(
        urls=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        checksums={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        homepage="http://yann.lecun.com/exdb/mnist/",
    ),
    # MD5s from the table in Zalando's README (shipped by Debian in
    # /usr/share/doc/dataset-fashion-mnist/README.md.gz). Debian recompresses
    # the files, so its .gz bytes differ; their decompressed content is the same.
    "fashion_mnist": Remote(
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        debian_package="dataset-fashion-mnist",
        aliases=("fashion-mnist",),
    ),
}


def find_file(folder: Path, name: str) -> Path | None:
    """``folder/name`` if present, else ``folder/name.gz``, else None."""
    name = name[:-3] if name.endswith(".gz") else name
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def missing_files(folder: Path, files: Sequence[str]) -> list[str]:
    """The files of ``files`` that ``folder`` holds neither raw nor gzipped."""
    return [f for f in files if find_file(folder, f) is None]


def search_folders(
    name: str, path: str | None, root: Path | None, remote: Remote | None = None
) -> list[tuple[str, Path | None]]:
    """The places :func:`locate` looks in, in order, as (label, folder) pairs.

    A place that is not configured (no ``data.path``, ``DLRUN_DATA`` unset) has
    folder None, so error messages can still list it.
    """
    root = Path.cwd() if root is None else Path(root)
    names = (name, *(remote.aliases if remote else ()))
    places: list[tuple[str, Path | None]] = []
    places.append(("data.path", Path(path).expanduser() if path else None))
    env = os.environ.get("DLRUN_DATA")
    for n in names:
        places.append((f"$DLRUN_DATA/{n}", Path(env).expanduser() / n if env else None))
    for n in names:
        places.append((f"datasets/{n}", root / "datasets" / n))
    for system in SYSTEM_DIRS:
        for n in names:
            places.append(("system", system / n))
    return places


def locate(
    name: str,
    files: list[str],
    path: str | None = None,
    root: Path | None = None,
    *,
    download: bool = True,
    mirror: str | None = None,
    remote: Remote | None = None,
    progress: bool = True,
) -> Path:
    """The first folder holding all ``files`` of dataset ``name`` (each as ``f`` or ``f.gz``).

    A given ``path`` (the config's ``data.path``) is the only place looked in:
    DataError naming it if it is missing or lacks a file. Otherwise looks in
    ``$DLRUN_DATA/<name>/``, ``<root>/datasets/<name>/`` and
    ``/usr/share/datasets/<name>/``; if none has them all and ``download`` is true, fetches the missing ones into
    ``<root>/datasets/<name>/`` from ``mirror`` / ``$DLRUN_MIRROR`` /
    the official address of ``remote`` (default: the known one for ``name``).
    Raises :class:`DataError` listing every place looked at and how to provide
    the files when they cannot be found or fetched.
    """
    root = Path.cwd() if root is None else Path(root)
    remote = remote if remote is not None else REMOTES.get(name)
    if path:
        return given_folder(name, files, path)
    places = search_folders(name, path, root, remote)
    for _, folder in places:
        if folder is not None and folder.is_dir() and not missing_files(folder, files):
            return folder

    failures: list[str] = []
    if download and remote is not None:
        target = root / "datasets" / name
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            failures.append(f"cannot create {target}: {e}")
        else:
            bases = _base_urls(name, remote, mirror)
            for f in missing_files(target, files):
                served = f if f.endswith(".gz") else f"{f}.gz"
                if not _fetch_from_any(bases, served, target, remote, progress, failures):
                    break
            else:
                return target
    raise DataError(
        _not_found_message(name, files, places, download, remote, failures),
        hint=_how_to_provide(name, remote),
    )


def given_folder(name: str, files: Sequence[str], path: str) -> Path:
    """The folder ``data.path`` names, if it holds every file; else DataError naming it."""
    folder = Path(path).expanduser()
    shown = f"{path}" if folder.is_absolute() else f"{path} ({folder.absolute()})"
    hint = (
        "put the files there, or fix data.path; without data.path dlrun looks in "
        f"$DLRUN_DATA/{name}/, datasets/{name}/ and /usr/share/datasets/, then downloads"
    )
    if not folder.exists():
        raise DataError(f"dataset '{name}': data.path {shown} does not exist", hint=hint)
    if not folder.is_dir():
        raise DataError(f"dataset '{name}': data.path {shown} is not a folder", hint=hint)
    missing = missing_files(folder, files)
    if missing:
        raise DataError(
            f"dataset '{name}': data.path {shown} lacks {', '.join(missing)} (each may end in .gz)",
            hint=hint,
        )
    return folder


def _base_urls(name: str, remote: Remote, mirror: str | None) -> list[str]:
    mirror = mirror or os.environ.get("DLRUN_MIRROR")
    if mirror:
        return [f"{mirror.rstrip('/')}/{name}/"]
    return [u if u.endswith("/") else f"{u}/" for u in remote.urls]


def _fetch_from_any(
    bases: list[str],
    served: str,
    target: Path,
    remote: Remote,
    progress: bool,
    failures: list[str],
) -> bool:
    """Download ``served`` from the first base URL that delivers it intact."""
    expected = remote.checksums.get(served)
    if expected is None:
        failures.append(f"no published {remote.algorithm} checksum for {served}; not downloaded")
        return False
    for base in bases:
        url = base + served
        try:
            download_file(url, target / served, expected, remote.algorithm, progress=progress)
            return True
        except DataError as e:
            failures.append(e.message)
    return False


def download_file(
    url: str,
    dest: Path,
    checksum: str,
    algorithm: str = "md5",
    *,
    progress: bool = True,
    max_bytes: int | None = None,
) -> Path:
    """Stream ``url`` into ``dest``, verified against ``checksum`` before it appears.

    The bytes go into a temporary file in ``dest``'s folder, hashed on the way;
    only a complete download with the expected digest is renamed to ``dest``
    (``os.replace``). Anything else (connection refused or cut, HTTP error,
    short body, more than ``max_bytes`` (default ``MAX_DOWNLOAD_BYTES``) announced
    or received, wrong digest, Ctrl-C) removes the temporary file and raises
    :class:`DataError` (KeyboardInterrupt is re-raised as is).
    """
    import http.client  # the network stack only when downloading (2-3 MiB in every run)
    import urllib.error
    import urllib.request

    dest = Path(dest)
    limit = _Limit(url, MAX_DOWNLOAD_BYTES if max_bytes is None else max_bytes)
    digest = hashlib.new(algorithm)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > limit.max_bytes:
                    raise limit.exceeded(f"refused: it announces {total:,} bytes, more than")
                received = _stream(response, out, digest, total, dest.name, progress, limit)
            if total is not None and received != total:
                raise DataError(f"download of {url} was cut: {received} of {total} bytes received")
            out.flush()
            os.fsync(out.fileno())
        got = digest.hexdigest()
        if got != checksum.lower():
            raise DataError(
                f"download of {url} has {algorithm} {got}, expected the published {checksum}; "
                "the file was discarded"
            )
        os.chmod(tmp, 0o644)  # mkstemp makes 0600
        os.replace(tmp, dest)
        return dest
    except DataError:
        _remove(tmp)
        raise
    except urllib.error.HTTPError as e:
        _remove(tmp)
        raise DataError(f"download of {url} failed: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        _remove(tmp)
        raise DataError(f"download of {url} failed: {e.reason}") from None
    except (OSError, ValueError, http.client.HTTPException) as e:
        # IncompleteRead (connection cut), a reset connection, a timeout, a full disk
        _remove(tmp)
        raise DataError(f"download of {url} failed: {type(e).__name__}: {e}") from None
    except BaseException:
        _remove(tmp)
        raise


@dataclass(frozen=True)
class _Limit:
    """The most bytes the download of ``url`` may write."""

    url: str
    max_bytes: int

    def exceeded(self, what: str) -> DataError:
        """DataError: the download of ``url`` ``what`` the limit ..."""
        return DataError(
            f"download of {self.url} {what} the limit of {self.max_bytes:,} bytes per file; "
            "nothing was kept",
            hint="check the address ($DLRUN_MIRROR); the real files are far smaller",
        )


def _stream(
    response: http.client.HTTPResponse,
    out: BinaryIO,
    digest: hashlib._Hash,
    total: int | None,
    label: str,
    progress: bool,
    limit: _Limit,
) -> int:
    """Copy the response body into ``out`` and ``digest``; return the byte count.
    DataError as soon as the body grows past ``limit``."""
    received = 0
    bar = _progress_bar() if progress else None
    with bar if bar is not None else contextlib.nullcontext():
        task = bar.add_task(label, total=total) if bar is not None else None
        while chunk := response.read(CHUNK):
            if received + len(chunk) > limit.max_bytes:
                raise limit.exceeded("stopped: the response went on past")
            out.write(chunk)
            digest.update(chunk)
            received += len(chunk)
            if bar is not None:
                bar.update(task, advance=len(chunk))
    return received


def _progress_bar() -> Progress:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


def _not_found_message(
    name: str,
    files: Sequence[str],
    places: list[tuple[str, Path | None]],
    download: bool,
    remote: Remote | None,
    failures: list[str],
) -> str:
    lines = [f"dataset '{name}': no folder holds all of {', '.join(files)} (each may end in .gz)"]
    lines.append("looked in:")
    for label, folder in places:
        if folder is None:
            why = "not set" if label == "data.path" else "DLRUN_DATA not set"
            lines.append(f"  - {label}: {why}")
            continue
        if not folder.is_dir():
            state = "no such folder"
        else:
            state = f"missing {', '.join(missing_files(folder, files))}"
        lines.append(f"  - {folder} ({label}): {state}")
    if not download:
        lines.append("download is off (data.download: false)")
    elif remote is None:
        lines.append(f"no download address is known for '{name}'")
    elif failures:
        lines.append("download failed:")
        lines.extend(f"  - {failure}" for failure in failures)
    return "\n".join(lines)


def _how_to_provide(name: str, remote: Remote | None) -> str:
    text = (
        "put the files (gzip or not) in one of these folders, or set data.path: <folder>, "
        f"or DLRUN_DATA=<dir> with the files in <dir>/{name}/; "
        f"DLRUN_MIRROR=<url> downloads from <url>/{name}/<file>.gz"
    )
    if remote is not None and remote.debian_package:
        folder = SYSTEM_DIRS[0] / (remote.aliases or (name,))[0]
        text += (
            f"; on Debian/Ubuntu: sudo apt-get install {remote.debian_package} "
            f"(installs them in {folder}/)"
        )
    if remote is not None and remote.homepage:
        text += f"; official source: {remote.homepage}"
    return text
