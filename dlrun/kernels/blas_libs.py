"""The BLAS libraries a matrix product can run on: NumPy's OpenBLAS, and Intel's MKL where installed.

Each library is known by a small integer, which the Numba kernels take as an argument
(``kernels.blas.gemm(a, b, c, lib)``) and the chooser (``kernels.blas_choice``) stores:

    OPENBLAS = 0   the OpenBLAS inside NumPy's wheel (ILP64: 64-bit integers), found
                   through threadpoolctl; what ``np.matmul`` and ``np.dot`` call
    MKL      = 1   ``libmkl_rt`` of the ``mkl`` wheel (``pip install -e ".[mkl]"``), its
                   ILP64 symbols ``cblas_sgemm_64`` / ``cblas_dgemm_64``

Both export the same C signature (row-major cblas with 64-bit sizes), so one
:class:`Library` holds either: the addresses of sgemm/dgemm, ctypes callables for them,
and the version. MKL runs with its Intel OpenMP threads told to sleep at once after
a product (``KMP_BLOCKTIME=0`` unless set): by default they spin for 200 ms and take the
cores from the OpenBLAS and Numba threads of the next step (on 2 cores, products ran 2-20x
slower next to them). Its thread count follows OpenBLAS's (:func:`sync_mkl_threads`). In a
process where PyTorch was imported first, its GNU OpenMP (libgomp) is already global and
MKL's Intel OpenMP layer then multiplied wrongly: MKL uses GNU's layer there, and checks
itself against NumPy before its first product (:func:`prepare_mkl`).

``DLRUN_MKL_LIB`` names the MKL library file when it is not where the wheel puts it
(``<sys.prefix>/lib/libmkl_rt.so.*``).
"""

from __future__ import annotations

import ctypes
import os
import sys
import sysconfig
from collections.abc import Callable
from functools import cache, cached_property
from pathlib import Path

import numpy as np

OPENBLAS, MKL = 0, 1
NAMES = ("openblas", "mkl")

#: cblas symbols of ILP64 OpenBLAS builds: NumPy >= 2 (scipy-openblas), NumPy 1.x (openblas64_).
_OPENBLAS_SYMBOLS = (
    ("scipy_cblas_sgemm64_", "scipy_cblas_dgemm64_", "scipy_openblas_get_num_threads64_"),
    ("cblas_sgemm64_", "cblas_dgemm64_", "openblas_get_num_threads64_"),
)
_MKL_SYMBOLS = ("cblas_sgemm_64", "cblas_dgemm_64")
# MKL_Set_Threading_Layer: Intel OpenMP (libiomp5, shipped with the wheel), GNU OpenMP
_MKL_THREADING_INTEL, _MKL_THREADING_GNU = 0, 3
# MKL_CBWR_Set: conditional numerical reproducibility, AUTO | STRICT: the same bits for the
# same inputs whatever the arrays' alignment in memory (Intel documents that without it a
# product may take another code path for another alignment, as a resumed process may have)
_MKL_CBWR_AUTO, _MKL_CBWR_STRICT = 2, 0x10000


def _gemm_type(real: type) -> type:
    """The ctypes type of an ILP64 ``cblas_?gemm``:
    (order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)."""
    i32, i64, ptr = ctypes.c_int, ctypes.c_int64, ctypes.c_void_p
    return ctypes.CFUNCTYPE(
        None, i32, i32, i32, i64, i64, i64, real, ptr, i64, ptr, i64, real, ptr, i64
    )


_SGEMM = _gemm_type(ctypes.c_float)
_DGEMM = _gemm_type(ctypes.c_double)


class Library:
    """One BLAS: ``code`` (OPENBLAS or MKL), its name, where it was loaded from, the
    addresses of its ILP64 ``cblas_sgemm``/``cblas_dgemm``, ctypes callables for them
    (``sgemm(order, transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)``) and
    its version (asked of the library when first read: MKL takes 10 ms to answer)."""

    def __init__(self, code: int, path: str, handle: ctypes.CDLL, sgemm: str, dgemm: str,
                 version: Callable[[], str]) -> None:  # fmt: skip
        self.code, self.name, self.path, self.handle = code, NAMES[code], path, handle
        self.sgemm_address = _address(handle, sgemm)
        self.dgemm_address = _address(handle, dgemm)
        self.sgemm = _SGEMM(self.sgemm_address)
        self.dgemm = _DGEMM(self.dgemm_address)
        self._version = version
        self.threading = ""  # MKL's OpenMP, once set up: intel or gnu

    @cached_property
    def version(self) -> str:
        return self._version()

    def describe(self) -> str:
        """``name version`` (with OpenBLAS's kernel family: ``openblas 0.3.31 Haswell``)."""
        return f"{self.name} {self.version}"


def _address(lib: ctypes.CDLL, name: str) -> int:
    return ctypes.cast(getattr(lib, name), ctypes.c_void_p).value


@cache
def openblas() -> Library | None:
    """NumPy's OpenBLAS when it is an ILP64 build (as in NumPy's wheels), else None."""
    import numpy  # noqa: F401  (loads the library, for threadpoolctl to find)
    from threadpoolctl import threadpool_info

    for info in threadpool_info():
        if info.get("internal_api") != "openblas":
            continue
        try:
            lib = ctypes.CDLL(info["filepath"])
        except OSError:
            continue
        for sgemm, dgemm, threads in _OPENBLAS_SYMBOLS:
            if all(hasattr(lib, name) for name in (sgemm, dgemm, threads)):
                version = f"{info.get('version')} {info.get('architecture') or ''}".strip()
                getter = getattr(lib, threads)
                getter.restype = ctypes.c_int
                _threads_of[OPENBLAS] = getter
                return Library(OPENBLAS, info["filepath"], lib, sgemm, dgemm, lambda v=version: v)
    return None


#: Each loaded library's "how many threads now" function, by code.
_threads_of: dict[int, ctypes._CFuncPtr] = {}


def mkl_path() -> Path | None:
    """The MKL library file: ``$DLRUN_MKL_LIB``, else the ``mkl`` wheel's
    ``<sys.prefix>/lib/libmkl_rt.so.N`` (the newest N); None when there is none."""
    given = os.environ.get("DLRUN_MKL_LIB", "").strip()
    if given:
        return Path(given) if Path(given).is_file() else None
    found = sorted(Path(sys.prefix, "lib").glob("libmkl_rt.so*"), key=lambda p: len(p.name))
    return found[-1] if found else None


@cache
def mkl() -> Library | None:
    """MKL's single dynamic library, opened with its ILP64 gemm symbols (None when it is
    not installed or lacks them): about a millisecond. :func:`prepare_mkl` sets it up
    before its first product (10-20 ms: MKL then loads its kernels and OpenMP)."""
    path = mkl_path()
    if path is None:
        return None
    os.environ.setdefault("KMP_BLOCKTIME", "0")  # read by Intel OpenMP when MKL starts it
    try:
        lib = ctypes.CDLL(str(path))
    except OSError:
        return None
    if not all(hasattr(lib, name) for name in (*_MKL_SYMBOLS, "MKL_Get_Version_String")):
        return None
    return Library(MKL, str(path), lib, *_MKL_SYMBOLS, lambda: _mkl_version(lib))


#: Why MKL cannot multiply in this process (empty while it can, or before it was tried).
_problem: list[str] = []


def mkl_problem() -> str | None:
    """Why MKL cannot be used in this process (not installed, or wrong results in the
    self-check of :func:`prepare_mkl`), or None."""
    if mkl() is None:
        return "MKL is not installed"
    return _problem[0] if _problem else None


def _gnu_openmp_loaded() -> bool:
    """Whether GNU OpenMP (libgomp) is already in the process's global symbols, as after
    ``import torch``: MKL's Intel OpenMP layer would then call libgomp's ``omp_*`` functions
    and its products came out wrong (15 of 16 layer shapes), so MKL must use GNU's."""
    return hasattr(ctypes.CDLL(None), "GOMP_parallel")


@cache
def prepare_mkl() -> Library | None:
    """MKL made ready for products, once, before anything else is asked of it: Intel OpenMP
    threads (GNU's where PyTorch brought libgomp first), reproducible results (CNR), as
    many threads as OpenBLAS; then a self-check against NumPy. Until then only the
    library file is open: no OpenMP runtime, nothing loaded, where MKL is never chosen.
    None (and :func:`mkl_problem` says why) when the self-check fails."""
    library = mkl()
    if library is None:
        return None
    lib = library.handle
    library.threading = "gnu" if _gnu_openmp_loaded() else "intel"
    lib.MKL_Set_Threading_Layer.argtypes = [ctypes.c_int]
    lib.MKL_Set_Threading_Layer(
        _MKL_THREADING_GNU if library.threading == "gnu" else _MKL_THREADING_INTEL
    )
    lib.MKL_CBWR_Set(ctypes.c_int(_MKL_CBWR_AUTO | _MKL_CBWR_STRICT))
    lib.MKL_Get_Max_Threads.restype = ctypes.c_int
    _threads_of[MKL] = lib.MKL_Get_Max_Threads
    sync_mkl_threads()
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        a, b = rng.standard_normal((37, 53)).astype(dtype), rng.standard_normal((53, 29))
        b = b.astype(dtype)
        c = _gemm(library, a, b, np.empty((37, 29), dtype=dtype))
        exact = a.astype(np.float64) @ b.astype(np.float64)
        bound = 2 * 53 * np.finfo(dtype).eps * (np.abs(a) @ np.abs(b)).astype(np.float64)
        if not np.all(np.abs(c - exact) <= bound):
            _problem.append(f"MKL's products failed a check against NumPy's ({library.path})")
            return None
    return library


def _mkl_version(lib: ctypes.CDLL) -> str:
    """The ``mkl`` wheel's version ("2026.2.1", from its metadata folder: asking the library
    would load all of it), else the library's own ("2026.2" from "Intel(R) oneAPI Math
    Kernel Library Version 2026.2-Product Build ...")."""
    if not os.environ.get("DLRUN_MKL_LIB"):
        site = Path(sysconfig.get_paths()["purelib"])
        found = sorted(site.glob("mkl-*.dist-info"))
        if found:
            return found[-1].name[len("mkl-") : -len(".dist-info")]
    prepare_mkl()
    buf = ctypes.create_string_buffer(256)
    lib.MKL_Get_Version_String(buf, len(buf))
    text = buf.value.decode(errors="replace")
    return text.split("Version", 1)[1].split()[0].split("-")[0] if "Version" in text else text


def sync_mkl_threads() -> None:
    """Give MKL (once prepared) as many threads as NumPy's OpenBLAS has now: when it is
    prepared, and after the thread count changed."""
    n = threads(OPENBLAS)
    if MKL in _threads_of and n >= 1 and threads(MKL) != n:
        mkl().handle.MKL_Set_Num_Threads(ctypes.c_int(n))


def threads(code: int) -> int:
    """How many threads library ``code`` uses now (0 when it is not loaded)."""
    getter = _threads_of.get(code)
    return int(getter()) if getter is not None else 0


def loaded() -> list[Library]:
    """The libraries products can run on here, OpenBLAS first (MKL where installed and
    usable in this process: :func:`mkl_problem`)."""
    found = [openblas()] if openblas() is not None else []
    return found + [mkl()] if mkl_problem() is None else found


# ----------------------------------------------------------------------- from Python
_ROW_MAJOR, _NO_TRANS, _TRANS = 101, 111, 112


def _layout(x: np.ndarray) -> tuple[bool, int] | None:
    """(transposed, leading dimension) of a 2-D array as BLAS reads it, or None when
    neither its rows nor its columns are contiguous."""
    size = x.itemsize
    s0, s1 = x.strides
    rows, cols = x.shape
    if (s1 == size or cols <= 1) and s0 % size == 0 and s0 >= max(1, cols) * size:
        return False, s0 // size
    if (s0 == size or rows <= 1) and s1 % size == 0 and s1 >= max(1, rows) * size:
        return True, s1 // size
    return None


def product(a: np.ndarray, b: np.ndarray, out: np.ndarray | None, lib: int) -> np.ndarray:
    """``a @ b`` (2-D, float32 or float64) on library ``lib``, into ``out`` if given.
    OpenBLAS through ``np.dot``; MKL through its cblas, reading transposed views as they
    are (copies only of operands that are neither row- nor column-contiguous)."""
    if lib == OPENBLAS or a.dtype != b.dtype or a.dtype.char not in "fd":
        return np.dot(a, b) if out is None else np.dot(a, b, out=out)
    m, k = a.shape
    n = b.shape[1]
    if b.shape[0] != k:
        raise ValueError(f"shapes {a.shape} and {b.shape} not aligned for a matrix product")
    c = out
    if c is None or not c.flags.c_contiguous or c.dtype != a.dtype or c.shape != (m, n):
        c = np.empty((m, n), dtype=a.dtype)
    la, lb = _layout(a), _layout(b)
    if la is None:
        a, la = np.ascontiguousarray(a), (False, max(1, k))
    if lb is None:
        b, lb = np.ascontiguousarray(b), (False, max(1, n))
    library = prepare_mkl()
    if library is None:
        raise RuntimeError(f"MKL cannot multiply here: {mkl_problem()}")
    _gemm(library, a, b, c, la, lb)
    if out is not None and c is not out:
        out[...] = c
        return out
    return c


def _gemm(library: Library, a, b, c, la=(False, None), lb=(False, None)) -> np.ndarray:
    """c = a @ b by ``library``'s cblas; la, lb: (transposed, leading dimension) of a and b
    (default: C-contiguous)."""
    m, k = a.shape
    n = b.shape[1]
    lda = la[1] if la[1] is not None else max(1, k)
    ldb = lb[1] if lb[1] is not None else max(1, n)
    call = library.sgemm if a.dtype.char == "f" else library.dgemm
    call(
        _ROW_MAJOR, _TRANS if la[0] else _NO_TRANS, _TRANS if lb[0] else _NO_TRANS, m, n, k,
        1.0, a.ctypes.data, lda, b.ctypes.data, ldb, 0.0, c.ctypes.data, max(1, n),
    )  # fmt: skip
    return c
