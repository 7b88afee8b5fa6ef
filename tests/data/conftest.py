"""Fixtures for the file datasets: small MNIST-like IDX files and a local HTTP server.

No test touches the network: downloads are served by ``http.server`` on
127.0.0.1 from a temporary folder, in a thread started by :func:`http_server`.
"""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dlrun.data import sources
from dlrun.data.idx import write_idx

FILES = list(sources.MNIST_FILES)


def mnist_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random 28x28 uint8 images and labels; pixel [0, 0] holds ``i % 256``
    and the label is ``i % 10``, so every example can be traced after shuffling."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n) % 256
    labels = (np.arange(n) % 10).astype(np.uint8)
    return images, labels


@dataclass
class FakeMnist:
    folder: Path
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    paths: dict[str, Path] = field(default_factory=dict)


def write_mnist_like(
    folder: Path, n_train: int = 60, n_test: int = 20, gz: bool = True
) -> FakeMnist:
    """Write the four MNIST files (``.gz`` or raw) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = mnist_like(n_train, seed=1)
    test_x, test_y = mnist_like(n_test, seed=2)
    fake = FakeMnist(folder, train_x, train_y, test_x, test_y)
    for name, array in zip(FILES, (train_x, train_y, test_x, test_y), strict=True):
        path = folder / (f"{name}.gz" if gz else name)
        write_idx(path, array)
        fake.paths[name] = path
    return fake


@pytest.fixture
def idx_writer(tmp_path: Path):
    """``idx_writer(folder, n_train=60, n_test=20, gz=True) -> FakeMnist``."""
    return write_mnist_like


@pytest.fixture
def isolated_data_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The test sees none of the developer's DLRUN_* settings, and a fake (empty)
    system dataset folder instead of /usr/share/datasets."""
    for var in ("DLRUN_DATA", "DLRUN_MIRROR", "DLRUN_CACHE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (tmp_path / "usr-share-datasets",))


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files; paths in ``server.cut`` get half their body, then the socket closes."""

    def do_GET(self) -> None:
        if self.path in self.server.cut:  # type: ignore[attr-defined]
            local = Path(self.translate_path(self.path))
            body = local.read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class LocalServer:
    """A file server on 127.0.0.1: put files under ``root``, fetch from ``url``."""

    root: Path
    url: str
    cut: set[str]
    requests: list[str]


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[LocalServer]:
    root = tmp_path / "served"
    root.mkdir()

    def handler(*args, **kwargs):
        return _Handler(*args, directory=str(root), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.cut = set()  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield LocalServer(root, f"http://{host}:{port}", server.cut, server.requests)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dead_url() -> str:
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
