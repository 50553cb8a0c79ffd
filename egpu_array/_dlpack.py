"""DLPack exchange (DLPack 1.0 with the legacy protocol as fallback).

On the cpu device the capsule shares our memory (NumPy builds it from a view that keeps the buffer
alive). Devices whose memory the host cannot read and that have no DLPack device type of their own
(``sim``) export a host copy: a DLPack conversion is an explicit request to move the data, and the
profiler records the bytes. ``copy=False`` there raises BufferError, since a copy is unavoidable.
"""
from __future__ import annotations

import numpy as np

from ._transfer import to_host

__all__ = ["dlpack_device", "export_dlpack", "import_dlpack", "KDLCPU"]

KDLCPU = 1


def dlpack_device(x) -> tuple:
    """(device type, device id) of ``x`` as DLPack enumerates them."""
    dev = x.device
    if dev.host_memory:
        return (KDLCPU, 0)
    # a device with its own DLPack type (cuda) names it; the others (sim) export a host copy:
    # a DLPack conversion is an explicit request to move the data (and the profiler records it)
    return getattr(dev, "dlpack_code", None) or (KDLCPU, 0)


def export_dlpack(x, *, stream=None, max_version=None, dl_device=None, copy=None):
    """The DLPack capsule of ``x`` (see ``Array.__dlpack__``)."""
    dev = x.device
    host_target = dl_device is not None and tuple(dl_device) == (KDLCPU, 0)
    if dl_device is not None and not host_target and tuple(dl_device) != dlpack_device(x):
        raise BufferError(f"__dlpack__: cannot export to device {dl_device}")
    if copy is False and not dev.host_memory:
        raise BufferError("__dlpack__: copy=False, but the data is not in host memory")
    arr = to_host(x, copy=bool(copy), writeable=True)
    if not arr.flags.writeable:
        arr = np.array(arr, copy=True)
    kwargs = {}
    if max_version is not None:
        kwargs["max_version"] = max_version
    try:
        return arr.__dlpack__(stream=None, **kwargs)
    except TypeError:  # an older NumPy without max_version
        return arr.__dlpack__()


def import_dlpack(obj, *, device=None, copy=None):
    """An Array from a DLPack producer: shared memory on the cpu device unless ``copy``."""
    from ._array import Array
    from ._creation import asarray
    if isinstance(obj, Array):  # one of ours, on any device: no capsule needed
        if copy is False and device is not None and device != obj.device:
            raise BufferError(f"from_dlpack: copy=False, but the data is on {obj.device}, not {device}")
        return asarray(obj, device=device, copy=copy)
    try:
        host = np.from_dlpack(obj, copy=copy)
    except TypeError:
        host = np.from_dlpack(obj)
        if copy:
            host = host.copy()
    except BufferError:
        if copy is False:
            raise
        host = np.from_dlpack(obj, device="cpu", copy=True)
    from .backend.device import get_device
    dev = get_device(device, "from_dlpack")
    share = copy is not True and dev.host_memory
    if copy is False and not share:
        raise BufferError(f"from_dlpack: copy=False, but {dev} cannot share host memory")
    return asarray(host, device=dev, copy=False if share else True)
