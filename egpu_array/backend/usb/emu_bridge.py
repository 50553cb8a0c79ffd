"""Emulated ASM24 custom firmware: XDATA, SRAM, the command set, arm-then-bulk state.

Costs go onto the shared virtual clock: each control transfer ``ctrl_s``, each
bulk ``bulk_setup_s + bytes / rate`` (F2 SRAM rate or F0 streaming rate), F3
``training_s``. Protocol violations answer like the firmware would: a stall
(:class:`Stall`) or, for a bulk nobody armed, a NAK until the host times out
(:class:`Nak`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import asm24
from .emu_gpu import CopyEngine, as_uint8
from .emu_pcie import PcieBus
from .memmap import CREDIT_XDATA, LTSSM_L0, LTSSM_XDATA, XDATA_SRAM_VIEW

SRAM_XDATA = 0xF000
LTSSM_DETECT = 0x00


class Stall(Exception):
    """The firmware stalls the endpoint (bad request, wrong length)."""


class Nak(Exception):
    """The endpoint NAKs forever: the host will time out."""


@dataclass
class Arm:
    """What the next bulk transfer does: 'sram' (F2) or 'stream' (F0 mode 1/2)."""

    kind: str
    to_host: bool
    nbytes: int
    start: int = 0  # SRAM offset (sram) or PCIe address (stream)


class Bridge:
    """Firmware state of one emulated bridge plus its PCIe side and GPU."""

    def __init__(self, clock, model, vram_bytes: int, speed: str = "super"):
        """A powered-off bridge with ``vram_bytes`` of GPU memory behind it."""
        self.clock, self.model, self.speed = clock, model, speed
        self.xdata = bytearray(0x10000)
        self.sram = np.zeros(asm24.SRAM_SIZE, dtype=np.uint8)
        self.pcie = PcieBus(vram_bytes)
        self.ce = CopyEngine(self, self.pcie.gpu, clock, model)
        self.reset()

    def reset(self) -> None:
        """Power-on reset: PCIe off, XDATA/SRAM cleared, nothing armed (VRAM kept)."""
        self.xdata[:] = bytes(0x10000)
        self.sram[:] = 0
        self.slot_time = [0.0] * asm24.SRAM_SLOTS
        self.powered = False
        self.set_link(False)
        self.arm: Arm | None = None
        self.completion: bytes | None = None
        self.pcie.reset()
        self.ce.reset()

    def set_link(self, up: bool) -> None:
        """PCIe link state, mirrored in the LTSSM register at XDATA 0xB450."""
        self.pcie_up = up
        self.xdata[LTSSM_XDATA] = LTSSM_L0 if up else LTSSM_DETECT

    def drop_arm(self) -> None:
        """CLEAR_FEATURE(HALT) / SET_CONFIGURATION: forget armed DMA and streams."""
        self.arm = None

    # -- XDATA ------------------------------------------------------------------
    def read_xdata(self, addr: int, n: int) -> bytes:
        """Host view of XDATA (0xF000.. shows the start of the SRAM)."""
        self.ce.run_until(self.clock.now())
        out = bytearray(self.xdata[addr:addr + n])
        lo, hi = max(addr, SRAM_XDATA), min(addr + n, SRAM_XDATA + XDATA_SRAM_VIEW)
        if lo < hi:
            out[lo - addr:hi - addr] = self.sram[lo - SRAM_XDATA:hi - SRAM_XDATA].tobytes()
        return bytes(out)

    def write_xdata32(self, addr: int, value: int) -> None:
        """Dword write into XDATA (the copy engine's fence and release writes)."""
        self.xdata[addr:addr + 4] = (value & 0xFFFFFFFF).to_bytes(4, "little")

    # -- control transfers ------------------------------------------------------
    def control(self, request_type: int, request: int, value: int, index: int,
                data: bytes, length: int, tlp_faults: frozenset = frozenset()) -> bytes | int:
        """Handle one vendor request; returns IN data or the OUT byte count."""
        self.clock.sleep(self.model.ctrl_s)
        handler = _HANDLERS.get((request_type, request))
        if handler is None:
            raise Stall(f"unknown vendor request {request_type:#x}/{request:#x}")
        if request_type == asm24.REQ_IN:
            return handler(self, value, index, length)
        handler(self, value, index, data, tlp_faults)
        return len(data)

    def _e4(self, value, index, length):
        if length > asm24.E4_MAX_READ[self.speed]:
            raise Stall(f"E4 of {length} bytes exceeds the {self.speed}-speed limit")
        return self.read_xdata(value, min(length, 0x10000 - value))

    def _e5(self, value, index, data, _):
        addr, byte, _bank = asm24.decode_e5(value, index)
        if SRAM_XDATA <= addr < SRAM_XDATA + XDATA_SRAM_VIEW:
            self.sram[addr - SRAM_XDATA] = byte
        else:
            self.xdata[addr] = byte
        if addr == CREDIT_XDATA:
            self.ce.credit_written(byte, self.clock.now())

    def _f0_out(self, value, index, data, tlp_faults):
        try:
            fmt, be, mode, addr, word = asm24.decode_f0(value, index, bytes(data))
        except ValueError as exc:
            raise Stall(str(exc)) from exc
        if mode == asm24.MODE_SINGLE:
            self.completion = self._tlp(fmt, addr, word, be, tlp_faults)
        elif mode in (asm24.MODE_STREAM_WRITE, asm24.MODE_STREAM_READ):
            self.arm = Arm("stream", mode == asm24.MODE_STREAM_READ, word * 4, addr)
        else:
            raise Stall(f"F0 mode {mode} is not defined")

    def _tlp(self, fmt, addr, word, be, faults) -> bytes:
        if "ret_error" in faults:
            return asm24.encode_completion(0, asm24.CPL_SC, asm24.RET_ERROR)
        if not self.pcie_up:
            return asm24.encode_completion(0xFFFFFFFF, asm24.CPL_SC, asm24.RET_TIMEOUT)
        self.ce.run_until(self.clock.now())
        data, status = self.pcie.tlp(fmt, addr, word, be)
        if "ur" in faults or "ca" in faults:
            data, status = 0, asm24.CPL_UR if "ur" in faults else asm24.CPL_CA
        return asm24.encode_completion(data, status)

    def _f0_in(self, value, index, length):
        if self.completion is None or length != 8:
            raise Stall("F0 IN without a pending completion")
        out, self.completion = self.completion, None
        return out

    def _f2(self, value, index, data, _):
        sectors, to_host, start, count = asm24.decode_f2(value, index)
        if not sectors or start + count > asm24.SRAM_SLOTS or \
                sectors * asm24.SECTOR > count * asm24.SLOT:
            raise Stall(f"F2 arm of {sectors} sectors in slots {start}+{count} is invalid")
        self.arm = Arm("sram", to_host, sectors * asm24.SECTOR, start * asm24.SLOT)

    def _f3(self, value, index, data, _):
        if value & 1:
            if not self.powered:
                self.pcie.reset()
            self.powered = True
            self.clock.sleep(self.model.training_s)
            self.set_link(True)
        else:
            self.powered = False
            self.set_link(False)

    def _f4(self, value, index, length):
        bits = sum(1 << b for b in asm24.CAPABILITY_BITS.values())
        return asm24.encode_capabilities(asm24.Capabilities(1, 0, 0x0001, bits))[:length]

    # -- bulk transfers ---------------------------------------------------------
    def _take_arm(self, to_host: bool, n: int) -> Arm:
        arm = self.arm
        if arm is None or arm.to_host != to_host:
            raise Nak("bulk transfer without a matching F0/F2 arm")
        wrong = n < arm.nbytes if to_host else n != arm.nbytes  # IN may ask for more
        if wrong:
            self.arm = None
            raise Stall(f"bulk of {n} bytes, armed for {arm.nbytes}")
        self.arm = None
        return arm

    def _rate(self, arm: Arm) -> float:
        if arm.kind == "sram":
            return self.model.bulk_bytes_per_s
        return self.model.stream_read_bytes_per_s if arm.to_host \
            else self.model.stream_write_bytes_per_s

    def bulk_out(self, data, cut: int | None = None) -> int:
        """Bulk OUT on 0x02. ``cut``: the device vanishes after that many bytes."""
        if cut is not None:  # unplug mid-transfer: part of the data lands, no completion
            if self.arm and self.arm.kind == "sram":
                n = min(cut, self.arm.nbytes)
                self.sram[self.arm.start:self.arm.start + n] = as_uint8(data)[:n]
            return cut
        arm = self._take_arm(False, len(data))
        end = self.clock.now() + self.model.bulk_setup_s + arm.nbytes / self._rate(arm)
        self.ce.run_until(end)
        src = as_uint8(data)
        if arm.kind == "sram":
            self.sram[arm.start:arm.start + arm.nbytes] = src
            for s in range(arm.start // asm24.SLOT, -(-(arm.start + arm.nbytes) // asm24.SLOT)):
                self.slot_time[s] = end
        else:
            self.clock.advance_to(end)
            words = src.view("<u4")
            for i, w in enumerate(words):
                self._tlp(asm24.MEM_WRITE, arm.start + 4 * i, int(w), 0xF, frozenset())
        self.clock.advance_to(end)
        return arm.nbytes

    def bulk_in(self, n: int, short: bool = False) -> bytes:
        """Bulk IN on 0x81 of up to ``n`` bytes; ``short`` truncates the packet train."""
        arm = self._take_arm(True, n)
        start = self.clock.now()
        if arm.kind == "sram":
            released = self.ce.take_release()
            if released is None:
                raise Nak("F2 read armed but the GPU never wrote the release register")
            start = max(start, released)
            self.ce.run_until(start)
            out = self.sram[arm.start:arm.start + arm.nbytes].tobytes()
        else:
            self.ce.run_until(start)
            out = b"".join(self._stream_word(arm.start + 4 * i).to_bytes(4, "little")
                           for i in range(arm.nbytes // 4))
        self.clock.advance_to(start + self.model.bulk_setup_s + arm.nbytes / self._rate(arm))
        return out[:len(out) // 2] if short else out

    def _stream_word(self, addr: int) -> int:
        if not self.pcie_up:
            return 0xFFFFFFFF
        data, status = self.pcie.tlp(asm24.MEM_READ, addr, 0, 0xF)
        return data if status == asm24.CPL_SC else 0xFFFFFFFF


_HANDLERS = {
    (asm24.REQ_IN, asm24.E4_READ_XDATA): Bridge._e4,
    (asm24.REQ_OUT, asm24.E5_WRITE_XDATA): Bridge._e5,
    (asm24.REQ_OUT, asm24.F0_TLP): Bridge._f0_out,
    (asm24.REQ_IN, asm24.F0_TLP): Bridge._f0_in,
    (asm24.REQ_OUT, asm24.F2_SRAM_DMA): Bridge._f2,
    (asm24.REQ_OUT, asm24.F3_PCIE_POWER): Bridge._f3,
    (asm24.REQ_IN, asm24.F4_CAPABILITIES): Bridge._f4,
}
