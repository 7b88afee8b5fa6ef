"""A download may not write more than a cap per file: an announced size above it is
refused up front, an endless body is cut there, and nothing is kept (issue 19, defect 10).

Served by a local HTTP server on 127.0.0.1 (no network)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dlrun.data import sources
from dlrun.data.sources import Remote, download_file, locate
from dlrun.errors import DataError

from .conftest import FILES

pytestmark = pytest.mark.usefixtures("isolated_data_env")

CAP = 1 << 20


class _Endless(http.server.BaseHTTPRequestHandler):
    """A path with ``endless``: 128 MiB of zeros (endless enough: 128 times the cap the
    tests set), no Content-Length. Any other: a Content-Length of 1 TB, then 64 KiB.
    Counts the bytes sent."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        endless = "endless" in self.path
        if not endless:
            self.send_header("Content-Length", str(10**12))
        self.end_headers()
        chunk = b"\0" * 65536
        try:
            for _ in range(2048 if endless else 1):
                self.wfile.write(chunk)
                self.server.sent += len(chunk)  # type: ignore[attr-defined]
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def endless_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Endless)
    server.sent = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def url_of(server: http.server.ThreadingHTTPServer, path: str) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}{path}"


def test_endless_body_is_cut_at_the_cap(tmp_path: Path, endless_server) -> None:
    url = url_of(endless_server, "/endless")
    with pytest.raises(DataError) as info:
        download_file(url, tmp_path / "f.gz", "0" * 32, progress=False, max_bytes=CAP)
    text = str(info.value)
    assert url in text and f"limit of {CAP:,} bytes" in text and "went on past" in text
    assert list(tmp_path.iterdir()) == []  # no partial file
    assert endless_server.sent < 64 * CAP  # it stopped reading soon after the cap


def test_announced_size_above_the_cap_is_refused_up_front(tmp_path: Path, endless_server) -> None:
    url = url_of(endless_server, "/announced")
    with pytest.raises(DataError, match="announces 1,000,000,000,000 bytes") as info:
        download_file(url, tmp_path / "f.gz", "0" * 32, progress=False, max_bytes=CAP)
    assert url in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_default_cap_applies_to_dataset_downloads(
    tmp_path: Path, endless_server, monkeypatch
) -> None:
    monkeypatch.setattr(sources, "MAX_DOWNLOAD_BYTES", CAP)
    checksums = {f"{f}.gz": "0" * 32 for f in FILES}
    remote = Remote(urls=(url_of(endless_server, "/endless/"),), checksums=checksums)
    with pytest.raises(DataError, match=f"limit of {CAP:,} bytes per file"):
        locate("mnist", FILES, None, tmp_path, remote=remote, progress=False)
    assert list((tmp_path / "datasets" / "mnist").iterdir()) == []


def test_the_cap_is_far_above_the_real_files() -> None:
    assert sources.MAX_DOWNLOAD_BYTES >= 100 * 2**20  # Fashion-MNIST's largest file: 26 MB
