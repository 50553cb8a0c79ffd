"""Addresses shared by the host staging code and the emulated bridge/GPU.

Bridge memory as the host sees it (XDATA) and as the GPU sees it (PCIe), per
reference section 3, plus the register block of the emulated GPU copy engine.
A real GPU has its own copy engine (AMD SDMA, NVIDIA CE) that a GPU driver must
program instead; only :class:`~egpu_array.backend.usb.staging.EmuCopyEngine`
speaks the emulated one.
"""
from __future__ import annotations

from .asm24 import SLOT, SRAM_SIZE

#: name: (XDATA address, PCIe address, size)
BRIDGE_WINDOWS = {
    "sram": (0xF000, 0x200000, SRAM_SIZE),  # XDATA shows the first 4 KiB only
    "small": (0xA000, 0x820000, 0x1000),
    "release": (0xB800, 0x822000, 0x1000),
}
XDATA_SRAM_VIEW = 0x1000  # bytes of SRAM visible at XDATA 0xF000

LTSSM_XDATA = 0xB450
LTSSM_L0 = 0x78

FENCE_XDATA, FENCE_PCIE = 0xA800, 0x820800  # copy-in: CE writes seq + 1 here
CREDIT_XDATA, CREDIT_PCIE = 0xA804, 0x820804  # copy-out: host writes chunks consumed (mod 256)
RELEASE_XDATA, RELEASE_PCIE = 0xB80C, 0x82200C  # a GPU write here releases an armed F2 IN

#: Staging windows: two 256 KiB halves of the SRAM (slots 0 and 16).
WINDOW_BYTES = 256 * 1024
WINDOW_SLOTS = WINDOW_BYTES // SLOT
COPY_IN_CHUNK = WINDOW_BYTES - 4  # payload; the last dword of the padded chunk is the sentinel
COPY_OUT_CHUNK = WINDOW_BYTES
SENTINEL_BASE = 0x51000000
SEQ_MASK = 0xFFFFFF


def sentinel(seq: int) -> int:
    """The dword that ends copy-in chunk ``seq``."""
    return SENTINEL_BASE | (seq & SEQ_MASK)


def padded_in(payload: int) -> int:
    """Bytes on the wire for a copy-in chunk: payload + sentinel, rounded up to 512."""
    return -(-(payload + 4) // 512) * 512


def padded_out(payload: int) -> int:
    """Bytes on the wire for a copy-out chunk: payload rounded up to 512."""
    return -(-payload // 512) * 512


# Emulated GPU: BAR0 register block of the copy engine (dword registers).
CE_BASE = 0x1000
CE_REGS = ("op", "vram_lo", "vram_hi", "total", "chunk", "windows", "seq", "doorbell")
CE_OP_COPY_IN, CE_OP_COPY_OUT = 1, 2
GPU_ID_REG = 0x0  # BAR0 dword: reads the PCI device id (a liveness probe)


def ce_offset(reg: str) -> int:
    """BAR0 offset of copy-engine register ``reg``."""
    return CE_BASE + 4 * CE_REGS.index(reg)


# Emulated GPU: BAR0 register block of the compute queue (used by the ``sim`` device). The host
# writes a sequence number to the doorbell; the emulated GPU runs the queued kernels up to it and
# then stores it in the fence register, which the host reads back (a non-posted TLP).
CQ_BASE = 0x2000
CQ_REGS = ("doorbell", "fence")


def cq_offset(reg: str) -> int:
    """BAR0 offset of compute-queue register ``reg``."""
    return CQ_BASE + 4 * CQ_REGS.index(reg)
