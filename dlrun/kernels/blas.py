"""Matrix products, each on the BLAS chosen for its shape: from Python and from inside Numba kernels.

Every product of the layers goes through here. From Python, with the semantics of the
NumPy function it replaces (2-D operands; either may be a transposed view)::

    dot(a, b, out=None)       np.dot(a, b, out)       on the chosen library
    matmul(a, b, out=None)    np.matmul(a, b, out)

From a Numba kernel, with ``lib`` the library's code (``blas_libs.OPENBLAS``/``MKL``) that
the layer got from :func:`lib_for` for the product's shape::

    gemm(a, b, c, lib)      c = a @ b        a: (M, K), b: (K, N), c: (M, N), rows contiguous
    gemm_tn(a, b, c, lib)   c = a.T @ b      a: (K, M), b: (K, N)
    gemm_nt(a, b, c, lib)   c = a @ b.T      a: (M, K), b: (N, K)

A kernel that runs a whole loop (the LSTM's 28 steps, a stack of dense layers) calls the
BLAS directly instead of returning to Python for each product (which cost 4-6% of an
LSTM batch). Which library multiplies a shape is ``kernels.blas_choice``'s decision
(measured once per machine and shape class, or forced by ``DLRUN_BLAS``).

With OpenBLAS, :func:`dot` and :func:`matmul` *are* ``np.dot`` and ``np.matmul``, and the
kernels call the very routine those call (found by its cblas symbol), with the same
threads: the results are the same to the bit as plain NumPy. The libraries' addresses are
given to LLVM under fixed names (``dlrun_cblas_sgemm``, ``dlrun_mkl_sgemm``, and the
``dgemm`` pair), so cached kernels stay valid when a library is upgraded; where MKL is not
installed its names point at OpenBLAS (and are never chosen). Only ILP64 OpenBLAS builds
(as in NumPy's wheels) can be called from kernels; with any other BLAS :func:`available`
is False and callers keep their Python loops.
"""

from __future__ import annotations

from functools import cache

import llvmlite.binding as llvm
import numpy as np
from numba import types
from numba.extending import overload

from dlrun.kernels import blas_choice, blas_libs
from dlrun.kernels.blas_libs import MKL, OPENBLAS, product

__all__ = [
    "MKL", "OPENBLAS", "available", "dot", "gemm", "gemm_nt", "gemm_tn", "lib_for", "lib_for_shape",
    "matmul", "product",
]  # fmt: skip

_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _signature(real: types.Type) -> types.Signature:
    i32, i64, ptr = types.int32, types.int64, types.intp
    #       order transA transB M    N    K    alpha A    lda  B    ldb  beta  C    ldc
    return types.void(i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64)


_openblas_s = types.ExternalFunction("dlrun_cblas_sgemm", _signature(types.float32))
_openblas_d = types.ExternalFunction("dlrun_cblas_dgemm", _signature(types.float64))
_mkl_s = types.ExternalFunction("dlrun_mkl_sgemm", _signature(types.float32))
_mkl_d = types.ExternalFunction("dlrun_mkl_dgemm", _signature(types.float64))


@cache
def available() -> bool:
    """Whether kernels may call :func:`gemm`: NumPy's BLAS is an ILP64 OpenBLAS.

    The first call looks the libraries up (MKL too, where installed) and hands their
    addresses to LLVM; it must come before any kernel that calls :func:`gemm` is compiled
    or loaded from cache.
    """
    ob = blas_libs.openblas()
    if ob is None:
        return False
    mkl = blas_libs.mkl() or ob  # names that resolve, never chosen without MKL
    for name, lib in (("cblas", ob), ("mkl", mkl)):
        llvm.add_symbol(f"dlrun_{name}_sgemm", lib.sgemm_address)
        llvm.add_symbol(f"dlrun_{name}_dgemm", lib.dgemm_address)
    return True


# ----------------------------------------------------------------------- from Python
def lib_for(a: np.ndarray, b: np.ndarray) -> int:
    """The library chosen for ``a @ b`` (2-D; either may be a transposed view)."""
    return blas_choice.lib_for(
        a.shape[0], a.shape[1], b.shape[1],
        not a.flags.c_contiguous and a.flags.f_contiguous,
        not b.flags.c_contiguous and b.flags.f_contiguous,
        a.dtype,
    )  # fmt: skip


def dot(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.dot(a, b, out)`` for 2-D ``a`` (M, K) and ``b`` (K, N), on the library chosen
    for its shape class (``np.dot`` itself when that is OpenBLAS)."""
    lib = lib_for(a, b)
    if lib == OPENBLAS:
        return np.dot(a, b) if out is None else np.dot(a, b, out=out)
    return product(a, b, out, lib)


def matmul(a: np.ndarray, b: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``np.matmul(a, b, out)`` for 2-D operands, as :func:`dot` (``np.matmul`` itself
    when the choice is OpenBLAS)."""
    lib = lib_for(a, b)
    if lib == OPENBLAS:
        return np.matmul(a, b) if out is None else np.matmul(a, b, out=out)
    return product(a, b, out, lib)


# ----------------------------------------------------------------------- from Numba
def gemm(a, b, c, lib):
    """c = a @ b in the arrays' dtype (float32 or float64), from inside a kernel, on
    library ``lib`` (``OPENBLAS`` or ``MKL``).

    a: (M, K), b: (K, N), c: (M, N), each C-contiguous (a row of a 3-D C array,
    ``x[t]``, is). Only callable from Numba; check :func:`available` first.
    """
    raise NotImplementedError("gemm is only callable from a Numba kernel")


def gemm_tn(a, b, c, lib):
    """c = a.T @ b: a: (K, M), b: (K, N), c: (M, N), as :func:`gemm` (a weight gradient
    x^T dz, with x and dz as they are stored)."""
    raise NotImplementedError("gemm_tn is only callable from a Numba kernel")


def gemm_nt(a, b, c, lib):
    """c = a @ b.T: a: (M, K), b: (N, K), c: (M, N), as :func:`gemm` (an input gradient
    dz W^T, with W as it is stored)."""
    raise NotImplementedError("gemm_nt is only callable from a Numba kernel")


def _overload_gemm(trans_a: bool, trans_b: bool):
    """The Numba implementation of c = op(a) @ op(b), op transposing where asked."""

    def typer(a, b, c, lib):
        if not all(
            isinstance(x, types.Array) and x.ndim == 2 and x.layout == "C" for x in (a, b, c)
        ):
            return None
        if not a.dtype == b.dtype == c.dtype or not isinstance(lib, types.Integer):
            return None
        if a.dtype == types.float32:
            call_openblas, call_mkl, real = _openblas_s, _mkl_s, np.float32
        elif a.dtype == types.float64:
            call_openblas, call_mkl, real = _openblas_d, _mkl_d, np.float64
        else:
            return None
        flag_a = _TRANS if trans_a else _NO_TRANS
        flag_b = _TRANS if trans_b else _NO_TRANS

        def impl(a, b, c, lib):
            m, k = (a.shape[1], a.shape[0]) if trans_a else (a.shape[0], a.shape[1])
            kb, n = (b.shape[1], b.shape[0]) if trans_b else (b.shape[0], b.shape[1])
            if kb != k or c.shape[0] != m or c.shape[1] != n:
                raise ValueError("gemm: the shapes of op(a) @ op(b) and c do not match")
            lda, ldb = max(1, a.shape[1]), max(1, b.shape[1])
            if lib == MKL:
                call_mkl(
                    _ROW_MAJOR, flag_a, flag_b, m, n, k, real(1.0),
                    a.ctypes.data, lda, b.ctypes.data, ldb, real(0.0), c.ctypes.data, max(1, n),
                )  # fmt: skip
            else:
                call_openblas(
                    _ROW_MAJOR, flag_a, flag_b, m, n, k, real(1.0),
                    a.ctypes.data, lda, b.ctypes.data, ldb, real(0.0), c.ctypes.data, max(1, n),
                )  # fmt: skip

        return impl

    return typer


overload(gemm)(_overload_gemm(False, False))
overload(gemm_tn)(_overload_gemm(True, False))
overload(gemm_nt)(_overload_gemm(False, True))


def lib_for_shape(m: int, k: int, n: int, ta: bool, tb: bool, dtype: np.dtype) -> int:
    """The library chosen for op(a) (M, K) @ op(b) (K, N) (op a transpose where ``ta`` /
    ``tb``): the ``lib`` a layer passes to :func:`gemm` and its kin."""
    return blas_choice.lib_for(m, k, n, ta, tb, dtype)
