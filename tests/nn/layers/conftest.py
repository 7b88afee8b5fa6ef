"""Fixtures shared by the layer tests."""

from __future__ import annotations

import pytest

from dlrun.kernels import blas


@pytest.fixture(params=["kernel loop", "python loop"])
def time_loop(request, monkeypatch):
    """Both ways through the steps: one kernel call (BLAS called from Numba), or the
    Python loop used when NumPy's BLAS cannot be called from a kernel."""
    if request.param == "kernel loop" and not blas.available():
        pytest.skip("NumPy's BLAS is not an ILP64 OpenBLAS: only the Python loop exists")
    if request.param == "python loop":
        monkeypatch.setattr(blas, "available", lambda: False)
    return request.param
