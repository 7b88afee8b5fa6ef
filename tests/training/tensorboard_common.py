"""Shared by the TensorBoard tests: the packages (a skip without them, a failure with
``DLRUN_REQUIRE_TENSORBOARD=1``, which ``.ci/run`` sets after installing the
``tensorboard`` extra) and event files read back with TensorBoard's own reader."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

HINT = "pip install -e '.[tensorboard]'"


def require_tensorboard() -> None:
    """tensorboardX (the writer) and tensorboard (the reader), or a skip / failure."""
    try:
        import tensorboard  # noqa: F401
        import tensorboardX  # noqa: F401
    except ImportError:
        if os.environ.get("DLRUN_REQUIRE_TENSORBOARD") == "1":
            pytest.fail(f"DLRUN_REQUIRE_TENSORBOARD=1 but tensorboardX is not installed ({HINT})")
        pytest.skip(f"needs tensorboardX and tensorboard ({HINT}); CI installs them")


def read(folder: Path) -> Any:
    """An EventAccumulator over one TensorBoard run (one folder), every event kept."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    return acc


def scalars(acc: Any, tag: str) -> list[tuple[int, float]]:
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def hparams(folder: Path) -> dict[str, Any]:
    """The hyper-parameters of the run's HParams start record, as Python values."""
    from tensorboard.plugins.hparams import metadata

    content = read(folder).PluginTagToContent("hparams")[metadata.SESSION_START_INFO_TAG]
    info = metadata.parse_session_start_info_plugin_data(content)
    out: dict[str, Any] = {}
    for key, value in info.hparams.items():
        kind = value.WhichOneof("kind")
        out[key] = getattr(value, kind)
    return out


def session_status(folder: Path) -> str:
    from tensorboard.plugins.hparams import api_pb2, metadata

    content = read(folder).PluginTagToContent("hparams")[metadata.SESSION_END_INFO_TAG]
    return api_pb2.Status.Name(metadata.parse_session_end_info_plugin_data(content).status)
