import numba
import numpy as np  # noqa: F401
from threadpoolctl import threadpool_info, threadpool_limits

from dlrun.runs.threads import default_threads, set_threads


def blas_threads():
    return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]


def test_set_threads_limits_numba_and_blas(monkeypatch):
    before_numba = numba.get_num_threads()
    with threadpool_limits(limits=None):  # restores BLAS afterwards
        assert set_threads(1) == 1
        assert numba.get_num_threads() == 1
        assert blas_threads() and all(n == 1 for n in blas_threads())
    numba.set_num_threads(before_numba)
    assert set_threads(None) is None
    monkeypatch.setenv("DLRUN_THREADS", "3")
    assert default_threads() == 3


def test_set_threads_first_thing_still_gets_the_workqueue_layer():
    """set_threads starts Numba's thread pool: called before any kernel module is imported,
    it must not start the default (OpenMP) layer, whose spinning threads slow the CNN 2.5x."""
    import subprocess
    import sys

    code = (
        "from dlrun.runs.threads import set_threads; set_threads(1); import numba; "
        "print(numba.threading_layer())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "workqueue"
