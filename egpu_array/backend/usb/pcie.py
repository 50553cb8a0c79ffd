"""PCIe behind the bridge: power-up, config-space walk, BAR sizing and BAR access.

Topology per reference section 2: bridges on buses 0-3 get bus numbers, memory
windows and bus mastering; the GPU is the endpoint on bus 4. Non-prefetchable
BARs are placed from 0x1000_0000, prefetchable ones from 32 GiB.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from egpu_array._errors import DeviceError, LinkError

from . import asm24
from .memmap import LTSSM_L0, LTSSM_XDATA

BRIDGE_BUSES = range(4)
GPU_BUS = 4
NP_BASE = 0x1000_0000
PREF_BASE = 32 << 30
WINDOW_ALIGN = 1 << 20
CMD_ENABLE = 0x6  # memory space + bus master
STREAM_DWORDS = 4096  # dwords per F0 streaming setup
ABSENT = 0xFFFFFFFF


@dataclass
class Bar:
    """One assigned BAR of the GPU, with dword and streaming access."""

    bus: "PcieBus"
    index: int
    base: int
    size: int
    is64: bool
    prefetchable: bool

    def _check(self, func: str, offset: int, nbytes: int) -> None:
        if offset < 0 or offset + nbytes > self.size or offset & 3:
            raise ValueError(f"Bar.{func}: {nbytes} bytes at {offset:#x} are outside "
                             f"BAR{self.index} ({self.size:#x} bytes) or unaligned")

    def read32(self, offset: int) -> int:
        """One dword (single TLP)."""
        self._check("read32", offset, 4)
        return self.bus.mem_read32(self.base + offset)

    def write32(self, offset: int, value: int) -> None:
        """One dword (single posted TLP)."""
        self._check("write32", offset, 4)
        self.bus.mem_write32(self.base + offset, value)

    def read(self, offset: int, nbytes: int) -> bytes:
        """Consecutive dwords through F0 streaming reads."""
        self._check("read", offset, nbytes)
        return b"".join(self.bus.proto.stream_read(self.base + offset + o,
                                                   min(nbytes - o, 4 * STREAM_DWORDS))
                        for o in range(0, nbytes, 4 * STREAM_DWORDS))

    def write(self, offset: int, data: bytes) -> None:
        """Consecutive dwords through F0 streaming writes."""
        self._check("write", offset, len(data))
        step = 4 * STREAM_DWORDS
        for o in range(0, len(data), step):
            self.bus.proto.stream_write(self.base + offset + o, bytes(data[o:o + step]))


#: Link speed codes of the PCIe Link Status / Capabilities registers, in GT/s per lane.
LINK_SPEEDS = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}
PCIE_CAP_ID = 0x10


@dataclass(frozen=True)
class LinkInfo:
    """A function's PCIe link from its PCI Express capability: the current speed and negotiated
    width (Link Status, cap + 0x12) and the maximum ones (Link Capabilities, cap + 0x0C)."""

    speed_code: int
    width: int
    max_speed_code: int
    max_width: int

    @property
    def gts(self) -> float | None:
        """Current speed in GT/s per lane (None for an unknown code)."""
        return LINK_SPEEDS.get(self.speed_code)

    @property
    def generation(self) -> int:
        """PCIe generation of the current speed (Gen1 = 2.5 GT/s ...)."""
        return self.speed_code

    def __str__(self) -> str:
        gts = f"{self.gts:g} GT/s" if self.gts else f"speed code {self.speed_code}"
        text = f"PCIe Gen{self.speed_code} x{self.width} ({gts})"
        if (self.speed_code, self.width) != (self.max_speed_code, self.max_width):
            text += f", capable of Gen{self.max_speed_code} x{self.max_width}"
        return text


@dataclass
class GpuInfo:
    """What the walk found on bus 4."""

    vendor: int
    device: int
    class_code: int
    bars: dict[int, Bar] = field(default_factory=dict)


class PcieBus:
    """Config and memory TLPs through an :class:`~.asm24.Asm24` protocol object."""

    def __init__(self, proto: asm24.Asm24):
        """Use ``proto`` for every TLP."""
        self.proto = proto

    # -- link -------------------------------------------------------------------
    def ltssm(self) -> int:
        """The bridge's LTSSM state byte (0x78 = L0, link up)."""
        return self.proto.read_xdata(LTSSM_XDATA, 1)[0]

    def power_up(self) -> None:
        """F3 on, then require LTSSM == 0x78; LinkError otherwise."""
        self.proto.pcie_power(True)
        state = self.ltssm()
        if state != LTSSM_L0:
            raise LinkError(f"PcieBus.power_up: LTSSM is {state:#04x}, expected "
                            f"{LTSSM_L0:#04x} (L0) after training")

    # -- config space -----------------------------------------------------------
    def config_read(self, bus: int, dev: int, fn: int, reg: int, nbytes: int = 4) -> int:
        """Read 1, 2 or 4 bytes of config space."""
        addr, be, shift = asm24.byte_enable(reg, nbytes)
        word = self.proto.tlp(asm24.config_tlp_type(bus, False),
                              asm24.config_address(bus, dev, fn, addr), 0, be)
        return word >> 8 * shift & ((1 << 8 * nbytes) - 1)

    def config_write(self, bus: int, dev: int, fn: int, reg: int, value: int,
                     nbytes: int = 4) -> None:
        """Write 1, 2 or 4 bytes of config space (non-posted: waits for completion)."""
        addr, be, shift = asm24.byte_enable(reg, nbytes)
        self.proto.tlp(asm24.config_tlp_type(bus, True),
                       asm24.config_address(bus, dev, fn, addr), value << 8 * shift, be)

    # -- memory -----------------------------------------------------------------
    def mem_read32(self, addr: int) -> int:
        """One dword of memory space."""
        return self.proto.tlp(asm24.MEM_READ, addr)

    def mem_write32(self, addr: int, value: int) -> None:
        """One posted dword write."""
        self.proto.tlp(asm24.MEM_WRITE, addr, value)

    def mem_read(self, addr: int, nbytes: int) -> int:
        """1, 2 or 4 bytes of memory space (byte enables for sub-dword)."""
        dword, be, shift = asm24.byte_enable(addr, nbytes)
        return self.proto.tlp(asm24.MEM_READ, dword, 0, be) >> 8 * shift \
            & ((1 << 8 * nbytes) - 1)

    def mem_write(self, addr: int, value: int, nbytes: int) -> None:
        """1, 2 or 4 bytes of memory space."""
        dword, be, shift = asm24.byte_enable(addr, nbytes)
        self.proto.tlp(asm24.MEM_WRITE, dword, value << 8 * shift, be)

    # -- enumeration ------------------------------------------------------------
    def _expect(self, bus: int, header: int, what: str) -> int:
        try:
            ids = self.config_read(bus, 0, 0, 0x00)
        except asm24.PcieCompletionError as exc:
            raise DeviceError(f"PcieBus.enumerate: expected {what} at {bus:02x}:00.0, "
                              f"config read failed ({exc})") from exc
        kind = self.config_read(bus, 0, 0, 0x0E, 1) & 0x7F
        if ids == ABSENT or kind != header:
            raise DeviceError(f"PcieBus.enumerate: expected {what} (header type {header}) "
                              f"at {bus:02x}:00.0, found id {ids:#010x} type {kind}")
        return ids

    def find_capability(self, bus: int, cap_id: int) -> int | None:
        """Config offset of capability ``cap_id`` of (bus, 0, 0), walking the list from 0x34;
        None when the function has no capability list or not that capability."""
        if not self.config_read(bus, 0, 0, 0x06, 2) & 0x10:
            return None
        at, seen = self.config_read(bus, 0, 0, 0x34, 1) & 0xFC, set()
        while at >= 0x40 and at not in seen:  # a loop in the list ends the walk
            seen.add(at)
            head = self.config_read(bus, 0, 0, at, 2)
            if head & 0xFF == cap_id:
                return at
            at = head >> 8 & 0xFC
        return None

    def link(self, bus: int) -> LinkInfo | None:
        """The PCIe link of (bus, 0, 0) from its PCI Express capability (None without one)."""
        at = self.find_capability(bus, PCIE_CAP_ID)
        if at is None:
            return None
        status = self.config_read(bus, 0, 0, at + 0x12, 2)
        caps = self.config_read(bus, 0, 0, at + 0x0C)
        return LinkInfo(status & 0xF, status >> 4 & 0x3F, caps & 0xF, caps >> 4 & 0x3F)

    def size_bars(self, bus: int) -> list[tuple[int, int, bool, bool]]:
        """(index, size, is64, prefetchable) per memory BAR, by all-ones sizing."""
        found, i = [], 0
        while i < 6:
            reg = 0x10 + 4 * i
            old = self.config_read(bus, 0, 0, reg)
            self.config_write(bus, 0, 0, reg, ABSENT)
            lo = self.config_read(bus, 0, 0, reg)
            self.config_write(bus, 0, 0, reg, old)
            is64 = lo & 0x6 == 0x4
            hi = ABSENT
            if is64:
                old_hi = self.config_read(bus, 0, 0, reg + 4)
                self.config_write(bus, 0, 0, reg + 4, ABSENT)
                hi = self.config_read(bus, 0, 0, reg + 4)
                self.config_write(bus, 0, 0, reg + 4, old_hi)
            mask = hi << 32 | lo & ~0xF  # a 32-bit BAR reads as all-ones above bit 31
            if lo and not lo & 1:
                found.append((i, ((~mask) & ((1 << 64) - 1)) + 1, is64, bool(lo & 0x8)))
            i += 2 if is64 else 1
        return found

    def _window(self, start: int, end: int) -> tuple[int, int]:
        """Base/limit register halves for [start, end); empty when start == end."""
        if start == end:
            return 0xFFF0, 0x0000
        return start >> 16 & 0xFFF0, (end - 1) >> 16 & 0xFFF0

    def enumerate(self) -> GpuInfo:
        """Number the bridges, place the GPU's BARs, open windows, enable decoding."""
        for b in BRIDGE_BUSES:
            self._expect(b, 1, "a PCIe bridge")
            self.config_write(b, 0, 0, 0x18, b | (b + 1) << 8 | GPU_BUS << 16)
        ids = self._expect(GPU_BUS, 0, "the GPU endpoint")
        info = GpuInfo(ids & 0xFFFF, ids >> 16, self.config_read(GPU_BUS, 0, 0, 0x08) >> 8)
        cursor = {False: NP_BASE, True: PREF_BASE}
        for i, size, is64, pref in sorted(self.size_bars(GPU_BUS), key=lambda t: -t[1]):
            base = -(-cursor[pref] // size) * size
            cursor[pref] = base + size
            self.config_write(GPU_BUS, 0, 0, 0x10 + 4 * i, base & 0xFFFFFFFF)
            if is64:
                self.config_write(GPU_BUS, 0, 0, 0x14 + 4 * i, base >> 32)
            info.bars[i] = Bar(self, i, base, size, is64, pref)
        np_end = -(-cursor[False] // WINDOW_ALIGN) * WINDOW_ALIGN
        pf_end = -(-cursor[True] // WINDOW_ALIGN) * WINDOW_ALIGN
        mb, ml = self._window(NP_BASE, np_end)
        pb, pl = self._window(PREF_BASE, pf_end)
        for b in BRIDGE_BUSES:
            self.config_write(b, 0, 0, 0x20, mb | ml << 16)
            self.config_write(b, 0, 0, 0x24, pb | 1 | (pl | 1) << 16)
            self.config_write(b, 0, 0, 0x28, PREF_BASE >> 32)
            self.config_write(b, 0, 0, 0x2C, (pf_end - 1) >> 32)
            self.config_write(b, 0, 0, 0x04, CMD_ENABLE, 2)
        self.config_write(GPU_BUS, 0, 0, 0x04, CMD_ENABLE, 2)
        return info
