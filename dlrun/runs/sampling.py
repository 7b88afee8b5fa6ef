"""Text generation from a trained next-character model.

Starting from ``prime``, repeatedly: one-hot encode the text so far (its last
``window`` characters), ask the model for the distribution of the next
character at the last time step, sharpen or flatten it with the temperature

    p_i(tau) = p_i^(1/tau) / sum_j p_j^(1/tau)      (softmax of log p / tau)

(tau < 1: more likely characters, tau -> 0: always the most likely one;
tau > 1: more surprising ones), and draw the next character from it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlrun.errors import ConfigError


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Re-normalised p^(1/tau) of a probability vector, computed in log space (float64)."""
    logp = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-300)) / temperature
    logp -= logp.max()
    p = np.exp(logp)
    return p / p.sum()


def sample_text(
    predict: Callable[[np.ndarray], np.ndarray],
    vocab: list[str],
    length: int,
    temperature: float,
    prime: str,
    rng: np.random.Generator,
    window: int | None = None,
) -> str:
    """``prime`` followed by ``length`` sampled characters.

    ``predict(x)`` maps a one-hot batch x: (1, T, V) (float32) to probabilities
    (1, T, V); only the last step is used. ``window`` limits the context fed to
    the model to the last ``window`` characters (e.g. the training seq_len);
    None feeds the whole text so far. An empty prime starts from one character
    drawn uniformly from the vocabulary (which then begins the result).
    """
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if length < 0:
        raise ConfigError(f"length must be >= 0, got {length}")
    if not vocab:
        raise ConfigError("the vocabulary is empty")
    if window is not None and window < 1:
        raise ConfigError(f"window must be >= 1, got {window}")
    index = {ch: i for i, ch in enumerate(vocab)}
    unknown = sorted({ch for ch in prime if ch not in index})
    if unknown:
        raise ConfigError(
            f"prime characters {unknown!r} are not in the model's vocabulary",
            hint=f"the vocabulary is {''.join(vocab)!r}",
        )
    ids = [index[ch] for ch in prime] or [int(rng.integers(len(vocab)))]
    V = len(vocab)
    for _ in range(length):
        context = ids if window is None else ids[-window:]
        x = np.zeros((1, len(context), V), dtype=np.float32)
        x[0, np.arange(len(context)), context] = 1.0
        probs = np.asarray(predict(x))
        if probs.shape != x.shape:
            raise ConfigError(
                f"the model maps inputs {x.shape} to {probs.shape}; sampling needs "
                f"next-character probabilities of shape {x.shape} (a many-to-many model "
                "ending in softmax, trained on the text dataset)"
            )
        p = apply_temperature(probs[0, -1], temperature)
        ids.append(int(rng.choice(V, p=p)))
    return "".join(vocab[i] for i in ids)


def sample_from_run(
    run_dir: str,
    length: int = 300,
    temperature: float = 0.8,
    prime: str = "",
    seed: int = 0,
    which: str = "best",
) -> str:
    """Generate text with the network of a run trained on the ``text`` dataset."""
    from dlrun.runs.build import load_run

    if length < 1:
        raise ConfigError(f"--length must be >= 1, got {length}")
    if not temperature > 0:
        raise ConfigError(f"--temperature must be > 0, got {temperature}")
    cfg, net, splits, _ = load_run(run_dir, which)
    if (
        cfg["data"]["name"] != "text"
        or splits.task != "classification"
        or len(net.output_shape) != 2
    ):
        raise ConfigError(
            f"{run_dir} is not a text model (dataset '{cfg['data']['name']}', output shape "
            f"{net.output_shape}); `dlrun sample` needs a run trained on the 'text' dataset with "
            "one output per time step"
        )
    vocab = list(splits.class_names)
    prime = prime or vocab[int(np.random.default_rng(seed).integers(len(vocab)))]
    return sample_text(
        lambda x: net.predict(x.astype(net.dtype)),
        vocab,
        length,
        temperature,
        prime,
        np.random.default_rng(seed),
        window=cfg["data"]["seq_len"],
    )
