"""A caching pool over any Allocator: freed blocks are kept by size class and reused.

Sizes round up to a class (256-byte granules below 64 KiB, then eight classes per power of two),
so temporaries of similar size share blocks. On a failed allocation the pool asks the caches that
keep device arrays (registered with :func:`on_memory_pressure`: the FFT tables) to let theirs go,
empties its own cache and retries once, then raises DeviceOutOfMemoryError naming the request and
the pool's state.
"""
from __future__ import annotations

import threading

from .. import profiler
from .._errors import DeviceOutOfMemoryError
from .device import Buffer

__all__ = ["PoolAllocator", "size_class", "on_memory_pressure"]

#: callbacks ``release(device)`` that drop what a cache holds on a device (out of memory there)
_PRESSURE_HOOKS: list = []


def on_memory_pressure(release) -> None:
    """Register ``release(device)``, called when an allocation on ``device`` fails, before the
    retry: it should drop the device arrays a cache keeps (they go back to the pool)."""
    _PRESSURE_HOOKS.append(release)


def size_class(nbytes: int) -> int:
    """The rounded size a request of ``nbytes`` is served with."""
    if nbytes <= 65536:
        return max(256, (nbytes + 255) & ~255)
    step = 1 << (nbytes.bit_length() - 4)  # eight classes per octave
    return (nbytes + step - 1) // step * step


class PoolAllocator:
    """Caches freed blocks of a raw allocator, keeping at most ``max_cached`` bytes."""

    def __init__(self, device, raw, max_cached: int = 2 << 30):
        self.device = device
        self.raw = raw
        self.max_cached = max_cached
        self._free: dict[int, list] = {}
        self.cached_bytes = 0
        self.in_use_bytes = 0
        # re-entrant: a Buffer's __del__ (run by the garbage collector at any allocation, possibly
        # while this thread holds the lock) returns its block through free()
        self._lock = threading.RLock()

    def alloc(self, nbytes: int) -> Buffer:
        """A Buffer of at least ``nbytes`` bytes."""
        size = max(256, (nbytes + 255) & ~255) if nbytes <= 65536 else size_class(nbytes)
        with self._lock:
            blocks = self._free.get(size)
            if blocks:
                ptr, handle = blocks.pop()
                self.cached_bytes -= size
                self.in_use_bytes += size
                return Buffer(self.device, size, ptr, handle)
        try:
            ptr, handle = self.raw.alloc(size)
        except MemoryError:
            for release in _PRESSURE_HOOKS:
                release(self.device)
            self.empty_cache()
            try:
                ptr, handle = self.raw.alloc(size)
            except MemoryError:
                raise DeviceOutOfMemoryError(
                    f"out of memory on {self.device}: requested {nbytes} bytes; pool state: "
                    f"{self.in_use_bytes} bytes in use, caches emptied") from None
        with self._lock:
            self.in_use_bytes += size
        profiler.count("allocations")
        profiler.count("bytes_allocated", size)
        return Buffer(self.device, size, ptr, handle)

    def free(self, buf: Buffer) -> None:
        """Return a buffer's block to the cache (or to the raw allocator when the cache is full)."""
        size = buf.nbytes
        with self._lock:
            self.in_use_bytes -= size
            if self.cached_bytes + size <= self.max_cached:
                self._free.setdefault(size, []).append((buf.ptr, buf.handle))
                self.cached_bytes += size
                return
        self.raw.release(buf.ptr, buf.handle)

    def empty_cache(self) -> None:
        """Give every cached block back to the raw allocator."""
        with self._lock:
            blocks = [b for lst in self._free.values() for b in lst]
            self._free.clear()
            self.cached_bytes = 0
        for ptr, handle in blocks:
            self.raw.release(ptr, handle)
