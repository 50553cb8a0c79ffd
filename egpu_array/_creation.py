"""Creation functions of the standard (section "Creation Functions").

Constant fills, ranges, identity matrices and triangles are lazy expressions over scalar and index
leaves, so they cost one fused kernel (or nothing, when fused into a consumer). Host data enters
through ``asarray``, the one place bytes are copied to a device.
"""
from __future__ import annotations

import math
import operator
import weakref

import numpy as np

from . import _dtypes as dt
from ._array import Array
from ._elementwise import cast_node, const_node
from ._graph import BROADCAST_VIEW, READ_ONLY_MEMORY, LazyNode, View, buffer_node
from ._sequences import SCALAR_DEFAULTS, from_nested_arrays, scan_scalars
from ._shapes import normalize_shape
from ._transfer import from_host, own_buffer
from .backend.device import get_device

__all__ = ["asarray", "arange", "empty", "empty_like", "eye", "from_dlpack", "full", "full_like",
           "linspace", "meshgrid", "ones", "ones_like", "tril", "triu", "zeros", "zeros_like"]


def _check_dtype(func: str, dtype):
    if dtype is not None and not isinstance(dtype, dt.DType):
        raise TypeError(f"{func}: dtype must be an egpu_array dtype or None, got {dtype!r}")
    return dtype


def asarray(obj, /, *, dtype=None, device=None, copy=None) -> Array:
    """An Array from an Array, a NumPy array, a buffer-protocol object, nested sequences or a scalar."""
    _check_dtype("asarray", dtype)
    if isinstance(obj, Array):
        _refuse_complex_to_real(obj.dtype, dtype)
        dev = get_device(device, "asarray") if device is not None else obj.device
        if copy is False and (dev != obj.device or (dtype is not None and dtype is not obj.dtype)):
            raise ValueError("asarray: copy=False, but a copy is needed to change the device or dtype")
        out = obj
        if dtype is not None and dtype is not obj.dtype:
            out = Array._new(cast_node(obj._node, dtype))
        elif copy:
            out = Array._new(LazyNode("positive", (obj._node,), obj.dtype, obj.shape, None, obj.device))
        if dev != out.device:
            out = out.to_device(dev)
        return out
    dev = get_device(device, "asarray")
    if hasattr(obj, "__dlpack__") and not isinstance(obj, np.ndarray):
        return from_dlpack(obj, device=dev, copy=copy) if dtype is None else \
            asarray(from_dlpack(obj, device=dev, copy=copy), dtype=dtype, copy=copy)
    if isinstance(obj, (bool, int, float, complex)) or isinstance(obj, (list, tuple)):
        arrays: list = []
        rank = scan_scalars(obj, arrays)
        if copy is False:
            raise ValueError("asarray: copy=False is impossible for Python scalars and sequences")
        if arrays:
            return from_nested_arrays(obj, arrays, rank, dtype, device)
        inferred = SCALAR_DEFAULTS[rank][1] if rank >= 0 else dt.float64
        _refuse_complex_to_real(inferred, dtype)
        target = dtype or inferred
        if isinstance(obj, (bool, int, float, complex)):
            if target.kind in "iu" and not isinstance(obj, bool):
                lo, hi = dt.INT_RANGE[target]
                if not lo <= obj <= hi:
                    raise OverflowError(f"asarray: {obj} is out of range for {target}")
        try:
            host = np.array(obj, dtype=target.np)
        except (ValueError, OverflowError) as e:  # ragged nesting; an int beyond the dtype
            raise type(e)(f"asarray: {e}") from None
        return from_host(host, target, dev)
    try:
        host = np.asarray(obj)
    except Exception as e:  # noqa: BLE001 - report what the object was
        raise TypeError(f"asarray: cannot convert an object of type {type(obj).__name__}: {e}") from None
    if host.dtype.kind not in "biufc":
        raise TypeError(f"asarray: unsupported element type {host.dtype}")
    src = dt.from_numpy(host.dtype) if host.dtype in [d.np for d in dt.ALL_DTYPES] else None
    if src is None:
        raise TypeError(f"asarray: dtype {host.dtype} is not one of the standard's dtypes")
    _refuse_complex_to_real(src, dtype)
    target = dtype or src
    if copy is False:
        if target is not src or not dev.host_memory:
            raise ValueError("asarray: copy=False, but a copy is needed (dtype or device differs)")
        return _wrap_host(host, target, dev)
    return from_host(host, target, dev)


def _refuse_complex_to_real(src, dtype, func: str = "asarray") -> None:
    """Complex values asked to become a real dtype are refused, as ``astype`` refuses them (the
    standard: say which part; NumPy would drop the imaginary part); complex to bool is allowed."""
    if dtype is not None and src.kind == "c" and dtype.kind not in "cb":
        raise TypeError(f"{func}: complex values cannot become {dtype}; take real() or abs() first")


#: the buffers over host memory shared with NumPy, one per device and allocation (the NumPy
#: array owning the memory): two imports of one array, or of two views of it, are views of one
#: buffer, so the overlap checks of in-place writes and the pending-reader lists see them alias
_SHARED: weakref.WeakValueDictionary = weakref.WeakValueDictionary()


def _wrap_host(host: np.ndarray, dtype, device) -> Array:
    """Share a NumPy array's memory (cpu device, copy=False): a view of our own buffer when the
    memory is one we handed out (``_transfer.own_buffer``), else of the buffer over the NumPy allocation
    it lies in (:data:`_SHARED`). Read-only memory gives a read-only view (``View.readonly``:
    writes raise, as NumPy's read-only arrays do; a read-only memmap crashed the process)."""
    item = dtype.itemsize
    if any(s % item for s in host.strides):
        raise ValueError("asarray: copy=False needs strides that are multiples of the item size")
    strides = tuple(s // item for s in host.strides)
    readonly = "" if host.flags.writeable else READ_ONLY_MEMORY
    buf = own_buffer(host, device)
    if buf is None or (host.ctypes.data - buf.ptr) % item:
        owner = host
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        shift = (host.ctypes.data - owner.ctypes.data) % item  # (the buffer starts on an element of host)
        key = (device.name, owner.ctypes.data + shift, owner.nbytes - shift)
        buf = _SHARED.get(key)
        if buf is None or not buf.valid:
            buf = _SHARED[key] = _ForeignBuffer(device, owner, shift)
    view = View(buf, strides, (host.ctypes.data - buf.ptr) // item, readonly)
    return Array._new(LazyNode("buffer", (), dtype, host.shape, view, device))


class _ForeignBuffer:
    """Memory owned by another library (kept alive here); never returned to our pool."""

    __slots__ = ("device", "nbytes", "ptr", "handle", "valid", "readers", "__weakref__")

    def __init__(self, device, host: np.ndarray, shift: int = 0):
        self.device = device
        self.nbytes = host.nbytes - shift
        self.ptr = host.ctypes.data + shift
        self.handle = host
        self.valid = True
        self.readers = []  # weak references to pending lazy Arrays that read this buffer


def _default_float(device=None):
    return dt.float64


def full(shape, fill_value, *, dtype=None, device=None) -> Array:
    """An array of ``shape`` filled with ``fill_value``."""
    _check_dtype("full", dtype)
    if isinstance(fill_value, Array) and device is None:
        device = fill_value.device  # (filled where the value is: nothing crosses a link)
    return _filled("full", normalize_shape(shape, "full"), fill_value, dtype, get_device(device, "full"))


def _filled(func: str, shape: tuple, fill_value, dtype, dev) -> Array:
    """``fill_value`` (a Python scalar, or a 0-d Array on ``dev``) as an array of ``shape`` and
    ``dtype`` (None: the scalar's default dtype, the array's dtype). A complex value for a real
    dtype is refused; a Python int outside an integer dtype's range raises OverflowError, as in
    ``asarray`` (never a silently wrapped value), while a 0-d array's value is cast as ``astype``
    casts it (as NumPy's full_like does: its values are not read to check them)."""
    if isinstance(fill_value, Array):
        if fill_value.ndim != 0:
            raise TypeError(f"{func}: fill_value must be a Python scalar or a 0-d array, got an array "
                            f"of shape {fill_value.shape}")
        if fill_value.device != dev:
            raise ValueError(f"{func}: fill_value is on {fill_value.device}, the array would be on "
                             f"{dev}; move it with to_device first")
        dtype = dtype or fill_value.dtype
        _refuse_complex_to_real(fill_value.dtype, dtype, func)
        node = cast_node(fill_value._node, dtype)
        return Array._new(LazyNode("positive", (node,), dtype, shape, None, node.device))
    if not isinstance(fill_value, (bool, int, float, complex)):
        raise TypeError(f"{func}: fill_value must be a Python scalar, got {type(fill_value).__name__}")
    dtype = dtype or dt.dtype_of_scalar(fill_value)
    if isinstance(fill_value, complex) and dtype.kind != "c":
        raise TypeError(f"{func}: a complex fill value cannot fill {dtype}")
    if dtype.kind in "iu" and isinstance(fill_value, int) and not isinstance(fill_value, bool):
        lo, hi = dt.INT_RANGE[dtype]
        if not lo <= fill_value <= hi:
            raise OverflowError(f"{func}: fill value {fill_value} is out of range for {dtype}")
    node = cast_node(const_node(fill_value, dt.dtype_of_scalar(fill_value), dev, shape), dtype)
    return Array._new(node)


def zeros(shape, *, dtype=None, device=None) -> Array:
    """An array of zeros."""
    return full(shape, 0, dtype=dtype or _default_float(), device=device)


def ones(shape, *, dtype=None, device=None) -> Array:
    """An array of ones."""
    return full(shape, 1, dtype=dtype or _default_float(), device=device)


def empty(shape, *, dtype=None, device=None) -> Array:
    """An uninitialised array (allocated, not filled)."""
    _check_dtype("empty", dtype)
    shape = normalize_shape(shape, "empty")
    dtype = dtype or _default_float()
    dev = get_device(device, "empty")
    buf = dev.allocator.alloc(math.prod(shape) * dtype.itemsize)
    return Array._new(buffer_node(buf, dtype, shape))


def _like(func, x, dtype, device):
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an Array, got {type(x).__name__}")
    return x.shape, dtype or x.dtype, device if device is not None else x.device


def empty_like(x, /, *, dtype=None, device=None) -> Array:
    """An uninitialized array with the shape of ``x`` (and its dtype and device unless given)."""
    shape, dtype, device = _like("empty_like", x, dtype, device)
    return empty(shape, dtype=dtype, device=device)


def zeros_like(x, /, *, dtype=None, device=None) -> Array:
    """Zeros with the shape of ``x`` (and its dtype and device unless given)."""
    shape, dtype, device = _like("zeros_like", x, dtype, device)
    return full(shape, 0, dtype=dtype, device=device)


def ones_like(x, /, *, dtype=None, device=None) -> Array:
    """Ones with the shape of ``x`` (and its dtype and device unless given)."""
    shape, dtype, device = _like("ones_like", x, dtype, device)
    return full(shape, 1, dtype=dtype, device=device)


def full_like(x, /, fill_value, *, dtype=None, device=None) -> Array:
    """``fill_value`` in the shape of ``x`` (and its dtype and device unless given)."""
    shape, dtype, device = _like("full_like", x, dtype, device)
    if isinstance(fill_value, Array):
        return _filled("full_like", shape, fill_value, dtype, get_device(device, "full_like"))
    if not dt.scalar_fits(fill_value, dtype) and not (dtype.kind in "fc" and isinstance(fill_value, (int, float))
                                                     and not isinstance(fill_value, bool)):
        raise TypeError(f"full_like: fill value {fill_value!r} does not fit dtype {dtype}")
    return _filled("full_like", shape, fill_value, dtype, get_device(device, "full_like"))


def _iota(shape: tuple, axis: int, device) -> LazyNode:
    return LazyNode("iota", (), dt.int64, shape, axis, device)


def _op(op, *srcs, dtype=None, shape=None):
    s0 = srcs[0]
    return LazyNode(op, tuple(srcs), dtype or s0.dtype, shape or max((s.shape for s in srcs), key=len),
                    None, s0.device)


def arange(start, /, stop=None, step=1, *, dtype=None, device=None) -> Array:
    """Evenly spaced values in ``[start, stop)``: ``start + i * step``."""
    _check_dtype("arange", dtype)
    if stop is None:
        start, stop = 0, start
    for v in (start, stop, step):
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise TypeError(f"arange: start, stop and step must be real Python numbers, got {v!r}")
    if step == 0:
        raise ValueError("arange: step must not be 0")
    n = max(0, math.ceil((stop - start) / step))
    is_int = all(isinstance(v, int) for v in (start, stop, step))
    dtype = dtype or (dt.int64 if is_int else dt.float64)
    dev = get_device(device, "arange")
    compute = dt.int64 if (is_int and dtype.kind in "iu") else dt.float64
    idx = cast_node(_iota((n,), 0, dev), compute)
    val = _op("add", _op("multiply", idx, const_node(step, compute, dev)), const_node(start, compute, dev))
    return Array._new(cast_node(val, dtype))


def linspace(start, stop, /, num, *, dtype=None, device=None, endpoint=True) -> Array:
    """``num`` evenly spaced values from ``start`` to ``stop`` (inclusive when ``endpoint``).
    ``start`` and ``stop`` are Python (or NumPy) numbers, or 0-d arrays (``linspace(min(x),
    max(x), n)``): those are read where they are, on their device, never copied to the host."""
    _check_dtype("linspace", dtype)
    if not isinstance(num, int) or isinstance(num, bool) or num < 0:
        raise ValueError(f"linspace: num must be a non-negative int, got {num!r}")
    ends, arrays = [], []
    for name, v in (("start", start), ("stop", stop)):
        if isinstance(v, np.generic) and not isinstance(v, np.bool_):
            v = v.item()
        if isinstance(v, Array) and v.ndim == 0 and v.dtype.kind != "b":
            arrays.append(v)
        elif not isinstance(v, (int, float, complex)) or isinstance(v, bool):
            raise TypeError(f"linspace: {name} must be a number or a 0-d numeric array, got "
                            f"{type(v).__name__ if not isinstance(v, Array) else f'an array of shape {v.shape}'}")
        ends.append(v)
    start, stop = ends
    is_complex = any(isinstance(v, complex) or (isinstance(v, Array) and v.dtype.kind == "c") for v in ends)
    dtype = dtype or (dt.complex128 if is_complex else dt.float64)
    if dtype.kind not in "fc":
        raise TypeError(f"linspace: dtype must be floating-point, got {dtype}")
    if arrays:
        from ._array import same_device
        home = same_device("linspace", arrays)
        if device is not None and get_device(device, "linspace") != home:
            raise ValueError(f"linspace: start/stop are on {home}, device={device!r}; move them with to_device")
        device = home
    dev = get_device(device, "linspace")
    compute = dt.complex128 if dtype.kind == "c" else dt.float64
    div = (num - 1) if endpoint else num

    def node(v):
        return cast_node(v._node, compute) if isinstance(v, Array) else const_node(v, compute, dev)
    if arrays:  # (the step computed in the kernel, in the same double precision as below)
        step = _op("divide", _op("subtract", node(stop), node(start)), const_node(float(max(div, 1)), compute, dev))
        step = step if div > 0 else const_node(0.0, compute, dev)
    else:
        step = const_node((stop - start) / div if div > 0 else 0.0, compute, dev)
    idx = cast_node(_iota((num,), 0, dev), compute)
    val = _op("add", _op("multiply", idx, step), node(start), shape=(num,))
    if endpoint and num > 1:
        last = _op("equal", _iota((num,), 0, dev), const_node(num - 1, dt.int64, dev), dtype=dt.bool)
        val = _op("where", last, node(stop), val, dtype=compute, shape=(num,))
    return Array._new(cast_node(val, dtype))


def eye(n_rows, n_cols=None, /, *, k=0, dtype=None, device=None) -> Array:
    """Ones on the k-th diagonal, zeros elsewhere."""
    _check_dtype("eye", dtype)
    n_cols = n_rows if n_cols is None else n_cols
    shape = normalize_shape((n_rows, n_cols), "eye")
    dtype = dtype or dt.float64
    dev = get_device(device, "eye")
    diff = _op("subtract", _iota(shape, 1, dev), _iota(shape, 0, dev))
    on = _op("equal", diff, const_node(_diagonal_offset("eye", k, shape), dt.int64, dev), dtype=dt.bool)
    return Array._new(cast_node(on, dtype))


def _diagonal_offset(func: str, k, shape) -> int:
    """``k`` (a diagonal offset: column - row) checked, and clamped to ``[-rows, cols]`` for a
    ``shape[-2:]`` matrix: every offset beyond selects the same elements (none or all), and the
    kernel compares in int64 (``k = 2**64`` would wrap to 0)."""
    if isinstance(k, bool) or not hasattr(k, "__index__"):
        raise TypeError(f"{func}: expected an integer k (a diagonal offset), got {type(k).__name__}")
    rows, cols = shape[-2], shape[-1]
    return max(-rows, min(operator.index(k), cols))


def _triangle(func: str, x, k: int, keep: str) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an Array, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"{func}: expected at least 2 dimensions, got shape {x.shape}")
    shape = x.shape[-2:]
    dev = x.device
    diff = _op("subtract", _iota(shape, 1, dev), _iota(shape, 0, dev))
    mask = _op(keep, diff, const_node(_diagonal_offset(func, k, shape), dt.int64, dev), dtype=dt.bool)
    zero = cast_node(const_node(0, dt.int64, dev), x.dtype) if x.dtype.kind != "b" else const_node(False, dt.bool, dev)
    return Array._new(LazyNode("where", (mask, x._node, zero), x.dtype, x.shape, None, dev))


def tril(x, /, *, k=0) -> Array:
    """The lower triangle of the last two axes (elements with column - row <= k)."""
    return _triangle("tril", x, k, "less_equal")


def triu(x, /, *, k=0) -> Array:
    """The upper triangle of the last two axes (elements with column - row >= k)."""
    return _triangle("triu", x, k, "greater_equal")


def meshgrid(*arrays, indexing="xy") -> tuple:
    """Coordinate matrices from 1-D arrays: new arrays, as NumPy's (writes to one reach neither
    the inputs nor the other repetitions), left pending over broadcast views of the inputs, so an
    expression of them reads the inputs and never builds the matrices."""
    from ._views import make_view
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    for a in arrays:
        if not isinstance(a, Array) or a.ndim != 1:
            raise ValueError("meshgrid: every argument must be a 1-D Array")
    if len({a.dtype for a in arrays}) > 1:
        raise ValueError("meshgrid: all arrays must have the same dtype")
    shape = [a.shape[0] for a in arrays]
    if indexing == "xy" and len(arrays) >= 2:
        shape[0], shape[1] = shape[1], shape[0]
    out = []
    for i, a in enumerate(arrays):
        axis = i
        if indexing == "xy" and len(arrays) >= 2 and i < 2:
            axis = 1 - i
        v = a._realize()
        strides = [0] * len(arrays)
        strides[axis] = v.strides[0]
        grid = make_view(a, tuple(shape), tuple(strides), v.offset, readonly=BROADCAST_VIEW)._node
        out.append(Array._new(LazyNode("positive", (grid,), a.dtype, grid.shape, None, a.device)))
    return tuple(out)


def from_dlpack(x, /, *, device=None, copy=None) -> Array:
    """An Array from any object with ``__dlpack__`` (shares host memory on the cpu device)."""
    from ._dlpack import import_dlpack
    return import_dlpack(x, device=device, copy=copy)
