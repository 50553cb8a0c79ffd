"""Emulated PCIe side of the bridge: four bridges (buses 0-3) and a GPU on bus 4.

Config space follows the PCI header layout (type 1 for bridges, type 0 for the
GPU); BARs answer the all-ones sizing protocol; memory TLPs are forwarded only
through enabled bridges whose windows contain the address, then decoded by the
GPU's BARs (BAR0 = registers, BAR2/3 = 64-bit prefetchable VRAM aperture).
"""
from __future__ import annotations

import struct

import numpy as np

from . import asm24
from .memmap import CE_BASE, CE_REGS, CQ_BASE, CQ_REGS, GPU_ID_REG

BRIDGE_ID = (0x1B21, 0x2464)  # ASMedia vendor id; device id of the ASM2464
GPU_ID = (0x10DE, 0x2684)  # NVIDIA vendor id, an RTX 4090 device id
GPU_CLASS = 0x030000  # display controller, VGA
BAR0_SIZE = 16 << 20
CMD_MEMORY, CMD_MASTER = 0x2, 0x4
GPU_BUS = 4
#: PCI Express capability (ID 0x10): where it sits, its port type per function, and the link.
#: The ASM2464's downstream port trains PCIe Gen4 x4 (16 GT/s) with a GPU; the internal
#: bridges report the same link. ``PcieBus.link`` = (speed code, width): 1 = 2.5 GT/s ...
#: 4 = 16 GT/s, 5 = 32 GT/s.
PCIE_CAP_ID = 0x10
PCIE_CAP_AT = {0: 0x60, 1: 0x80}  # by header type
PORT_TYPE = {"endpoint": 0x0, "upstream": 0x5, "downstream": 0x6}
LINK_GEN4_X4 = (4, 4)

# Config dwords software may write, per header type (others are read-only).
WRITABLE = {
    0: {0x04, 0x0C, 0x10, 0x14, 0x18, 0x1C, 0x20, 0x24, 0x30, 0x3C},
    1: {0x04, 0x0C, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x3C},
}


class Function:
    """One PCI function: 4 KiB of config space plus BAR sizing masks."""

    def __init__(self, ids: tuple[int, int], class_code: int, header: int,
                 bars: dict[int, tuple[int, int]] | None = None):
        """``bars``: BAR index -> (size, low flag bits); a 64-bit BAR also owns index+1."""
        self.cfg = bytearray(4096)
        self.header = header
        struct.pack_into("<HH", self.cfg, 0, *ids)
        struct.pack_into("<I", self.cfg, 0x08, class_code << 8 | 0xA1)
        self.cfg[0x0E] = header
        self.bars = bars or {}
        self.bar_masks = {}
        for i, (size, flags) in self.bars.items():
            self.bar_masks[0x10 + 4 * i] = (~(size - 1) & 0xFFFFFFF0, flags)
            if flags & 0x4:  # 64-bit: the next BAR holds the upper half
                self.bar_masks[0x14 + 4 * i] = (~(size - 1) >> 32 & 0xFFFFFFFF, 0)
        for reg, (_, flags) in self.bar_masks.items():
            struct.pack_into("<I", self.cfg, reg, flags)

    def add_pcie_capability(self, port: str, link: tuple[int, int],
                            max_link: tuple[int, int] = LINK_GEN4_X4) -> None:
        """Put a PCI Express capability (v2) in the list: port type, Link Capabilities (max
        speed and width) and Link Status (current speed and negotiated width); read-only."""
        at = PCIE_CAP_AT[self.header]
        self.cfg[0x06] |= 0x10  # status: capabilities list present
        self.cfg[0x34] = at
        struct.pack_into("<BBH", self.cfg, at, PCIE_CAP_ID, 0, 0x2 | PORT_TYPE[port] << 4)
        struct.pack_into("<I", self.cfg, at + 0x0C, max_link[0] | max_link[1] << 4)
        struct.pack_into("<H", self.cfg, at + 0x12, link[0] | link[1] << 4)
        struct.pack_into("<I", self.cfg, at + 0x2C, ((1 << max_link[0]) - 1) << 1)  # speeds
        self.readonly = range(at, at + 0x3C)

    readonly = range(0)

    def read(self, reg: int) -> int:
        """Dword at ``reg`` (dword aligned)."""
        return struct.unpack_from("<I", self.cfg, reg)[0]

    def write(self, reg: int, value: int, be: int) -> None:
        """Write the enabled bytes; BARs keep only their address bits."""
        if reg not in WRITABLE[self.header] and reg < 0x40 or reg in self.readonly:
            return
        old = self.read(reg)
        mask = sum(0xFF << 8 * i for i in range(4) if be >> i & 1)
        new = old & ~mask | value & mask
        if reg in self.bar_masks:
            addr_mask, flags = self.bar_masks[reg]
            new = new & addr_mask | flags
        elif 0x10 <= reg <= 0x24 and self.header == 0:
            new = 0  # unimplemented BAR
        struct.pack_into("<I", self.cfg, reg, new)

    @property
    def command(self) -> int:
        """The command register."""
        return self.read(0x04) & 0xFFFF

    def bar_address(self, index: int) -> int:
        """Base address programmed into BAR ``index`` (64-bit aware)."""
        lo = self.read(0x10 + 4 * index)
        hi = self.read(0x14 + 4 * index) if lo & 0x4 else 0
        return (hi << 32 | lo) & ~0xF

    def window_contains(self, addr: int) -> bool:
        """Type 1 only: is ``addr`` inside the memory or prefetchable window?"""
        mem = self.read(0x20)
        base, limit = (mem & 0xFFF0) << 16, (mem >> 16 & 0xFFF0) << 16 | 0xFFFFF
        if base <= addr <= limit and base <= limit:
            return True
        pref = self.read(0x24)
        pbase = self.read(0x28) << 32 | (pref & 0xFFF0) << 16
        plimit = self.read(0x2C) << 32 | (pref >> 16 & 0xFFF0) << 16 | 0xFFFFF
        return pbase <= addr <= plimit and pbase <= plimit


VRAM_ALIGN = 4096


class Gpu:
    """The endpoint: config function, VRAM, and a BAR0 register file."""

    def __init__(self, vram_bytes: int):
        """Allocate ``vram_bytes`` (a power of two >= 1 MiB) of zeroed VRAM, all in BAR2."""
        if vram_bytes < 1 << 20 or vram_bytes & (vram_bytes - 1):
            raise ValueError(f"Gpu: vram_bytes must be a power of two >= 1 MiB, got {vram_bytes}")
        self.fn = Function(GPU_ID, GPU_CLASS, 0, {0: (BAR0_SIZE, 0x0), 2: (vram_bytes, 0xC)})
        # page-aligned, as a real BAR is: kernels may use aligned vector loads on any allocation
        raw = np.zeros(vram_bytes + VRAM_ALIGN, dtype=np.uint8)
        start = -raw.ctypes.data % VRAM_ALIGN
        self.vram = raw[start:start + vram_bytes]
        self.regs = dict.fromkeys(CE_REGS, 0)
        self.on_doorbell = None  # set by the copy engine: called with the register dict
        self.cq = dict.fromkeys(CQ_REGS, 0)  # compute queue registers
        self.on_launch = None  # set by a compute engine (the sim device): called with the doorbell
        self.on_fence = None  # set by a compute engine: returns the fence register's value

    def mmio_read(self, off: int) -> int:
        """BAR0 dword read."""
        if off == GPU_ID_REG:
            return GPU_ID[1] << 16 | GPU_ID[0]
        j = (off - CQ_BASE) // 4
        if 0 <= j < len(CQ_REGS):
            if CQ_REGS[j] == "fence" and self.on_fence is not None:
                return self.on_fence()  # the last kernel completed by now (virtual clock)
            return self.cq[CQ_REGS[j]]
        i = (off - CE_BASE) // 4
        return self.regs[CE_REGS[i]] if 0 <= i < len(CE_REGS) else 0

    def mmio_write(self, off: int, value: int) -> None:
        """BAR0 dword write; the doorbell register starts the copy engine."""
        i = (off - CE_BASE) // 4
        if 0 <= i < len(CE_REGS):
            self.regs[CE_REGS[i]] = value
            if CE_REGS[i] == "doorbell" and self.on_doorbell:
                self.on_doorbell(dict(self.regs))
        j = (off - CQ_BASE) // 4
        if 0 <= j < len(CQ_REGS) and CQ_REGS[j] == "doorbell":
            # the compute engine takes the queued work up to ``value``; the fence shows each
            # kernel's sequence number once it completes (see backend/usb/compute.py)
            self.cq["doorbell"] = value
            if self.on_launch is not None:
                self.on_launch(value)


class PcieBus:
    """Topology and TLP routing: bridges at (b, 0, 0) for b in 0-3, GPU at (4, 0, 0)."""

    def __init__(self, vram_bytes: int, link: tuple[int, int] = LINK_GEN4_X4):
        """Build the hierarchy with ``vram_bytes`` of GPU memory; ``link`` is the trained
        (speed code, width) of the GPU's link, shown in every PCIe capability."""
        self.gpu = Gpu(vram_bytes)
        self.link = link
        self.reset()

    def reset(self) -> None:
        """Power-on state of the config spaces (VRAM is kept)."""
        self.bridges = [Function(BRIDGE_ID, 0x060400, 1) for _ in range(GPU_BUS)]
        for b, fn in enumerate(self.bridges):
            fn.add_pcie_capability("upstream" if b % 2 == 0 else "downstream", self.link)
        self.gpu.fn = Function(GPU_ID, GPU_CLASS, 0, self.gpu.fn.bars)
        self.gpu.fn.add_pcie_capability("endpoint", self.link)
        self.gpu.regs = dict.fromkeys(CE_REGS, 0)
        self.gpu.cq = dict.fromkeys(CQ_REGS, 0)

    def function(self, bus: int, dev: int, fn: int) -> Function | None:
        """The function at (bus, dev, fn) if config TLPs can reach it."""
        if dev or fn or bus > GPU_BUS:
            return None
        for b in range(bus):  # every bridge on the way must route to the next bus
            cfg = self.bridges[b].read(0x18)
            sec, sub = cfg >> 8 & 0xFF, cfg >> 16 & 0xFF
            if sec != b + 1 or not sec <= bus <= sub:
                return None
        return self.gpu.fn if bus == GPU_BUS else self.bridges[bus]

    def tlp(self, fmt: int, addr: int, value: int, be: int) -> tuple[int, int]:
        """Execute one TLP; returns (data dword, completion status)."""
        if fmt in (asm24.CFG_READ0, asm24.CFG_READ1, asm24.CFG_WRITE0, asm24.CFG_WRITE1):
            return self._config(fmt, addr, value, be)
        if fmt in (asm24.MEM_READ, asm24.MEM_WRITE):
            return self._memory(fmt == asm24.MEM_WRITE, addr, value, be)
        return 0, asm24.CPL_UR

    def _config(self, fmt: int, addr: int, value: int, be: int) -> tuple[int, int]:
        bus, dev, fn, reg = addr >> 24 & 0xFF, addr >> 19 & 0x1F, addr >> 16 & 7, addr & 0xFFC
        if (fmt & 1) != (bus > 0):
            return 0, asm24.CPL_UR
        f = self.function(bus, dev, fn)
        if f is None:
            return 0, asm24.CPL_UR
        if fmt & 0x40:
            f.write(reg, value, be)
            return 0, asm24.CPL_SC
        return f.read(reg), asm24.CPL_SC

    def _route(self, addr: int) -> tuple[str, int] | None:
        if any(not b.command & CMD_MEMORY or not b.window_contains(addr) for b in self.bridges):
            return None
        g = self.gpu.fn
        if not g.command & CMD_MEMORY:
            return None
        bar0 = g.bar_address(0)
        if bar0 and bar0 <= addr < bar0 + BAR0_SIZE:
            return "mmio", addr - bar0
        bar2 = g.bar_address(2)
        if bar2 and bar2 <= addr < bar2 + self.gpu.vram.size:
            return "vram", addr - bar2
        return None

    def _memory(self, write: bool, addr: int, value: int, be: int) -> tuple[int, int]:
        target = self._route(addr)
        if target is None:
            return 0, asm24.CPL_UR
        kind, off = target
        if kind == "mmio":
            if write:
                self.gpu.mmio_write(off, value)
                return 0, asm24.CPL_SC
            return self.gpu.mmio_read(off), asm24.CPL_SC
        word = self.gpu.vram[off:off + 4]
        if len(word) < 4:
            return 0, asm24.CPL_UR
        if not write:
            return int.from_bytes(word.tobytes(), "little"), asm24.CPL_SC
        for i in range(4):
            if be >> i & 1:
                word[i] = value >> 8 * i & 0xFF
        return 0, asm24.CPL_SC
