"""synchronize(): compute pending arrays and wait for their devices."""
from __future__ import annotations

from ._array import Array
from .backend.device import _instances

__all__ = ["synchronize"]


def synchronize(*arrays) -> None:
    """Compute the given arrays (or, without arguments, wait for every device) and wait."""
    devices = set()
    for a in arrays:
        if not isinstance(a, Array):
            raise TypeError(f"synchronize: expected Arrays, got {type(a).__name__}")
        a._realize()
        devices.add(a.device)
    if not arrays:
        devices = set(_instances.values())
    for d in devices:
        d.synchronize()
