"""MNIST and Fashion-MNIST: 28x28 grey images in IDX files, found or fetched.

Both come as four files, gzip or not::

    train-images-idx3-ubyte   (60000, 28, 28) uint8    train-labels-idx1-ubyte   (60000,) uint8
    t10k-images-idx3-ubyte    (10000, 28, 28) uint8    t10k-labels-idx1-ubyte    (10000,) uint8

The folder is found by :func:`dlrun.data.sources.locate` (``data.path``,
``$DLRUN_DATA``, ``datasets/``, ``/usr/share/datasets``, else a verified
download). The official test file is the test split, so ``test_fraction``
does not apply; the validation split is ``val_fraction`` of the training file
(default 1/12: 5,000 of 60,000), drawn with the run's random stream.

    x: float32 (N, 1, 28, 28), pixel / 255 in [0, 1]   (standardized: (x - mean) / std
       with the mean and std of the train split, applied to every split)
    y: int64 (N,) class labels 0..9

Decoded arrays are cached as ``.npy`` next to the files (or, for a read-only or
system folder, in ``$DLRUN_CACHE/<name>/`` or ``<root>/datasets/.cache/<name>/``)
and memory-mapped, so only the first run pays for gzip decoding.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import ClassVar

import numpy as np
from pydantic import Field, field_validator

from dlrun.config.registry import datasets
from dlrun.data import sources
from dlrun.data.base import DataConfig, Dataset, Split, Splits
from dlrun.data.idx import copy_rows, load_idx_cached
from dlrun.errors import DataError

#: split -> (image file, label file)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class ImageFilesConfig(DataConfig):
    """Settings of an MNIST-style dataset (four IDX files)."""

    path: str | None = Field(None, description="folder holding the four files (gzip or not)")
    n_train: int | None = Field(
        None,
        ge=1,
        description="use only this many images of the training file, drawn with the rng, "
        "before val_fraction of them is held out (for quick runs)",
    )
    standardize: bool = Field(False, description="(x - mean) / std of the train split")
    val_fraction: float = Field(1 / 12, ge=0.0, lt=1.0, description="share of train held out")
    test_fraction: float | None = Field(
        None, description="not used: the official 10,000-image test file is the test split"
    )
    download: bool = Field(True, description="fetch the files if no folder holds them")

    @field_validator("test_fraction")
    @classmethod
    def _no_test_fraction(cls, value: float | None) -> None:
        if value is not None:
            raise ValueError(
                f"test_fraction={value} cannot be used with an MNIST-style dataset: the "
                "official test file (10,000 images) is the test split; remove test_fraction "
                "(val_fraction sets the validation share of the training file)"
            )
        return None


class ImageFiles(Dataset):
    """Base of the MNIST-style datasets: four IDX files, 28x28 grey images, 10 classes."""

    Config: ClassVar[type[DataConfig]] = ImageFilesConfig
    class_names: ClassVar[list[str]] = []
    n_classes: ClassVar[int] = 10

    def folder(self) -> Path:
        """The folder holding the four files (found, or downloaded into datasets/)."""
        c = self.config
        files = [f for pair in FILES.values() for f in pair]
        return sources.locate(c.name, files, c.path, self.root, download=c.download)

    def raw(self, folder: Path | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """split -> (images uint8 (N, 28, 28), labels uint8 (N,)), memory-mapped if cached,
        read from ``folder`` (default: :meth:`folder`)."""
        folder = self.folder() if folder is None else folder
        cache = cache_folder(folder, self.config.name, self.root)
        out = {}
        for split, (image_file, label_file) in FILES.items():
            paths = [sources.find_file(folder, f) for f in (image_file, label_file)]
            images, labels = (load_idx_cached(p, cache) for p in paths)
            check_pair(images, labels, paths[0], paths[1], self.n_classes)
            out[split] = (images, labels)
        return out

    def load(self, rng: np.random.Generator) -> Splits:
        c = self.config
        folder = self.folder()
        raw = self.raw(folder)
        train_images, train_labels = raw["train"]
        n = len(train_images)
        if c.n_train is not None and c.n_train > n:
            raise DataError(
                f"data.n_train={c.n_train} but the training file of '{c.name}' has only {n} images"
            )
        order = rng.permutation(n)[: c.n_train]
        n_val = int(round(len(order) * c.val_fraction))
        # sorted indices read the memory-mapped file front to back
        val_idx, train_idx = np.sort(order[:n_val]), np.sort(order[n_val:])

        def split(images: np.ndarray, labels: np.ndarray, idx: np.ndarray | None) -> Split:
            # pixels stay uint8 (a quarter of the memory); batches become pixel / 255. A
            # whole file (the test split) stays as it is: memory-mapped from the cache, its
            # pages are read only when it is evaluated, after training.
            pixels = images if idx is None else copy_rows(images, idx)
            x = pixels.reshape(-1, 1, *images.shape[1:])
            y = np.asarray(labels if idx is None else labels[idx], dtype=np.int64)
            return Split(x, y, scale=1.0 / 255.0)

        train = split(train_images, train_labels, train_idx)
        val = split(train_images, train_labels, val_idx) if n_val else None
        test = split(*raw["test"], None)
        if c.standardize:
            # (pixel / 255 - mean) / std, with mean and std of the training pixels / 255
            mean = float(train.x.mean(dtype=np.float64)) / 255.0
            std = float(train.x.std(dtype=np.float64)) / 255.0 or 1.0
            for part in (train, val, test):
                if part is not None:
                    part.scale, part.offset = 1.0 / (255.0 * std), -mean / std
        return Splits(
            train=train,
            val=val,
            test=test,
            task="classification",
            n_classes=self.n_classes,
            class_names=list(self.class_names),
            source=str(folder.resolve()),
        )


def check_pair(
    images: np.ndarray, labels: np.ndarray, image_path: Path, label_path: Path, n_classes: int
) -> None:
    """DataError unless images are (N, H, W) uint8 and labels (N,) in 0..n_classes-1."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{image_path} holds {images.dtype} of shape {images.shape}; "
            "expected uint8 images (N, height, width)"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(
            f"{label_path} holds {labels.dtype} of shape {labels.shape}; expected uint8 labels (N,)"
        )
    if len(images) != len(labels):
        raise DataError(
            f"{image_path} has {len(images)} images but {label_path} has {len(labels)} labels"
        )
    if len(labels) and int(labels.max()) >= n_classes:
        raise DataError(f"{label_path} has label {int(labels.max())}; expected 0..{n_classes - 1}")


def cache_folder(folder: Path, name: str, root: Path | None) -> Path:
    """Where the decoded ``.npy`` copies of the files in ``folder`` go.

    Next to the files when that folder can be written and is not a system
    folder (``/usr/share/datasets``, owned by the package manager); otherwise
    ``$DLRUN_CACHE/<name>/`` or ``<root>/datasets/.cache/<name>/``.
    """
    resolved = folder.resolve()
    system = any(resolved.is_relative_to(s.resolve()) for s in sources.SYSTEM_DIRS)
    if not system and _writable(folder):
        return folder
    env = os.environ.get("DLRUN_CACHE")
    base = (
        Path(env).expanduser()
        if env
        else (Path.cwd() if root is None else root) / "datasets" / ".cache"
    )
    return base / name


def _writable(folder: Path) -> bool:
    """True if a file can really be created in ``folder`` (os.access lies for root)."""
    try:
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".dlrun-write-test-")
    except OSError:
        return False
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(tmp)
    return True


@datasets.register("mnist")
class MNIST(ImageFiles):
    """MNIST handwritten digits: 60,000 train / 10,000 test, 28x28 grey, 10 classes."""

    class_names: ClassVar[list[str]] = [str(d) for d in range(10)]


@datasets.register("fashion_mnist")
class FashionMNIST(ImageFiles):
    """Fashion-MNIST (Zalando): 60,000 train / 10,000 test, 28x28 grey clothing, 10 classes."""

    class_names: ClassVar[list[str]] = [
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ]
