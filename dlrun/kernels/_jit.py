"""The one place where Numba's JIT flags are set.

Every kernel in ``dlrun/kernels`` is decorated with :func:`kernel` (or
:func:`parallel_kernel` where it loops over independent rows with ``prange``).
``cache=True`` keeps compiled machine code in ``__pycache__`` so only the first
run compiles. ``error_model="numpy"`` lets divisions vectorise (no Python
ZeroDivisionError checks); ``fastmath`` stays off so results match NumPy,
except for the sums of :func:`reduction` and the fused multiply-adds of
:func:`fused_multiply_add`.
"""

from __future__ import annotations

import numba
from numba import njit

# Numba's default (OpenMP) threads keep spinning after a parallel kernel, and fight the BLAS
# threads of the next matrix product for the same cores; the workqueue layer's threads sleep.
# (Measured with `python scripts/bench.py cnn`: 173 vs 75 ms per CNN batch on 2 cores.) Its one limit:
# parallel kernels must not be launched from several threads of one process at once, so
# `dlrun compare` runs cells in processes (and Dask workers with one thread each).
numba.config.THREADING_LAYER = "workqueue"

_FLAGS = dict(cache=True, nogil=True, error_model="numpy")

kernel = njit(**_FLAGS)
"""Decorator for a serial kernel."""

parallel_kernel = njit(parallel=True, **_FLAGS)
"""Decorator for a kernel that uses ``prange`` over independent rows."""

reduction = njit(fastmath={"reassoc"}, **_FLAGS)
"""Decorator for a serial sum: only reassociation is allowed, so the loop is summed in
SIMD lanes (4x faster than one running sum). The order is fixed by the compiled code,
not by threads or timing, so the result is reproducible."""

parallel_reduction = njit(parallel=True, fastmath={"reassoc"}, **_FLAGS)
"""Decorator for sums inside the iterations of a ``prange`` loop: each iteration owns its
outputs and sums in an order fixed by the compiled code (as :func:`reduction`), so the
result does not depend on the number of threads."""

fused_multiply_add = njit(fastmath={"contract"}, **_FLAGS)
"""Decorator for a serial kernel whose a * b + c may be one fused multiply-add (one
rounding instead of two: no less accurate). For the polynomial approximations of the
recurrent gates, in float32: 16% faster for an LSTM step, and the rational tanh's
largest error 3.1e-7 instead of 3.4e-7 (``kernels.recurrent``)."""

inline = njit(inline="always", **_FLAGS)
"""Decorator for small scalar helpers inlined into the kernels that call them."""
