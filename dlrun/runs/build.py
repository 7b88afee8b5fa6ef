"""What a run is made of, built from its resolved config: random streams, data, network;
and the same rebuilt from a saved run directory (``load_run``, for eval and sampling)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dlrun.config import registry
from dlrun.config.resolve import resolve
from dlrun.data.base import Splits
from dlrun.errors import ConfigError
from dlrun.nn.network import Network
from dlrun.nn.targets import Targets, check_output
from dlrun.runs import checkpoint
from dlrun.runs.rundir import RunDir

STREAMS = ("data", "init", "shuffle", "dropout", "augment")


def make_streams(seed: int) -> dict[str, np.random.Generator]:
    """Independent random streams, one per use, from the run's single seed."""
    children = np.random.SeedSequence(seed).spawn(len(STREAMS))
    return {name: np.random.Generator(np.random.PCG64(s)) for name, s in zip(STREAMS, children)}


def load_data(cfg: dict[str, Any], rng: np.random.Generator, root: Path | None = None) -> Splits:
    """The train / val / test splits the config's ``data`` section describes."""
    return registry.datasets.build(cfg["data"], root=root).load(rng)


def build_network(cfg: dict[str, Any], splits: Splits, rng: np.random.Generator) -> Network:
    """The config's network, built for the dataset's input shape and classes, its training
    steps planned as ``train.fuse`` says."""
    net = Network.from_config(cfg, splits.n_classes)
    net.build(splits.input_shape, rng, np.dtype(cfg["dtype"]), fuse=cfg["train"]["fuse"])
    check_output(net, splits.task, splits.n_classes, splits.train.y.shape[1:])
    return net


def load_run(run_dir: str | Path, which: str = "best") -> tuple[dict[str, Any], Any, Any, Any]:
    """(config, network with the checkpoint's weights, splits, targets) of a run."""
    if which not in ("best", "last"):
        raise ConfigError(f"--checkpoint must be 'best' or 'last', got '{which}'")
    run = RunDir.open(Path(run_dir))
    cfg = resolve(run.config(), source=str(run.path / "config.yaml"))
    streams = make_streams(cfg["seed"])
    splits = load_data(cfg, streams["data"])
    net = build_network(cfg, splits, streams["init"])
    path = run.checkpoints / f"{which}.npz"
    if which == "best" and not path.exists():
        path = run.checkpoints / "last.npz"
    net.load_state_dict(checkpoint.load_params(path))
    return cfg, net, splits, Targets(net, splits.task)
