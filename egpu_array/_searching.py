"""Searching functions of the standard: argmax, argmin, count_nonzero, nonzero, searchsorted,
where, isin.

argmax/argmin/count_nonzero are lazy reductions (one fused kernel with their producers).
``nonzero`` has a data-dependent shape: one kernel counts the nonzero elements of each chunk of
the input, those few integers are read back (noted in the profiler), then a compaction kernel
writes each chunk's indices in parallel.
searchsorted and isin are binary-search kernels (kernels/search.py); isin sorts ``x2`` first.
"""
from __future__ import annotations

import math

from . import _dtypes as dt
from . import profiler
from ._array import Array, same_device
from ._elementwise import cast_node, const_node, operands
from ._graph import LazyNode, View, contiguous_strides
from ._shapes import broadcast_shapes
from ._statistical import normalize_axes, reduce_node
from .kernels.cache import get_program
from .kernels.compact_chunks import SPARE_STRIDE
from .kernels.spec import CompactSpec, SearchSpec

__all__ = ["where", "argmax", "argmin", "count_nonzero", "nonzero", "searchsorted", "isin"]

_builtin_any = any


def where(condition, x1=None, x2=None, /):
    """Elements of ``x1`` where ``condition`` is True, else of ``x2`` (Python scalars allowed).

    ``where(condition)`` alone is ``nonzero(condition)``, as in NumPy (scikit-learn's roc_curve
    calls it so; the standard has only the three-argument form)."""
    if not isinstance(condition, Array):
        raise TypeError(f"where: condition must be an Array, got {type(condition).__name__}")
    if x1 is None and x2 is None:
        return nonzero(condition)
    if x1 is None or x2 is None:
        raise TypeError("where: expected both x1 and x2, or neither (the indices of the True elements)")
    if condition.dtype is not dt.bool:
        raise TypeError(f"where: condition must have dtype bool, got {condition.dtype}")
    nodes, dtype, shape, device = operands("where", x1, x2)
    same_device("where", [condition] + [v for v in (x1, x2) if isinstance(v, Array)])
    shape = broadcast_shapes(condition.shape, shape, func="where")
    return Array._new(LazyNode("where", (condition._node, *nodes), dtype, shape, None, device))


def _check(func: str, x) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an egpu_array.Array, got {type(x).__name__}")
    return x


def _arg_reduce(func: str, x, axis, keepdims) -> Array:
    _check(func, x)
    dt.check_category(func, "real numeric", x.dtype)
    if axis is not None and (not isinstance(axis, int) or isinstance(axis, bool)):
        raise TypeError(f"{func}: axis must be an int or None, got {type(axis).__name__}")
    axes = normalize_axes(axis, x.ndim, func)
    if _builtin_any(x.shape[a] == 0 for a in axes) or (x.ndim == 0 and x.size == 0):
        raise ValueError(f"{func}: attempt to get {func} of an empty sequence (shape {x.shape})")
    return reduce_node(func, func, x, axis, keepdims, dt.int64, acc=x.dtype)


def argmax(x, /, *, axis=None, keepdims=False) -> Array:
    """Index of the (first) maximum along ``axis`` (flat C-order index when ``axis`` is None);
    the first NaN wins."""
    return _arg_reduce("argmax", x, axis, keepdims)


def argmin(x, /, *, axis=None, keepdims=False) -> Array:
    """Index of the (first) minimum along ``axis``; the first NaN wins."""
    return _arg_reduce("argmin", x, axis, keepdims)


def count_nonzero(x, /, *, axis=None, keepdims=False) -> Array:
    """Number of nonzero elements along ``axis`` (int64; NaN counts as nonzero): a sum of the bool
    values into an int64 accumulator, which the host kernels count in blocks of 16-bit lanes
    (kernels.reduction_rows.count_block)."""
    _check("count_nonzero", x)
    src = cast_node(x._node, dt.bool)
    return reduce_node("count_nonzero", "sum", x, axis, keepdims, dt.int64, src=src, acc=dt.int64)


def _read_count(counter: Array, what: str) -> int:
    from ._transfer import internal
    with internal(what):
        n = int(counter)
    profiler.note(f"{what}: read back 1 int64 (the result size {n}) to size the output")
    return n


def _launch(device, program, slots, n_items, nbytes, work):
    from ._sorting import launch
    launch(device, program, slots, n_items, nbytes, work)


def compact_chunks(n: int, device) -> int:
    """Chunks of a parallel compaction pass over ``n`` elements (1 for small inputs)."""
    return max(1, min(4 * getattr(device, "num_threads", 1), n // (1 << 15)))


def read_chunk_counts(buf, k: int, device, what: str, purpose: str = "results per chunk"):
    """The ``k`` per-chunk result counts of a compaction (int64), read back to size the output
    (a profiled internal transfer off host-memory devices, and a profiler note: ``purpose`` says
    what they are)."""
    import numpy as np

    from ._transfer import internal
    arr = Array._new(LazyNode("buffer", (), dt.int64, (k,), View(buf, (1,), 0), device))
    with internal(what):
        counts = np.asarray(arr).copy()
    profiler.note(f"{what}: read back {k} int64 ({purpose}; {int(counts.sum())} in all) to size the output")
    return counts


def nonzero(x, /) -> tuple:
    """Indices of the nonzero elements, one int64 array per dimension (C order).

    Parallel over chunks: one kernel counts each chunk's nonzeros, the counts are read back
    (the output size), one kernel fills every chunk's coordinates from its own offset."""
    from ._sorting import contiguous_buffer
    _check("nonzero", x)
    if x.ndim == 0:
        raise ValueError("nonzero: 0-d arrays are not supported; use atleast_1d or x[None] first")
    device = x.device
    n = x.size
    count = 0
    if n:
        src = contiguous_buffer(x)
        nchunks = compact_chunks(n, device)
        chunk = -(-n // nchunks)
        counts = device.allocator.alloc(nchunks * 8)
        spec = CompactSpec("nonzero", x.dtype.name, x.ndim, (), "count")
        _launch(device, get_program(device, spec), [n, chunk, src.ptr, counts.ptr], nchunks,
                n * x.dtype.itemsize, n)
        count = int(read_chunk_counts(counts, nchunks, device, "nonzero").sum())
    # + each chunk's spare slot, a cache line apart (kernels.compact_chunks)
    out = device.allocator.alloc((x.ndim * count + (nchunks * SPARE_STRIDE if count else 1)) * 8)
    if count:
        spec = CompactSpec("nonzero", x.dtype.name, x.ndim, (), "fill")
        _launch(device, get_program(device, spec), [n, count, src.ptr, out.ptr, chunk, counts.ptr]
                + list(x.shape), nchunks, n * x.dtype.itemsize + x.ndim * count * 8, n)
    return tuple(Array._new(LazyNode("buffer", (), dt.int64, (count,), View(out, (1,), d * count), device))
                 for d in range(x.ndim))


def _search_operand(func: str, v, dtype, device) -> Array:
    from ._creation import asarray
    if isinstance(v, Array):
        if v.device != device:
            raise ValueError(f"{func}: arrays on different devices ({device} and {v.device}); "
                             "move one with to_device first")
        return v
    if isinstance(v, (bool, int, float, complex)):
        return Array._new(const_node(v, dtype, device))
    return asarray(v, device=device)


def searchsorted(x1, x2, /, *, side="left", sorter=None) -> Array:
    """Insertion positions of ``x2``'s elements in the sorted 1-D ``x1`` (int64, shape of x2)."""
    from ._sorting import contiguous_buffer, contiguous_copy
    _check("searchsorted", x1)
    if x1.ndim != 1:
        raise ValueError(f"searchsorted: x1 must be 1-D, got {x1.ndim}-D")
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    dt.check_category("searchsorted", "real numeric", x1.dtype)
    device = x1.device
    x2 = _search_operand("searchsorted", x2, x1.dtype, device)
    dtype = dt.result_type_of([x1.dtype, x2.dtype], (), "searchsorted")
    dt.check_category("searchsorted", "real numeric", dtype)
    if sorter is not None:
        _check("searchsorted", sorter)
        if sorter.dtype.kind not in "iu" or sorter.shape != x1.shape:
            raise ValueError("searchsorted: sorter must be an integer array of x1's shape")
        if sorter.device != device:
            raise ValueError("searchsorted: sorter must be on x1's device")
    shape = x2.shape
    m = math.prod(shape)
    out = device.allocator.alloc(max(m, 1) * 8)
    n1 = x1.shape[0]
    if m:
        if n1 == 0:
            from ._manipulation import _copy_into
            _copy_into(const_node(0, dt.int64, device), shape, View(out, contiguous_strides(shape), 0))
        else:
            a = contiguous_copy(x1._node, dtype) if dtype is not x1.dtype else contiguous_buffer(x1)
            v = contiguous_copy(x2._node, dtype) if (dtype is not x2.dtype or x2._node.op != "buffer") \
                else contiguous_buffer(x2)
            s = 0
            if sorter is not None:
                sb = contiguous_copy(sorter._node, dt.int64) if sorter.dtype is not dt.int64 \
                    else contiguous_buffer(sorter)
                s = sb.ptr
            prog = get_program(device, SearchSpec(dtype.name, side, sorter is not None))
            _launch(device, prog, [n1, a.ptr, s, v.ptr, out.ptr], m, m * (8 + dtype.itemsize),
                    m * max(1, n1.bit_length()))
    return Array._new(LazyNode("buffer", (), dt.int64, shape, View(out, contiguous_strides(shape), 0), device))


#: isin looks integers up in a byte table when the set spans at most this many values (the table
#: stays in a core's L2) ...
TABLE_MAX = 1 << 20
#: ... and there are at least this many values to look up (fewer: the min and max read back and
#: the table would cost more than the search)
TABLE_MIN_N = 1 << 12


def _isin_table(keys, dtype, n2: int, m: int, device):
    """``(lo, nrange)`` of the set ``keys`` when isin uses a table (see :func:`isin`), else None."""
    from ._set import value_range
    if device.kind == "cuda" or dtype.kind not in "iub" or m < TABLE_MIN_N:
        return None
    lo, hi = value_range("isin", keys, dtype, n2, device, "a table or a search")
    return (lo, hi - lo + 1) if hi - lo < TABLE_MAX else None


def _isin_by_table(device, dtype, keys, n2: int, v, m: int, out, invert: bool, lo: int, nrange: int) -> None:
    """isin of the ``m`` values ``v`` in the ``n2`` set elements ``keys`` (within ``[lo, lo + nrange)``)
    into ``out``: a zeroed byte table, each set element marked, each value looked up."""
    from ._manipulation import _copy_into
    from ._set import int64_bits
    table = device.allocator.alloc(nrange)
    _copy_into(const_node(False, dt.bool, device), (nrange,), View(table, (1,), 0))
    slots = [nrange, table.ptr, int64_bits(lo)]
    _launch(device, get_program(device, SearchSpec(dtype.name, "mark", False)), slots + [keys.ptr, 0], n2,
            n2 * dtype.itemsize, n2)
    _launch(device, get_program(device, SearchSpec(dtype.name, "notin_table" if invert else "in_table", False)),
            slots + [v.ptr, out.ptr], m, m * (1 + dtype.itemsize), m)


def isin(x1, x2, /, *, invert=False) -> Array:
    """Whether each element of ``x1`` equals some element of ``x2`` (NaN is never found).

    ``x2`` is flattened and sorted (one sort kernel), then each element of ``x1`` is found by
    binary search: O((n + m) log m). Integers (and bools) on devices other than cuda, when ``x1``
    has TABLE_MIN_N elements or more and ``x2`` spans at most TABLE_MAX values (its min and max
    read back), are looked up in a byte table of that range instead: O(n + m + range)."""
    from ._sorting import contiguous_buffer, contiguous_copy, sort_rows
    arrays = [a for a in (x1, x2) if isinstance(a, Array)]
    if not arrays:
        raise TypeError("isin: x1 or x2 must be an egpu_array.Array")
    device = same_device("isin", arrays)
    scalars = [v for v in (x1, x2) if not isinstance(v, Array)]
    dtype = dt.result_type_of([a.dtype for a in arrays], scalars, "isin")
    x1 = _search_operand("isin", x1, dtype, device)
    x2 = _search_operand("isin", x2, dtype, device)
    shape = x1.shape
    m, n2 = x1.size, x2.size
    out = device.allocator.alloc(max(m, 1))
    strides = contiguous_strides(shape)
    if m:
        if n2 == 0:
            from ._manipulation import _copy_into
            _copy_into(const_node(bool(invert), dt.bool, device), shape, View(out, strides, 0))
        else:
            keys = contiguous_copy(x2._node, dtype)
            v = contiguous_copy(x1._node, dtype) if dtype is not x1.dtype else contiguous_buffer(x1)
            table = _isin_table(keys, dtype, n2, m, device)
            if table is not None:
                _isin_by_table(device, dtype, keys, n2, v, m, out, invert, *table)
            else:
                keys, _ = sort_rows(keys, None, dtype, 1, n2, device, False, False)
                prog = get_program(device, SearchSpec(dtype.name, "notin" if invert else "in", False))
                _launch(device, prog, [n2, keys.ptr, 0, v.ptr, out.ptr], m, m * (1 + dtype.itemsize),
                        m * max(1, n2.bit_length()))
    return Array._new(LazyNode("buffer", (), dt.bool, shape, View(out, strides, 0), device))
