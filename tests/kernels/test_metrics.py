import numpy as np

from dlrun.kernels.metrics import argmax_hits


def test_argmax_hits_matches_numpy_including_ties():
    rng = np.random.default_rng(0)
    o = rng.integers(0, 3, size=(500, 4)).astype(np.float32)  # many ties: first max wins
    labels = rng.integers(0, 4, size=500)
    assert argmax_hits(o, labels) == np.sum(np.argmax(o, axis=1) == labels)
    assert argmax_hits(o, np.argmax(o, axis=1)) == 500
