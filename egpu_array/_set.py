"""Set functions of the standard: unique_all, unique_counts, unique_inverse, unique_values.

``x`` is flattened (C order) and sorted with the merge-sort kernels (with the original positions
when indices or the inverse are wanted, the stable sort makes the first one the first occurrence).
A kernel counts the run starts of each chunk of the sorted values (position 0 and every value
unequal to the one before it, so each NaN is distinct, and ``-0.0 == 0.0``); those few integers are
read back (noted in the profiler) to size the outputs; a fill kernel writes, chunks in parallel,
the values, first indices, run starts and the inverse map; the counts are differences of the run
starts (kernels/compact_chunks.py).
"""
from __future__ import annotations

from collections import namedtuple

from . import _dtypes as dt
from ._array import Array
from ._graph import LazyNode, View, contiguous_strides
from .kernels.cache import get_program
from .kernels.spec import CompactSpec

__all__ = ["unique_all", "unique_counts", "unique_inverse", "unique_values",
           "UniqueAllResult", "UniqueCountsResult", "UniqueInverseResult"]

UniqueAllResult = namedtuple("UniqueAllResult", ["values", "indices", "inverse_indices", "counts"])
UniqueCountsResult = namedtuple("UniqueCountsResult", ["values", "counts"])
UniqueInverseResult = namedtuple("UniqueInverseResult", ["values", "inverse_indices"])


def _unique(func: str, x, outputs: tuple) -> dict:
    from ._searching import _launch, compact_chunks, read_chunk_counts
    from ._sorting import _is_c_contiguous, contiguous_copy, radix_applies, sort_rows
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an egpu_array.Array, got {type(x).__name__}")
    device, dtype, n = x.device, x.dtype, x.size
    with_idx = "indices" in outputs or "inverse" in outputs
    node = x._node  # a radix sort reads a contiguous input in place (no copy)
    direct = radix_applies(dtype, 1, n) and node.op == "buffer" and node.arg.offset == 0 \
        and _is_c_contiguous(node.shape, node.arg.strides)
    keys = node.arg.buffer if direct else contiguous_copy(node)
    keys, idx = sort_rows(keys, None, dtype, 1, n, device, False, with_idx, read_only=direct)
    alloc = device.allocator.alloc
    count = 0
    if n:
        nchunks = compact_chunks(n, device)
        chunk = -(-n // nchunks)
        per_chunk = alloc(nchunks * 8)
        spec = CompactSpec("unique", dtype.name, 1, (), "count")
        _launch(device, get_program(device, spec), [n, chunk, keys.ptr, per_chunk.ptr], nchunks,
                n * dtype.itemsize, n)
        count = int(read_chunk_counts(per_chunk, nchunks, device, "unique").sum())
    bufs = {"values": alloc(max(count, 1) * dtype.itemsize)}
    for name in ("indices", "counts"):
        if name in outputs:
            bufs[name] = alloc(max(count, 1) * 8)
    if "inverse" in outputs:
        bufs["inverse"] = alloc(max(n, 1) * 8)
    if n:
        if with_idx and idx is None:  # one element: nothing was sorted
            idx = alloc(8)
            _launch_zero(idx)
        starts = alloc(max(count, 1) * 8) if "counts" in outputs else None
        ptr = lambda k: bufs[k].ptr if k in bufs else 0  # noqa: E731
        want = tuple(sorted(outputs))
        _launch(device, get_program(device, CompactSpec("unique", dtype.name, 1, want, "fill")),
                [n, count, keys.ptr, idx.ptr if idx is not None else 0, ptr("values"), ptr("indices"),
                 starts.ptr if starts is not None else 0, ptr("inverse"), chunk, per_chunk.ptr],
                nchunks, n * (dtype.itemsize + 24), n)
        if starts is not None:  # occurrence counts: differences of the run starts
            _launch(device, get_program(device, CompactSpec("unique", dtype.name, 1, (), "runs")),
                    [n, count, starts.ptr, ptr("counts")], count, count * 16, count)

    def arr(name, dtype_, shape):
        return Array._new(LazyNode("buffer", (), dtype_, shape, View(bufs[name], contiguous_strides(shape), 0),
                                   device))
    res = {"values": arr("values", dtype, (count,))}
    for name in ("indices", "counts"):
        if name in outputs:
            res[name] = arr(name, dt.int64, (count,))
    if "inverse" in outputs:
        res["inverse"] = arr("inverse", dt.int64, x.shape)
    return res


def _launch_zero(buf) -> None:
    """Write int64 0 into a one-element buffer (one kernel)."""
    from ._elementwise import const_node
    from ._manipulation import _copy_into
    _copy_into(const_node(0, dt.int64, buf.device), (1,), View(buf, (1,), 0))


def unique_all(x, /) -> UniqueAllResult:
    """Distinct values, the index of each one's first occurrence, the inverse map and counts."""
    r = _unique("unique_all", x, ("values", "indices", "inverse", "counts"))
    return UniqueAllResult(r["values"], r["indices"], r["inverse"], r["counts"])


def unique_counts(x, /) -> UniqueCountsResult:
    """Distinct values and how often each occurs."""
    r = _unique("unique_counts", x, ("values", "counts"))
    return UniqueCountsResult(r["values"], r["counts"])


def unique_inverse(x, /) -> UniqueInverseResult:
    """Distinct values and, for each element of ``x``, the index of its value (shape of ``x``)."""
    r = _unique("unique_inverse", x, ("values", "inverse"))
    return UniqueInverseResult(r["values"], r["inverse"])


def unique_values(x, /) -> Array:
    """The distinct values of ``x`` (sorted; each NaN is distinct)."""
    return _unique("unique_values", x, ("values",))["values"]
