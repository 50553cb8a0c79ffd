"""Manipulation functions that must copy: ``concat``, ``stack``, ``tile``, ``repeat``, ``roll``.

Each allocates its output and fills it with one kernel: ``tile`` and ``repeat`` with an int (or
equal counts) are one fused elementwise launch; ``repeat`` with unequal counts is a gather;
``concat``, ``stack`` and ``roll`` are one multi-copy launch (kernels/copies.py: every piece's pointers, shape and strides are run-time
arguments, and a piece of another dtype is cast in the kernel).

Lazy inputs of ``concat``/``stack``: a pending expression is computed straight into its slot of
the output (its own fused kernel, no temporary), the realized inputs all share the one copy
kernel. So joining ten realized arrays is one launch; each pending expression adds its own.
"""
from __future__ import annotations

import itertools
import math

from . import _dtypes as dt
from ._array import Array, same_device
from ._graph import LazyNode, View, check_valid, contiguous_strides
from ._manipulation import _axis, _check, _copy_into, _int, _new_output, _sub_view, reshape
from ._schedule import _collapse, _leaf_strides, pack_args
from .kernels.cache import get_program
from .kernels.copies import CopiesSpec, record_size, tile_of, tiled_walk

#: elements per work item of the multi-copy kernel (big pieces are split across threads)
CHUNK = 1 << 15
#: super-block side (in blocks, see kernels.copies.tile_of) of a transposing copy
GROUP = 32

__all__ = ["concat", "stack", "tile", "repeat", "roll"]


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
    same_device(func, arrays)
    return arrays


def copy_pieces(pieces: list, out_dtype, device, layouts: list | None = None) -> None:
    """One multi-copy kernel: each ``(source leaf, shape, destination View)`` of ``pieces`` (a
    buffer leaf broadcastable to ``shape``, any dtype) copied and cast into the destination.
    ``layouts``: the pieces' :func:`_layout` when the caller has them (pieces of size 0 excluded)."""
    for src, _, _ in pieces:
        check_valid(src)
    if layouts is None:
        pieces = [p for p in pieces if math.prod(p[1])]
        if not pieces:
            return
        layouts = [_layout(shape, _leaf_strides(src, shape), list(dst.strides)) for src, shape, dst in pieces]
    nd = max(len(c) for c, _, _, _ in layouts)
    src_dtypes = tuple(sorted({src.dtype.name for src, _, _ in pieces}))
    items, records = [], []
    for k, ((src, _, dst), (cshape, src_st, dst_st, tiled)) in enumerate(zip(pieces, layouts)):
        pad = nd - len(cshape)
        sv = src.arg
        src_at = sv.buffer.ptr + sv.offset * src.dtype.itemsize
        dst_at = dst.buffer.ptr + dst.offset * out_dtype.itemsize
        if tiled and src_st[-2] == -1:  # walk that dimension backwards: the source's stride is +1
            src_at -= (cshape[-2] - 1) * src.dtype.itemsize
            dst_at += (cshape[-2] - 1) * dst_st[-2] * out_dtype.itemsize
            src_st = list(src_st[:-2]) + [1, src_st[-1]]
            dst_st = list(dst_st[:-2]) + [-dst_st[-2], dst_st[-1]]
        if tiled:  # work items count blocks (kernels.copies.tiled_walk: grouped or streamed)
            triple = device.target.triple if device.host_memory else ""
            tiled, n, step = tiled_walk(cshape, out_dtype.itemsize, dst_at, dst_st, GROUP, CHUNK, triple)
        else:
            n, step = math.prod(cshape), CHUNK
        items += [v for lo in range(0, n, step) for v in (k, lo, min(lo + step, n))]
        records += [src_dtypes.index(src.dtype.name), int(tiled), src_at, dst_at]
        records += [1] * pad + list(cshape) + [0] * pad + list(src_st) + [0] * pad + list(dst_st)
    program = get_program(device, CopiesSpec(out_dtype=out_dtype.name, src_dtypes=src_dtypes, ndim=nd))
    assert len(records) == len(pieces) * record_size(nd)
    slots = [1 + len(items)] + items + records
    total = sum(math.prod(shape) for _, shape, _ in pieces)
    nbytes = total * out_dtype.itemsize + sum(math.prod(sh) * s.dtype.itemsize for s, sh, _ in pieces)
    device.launch(program, pack_args(slots), len(items) // 3, nbytes, work=total)


def transposing_copy(root: LazyNode, out: View) -> bool:
    """Compute the plain copy ``root`` (``positive`` of a buffer leaf) into ``out`` with the tiled
    multi-copy kernel when it transposes (the source's unit stride is not along the
    destination's); False (nothing done) otherwise. Called by ``_schedule.realize_into``."""
    src = root.srcs[0]
    if math.prod(root.shape) < 4 * tile_of(root.dtype.itemsize) ** 2 or src.dtype is not root.dtype:
        return False
    layout = _layout(root.shape, _leaf_strides(src, root.shape), list(out.strides))
    if not layout[3]:
        return False
    copy_pieces([(src, root.shape, out)], root.dtype, root.device, [layout])
    return True


def _layout(shape, src_st, dst_st) -> tuple:
    """A piece's collapsed extents, source and destination strides, and whether to copy it in
    tiles: when the destination is contiguous along the last dimension and the source along
    another one (a transposing copy), that dimension is moved next to last (the order of the
    dimensions of a copy is free) and the piece is walked in blocks."""
    cshape, (src_st, dst_st) = _collapse(list(shape), [src_st, dst_st])
    unit = [d for d in range(len(cshape) - 1) if abs(src_st[d]) == 1]
    tiled = len(cshape) >= 2 and dst_st[-1] == 1 and abs(src_st[-1]) != 1 and bool(unit)
    if tiled and unit[-1] != len(cshape) - 2:
        order = [d for d in range(len(cshape) - 1) if d != unit[-1]] + [unit[-1], len(cshape) - 1]
        cshape, src_st, dst_st = ([v[d] for d in order] for v in (cshape, src_st, dst_st))
    return cshape, src_st, dst_st, tiled


def _join(out: Array, arrays: list, keys: list) -> None:
    """Each array into ``out[key]``: pending expressions computed in place, the rest in one copy."""
    pieces = []
    for a, key in zip(arrays, keys):
        pshape, view = _sub_view(out, key)
        if a._node.op == "buffer":
            pieces.append((a._node, pshape, view))
        else:
            _copy_into(_cast(a._node, out.dtype), pshape, view)
    copy_pieces(pieces, out.dtype, out.device)


def concat(arrays, /, *, axis=0) -> Array:
    """The arrays joined along ``axis`` (None: flattened first). One copy kernel (see the module
    docstring for pending inputs)."""
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
    keys, start = [], 0
    for a in arrays:
        n = a.shape[ax]
        keys.append((slice(None),) * ax + (slice(start, start + n),))
        start += n
    _join(out, arrays, keys)
    return out


def stack(arrays, /, *, axis=0) -> Array:
    """The arrays joined along a new axis ``axis``. One copy kernel (see the module docstring)."""
    arrays = _array_list("stack", arrays)
    dtype = _join_dtype("stack", arrays)
    base = arrays[0].shape
    if any(a.shape != base for a in arrays):
        raise ValueError(f"stack: all arrays must have the same shape, got {[a.shape for a in arrays]}")
    ax = _axis("stack", axis, len(base) + 1)
    shape = base[:ax] + (len(arrays),) + base[ax:]
    out = _new_output(shape, dtype, arrays[0].device)
    _join(out, arrays, [(slice(None),) * ax + (i,) for i in range(len(arrays))])
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
    values: its min and max are read back (equal: one copy kernel as for an int), and for unequal
    counts their sum; the output is a gather of ``x`` at the positions found by searching the
    running sums of the counts (computed on the device: the counts never cross the link).
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
        if repeats.shape[0] == 0:
            return _new_output(x.shape, x.dtype, x.device)  # (n = 0: nothing to repeat)
        from ._statistical import max as max_, min as min_
        lo, hi = _read_ints("repeat", [min_(repeats), max_(repeats)], "the min and max repeat counts")
        if lo < 0:
            raise ValueError("repeat: repeats must be non-negative")
        if lo != hi:
            return _repeat_runs(x, repeats, ax)
        repeats = lo
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


def _read_ints(func: str, values: list, what: str) -> list:
    """The 0-d integer arrays ``values`` read back as Python ints (one transfer, noted in the
    profiler as reading ``what``)."""
    from . import profiler
    from ._transfer import internal
    with internal(func):
        got = [int(v) for v in stack(values)._to_numpy().tolist()]
    profiler.note(f"{func}: read back {what} ({', '.join(map(str, got))}) to size the output")
    return got


def _repeat_runs(x: Array, counts: Array, ax: int) -> Array:
    """``x`` with element ``i`` along ``ax`` repeated ``counts[i]`` times: a gather of the
    element whose run holds each output position. Where the counts lie in host memory NumPy lays
    the positions out (``repeat(arange(n), counts)``); elsewhere they are found on the device by
    searching the counts' running sums, so the counts never cross the link."""
    import numpy as np

    from ._creation import arange, asarray
    from ._gather import take
    from ._searching import searchsorted
    from ._statistical import cumulative_sum
    if x.device.host_memory:
        n = counts.shape[0]
        which = asarray(np.repeat(np.arange(n, dtype=np.int64), counts._to_numpy().astype(np.int64)),
                        device=x.device)
    else:
        ends = cumulative_sum(counts, dtype=dt.int64)
        (total,) = _read_ints("repeat", [ends[-1]], "the total of the repeat counts")
        which = searchsorted(ends, arange(total, dtype=dt.int64, device=x.device), side="right")
    return take(x, which, axis=ax)


def roll(x, /, shift, *, axis=None) -> Array:
    """``x`` shifted cyclically along ``axis`` (None: the flattened array, shape restored).

    One multi-copy kernel over the rolled blocks (two per axis with a non-zero shift, their
    product for several axes).
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
    pieces = []
    for combo in itertools.product(*per_axis):
        src = basic_view(x, tuple(c[0] for c in combo))
        pshape, view = _sub_view(out, tuple(c[1] for c in combo))
        pieces.append((src._node, pshape, view))
    copy_pieces(pieces, x.dtype, x.device)
    return out
