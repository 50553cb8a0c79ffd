"""The cpu device: host memory, kernels JIT-compiled for the host CPU, run on worker threads.

Kernels are object code from ``kernels.targets.HostTarget``, loaded into one MCJIT engine and called
through ctypes (which releases the GIL), so the work of one launch splits across threads: a large
launch is cut into chunks that the calling thread and the workers claim one at a time
(``cpu_pool.WorkQueue``); small ones stay on the calling thread.
"""
from __future__ import annotations

import ctypes
import threading
import time
import weakref

import llvmlite.binding as llvm
import numpy as np

from .. import profiler
from .._errors import KernelLaunchError
from .._info import config
from ..kernels.targets import host_target
from .cpu_pool import WorkQueue
from .. import _native_stack as native_stack
from .device import Device, Program, register_device
from .pool import PoolAllocator

__all__ = ["CPUDevice", "THREAD_MIN_ITEMS"]

_KERNEL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_TAIL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

#: below this many work items a launch stays on one thread (handing chunks out costs more)
THREAD_MIN_ITEMS = 1 << 18
#: a threaded launch is cut into about this many chunks per thread, each of at least
#: CHUNK_MIN_ITEMS work items: threads that start late or run slower take fewer of them
CHUNKS_PER_THREAD, CHUNK_MIN_ITEMS = 8, 1 << 16


class HostAllocator:
    """Host memory from NumPy (64-byte aligned), kept alive by the returned handle."""

    def alloc(self, nbytes: int):
        raw = np.empty(nbytes + 64, dtype=np.uint8)
        ptr = raw.ctypes.data
        pad = (-ptr) % 64
        return ptr + pad, raw

    def release(self, ptr: int, handle) -> None:
        del handle


class CPUDevice(Device):
    """The host CPU."""

    kind = "cpu"
    host_memory = True

    def __init__(self, index: int = 0, target=None, num_threads: int | None = None):
        """``target`` and ``num_threads`` (default: the host target, EGPU_ARRAY_NUM_THREADS) are for
        devices built on this one, such as the tests' emulators of the cuda execution model."""
        self.name = "cpu"
        self.target = target or host_target()
        self.allocator = PoolAllocator(self, HostAllocator())
        self.num_threads = config().num_threads if num_threads is None else num_threads
        self._queue = None  # the WorkQueue, made by the first launch that uses threads
        self._engine = self.target.jit_engine()
        self._engine_lock = threading.Lock()

    @property
    def capabilities(self) -> dict:
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def load(self, binary: bytes, fname: str, spec) -> Program:
        """Link object code into the JIT and return the kernel ``fname`` in it."""
        if not native_stack.deep_enough():  # (the linker's stack: see native_stack)
            return native_stack.call(self.load, binary, fname, spec)
        with self._engine_lock:
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(binary))
            self._engine.finalize_object()
            addr = self._engine.get_function_address(fname)
            tail = self._engine.get_function_address(fname + "_fin") if getattr(spec, "chunked", False) else 0
        if not addr:
            raise KernelLaunchError(f"cpu: kernel {fname} not found in its compiled object")
        return Program(fname, _KERNEL_TYPE(addr), spec, _TAIL_TYPE(tail) if tail else None, addr)

    def _work_queue(self) -> WorkQueue:
        with self._engine_lock:
            if self._queue is None:  # (on the host target: a device's own target may emit other code)
                self._queue = WorkQueue(host_target(), self.num_threads - 1, config().spin_seconds)
                weakref.finalize(self, self._queue.close, False)
            return self._queue

    def launch(self, program: Program, args, n: int, nbytes: int = 0, work: int | None = None) -> None:
        """Run ``program`` over work items ``[0, n)``; ``args`` is the address of the int64 slots.

        ``work`` (elements touched, default ``n``) decides whether threads pay: below
        THREAD_MIN_ITEMS the launch stays on the calling thread (or, where that thread's stack is
        too small for the kernels, on a helper thread: see native_stack).
        """
        if not native_stack.deep_enough():
            return native_stack.call(self.launch, program, args, n, nbytes, work)
        if not profiler._active and (work if work is not None else n) < THREAD_MIN_ITEMS:
            program.fn(args, 0, n)  # a small launch, not profiled: the kernel only
            if program.tail is not None:
                program.tail(args)
            return
        t0 = time.perf_counter()
        work = n if work is None else work
        chunks = min(n, CHUNKS_PER_THREAD * self.num_threads, work // CHUNK_MIN_ITEMS)
        if self.num_threads <= 1 or work < THREAD_MIN_ITEMS or chunks < 2 or not program.addr \
                or not self._run_chunks(program, args, n, chunks):
            program.fn(args, 0, n)
        if program.tail is not None:
            program.tail(args)
        profiler.record_launch(program.name, t0, time.perf_counter(), nbytes)

    def _run_chunks(self, program: Program, args, n: int, chunks: int) -> bool:
        """``program`` over ``[0, n)`` in about ``chunks`` chunks on the work queue (False: the
        queue is busy with another thread's launch and nothing ran)."""
        grain = -(-n // chunks)
        if n >= 4096 * chunks:
            grain = (grain + 63) & ~63  # keep chunk borders off shared cache lines
        queue = self._queue or self._work_queue()
        return queue.run(program.addr, ctypes.addressof(args), n, grain)

    def copy_in(self, buf, offset: int, host: np.ndarray) -> None:
        """Copy a contiguous host array into the buffer at byte ``offset`` (host memory: memmove)."""
        ctypes.memmove(buf.ptr + offset, host.ctypes.data, host.nbytes)

    def copy_out(self, buf, offset: int, host: np.ndarray) -> None:
        """Copy bytes from the buffer at byte ``offset`` into a contiguous host array."""
        ctypes.memmove(host.ctypes.data, buf.ptr + offset, host.nbytes)

    def host_view(self, buf, offset: int, nbytes: int) -> np.ndarray:
        """The buffer's bytes as a NumPy uint8 array sharing the memory; it keeps ``buf`` alive."""
        return np.asarray(_HostMemory(buf, offset, nbytes))


class _HostMemory:
    """Exposes a Buffer's bytes through ``__array_interface__`` and keeps the Buffer alive."""

    def __init__(self, buf, offset: int, nbytes: int):
        self.buf = buf
        self.__array_interface__ = {"shape": (nbytes,), "typestr": "|u1", "version": 3,
                                    "data": (buf.ptr + offset, False)}


register_device("cpu", CPUDevice, lambda: ["cpu"])
