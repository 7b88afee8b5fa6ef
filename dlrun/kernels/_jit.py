"""The one place where Numba's JIT flags are set.

Every kernel in ``dlrun/kernels`` is decorated with :func:`kernel` (or
:func:`parallel_kernel` where it loops over independent rows with ``prange``).
``cache=True`` keeps compiled machine code in ``__pycache__`` so only the first
run compiles. ``error_model="numpy"`` lets divisions vectorise (no Python
ZeroDivisionError checks); ``fastmath`` stays off so results match NumPy.
"""

from __future__ import annotations

from numba import njit

_FLAGS = dict(cache=True, nogil=True, error_model="numpy")

kernel = njit(**_FLAGS)
"""Decorator for a serial kernel."""

parallel_kernel = njit(parallel=True, **_FLAGS)
"""Decorator for a kernel that uses ``prange`` over independent rows."""

inline = njit(inline="always", **_FLAGS)
"""Decorator for small scalar helpers inlined into the kernels that call them."""
