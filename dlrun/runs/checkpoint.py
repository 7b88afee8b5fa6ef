"""Checkpoints: one ``.npz`` file, loaded without pickle.

Layout of the archive:

    param/<layer>.<key>   the network's parameters
    opt/<key>             the optimizer's state arrays and step count
    perm                  the current epoch's sample order
    meta                  a JSON string: epoch, step, batch, RNG states, schedule,
                          early-stopping and metric accumulators, best so far

Written atomically (temporary file, fsync, rename): a crash while saving
leaves the previous checkpoint loadable.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from dlrun.errors import CheckpointError
from dlrun.runs.rundir import atomic_write


def save(
    path: Path,
    params: dict[str, np.ndarray],
    optimizer: dict[str, np.ndarray],
    meta: dict[str, Any],
    perm: np.ndarray | None = None,
) -> None:
    arrays = {f"param/{k}": v for k, v in params.items()}
    arrays.update({f"opt/{k}": v for k, v in optimizer.items()})
    arrays["perm"] = np.asarray(perm if perm is not None else np.empty(0, np.int64))
    arrays["meta"] = np.array(json.dumps(meta))
    atomic_write(Path(path), lambda f: np.savez(f, **arrays))


def load(
    path: Path,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, Any], np.ndarray]:
    """(params, optimizer state, meta, perm); CheckpointError naming the file if unreadable."""
    data = _read(path, lambda key: True)
    try:
        meta = json.loads(str(data.pop("meta")))
        perm = data.pop("perm")
    except (KeyError, json.JSONDecodeError) as exc:
        raise _corrupt(path, exc) from None
    params = {k[6:]: v for k, v in data.items() if k.startswith("param/")}
    opt = {k[4:]: v for k, v in data.items() if k.startswith("opt/")}
    return params, opt, meta, perm


def load_params(path: Path) -> dict[str, np.ndarray]:
    """The parameters alone (the optimizer state, twice their size, is not read)."""
    data = _read(path, lambda key: key.startswith("param/"))
    return {k[6:]: v for k, v in data.items()}


def _read(path: Path, wanted: Any) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # else np.load would try it as a pickle and say so
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a dlrun checkpoint (not a complete .npz "
            f"archive: {path.stat().st_size} bytes, cut short or another kind of file)"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files if wanted(k)}
    except (zipfile.BadZipFile, ValueError, OSError, KeyError, EOFError) as exc:
        raise _corrupt(path, exc) from None


def _corrupt(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(
        f"checkpoint {path} is corrupt or not a dlrun checkpoint ({type(exc).__name__}: {exc})"
    )
