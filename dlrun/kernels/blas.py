"""Matrix products called from inside Numba kernels, through NumPy's own BLAS.

A time loop written in Python calls ``np.matmul`` and a step kernel once per
step; each call costs a few microseconds of interpreter and dispatch work. For
the Fashion-MNIST row LSTM (28 steps, forward and backward) that was 4-6% of a
training batch. A kernel that runs the whole loop in Numba calls the BLAS
directly instead, with :func:`gemm`:

    gemm(a, b, c)      c = a @ b        a: (M, K), b: (K, N), c: (M, N), rows contiguous
    gemm_tn(a, b, c)   c = a.T @ b      a: (K, M), b: (K, N)
    gemm_nt(a, b, c)   c = a @ b.T      a: (M, K), b: (N, K)

It is the same OpenBLAS routine that ``np.matmul`` calls (found through
threadpoolctl, by its cblas symbol), with the same threads, so the results are
the same to the bit. The library's address is given to LLVM under fixed names
(``dlrun_cblas_sgemm`` / ``dlrun_cblas_dgemm``), so cached kernels stay valid
when NumPy is upgraded. Only 64-bit-integer (ILP64) OpenBLAS builds are used, as
in NumPy's wheels; with any other BLAS :func:`available` is False and callers
keep their Python loops.
"""

from __future__ import annotations

import ctypes
from functools import cache

import numpy as np
from numba import types
from numba.extending import overload

#: cblas symbols of ILP64 OpenBLAS builds: NumPy >= 2 (scipy-openblas), NumPy 1.x (openblas64_).
_CANDIDATES = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_"),
    ("cblas_sgemm64_", "cblas_dgemm64_"),
)
_ROW_MAJOR, _NO_TRANS = 101, 111


def _signature(real: types.Type) -> types.Signature:
    i32, i64, ptr = types.int32, types.int64, types.intp
    #       order transA transB M    N    K    alpha A    lda  B    ldb  beta  C    ldc
    return types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)


_sgemm = types.ExternalFunction("dlrun_cblas_sgemm", _signature(types.float32))
_dgemm = types.ExternalFunction("dlrun_cblas_dgemm", _signature(types.float64))


@cache
def available() -> bool:
    """Whether kernels may call :func:`gemm`: NumPy's BLAS is an ILP64 OpenBLAS.

    The first call looks the library up and hands its addresses to LLVM; it must
    come before any kernel that calls :func:`gemm` is compiled or loaded from cache.
    """
    import llvmlite.binding as llvm
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for names in _CANDIDATES:
            if all(hasattr(lib, name) for name in names):
                for ours, theirs in zip(("dlrun_cblas_sgemm", "dlrun_cblas_dgemm"), names):
                    llvm.add_symbol(ours, ctypes.cast(getattr(lib, theirs), ctypes.c_void_p).value)
                return True
    return False


def gemm(a, b, c):
    """c = a @ b in the arrays' dtype (float32 or float64), from inside a kernel.

    a: (M, K), b: (K, N), c: (M, N), each C-contiguous (a row of a 3-D C array,
    ``x[t]``, is). Only callable from Numba; check :func:`available` first.
    """
    raise NotImplementedError("gemm is only callable from a Numba kernel")


def gemm_tn(a, b, c):
    """c = a.T @ b: a: (K, M), b: (K, N), c: (M, N), as :func:`gemm` (a weight gradient
    x^T dz, with x and dz as they are stored)."""
    raise NotImplementedError("gemm_tn is only callable from a Numba kernel")


def gemm_nt(a, b, c):
    """c = a @ b.T: a: (M, K), b: (N, K), c: (M, N), as :func:`gemm` (an input gradient
    dz W^T, with W as it is stored)."""
    raise NotImplementedError("gemm_nt is only callable from a Numba kernel")


_TRANS = 112


def _overload_gemm(trans_a: bool, trans_b: bool):
    """The Numba implementation of c = op(a) @ op(b), op transposing where asked."""

    def typer(a, b, c):
        if not all(
            isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C" for x in (a, b, c)
        ):
            return None
        if not a.dtype == b.dtype == c.dtype:
            return None
        if a.dtype == types.float32:
            call, real = _sgemm, np.float32
        elif a.dtype == types.float64:
            call, real = _dgemm, np.float64
        else:
            return None
        flag_a = _TRANS if trans_a else _NO_TRANS
        flag_b = _TRANS if trans_b else _NO_TRANS

        def impl(a, b, c):
            m, k = (a.shape[1], a.shape[0]) if trans_a else (a.shape[0], a.shape[1])
            kb, n = (b.shape[1], b.shape[0]) if trans_b else (b.shape[0], b.shape[1])
            if kb != k or c.shape[0] != m or c.shape[1] != n:
                raise ValueError("gemm: the shapes of op(a) @ op(b) and c do not match")
            call(
                _ROW_MAJOR, flag_a, flag_b, m, n, k, real(1.0),
                a.ctypes.data, a.shape[1], b.ctypes.data, b.shape[1], real(0.0), c.ctypes.data, n,
            )  # fmt: skip

        return impl

    return typer


overload(gemm)(_overload_gemm(False, False))
overload(gemm_tn)(_overload_gemm(True, False))
overload(gemm_nt)(_overload_gemm(False, True))
