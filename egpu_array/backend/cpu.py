"""The cpu device: host memory, kernels JIT-compiled for the host CPU, run on a thread pool.

Kernels are object code from ``kernels.targets.HostTarget``, loaded into one MCJIT engine and called
through ctypes (which releases the GIL), so the work of one launch splits across threads: large
launches are cut into one contiguous range per thread, small ones stay on the calling thread.
"""
from __future__ import annotations

import ctypes
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import llvmlite.binding as llvm
import numpy as np

from .. import profiler
from .._errors import KernelLaunchError
from .._info import config
from ..kernels.targets import host_target
from .device import Device, Program, register_device
from .pool import PoolAllocator

__all__ = ["CPUDevice", "THREAD_MIN_ITEMS"]

_KERNEL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64)
_TAIL_TYPE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

#: below this many work items a launch stays on one thread (waking a thread costs more)
THREAD_MIN_ITEMS = 1 << 18


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
        self._pool = ThreadPoolExecutor(max_workers=self.num_threads, thread_name_prefix="egpu-cpu") \
            if self.num_threads > 1 else None
        self._engine = self.target.jit_engine()
        self._engine_lock = threading.Lock()

    @property
    def capabilities(self) -> dict:
        return {"boolean indexing": True, "data-dependent shapes": True, "max dimensions": 64}

    def load(self, binary: bytes, fname: str, spec) -> Program:
        """Link object code into the JIT and return the kernel ``fname`` in it."""
        with self._engine_lock:
            self._engine.add_object_file(llvm.ObjectFileRef.from_data(binary))
            self._engine.finalize_object()
            addr = self._engine.get_function_address(fname)
            tail = self._engine.get_function_address(fname + "_fin") if getattr(spec, "chunked", False) else 0
        if not addr:
            raise KernelLaunchError(f"cpu: kernel {fname} not found in its compiled object")
        return Program(fname, _KERNEL_TYPE(addr), spec, _TAIL_TYPE(tail) if tail else None)

    def launch(self, program: Program, args, n: int, nbytes: int = 0, work: int | None = None) -> None:
        """Run ``program`` over work items ``[0, n)``; ``args`` is the address of the int64 slots.

        ``work`` (elements touched, default ``n``) decides whether threads pay: below
        THREAD_MIN_ITEMS the launch stays on the calling thread.
        """
        if not profiler._active and (work if work is not None else n) < THREAD_MIN_ITEMS:
            program.fn(args, 0, n)  # a small launch, not profiled: the kernel only
            if program.tail is not None:
                program.tail(args)
            return
        t0 = time.perf_counter()
        work = n if work is None else work
        nt = min(self.num_threads, n, max(1, work // (THREAD_MIN_ITEMS // 2)))
        if nt <= 1 or work < THREAD_MIN_ITEMS or self._pool is None:
            program.fn(args, 0, n)
        else:
            step = (n + nt - 1) // nt
            if n >= 4096 * nt:  # (rounding costs at most 1.6% of balance: 2500 rows stay 1250 + 1250)
                step = (step + 63) & ~63  # keep chunk borders off shared cache lines
            futs = [self._pool.submit(program.fn, args, s, min(s + step, n)) for s in range(step, n, step)]
            program.fn(args, 0, min(step, n))
            for f in futs:
                f.result()
        if program.tail is not None:
            program.tail(args)
        profiler.record_launch(program.name, t0, time.perf_counter(), nbytes)

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
