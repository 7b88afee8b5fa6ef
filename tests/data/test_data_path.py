"""An explicit data.path is used or refused, never replaced by another folder; the
splits say which folder or file they were read from (issue 19, defect 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlrun.data.images import FashionMNIST
from dlrun.data.sequences import ImageRows, Text
from dlrun.data.sources import locate
from dlrun.data.synthetic import Moons
from dlrun.errors import DataError

from .conftest import FILES, write_mnist_like

pytestmark = pytest.mark.usefixtures("isolated_data_env")


@pytest.fixture
def system_copy(tmp_path: Path) -> Path:
    """Fashion-MNIST where Debian installs it (the test's fake /usr/share/datasets)."""
    folder = tmp_path / "usr-share-datasets" / "fashion-mnist"
    write_mnist_like(folder)
    return folder


def fashion(root: Path, **settings) -> FashionMNIST:
    return FashionMNIST(FashionMNIST.Config(name="fashion_mnist", **settings), root=root)


@pytest.mark.parametrize("download", [True, False])
def test_missing_data_path_is_an_error_naming_it(tmp_path, system_copy, download) -> None:
    given = tmp_path / "my-data"
    with pytest.raises(DataError, match=f"data.path {given} does not exist") as info:
        fashion(tmp_path, path=str(given), download=download).load(np.random.default_rng(0))
    assert "without data.path" in str(info.value)


def test_relative_data_path_is_shown_absolute(tmp_path, system_copy, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match=f"data.path nowhere \\({tmp_path / 'nowhere'}\\)"):
        locate("fashion_mnist", FILES, "nowhere", tmp_path)


def test_data_path_that_is_a_file_or_lacks_files(tmp_path, system_copy) -> None:
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        locate("fashion_mnist", FILES, str(file), tmp_path)
    partial = tmp_path / "partial"
    write_mnist_like(partial)
    for name in FILES[1:]:
        (partial / f"{name}.gz").unlink()
    with pytest.raises(DataError, match=f"lacks {', '.join(FILES[1:])}"):
        locate("fashion_mnist", FILES, str(partial), tmp_path)


def test_splits_name_the_folder_read(tmp_path, system_copy) -> None:
    rng = np.random.default_rng(0)
    assert fashion(tmp_path).load(rng).source == str(system_copy)  # found by searching
    given = tmp_path / "given"
    write_mnist_like(given)
    assert fashion(tmp_path, path=str(given)).load(rng).source == str(given)


def test_image_rows_and_text_name_their_source(tmp_path, system_copy) -> None:
    rng = np.random.default_rng(0)
    rows = ImageRows(ImageRows.Config(name="image_rows"), root=tmp_path).load(rng)
    assert rows.source == str(system_copy)
    text = tmp_path / "t.txt"
    text.write_text("hello world, " * 20)
    splits = Text(Text.Config(name="text", path=str(text), seq_len=5), root=tmp_path).load(rng)
    assert splits.source == str(text)


def test_generated_data_has_no_source() -> None:
    splits = Moons(Moons.Config(name="moons", n=40)).load(np.random.default_rng(0))
    assert splits.source is None
