"""pyusb link to an ASM24xx bridge running the custom firmware.

:func:`find_bridges` lists bridges; :class:`UsbLink` opens one and offers control
IN/OUT and bulk IN/OUT with explicit timeouts. pyusb errors become the package's
:class:`~egpu_array.DeviceError` subclasses (table ``_ERRNO_RULES``). The pyusb
backend is a parameter, so the emulated bridge plugs in where libusb would.
"""
from __future__ import annotations

import errno
import time
from typing import Callable

import usb.core
import usb.util

from egpu_array._errors import (DeviceLostError, LinkError, LinkStallError, LinkTimeoutError,
                                TransferError)

#: (idVendor, idProduct) of the custom firmware.
BRIDGE_IDS = ((0xADD1, 0x0001), (0x3801, 0x0001))
#: The product string must start with one of these.
PRODUCT_PREFIXES = ("custom", "AS2462")

EP_BULK_IN = 0x81
EP_BULK_OUT = 0x02
CONFIGURATION = 1
INTERFACE = 0
ALT_SETTING = 0

#: Default timeouts in milliseconds.
CTRL_TIMEOUT_MS = 1000
BULK_TIMEOUT_MS = 2000

# errno -> what it means for us; a USBTimeoutError is always a timeout.
_ERRNO_RULES = {
    errno.EPIPE: "stall",
    errno.ENODEV: "lost",
    errno.ENOENT: "lost",
    errno.ETIMEDOUT: "timeout",
}


def _is_bridge(dev) -> bool:
    try:
        product = dev.product or ""
    except (usb.core.USBError, ValueError):
        return False
    return product.startswith(PRODUCT_PREFIXES)


def find_bridges(backend=None) -> list:
    """Every connected bridge with the custom firmware, as ``usb.core.Device`` objects.

    ``backend`` is passed to ``usb.core.find``; None lets pyusb pick libusb, and
    an empty list comes back when no pyusb backend is installed at all.
    """
    found = []
    try:
        for vid, pid in BRIDGE_IDS:
            devs = usb.core.find(find_all=True, idVendor=vid, idProduct=pid, backend=backend)
            found.extend(d for d in devs if _is_bridge(d))
    except usb.core.NoBackendError:
        return []
    return found


def _classify(exc: usb.core.USBError) -> str:
    if isinstance(exc, usb.core.USBTimeoutError):
        return "timeout"
    return _ERRNO_RULES.get(exc.errno, "error")


class UsbLink:
    """One opened bridge: vendor control requests on EP0 and bulk 0x02/0x81.

    Every method takes a timeout in milliseconds. Failures raise
    LinkTimeoutError, LinkStallError (after one clear-halt and retry),
    DeviceLostError (device gone) or LinkError (anything else).
    """

    def __init__(self, device, speed: str | None = None):
        """Claim ``device`` (a ``usb.core.Device`` from :func:`find_bridges`)."""
        self.device = device
        self.backend = device.backend
        self.speed = speed or ("high" if device.speed == usb.util.SPEED_HIGH else "super")
        self._clock = getattr(self.backend, "clock", None)
        self._call("open", lambda: self._claim(device))

    @classmethod
    def open(cls, backend=None, index: int = 0) -> "UsbLink":
        """Open the ``index``-th bridge found with ``backend``; DeviceLostError if none."""
        bridges = find_bridges(backend)
        if len(bridges) <= index:
            raise DeviceLostError(f"UsbLink.open: expected a bridge #{index} "
                                  f"(IDs {BRIDGE_IDS}), found {len(bridges)}")
        return cls(bridges[index])

    @staticmethod
    def _claim(dev) -> None:
        if dev.is_kernel_driver_active(INTERFACE):
            dev.detach_kernel_driver(INTERFACE)
        dev.set_configuration(CONFIGURATION)
        usb.util.claim_interface(dev, INTERFACE)
        dev.set_interface_altsetting(INTERFACE, ALT_SETTING)

    def close(self) -> None:
        """Release the interface and the handle; errors of a gone device are ignored."""
        try:
            usb.util.dispose_resources(self.device)
        except usb.core.USBError:
            pass

    # -- clock ------------------------------------------------------------------
    def now(self) -> float:
        """Seconds on the link's clock: virtual under the emulator, else perf_counter."""
        return self._clock.now() if self._clock else time.perf_counter()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the link's clock (advances virtual time, no real sleep)."""
        if self._clock:
            self._clock.sleep(seconds)
        else:
            time.sleep(seconds)

    # -- error mapping ----------------------------------------------------------
    def _call(self, what: str, fn: Callable, ep: int | None = None,
              rearm: Callable[[], None] | None = None):
        """Run ``fn``; on a stall clear the halt, re-arm, retry once; map errors."""
        for attempt in (0, 1):
            try:
                return fn()
            except usb.core.USBError as exc:
                kind = _classify(exc)
                if kind == "timeout":
                    raise LinkTimeoutError(f"UsbLink.{what}: timed out ({exc})") from exc
                if kind == "lost":
                    raise DeviceLostError(f"UsbLink.{what}: device is gone ({exc})") from exc
                if kind != "stall":
                    raise LinkError(f"UsbLink.{what}: USB error ({exc})") from exc
                if attempt == 1:
                    raise LinkStallError(f"UsbLink.{what}: endpoint still stalled "
                                         f"after clear-halt and one retry") from exc
                self._recover_stall(what, ep, rearm)

    def _recover_stall(self, what: str, ep: int | None, rearm) -> None:
        try:
            if ep is not None:
                self.device.clear_halt(ep)
            if rearm is not None:
                rearm()
        except usb.core.USBError as exc:
            raise LinkStallError(f"UsbLink.{what}: clear-halt failed ({exc})") from exc

    def reset_pipes(self) -> None:
        """Clear halt on both bulk endpoints (the firmware then drops any armed DMA)."""
        for ep in (EP_BULK_OUT, EP_BULK_IN):
            self._call("reset_pipes", lambda ep=ep: self.device.clear_halt(ep))

    # -- transfers --------------------------------------------------------------
    def ctrl_out(self, request: int, value: int, index: int, data: bytes = b"",
                 timeout_ms: int = CTRL_TIMEOUT_MS, request_type: int = 0x40) -> None:
        """Vendor control OUT; the whole data stage must be accepted."""
        n = self._call(f"ctrl_out({request:#x})", lambda: self.device.ctrl_transfer(
            request_type, request, value, index, data, timeout_ms))
        if n != len(data):
            raise LinkError(f"UsbLink.ctrl_out({request:#x}): sent {n} of {len(data)} bytes")

    def ctrl_in(self, request: int, value: int, index: int, length: int,
                timeout_ms: int = CTRL_TIMEOUT_MS, request_type: int = 0xC0) -> bytes:
        """Vendor control IN of exactly ``length`` bytes (fewer raise TransferError)."""
        buf = self._call(f"ctrl_in({request:#x})", lambda: self.device.ctrl_transfer(
            request_type, request, value, index, length, timeout_ms))
        if len(buf) != length:
            raise TransferError(f"UsbLink.ctrl_in({request:#x}): expected {length} bytes, "
                            f"got {len(buf)}")
        return bytes(buf)

    def bulk_out(self, data, timeout_ms: int = BULK_TIMEOUT_MS,
                 rearm: Callable[[], None] | None = None) -> None:
        """Bulk OUT on 0x02; ``rearm`` re-sends the arming command before the retry."""
        n = self._call("bulk_out", lambda: self.device.write(EP_BULK_OUT, data, timeout_ms),
                       ep=EP_BULK_OUT, rearm=rearm)
        if n != len(data):
            raise LinkError(f"UsbLink.bulk_out: sent {n} of {len(data)} bytes")

    def bulk_in(self, nbytes: int, timeout_ms: int = BULK_TIMEOUT_MS,
                rearm: Callable[[], None] | None = None) -> bytes:
        """Bulk IN on 0x81 of exactly ``nbytes``; a short read raises TransferError."""
        buf = self._call("bulk_in", lambda: self.device.read(EP_BULK_IN, nbytes, timeout_ms),
                         ep=EP_BULK_IN, rearm=rearm)
        if len(buf) != nbytes:
            raise TransferError(f"UsbLink.bulk_in: short read, expected {nbytes} bytes, "
                            f"got {len(buf)}")
        return buf.tobytes()
