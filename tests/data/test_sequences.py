"""Sequence datasets: adding, sine, text, image_rows."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
from pydantic import ValidationError

from dlrun.config.registry import datasets
from dlrun.data.base import DataConfig, Dataset, Split, Splits
from dlrun.data.sequences import Adding, ImageRows, Sine, Text, one_hot
from dlrun.errors import ConfigError, DataError


def rng(seed=0):
    return np.random.default_rng(seed)


def test_registered():
    for name in ("adding", "sine", "text", "image_rows"):
        assert name in datasets


def test_adding_problem():
    splits = Adding(Adding.Config(name="adding", n=300, length=20)).load(rng())
    x = np.concatenate([splits.train.x, splits.val.x, splits.test.x])
    y = np.concatenate([splits.train.y, splits.val.y, splits.test.y])
    assert x.shape == (300, 20, 2) and x.dtype == np.float32 and y.shape == (300, 1)
    assert splits.task == "regression" and splits.input_shape == (20, 2)
    markers = x[:, :, 1]
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :10].sum(axis=1) == 1)  # one in each half
    assert np.all((x[:, :, 0] >= 0) & (x[:, :, 0] <= 1))
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    again = Adding(Adding.Config(name="adding", n=300, length=20)).load(rng())
    np.testing.assert_array_equal(again.train.x, splits.train.x)  # seeded


@pytest.mark.parametrize("target", ["next_sequence", "next_value"])
def test_sine_targets_are_the_next_values(target):
    c = Sine.Config(name="sine", n=50, length=30, target=target, val_fraction=0, test_fraction=0)
    splits = Sine(c).load(rng())
    x, y = splits.train.x, splits.train.y
    assert x.shape == (50, 30, 1) and splits.task == "regression"
    if target == "next_sequence":
        assert y.shape == (50, 30, 1)
        np.testing.assert_array_equal(y[:, :-1], x[:, 1:])  # shifted by one step
    else:
        assert y.shape == (50, 1)
    clean = Sine(c.model_copy(update={"noise": 0.0})).load(rng()).train.x[:, :, 0]
    assert np.abs(clean).max() <= 1.0 and np.abs(clean).max() > 0.9


def test_sine_period_order_checked():
    with pytest.raises(ValidationError, match="period_min"):
        Sine.Config(name="sine", period_min=40, period_max=20)


def load_text(tmp_path, content: bytes | None, **settings):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    c = Text.Config(name="text", path=str(path), **settings)
    return Text(c).load(rng())


def test_text_next_character(tmp_path):
    text = "hello wörld, hello numba! " * 20
    s = load_text(tmp_path, text.encode(), seq_len=8, val_fraction=0, test_fraction=0)
    vocab = sorted(set(text))
    assert s.class_names == vocab and s.n_classes == len(vocab)
    x, y = s.train.x, s.train.y
    assert x.shape == (len(range(0, len(text) - 8, 8)), 8, len(vocab))
    assert x.dtype == np.float32 and np.all(x.sum(axis=-1) == 1)
    assert y.shape == x.shape[:2] and np.issubdtype(y.dtype, np.integer)
    # every sequence is a window of the text and y is x shifted by one character
    for seq_x, seq_y in zip(x, y, strict=True):
        chars = "".join(vocab[i] for i in seq_x.argmax(axis=-1))
        start = text.index(chars)
        assert "".join(vocab[i] for i in seq_y) == text[start + 1 : start + 9]


def test_a_missing_relative_text_path_says_where_it_was_read_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Text.Config(name="text", path="datasets/text/course.txt")
    with pytest.raises(DataError, match="relative data.path is read from the current") as info:
        Text(config).load(np.random.default_rng(0))
    assert str(tmp_path) in info.value.message and "absolute path" in info.value.hint
    config = Text.Config(name="text", path=str(tmp_path / "none.txt"))
    with pytest.raises(DataError, match="not found") as info:
        Text(config).load(np.random.default_rng(0))
    assert info.value.hint is None


def test_text_errors_name_the_file(tmp_path):
    with pytest.raises(DataError, match="not found.*corpus.txt"):
        load_text(tmp_path, None)
    with pytest.raises(DataError, match="corpus.txt is empty"):
        load_text(tmp_path, b"")
    with pytest.raises(DataError, match="corpus.txt is not UTF-8: byte 3"):
        load_text(tmp_path, b"abc\xff\xfe")
    with pytest.raises(DataError, match="seq_len=50 needs at least 51"):
        load_text(tmp_path, b"short text", seq_len=50)


def test_one_hot():
    np.testing.assert_array_equal(one_hot(np.array([[2, 0]]), 3), [[[0, 0, 1], [1, 0, 0]]])


class FakeImages(Dataset):
    """A registered-image-dataset stand-in: (N, 1, 28, 28) in [0, 1], 10 classes."""

    class Config(DataConfig):
        path: str | None = None
        n_train: int | None = None
        val_fraction: float = 0.1
        download: bool = True
        test_fraction: float | None = None

    seen: ClassVar[list] = []

    def load(self, rng):
        FakeImages.seen.append((self.config, self.root))
        n = self.config.n_train or 40
        x = rng.uniform(0, 1, size=(n, 1, 28, 28)).astype(np.float32)
        x[:, 0, :, 0] = np.arange(28)  # column 0 holds the row index
        y = np.arange(n) % 10
        test = Split(x[:5].copy(), y[:5].copy())
        return Splits(Split(x, y), None, test, "classification", 10, [str(i) for i in range(10)])


@pytest.fixture
def fake_images(monkeypatch):
    datasets.names()  # load the registry before adding to it
    monkeypatch.setitem(datasets._items, "fake_images", FakeImages)
    FakeImages.seen.clear()
    return FakeImages


def test_image_rows_reads_images_row_by_row(fake_images, tmp_path):
    c = ImageRows.Config(name="image_rows", base="fake_images", path="/data/x", n_train=12)
    splits = ImageRows(c, root=tmp_path).load(rng())
    config, root = fake_images.seen[0]
    assert (config.path, config.n_train, config.val_fraction) == ("/data/x", 12, c.val_fraction)
    assert root == tmp_path
    x = splits.train.x
    assert x.shape == (12, 28, 28) and splits.input_shape == (28, 28)
    np.testing.assert_array_equal(x[:, :, 0], np.broadcast_to(np.arange(28), (12, 28)))
    assert splits.test.x.shape == (5, 28, 28) and splits.n_classes == 10
    assert splits.class_names == [str(i) for i in range(10)]


def test_image_rows_unknown_base():
    c = ImageRows.Config(name="image_rows", base="fashon_mnist")
    with pytest.raises(ConfigError, match="did you mean 'fashion_mnist'"):
        ImageRows(c).load(rng())


def test_image_rows_needs_images(monkeypatch):
    class Flat(FakeImages):
        def load(self, rng):
            return Splits(Split(np.zeros((4, 3)), np.zeros(4)), None, None, "classification", 2)

    datasets.names()
    monkeypatch.setitem(datasets._items, "flat", Flat)
    with pytest.raises(DataError, match="needs images"):
        ImageRows(ImageRows.Config(name="image_rows", base="flat")).load(rng())


class NoPath(Dataset):
    class Config(DataConfig):
        pass


def test_image_rows_setting_the_base_lacks(monkeypatch):
    datasets.names()
    monkeypatch.setitem(datasets._items, "nopath", NoPath)
    c = ImageRows.Config(name="image_rows", base="nopath", path="somewhere")
    with pytest.raises(ConfigError, match="no 'path' setting"):
        ImageRows(c).load(rng())
