"""Set functions of the standard: unique_all, unique_counts, unique_inverse, unique_values.

``x`` is flattened (C order) and sorted with the merge-sort kernels (with the original positions
when indices or the inverse are wanted, the stable sort makes the first one the first occurrence).
A kernel counts the run starts of each chunk of the sorted values (position 0 and every value
unequal to the one before it, so each NaN is distinct, and ``-0.0 == 0.0``); those few integers are
read back (noted in the profiler) to size the outputs; a fill kernel writes, chunks in parallel,
the values, first indices, run starts and the inverse map; the counts are differences of the run
starts (kernels/compact_chunks.py).

Before sorting, on cpu-like devices: integers in a small range are counted (kernels/unique_bins.py,
:func:`_unique_by_counting`), and other integers and real floats are hashed when each chunk of the
input holds few distinct values (kernels/unique_hash.py, :func:`_unique_by_hashing`; 1e7 float32
of 1000 distinct values: unique_counts 74 -> 15 ms, 3.5x NumPy's 51 ms). Hashing (here and for
sort / argsort by counting) is only tried where a sample of :data:`SAMPLE` values repeats enough
for each chunk to hold few distinct ones (:func:`_hash_promising`): on data of distinct values a
failed attempt hashed LIMIT values per chunk (unique_values and sort of 1e5 float32: 0.23 ms of
0.8).
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


#: integers whose values span at most this many bins are counted instead of sorted (the counts
#: of one chunk, int32, stay in L2: 128 KiB)
BINS_MAX = 1 << 15
#: ... when there are at least this many (fewer sort in microseconds; a wider dtype's min and max
#: would be read back first)
BINS_MIN_N = 1 << 12


def int64_bits(v: int) -> int:
    """A kernel slot holding the integer ``v`` (uint64 values above 2**63: the same bits as int64)."""
    return v - (1 << 64) if v >= (1 << 63) else v


def _in_place(node) -> bool:
    """Whether a kernel may read ``node``'s buffer as the flat C-order array (no copy)."""
    from ._sorting import _is_c_contiguous
    return node.op == "buffer" and node.arg.offset == 0 and _is_c_contiguous(node.shape, node.arg.strides)


def value_range(func: str, keys, dtype, n: int, device, choice: str) -> tuple:
    """``(lo, hi)`` bounding the ``n`` flat integers (or bools) of the buffer ``keys``: bool and
    8-bit integers by their dtype's range, wider ones by the data's min and max (read back, and
    noted in the profiler: ``choice`` says what they decide)."""
    import numpy as np

    from . import profiler
    from ._manipulation import stack
    from ._statistical import max as max_, min as min_
    from ._transfer import internal
    if dtype.kind == "b":
        return 0, 1
    if dtype.itemsize == 1:
        return (-128, 127) if dtype.kind == "i" else (0, 255)
    flat = Array._new(LazyNode("buffer", (), dtype, (n,), View(keys, (1,), 0), device))
    with internal(func):
        lo, hi = (int(v) for v in np.asarray(stack([min_(flat), max_(flat)])))
    profiler.note(f"{func}: read back the min and max ({lo}, {hi}) to choose {choice} ({hi - lo + 1} values)")
    return lo, hi


def _bins(func: str, keys, dtype, n: int, device):
    """``(lo, nbins)`` when the flat ``keys`` are counted (kernels.unique_bins), else None: when
    they span at most BINS_MAX values (:func:`value_range`)."""
    if not _bins_possible(dtype, n, device):
        return None
    lo, hi = value_range(func, keys, dtype, n, device, "counting or sorting")
    return (lo, hi - lo + 1) if hi - lo < BINS_MAX else None


def _unique(func: str, x, outputs: tuple) -> dict:
    from ._searching import _launch, read_chunk_counts
    from ._sorting import contiguous_copy, radix_applies, sort_rows
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an egpu_array.Array, got {type(x).__name__}")
    device, dtype, n = x.device, x.dtype, x.size
    with_idx = "indices" in outputs or "inverse" in outputs
    node = x._node  # a radix sort (and counting) reads a contiguous input in place (no copy)
    radix = radix_applies(dtype, 1, n, device)
    direct = _in_place(node) and (radix or _bins_possible(dtype, n, device))
    keys = node.arg.buffer if direct else contiguous_copy(node)
    bins = _bins(func, keys, dtype, n, device)
    if bins is not None:
        return _unique_by_counting(keys, x, outputs, *bins)
    if _hash_possible(dtype, n, device) and _hash_promising(keys, dtype, n, device):
        found = _unique_by_hashing(func, keys, x, outputs)
        if found is not None:
            return found
    if direct and not radix:  # (only the radix sort leaves its input unwritten)
        keys, direct = contiguous_copy(node), False
    keys, idx = sort_rows(keys, None, dtype, 1, n, device, False, with_idx, read_only=direct)
    alloc = device.allocator.alloc
    count = 0
    if n:
        nchunks, chunk = _chunks(n, device)
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

    return _results(bufs, count, x, outputs)


def _results(bufs: dict, count: int, x, outputs: tuple) -> dict:
    """The unique_* outputs as arrays over their buffers."""
    def arr(name, dtype_, shape):
        return Array._new(LazyNode("buffer", (), dtype_, shape, View(bufs[name], contiguous_strides(shape), 0),
                                   x.device))
    res = {"values": arr("values", x.dtype, (count,))}
    for name in ("indices", "counts"):
        if name in outputs:
            res[name] = arr(name, dt.int64, (count,))
    if "inverse" in outputs:
        res["inverse"] = arr("inverse", dt.int64, x.shape)
    return res


def _bins_possible(dtype, n: int, device) -> bool:
    """Whether unique_* may count instead of sort: integers or bool, BINS_MIN_N elements or more
    (and fewer than 2**31: int32 counts), on a device whose threads each take a chunk's bins (not
    a GPU's thousands of threads)."""
    return device.kind != "cuda" and dtype.kind in "iub" and BINS_MIN_N <= n < (1 << 31)


def _unique_by_counting(keys, x, outputs: tuple, lo: int, nbins: int) -> dict:
    """unique_* of the flat integers ``keys`` (values in ``[lo, lo + nbins)``) by counting
    (kernels.unique_bins): per-chunk counts, merged per range of bins (how many are not empty is
    read back: the output size), then the outputs in value order and the inverse by lookup."""
    from ._searching import _launch, read_chunk_counts
    device, dtype, n = x.device, x.dtype, x.size
    alloc = device.allocator.alloc
    want = tuple(sorted(outputs))
    lo_slot = int64_bits(lo)

    def run(phase, slots, items, nbytes, work):
        spec = CompactSpec("unique_bins", dtype.name, 1, want, phase)
        _launch(device, get_program(device, spec), slots, items, nbytes, work)

    nchunks, chunk = _chunks(n, device)
    counts = alloc(nchunks * nbins * 4)
    firsts = alloc(nchunks * nbins * 8) if "indices" in outputs else None
    firsts_ptr = firsts.ptr if firsts is not None else 0
    run("bins", [n, chunk, keys.ptr, lo_slot, nbins, counts.ptr, firsts_ptr], nchunks, n * dtype.itemsize, n)
    parts = max(1, min(4 * getattr(device, "num_threads", 1), nbins // 4096))
    bin_chunk = -(-nbins // parts)
    distinct = alloc(parts * 8)
    run("merge", [nbins, nchunks, counts.ptr, firsts_ptr, bin_chunk, distinct.ptr], parts, nchunks * nbins * 12,
        nchunks * nbins)
    count = int(read_chunk_counts(distinct, parts, device, "unique").sum())
    bufs = {"values": alloc(max(count, 1) * dtype.itemsize)}
    for name in ("indices", "counts", "inverse"):
        if name in outputs:
            bufs[name] = alloc(max(n if name == "inverse" else count, 1) * 8)
    ranks = alloc(nbins * 8) if "inverse" in outputs else None
    ptr = lambda k: bufs[k].ptr if k in bufs else 0  # noqa: E731
    run("emit", [nbins, lo_slot, count, counts.ptr, firsts_ptr, bin_chunk, distinct.ptr, ptr("values"),
                 ptr("indices"), ptr("counts"), ranks.ptr if ranks is not None else 0], parts, nbins * 24, nbins)
    if ranks is not None:
        run("inverse", [n, chunk, keys.ptr, lo_slot, nbins, ranks.ptr, ptr("inverse")], nchunks,
            n * (dtype.itemsize + 8), n)
    return _results(bufs, count, x, outputs)


def _hash_possible(dtype, n: int, device) -> bool:
    """Whether unique_* first tries hashing (kernels.unique_hash): real floats and integers (those
    not counted), BINS_MIN_N elements or more and fewer than 2**31 (int32 counts), on a device
    whose threads each take a chunk's table (not a GPU's thousands of threads)."""
    return device.kind != "cuda" and dtype.kind in "iuf" and BINS_MIN_N <= n < (1 << 31)


#: values read (on host-memory devices) to judge whether hashing can pay, at evenly spread positions
#: with a fixed random jitter each
SAMPLE = 1024
_JITTER = []  # SAMPLE fractions in [0, 1), made at first use


def _hash_promising(keys, dtype, n: int, device) -> bool:
    """Whether hashing the ``n`` flat ``keys`` may succeed, judged by the repeats in a sample of
    SAMPLE of them (read in place on host-memory devices; elsewhere, and for fewer than
    2 * LIMIT values, always true). Among values of ``d`` equally frequent distinct ones a sample
    of ``s`` repeats about ``s**2 / (2 d)`` times; hashing needs at most LIMIT per chunk, so at
    most ``nchunks * LIMIT`` in all (when the chunks' values differ): it is tried when the sample
    repeats at least a quarter of what that many values would give (1024 of 8 chunks: 2 repeats;
    of data of distinct values the sample repeats about never)."""
    import numpy as np

    from .kernels.unique_hash import LIMIT
    if not getattr(device, "host_memory", False) or n < 2 * LIMIT:
        return True
    if not _JITTER:
        _JITTER.append(np.random.default_rng(0).random(SAMPLE))
    at = ((np.arange(SAMPLE) + _JITTER[0]) * (n / SAMPLE)).astype(np.intp)  # (distinct: n >= SAMPLE)
    sample = np.sort(device.host_view(keys, 0, n * dtype.itemsize).view(dtype.np)[at])
    repeats = int(np.count_nonzero(sample[1:] == sample[:-1]))
    return repeats >= max(1, SAMPLE * SAMPLE // (8 * _chunks(n, device)[0] * LIMIT))


def _unique_by_hashing(func: str, keys, x, outputs: tuple):
    """unique_* of the flat ``keys`` by hashing (:func:`_hashed`), or None (the caller sorts)."""
    found = _hashed(func, keys, x.dtype, x.size, x.device, outputs)
    return None if found is None else _results(*found, x, outputs)


def _hash_phase(device, dtype, outputs: tuple, phase: str, slots: list, items: int, nbytes: int, work: int):
    """Launch phase ``phase`` of kernels.unique_hash (outputs: the wanted ones, in any order)."""
    from ._searching import _launch
    spec = CompactSpec("unique_hash", dtype.name, 1, tuple(sorted(outputs)), phase)
    _launch(device, get_program(device, spec), slots, items, nbytes, work)


def _chunks(n: int, device) -> tuple:
    """``(nchunks, chunk)``: the work items of a pass over ``n`` elements and their length."""
    from ._searching import compact_chunks
    nchunks = compact_chunks(n, device)
    return nchunks, -(-n // nchunks)


def _hashed(func: str, keys, dtype, n: int, device, outputs: tuple):
    """``(bufs, count)``: the unique_* ``outputs`` of the ``n`` flat ``keys`` by hashing
    (kernels.unique_hash): a table per chunk, the tables' values gathered and sorted (a few
    thousand at most, not the data), walked in order; the inverse by lookup. None (the caller
    sorts) when a chunk met more than LIMIT distinct values, a NaN or -0.0; the per-chunk counts
    and the result count are read back (noted in the profiler)."""
    from . import profiler
    from ._searching import read_chunk_counts
    from ._sorting import sort_rows
    from .kernels.unique_hash import LIMIT, SLOTS
    alloc, isz = device.allocator.alloc, dtype.itemsize

    def run(phase, slots, items, nbytes, work):
        _hash_phase(device, dtype, outputs, phase, slots, items, nbytes, work)

    nchunks, chunk = _chunks(n, device)
    table_keys, table_counts = alloc(nchunks * SLOTS * isz), alloc(nchunks * SLOTS * 4)
    firsts = alloc(nchunks * SLOTS * 8) if "indices" in outputs else None
    firsts_ptr = firsts.ptr if firsts is not None else 0
    filled = alloc(nchunks * 8)
    run("table", [n, chunk, keys.ptr, table_keys.ptr, table_counts.ptr, firsts_ptr, filled.ptr], nchunks, n * isz, n)
    per_chunk = read_chunk_counts(filled, nchunks, device, func, "distinct values per hash table, -1: too many")
    if (per_chunk < 0).any():
        profiler.note(f"{func}: a chunk of {chunk} values holds more than {LIMIT} distinct ones, a NaN or -0.0: "
                      f"sorted instead of hashed")
        return None
    m = int(per_chunk.sum())
    candidates, origins = alloc(m * isz), alloc(m * 8)
    run("gather", [nchunks, table_keys.ptr, table_counts.ptr, candidates.ptr, origins.ptr], 1,
        nchunks * SLOTS * (isz + 4), nchunks * SLOTS)
    candidates, perm = sort_rows(candidates, None, dtype, 1, m, device, False, True)
    if perm is None:  # one candidate: nothing was sorted
        perm = alloc(8)
        _launch_zero(perm)
    bufs = {"values": alloc(m * isz)}
    for name in ("indices", "counts", "inverse"):
        if name in outputs:
            bufs[name] = alloc((n if name == "inverse" else m) * 8)
    ranks = alloc(nchunks * SLOTS * 8) if "inverse" in outputs or "ranks" in outputs else None
    ranks_ptr = ranks.ptr if ranks is not None else 0
    distinct = alloc(8)
    ptr = lambda k: bufs[k].ptr if k in bufs else 0  # noqa: E731
    run("emit", [m, candidates.ptr, perm.ptr, origins.ptr, table_counts.ptr, firsts_ptr, ptr("values"),
                 ptr("counts"), ptr("indices"), ranks_ptr, distinct.ptr], 1, m * (isz + 36), m)
    count = int(read_chunk_counts(distinct, 1, device, func, "distinct values")[0])
    if "inverse" in outputs:
        run("inverse", [n, chunk, keys.ptr, table_keys.ptr, table_counts.ptr, ranks_ptr, ptr("inverse")], nchunks,
            n * (isz + 8), n)
    if "ranks" in outputs:  # (the tables, for argsort_by_counting)
        bufs.update(ranks=ranks, table_keys=table_keys, table_counts=table_counts)
    return bufs, count


def _counting(func: str, keys, dtype, n: int, device, outputs: tuple):
    """``(bufs, count, nchunks, chunk, run)`` of :func:`_hashed` for sort / argsort by counting
    (``run(phase, slots, items, nbytes, work)`` launches a unique_hash phase), or None: the data
    holds too many distinct values (or a sample of it shows no promise: :func:`_hash_promising`),
    the device's memory is not the host's (elsewhere the tables' sizes would be read back over
    the link, and a sort reads nothing back), or its target sorts with a GPU's block kernels
    (kernels.ptx_sort: thousands of threads, not a table per chunk)."""
    gpu_sort = "sort" in getattr(getattr(device, "target", None), "generators", {})
    if gpu_sort or not (getattr(device, "host_memory", False) and _hash_possible(dtype, n, device)) \
            or not _hash_promising(keys, dtype, n, device):
        return None
    found = _hashed(func, keys, dtype, n, device, outputs)
    if found is None:
        return None

    def run(phase, slots, items, nbytes, work):
        _hash_phase(device, dtype, outputs, phase, slots, items, nbytes, work)
    return (*found, *_chunks(n, device), run)


def sort_by_counting(keys, dtype, n: int, device, descending: bool):
    """A Buffer of the ``n`` flat ``keys`` sorted, when they hold few distinct values (else None,
    see :func:`_counting`): their values and counts, then each value written as often as it
    occurs (``expand``: chunks of the output in parallel)."""
    found = _counting("sort", keys, dtype, n, device, ("values", "counts"))
    if found is None:
        return None
    bufs, count, nchunks, chunk, run = found
    out = device.allocator.alloc(n * dtype.itemsize)
    run("expand", [n, count, bufs["values"].ptr, bufs["counts"].ptr, out.ptr, chunk, int(bool(descending))],
        nchunks, n * dtype.itemsize, n)
    return out


def argsort_by_counting(keys, dtype, n: int, device, descending: bool):
    """A Buffer of the int64 positions that sort the ``n`` flat ``keys`` stably, when they hold
    few distinct values (else None, see :func:`_counting`): the tables of :func:`_hashed` give
    each value's rank; per chunk and rank the first output position (rank-major, chunks in order:
    stable; descending takes the ranks from the last); each chunk then places its elements'
    positions (``offsets`` and ``place``)."""
    found = _counting("argsort", keys, dtype, n, device, ("ranks", "values"))
    if found is None:
        return None
    bufs, count, nchunks, chunk, run = found
    alloc = device.allocator.alloc
    offsets, out = alloc(nchunks * count * 8), alloc(n * 8)
    tables = [bufs["table_keys"].ptr, bufs["table_counts"].ptr, bufs["ranks"].ptr]
    run("offsets", [nchunks, count, *tables[1:], offsets.ptr, int(bool(descending))], 1, nchunks * count * 16,
        nchunks * count)
    run("place", [n, chunk, keys.ptr, *tables, offsets.ptr, out.ptr, count, int(bool(descending))], nchunks,
        n * (dtype.itemsize + 8), n)
    return out


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
