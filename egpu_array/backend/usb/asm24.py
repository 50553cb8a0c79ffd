"""ASM24xx custom-firmware protocol: byte layouts of the vendor requests.

Every command is one vendor control transfer (bmRequestType 0x40 OUT, 0xC0 IN);
see ``/work/shared/references/usb4-bridge.md`` section 2. The ``encode_*`` and
``decode_*`` functions are pure, so they are unit-tested without a device, and the
emulator uses the same functions to parse what the host sends. :class:`Asm24`
runs them over a :class:`~egpu_array.backend.usb.transport.UsbLink`.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass

from egpu_array._errors import LinkError, LinkTimeoutError, TransferError

REQ_OUT = 0x40  # vendor, host to device
REQ_IN = 0xC0  # vendor, device to host

E4_READ_XDATA = 0xE4
E5_WRITE_XDATA = 0xE5
F0_TLP = 0xF0
F2_SRAM_DMA = 0xF2
F3_PCIE_POWER = 0xF3
F4_CAPABILITIES = 0xF4

#: Largest E4 data stage per USB speed (bytes).
E4_MAX_READ = {"super": 512, "high": 64}

SECTOR = 512  # F2 transfers whole 512 B sectors
SLOT = 16 * 1024  # F2 start slot / slot count unit
SRAM_SLOTS = 32
SRAM_SIZE = SLOT * SRAM_SLOTS  # 512 KiB

# F0 wIndex bits 1:0
MODE_SINGLE, MODE_STREAM_WRITE, MODE_STREAM_READ = 0, 1, 2

# PCIe fmt/type bytes (F0 wValue low byte).
CFG_READ0, CFG_READ1, CFG_WRITE0, CFG_WRITE1 = 0x04, 0x05, 0x44, 0x45
MEM_READ, MEM_WRITE = 0x20, 0x60
POSTED = frozenset({MEM_WRITE})  # no completion is read back

# Completion status (bits 5-7 of byte 4 of the F0 IN reply).
CPL_SC, CPL_UR, CPL_CRS, CPL_CA = 0, 1, 2, 4
CPL_NAMES = {CPL_SC: "successful", CPL_UR: "unsupported request",
             CPL_CRS: "configuration retry", CPL_CA: "completer abort"}

# ret_status (byte 7 of the F0 IN reply).
RET_OK, RET_ERROR, RET_TIMEOUT = 0, 1, 0xFF
TLP_RETRIES = 10
TLP_RETRY_SLEEP_S = 1e-3

# F4 capability bits (our reading of the 16-byte reply; the reference gives no layout).
CAPABILITY_BITS = {"sram_dma": 0, "tlp_stream": 1, "phy_bank": 2}


class PcieCompletionError(TransferError):
    """A TLP completed with a non-successful status (UR, CRS or CA)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Control:
    """One control transfer: setup fields plus OUT data or IN length."""

    request_type: int
    request: int
    value: int
    index: int
    data: bytes = b""
    length: int = 0


@dataclass(frozen=True)
class Completion:
    """Decoded 8-byte F0 IN reply."""

    data: int
    status: int
    ret: int


@dataclass(frozen=True)
class Capabilities:
    """Decoded 16-byte F4 reply: protocol version, firmware revision, feature bits."""

    major: int
    minor: int
    revision: int
    bits: int

    def has(self, name: str) -> bool:
        """True when the capability ``name`` (a key of CAPABILITY_BITS) is set."""
        return bool(self.bits >> CAPABILITY_BITS[name] & 1)


def _check_range(func: str, name: str, value: int, limit: int) -> None:
    if not 0 <= value < limit:
        raise ValueError(f"{func}: {name} must be in [0, {limit:#x}), got {value:#x}")


def encode_e4(addr: int, length: int, bank: int = 0, speed: str = "super") -> Control:
    """E4: read ``length`` bytes of XDATA at ``addr`` (bank 0 normal, 1 PHY)."""
    _check_range("encode_e4", "addr", addr, 1 << 16)
    if not 0 < length <= E4_MAX_READ[speed]:
        raise ValueError(f"encode_e4: length must be 1..{E4_MAX_READ[speed]}, got {length}")
    return Control(REQ_IN, E4_READ_XDATA, addr, bank << 8, length=length)


def e4_chunks(addr: int, length: int, speed: str = "super") -> list[tuple[int, int]]:
    """Split an XDATA read into (addr, length) pieces that fit one E4 each."""
    step = E4_MAX_READ[speed]
    return [(addr + off, min(step, length - off)) for off in range(0, length, step)]


def encode_e5(addr: int, value: int, bank: int = 0) -> Control:
    """E5: write one byte ``value`` to XDATA ``addr``."""
    _check_range("encode_e5", "addr", addr, 1 << 16)
    _check_range("encode_e5", "value", value, 256)
    return Control(REQ_OUT, E5_WRITE_XDATA, addr, bank << 8 | value)


def decode_e5(value: int, index: int) -> tuple[int, int, int]:
    """Inverse of :func:`encode_e5`: (addr, byte, bank)."""
    return value, index & 0xFF, index >> 8


def encode_f0(fmt_type: int, byte_enable: int, mode: int, addr: int, word: int) -> Control:
    """F0 OUT: a TLP (mode 0; ``word`` is the value) or stream setup (``word`` = dwords)."""
    _check_range("encode_f0", "byte_enable", byte_enable, 16)
    _check_range("encode_f0", "mode", mode, 3)
    if addr & 3:
        raise ValueError(f"encode_f0: address must be dword aligned, got {addr:#x}")
    data = struct.pack("<III", addr & 0xFFFFFFFF, addr >> 32, word & 0xFFFFFFFF)
    return Control(REQ_OUT, F0_TLP, byte_enable << 8 | fmt_type, mode, data=data)


def decode_f0(value: int, index: int, data: bytes) -> tuple[int, int, int, int, int]:
    """Inverse of :func:`encode_f0`: (fmt_type, byte_enable, mode, addr, word)."""
    if len(data) != 12:
        raise ValueError(f"decode_f0: expected 12 data bytes, got {len(data)}")
    lo, hi, word = struct.unpack("<III", data)
    return value & 0xFF, value >> 8 & 0xF, index & 3, hi << 32 | lo, word


def encode_f0_read() -> Control:
    """F0 IN: fetch the 8-byte completion of the last non-posted TLP."""
    return Control(REQ_IN, F0_TLP, 0, 0, length=8)


def encode_completion(data: int, status: int = CPL_SC, ret: int = RET_OK) -> bytes:
    """Build the 8-byte F0 IN reply (used by the emulator)."""
    return struct.pack("<IBBBB", data & 0xFFFFFFFF, (status & 7) << 5, 0, 0, ret)


def decode_completion(raw: bytes) -> Completion:
    """Parse the 8-byte F0 IN reply: data dword, status bits 5-7 of byte 4, ret byte 7."""
    if len(raw) != 8:
        raise TransferError(f"decode_completion: expected 8 bytes, got {len(raw)}")
    data, b4, _, _, ret = struct.unpack("<IBBBB", bytes(raw))
    return Completion(data, b4 >> 5 & 7, ret)


def encode_f2(sectors: int, to_host: bool, start_slot: int, slot_count: int) -> Control:
    """F2: arm an SRAM DMA of ``sectors`` x 512 B over slots [start, start+count)."""
    if not 0 < sectors < 1 << 15:
        raise ValueError(f"encode_f2: sector count must be 1..32767, got {sectors}")
    if not (0 <= start_slot and 0 < slot_count and start_slot + slot_count <= SRAM_SLOTS):
        raise ValueError(f"encode_f2: slots [{start_slot}, +{slot_count}) exceed {SRAM_SLOTS}")
    if sectors * SECTOR > slot_count * SLOT:
        raise ValueError(f"encode_f2: {sectors} sectors do not fit in {slot_count} slots")
    return Control(REQ_OUT, F2_SRAM_DMA, int(to_host) << 15 | sectors,
                   slot_count << 8 | start_slot)


def decode_f2(value: int, index: int) -> tuple[int, bool, int, int]:
    """Inverse of :func:`encode_f2`: (sectors, to_host, start_slot, slot_count)."""
    return value & 0x7FFF, bool(value >> 15), index & 0xFF, index >> 8


def encode_f3(on: bool) -> Control:
    """F3: power the PCIe side on (and train the link) or off."""
    return Control(REQ_OUT, F3_PCIE_POWER, int(on), 0)


def encode_f4() -> Control:
    """F4 IN: the 16-byte capability block."""
    return Control(REQ_IN, F4_CAPABILITIES, 0, 0, length=16)


def encode_capabilities(caps: Capabilities) -> bytes:
    """16 bytes: major, minor, revision (LE16), bits (LE32), 8 reserved zero bytes."""
    return struct.pack("<BBHI8x", caps.major, caps.minor, caps.revision, caps.bits)


def decode_capabilities(raw: bytes) -> Capabilities:
    """Inverse of :func:`encode_capabilities`."""
    if len(raw) != 16:
        raise TransferError(f"decode_capabilities: expected 16 bytes, got {len(raw)}")
    return Capabilities(*struct.unpack("<BBHI8x", bytes(raw)))


def config_address(bus: int, dev: int, fn: int, reg: int) -> int:
    """Config TLP address: bus<<24 | dev<<19 | fn<<16 | reg (12-bit register)."""
    _check_range("config_address", "bus", bus, 256)
    _check_range("config_address", "dev", dev, 32)
    _check_range("config_address", "fn", fn, 8)
    _check_range("config_address", "reg", reg, 4096)
    return bus << 24 | dev << 19 | fn << 16 | reg


def config_tlp_type(bus: int, write: bool) -> int:
    """Type 0 on bus 0, type 1 behind a bridge."""
    return (CFG_WRITE0 if write else CFG_READ0) | (1 if bus > 0 else 0)


def byte_enable(addr: int, nbytes: int) -> tuple[int, int, int]:
    """(dword address, byte-enable mask, shift) for a 1/2/4-byte access at ``addr``."""
    if nbytes not in (1, 2, 4) or (addr & 3) + nbytes > 4:
        raise ValueError(f"byte_enable: {nbytes} bytes at {addr:#x} cross a dword")
    shift = addr & 3
    return addr & ~3, ((1 << nbytes) - 1) << shift, shift


def completion_error(func: str, cpl: Completion, what: str) -> LinkError | None:
    """The exception for a bad completion, or None when it succeeded."""
    if cpl.ret == RET_TIMEOUT:
        return LinkTimeoutError(f"{func}: {what}: TLP timed out in the bridge (ret 0xFF)")
    if cpl.ret != RET_OK:
        return TransferError(f"{func}: {what}: bridge reported ret_status {cpl.ret:#x}")
    if cpl.status != CPL_SC:
        name = CPL_NAMES.get(cpl.status, f"status {cpl.status:#b}")
        return PcieCompletionError(f"{func}: {what}: completion {name}, expected success",
                                   cpl.status)
    return None



class Asm24:
    """The command set over a :class:`~egpu_array.backend.usb.transport.UsbLink`."""

    def __init__(self, link):
        """Wrap an opened link."""
        self.link = link

    def _send(self, c: Control, timeout_ms: int | None = None) -> bytes | None:
        kw = {} if timeout_ms is None else {"timeout_ms": timeout_ms}
        if c.request_type == REQ_IN:
            return self.link.ctrl_in(c.request, c.value, c.index, c.length, **kw)
        self.link.ctrl_out(c.request, c.value, c.index, c.data, **kw)
        return None

    def read_xdata(self, addr: int, length: int, bank: int = 0) -> bytes:
        """Read XDATA, chunked to the E4 limit of the link's speed."""
        return b"".join(self._send(encode_e4(a, n, bank, self.link.speed))
                        for a, n in e4_chunks(addr, length, self.link.speed))

    def read32_xdata(self, addr: int) -> int:
        """One little-endian dword of XDATA."""
        return int.from_bytes(self.read_xdata(addr, 4), "little")

    def write_xdata(self, addr: int, data: bytes, bank: int = 0) -> None:
        """Write XDATA, one E5 per byte (the firmware has no wider write)."""
        for i, b in enumerate(data):
            self._send(encode_e5(addr + i, b, bank))

    def tlp(self, fmt_type: int, addr: int, value: int = 0, byte_en: int = 0xF) -> int:
        """One TLP (mode 0); returns the completion dword (0 for posted writes).

        ret_status != 0 is retried TLP_RETRIES times 1 ms apart; a UR/CRS/CA
        completion raises PcieCompletionError at once.
        """
        out = encode_f0(fmt_type, byte_en, MODE_SINGLE, addr, value)
        what = f"TLP {fmt_type:#04x} at {addr:#x}"
        for attempt in range(TLP_RETRIES + 1):
            self._send(out)
            if fmt_type in POSTED:
                return 0
            cpl = decode_completion(self._send(encode_f0_read()))
            err = completion_error("Asm24.tlp", cpl, what)
            if err is None:
                return cpl.data
            if cpl.ret == RET_OK or attempt == TLP_RETRIES:
                raise err
            self.link.sleep(TLP_RETRY_SLEEP_S)
        raise AssertionError("unreachable")

    def stream_write(self, addr: int, data: bytes, fmt_type: int = MEM_WRITE) -> None:
        """Consecutive dwords at ``addr`` through F0 mode 1 and one bulk OUT."""
        if len(data) % 4:
            raise ValueError(f"Asm24.stream_write: length must be a multiple of 4, "
                             f"got {len(data)}")
        if not data:
            return
        setup = encode_f0(fmt_type, 0xF, MODE_STREAM_WRITE, addr, len(data) // 4)
        self._send(setup)
        self.link.bulk_out(data, rearm=lambda: self._send(setup))

    def stream_read(self, addr: int, nbytes: int, fmt_type: int = MEM_READ) -> bytes:
        """Consecutive dwords from ``addr`` through F0 mode 2 and one bulk IN."""
        if nbytes % 4:
            raise ValueError(f"Asm24.stream_read: length must be a multiple of 4, got {nbytes}")
        if not nbytes:
            return b""
        setup = encode_f0(fmt_type, 0xF, MODE_STREAM_READ, addr, nbytes // 4)
        self._send(setup)
        return self.link.bulk_in(nbytes, rearm=lambda: self._send(setup))

    def arm_sram(self, sectors: int, to_host: bool, start_slot: int, slot_count: int) -> None:
        """F2: arm the SRAM DMA for the next bulk transfer."""
        self._send(encode_f2(sectors, to_host, start_slot, slot_count))

    def pcie_power(self, on: bool) -> None:
        """F3: power and train the PCIe link (the firmware may take up to 2 s)."""
        self._send(encode_f3(on), timeout_ms=3000)

    def capabilities(self) -> Capabilities:
        """F4: protocol version, firmware revision and capability bits."""
        return decode_capabilities(self._send(encode_f4()))
