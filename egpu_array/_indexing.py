"""Indexing: ``x[key]`` and ``x[key] = value`` for basic indices (integers, slices, ellipsis, None,
boolean scalars, 0-d integer arrays).

Basic indices give zero-copy views. Out-of-bounds integers raise IndexError before anything runs,
so no kernel ever reads or writes outside a buffer. Integer-array and boolean-mask indices go to
``_advanced`` (gather kernels; masked assignment as a fused ``where``; other assignments through
index arrays as a scatter kernel, ``_scatter``).
"""
from __future__ import annotations

import operator

import numpy as np

from . import _dtypes as dt
from ._array import Array
from ._graph import LazyNode, View
from ._shapes import broadcast_shapes, value_shape_for

__all__ = ["getitem", "setitem", "basic_view"]


class _BoolIndex:
    """A boolean scalar index: a new axis of length 1 (True) or 0 (False), as in NumPy."""

    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = value


def _array_index(k: Array, func: str):
    """A 0-d integer or boolean array index as an int / _BoolIndex. Its value decides the view (a
    data-dependent shape or offset), so it is read: free in host memory, otherwise one element
    crosses the link, recorded by the profiler with a note."""
    if k.ndim == 0 and k.dtype.kind in "iub":
        if not k.device.host_memory:
            from . import profiler
            profiler.note(f"{func}: read a 0-d index array from {k.device} ({k.dtype.itemsize} bytes)")
        from ._transfer import internal
        with internal(func):
            value = k._to_numpy()[()].item()
        return _BoolIndex(value) if k.dtype.kind == "b" else int(value)
    what = "boolean-mask" if k.dtype.kind == "b" else "integer-array"
    if k.dtype.kind not in "iub":
        raise IndexError(f"{func}: arrays of dtype {k.dtype} are not valid indices")
    raise IndexError(f"{func}: {what} indexing (an index array of dtype {k.dtype} and shape "
                     f"{k.shape}) is not supported yet: it needs a gather/scatter kernel")


def _normalize_key(key, ndim: int, func: str) -> list:
    if not isinstance(key, tuple):
        key = (key,)
    out = []
    n_ellipsis = 0
    for k in key:
        if k is Ellipsis:
            n_ellipsis += 1
            out.append(k)
        elif k is None or isinstance(k, slice):
            out.append(k)
        elif isinstance(k, Array):
            out.append(_array_index(k, func))
        elif isinstance(k, (bool, np.bool_)):
            out.append(_BoolIndex(bool(k)))
        else:
            try:
                out.append(operator.index(k))
            except TypeError:
                raise IndexError(f"{func}: only integers, slices, ellipsis and None are valid "
                                 f"indices, got {type(k).__name__}") from None
    if n_ellipsis > 1:
        raise IndexError(f"{func}: an index can only have a single ellipsis")
    n_bool = sum(1 for k in out if isinstance(k, _BoolIndex))
    if n_bool and (n_bool > 1 or any(isinstance(k, int) for k in out)):
        # NumPy treats these as advanced indices broadcast together (the new axis may move to the
        # front); the standard only defines a boolean index as the sole index
        raise IndexError(f"{func}: a boolean scalar index combined with integer or other boolean "
                         "indices is not supported")
    n_real = sum(1 for k in out if k is not None and k is not Ellipsis and not isinstance(k, _BoolIndex))
    if n_real > ndim:
        raise IndexError(f"{func}: too many indices: {n_real} for an array of {ndim} dimensions")
    if n_ellipsis:
        i = out.index(Ellipsis)
        out[i:i + 1] = [slice(None)] * (ndim - n_real)
    else:
        out.extend([slice(None)] * (ndim - n_real))
    return out


_ALL = slice(None)


def _simple_keys(key, ndim: int):
    """The common key of ints and slices (at most one ellipsis, no more entries than ``ndim``) as
    one int or slice per axis; None for any other key (``_normalize_key`` handles, or rejects, it)."""
    t = type(key)
    if t is int or t is slice:
        return [key] + [_ALL] * (ndim - 1) if ndim else None
    if key is Ellipsis:
        return [_ALL] * ndim
    if t is not tuple:
        return None
    ell = -1
    for i, k in enumerate(key):
        tk = type(k)
        if tk is not int and tk is not slice:
            if k is not Ellipsis or ell >= 0:
                return None
            ell = i
    n = len(key) - (ell >= 0)
    if n > ndim:
        return None
    if ell < 0:
        return list(key) + [_ALL] * (ndim - n)
    return list(key[:ell]) + [_ALL] * (ndim - n) + list(key[ell + 1:])


def basic_view(x: Array, key, func: str = "__getitem__", keys: list | None = None) -> Array:
    """The view ``x[key]`` for a basic index (``keys``: its ``_simple_keys`` when known)."""
    if keys is None:
        keys = _simple_keys(key, len(x._node.shape))
    if keys is None:
        keys = _normalize_key(key, x.ndim, func)
    v = x._realize()
    node = x._node
    xshape, xstrides = node.shape, v.strides
    shape, strides = [], []
    offset = v.offset
    d = 0
    for k in keys:
        tk = type(k)
        if tk is slice:
            n, s = xshape[d], xstrides[d]
            if k.start is None and k.stop is None and k.step is None:  # the whole axis
                shape.append(n)
                strides.append(s)
            else:
                start, stop, step = k.indices(n)
                length = len(range(start, stop, step))
                if length:
                    offset += start * s
                shape.append(length)
                strides.append(s * step)
        elif k is None or tk is _BoolIndex:
            shape.append(0 if tk is _BoolIndex and not k.value else 1)
            strides.append(0)
            continue
        else:
            n = xshape[d]
            if not -n <= k < n:
                raise IndexError(f"{func}: index {k} is out of bounds for axis {d} with size {n}")
            offset += (k % n) * xstrides[d]
        d += 1
    return Array._new(LazyNode("buffer", (), node.dtype, tuple(shape),
                               View(v.buffer, tuple(strides), offset, v.readonly), node.device))


def getitem(x: Array, key) -> Array:
    """``x[key]``: a view for basic indices, a gather kernel for index arrays and masks."""
    keys = _simple_keys(key, len(x._node.shape))  # (ints and slices: never advanced)
    if keys is None and is_advanced(key):
        return advanced_getitem(x, key)
    return basic_view(x, key, "__getitem__", keys)


def setitem(x: Array, key, value) -> None:
    """``x[key] = value``: ``value`` (an Array or Python scalar) broadcast into the view."""
    if key is Ellipsis or (type(key) is tuple and not key):  # the whole array: no view needed
        advanced = False
        x._realize()  # (first, as a view would: a value naming x's pending expression reads the result)
        target = x
    else:
        keys = _simple_keys(key, len(x._node.shape))  # (ints and slices: never advanced)
        advanced = keys is None and is_advanced(key)
        target = x if advanced else basic_view(x, key, "__setitem__", keys)
    xnode = x._node
    dtype = xnode.dtype
    if isinstance(value, Array):
        node = value._node
        if node.device is not xnode.device and node.device != xnode.device:
            raise ValueError(f"__setitem__: value is on {node.device}, the array on {xnode.device}")
        if node.dtype is not dtype:
            if dt.promote_types(node.dtype, dtype, "__setitem__") is not dtype:
                raise TypeError(f"__setitem__: cannot store {node.dtype} values in an array of "
                                f"dtype {dtype} without a lossy cast")
            node = cast_node(node, dtype)
    elif type(value) is float and dtype.kind == "f":  # the common case: no further checks apply
        node = LazyNode("const", (), dtype, (), value, xnode.device)
    elif isinstance(value, (bool, int, float, complex)):
        if not dt.scalar_fits(value, dtype) or (isinstance(value, complex) and dtype.kind != "c"):
            raise TypeError(f"__setitem__: a Python {type(value).__name__} cannot be stored in an "
                            f"array of dtype {dtype}")
        _check_scalar_range("__setitem__", value, dtype)
        node = const_node(value, dtype, xnode.device)
    else:
        raise TypeError(f"__setitem__: value must be an Array or a Python scalar, got {type(value).__name__}")
    if advanced:
        return advanced_setitem(x, key, node)
    tshape = target._node.shape
    if len(node.shape) > len(tshape):
        node = reshape_node(node, value_shape_for(node.shape, len(tshape)))
    if node.shape != tshape and broadcast_shapes(tshape, node.shape, func="__setitem__") != tshape:
        raise ValueError(f"__setitem__: a value of shape {node.shape} cannot be broadcast to {tshape}")
    if node.op == "const" or node.shape != tshape or node.op == "buffer":
        # an identity op broadcasts the value to the target (and makes a buffer copy a kernel)
        node = LazyNode("positive", (node,), dtype, tshape, None, xnode.device)
    target._write(node)


# bound here, after Array: these modules import _array, which imports this module at its end
from ._advanced import advanced_getitem, advanced_setitem, is_advanced, reshape_node  # noqa: E402
from ._elementwise import _check_scalar_range, cast_node, const_node  # noqa: E402
