"""How many threads the kernels use: Numba's parallel loops and NumPy's BLAS.

``set_threads(n)`` limits both for this process (BLAS through threadpoolctl).
``dlrun compare --jobs J`` gives each worker cores // J threads so that
jobs x threads <= cores. On a machine shared with other work, 1 thread per
process is often fastest: a busy-waiting BLAS thread that has to share its
core with another process stalls the product it is part of.
"""

from __future__ import annotations

import os


def default_threads() -> int | None:
    """``$DLRUN_THREADS`` if set, else None (leave the libraries' defaults)."""
    value = os.environ.get("DLRUN_THREADS")
    return int(value) if value else None


def set_threads(n: int | None) -> int | None:
    """Use ``n`` threads in Numba's parallel kernels and in BLAS (None: leave as is)."""
    if n is None:
        return None
    n = max(1, min(int(n), os.cpu_count() or 1))
    import numba
    import numpy  # noqa: F401  (BLAS must be loaded for threadpoolctl to find it)
    from threadpoolctl import threadpool_limits

    import dlrun.kernels._jit  # noqa: F401  (its threading layer, before set_num_threads starts one)

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=n, user_api="blas")
    return n
