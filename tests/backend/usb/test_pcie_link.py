"""PCIe link speed and width from the PCI Express capability, read through the config-space walk
(backend/usb/pcie.py) of the emulated bridge plugged into pyusb, and shown by ``info``."""
import os
import struct
import subprocess
import sys

import pytest

from egpu_array._cli_info import pcie_link_lines, sim_lines, usb_bridge_lines
from egpu_array.backend.usb.emu_link import PRESETS, USB3_GEN2
from egpu_array.backend.usb.emu_pcie import PCIE_CAP_AT
from egpu_array.backend.usb.emulator import EmulatedBridge
from egpu_array.backend.usb.pcie import GPU_BUS, PCIE_CAP_ID, LinkInfo
from egpu_array.backend.usb.sim import SimDevice
from egpu_array.backend.usb.staging import UsbGpuLink


def _open(link=None):
    emu = EmulatedBridge(USB3_GEN2, vram_bytes=4 << 20)
    if link is not None:  # the GPU trained a different link (set before power-up)
        emu.bridge.pcie.link = link
        emu.bridge.pcie.reset()
    return emu, UsbGpuLink.open(emu, fence_timeout_s=0.05)


def test_gpu_and_downstream_port_report_gen4_x4(gpu):
    for bus in (GPU_BUS, GPU_BUS - 1):
        info = gpu.bus.link(bus)
        assert info == LinkInfo(4, 4, 4, 4)
        assert info.gts == 16.0 and str(info) == "PCIe Gen4 x4 (16 GT/s)"
    assert gpu.bus.find_capability(GPU_BUS, PCIE_CAP_ID) == PCIE_CAP_AT[0]
    assert gpu.bus.find_capability(0, PCIE_CAP_ID) == PCIE_CAP_AT[1]
    assert gpu.bus.find_capability(GPU_BUS, 0x05) is None  # no MSI capability in the list


def test_link_status_bits_are_decoded_and_read_only():
    emu, link = _open((3, 2))  # Gen3 x2: speed bits 3:0, width bits 9:4 of Link Status
    try:
        info = link.bus.link(GPU_BUS)
        assert (info.speed_code, info.width, info.max_speed_code, info.max_width) == (3, 2, 4, 4)
        assert str(info) == "PCIe Gen3 x2 (8 GT/s), capable of Gen4 x4"
        at = link.bus.find_capability(GPU_BUS, PCIE_CAP_ID)
        assert link.bus.config_read(GPU_BUS, 0, 0, at + 0x12, 2) == 3 | 2 << 4
        link.bus.config_write(GPU_BUS, 0, 0, at + 0x10, 0xFFFFFFFF)  # status is not writable
        assert link.bus.link(GPU_BUS) == info
    finally:
        link.close()


def test_function_without_capability_list_or_with_a_loop():
    emu, link = _open()
    try:
        fn = emu.bridge.pcie.gpu.fn
        at = PCIE_CAP_AT[0]
        struct.pack_into("<BB", fn.cfg, at, 0x09, at)  # a vendor capability pointing at itself
        assert link.bus.link(GPU_BUS) is None
        fn.cfg[0x06] &= ~0x10  # no capabilities list at all
        assert link.bus.find_capability(GPU_BUS, PCIE_CAP_ID) is None
        assert pcie_link_lines(link)[0] == "GPU link: no PCI Express capability"
    finally:
        link.close()


def test_info_lines_for_a_bridge_found_by_pyusb():
    lines = usb_bridge_lines(EmulatedBridge(PRESETS["USB4"], vram_bytes=4 << 20))
    text = "\n".join(lines)
    assert "GPU 10de:2684" in text
    assert "    GPU link: PCIe Gen4 x4 (16 GT/s)" in lines
    assert "    bridge downstream port: PCIe Gen4 x4 (16 GT/s)" in lines


def test_info_lines_for_sim():
    dev = SimDevice(index=12, vram_bytes=4 << 20, link_model=PRESETS["USB3_GEN2"])
    assert sim_lines(dev) == ["link: emulated bridge, USB3_GEN2 preset",
                              "GPU link: PCIe Gen4 x4 (16 GT/s)",
                              "bridge downstream port: PCIe Gen4 x4 (16 GT/s)"]


def test_info_command_shows_the_sim_link(tmp_path):
    env = dict(os.environ, EGPU_ARRAY_CACHE_DIR=str(tmp_path), EGPU_ARRAY_SIM_VRAM_MB="16",
               EGPU_ARRAY_SIM_LINK="usb3")
    r = subprocess.run([sys.executable, "-m", "egpu_array", "info"], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    sim = r.stdout.split("\n  sim", 1)[1]
    assert "link: emulated bridge, USB3_GEN2 preset" in sim
    assert "GPU link: PCIe Gen4 x4 (16 GT/s)" in sim


@pytest.mark.parametrize("code,gts", [(1, 2.5), (2, 5.0), (5, 32.0), (9, None)])
def test_speed_codes(code, gts):
    assert LinkInfo(code, 16, code, 16).gts == gts
