"""Copies between the host and devices: the only place data crosses a link.

Every copy here is explicit (``to_device``, ``numpy.asarray``, ``float(x)``, DLPack) and recorded by
the profiler when the device's memory is not the host's.
"""
from __future__ import annotations

import math
import threading
import weakref
import time
from contextlib import contextmanager

import numpy as np

from . import _dtypes as _dt, profiler
from ._graph import LazyNode, buffer_node, contiguous_strides

__all__ = ["to_host", "from_host", "to_device", "view_extent", "internal"]

_local = threading.local()


@contextmanager
def internal(func: str):
    """Copies made inside the block are the library's own (``func`` needed the data: a
    data-dependent size, a host LAPACK step); the profiler lists them apart from the ones the
    caller asked for."""
    prev = getattr(_local, "func", None)
    _local.func = prev or func
    try:
        yield
    finally:
        _local.func = prev


@contextmanager
def _copy(direction: str, nbytes: int, device):
    """Time the copy inside the block and record it in the profiler; a copy that fails is noted
    there too (what failed, how many bytes were asked for), then its error propagates."""
    t0 = time.perf_counter()
    try:
        yield
    except BaseException as exc:
        where = "to" if direction == "to_device" else "from"
        profiler.note(f"a copy of {nbytes} bytes {where} {device} failed: {type(exc).__name__}: {exc}")
        raise
    profiler.record_transfer(direction, nbytes, t0, time.perf_counter(), getattr(_local, "func", None),
                             over=device)


def view_extent(shape, strides, offset) -> tuple:
    """(first, last+1) element positions a strided view touches."""
    lo = hi = offset
    for n, s in zip(shape, strides):
        if n == 0:
            return offset, offset
        if s > 0:
            hi += (n - 1) * s
        else:
            lo += (n - 1) * s
    return lo, hi + 1


#: our own host-memory buffers whose memory was handed out through DLPack (the consumer's array
#: does not lead back to them), by device name and address: a NumPy array of that memory coming
#: back is a view of the buffer itself
_EXPORTED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def exported(buf) -> None:
    """Remember that ``buf``'s memory was handed to another library (see :data:`_EXPORTED`)."""
    _EXPORTED[(buf.device.name, buf.ptr)] = buf


def own_buffer(host: np.ndarray, device):
    """The buffer of ours on ``device`` holding all of ``host``'s elements, or None: the one a
    view from :func:`to_host` (``np.asarray(x)``) leads back to through its ``base`` objects, or
    one exported through DLPack (:data:`_EXPORTED`)."""
    from .backend.cpu import _HostMemory
    base = host.base
    for _ in range(16):  # (views of views, as_strided's holder, the host view)
        if base is None or isinstance(base, _HostMemory):
            break
        base = getattr(base, "base", None)
    if isinstance(base, _HostMemory) and base.buf.device == device:
        return base.buf
    if not _EXPORTED or not host.size:
        return None
    lo = hi = host.ctypes.data
    for n, st in zip(host.shape, host.strides):
        lo, hi = (lo + (n - 1) * st, hi) if st < 0 else (lo, hi + (n - 1) * st)
    hi += host.itemsize
    for (name, ptr), buf in list(_EXPORTED.items()):
        if name == device.name and ptr <= lo and hi <= ptr + buf.nbytes and buf.valid:
            return buf
    return None


def printed(x) -> tuple:
    """``(host array, threshold)`` for ``np.array2string`` to print ``x`` as NumPy prints it.
    Past NumPy's print threshold only the edges are shown, so only they are copied to the host:
    along every axis longer than twice the edge items, the first and last edge items and one
    element standing for the elided middle, printed with threshold 0 (the axis then still
    exceeds twice the edge items, so NumPy elides the same middle)."""
    opts = np.get_printoptions()
    edge = opts["edgeitems"]
    if x.size <= opts["threshold"]:
        return x._to_numpy(), opts["threshold"]
    from ._creation import asarray
    from ._gather import take
    for axis, n in enumerate(x.shape):
        if n > 2 * edge:
            picks = list(range(edge + 1)) + list(range(n - edge, n))
            x = take(x, asarray(picks, device=x.device), axis=axis)
    return x._to_numpy(), 0


def to_host(arr, copy: bool = False, writeable: bool = False) -> np.ndarray:
    """The values of ``arr`` as a NumPy array (a view of host memory when possible, read-only
    unless ``writeable``)."""
    view = arr._realize()
    dtype = arr.dtype
    item = dtype.itemsize
    shape = arr.shape
    lo, hi = view_extent(shape, view.strides, view.offset)
    dev = arr.device
    if hi <= lo:
        return np.empty(shape, dtype=dtype.np)
    if dev.host_memory:
        raw = dev.host_view(view.buffer, lo * item, (hi - lo) * item)
    elif hi - lo > 2 * math.prod(shape):
        # a sparse view (a column, a stepped slice): packed on the device first, so that only its
        # elements cross the link, not the whole span of memory it strides over
        from ._array import Array
        packed = Array._new(LazyNode("positive", (arr._node,), dtype, shape, None, dev))
        return to_host(packed)
    else:
        raw = np.empty((hi - lo) * item, dtype=np.uint8)
        with _copy("from_device", raw.nbytes, dev):
            dev.copy_out(view.buffer, lo * item, raw)
    base = raw.view(dtype.np)
    out = np.lib.stride_tricks.as_strided(base[view.offset - lo:], shape=shape,
                                          strides=tuple(s * item for s in view.strides),
                                          writeable=writeable and dev.host_memory)
    if copy or not dev.host_memory:
        return np.array(out, copy=True)
    return out


#: ctypes of the real element types (NumPy's mapping), for reading one value in place
_C_SCALARS = {d.name: np.ctypeslib.as_ctypes_type(d.np) for d in _dt.ALL_DTYPES if d.kind != "c"}


def read_scalar(arr):
    """The value of a 0-d array as a Python scalar: read in place on host-memory devices (no
    NumPy view), else copied out as :func:`to_host` does (recorded in the profiler)."""
    view = arr._realize()
    dtype = arr.dtype
    if not arr.device.host_memory:
        return to_host(arr)[()].item()
    at = view.buffer.ptr + view.offset * dtype.itemsize
    if dtype.kind == "c":
        part = _C_SCALARS[dtype.real_dtype.name]
        return complex(part.from_address(at).value, part.from_address(at + dtype.itemsize // 2).value)
    return _C_SCALARS[dtype.name].from_address(at).value


def from_host(host: np.ndarray, dtype, device):
    """A new realized Array holding a copy of ``host`` (converted to ``dtype``) on ``device``."""
    from ._array import Array
    host = np.asarray(host, dtype=dtype.np, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
    buf = device.allocator.alloc(host.nbytes)
    if host.nbytes and device.host_memory:
        device.copy_in(buf, 0, host.reshape(-1).view(np.uint8))
    elif host.nbytes:
        with _copy("to_device", host.nbytes, device):
            device.copy_in(buf, 0, host.reshape(-1).view(np.uint8))
    return Array._new(buffer_node(buf, dtype, host.shape, contiguous_strides(host.shape)))


def to_device(arr, device, stream=None):
    """``arr`` on ``device``: itself when already there, else a copy through the host."""
    from .backend.device import get_device
    dev = get_device(device, "to_device")
    if dev == arr.device:
        return arr
    if stream is not None:
        raise ValueError("to_device: stream must be None for this device pair")
    return from_host(to_host(arr, copy=False), arr.dtype, dev)
