"""Real-bridge checks; skipped unless a custom-firmware ASM24 bridge is connected."""
import os

import pytest

from egpu_array.backend.usb.transport import UsbLink, find_bridges

pytestmark = pytest.mark.usb_hw


@pytest.fixture(scope="module")
def link():
    bridges = find_bridges()
    if not bridges:
        pytest.skip("no ASM24 bridge with the custom firmware (0xADD1/0x3801:0x0001) found, "
                    "or no libusb backend installed")
    lnk = UsbLink(bridges[0])
    yield lnk
    lnk.close()


def test_capabilities(link):
    from egpu_array.backend.usb.asm24 import Asm24
    assert Asm24(link).capabilities().major == 1


def test_random_round_trip(link):
    """Exact random-data round trip through SRAM (no GPU driver needed: F2 only)."""
    from egpu_array.backend.usb.asm24 import Asm24
    from egpu_array.backend.usb.memmap import XDATA_SRAM_VIEW
    proto = Asm24(link)
    data = os.urandom(64)
    proto.write_xdata(0xF000, data)
    assert proto.read_xdata(0xF000, len(data)) == data
    assert XDATA_SRAM_VIEW >= len(data)
