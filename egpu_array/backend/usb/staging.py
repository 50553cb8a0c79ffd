"""SRAM-staged copies between host memory and VRAM behind an ASM24 bridge.

The GPU cannot reach host RAM; the bridge's 512 KiB SRAM is the only memory both
sides see. Copies go through two 256 KiB windows (slots 0 and 16), alternating,
so the bulk transfer of one chunk overlaps the GPU copy of the previous one:

* copy-in: each chunk is padded to 512 B and ends in the sentinel
  ``0x51000000 | seq``; the GPU copy engine waits for it, copies the window to
  VRAM and writes ``seq + 1`` to the fence (XDATA 0xA800). A window is armed
  again only after the fence shows its previous chunk done.
* copy-out: the engine copies VRAM into a window once the host has credited it
  (XDATA 0xA804), then writes the release register, which lets the armed F2 bulk
  IN go. The host reads each chunk and credits its window.

A failed copy raises a DeviceError subclass and returns nothing.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass

from egpu_array._errors import DeviceError, LinkError, LinkTimeoutError

from .asm24 import SECTOR, SRAM_SLOTS, Asm24
from .memmap import (CE_OP_COPY_IN, CE_OP_COPY_OUT, COPY_IN_CHUNK, COPY_OUT_CHUNK,
                     CREDIT_XDATA, FENCE_XDATA, LTSSM_L0, WINDOW_SLOTS, ce_offset, padded_in,
                     padded_out, sentinel)
from .pcie import GpuInfo, PcieBus
from .transport import UsbLink

MASK32 = 0xFFFFFFFF


class SramSlots:
    """First-fit allocator of the 32 x 16 KiB SRAM slots."""

    def __init__(self) -> None:
        self.used = [False] * SRAM_SLOTS

    def alloc(self, count: int) -> int:
        """Start slot of ``count`` free consecutive slots; MemoryError if none."""
        for start in range(SRAM_SLOTS - count + 1):
            if not any(self.used[start:start + count]):
                self.used[start:start + count] = [True] * count
                return start
        raise MemoryError(f"SramSlots.alloc: no {count} consecutive free slots of "
                          f"{SRAM_SLOTS}")

    def free(self, start: int, count: int) -> None:
        """Return slots [start, start + count)."""
        self.used[start:start + count] = [False] * count


@dataclass
class LinkStats:
    """Bytes and link-clock seconds of completed copies, per direction."""

    h2d_bytes: int = 0
    h2d_seconds: float = 0.0
    d2h_bytes: int = 0
    d2h_seconds: float = 0.0

    def rate(self, direction: str) -> float:
        """Bytes per second for 'h2d' or 'd2h' (0 before any copy)."""
        b, s = getattr(self, f"{direction}_bytes"), getattr(self, f"{direction}_seconds")
        return b / s if s else 0.0


class EmuCopyEngine:
    """Host side of the emulated GPU copy engine: one job = 8 dwords in BAR0.

    A real GPU needs its driver's copy engine (SDMA ring, NVIDIA CE) here instead.
    """

    def __init__(self, bar0):
        """Program through ``bar0`` (a :class:`~.pcie.Bar`)."""
        self.bar0 = bar0

    def start(self, op: int, vram: int, total: int, chunk: int, windows: int, seq: int) -> None:
        """Write the job registers and ring the doorbell (one streaming write)."""
        regs = struct.pack("<8I", op, vram & MASK32, vram >> 32, total, chunk, windows,
                           seq & MASK32, 1)
        self.bar0.write(ce_offset("op"), regs)


class UsbGpuLink:
    """A GPU behind an ASM24 bridge: VRAM copies, BAR registers, link statistics."""

    def __init__(self, link: UsbLink, windows: int = 2, fence_timeout_s: float = 1.0):
        """Power up PCIe, enumerate, and reserve ``windows`` (1 or 2) staging windows."""
        if windows not in (1, 2):
            raise ValueError(f"UsbGpuLink: windows must be 1 or 2, got {windows}")
        self.windows = windows
        self.fence_timeout_s = fence_timeout_s
        self.stats = LinkStats()
        self._connect(link)

    @classmethod
    def open(cls, backend=None, index: int = 0, **kwargs) -> "UsbGpuLink":
        """Find and open a bridge with pyusb ``backend`` (None: libusb)."""
        return cls(UsbLink.open(backend, index), **kwargs)

    def _connect(self, link: UsbLink) -> None:
        self.link = link
        self.proto = Asm24(link)
        self.bus = PcieBus(self.proto)
        self.bus.power_up()
        self.gpu: GpuInfo = self.bus.enumerate()
        if 0 not in self.gpu.bars or 2 not in self.gpu.bars:
            raise DeviceError("UsbGpuLink: expected GPU BAR0 (registers) and BAR2 (VRAM)")
        self.engine = EmuCopyEngine(self.gpu.bars[0])
        self.slots = SramSlots()
        self.window_slots = [self.slots.alloc(WINDOW_SLOTS) for _ in range(self.windows)]
        self._fence = self.proto.read32_xdata(FENCE_XDATA)
        self._seq = self._fence
        self._dirty = False

    def reconnect(self) -> None:
        """After a replug: find the bridge again on the same backend and bring it up."""
        self.link.close()
        self._connect(UsbLink.open(self.link.backend))

    def close(self) -> None:
        """Release the USB device."""
        self.link.close()

    @property
    def vram_size(self) -> int:
        """Bytes of VRAM reachable through BAR2 (the aperture size)."""
        return self.gpu.bars[2].size

    # -- registers --------------------------------------------------------------
    def read32(self, bar: int, offset: int) -> int:
        """One dword of BAR ``bar`` (a TLP round trip)."""
        return self.gpu.bars[bar].read32(offset)

    def write32(self, bar: int, offset: int, value: int) -> None:
        """One dword to BAR ``bar`` (a posted TLP)."""
        self.gpu.bars[bar].write32(offset, value)

    # -- copies -----------------------------------------------------------------
    def _check(self, func: str, offset: int, nbytes: int) -> None:
        if offset < 0 or offset + nbytes > self.vram_size:
            raise ValueError(f"UsbGpuLink.{func}: {nbytes} bytes at VRAM offset {offset:#x} "
                             f"exceed VRAM ({self.vram_size:#x} bytes)")

    def _begin(self, nchunks: int) -> int:
        if self._dirty:  # a failed copy may have left a DMA armed
            self.link.reset_pipes()
            self._fence = self.proto.read32_xdata(FENCE_XDATA)
            self._seq = self._fence
            self._dirty = False
        seq0, self._seq = self._seq, (self._seq + nchunks) & MASK32
        return seq0

    def _arm(self, k: int, nbytes: int, to_host: bool):
        """Arm the F2 DMA for chunk ``k``; returns a function that re-arms it."""
        slot = self.window_slots[k % self.windows]

        def arm() -> None:
            self.proto.arm_sram(nbytes // SECTOR, to_host, slot, WINDOW_SLOTS)
        arm()
        return arm

    def copy_in(self, vram_offset: int, host_bytes) -> None:
        """Copy ``host_bytes`` (any bytes-like) to VRAM at ``vram_offset``."""
        data = memoryview(host_bytes).cast("B")
        n = len(data)
        self._check("copy_in", vram_offset, n)
        if n == 0:
            return
        nchunks = math.ceil(n / COPY_IN_CHUNK)
        t0 = self.link.now()
        seq0 = self._begin(nchunks)
        try:
            self.engine.start(CE_OP_COPY_IN, vram_offset, n, COPY_IN_CHUNK, self.windows, seq0)
            for k in range(nchunks):
                if k >= self.windows:  # the window's previous chunk (of this copy) is done;
                    # earlier copies finished before they returned (and a copy-out's sequence
                    # numbers never reach the fence, so waiting on them would hang)
                    self._wait_fence(seq0 + k - self.windows + 1)
                payload = data[k * COPY_IN_CHUNK:(k + 1) * COPY_IN_CHUNK]
                size = padded_in(len(payload))
                chunk = b"".join((payload, bytes(size - len(payload) - 4),
                                  sentinel(seq0 + k).to_bytes(4, "little")))
                arm = self._arm(k, size, False)  # arms now; called again to re-arm
                self.link.bulk_out(chunk, rearm=arm)
            self._wait_fence(seq0 + nchunks)
        except DeviceError:
            self._dirty = True
            raise
        self.stats.h2d_bytes += n
        self.stats.h2d_seconds += self.link.now() - t0

    def copy_out(self, vram_offset: int, nbytes: int) -> bytes:
        """Read ``nbytes`` of VRAM at ``vram_offset``; all of it or an exception."""
        self._check("copy_out", vram_offset, nbytes)
        if nbytes == 0:
            return b""
        nchunks = math.ceil(nbytes / COPY_OUT_CHUNK)
        out = bytearray(nbytes)
        t0 = self.link.now()
        seq0 = self._begin(nchunks)
        try:
            self.proto.write_xdata(CREDIT_XDATA, b"\0")
            self.engine.start(CE_OP_COPY_OUT, vram_offset, nbytes, COPY_OUT_CHUNK,
                              self.windows, seq0)
            for k in range(nchunks):
                lo = k * COPY_OUT_CHUNK
                size = min(COPY_OUT_CHUNK, nbytes - lo)
                wire = padded_out(size)
                arm = self._arm(k, wire, True)  # arms now; called again to re-arm
                buf = self.link.bulk_in(wire, rearm=arm)
                out[lo:lo + size] = buf[:size]
                if k + 1 < nchunks:
                    self.proto.write_xdata(CREDIT_XDATA, bytes([(k + 1) & 0xFF]))
        except DeviceError:
            self._dirty = True
            raise
        self.stats.d2h_bytes += nbytes
        self.stats.d2h_seconds += self.link.now() - t0
        return bytes(out)

    def _wait_fence(self, target: int) -> None:
        """Poll the fence until it reaches ``target`` (mod 2**32), with backoff."""
        target &= MASK32
        if (self._fence - target) & MASK32 < 0x80000000:
            return
        deadline = self.link.now() + self.fence_timeout_s
        delay, polls = 0.0, 0
        while True:
            self._fence = self.proto.read32_xdata(FENCE_XDATA)
            if (self._fence - target) & MASK32 < 0x80000000:
                return
            if self.link.now() > deadline:
                state = self.bus.ltssm()
                if state != LTSSM_L0:
                    raise LinkError(f"UsbGpuLink: PCIe link down (LTSSM {state:#04x}) while "
                                    f"waiting for copy fence {target:#x}")
                raise LinkTimeoutError(f"UsbGpuLink: copy fence stuck at {self._fence:#x}, "
                                       f"expected {target:#x} within {self.fence_timeout_s} s")
            polls += 1
            if polls > 2:
                self.link.sleep(delay)
                delay = min(max(2 * delay, 5e-6), 1e-3)
