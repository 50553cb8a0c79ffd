"""An emulated ASM24 bridge with a GPU behind it, as a real pyusb backend.

``usb.core.find(backend=EmulatedBridge())`` sees one device with the custom
firmware's descriptors (0xADD1:0x0001, "tiny", "custom v0.1"); every transfer
the transport makes goes through pyusb into :class:`EmulatedBridge`, which runs
the firmware model (:mod:`.emu_bridge`), PCIe and GPU (:mod:`.emu_pcie`,
:mod:`.emu_gpu`) on a virtual clock (:mod:`.emu_link`). Faults are armed on
:attr:`EmulatedBridge.faults`; :meth:`EmulatedBridge.unplug` and
:meth:`EmulatedBridge.replug` model the cable.
"""
from __future__ import annotations

import array
import errno
from types import SimpleNamespace

import usb.backend
import usb.core
import usb.util

from .emu_bridge import Bridge, Nak, Stall
from .emu_link import USB3_GEN2, FaultPlan, LinkModel, VirtualClock

VENDOR_ID, PRODUCT_ID = 0xADD1, 0x0001
STRINGS = {1: "tiny", 2: "custom v0.1", 3: "EMU0001"}
LANGID_EN_US = 0x0409
SPEEDS = {"super": (usb.util.SPEED_SUPER, 1024, 0x0320, 9),
          "high": (usb.util.SPEED_HIGH, 512, 0x0210, 64)}

# libusb error codes pyusb would report for each condition.
_USB_ERRORS = {
    "stall": ("Pipe error", -9, errno.EPIPE),
    "lost": ("No such device (it may have been disconnected)", -4, errno.ENODEV),
    "timeout": ("Operation timed out", -7, errno.ETIMEDOUT),
    "overflow": ("Overflow", -8, errno.EOVERFLOW),
}


def usb_error(kind: str) -> usb.core.USBError:
    """The pyusb exception libusb would raise for ``kind``."""
    text, code, err = _USB_ERRORS[kind]
    cls = usb.core.USBTimeoutError if kind == "timeout" else usb.core.USBError
    return cls(text, code, err)


def _endpoints(packet: int):
    return [SimpleNamespace(bLength=7, bDescriptorType=5, bEndpointAddress=a,
                            bmAttributes=usb.util.ENDPOINT_TYPE_BULK, wMaxPacketSize=packet,
                            bInterval=0, bRefresh=0, bSynchAddress=0, extra_descriptors=[])
            for a in (0x81, 0x02)]


class _Handle:
    """An open device handle; stale after a replug."""

    def __init__(self, generation: int):
        self.generation = generation


class EmulatedBridge(usb.backend.IBackend):
    """pyusb backend serving one emulated bridge + GPU.

    Parameters: ``model`` (a :class:`LinkModel`, default USB3_GEN2),
    ``vram_bytes`` (size of the emulated VRAM), ``speed`` ("super" or "high").
    Attributes: ``clock`` (the shared :class:`VirtualClock`), ``faults``
    (:class:`FaultPlan`), ``bridge`` (firmware state), ``vram`` (numpy uint8).
    """

    def __init__(self, model: LinkModel = USB3_GEN2, vram_bytes: int = 64 << 20,
                 speed: str = "super"):
        super().__init__()
        self.model, self.speed = model, speed
        self.clock = VirtualClock()
        self.faults = FaultPlan()
        self.bridge = Bridge(self.clock, model, vram_bytes, speed)
        self.plugged = True
        self.generation = 0
        self.kernel_driver = True  # a kernel driver is bound until the host detaches it
        self.configuration = 0

    @property
    def vram(self):
        """The emulated VRAM (numpy uint8 array)."""
        return self.bridge.pcie.gpu.vram

    # -- cable ------------------------------------------------------------------
    def unplug(self) -> None:
        """Pull the cable: every open handle fails with 'no device' until :meth:`replug`."""
        self.plugged = False
        self.generation += 1

    def replug(self, clear_vram: bool = False) -> None:
        """Reconnect: the bridge boots again (PCIe off); faults are disarmed."""
        self.plugged = True
        self.generation += 1
        self.faults.clear()
        self.kernel_driver, self.configuration = True, 0
        self.bridge.reset()
        if clear_vram:
            self.vram[:] = 0

    def _check(self, handle: _Handle) -> None:
        if not self.plugged or handle.generation != self.generation:
            raise usb_error("lost")

    # -- descriptors ------------------------------------------------------------
    def enumerate_devices(self):
        """One device while plugged in."""
        return [self.generation] if self.plugged else []

    def get_device_descriptor(self, dev):
        """Device descriptor of the custom firmware."""
        speed, _, bcd, ep0 = SPEEDS[self.speed]
        return SimpleNamespace(
            bLength=18, bDescriptorType=1, bcdUSB=bcd, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=ep0, idVendor=VENDOR_ID, idProduct=PRODUCT_ID,
            bcdDevice=0x0001, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1, address=2, bus=1, port_number=1, port_numbers=(1,),
            speed=speed)

    def get_configuration_descriptor(self, dev, config):
        """Configuration 1 with one interface."""
        if config != 0:
            raise IndexError(f"Invalid configuration index {config}")
        return SimpleNamespace(bLength=9, bDescriptorType=2, wTotalLength=9 + 2 * (9 + 14),
                               bNumInterfaces=1, bConfigurationValue=1, iConfiguration=0,
                               bmAttributes=0x80, bMaxPower=0x32, extra_descriptors=[])

    def get_interface_descriptor(self, dev, intf, alt, config):
        """Interface 0: alt 0 (bulk 0x81/0x02) and alt 1 (UAS-style, modeled unused)."""
        if config != 0 or intf != 0 or alt > 1:
            raise IndexError(f"Invalid interface {intf} alt {alt}")
        return SimpleNamespace(bLength=9, bDescriptorType=4, bInterfaceNumber=0,
                               bAlternateSetting=alt, bNumEndpoints=2, bInterfaceClass=0xFF,
                               bInterfaceSubClass=0xFF, bInterfaceProtocol=0xFF,
                               iInterface=0, extra_descriptors=[])

    def get_endpoint_descriptor(self, dev, ep, intf, alt, config):
        """Bulk IN 0x81 and OUT 0x02."""
        self.get_interface_descriptor(dev, intf, alt, config)
        if ep > 1:
            raise IndexError(f"Invalid endpoint index {ep}")
        return _endpoints(SPEEDS[self.speed][1])[ep]

    # -- session ----------------------------------------------------------------
    def open_device(self, dev):
        """A handle bound to the current plug generation."""
        if not self.plugged or dev != self.generation:
            raise usb_error("lost")
        return _Handle(self.generation)

    def close_device(self, dev_handle):
        """Nothing to free."""

    def set_configuration(self, dev_handle, config_value):
        """SET_CONFIGURATION also resets the firmware's arm state."""
        self._check(dev_handle)
        self.configuration = config_value
        self.bridge.drop_arm()

    def get_configuration(self, dev_handle):
        """The active configuration value."""
        self._check(dev_handle)
        return self.configuration

    def set_interface_altsetting(self, dev_handle, intf, altsetting):
        """Accepts alt 0 and 1 of interface 0."""
        self._check(dev_handle)
        if intf != 0 or altsetting > 1:
            raise usb_error("stall")

    def claim_interface(self, dev_handle, intf):
        """Fails while the kernel driver still owns the interface."""
        self._check(dev_handle)
        if self.kernel_driver:
            raise usb.core.USBError("Resource busy", -6, errno.EBUSY)

    def release_interface(self, dev_handle, intf):
        """Nothing to do."""
        self._check(dev_handle)

    def is_kernel_driver_active(self, dev_handle, intf):
        """True until :meth:`detach_kernel_driver`."""
        self._check(dev_handle)
        return self.kernel_driver

    def detach_kernel_driver(self, dev_handle, intf):
        """Unbind the (pretend) kernel driver."""
        self._check(dev_handle)
        self.kernel_driver = False

    def clear_halt(self, dev_handle, ep):
        """CLEAR_FEATURE(HALT): the firmware drops its streaming/DMA state."""
        self._check(dev_handle)
        self.clock.sleep(self.model.ctrl_s)
        self.bridge.drop_arm()

    def reset_device(self, dev_handle):
        """Port reset: like a replug without losing the handle's generation check."""
        self._check(dev_handle)
        self.bridge.reset()

    # -- transfers --------------------------------------------------------------
    def _faults(self, dev_handle, op: str, request: int | None = None,
                timeout: int = 0) -> set[str]:
        self._check(dev_handle)
        kinds = self.faults.fire(op, request)
        if "unplug" in kinds and op != "bulk_out":
            self.unplug()
            raise usb_error("lost")
        if "link_down" in kinds:
            self.bridge.set_link(False)
        if "stall" in kinds:
            self.bridge.drop_arm()
            raise usb_error("stall")
        if "timeout" in kinds:
            self.clock.sleep(timeout / 1000)
            raise usb_error("timeout")
        return kinds

    def _run(self, fn, timeout: int):
        try:
            return fn()
        except Stall:
            raise usb_error("stall") from None
        except Nak:
            self.clock.sleep(timeout / 1000)
            raise usb_error("timeout") from None

    def ctrl_transfer(self, dev_handle, bmRequestType, bRequest, wValue, wIndex, data,
                      timeout):
        """Standard GET_DESCRIPTOR(string) and the vendor command set."""
        is_in = bool(bmRequestType & 0x80)
        kinds = self._faults(dev_handle, "ctrl_in" if is_in else "ctrl_out", bRequest, timeout)
        if bmRequestType & 0x60 == 0:  # standard request
            return self._standard(bmRequestType, bRequest, wValue, wIndex, data)
        tlp = frozenset()
        if bRequest == 0xF0 and not is_in and wIndex & 3 == 0:
            tlp = frozenset(self.faults.fire("tlp", bRequest))
            if "unplug" in tlp:
                self.unplug()
                raise usb_error("lost")
            if "link_down" in tlp:
                self.bridge.set_link(False)
        length = len(data) if is_in else 0
        out = self._run(lambda: self.bridge.control(
            bmRequestType, bRequest, wValue, wIndex, bytes(data), length, tlp), timeout)
        if not is_in:
            return out
        if "short_read" in kinds:
            out = out[:len(out) // 2]
        data[:len(out)] = array.array("B", out)
        return len(out)

    def _standard(self, bmRequestType, bRequest, wValue, wIndex, data):
        self.clock.sleep(self.model.ctrl_s)
        if bRequest != 0x06 or wValue >> 8 != usb.util.DESC_TYPE_STRING:
            raise usb_error("stall")
        index = wValue & 0xFF
        if index == 0:
            body = LANGID_EN_US.to_bytes(2, "little")
        elif index in STRINGS:
            body = STRINGS[index].encode("utf-16-le")
        else:
            raise usb_error("stall")
        desc = bytes([2 + len(body), usb.util.DESC_TYPE_STRING]) + body
        n = min(len(desc), len(data))
        data[:n] = array.array("B", desc[:n])
        return n

    def bulk_write(self, dev_handle, ep, intf, data, timeout):
        """Bulk OUT on 0x02 (F2 SRAM data or F0 stream)."""
        if ep != 0x02:
            raise usb_error("stall")
        kinds = self._faults(dev_handle, "bulk_out", timeout=timeout)
        if "unplug" in kinds:
            self.bridge.bulk_out(data, cut=len(data) // 2)
            self.unplug()
            raise usb_error("lost")
        return self._run(lambda: self.bridge.bulk_out(data), timeout)

    def bulk_read(self, dev_handle, ep, intf, buff, timeout):
        """Bulk IN on 0x81 into ``buff``; returns the byte count."""
        if ep != 0x81:
            raise usb_error("stall")
        kinds = self._faults(dev_handle, "bulk_in", timeout=timeout)
        out = self._run(lambda: self.bridge.bulk_in(len(buff), "short_read" in kinds), timeout)
        memoryview(buff).cast("B")[:len(out)] = out
        return len(out)


def open_emulated(model: LinkModel = USB3_GEN2, vram_bytes: int = 64 << 20, **kwargs):
    """A new emulated bridge and a UsbGpuLink opened on it through pyusb.

    Returns ``(bridge, link)``; ``kwargs`` go to UsbGpuLink (windows, fence_timeout_s).
    """
    from .staging import UsbGpuLink
    bridge = EmulatedBridge(model, vram_bytes)
    return bridge, UsbGpuLink.open(bridge, **kwargs)
