"""DLPack exchange (DLPack 1.0 with the legacy protocol as fallback).

On the cpu device the capsule shares our memory (NumPy builds it from a view that keeps the buffer
alive). Devices whose memory the host cannot read and that have no DLPack device type of their own
(``sim``) export a host copy: a DLPack conversion is an explicit request to move the data, and the
profiler records the bytes. ``copy=False`` there raises BufferError, since a copy is unavoidable.

A device with a DLPack type of its own (``cuda``: ``dlpack_code`` is ``(kDLCUDA, ordinal)``)
exchanges device pointers, never copies (unless ``copy=True``): :func:`make_capsule` builds the
``DLManagedTensor[Versioned]`` with ctypes, and its deleter releases our buffer (the capsule's
destructor is native, :mod:`._native`, since a consumer that refuses the capsule drops it while its
exception is set). The ``stream`` argument follows the standard (None or 1: the legacy default
stream, 2: the per-thread default stream, > 2: a ``CUstream``, -1: no synchronization): the
consumer's stream waits for our queued work (an event), and when the consumer releases the tensor
our compute stream waits for the work it queued on that stream before the memory can be recycled.
Importing a kDLCUDA capsule onto a cuda device wraps its pointer (``stream`` = our compute stream,
so the producer orders its work before ours) and keeps the producer's tensor until no array uses it
(then its deleter runs, after our queued work on it is done).
"""
from __future__ import annotations

import ctypes

import numpy as np

from ._transfer import to_host, view_extent
from .backend.device import Buffer

__all__ = ["dlpack_device", "export_dlpack", "import_dlpack", "make_capsule", "read_capsule", "KDLCPU", "KDLCUDA"]

KDLCPU, KDLCUDA = 1, 2


def dlpack_device(x) -> tuple:
    """(device type, device id) of ``x`` as DLPack enumerates them."""
    dev = x.device
    # a device with its own DLPack type (cuda) names it; the others (sim) export a host copy:
    # a DLPack conversion is an explicit request to move the data (and the profiler records it)
    code = getattr(dev, "dlpack_code", None)
    return tuple(code) if code else (KDLCPU, 0)


def export_dlpack(x, *, stream=None, max_version=None, dl_device=None, copy=None):
    """The DLPack capsule of ``x`` (see ``Array.__dlpack__``)."""
    dev = x.device
    code = getattr(dev, "dlpack_code", None)
    if code is not None and code[0] != KDLCPU and (dl_device is None or tuple(dl_device) == tuple(code)):
        return _export_device(x, code, stream, max_version, copy)
    host_target = dl_device is not None and tuple(dl_device) == (KDLCPU, 0)
    if dl_device is not None and not host_target and tuple(dl_device) != dlpack_device(x):
        raise BufferError(f"__dlpack__: cannot export to device {dl_device}")
    if stream is not None:  # the standard: on CPU and devices without streams only None
        raise ValueError(f"__dlpack__: stream={stream!r}, but a host-memory export takes stream=None")
    if copy is False and not dev.host_memory:
        raise BufferError("__dlpack__: copy=False, but the data is not in host memory")
    if not copy and dev.host_memory:
        # the consumer may write the shared memory: expressions pending on it are computed first
        # (they were created before the export; later ones see what the consumer writes)
        from ._inplace import flush_readers
        flush_readers(x)
    view = x._realize()
    if copy is False and view.readonly:
        raise BufferError(f"__dlpack__: copy=False, but the array is {view.readonly}: only a copy can "
                          "be handed out writable")
    arr = to_host(x, copy=bool(copy), writeable=not view.readonly)  # (read-only: copied)
    if dev.host_memory and not copy and arr.flags.writeable:
        from ._transfer import exported
        exported(view.buffer)  # (shared: a NumPy array of it coming back is a view of it)
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
    if not (hasattr(obj, "__dlpack__") and hasattr(obj, "__dlpack_device__")):
        raise TypeError(f"from_dlpack: expected an object with __dlpack__ and __dlpack_device__ (an array of "
                        f"a DLPack library), got {type(obj).__name__}")
    where = _producer_device(obj)
    if where is not None and where[0] == KDLCUDA and _to_device_memory(device):
        return _import_device(obj, where, device, copy)
    try:  # (a NumPy array as itself: its base chain lets imports of its views share one buffer)
        host = obj if isinstance(obj, np.ndarray) and not copy else np.from_dlpack(obj, copy=copy)
    except TypeError:
        host = np.from_dlpack(obj)
        if copy:
            host = host.copy()
    except BufferError:
        if copy is False:
            raise
        host = np.from_dlpack(obj, device="cpu", copy=True)
    from .backend.device import get_device
    # device None: the producer's device, which is host memory here (the standard), so the cpu
    # device, whatever the default device is
    dev = get_device("cpu" if device is None else device, "from_dlpack")
    if copy is False and not host.flags.writeable:
        raise BufferError("from_dlpack: copy=False, but the producer's memory is read-only (our arrays "
                          "are writable)")
    share = copy is not True and dev.host_memory and host.flags.writeable  # (read-only: copied)
    if copy is False and not share:
        raise BufferError(f"from_dlpack: copy=False, but {dev} cannot share host memory")
    return asarray(host, device=dev, copy=False if share else True)


# ---- DLPack structures and capsules (ctypes) -----------------------------------------------------
class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32),
                ("dtype", DLDataType), ("shape", ctypes.POINTER(ctypes.c_int64)),
                ("strides", ctypes.POINTER(ctypes.c_int64)), ("byte_offset", ctypes.c_uint64)]


_DELETER = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p), ("deleter", _DELETER),
                ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]


#: DLPack's type codes by NumPy kind (kDLInt, kDLUInt, kDLFloat, kDLComplex, kDLBool)
_CODES = {"i": 0, "u": 1, "f": 2, "c": 5, "b": 6}
FLAG_READ_ONLY, FLAG_IS_COPIED = 1, 2
VERSION = (1, 0)
#: capsule names (module constants: a capsule keeps a pointer to its name)
_NAMES = {False: b"dltensor", True: b"dltensor_versioned"}
_USED = {False: b"used_dltensor", True: b"used_dltensor_versioned"}
#: CUstream handles the standard's small stream numbers stand for (CU_STREAM_LEGACY, _PER_THREAD)
_STREAMS = {None: 1, 1: 1, 2: 2}

_api = ctypes.pythonapi
_capsule_new = ctypes.PYFUNCTYPE(ctypes.py_object, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)(
    ("PyCapsule_New", _api))
_capsule_valid = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(("PyCapsule_IsValid", _api))
_capsule_pointer = ctypes.PYFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)(
    ("PyCapsule_GetPointer", _api))
_capsule_rename = ctypes.PYFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p)(("PyCapsule_SetName", _api))

#: address of each managed tensor we exported -> (struct, shape/strides arrays, owner, on_release)
_exported: dict = {}


def _delete(addr) -> None:
    """The deleter of our managed tensors: forget the struct, then ``on_release()``."""
    entry = _exported.pop(addr, None)
    if entry is not None and entry[3] is not None:
        try:
            entry[3]()
        except Exception:  # a deleter must not raise (it may run in another library's code)
            pass


_DELETE = _DELETER(_delete)


def _capsule_destructor() -> int:
    """Address of our capsules' destructor: a capsule nobody consumed (its name unchanged) calls
    its tensor's deleter. It is native code (:func:`._native.capsule_destructor`): a consumer that
    refuses a capsule drops it while its exception is set, and a ctypes callback cannot run then."""
    from ._native import capsule_destructor
    return capsule_destructor(((_NAMES[False], DLManagedTensor.deleter.offset),
                               (_NAMES[True], DLManagedTensorVersioned.deleter.offset)))


def dl_dtype(dtype) -> tuple:
    """(code, bits, lanes) of a NumPy-compatible dtype (``.np`` of ours, or a NumPy dtype)."""
    d = np.dtype(getattr(dtype, "np", dtype))
    if d.kind not in _CODES:
        raise BufferError(f"__dlpack__: no DLPack type for {d}")
    return (_CODES[d.kind], d.itemsize * 8, 1)


def make_capsule(ptr: int, shape, strides, dtype, device: tuple, owner, *, versioned: bool,
                 flags: int = 0, on_release=None):
    """A DLPack capsule of ``shape``/``strides`` (elements) of ``dtype`` at address ``ptr`` on
    ``device`` ((type, id)); ``owner`` is kept alive until the consumer calls the deleter (or the
    capsule is dropped unconsumed), which then calls ``on_release()``."""
    nd = len(shape)
    shp = (ctypes.c_int64 * max(nd, 1))(*shape)
    std = (ctypes.c_int64 * max(nd, 1))(*strides)
    tensor = DLTensor(ptr, DLDevice(*device), nd, DLDataType(*dl_dtype(dtype)), shp, std, 0)
    if versioned:
        m = DLManagedTensorVersioned(DLPackVersion(*VERSION), None, _DELETE, flags, tensor)
    else:
        m = DLManagedTensor(tensor, None, _DELETE)
    addr = ctypes.addressof(m)
    m.manager_ctx = addr
    _exported[addr] = (m, (shp, std), owner, on_release)
    return _capsule_new(addr, _NAMES[versioned], _capsule_destructor())


class Imported:
    """A consumed capsule's tensor: ``ptr`` (data + byte_offset), ``shape``, ``strides``
    (elements; contiguous when the producer gave none), ``dtype`` (NumPy), ``device``, ``flags``,
    ``version``; :meth:`release` calls the producer's deleter once."""

    def __init__(self, addr: int, versioned: bool):
        m = (DLManagedTensorVersioned if versioned else DLManagedTensor).from_address(addr)
        t = m.dl_tensor
        self.addr, self.versioned = addr, versioned
        self.version = (m.version.major, m.version.minor) if versioned else (0, 0)
        self.flags = m.flags if versioned else 0
        self.device = (t.device.device_type, t.device.device_id)
        self.shape = tuple(t.shape[i] for i in range(t.ndim))
        from ._graph import contiguous_strides
        self.strides = tuple(t.strides[i] for i in range(t.ndim)) if t.strides else contiguous_strides(self.shape)
        self.ptr = (t.data or 0) + t.byte_offset
        code, bits, lanes = t.dtype.code, t.dtype.bits, t.dtype.lanes
        kinds = {v: k for k, v in _CODES.items()}
        if lanes != 1 or code not in kinds:
            raise BufferError(f"from_dlpack: unsupported DLPack type (code {code}, {bits} bits, {lanes} lanes)")
        try:
            self.dtype = np.dtype(f"{kinds[code]}{bits // 8}") if code != 6 else np.dtype(bool)
        except TypeError:
            raise BufferError(f"from_dlpack: unsupported DLPack type (code {code}, {bits} bits)") from None
        self._deleter = m.deleter

    def release(self) -> None:
        """Hand the tensor back to its producer (its deleter), once."""
        deleter, self._deleter = self._deleter, None
        if deleter:
            deleter(self.addr)


def read_capsule(capsule) -> Imported:
    """Consume a DLPack capsule (renamed ``used_...``): its tensor, which the caller must
    :meth:`~Imported.release` when done."""
    for versioned in (True, False):
        name = _NAMES[versioned]
        if _capsule_valid(id(capsule), name):
            addr = _capsule_pointer(id(capsule), name)
            if versioned and ctypes.c_uint32.from_address(addr).value > VERSION[0]:
                raise BufferError("from_dlpack: the producer's DLPack major version is newer than 1")
            imported = Imported(addr, versioned)
            _capsule_rename(id(capsule), _USED[versioned])
            return imported
    raise BufferError("from_dlpack: expected an unconsumed DLPack capsule ('dltensor' or 'dltensor_versioned')")


# ---- device exchange (kDLCUDA) -------------------------------------------------------------------
def _check_stream(stream):
    if stream is not None and (not isinstance(stream, int) or stream == 0 or stream < -1):
        raise BufferError(f"__dlpack__: stream must be None, -1, 1, 2 or a CUDA stream handle, got {stream!r} "
                          "(0 is ambiguous)")


def _export_device(x, code, stream, max_version, copy):
    """The capsule of ``x``'s device memory (no copy unless ``copy``)."""
    from ._creation import asarray
    _check_stream(stream)
    dev = x.device
    if copy:
        x = asarray(x, copy=True)
    view = x._realize()
    item = x.dtype.itemsize
    consumer = _STREAMS.get(stream, stream)
    if stream != -1:
        dev.stream_wait(consumer)  # the consumer's stream runs after our queued work on x

    def on_release():  # the consumer is done: its queued work goes before our reuse of the memory
        if stream == -1:
            dev.stream_wait(None)  # its stream is unknown: wait for the whole device
        else:
            dev.stream_wait(dev.stream_handle, on=consumer)
    versioned = max_version is not None and tuple(max_version) >= VERSION
    return make_capsule(view.buffer.ptr + view.offset * item, x.shape, view.strides, x.dtype, tuple(code), x,
                        versioned=versioned, flags=FLAG_IS_COPIED if copy else 0, on_release=on_release)


def _producer_device(obj):
    """``obj.__dlpack_device__()`` as a tuple of ints, or None."""
    f = getattr(obj, "__dlpack_device__", None)
    if f is None:
        return None
    try:
        t, i = f()
        return (int(t), int(i))
    except Exception:
        return None


def _to_device_memory(device) -> bool:
    """Whether a kDLCUDA tensor imported for ``device`` stays device memory: ``device`` is None (the
    producer's device) or has a kDLCUDA type (or cannot be opened: the import says why)."""
    if device is None:
        return True
    from ._errors import DeviceError
    from .backend.device import get_device
    try:
        dev = get_device(device, "from_dlpack")
    except DeviceError:
        return True
    return (getattr(dev, "dlpack_code", None) or (KDLCPU,))[0] == KDLCUDA


def _import_device(obj, where, device, copy):
    """An Array over a kDLCUDA tensor's memory on the matching cuda device (no copy)."""
    from ._array import Array
    from ._creation import asarray
    from ._dtypes import from_numpy
    from ._errors import DeviceError
    from ._graph import buffer_node
    from .backend.device import get_device
    try:
        dev = get_device(device if device is not None else f"cuda:{where[1]}", "from_dlpack")
    except DeviceError as e:
        raise BufferError(f"from_dlpack: the tensor is on CUDA device {where[1]} (kDLCUDA), which this "
                          f"process cannot use: {e}; pass device='cpu' to copy it to the host") from e
    same = tuple(getattr(dev, "dlpack_code", ()) or ()) == where
    if not same:
        if copy is False:
            raise BufferError(f"from_dlpack: copy=False, but the tensor is on CUDA device {where[1]}, not {dev}")
        out = asarray(_import_device(obj, where, None, None), device=dev, copy=True)
        out._realize()
        return out
    try:
        capsule = obj.__dlpack__(stream=dev.stream_handle, max_version=VERSION)
    except TypeError:  # a producer without max_version
        capsule = obj.__dlpack__(stream=dev.stream_handle)
    t = read_capsule(capsule)
    try:
        if t.device != where:
            raise BufferError(f"from_dlpack: the capsule is on device {t.device}, not {where}")
        try:
            dtype = from_numpy(t.dtype)
        except TypeError as e:
            raise BufferError(f"from_dlpack: {e}") from None
        lo, hi = view_extent(t.shape, t.strides, 0)
        item = t.dtype.itemsize
        buf = _ForeignBuffer(dev, max(hi - lo, 0) * item, t.ptr + lo * item, t.release)
    except BaseException:
        t.release()
        raise
    arr = Array._new(buffer_node(buf, dtype, t.shape, t.strides, -lo))
    if copy or t.flags & FLAG_READ_ONLY:  # ours are writable: a read-only tensor is copied
        if copy is False:
            raise BufferError("from_dlpack: copy=False, but the producer's tensor is read-only")
        out = asarray(arr, copy=True)
        out._realize()  # copied now (a pending copy would read the producer's memory later)
        return out
    return arr


class _ForeignBuffer(Buffer):
    """Device memory owned by another library; ``handle`` is its release callable, run once no
    array uses the buffer and the device's queued work is done."""

    __slots__ = ()

    def __del__(self):
        try:
            self.device.synchronize()
        except Exception:  # a lost device or interpreter shutdown: release anyway
            pass
        try:
            self.handle()
        except Exception:
            pass
