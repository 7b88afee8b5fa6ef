"""sample_text: temperature, prime, context window, errors."""

from __future__ import annotations

import numpy as np
import pytest

from dlrun.errors import ConfigError
from dlrun.runs.sampling import apply_temperature, sample_text

VOCAB = list("abcd")


def cyclic(x: np.ndarray) -> np.ndarray:
    """Next character = current + 1 (mod V) with probability 0.7, the rest spread evenly."""
    V = x.shape[-1]
    nxt = np.roll(x, 1, axis=-1)
    return 0.7 * nxt + 0.3 * (1 - nxt) / (V - 1)


def test_cold_sampling_follows_the_most_likely_character():
    out = sample_text(cyclic, VOCAB, 10, 0.01, "ab", np.random.default_rng(0))
    assert out == "ab" + "cdab" * 2 + "cd"


def test_temperature_one_draws_from_the_model():
    rng = np.random.default_rng(1)
    out = sample_text(cyclic, VOCAB, 3000, 1.0, "a", rng, window=1)
    ids = [VOCAB.index(c) for c in out]
    follows = np.mean([(b - a) % 4 == 1 for a, b in zip(ids, ids[1:], strict=False)])
    assert follows == pytest.approx(0.7, abs=0.03)


def test_hot_sampling_is_flatter():
    p = np.array([0.7, 0.1, 0.1, 0.1])
    np.testing.assert_allclose(apply_temperature(p, 1.0), p)
    hot, cold = apply_temperature(p, 10.0), apply_temperature(p, 0.1)
    assert hot[0] < 0.35 and cold[0] > 0.999
    np.testing.assert_allclose(hot.sum(), 1.0)


def test_window_limits_the_context():
    lengths = []

    def model(x):
        lengths.append(x.shape[1])
        return cyclic(x)

    sample_text(model, VOCAB, 6, 1.0, "abc", np.random.default_rng(0), window=4)
    assert lengths == [3, 4, 4, 4, 4, 4]


def test_empty_prime_starts_with_a_random_character():
    out = sample_text(cyclic, VOCAB, 5, 0.01, "", np.random.default_rng(0))
    assert len(out) == 6 and all(c in VOCAB for c in out)


def test_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        sample_text(cyclic, VOCAB, 5, 0.0, "a", rng)
    with pytest.raises(ConfigError, match=r"\['x', 'z'\] are not in the model's vocabulary"):
        sample_text(cyclic, VOCAB, 5, 1.0, "azbx", rng)
    with pytest.raises(ConfigError, match="sampling needs"):
        sample_text(lambda x: x[:, -1], VOCAB, 5, 1.0, "a", rng)
