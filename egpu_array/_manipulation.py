"""Manipulation functions of the standard (section "Manipulation Functions").

Views never launch a kernel: ``broadcast_to``, ``broadcast_arrays``, ``expand_dims``,
``permute_dims``, ``moveaxis``, ``squeeze``, ``flip``, ``unstack`` and a ``reshape`` the strides
allow are new shape/strides/offset over the input's memory (a lazy input is realized first).
The functions that must copy (``concat``, ``stack``, ``tile``, ``repeat``, ``roll``) live in
``_copying`` and are re-exported here.
"""
from __future__ import annotations

import math
import operator

from ._array import Array
from ._graph import BROADCAST_VIEW, LazyNode, View, contiguous_strides
from ._shapes import broadcast_shapes as _broadcast_shapes
from ._views import make_view, permute_view

__all__ = ["broadcast_arrays", "broadcast_shapes", "broadcast_to", "concat", "expand_dims", "flip",
           "moveaxis", "permute_dims", "repeat", "reshape", "roll", "squeeze", "stack", "tile",
           "unstack"]


# ---- helpers ----------------------------------------------------------------------------------
def _check(func: str, x) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an egpu_array.Array, got {type(x).__name__}")
    return x


def _int(func: str, what: str, v) -> int:
    if isinstance(v, bool):
        raise TypeError(f"{func}: {what} must be an int, got bool")
    try:
        return operator.index(v)
    except TypeError:
        raise TypeError(f"{func}: {what} must be an int, got {type(v).__name__}") from None


def _axis(func: str, axis, ndim: int) -> int:
    """``axis`` in ``[0, ndim)``; IndexError (the standard's choice) when out of range."""
    axis = _int(func, "axis", axis)
    if not -ndim <= axis < ndim:
        raise IndexError(f"{func}: axis {axis} is out of bounds for an array of {ndim} dimensions")
    return axis % ndim


def _axes(func: str, axis, ndim: int) -> tuple:
    """An int or a tuple of ints as unique normalized axes; ValueError on repeats."""
    if isinstance(axis, (tuple, list)):
        out = tuple(_axis(func, a, ndim) for a in axis)
    else:
        out = (_axis(func, axis, ndim),)
    if len(set(out)) != len(out):
        raise ValueError(f"{func}: repeated axis in {axis!r}")
    return out


def _new_output(shape: tuple, dtype, device) -> Array:
    """A freshly allocated (unfilled) contiguous array."""
    from ._graph import buffer_node
    buf = device.allocator.alloc(math.prod(shape) * dtype.itemsize)
    return Array._new(buffer_node(buf, dtype, shape))


def _copy_into(node: LazyNode, shape: tuple, view: View) -> None:
    """One kernel: ``node`` (broadcast to ``shape``) computed into ``view`` (new memory, no readers)."""
    if math.prod(shape) == 0:
        return
    from ._schedule import realize_into
    realize_into(LazyNode("positive", (node,), node.dtype, tuple(shape), None, node.device), view)


def _sub_view(out: Array, key) -> tuple:
    """``(shape, View)`` of the basic index ``key`` into the realized output ``out``."""
    from ._indexing import basic_view
    v = basic_view(out, key)
    return v.shape, v._node.arg


# ---- broadcasting -----------------------------------------------------------------------------
def broadcast_shapes(*shapes) -> tuple:
    """The shape the given shapes broadcast to (``()`` for none); ValueError if incompatible."""
    norm = []
    for s in shapes:
        if not isinstance(s, (tuple, list)):
            raise TypeError(f"broadcast_shapes: shapes must be tuples of ints, got {type(s).__name__}")
        norm.append(tuple(_int("broadcast_shapes", "a dimension", n) for n in s))
    if not norm:
        return ()
    return _broadcast_shapes(*norm, func="broadcast_shapes")


def broadcast_to(x, /, shape) -> Array:
    """``x`` broadcast to ``shape`` as a view (stride 0 along broadcast dimensions)."""
    _check("broadcast_to", x)
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    shape = tuple(_int("broadcast_to", "shape", n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"broadcast_to: negative dimensions are not allowed, got {shape}")
    lead = len(shape) - x.ndim
    if lead < 0 or any(n != shape[lead + i] and n != 1 for i, n in enumerate(x.shape)):
        raise ValueError(f"broadcast_to: an array of shape {x.shape} cannot be broadcast to {shape}")
    v = x._realize()
    strides = [0] * lead + [0 if n != shape[lead + i] else s
                            for i, (n, s) in enumerate(zip(x.shape, v.strides))]
    return make_view(x, shape, tuple(strides), v.offset, readonly=BROADCAST_VIEW)  # (as in NumPy)


def broadcast_arrays(*arrays) -> tuple:
    """The arrays broadcast against each other (views)."""
    for a in arrays:
        _check("broadcast_arrays", a)
    if not arrays:
        return ()
    shape = _broadcast_shapes(*(a.shape for a in arrays), func="broadcast_arrays")
    # (an array of the broadcast shape comes back itself, writable, as in NumPy; the others are
    # read-only views)
    return tuple(a if a.shape == shape else broadcast_to(a, shape) for a in arrays)


# ---- views ------------------------------------------------------------------------------------
def expand_dims(x, /, axis=0) -> Array:
    """``x`` with singleton dimensions inserted at ``axis`` (an int or a tuple; a view)."""
    _check("expand_dims", x)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    m = x.ndim + len(axes)
    norm = []
    for a in axes:
        a = _int("expand_dims", "axis", a)
        if not -m <= a < m:
            raise IndexError(f"expand_dims: axis {a} is out of bounds for an output of {m} dimensions")
        norm.append(a % m)
    if len(set(norm)) != len(norm):
        raise ValueError(f"expand_dims: repeated axis in {axis!r}")
    v = x._realize()
    shape, strides = list(x.shape), list(v.strides)
    for a in sorted(norm):
        shape.insert(a, 1)
        strides.insert(a, 0)
    return make_view(x, tuple(shape), tuple(strides), v.offset)


def squeeze(x, /, axis) -> Array:
    """``x`` without the singleton dimensions ``axis`` (an int or a tuple; a view)."""
    _check("squeeze", x)
    axes = _axes("squeeze", axis, x.ndim)
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: cannot squeeze axis {a} of size {x.shape[a]} (shape {x.shape})")
    v = x._realize()
    keep = [d for d in range(x.ndim) if d not in axes]
    return make_view(x, tuple(x.shape[d] for d in keep), tuple(v.strides[d] for d in keep), v.offset)


def permute_dims(x, /, axes) -> Array:
    """``x`` with its axes permuted (negative axes allowed; a view)."""
    _check("permute_dims", x)
    if not isinstance(axes, (tuple, list)):
        raise TypeError(f"permute_dims: axes must be a tuple of ints, got {type(axes).__name__}")
    if len(axes) != x.ndim:
        raise ValueError(f"permute_dims: axes {tuple(axes)} do not match an array of {x.ndim} dimensions")
    norm = _axes("permute_dims", tuple(axes), x.ndim)
    return permute_view(x, norm)


def moveaxis(x, source, destination, /) -> Array:
    """``x`` with axes ``source`` moved to positions ``destination`` (a view)."""
    _check("moveaxis", x)
    src = _axes("moveaxis", source, x.ndim)
    dst = _axes("moveaxis", destination, x.ndim)
    if len(src) != len(dst):
        raise ValueError(f"moveaxis: source {source!r} and destination {destination!r} must have the "
                         "same number of elements")
    order = [d for d in range(x.ndim) if d not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return permute_view(x, tuple(order))


def flip(x, /, *, axis=None) -> Array:
    """``x`` reversed along ``axis`` (None: all axes; a view with negative strides)."""
    _check("flip", x)
    axes = tuple(range(x.ndim)) if axis is None else _axes("flip", axis, x.ndim)
    v = x._realize()
    strides, offset = list(v.strides), v.offset
    for a in axes:
        n = x.shape[a]
        if n > 1:
            offset += (n - 1) * strides[a]
            strides[a] = -strides[a]
    return make_view(x, x.shape, tuple(strides), offset)


def unstack(x, /, *, axis=0) -> tuple:
    """The slices of ``x`` along ``axis`` (views)."""
    _check("unstack", x)
    if x.ndim == 0:
        raise ValueError("unstack: the input must have at least one dimension")
    a = _axis("unstack", axis, x.ndim)
    v = x._realize()
    shape = x.shape[:a] + x.shape[a + 1:]
    strides = v.strides[:a] + v.strides[a + 1:]
    return tuple(make_view(x, shape, strides, v.offset + i * v.strides[a]) for i in range(x.shape[a]))


# ---- reshape ----------------------------------------------------------------------------------
def _nocopy_strides(shape: tuple, strides: tuple, newshape: tuple):
    """Strides giving ``newshape`` over the same memory (C order), or None (NumPy's algorithm)."""
    if math.prod(shape) == 0 or math.prod(shape) == 1:
        return contiguous_strides(newshape)
    old = [(n, s) for n, s in zip(shape, strides) if n != 1]
    on, os_ = [n for n, _ in old], [s for _, s in old]
    new = list(newshape)
    out = [0] * len(new)
    oi, oj, ni, nj = 0, 1, 0, 1
    while ni < len(new) and oi < len(on):
        np_, op = new[ni], on[oi]
        while np_ != op:
            if np_ < op:
                np_ *= new[nj]
                nj += 1
            else:
                op *= on[oj]
                oj += 1
        for ok in range(oi, oj - 1):
            if os_[ok] != on[ok + 1] * os_[ok + 1]:
                return None
        out[nj - 1] = os_[oj - 1]
        for nk in range(nj - 1, ni, -1):
            out[nk - 1] = out[nk] * new[nk]
        ni, nj, oi, oj = nj, nj + 1, oj, oj + 1
    last = out[ni - 1] if ni >= 1 else 1
    for nk in range(ni, len(new)):
        out[nk] = last
    return tuple(out)


def reshape(x, /, shape, *, copy=None) -> Array:
    """``x`` with a new ``shape`` (one entry may be -1): a view when the strides allow it (and
    ``copy`` is not True), else one copy kernel; ``copy=False`` raises ValueError when a copy is
    needed."""
    _check("reshape", x)
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"reshape: shape must be a tuple of ints, got {type(shape).__name__}")
    shape = [_int("reshape", "shape", n) for n in shape]
    if copy is not None and not isinstance(copy, bool):
        raise TypeError(f"reshape: copy must be True, False or None, got {copy!r}")
    unknown = [i for i, n in enumerate(shape) if n == -1]
    if len(unknown) > 1 or any(n < -1 for n in shape):
        raise ValueError(f"reshape: invalid shape {tuple(shape)} (only one -1, no other negative sizes)")
    size = x.size
    if unknown:
        rest = math.prod(n for n in shape if n != -1)
        if rest == 0 or size % rest:
            raise ValueError(f"reshape: cannot reshape an array of size {size} into shape {tuple(shape)}")
        shape[unknown[0]] = size // rest
    shape = tuple(shape)
    if math.prod(shape) != size:
        raise ValueError(f"reshape: cannot reshape an array of size {size} into shape {shape}")
    if copy:
        out = _new_output(x.shape, x.dtype, x.device)
        _copy_into(x._node, x.shape, View(out._node.arg.buffer, contiguous_strides(x.shape), 0))
        return make_view(out, shape, contiguous_strides(shape), 0)
    v = x._realize()
    strides = _nocopy_strides(x.shape, v.strides, shape)
    if strides is not None:
        return make_view(x, shape, strides, v.offset)
    if copy is False:
        raise ValueError(f"reshape: copy=False, but an array of shape {x.shape} and strides "
                         f"{v.strides} cannot be viewed as shape {shape} without a copy")
    out = _new_output(x.shape, x.dtype, x.device)
    _copy_into(x._node, x.shape, View(out._node.arg.buffer, contiguous_strides(x.shape), 0))
    return make_view(out, shape, contiguous_strides(shape), 0)


# ---- copies -----------------------------------------------------------------------------------


from ._copying import concat, repeat, roll, stack, tile  # noqa: E402  (re-exported)
