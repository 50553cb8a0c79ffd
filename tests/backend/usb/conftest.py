"""Fixtures for the USB bridge tests: an emulated bridge plugged into pyusb."""
import pytest

from egpu_array.backend.usb.emu_link import USB3_GEN2
from egpu_array.backend.usb.emulator import EmulatedBridge
from egpu_array.backend.usb.staging import UsbGpuLink


def pytest_configure(config):
    """Register the marker of tests that need a real bridge."""
    config.addinivalue_line("markers", "usb_hw: needs a real ASM24xx bridge with the custom "
                                       "firmware (skipped when none is found)")


@pytest.fixture
def emu():
    """A fresh emulated bridge (USB3 Gen2 preset) with 16 MiB of VRAM."""
    return EmulatedBridge(USB3_GEN2, vram_bytes=16 << 20)


@pytest.fixture
def gpu(emu):
    """A UsbGpuLink opened on ``emu`` through pyusb, with a short fence timeout."""
    link = UsbGpuLink.open(emu, fence_timeout_s=0.05)
    yield link
    link.close()
