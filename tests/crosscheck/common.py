"""PyTorch as an independent reference: its layers, losses and optimizers, in float64.

torch is a test-only extra (``pip install -e ".[crosscheck]"``), never a dependency of
dlrun. Without it these tests skip, except where ``DLRUN_REQUIRE_TORCH=1`` (``.ci/run``
sets it after installing the extra): there a missing torch is a failure, so that CI can
never pass by skipping every cross-check.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest

HINT = 'pip install -e ".[crosscheck]"'


def import_torch(module_level: bool = False) -> Any:
    """The torch module; a skip without it (a failure with DLRUN_REQUIRE_TORCH=1)."""
    try:
        import torch
    except ImportError:
        if os.environ.get("DLRUN_REQUIRE_TORCH") == "1":
            pytest.fail(f"DLRUN_REQUIRE_TORCH=1 but torch is not installed ({HINT})")
        pytest.skip(f"needs torch ({HINT}); CI installs it", allow_module_level=module_level)
    return torch


def tensor(torch: Any, a: np.ndarray, grad: bool = False) -> Any:
    """A float64 torch tensor of ``a`` (a copy), optionally a leaf that collects gradients."""
    return torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def numpy(t: Any) -> np.ndarray:
    return t.detach().numpy()
