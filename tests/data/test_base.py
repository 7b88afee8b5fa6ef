"""What a run keeps of its data for the figures."""

from __future__ import annotations

import numpy as np

from dlrun.data.base import Split, Splits


def splits(x: np.ndarray) -> Splits:
    y = np.arange(len(x))
    return Splits(Split(x, y), Split(x[:5], y[:5]), Split(x[:7], y[:7]), "classification", 3)


def test_for_figures_keeps_a_small_copy_of_the_training_inputs():
    points = splits(np.random.default_rng(0).standard_normal((5000, 2)))
    kept = points.for_figures()
    assert len(kept.train) == 2000 and kept.val is None and kept.test is points.test
    assert not np.shares_memory(kept.train.x, points.train.x)  # the full set can be freed
    np.testing.assert_array_equal(kept.train.y, np.arange(2000))
    images = splits(np.zeros((5000, 1, 28, 28), dtype=np.uint8)).for_figures()
    assert len(images.train) == 256 * 1024 // 784  # a byte budget for large inputs
    big = splits(np.zeros((500, 3, 64, 64), dtype=np.float32)).for_figures()
    assert len(big.train) == 64  # but never fewer than 64 rows
    few = splits(np.zeros((10, 2))).for_figures()
    assert len(few.train) == 10
