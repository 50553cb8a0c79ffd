"""Transport, protocol and PCIe layers through pyusb + the emulated bridge."""
import pytest
import usb.core

from egpu_array._errors import DeviceLostError, LinkError, LinkStallError, LinkTimeoutError
from egpu_array.backend.usb import asm24
from egpu_array.backend.usb.asm24 import Asm24, PcieCompletionError
from egpu_array.backend.usb.emu_link import FaultPlan
from egpu_array.backend.usb.emu_pcie import GPU_ID
from egpu_array.backend.usb.pcie import PcieBus
from egpu_array.backend.usb.transport import UsbLink, find_bridges


def test_find_bridges_sees_the_emulator(emu):
    (dev,) = find_bridges(emu)
    assert (dev.idVendor, dev.idProduct) == (0xADD1, 0x0001)
    assert (dev.manufacturer, dev.product) == ("tiny", "custom v0.1")


def test_open_detaches_kernel_driver_and_claims(emu):
    link = UsbLink.open(emu)
    assert not emu.kernel_driver and emu.configuration == 1
    assert link.speed == "super"
    link.close()


def test_no_bridge_raises_device_lost(emu):
    emu.unplug()
    assert find_bridges(emu) == []
    with pytest.raises(DeviceLostError, match="UsbLink.open"):
        UsbLink.open(emu)


def test_capabilities_and_xdata(emu):
    proto = Asm24(UsbLink.open(emu))
    assert proto.capabilities().has("sram_dma")
    proto.write_xdata(0xA010, bytes(range(10)))
    assert proto.read_xdata(0xA010, 10) == bytes(range(10))
    assert len(proto.read_xdata(0xA000, 1300)) == 1300  # three E4 transfers


@pytest.mark.parametrize("kind, op, exc", [
    ("timeout", "ctrl_in", LinkTimeoutError),
    ("unplug", "ctrl_in", DeviceLostError),
    ("short_read", "ctrl_in", LinkError),
])
def test_control_faults_map_to_errors(emu, kind, op, exc):
    proto = Asm24(UsbLink.open(emu))
    emu.faults.arm(kind, op)
    with pytest.raises(exc):
        proto.capabilities()


def test_control_stall_is_retried_once(emu):
    proto = Asm24(UsbLink.open(emu))
    emu.faults.arm("stall", "ctrl_in", count=1)
    assert proto.capabilities().major == 1
    emu.faults.arm("stall", "ctrl_in", count=2)
    with pytest.raises(LinkStallError):
        proto.capabilities()


def test_fault_plan_rules():
    plan = FaultPlan()
    plan.arm("timeout", "bulk_out", nth=2, count=2)
    assert [plan.fire("bulk_out") for _ in range(4)] == [set(), {"timeout"}, {"timeout"}, set()]
    with pytest.raises(ValueError, match="cannot be armed"):
        plan.arm("ur", "bulk_in")
    with pytest.raises(ValueError, match="unknown fault"):
        plan.arm("fire", "bulk_in")


def test_enumeration_and_bars(gpu, emu):
    info = gpu.gpu
    assert (info.vendor, info.device, info.class_code) == (*GPU_ID, 0x030000)
    assert (info.bars[0].base, info.bars[0].size, info.bars[0].is64) == (0x1000_0000, 16 << 20,
                                                                          False)
    assert (info.bars[2].base, info.bars[2].size, info.bars[2].prefetchable) == (32 << 30,
                                                                                 16 << 20, True)
    bus = gpu.bus
    for b in range(4):
        assert bus.config_read(b, 0, 0, 0x18) >> 8 & 0xFF == b + 1
    assert bus.config_read(4, 0, 0, 0x00, 2) == GPU_ID[0]
    assert bus.config_read(4, 0, 0, 0x02, 2) == GPU_ID[1]


def test_absent_function_is_unsupported_request(gpu):
    with pytest.raises(PcieCompletionError) as info:
        gpu.bus.config_read(4, 1, 0, 0)
    assert info.value.status == asm24.CPL_UR


def test_bar_dword_subdword_and_streaming(gpu, emu):
    assert gpu.read32(0, 0) == GPU_ID[1] << 16 | GPU_ID[0]
    gpu.write32(2, 0x100, 0xDEADBEEF)
    assert bytes(emu.vram[0x100:0x104]) == bytes.fromhex("efbeadde")
    base = gpu.gpu.bars[2].base
    gpu.bus.mem_write(base + 0x101, 0x55, 1)
    assert gpu.bus.mem_read(base + 0x100, 4) == 0xDEAD55EF
    assert gpu.bus.mem_read(base + 0x102, 2) == 0xDEAD
    gpu.gpu.bars[2].write(0x2000, bytes(range(64)))
    assert bytes(emu.vram[0x2000:0x2040]) == bytes(range(64))
    assert gpu.gpu.bars[2].read(0x2000, 64) == bytes(range(64))


@pytest.mark.parametrize("kind, exc", [("ur", PcieCompletionError), ("ca", PcieCompletionError)])
def test_completion_faults(gpu, emu, kind, exc):
    emu.faults.arm(kind, "tlp")
    with pytest.raises(exc, match="completion"):
        gpu.read32(0, 0)
    assert gpu.read32(0, 0) == GPU_ID[1] << 16 | GPU_ID[0]


def test_ret_status_is_retried_ten_times(gpu, emu):
    emu.faults.arm("ret_error", "tlp", count=10)
    assert gpu.read32(0, 0) == GPU_ID[1] << 16 | GPU_ID[0]
    emu.faults.arm("ret_error", "tlp", nth=1, count=11)
    with pytest.raises(LinkError, match="ret_status"):
        gpu.read32(0, 0)


def test_link_down_times_out_tlps(gpu, emu):
    emu.faults.arm("link_down", "tlp")
    with pytest.raises(LinkTimeoutError, match="0xFF"):
        gpu.read32(0, 0)
    assert gpu.bus.ltssm() != 0x78


def test_training_failure_is_reported(emu):
    bus = PcieBus(Asm24(UsbLink.open(emu)))
    emu.faults.arm("link_down", "ctrl_in", request=0xE4)
    with pytest.raises(LinkError, match="LTSSM"):
        bus.power_up()


def test_unarmed_bulk_times_out(emu):
    link = UsbLink.open(emu)
    with pytest.raises(LinkTimeoutError):
        link.bulk_out(b"\0" * 512, timeout_ms=10)
    with pytest.raises(LinkTimeoutError):
        link.bulk_in(512, timeout_ms=10)


def test_pyusb_errors_carry_libusb_errno(emu):
    from egpu_array.backend.usb.emulator import usb_error
    err = usb_error("stall")
    assert isinstance(err, usb.core.USBError) and err.errno == 32
    assert isinstance(usb_error("timeout"), usb.core.USBTimeoutError)


def test_high_speed_chunks_e4_to_64_bytes():
    from egpu_array.backend.usb.emulator import EmulatedBridge
    emu = EmulatedBridge(vram_bytes=1 << 20, speed="high")
    proto = Asm24(UsbLink.open(emu))
    assert proto.link.speed == "high"
    proto.write_xdata(0xA000, bytes(range(100)))
    assert proto.read_xdata(0xA000, 100) == bytes(range(100))
