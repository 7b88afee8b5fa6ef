import numpy as np
import pytest

from dlrun.config.registry import datasets

NAMES = ["xor", "xor_noisy", "and", "or", "moons", "circles", "spirals", "blobs", "sine_regression"]


def load(name, seed=0, **settings):
    cls = datasets.get(name)
    return cls(cls.Config(name=name, **settings)).load(np.random.default_rng(seed))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_data_other_seed_other_data(name):
    a, b = load(name), load(name)
    np.testing.assert_array_equal(a.train.x, b.train.x)
    np.testing.assert_array_equal(a.train.y, b.train.y)
    if name not in ("xor", "and", "or"):
        assert not np.array_equal(a.train.x, load(name, seed=1).train.x)


def test_truth_tables():
    for name, labels in (("xor", [0, 1, 1, 0]), ("and", [0, 0, 0, 1]), ("or", [0, 1, 1, 1])):
        s = load(name)
        assert s.train.x.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
        assert s.train.y.tolist() == labels


def test_splits_partition_the_data():
    s = load("moons", n=1000, val_fraction=0.1, test_fraction=0.3)
    assert (len(s.train), len(s.val), len(s.test)) == (600, 100, 300)
    all_x = np.concatenate([s.train.x, s.val.x, s.test.x])
    assert len(np.unique(all_x, axis=0)) == 1000


def test_spirals_k_classes_and_blobs_dimension():
    s = load("spirals", classes=4, n=400)
    assert s.n_classes == 4 and set(np.unique(s.train.y)) == {0, 1, 2, 3}
    b = load("blobs", classes=5, features=7)
    assert b.input_shape == (7,) and b.n_classes == 5


def test_sine_regression_targets():
    s = load("sine_regression", noise=0.0)
    assert s.task == "regression"
    np.testing.assert_allclose(s.train.y, np.sin(s.train.x), atol=1e-6)
