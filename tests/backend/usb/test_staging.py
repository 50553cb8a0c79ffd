"""SRAM-staged copies end to end: data, faults, replug and virtual-time bandwidth."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from egpu_array._errors import (DeviceError, DeviceLostError, LinkError, LinkStallError,
                                LinkTimeoutError, TransferError)
from egpu_array.backend.usb.emu_link import PRESETS, USB3_GEN2
from egpu_array.backend.usb.emulator import EmulatedBridge
from egpu_array.backend.usb.staging import SramSlots, UsbGpuLink

RNG = np.random.default_rng(1234)


def random_bytes(n: int) -> bytes:
    return RNG.integers(0, 256, n, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("size", [0, 1, 4095, 512 * 1024 + 1, 3 * 1024 * 1024 + 7])
def test_round_trip(gpu, emu, size):
    data = random_bytes(size)
    gpu.copy_in(64, data)
    assert bytes(emu.vram[64:64 + size]) == data
    assert gpu.copy_out(64, size) == data


@settings(max_examples=12, deadline=None)
@given(offset=st.integers(0, 1 << 20), size=st.integers(0, 600 * 1024),
       windows=st.sampled_from([1, 2]))
def test_round_trip_any_offset(offset, size, windows):
    emu = EmulatedBridge(USB3_GEN2, vram_bytes=2 << 20)
    gpu = UsbGpuLink.open(emu, windows=windows)
    data = random_bytes(size)
    gpu.copy_in(offset, data)
    assert gpu.copy_out(offset, size) == data


def test_copies_reject_out_of_range(gpu):
    with pytest.raises(ValueError, match="copy_in"):
        gpu.copy_in(gpu.vram_size - 2, b"abcd")
    with pytest.raises(ValueError, match="copy_out"):
        gpu.copy_out(-1, 4)


def test_sram_slots():
    slots = SramSlots()
    assert slots.alloc(16) == 0 and slots.alloc(16) == 16
    with pytest.raises(MemoryError):
        slots.alloc(1)
    slots.free(0, 16)
    assert slots.alloc(4) == 0


# (fault kind, operation, nth, count, direction, expected error)
FAULTS = [
    ("timeout", "bulk_out", 2, 1, "in", LinkTimeoutError),
    ("timeout", "bulk_in", 2, 1, "out", LinkTimeoutError),
    ("stall", "bulk_out", 2, 2, "in", LinkStallError),
    ("stall", "bulk_in", 2, 2, "out", LinkStallError),
    ("short_read", "bulk_in", 2, 1, "out", TransferError),
    ("timeout", "ctrl_out", 3, 1, "in", LinkTimeoutError),
]


@pytest.mark.parametrize("kind, op, nth, count, direction, exc", FAULTS)
def test_fault_raises_and_link_recovers(gpu, emu, kind, op, nth, count, direction, exc):
    data = random_bytes(700 * 1024)
    if direction == "out":
        gpu.copy_in(0, data)
    emu.faults.arm(kind, op, nth=nth, count=count)
    with pytest.raises(exc):
        if direction == "in":
            gpu.copy_in(0, data)
        else:
            gpu.copy_out(0, len(data))
    gpu.copy_in(0, data)  # the same link works again without a replug
    assert gpu.copy_out(0, len(data)) == data


@pytest.mark.parametrize("op", ["bulk_out", "bulk_in"])
def test_single_stall_is_recovered(gpu, emu, op):
    data = random_bytes(600 * 1024)
    emu.faults.arm("stall", op, nth=2)
    gpu.copy_in(0, data)
    assert gpu.copy_out(0, len(data)) == data
    assert ("stall", op) in emu.faults.fired


def test_link_down_mid_copy_then_replug(gpu, emu):
    data = random_bytes(900 * 1024)
    emu.faults.arm("link_down", "bulk_out", nth=2)
    with pytest.raises(LinkError, match="link down"):
        gpu.copy_in(0, data)
    emu.replug()
    gpu.reconnect()
    gpu.copy_in(0, data)
    assert gpu.copy_out(0, len(data)) == data


@pytest.mark.parametrize("op, nth", [("bulk_out", 2), ("bulk_in", 2), ("ctrl_out", 5)])
def test_unplug_mid_copy_then_replug(gpu, emu, op, nth):
    data = random_bytes(900 * 1024)
    gpu.copy_in(0, data)
    emu.faults.arm("unplug", op, nth=nth)
    with pytest.raises(DeviceLostError):
        gpu.copy_in(0, data) if op == "bulk_out" else gpu.copy_out(0, len(data))
    with pytest.raises(DeviceLostError):
        gpu.copy_out(0, 16)
    emu.replug()
    gpu.reconnect()
    other = random_bytes(len(data))
    gpu.copy_in(0, other)
    assert gpu.copy_out(0, len(other)) == other


def test_failed_copy_out_returns_nothing(gpu, emu):
    data = random_bytes(800 * 1024)
    gpu.copy_in(0, data)
    emu.faults.arm("short_read", "bulk_in", nth=3)
    result = None
    with pytest.raises(DeviceError):
        result = gpu.copy_out(0, len(data))
    assert result is None
    assert gpu.stats.d2h_bytes == 0


def test_link_statistics(gpu):
    gpu.copy_in(0, random_bytes(1 << 20))
    gpu.copy_out(0, 1 << 20)
    s = gpu.stats
    assert s.h2d_bytes == s.d2h_bytes == 1 << 20
    assert s.h2d_seconds > 0 and s.d2h_seconds > 0 and s.rate("h2d") > 0


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_virtual_bandwidth_reaches_90_percent(preset):
    model = PRESETS[preset]
    emu = EmulatedBridge(model, vram_bytes=64 << 20)
    gpu = UsbGpuLink.open(emu)
    data = random_bytes(64 << 20)
    gpu.copy_in(0, data)
    assert gpu.copy_out(0, len(data)) == data
    for direction in ("h2d", "d2h"):
        assert gpu.stats.rate(direction) >= 0.9 * model.bulk_bytes_per_s, direction


def test_double_buffering_beats_single():
    rates = []
    for windows in (1, 2):
        gpu = UsbGpuLink.open(EmulatedBridge(USB3_GEN2, vram_bytes=8 << 20), windows=windows)
        gpu.copy_in(0, random_bytes(8 << 20))
        gpu.copy_out(0, 8 << 20)
        rates.append((gpu.stats.rate("h2d"), gpu.stats.rate("d2h")))
    assert rates[1][0] > 1.1 * rates[0][0] and rates[1][1] > 1.1 * rates[0][1]


def test_vram_allocator_first_fit_and_merge():
    from egpu_array._errors import DeviceOutOfMemoryError
    from egpu_array.backend.usb.vram import VramAllocator
    a = VramAllocator(4096, align=256)
    x, y, z = a.alloc(1), a.alloc(256), a.alloc(1000)
    assert (x, y, z) == (0, 256, 512) and a.used == 1536
    a.free(y)
    assert a.alloc(200) == 256
    a.free(256), a.free(x), a.free(z)
    assert a.free_ranges == [(0, 4096)]
    with pytest.raises(DeviceOutOfMemoryError, match="4352"):
        a.alloc(4097)
    with pytest.raises(ValueError):
        a.free(7)


def test_open_emulated_helper():
    from egpu_array.backend.usb.emulator import open_emulated
    emu, gpu = open_emulated(vram_bytes=1 << 20)
    gpu.copy_in(8, b"hello")
    assert bytes(emu.vram[8:13]) == b"hello" and gpu.vram_size == 1 << 20
