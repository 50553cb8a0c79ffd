"""Host-side copies of the GPU devices' transfers: filling and draining pinned staging buffers.

One thread's memmove (about 10 GB/s) is slower than a PCIe 5 link (about 55 GB/s), so
:func:`host_copy` splits a copy among :data:`COPY_THREADS` threads; ctypes releases the GIL during
each memmove, so the pieces run at once.
"""
from __future__ import annotations

import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor

__all__ = ["host_copy", "host_address", "COPY_THREADS", "COPY_PIECE"]

#: host threads that fill (or drain) one staging buffer together: one thread's memmove (about
#: 10 GB/s) is slower than a PCIe 5 link (about 55 GB/s), so a chunk is split among them
COPY_THREADS = max(1, min(8, (os.cpu_count() or 1) // 2))
#: the smallest piece of a chunk handed to a copy thread
COPY_PIECE = 2 << 20


_copy_pool = None
_copy_pool_lock = threading.Lock()


def host_copy(dst: int, src: int, size: int) -> None:
    """``memmove(dst, src, size)`` between host addresses, split among :data:`COPY_THREADS`
    threads in pieces of at least :data:`COPY_PIECE` bytes (ctypes releases the GIL during each
    memmove, so the pieces run at once); returns when every byte is copied."""
    global _copy_pool
    parts = min(COPY_THREADS, size // COPY_PIECE)
    if parts <= 1:
        ctypes.memmove(dst, src, size)
        return
    if _copy_pool is None:
        with _copy_pool_lock:
            if _copy_pool is None:
                _copy_pool = ThreadPoolExecutor(COPY_THREADS, thread_name_prefix="egpu-copy")
    step = (-(-size // parts) + 63) // 64 * 64  # 64-byte aligned pieces
    cuts = [(off, min(step, size - off)) for off in range(0, size, step)]
    futures = [_copy_pool.submit(ctypes.memmove, dst + off, src + off, n) for off, n in cuts[1:]]
    ctypes.memmove(dst, src, cuts[0][1])  # this thread takes the first piece
    for f in futures:
        f.result()


def host_address(host) -> tuple:
    """(nbytes, address) of a contiguous host array (NumPy)."""
    import numpy as np
    arr = np.asarray(host)
    if not arr.flags.c_contiguous:
        raise ValueError("cuda: host side of a copy must be C-contiguous")
    return arr.nbytes, arr.ctypes.data
