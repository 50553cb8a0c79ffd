"""Device memory of the cuda device: the raw allocations under its caching pool, the pool's
ordering of recycled blocks after the kernels that used them, and the pinned staging buffers of
host-device copies (used by :mod:`.cuda`)."""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING

from .._errors import DeviceError
from . import cuda_driver as cu
from .pool import PoolAllocator

if TYPE_CHECKING:
    from .cuda import CUDADevice

__all__ = ["CudaRaw", "CudaPool", "Staging"]


class CudaRaw:
    """Raw device memory for the pool: ``(device pointer, None)``."""

    def __init__(self, device: "CUDADevice"):
        self.device = device

    def alloc(self, nbytes: int):
        self.device._bind()
        return self.device.drv.mem_alloc(nbytes), None

    def release(self, ptr: int, handle) -> None:
        dev = self.device
        dev._bind()
        with dev._lock:
            ev = dev._freed.pop(ptr, None)
            if ev is not None:
                dev._free_events.append(ev)
        dev.drv.call("cuMemFree_v2", ptr)  # (cuMemFree waits for the device to finish with it)


class CudaPool(PoolAllocator):
    """The caching pool, plus an event per freed block recorded on the compute stream: a copy into
    a recycled block waits for the kernels that used it before (only those), so uploads of new
    data overlap the kernels already queued."""

    def free(self, buf) -> None:
        dev = self.device
        try:
            with dev._lock:
                if not getattr(dev._tls, "bound", False):
                    dev._bind()
                free_events = dev._free_events
                # (events as c_void_p: recorded here without argument conversion, see Driver.raw)
                ev = free_events.pop() if free_events else \
                    ctypes.c_void_p(dev.drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DISABLE_TIMING"]))
                code = dev._record(ev, dev._compute_p)
                if code:
                    raise cu.error_for(code, "cuEventRecord", dev.drv.describe(code))
                freed = dev._freed
                ptr = buf.ptr
                old = freed.pop(ptr, None)
                if old is not None:
                    free_events.append(old)
                freed[ptr] = ev
        except DeviceError:  # a lost device: nothing to order against any more
            pass
        super().free(buf)


class Staging:
    """Pinned host buffers (``cuda.STAGING_BUFFERS``), each with an event marking the end of its
    last DMA."""

    def __init__(self, drv, nbytes: int, count: int):
        self.drv, self.nbytes, self.count = drv, nbytes, count
        self.ptrs = [drv.out_ptr("cuMemHostAlloc", nbytes, cu.CU["CU_MEMHOSTALLOC_PORTABLE"],
                                 what=f"cuMemHostAlloc of {nbytes} pinned bytes") for _ in range(count)]
        self.events = [drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DISABLE_TIMING"]) for _ in range(count)]
        self.used = [False] * count

    def wait(self, k: int) -> None:
        """Block until buffer ``k``'s previous DMA is done."""
        if self.used[k]:
            self.drv.call("cuEventSynchronize", self.events[k], what="waiting for a staging copy")
