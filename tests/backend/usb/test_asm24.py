"""Byte layouts of the ASM24 vendor requests against the reference (section 2)."""
import struct

import pytest

from egpu_array._errors import LinkTimeoutError, TransferError
from egpu_array.backend.usb import asm24
from egpu_array.backend.usb.memmap import padded_in, padded_out, sentinel


def test_e4_read_layout_and_limits():
    c = asm24.encode_e4(0xB450, 1)
    assert (c.request_type, c.request, c.value, c.index, c.length) == (0xC0, 0xE4, 0xB450, 0, 1)
    assert asm24.encode_e4(0x1234, 4, bank=1).index == 0x100
    asm24.encode_e4(0, 512)
    with pytest.raises(ValueError, match="encode_e4"):
        asm24.encode_e4(0, 513)
    with pytest.raises(ValueError, match="encode_e4"):
        asm24.encode_e4(0, 65, speed="high")


def test_e4_chunks_split_long_reads():
    assert asm24.e4_chunks(0x1000, 1100) == [(0x1000, 512), (0x1200, 512), (0x1400, 76)]
    assert asm24.e4_chunks(0, 100, "high") == [(0, 64), (64, 36)]
    assert asm24.e4_chunks(0, 0) == []


def test_e5_writes_one_byte():
    c = asm24.encode_e5(0xA804, 0x7F, bank=1)
    assert (c.request_type, c.request, c.value, c.index, c.data) == (0x40, 0xE5, 0xA804, 0x17F, b"")
    assert asm24.decode_e5(c.value, c.index) == (0xA804, 0x7F, 1)
    with pytest.raises(ValueError):
        asm24.encode_e5(0, 256)


def test_f0_tlp_layout():
    c = asm24.encode_f0(asm24.CFG_WRITE1, 0x3, asm24.MODE_SINGLE, 0x1_2345_6788, 0xCAFE)
    assert (c.request_type, c.request, c.value, c.index) == (0x40, 0xF0, 0x0345, 0)
    assert c.data == struct.pack("<III", 0x23456788, 0x1, 0xCAFE)
    assert asm24.decode_f0(c.value, c.index, c.data) == (0x45, 0x3, 0, 0x1_2345_6788, 0xCAFE)
    s = asm24.encode_f0(asm24.MEM_READ, 0xF, asm24.MODE_STREAM_READ, 0x1000, 16)
    assert s.index == 2 and s.data[8:] == struct.pack("<I", 16)
    with pytest.raises(ValueError, match="dword aligned"):
        asm24.encode_f0(asm24.MEM_READ, 0xF, 0, 0x1001, 0)


def test_f0_completion_layout():
    raw = bytes([0x78, 0x56, 0x34, 0x12, 0b001 << 5, 0, 0, 0])
    assert asm24.decode_completion(raw) == asm24.Completion(0x12345678, asm24.CPL_UR, 0)
    assert asm24.encode_completion(0x12345678, asm24.CPL_UR) == raw
    assert asm24.decode_completion(asm24.encode_completion(0, asm24.CPL_CA, 0xFF)) == \
        asm24.Completion(0, asm24.CPL_CA, 0xFF)
    with pytest.raises(TransferError):
        asm24.decode_completion(b"\0" * 7)


@pytest.mark.parametrize("cpl, err", [
    (asm24.Completion(0, asm24.CPL_SC, 0), None),
    (asm24.Completion(0, asm24.CPL_UR, 0), asm24.PcieCompletionError),
    (asm24.Completion(0, asm24.CPL_CRS, 0), asm24.PcieCompletionError),
    (asm24.Completion(0, asm24.CPL_CA, 0), asm24.PcieCompletionError),
    (asm24.Completion(0, asm24.CPL_SC, 1), TransferError),
    (asm24.Completion(0, asm24.CPL_SC, 0xFF), LinkTimeoutError),
])
def test_completion_errors(cpl, err):
    got = asm24.completion_error("f", cpl, "x")
    assert (got is None) if err is None else type(got) is err


def test_f2_arm_layout():
    c = asm24.encode_f2(512, True, 16, 16)
    assert (c.request, c.value, c.index) == (0xF2, 0x8000 | 512, 16 << 8 | 16)
    assert asm24.decode_f2(c.value, c.index) == (512, True, 16, 16)
    assert asm24.encode_f2(1, False, 0, 1).value == 1
    with pytest.raises(ValueError, match="do not fit"):
        asm24.encode_f2(33, False, 0, 1)
    with pytest.raises(ValueError, match="exceed"):
        asm24.encode_f2(1, False, 31, 2)


def test_f3_f4_layout():
    assert (asm24.encode_f3(True).request, asm24.encode_f3(True).value) == (0xF3, 1)
    assert asm24.encode_f3(False).value == 0
    assert (asm24.encode_f4().request_type, asm24.encode_f4().length) == (0xC0, 16)
    caps = asm24.Capabilities(1, 0, 0x0102, 0b101)
    raw = asm24.encode_capabilities(caps)
    assert len(raw) == 16 and raw[:8] == bytes([1, 0, 2, 1, 5, 0, 0, 0])
    got = asm24.decode_capabilities(raw)
    assert got == caps and got.has("sram_dma") and not got.has("tlp_stream")


def test_config_address_and_type():
    assert asm24.config_address(4, 0, 0, 0x10) == 0x0400_0010
    assert asm24.config_address(1, 31, 7, 0xFFF) == 1 << 24 | 31 << 19 | 7 << 16 | 0xFFF
    assert asm24.config_tlp_type(0, False) == 0x04 and asm24.config_tlp_type(3, False) == 0x05
    assert asm24.config_tlp_type(0, True) == 0x44 and asm24.config_tlp_type(4, True) == 0x45


def test_byte_enable_shifts_by_address():
    assert asm24.byte_enable(0x0E, 1) == (0x0C, 0b0100, 2)
    assert asm24.byte_enable(0x06, 2) == (0x04, 0b1100, 2)
    assert asm24.byte_enable(0x10, 4) == (0x10, 0b1111, 0)
    with pytest.raises(ValueError):
        asm24.byte_enable(0x03, 2)


def test_sentinel_and_padding():
    assert sentinel(5) == 0x51000005 and sentinel(1 << 24 | 7) == 0x51000007
    assert padded_in(0) == 512 and padded_in(508) == 512 and padded_in(509) == 1024
    assert padded_in(256 * 1024 - 4) == 256 * 1024
    assert padded_out(1) == 512 and padded_out(512) == 512
