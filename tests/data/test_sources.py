"""Finding dataset folders and downloading from a local HTTP server (no network)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from dlrun.data import sources
from dlrun.data.sources import Remote, locate
from dlrun.errors import DataError

from .conftest import FILES, md5_of, write_mnist_like

pytestmark = pytest.mark.usefixtures("isolated_data_env")


def test_finds_raw_or_gz_files(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "datasets" / "mnist", gz=False)
    assert locate("mnist", FILES, None, tmp_path) == tmp_path / "datasets" / "mnist"
    assert sources.find_file(tmp_path / "datasets" / "mnist", FILES[0]).name == FILES[0]


def test_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given = tmp_path / "given"
    env = tmp_path / "env"
    project = tmp_path / "project"
    system = tmp_path / "system"
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (system,))
    monkeypatch.setenv("DLRUN_DATA", str(env))
    for folder in (given, env / "mnist", project / "datasets" / "mnist", system / "mnist"):
        write_mnist_like(folder)
    find = lambda path: locate("mnist", FILES, path, project, download=False)  # noqa: E731
    assert find(str(given)) == given  # data.path beats DLRUN_DATA
    assert find(None) == env / "mnist"  # DLRUN_DATA beats datasets/
    monkeypatch.delenv("DLRUN_DATA")
    assert find(None) == project / "datasets" / "mnist"  # datasets/ beats the system folder
    (project / "datasets" / "mnist" / f"{FILES[1]}.gz").unlink()  # incomplete: skipped
    assert find(None) == system / "mnist"


def test_incomplete_data_path_is_an_error(tmp_path: Path) -> None:
    """An explicit data.path is the only place looked in: no fallback to another folder."""
    given = tmp_path / "given"
    write_mnist_like(given)
    (given / f"{FILES[2]}.gz").unlink()
    write_mnist_like(tmp_path / "datasets" / "mnist")
    with pytest.raises(DataError, match=f"data.path {given} lacks {FILES[2]}"):
        locate("mnist", FILES, str(given), tmp_path)


def test_debian_layout_with_hyphen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Debian installs Fashion-MNIST into /usr/share/datasets/fashion-mnist/ (hyphen)."""
    system = tmp_path / "usr-share-datasets"
    write_mnist_like(system / "fashion-mnist")
    found = locate("fashion_mnist", FILES, None, tmp_path / "project", download=False)
    assert found == system / "fashion-mnist"


def serve_fake(http_server, name: str = "mnist") -> Remote:
    """Put small IDX .gz files on the server under <name>/; a Remote with their MD5s."""
    fake = write_mnist_like(http_server.root / name)
    checksums = {p.name: md5_of(p) for p in fake.paths.values()}
    return Remote(urls=("http://127.0.0.1:9/never-used/",), checksums=checksums)


def test_download_with_correct_checksum(tmp_path: Path, http_server, capsys) -> None:
    remote = serve_fake(http_server)
    root = tmp_path / "project"
    folder = locate("mnist", FILES, None, root, mirror=http_server.url, remote=remote)
    assert folder == root / "datasets" / "mnist"
    served = http_server.root / "mnist"
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{f}.gz" for f in FILES)
    for f in FILES:
        assert (folder / f"{f}.gz").read_bytes() == (served / f"{f}.gz").read_bytes()
    assert len(http_server.requests) == 4
    # found in place the second time: nothing downloaded
    assert locate("mnist", FILES, None, root, mirror=http_server.url, remote=remote) == folder
    assert len(http_server.requests) == 4


def test_mirror_from_environment_and_sha256(tmp_path: Path, http_server, monkeypatch) -> None:
    fake = write_mnist_like(http_server.root / "mnist")
    sha = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in fake.paths.values()}
    remote = Remote(urls=("http://127.0.0.1:9/",), checksums=sha, algorithm="sha256")
    monkeypatch.setenv("DLRUN_MIRROR", http_server.url + "/")
    folder = locate("mnist", FILES, None, tmp_path, remote=remote, progress=False)
    assert len(list(folder.glob("*.gz"))) == 4


def test_only_missing_files_are_downloaded(tmp_path: Path, http_server) -> None:
    remote = serve_fake(http_server)
    target = tmp_path / "datasets" / "mnist"
    target.mkdir(parents=True)
    for f in FILES[:3]:
        (target / f"{f}.gz").write_bytes((http_server.root / "mnist" / f"{f}.gz").read_bytes())
    locate("mnist", FILES, None, tmp_path, mirror=http_server.url, remote=remote)
    assert http_server.requests == [f"/mnist/{FILES[3]}.gz"]


def test_wrong_checksum_leaves_no_file(tmp_path: Path, http_server) -> None:
    remote = serve_fake(http_server)
    remote.checksums[f"{FILES[0]}.gz"] = "0" * 32
    with pytest.raises(DataError, match="expected the published 0000") as info:
        locate("mnist", FILES, None, tmp_path, mirror=http_server.url, remote=remote)
    assert "discarded" in str(info.value)
    assert list((tmp_path / "datasets" / "mnist").iterdir()) == []


def test_connection_cut_halfway_leaves_no_partial_file(tmp_path: Path, http_server) -> None:
    remote = serve_fake(http_server)
    http_server.cut.add(f"/mnist/{FILES[1]}.gz")
    with pytest.raises(DataError, match=FILES[1]):
        locate("mnist", FILES, None, tmp_path, mirror=http_server.url, remote=remote)
    left = sorted(p.name for p in (tmp_path / "datasets" / "mnist").iterdir())
    assert left == [f"{FILES[0]}.gz"]  # the complete, verified first file stays; no .part


def test_http_404_is_data_error(tmp_path: Path, http_server) -> None:
    remote = serve_fake(http_server)
    (http_server.root / "mnist" / f"{FILES[3]}.gz").unlink()
    with pytest.raises(DataError, match="HTTP 404"):
        locate("mnist", FILES, None, tmp_path, mirror=http_server.url, remote=remote)
    assert not list((tmp_path / "datasets" / "mnist").glob("*.part"))


def test_next_address_tried_after_a_failure(tmp_path: Path, http_server, dead_url) -> None:
    remote = serve_fake(http_server)
    remote = Remote(urls=(dead_url, http_server.url + "/mnist/"), checksums=remote.checksums)
    folder = locate("mnist", FILES, None, tmp_path, remote=remote, progress=False)
    assert len(list(folder.glob("*.gz"))) == 4


def test_offline_error_lists_every_place(tmp_path: Path, dead_url, monkeypatch) -> None:
    monkeypatch.setenv("DLRUN_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError) as info:
        locate("fashion_mnist", FILES, None, tmp_path, mirror=dead_url)
    text = str(info.value)
    for place in (
        tmp_path / "env" / "fashion_mnist",
        tmp_path / "datasets" / "fashion_mnist",
        tmp_path / "usr-share-datasets" / "fashion-mnist",
    ):
        assert str(place) in text
    assert "download failed" in text and dead_url in text
    assert "DLRUN_DATA" in text and "data.path" in text
    assert "apt-get install dataset-fashion-mnist" in text
    assert not list((tmp_path / "datasets" / "fashion_mnist").iterdir())


def test_download_off_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download is off"):
        locate("mnist", FILES, None, tmp_path, download=False)


def test_known_remotes_have_a_checksum_per_file() -> None:
    """Every dataset we know has a checksum for each of its four files."""
    for remote in sources.REMOTES.values():
        assert sorted(remote.checksums) == sorted(f"{f}.gz" for f in FILES)
        assert all(len(v) == 32 for v in remote.checksums.values())
