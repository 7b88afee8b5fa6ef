"""Weight initializers: ``init(shape, fan_in, fan_out, rng, dtype) -> array``.

fan_in / fan_out are the numbers of inputs and outputs of one unit (for a
dense layer of W: (n_in, n_out), fan_in = n_in and fan_out = n_out).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlrun.config.registry import initializers


@initializers.register("small_uniform")
def small_uniform(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """The course's small random values, here U(-0.05, 0.05) (the range is dlrun's choice)."""
    return rng.uniform(-0.05, 0.05, size=shape).astype(dtype)


@initializers.register("glorot_uniform")
def glorot_uniform(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """Glorot/Xavier uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape).astype(dtype)


@initializers.register("glorot_normal")
def glorot_normal(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """Glorot/Xavier normal: N(0, 2 / (fan_in + fan_out))."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / (fan_in + fan_out))).astype(dtype)


@initializers.register("he_uniform")
def he_uniform(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """He uniform (for ReLU): U(-a, a), a = sqrt(6 / fan_in)."""
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape).astype(dtype)


@initializers.register("he_normal")
def he_normal(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """He normal (for ReLU): N(0, 2 / fan_in)."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(dtype)


@initializers.register("large_normal")
def large_normal(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """Large weights: N(0, 1) whatever the fan-in (He's std for 32 inputs is 0.25).

    Going back through a layer of n tanh units multiplies the gradient's norm by
    about sqrt(n E[w^2] E[tanh'(z)^2]); with these weights that is > 1, so the gradient
    grows layer by layer towards the input (configs/exploding_clip.yaml)."""
    return rng.standard_normal(shape).astype(dtype)


@initializers.register("zeros")
def zeros(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """All zeros (the default for biases)."""
    return np.zeros(shape, dtype=dtype)


@initializers.register("ones")
def ones(shape, fan_in, fan_out, rng: np.random.Generator, dtype: Any) -> np.ndarray:
    """All ones (e.g. an LSTM forget-gate bias)."""
    return np.ones(shape, dtype=dtype)
