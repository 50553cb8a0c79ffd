"""The argument slots of cuda launches: a ring of device blocks filled from pinned host memory.

A launch's int64 slots must be in device memory when its kernel runs, and must stay there until it
has run. Copying them from pageable memory makes the driver stage them (several microseconds); a
single device block would also serialize every launch on it. Here each launch takes the next entry
of a ring: its slots are written into the entry's pinned host bytes and copied (truly async, ordered
on the compute stream) into the entry's device bytes, which the kernel reads. The ring is cut into
groups; after the last entry of a group is used an event is recorded on the stream, and before the
group's first entry is used again (a lap later) that event is waited for, so neither the pinned
bytes nor the device bytes of an entry are overwritten while an earlier launch may still read them.
"""
from __future__ import annotations

import ctypes

from . import cuda_driver as cu

__all__ = ["ArgRing", "ENTRY_BYTES", "ENTRIES", "GROUP"]

#: bytes per ring entry (128 slots); a launch with more slots uses the device's own block
ENTRY_BYTES = 1024
#: entries in the ring
ENTRIES = 128
#: entries per event (the ring waits at most once per GROUP launches, a lap after)
GROUP = 16

#: memmove(dst, src, n) without argument conversion (ctypes.memmove converts each argument on
#: every call): called only with a c_void_p destination, a ctypes array or c_void_p source and a
#: c_size_t count
_memmove = ctypes.CFUNCTYPE(None)(ctypes.cast(ctypes.memmove, ctypes.c_void_p).value)


class ArgRing:
    """A ring of argument blocks on one device, used on one stream (see the module docstring).

    Not thread-safe: the device calls it under its lock."""

    def __init__(self, drv, stream):
        self.drv, self.stream = drv, stream
        self.device_base = drv.mem_alloc(ENTRIES * ENTRY_BYTES)
        self.host_base = drv.out_ptr("cuMemHostAlloc", ENTRIES * ENTRY_BYTES, cu.CU["CU_MEMHOSTALLOC_PORTABLE"],
                                     what=f"cuMemHostAlloc of {ENTRIES * ENTRY_BYTES} pinned bytes (launch arguments)")
        self.events = [drv.out_ptr("cuEventCreate", cu.CU["CU_EVENT_DISABLE_TIMING"])
                       for _ in range(ENTRIES // GROUP)]
        self.recorded = [False] * (ENTRIES // GROUP)
        self.next = 0
        # the per-launch calls take ready ctypes objects (no argument conversion, see Driver.raw):
        # each entry's host and device addresses, the stream, the byte counts of 0..128 slots
        self._copy = drv.raw("cuMemcpyHtoDAsync_v2")
        self._stream = ctypes.c_void_p(stream)
        self._hosts = [ctypes.c_void_p(self.host_base + i * ENTRY_BYTES) for i in range(ENTRIES)]
        self._devs = [ctypes.c_uint64(self.device_base + i * ENTRY_BYTES) for i in range(ENTRIES)]
        self._sizes = [ctypes.c_size_t(8 * k) for k in range(ENTRY_BYTES // 8 + 1)]

    def put(self, src, size: int, name: str) -> int:
        """Queue the copy of ``size`` (at most ENTRY_BYTES) bytes at ``src`` (a ctypes array, a
        ``c_void_p`` or an int host address) into the next entry; its device address. Call
        :meth:`close` once the launches reading it are queued."""
        i = self.next
        if not i % GROUP:  # a group starts again: the launches of its last lap must be done
            g = i // GROUP
            if self.recorded[g]:
                self.drv.call("cuEventSynchronize", self.events[g], what=f"waiting for argument block {g}")
                self.recorded[g] = False
        if type(src) is int:
            src = ctypes.c_void_p(src)
        host = self._hosts[i]
        nbytes = self._sizes[size >> 3] if not size & 7 else ctypes.c_size_t(size)
        _memmove(host, src, nbytes)
        code = self._copy(self._devs[i], host, nbytes, self._stream)
        if code:
            raise cu.error_for(code, f"copying the arguments of {name}", self.drv.describe(code))
        return self.device_base + i * ENTRY_BYTES

    def close(self) -> None:
        """The launches reading the current entry are queued: move on (ending a group records its
        event on the stream)."""
        i = self.next
        self.next = (i + 1) % ENTRIES
        if (i + 1) % GROUP == 0:
            g = i // GROUP
            self.drv.call("cuEventRecord", self.events[g], self.stream, what=f"recording argument block {g}")
            self.recorded[g] = True
