"""MNIST / Fashion-MNIST datasets on small generated files (and on the real files if installed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.data import idx, images, sources
from dlrun.data.images import MNIST, FashionMNIST
from dlrun.errors import DataError

from .conftest import md5_of, write_mnist_like

pytestmark = pytest.mark.usefixtures("isolated_data_env")


def make(cls=MNIST, root: Path | None = None, **settings) -> images.ImageFiles:
    name = cls.registered_name
    return cls(cls.Config(name=name, **settings), root=root)


@pytest.fixture
def project(tmp_path: Path):
    """A project root whose datasets/mnist holds 60 train and 20 test images."""
    fake = write_mnist_like(tmp_path / "datasets" / "mnist", n_train=60, n_test=20)
    return tmp_path, fake


def trace(split) -> np.ndarray:
    """The original index (mod 256) stored in pixel [0, 0] of each image."""
    return np.rint(split.inputs()[:, 0, 0, 0] * 255).astype(np.int64)


def test_shapes_types_and_values(project) -> None:
    root, fake = project
    s = make(root=root).load(np.random.default_rng(0))
    assert s.train.x.shape == (55, 1, 28, 28) and s.val.x.shape == (5, 1, 28, 28)
    assert s.test.x.shape == (20, 1, 28, 28)
    for part in (s.train, s.val, s.test):
        # stored as uint8 pixels (a quarter of the memory), seen by the network as pixel / 255
        assert part.x.dtype == np.uint8 and part.y.dtype == np.int64
        x = part.inputs()
        assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0
        assert x.flags.writeable and x.flags.c_contiguous
        np.testing.assert_allclose(
            part.take(np.array([1, 0]), np.float64)[1], part.x[0] / 255.0, rtol=1e-12
        )
    # val and train are disjoint and together the whole training file, labels kept with images
    ids = np.concatenate([trace(s.train), trace(s.val)])
    assert sorted(ids) == list(range(60))
    np.testing.assert_array_equal(s.train.y, trace(s.train) % 10)
    np.testing.assert_allclose(s.test.inputs()[:, 0], fake.test_x / np.float32(255), rtol=1e-6)
    np.testing.assert_array_equal(s.test.y, fake.test_y)
    assert s.task == "classification" and s.n_classes == 10 and s.input_shape == (1, 28, 28)


def test_same_seed_same_split_other_seed_other_split(project) -> None:
    root, _ = project
    a = make(root=root).load(np.random.default_rng(1))
    b = make(root=root).load(np.random.default_rng(1))
    c = make(root=root).load(np.random.default_rng(2))
    np.testing.assert_array_equal(trace(a.val), trace(b.val))
    assert set(trace(a.val)) != set(trace(c.val))


def test_n_train_subset(project) -> None:
    root, _ = project
    s = make(root=root, n_train=24).load(np.random.default_rng(0))
    assert len(s.train) + len(s.val) == 24 and len(s.val) == 2
    assert len(s.test) == 20
    with pytest.raises(DataError, match="n_train=61.*only 60"):
        make(root=root, n_train=61).load(np.random.default_rng(0))


def test_no_val_split(project) -> None:
    root, _ = project
    s = make(root=root, val_fraction=0.0).load(np.random.default_rng(0))
    assert s.val is None and len(s.train) == 60


def test_standardize_uses_train_statistics(project) -> None:
    root, _ = project
    plain = make(root=root).load(np.random.default_rng(0))
    s = make(root=root, standardize=True).load(np.random.default_rng(0))
    train = s.train.inputs(np.float64)
    assert abs(train.mean()) < 1e-9 and abs(train.std() - 1) < 1e-9
    raw = plain.train.inputs(np.float64)
    mean, std = raw.mean(), raw.std()
    np.testing.assert_allclose(
        s.test.inputs(np.float64), (plain.test.inputs(np.float64) - mean) / std, atol=1e-9
    )


def test_test_fraction_is_rejected() -> None:
    with pytest.raises(ValidationError, match="official test file"):
        MNIST.Config(name="mnist", test_fraction=0.2)
    assert MNIST.Config(name="mnist").val_fraction == pytest.approx(1 / 12)


def test_fashion_class_names(tmp_path: Path) -> None:
    write_mnist_like(tmp_path / "datasets" / "fashion_mnist")
    s = make(FashionMNIST, root=tmp_path).load(np.random.default_rng(0))
    assert len(s.class_names) == 10 and s.class_names[9] == "Ankle boot"


def test_registered() -> None:
    from dlrun.config.registry import datasets

    assert datasets.get("mnist") is MNIST and datasets.get("fashion_mnist") is FashionMNIST


def test_bad_labels_are_data_error(tmp_path: Path) -> None:
    fake = write_mnist_like(tmp_path / "datasets" / "mnist")
    idx.write_idx(fake.paths["t10k-labels-idx1-ubyte"], np.full(20, 11, dtype=np.uint8))
    with pytest.raises(DataError, match="label 11"):
        make(root=tmp_path).load(np.random.default_rng(0))
    idx.write_idx(fake.paths["t10k-labels-idx1-ubyte"], np.zeros(19, dtype=np.uint8))
    with pytest.raises(DataError, match="20 images but .* 19 labels"):
        make(root=tmp_path).load(np.random.default_rng(0))


def test_missing_files_no_download(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="download is off"):
        make(root=tmp_path, download=False).load(np.random.default_rng(0))


def test_downloads_when_missing(tmp_path: Path, http_server, monkeypatch) -> None:
    fake = write_mnist_like(http_server.root / "mnist")
    remote = sources.Remote(urls=(http_server.url + "/mnist/",), checksums={})
    remote.checksums.update({p.name: md5_of(p) for p in fake.paths.values()})
    monkeypatch.setitem(sources.REMOTES, "mnist", remote)
    s = make(root=tmp_path / "project").load(np.random.default_rng(0))
    assert len(s.train) == 55
    assert (tmp_path / "project" / "datasets" / "mnist" / "t10k-images-idx3-ubyte.gz").is_file()


class Reads:
    def __init__(self, monkeypatch) -> None:
        self.calls = 0
        real = idx.read_idx

        def counting(path):
            self.calls += 1
            return real(path)

        monkeypatch.setattr(idx, "read_idx", counting)


def test_cache_next_to_files_reused(project, monkeypatch) -> None:
    root, _ = project
    reads = Reads(monkeypatch)
    first = make(root=root).load(np.random.default_rng(0))
    assert reads.calls == 4
    folder = root / "datasets" / "mnist"
    assert len(list(folder.glob("*.npy"))) == 4
    second = make(root=root).load(np.random.default_rng(0))
    assert reads.calls == 4, "second run decoded the IDX files again"
    np.testing.assert_array_equal(first.train.x, second.train.x)
    # the training split is a shuffled copy in memory; the test split (a whole file) stays
    # mapped from the cache, read only when it is evaluated
    assert not isinstance(second.train.x, np.memmap)
    assert isinstance(second.test.x, np.memmap)
    np.testing.assert_array_equal(first.test.x, second.test.x)


def test_stale_cache_rebuilt(project, monkeypatch) -> None:
    root, fake = project
    make(root=root).load(np.random.default_rng(0))
    new_labels = np.full(20, 3, dtype=np.uint8)
    path = fake.paths["t10k-labels-idx1-ubyte"]
    idx.write_idx(path, new_labels)
    later = time.time_ns() + 10**9
    os.utime(path, ns=(later, later))
    reads = Reads(monkeypatch)
    s = make(root=root).load(np.random.default_rng(0))
    assert reads.calls == 1
    assert (s.test.y == 3).all()


def test_system_folder_is_not_written(tmp_path: Path, monkeypatch) -> None:
    """A read-only (system) folder keeps its files; the cache goes to DLRUN_CACHE."""
    system = tmp_path / "usr-share-datasets"
    fake = write_mnist_like(system / "fashion-mnist")
    before = sorted(p.name for p in fake.folder.iterdir())
    monkeypatch.setenv("DLRUN_CACHE", str(tmp_path / "cache"))
    reads = Reads(monkeypatch)
    make(FashionMNIST, root=tmp_path / "project").load(np.random.default_rng(0))
    make(FashionMNIST, root=tmp_path / "project").load(np.random.default_rng(0))
    assert reads.calls == 4
    assert sorted(p.name for p in fake.folder.iterdir()) == before
    assert len(list((tmp_path / "cache" / "fashion_mnist").glob("*.npy"))) == 4


def test_cache_default_under_project(tmp_path: Path) -> None:
    system = tmp_path / "usr-share-datasets"
    write_mnist_like(system / "fashion-mnist")
    make(FashionMNIST, root=tmp_path).load(np.random.default_rng(0))
    assert len(list((tmp_path / "datasets" / ".cache" / "fashion_mnist").glob("*.npy"))) == 4


DEBIAN = Path("/usr/share/datasets/fashion-mnist")


def test_real_fashion_mnist(tmp_path: Path, monkeypatch) -> None:
    """The files of the Debian package (CI: apt-get install -y dataset-fashion-mnist)."""
    if not DEBIAN.is_dir():
        pytest.skip("apt-get install dataset-fashion-mnist to run this test")
    monkeypatch.setattr(sources, "SYSTEM_DIRS", (DEBIAN.parent,))
    s = make(FashionMNIST, root=tmp_path, download=False).load(np.random.default_rng(0))
    assert len(s.train) == 55000 and len(s.val) == 5000 and len(s.test) == 10000
    assert s.train.x.shape[1:] == (1, 28, 28)
    for part in (s.train, s.val, s.test):
        assert set(np.unique(part.y)) == set(range(10))
        assert part.inputs().min() == 0.0 and part.inputs().max() == 1.0
    # Fashion-MNIST is balanced: exactly 1,000 test images per class
    np.testing.assert_array_equal(np.bincount(s.test.y), np.full(10, 1000))
    assert len(list((tmp_path / "datasets" / ".cache" / "fashion_mnist").glob("*.npy"))) == 4
