"""Exceptions of egpu_array.

Device and link faults derive from :class:`DeviceError`, so a user can catch every
hardware-side failure with one clause while spec-mandated errors (TypeError,
ValueError, IndexError) keep their standard types.
"""

__all__ = [
    "DeviceError",
    "DeviceOutOfMemoryError",
    "DeviceLostError",
    "LinkError",
    "LinkTimeoutError",
    "LinkStallError",
    "TransferError",
    "KernelLaunchError",
    "KernelCompileError",
]


class DeviceError(RuntimeError):
    """Base class of every device and link fault."""


class DeviceOutOfMemoryError(DeviceError, MemoryError):
    """A device allocation failed even after the caching pool was emptied."""


class DeviceLostError(DeviceError):
    """The device went away (unplugged, reset, driver fault); it must be reopened."""


class LinkError(DeviceError):
    """A transfer over the link (USB, PCIe tunnel) failed."""


class LinkTimeoutError(LinkError, TimeoutError):
    """A transfer over the link did not complete within its timeout."""


class LinkStallError(LinkError):
    """An endpoint stalled and could not be recovered."""


class TransferError(LinkError):
    """A copy between host and device failed; the destination is marked invalid."""


class KernelLaunchError(DeviceError):
    """A kernel could not be compiled, loaded or launched on the device."""


class KernelCompileError(KernelLaunchError):
    """A kernel cannot be compiled for the device (an operation its code generator cannot lower)."""
