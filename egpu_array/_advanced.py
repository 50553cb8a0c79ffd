"""Advanced indexing: integer arrays and boolean masks in ``x[key]``, and masked assignment.

``x[key]`` with integer arrays is one gather kernel over a basic view of ``x`` (NumPy's rules:
Python ints count as advanced indices next to arrays; adjacent advanced indices keep their place,
separated ones move to the front). ``x[mask]`` with one mask over leading axes is the compress
kernel (``mask_select``); a mask mixed with other indices becomes the integer indices of its True
elements (``nonzero``). Either way the True count is read to know the shape. ``x[mask] = value``
with one mask over leading
axes is one fused ``where``; every other assignment through index arrays is a scatter kernel
(``_scatter``).
"""
from __future__ import annotations

import math
import operator

from . import _dtypes as dt
from ._array import Array
from ._elementwise import const_node
from ._gather import gather_axes, index_int64
from ._graph import LazyNode
from ._shapes import broadcast_shapes, value_shape_for

__all__ = ["is_advanced", "advanced_getitem", "advanced_setitem", "masked_setitem", "reshape_node"]


def is_advanced(key) -> bool:
    """Whether ``key`` holds an index array of at least one dimension."""
    keys = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, Array) and k.ndim > 0 for k in keys)


def _expand(x: Array, key, func: str) -> tuple:
    """``(keys, split)``: the key with masks replaced by their nonzero() index arrays and the
    ellipsis expanded; ``split``: an ellipsis stood between two advanced indices (integers and
    index arrays), which then go to the front of the result as NumPy does, even where the
    ellipsis stands for no axis (``x[0:1, i, ..., 0]`` of a 3-D ``x`` has the shape
    ``(len(i), 1)``)."""
    from ._searching import nonzero
    keys = list(key) if isinstance(key, tuple) else [key]
    width = [k.ndim if (isinstance(k, Array) and k.dtype is dt.bool) else
             (0 if k is None or k is Ellipsis else 1) for k in keys]
    ell = keys.index(Ellipsis) if any(k is Ellipsis for k in keys) else None
    out = []
    for pos, k in enumerate(keys):
        if isinstance(k, Array) and k.ndim > 0:
            if k.device != x.device:
                raise ValueError(f"{func}: index array on {k.device}, the array on {x.device}")
            if k.dtype is dt.bool:
                # the axes the mask covers: counted from the front, or from the back after an ellipsis
                start = sum(width[:pos]) if ell is None or pos < ell else x.ndim - sum(width[pos:])
                covered = x.shape[start:start + k.ndim]
                if start < 0 or len(covered) != k.ndim or any(m not in (n, 0) for m, n in zip(k.shape, covered)):
                    raise IndexError(f"{func}: a boolean index of shape {k.shape} does not match the "
                                     f"indexed axes {covered} of an array of shape {x.shape}")
                out.extend(nonzero(k))
                continue
            if k.dtype.kind not in "iu":
                raise IndexError(f"{func}: index arrays must be integer or boolean, got {k.dtype}")
        elif isinstance(k, Array):  # 0-d integer array: an int
            k = int(k)
        elif isinstance(k, bool):
            raise IndexError(f"{func}: a boolean scalar cannot be combined with index arrays")
        elif not (k is None or k is Ellipsis or isinstance(k, slice)):
            try:  # (as basic indexing checks its integers)
                k = operator.index(k)
            except TypeError:
                raise IndexError(f"{func}: only integers, slices, ellipsis, None and integer or boolean "
                                 f"arrays are valid indices, got {type(k).__name__}") from None
        out.append(k)
    advanced = [p for p, k in enumerate(keys) if not (k is None or k is Ellipsis or isinstance(k, slice))]
    split = ell is not None and bool(advanced) and advanced[0] < ell < advanced[-1]
    n_real = sum(1 for k in out if k is not None and k is not Ellipsis)
    if n_real > x.ndim:
        raise IndexError(f"{func}: too many indices: {n_real} for an array of {x.ndim} dimensions")
    if Ellipsis in out:
        i = out.index(Ellipsis)
        out[i:i + 1] = [slice(None)] * (x.ndim - n_real)
    else:
        out.extend([slice(None)] * (x.ndim - n_real))
    return out, split


def advanced_getitem(x: Array, key, func: str = "__getitem__") -> Array:
    """``x[key]`` where key holds integer arrays and/or boolean masks."""
    from ._indexing import basic_view
    keys = key if isinstance(key, tuple) else (key,)
    mask = keys[0]
    if (len(keys) == 1 and mask.dtype is dt.bool and mask.shape == x.shape[:mask.ndim]
            and mask.device == x.device and x.size):
        return mask_select(x, mask, func)
    from ._manipulation import permute_dims
    keys, split = _expand(x, key, func)
    basic, adv_axes, nodes = [], [], []
    axis = 0
    for k in keys:
        if k is None:
            basic.append(None)
            axis += 1
        elif isinstance(k, slice):
            basic.append(k)
            axis += 1
        else:  # an integer array or (next to arrays) a Python int
            basic.append(slice(None))
            adv_axes.append(axis)
            if isinstance(k, Array):
                nodes.append(index_int64(k._node))
            else:  # checked here, as a basic integer index is (even where the result is empty)
                n = x.shape[sum(1 for b in basic[:-1] if b is not None)]
                if not -n <= k < n:
                    raise IndexError(f"{func}: index {k} is out of bounds for an axis of size {n}")
                nodes.append(const_node(k, dt.int64, x.device))
            axis += 1
    view = basic_view(x, tuple(basic), func)
    if split or adv_axes != list(range(adv_axes[0], adv_axes[0] + len(adv_axes))):
        rest = [a for a in range(view.ndim) if a not in adv_axes]
        view = permute_dims(view, tuple(adv_axes + rest))
        adv_axes = list(range(len(adv_axes)))
    out = gather_axes(view, adv_axes, nodes, func)
    out._realize()  # computed now, so an out-of-range index raises IndexError at the indexing
    return out


def mask_select(x: Array, mask: Array, func: str = "__getitem__") -> Array:
    """``x[mask]`` for a mask over the leading axes of ``x``: the compress kernel (kernels/
    compress.py) counts the True elements per chunk, those counts are read (the result's size
    depends on them: an internal transfer of 8 bytes per chunk, noted by the profiler), then one
    parallel launch copies the selected rows."""
    import numpy as np
    from . import profiler
    from ._graph import View, buffer_node, contiguous_strides
    from ._sorting import contiguous_buffer, launch
    from ._transfer import internal
    from .kernels.cache import get_program
    from .kernels.compress import CompressSpec
    device = x.device
    n = mask.size
    rest = x.shape[mask.ndim:]
    rowlen = math.prod(rest)
    mbuf, xbuf = contiguous_buffer(mask), contiguous_buffer(x)
    chunk = max(1, (1 << 16) // rowlen)
    nch = -(-n // chunk)
    counts = device.allocator.alloc(nch * 8)
    launch(device, get_program(device, CompressSpec(x.dtype.name, "count")), [n, chunk, mbuf.ptr, counts.ptr],
           nch, n, n)
    with internal(func):
        per_chunk = Array._new(buffer_node(counts, dt.int64, (nch,)))._to_numpy().astype(np.int64)
    if not device.host_memory:
        profiler.note(f"{func}: read the True counts of {nch} mask chunks to size the output")
    first = np.concatenate([[0], np.cumsum(per_chunk)[:-1]]).tolist()
    total = int(per_chunk.sum())
    out = device.allocator.alloc((total * rowlen + 1) * x.dtype.itemsize)  # + the scratch element
    if total:
        launch(device, get_program(device, CompressSpec(x.dtype.name, "write")),
               [n, chunk, rowlen, mbuf.ptr, xbuf.ptr, out.ptr, total] + first, nch,
               n + 2 * total * rowlen * x.dtype.itemsize, n * rowlen)
    shape = (total,) + rest
    return Array._new(LazyNode("buffer", (), x.dtype, shape, View(out, contiguous_strides(shape), 0), device))


def advanced_setitem(x: Array, key, value_node: LazyNode) -> None:
    """``x[key] = value`` for a key with index arrays or masks: a single boolean mask over leading
    axes is one fused ``where`` (``masked_setitem``); anything else is one scatter kernel."""
    keys = key if isinstance(key, tuple) else (key,)
    mask = keys[0] if len(keys) == 1 else None
    if (isinstance(mask, Array) and mask.dtype is dt.bool and mask.ndim <= x.ndim
            and mask.shape == x.shape[:mask.ndim]):
        return masked_setitem(x, mask, value_node)
    from ._scatter import scatter_setitem
    return scatter_setitem(x, key, value_node)


def masked_setitem(x: Array, mask: Array, value_node: LazyNode) -> None:
    """``x[mask] = value`` for a boolean mask over leading axes: one fused ``where`` (a value per
    True element is gathered through a scan)."""
    if mask.device != x.device:
        raise ValueError(f"__setitem__: mask on {mask.device}, the array on {x.device}")
    from ._indexing import basic_view
    rest = x.shape[mask.ndim:]
    vshape = value_shape_for(value_node.shape, len(rest) + 1)
    if len(vshape) > len(rest) + 1:
        raise ValueError(f"__setitem__: values of shape {vshape} have more dimensions than the "
                         f"{len(rest) + 1} of x[mask] (shape (count,) + {rest})")
    row = vshape[max(0, len(vshape) - len(rest)):]  # what each True element receives
    if broadcast_shapes(row, rest, func="__setitem__") != rest:
        raise ValueError(f"__setitem__: values of shape {vshape} do not broadcast to x[mask]'s "
                         f"shape (count,) + {rest}")
    if len(vshape) <= len(rest) or vshape[0] == 1:  # the same value (row) for every True element
        value_node = reshape_node(value_node, row)
    else:  # one value (row) per True element
        value_node = _packed_values(x, mask, reshape_node(value_node, (vshape[0],) + (1,) * (
            len(rest) + 1 - len(vshape)) + vshape[1:]))
    m = basic_view(mask, (Ellipsis,) + (None,) * (x.ndim - mask.ndim)) if x.ndim > mask.ndim else mask
    x._realize()
    node = LazyNode("where", (m._node, value_node, x._node), x.dtype, x.shape, None, x.device)
    x._write(node)


def reshape_node(node: LazyNode, shape: tuple) -> LazyNode:
    """``node`` with the same elements in ``shape`` (unit axes added or dropped)."""
    from ._manipulation import reshape
    return node if node.shape == shape else reshape(Array._new(node), shape)._node


def _packed_values(x: Array, mask: Array, value_node: LazyNode) -> LazyNode:
    """For ``x[mask] = values`` with one value (a row, for a mask over leading axes) per True
    element: a gather of ``values`` at position ``cumulative_sum(mask) - 1``, shaped like x, so
    the assignment stays one fused ``where`` (plus the scan). The count of True elements is read to
    check the values' length (a data-dependent shape, noted in the profiler)."""
    from . import profiler
    from ._data_type import astype
    from ._elementwise import maximum
    from ._manipulation import reshape
    from ._statistical import cumulative_sum
    rest = x.shape[mask.ndim:]
    pos = cumulative_sum(reshape(astype(mask, dt.int64), (-1,)))
    from ._transfer import internal
    with internal("__setitem__"):
        count = int(pos[-1]) if pos.shape[0] else 0
    profiler.note(f"__setitem__: read the count of True mask elements ({count})")
    if value_node.shape[0] != count:
        raise ValueError(f"__setitem__: values of shape {value_node.shape} for {count} True mask "
                         f"elements of an array of shape {x.shape} (expected {count} values or "
                         f"rows, or one, broadcast to {(count,) + rest})")
    if count == 0:
        return LazyNode("const", (), x.dtype, (), 0, x.device)
    idx = reshape(maximum(pos - 1, 0), mask.shape)
    values = Array._new(value_node)
    return gather_axes(values, [0], [idx._node], "__setitem__")._node
