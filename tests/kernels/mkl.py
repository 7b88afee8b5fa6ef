"""MKL in the tests: tests that need it skip without it, except where ``DLRUN_REQUIRE_MKL=1``
(``.ci/run``, which installs the ``mkl`` extra) on x86-64, the only machines MKL is made
for: there they run, and fail."""

from __future__ import annotations

import os
import platform

import pytest

from dlrun.kernels import blas_libs

HAVE_MKL = blas_libs.mkl() is not None
REQUIRED = os.environ.get("DLRUN_REQUIRE_MKL") == "1" and platform.machine() == "x86_64"
needs_mkl = pytest.mark.skipif(
    not HAVE_MKL and not REQUIRED, reason="MKL is not installed (pip install -e '.[mkl]')"
)
