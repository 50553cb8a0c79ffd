"""Native work on a thread with stack enough for it.

LLVM's compiler and some of our kernels (the column reductions' 64 KiB accumulator tile, the radix
sort's count tables, a sorting network's row) need more stack than a thread made after
``threading.stack_size(32768)`` or ``(65536)`` has: there they overflow it, and the process dies
with SIGSEGV. NumPy itself runs in such threads, so we must too. Two rules:

- the threads we make (the cpu device's workers, the helper below) get ``THREAD_STACK`` bytes
  whatever ``threading.stack_size`` says (:func:`start_thread`);
- native work called from a thread whose stack is smaller than ``NEED`` runs on a helper thread
  (one, kept for later calls) while the caller waits (:func:`call`); its result or exception
  comes back to the caller.

A thread's stack size is read once per thread (``pthread_getattr_np`` on Linux, glibc or musl;
``pthread_get_stacksize_np`` on macOS). Where neither exists the stack counts as deep enough.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import queue
import sys
import threading

__all__ = ["NEED", "THREAD_STACK", "stack_bytes", "deep_enough", "call", "start_thread"]

#: below this many bytes of stack, native work moves to a helper thread (measured need: a
#: compile plus the largest kernel frame runs in 128 KiB, fails in 64 KiB)
NEED = 512 << 10
#: the stack of the threads we start
THREAD_STACK = 8 << 20

_local = threading.local()
_size_lock = threading.Lock()  # threading.stack_size is process-wide: set, start, restore


@functools.cache
def _libc():
    try:
        return ctypes.CDLL(None if sys.platform != "darwin" else ctypes.util.find_library("c"))
    except OSError:
        return None


def stack_bytes() -> int | None:
    """The calling thread's stack size in bytes, or None where this platform does not say."""
    libc = _libc()
    if libc is None:
        return None
    if hasattr(libc, "pthread_get_stacksize_np"):  # macOS
        libc.pthread_self.restype = ctypes.c_void_p
        libc.pthread_get_stacksize_np.restype = ctypes.c_size_t
        libc.pthread_get_stacksize_np.argtypes = [ctypes.c_void_p]
        return int(libc.pthread_get_stacksize_np(libc.pthread_self()))
    if not hasattr(libc, "pthread_getattr_np"):
        return None
    libc.pthread_self.restype = ctypes.c_ulong
    libc.pthread_getattr_np.argtypes = [ctypes.c_ulong, ctypes.c_void_p]
    attr = ctypes.create_string_buffer(256)  # pthread_attr_t is 56-64 bytes
    if libc.pthread_getattr_np(libc.pthread_self(), attr) != 0:
        return None
    try:
        addr, size = ctypes.c_void_p(), ctypes.c_size_t()
        if libc.pthread_attr_getstack(attr, ctypes.byref(addr), ctypes.byref(size)) != 0:
            return None
        return int(size.value)
    finally:
        libc.pthread_attr_destroy(attr)


def deep_enough() -> bool:
    """Whether the calling thread's stack holds native work (``NEED`` bytes; cached per thread)."""
    ok = getattr(_local, "ok", None)
    if ok is None:
        size = stack_bytes()
        ok = _local.ok = size is None or size >= NEED
    return ok


def start_thread(target, args=(), name: str | None = None) -> threading.Thread:
    """Start a daemon thread running ``target(*args)`` with a stack of ``THREAD_STACK`` bytes."""
    t = threading.Thread(target=target, args=args, name=name, daemon=True)
    with _size_lock:
        old = threading.stack_size(THREAD_STACK)
        try:
            t.start()
        finally:
            threading.stack_size(old)
    return t


class _Helper:
    """One thread with a deep stack that runs the calls handed to it, one at a time (started on
    first use, again after a fork)."""

    def __init__(self):
        self.jobs: "queue.SimpleQueue" = queue.SimpleQueue()
        self.thread = start_thread(self._serve, name="egpu-deep-stack")

    def _serve(self) -> None:
        while True:
            fn, args, done, out = self.jobs.get()
            try:
                out.append((True, fn(*args)))
            except BaseException as e:  # handed to the caller, raised there
                out.append((False, e))
            done.set()

    def run(self, fn, args):
        done, out = threading.Event(), []
        self.jobs.put((fn, args, done, out))
        done.wait()
        ok, value = out[0]
        if not ok:
            raise value
        return value


_helper: _Helper | None = None
_helper_lock = threading.Lock()


def _reset_after_fork() -> None:
    global _size_lock, _helper, _helper_lock
    _size_lock = threading.Lock()  # (another thread may have held it at the fork)
    _helper, _helper_lock = None, threading.Lock()  # (the parent's helper thread is not in the child)


if hasattr(os, "register_at_fork"):  # before cpu_pool's: the child restarts its workers with it
    os.register_at_fork(after_in_child=_reset_after_fork)


def call(fn, *args):
    """``fn(*args)``, on this thread when its stack is deep enough, else on the helper thread
    (the caller waits; calls from several such threads take turns)."""
    global _helper
    if deep_enough():
        return fn(*args)
    with _helper_lock:
        if _helper is None:
            _helper = _Helper()
    return _helper.run(fn, args)
