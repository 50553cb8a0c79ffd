"""Manipulation functions of the standard (section "Manipulation Functions").

Views never launch a kernel: ``broadcast_to``, ``broadcast_arrays``, ``expand_dims``,
``permute_dims``, ``moveaxis``, ``squeeze``, ``flip``, ``unstack`` and a ``reshape`` the strides
allow are new shape/strides/offset over the input's memory (a lazy input is realized first).
Copies allocate the output and compute pieces into views of it with the fused elementwise kernel:
``tile`` and ``repeat`` with an int are one launch; ``concat``/``stack`` launch one copy per input,
``roll`` one per rolled block (two per rolled axis), ``repeat`` with an array one per run.
"""
from __future__ import annotations

import itertools
import math
import operator

from . import _dtypes as dt
from ._array import Array
from ._graph import LazyNode, View, contiguous_strides
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


def _same_device(func: str, arrays) -> object:
    device = arrays[0].device
    for a in arrays[1:]:
        if a.device != device:
            raise ValueError(f"{func}: arrays on different devices ({device} and {a.device}); "
                             "move one with to_device first")
    return device


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
    return make_view(x, shape, tuple(strides), v.offset)


def broadcast_arrays(*arrays) -> tuple:
    """The arrays broadcast against each other (views)."""
    for a in arrays:
        _check("broadcast_arrays", a)
    if not arrays:
        return ()
    shape = _broadcast_shapes(*(a.shape for a in arrays), func="broadcast_arrays")
    return tuple(broadcast_to(a, shape) for a in arrays)


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
def _join_dtype(func: str, arrays) -> object:
    return dt.result_type_of([a.dtype for a in arrays], [], func)


def _cast(node: LazyNode, dtype) -> LazyNode:
    from ._elementwise import cast_node
    return cast_node(node, dtype)


def _array_list(func: str, arrays) -> list:
    if isinstance(arrays, Array) or not isinstance(arrays, (tuple, list)):
        raise TypeError(f"{func}: expected a tuple or list of arrays, got {type(arrays).__name__}")
    arrays = list(arrays)
    if not arrays:
        raise ValueError(f"{func}: need at least one array")
    for a in arrays:
        _check(func, a)
    _same_device(func, arrays)
    return arrays


def concat(arrays, /, *, axis=0) -> Array:
    """The arrays joined along ``axis`` (None: flattened first). One copy kernel per input."""
    arrays = _array_list("concat", arrays)
    dtype = _join_dtype("concat", arrays)
    if axis is None:
        arrays = [reshape(a, (-1,)) for a in arrays]
        axis = 0
    nd = arrays[0].ndim
    if nd == 0:
        raise ValueError("concat: zero-dimensional arrays cannot be concatenated along an axis")
    if any(a.ndim != nd for a in arrays):
        raise ValueError(f"concat: all arrays must have the same number of dimensions, got "
                         f"{[a.ndim for a in arrays]}")
    ax = _axis("concat", axis, nd)
    base = arrays[0].shape
    for a in arrays[1:]:
        if any(n != m for d, (n, m) in enumerate(zip(a.shape, base)) if d != ax):
            raise ValueError(f"concat: shapes {[a.shape for a in arrays]} differ outside axis {ax}")
    shape = base[:ax] + (sum(a.shape[ax] for a in arrays),) + base[ax + 1:]
    out = _new_output(shape, dtype, arrays[0].device)
    start = 0
    for a in arrays:
        n = a.shape[ax]
        if n:
            pshape, view = _sub_view(out, (slice(None),) * ax + (slice(start, start + n),))
            _copy_into(_cast(a._node, dtype), pshape, view)
        start += n
    return out


def stack(arrays, /, *, axis=0) -> Array:
    """The arrays joined along a new axis ``axis``. One copy kernel per input."""
    arrays = _array_list("stack", arrays)
    dtype = _join_dtype("stack", arrays)
    base = arrays[0].shape
    if any(a.shape != base for a in arrays):
        raise ValueError(f"stack: all arrays must have the same shape, got {[a.shape for a in arrays]}")
    ax = _axis("stack", axis, len(base) + 1)
    shape = base[:ax] + (len(arrays),) + base[ax:]
    out = _new_output(shape, dtype, arrays[0].device)
    for i, a in enumerate(arrays):
        pshape, view = _sub_view(out, (slice(None),) * ax + (i,))
        _copy_into(_cast(a._node, dtype), pshape, view)
    return out


def tile(x, repetitions, /) -> Array:
    """``x`` repeated ``repetitions`` times per axis. One copy kernel."""
    _check("tile", x)
    if not isinstance(repetitions, (tuple, list)):
        raise TypeError(f"tile: repetitions must be a tuple of ints, got {type(repetitions).__name__}")
    reps = [_int("tile", "repetitions", r) for r in repetitions]
    if any(r < 0 for r in reps):
        raise ValueError(f"tile: repetitions must be non-negative, got {tuple(reps)}")
    nd = max(x.ndim, len(reps))
    reps = [1] * (nd - len(reps)) + reps
    xshape = (1,) * (nd - x.ndim) + x.shape
    shape = tuple(n * r for n, r in zip(xshape, reps))
    out = _new_output(shape, x.dtype, x.device)
    if math.prod(shape) == 0:
        return out
    v = x._realize()
    xstrides = (0,) * (nd - x.ndim) + v.strides
    # the output as (r0, n0, r1, n1, ...); the input broadcast along every r axis
    ishape = tuple(itertools.chain.from_iterable(zip(reps, xshape)))
    ostrides = contiguous_strides(ishape)
    src = LazyNode("buffer", (), x.dtype, tuple(itertools.chain.from_iterable((1, n) for n in xshape)),
                   View(v.buffer, tuple(itertools.chain.from_iterable((0, s) for s in xstrides)), v.offset),
                   x.device)
    _copy_into(src, ishape, View(out._node.arg.buffer, ostrides, 0))
    return out


def repeat(x, repeats, /, *, axis=None) -> Array:
    """Each element of ``x`` repeated along ``axis`` (None: of the flattened array).

    An int ``repeats`` is one copy kernel. An array ``repeats`` makes the output shape depend on its
    values: they are read to the host (a visible, synchronizing transfer on a non-cpu device), and
    each run of an input element is one copy kernel.
    """
    _check("repeat", x)
    if axis is None:
        x = reshape(x, (-1,))
        ax = 0
    else:
        if x.ndim == 0:
            raise ValueError("repeat: a 0-dimensional array has no axis; use axis=None")
        ax = _axis("repeat", axis, x.ndim)
    n = x.shape[ax]
    if isinstance(repeats, Array):
        if repeats.dtype.kind not in "iu":
            raise TypeError(f"repeat: repeats must have an integer dtype, got {repeats.dtype}")
        if repeats.ndim != 1 or repeats.shape[0] not in (1, n):
            raise ValueError(f"repeat: repeats of shape {repeats.shape} must have shape (1,) or ({n},)")
        if repeats.device != x.device:
            raise ValueError(f"repeat: repeats is on {repeats.device}, x on {x.device}")
        counts = [int(c) for c in repeats._to_numpy().tolist()]
        if any(c < 0 for c in counts):
            raise ValueError("repeat: repeats must be non-negative")
        if len(counts) == 1 or len(set(counts)) == 1:
            repeats = counts[0] if counts else 0
        else:
            return _repeat_runs(x, counts, ax)
    r = _int("repeat", "repeats", repeats)
    if r < 0:
        raise ValueError(f"repeat: repeats must be non-negative, got {r}")
    shape = x.shape[:ax] + (n * r,) + x.shape[ax + 1:]
    out = _new_output(shape, x.dtype, x.device)
    if math.prod(shape) == 0:
        return out
    v = x._realize()
    # the output as (..., n, r, ...); the input broadcast along r
    ishape = x.shape[:ax + 1] + (r,) + x.shape[ax + 1:]
    src = LazyNode("buffer", (), x.dtype, x.shape[:ax + 1] + (1,) + x.shape[ax + 1:],
                   View(v.buffer, v.strides[:ax + 1] + (0,) + v.strides[ax + 1:], v.offset), x.device)
    _copy_into(src, ishape, View(out._node.arg.buffer, contiguous_strides(ishape), 0))
    return out


def _repeat_runs(x: Array, counts: list, ax: int) -> Array:
    from ._indexing import basic_view
    shape = x.shape[:ax] + (sum(counts),) + x.shape[ax + 1:]
    out = _new_output(shape, x.dtype, x.device)
    if math.prod(shape) == 0:
        return out
    lead = (slice(None),) * ax
    start = 0
    for i, c in enumerate(counts):
        if c:
            piece = basic_view(x, lead + (slice(i, i + 1),))
            pshape, view = _sub_view(out, lead + (slice(start, start + c),))
            _copy_into(piece._node, pshape, view)
            start += c
    return out


def roll(x, /, shift, *, axis=None) -> Array:
    """``x`` shifted cyclically along ``axis`` (None: the flattened array, shape restored).

    One copy kernel per rolled block: two per axis with a non-zero shift (their product for
    several axes).
    """
    _check("roll", x)
    if axis is None:
        if isinstance(shift, (tuple, list)):
            if len(shift) != 1:
                raise ValueError("roll: with axis=None, shift must be an int")
            shift = shift[0]
        flat = reshape(x, (-1,))
        return reshape(roll(flat, shift, axis=0), x.shape)
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    if isinstance(shift, (tuple, list)):
        if len(shift) != len(axes):
            raise ValueError(f"roll: shift {tuple(shift)} and axis {tuple(axes)} must have the same length")
        shifts = [_int("roll", "shift", s) for s in shift]
    else:
        shifts = [_int("roll", "shift", shift)] * len(axes)
    total = [0] * x.ndim
    for a, s in zip(axes, shifts):
        total[_axis("roll", a, x.ndim)] += s
    out = _new_output(x.shape, x.dtype, x.device)
    if x.size == 0:
        return out
    from ._indexing import basic_view
    per_axis = []
    for d, n in enumerate(x.shape):
        s = total[d] % n
        if s == 0:
            per_axis.append([(slice(None), slice(None))])
        else:  # (source slice, destination slice)
            per_axis.append([(slice(0, n - s), slice(s, n)), (slice(n - s, n), slice(0, s))])
    for combo in itertools.product(*per_axis):
        src = basic_view(x, tuple(c[0] for c in combo))
        pshape, view = _sub_view(out, tuple(c[1] for c in combo))
        _copy_into(src._node, pshape, view)
    return out
