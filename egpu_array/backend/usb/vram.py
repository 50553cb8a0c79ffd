"""First-fit allocator of VRAM offsets for a GPU behind the bridge.

It hands out byte ranges of the BAR2 aperture (the bridge has no allocator of
its own); data moves with :meth:`UsbGpuLink.copy_in` / ``copy_out`` at those
offsets. Free ranges are kept sorted and merged with their neighbours.
"""
from __future__ import annotations

import bisect

from egpu_array._errors import DeviceOutOfMemoryError

ALIGN = 256


class VramAllocator:
    """Offsets in [0, size), aligned to ``align`` bytes."""

    def __init__(self, size: int, align: int = ALIGN):
        """Manage ``size`` bytes of VRAM."""
        self.size, self.align = size, align
        self.free_ranges: list[tuple[int, int]] = [(0, size)]  # sorted (start, length)
        self.live: dict[int, int] = {}
        self.starts: list[int] = []  # sorted keys of ``live``

    @property
    def used(self) -> int:
        """Bytes currently allocated (after rounding)."""
        return sum(self.live.values())

    def alloc(self, nbytes: int) -> int:
        """Offset of a new range of ``nbytes``; DeviceOutOfMemoryError when none fits."""
        if nbytes < 0:
            raise ValueError(f"VramAllocator.alloc: size must be >= 0, got {nbytes}")
        need = max(self.align, -(-nbytes // self.align) * self.align)
        for i, (start, length) in enumerate(self.free_ranges):
            if length >= need:
                if length == need:
                    del self.free_ranges[i]
                else:
                    self.free_ranges[i] = (start + need, length - need)
                self.live[start] = need
                bisect.insort(self.starts, start)
                return start
        raise DeviceOutOfMemoryError(
            f"VramAllocator.alloc: no free range of {need} bytes (used {self.used} of "
            f"{self.size}, largest free {max((n for _, n in self.free_ranges), default=0)})")

    def free(self, offset: int) -> None:
        """Return the range that :meth:`alloc` gave at ``offset``."""
        if offset not in self.live:
            raise ValueError(f"VramAllocator.free: {offset:#x} is not an allocated offset")
        length = self.live.pop(offset)
        del self.starts[bisect.bisect_left(self.starts, offset)]
        i = bisect.bisect(self.free_ranges, (offset, length))
        self.free_ranges.insert(i, (offset, length))
        if i + 1 < len(self.free_ranges) and offset + length == self.free_ranges[i + 1][0]:
            self.free_ranges[i] = (offset, length + self.free_ranges.pop(i + 1)[1])
        if i > 0 and sum(self.free_ranges[i - 1]) == offset:
            prev = self.free_ranges.pop(i - 1)
            self.free_ranges[i - 1] = (prev[0], prev[1] + self.free_ranges[i - 1][1])

    def find(self, offset: int):
        """(start, end) of the live range containing ``offset``, or None."""
        i = bisect.bisect_right(self.starts, offset) - 1
        if i < 0:
            return None
        start = self.starts[i]
        end = start + self.live[start]
        return (start, end) if offset < end else None
