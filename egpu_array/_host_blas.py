"""NumPy's OpenBLAS kept to one thread while our blocked linalg runs its host steps.

The blocked factorizations (``_linalg_blocked``, ``_linalg_reduce``, ``_linalg_svd``) call NumPy's
BLAS for small host work (panel updates, the compact-WY ``T``) between launches of our own
threaded kernels. A multi-threaded OpenBLAS wakes its worker threads for such calls and leaves them
busy-waiting for a while afterwards, which takes the cores from our kernels: on this 2-core host
``apply_q`` of a 1000 x 1000 SVD took 113 ms (218 ms CPU) with OpenBLAS at 2 threads against
75 ms (114 ms CPU) at 1. :func:`single_threaded` sets OpenBLAS to one thread for the duration of a
blocked factorization and restores the caller's setting after it (nested uses are one).

Only NumPy's own OpenBLAS is touched, found next to NumPy as its wheels ship it; with any other
BLAS (MKL, Accelerate) or none found this does nothing.
"""
from __future__ import annotations

import ctypes
import functools
import glob
import os
import threading

__all__ = ["single_threaded", "one_blas_thread"]

_SYMBOLS = (("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
            ("openblas_get_num_threads64_", "openblas_set_num_threads64_"),
            ("openblas_get_num_threads", "openblas_set_num_threads"))
_lock = threading.Lock()
_depth = 0
_saved = None


@functools.lru_cache(maxsize=1)
def _controls():
    """(get, set) ctypes functions of NumPy's OpenBLAS, or None."""
    import numpy as np
    root = os.path.dirname(np.__file__)
    for path in sorted(glob.glob(os.path.join(os.path.dirname(root), "numpy.libs", "*openblas*"))
                       + glob.glob(os.path.join(root, ".dylibs", "*openblas*"))):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for get_name, set_name in _SYMBOLS:
            if hasattr(lib, get_name) and hasattr(lib, set_name):
                get, put = getattr(lib, get_name), getattr(lib, set_name)
                get.restype, get.argtypes = ctypes.c_int, []
                put.restype, put.argtypes = None, [ctypes.c_int]
                return get, put
    return None


class single_threaded:
    """``with single_threaded():`` NumPy's OpenBLAS runs on one thread inside (see the module)."""

    def __enter__(self):
        global _depth, _saved
        controls = _controls()
        with _lock:
            _depth += 1
            if _depth == 1 and controls is not None:
                _saved = controls[0]()
                if _saved > 1:
                    controls[1](1)
        return self

    def __exit__(self, *exc):
        global _depth, _saved
        controls = _controls()
        with _lock:
            _depth -= 1
            if _depth == 0 and controls is not None and _saved is not None and _saved > 1:
                controls[1](_saved)
            if _depth == 0:
                _saved = None
        return False


def one_blas_thread(fn):
    """Decorator: ``fn`` runs inside :class:`single_threaded`."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with single_threaded():
            return fn(*args, **kwargs)
    return wrapper
