"""How many threads the kernels use: Numba's parallel loops and the BLAS libraries.

``set_threads(n)`` limits both for this process (BLAS through threadpoolctl; MKL, where
loaded, gets as many as OpenBLAS, and the per-shape choices of the BLAS are made again,
since they depend on the thread count: ``kernels.blas_choice``).
``dlrun compare --jobs J`` gives each worker cores // J threads so that
jobs x threads <= cores. On a machine shared with other work, 1 thread per
process is often fastest: a busy-waiting BLAS thread that has to share its
core with another process stalls the product it is part of.
"""

from __future__ import annotations

import os

from dlrun.errors import ConfigError


def default_threads() -> int | None:
    """``$DLRUN_THREADS`` if set, else None (leave the libraries' defaults).

    ConfigError unless it is a whole number >= 1."""
    value = os.environ.get("DLRUN_THREADS", "").strip()
    if not value:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(
            f"DLRUN_THREADS must be a whole number >= 1, got '{value}'",
            hint="unset DLRUN_THREADS to use every core",
        ) from None
    return check_threads(n, "DLRUN_THREADS")


def check_threads(n: int | None, where: str = "--threads") -> int | None:
    """``n`` if it is None or >= 1, else ConfigError naming ``where``."""
    if n is not None and n < 1:
        raise ConfigError(
            f"{where} must be >= 1, got {n}", hint=f"leave {where} out to use every core"
        )
    return n


def set_threads(n: int | None) -> int | None:
    """Use ``n`` threads in Numba's parallel kernels and in BLAS (None: leave as is).

    More threads than cores become one per core; fewer than 1 is a ConfigError."""
    if n is None:
        return None
    n = min(check_threads(int(n), "threads"), os.cpu_count() or 1)
    import numba
    import numpy  # noqa: F401  (BLAS must be loaded for threadpoolctl to find it)
    from threadpoolctl import threadpool_limits

    import dlrun.kernels._jit  # noqa: F401  (its threading layer, before set_num_threads starts one)
    from dlrun.kernels import blas_choice, blas_libs

    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    threadpool_limits(limits=n, user_api="blas")
    blas_libs.sync_mkl_threads()
    blas_choice.forget()
    return n
