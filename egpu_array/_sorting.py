"""Sorting functions of the standard (section "Sorting Functions"): sort and argsort.

The sorted axis is copied (one elementwise kernel) into contiguous rows; the ``sort`` kernels
(kernels/sort.py) then sort each row. Rows of real values: fewer long rows (>= RADIX_MIN
elements; on host targets >= ROW_CHUNKS_MIN) than threads by a stable LSD radix sort on
order-preserving integer keys (8-bit digits) with chunks of each row in parallel; on host
targets, other rows a row per work item: rows of at most 1024 values (argsort of 8-byte values:
128) by a bitonic network in vector registers (kernels.sort_network; 1e7 float32 as (100000,
100): 113 -> 5 ms, NumPy 11 ms), longer ones by the radix sort (kernels.sort_radix ``rows``; as
(1000, 10000): 277 -> 19 ms, NumPy 21 ms), from WIDE_DIGITS_MIN values on with 11-bit digits
(``rows11``: one row of 1e5 float32 0.71 -> 0.34 ms with the two changes before, NumPy 0.21).
Complex values, and the rows GPU targets do not radix-sort, take a stable merge sort: rows are
the work items the launcher spreads over threads; when there are fewer rows than threads, each
row is cut into segments sorted in parallel, then merged pass by pass (the last pass of a single
row runs on one thread). The result is returned as a view with the axis moved back (no copy).
``argsort`` of one long row of integers or real floats first try counting (host-memory devices)
where a sample of the row repeats values (_set._hash_promising):
when each chunk of the row holds at most 8192 distinct values (no NaN, no -0.0), hash tables
count them; sort writes each value as often as it occurs, argsort places each position at its
value's next offset (_set.sort_by_counting, _set.argsort_by_counting).

Order (stable in both directions): NaNs after all numbers (NumPy's order), ``-0.0 == 0.0``, complex
values lexicographic (real, then imaginary). ``descending=True`` reverses the comparison, so NaNs
come first, and equal elements keep their original relative order (not NumPy's
``flip(argsort(x))``).
"""
from __future__ import annotations

import math

import numpy as np

from . import _dtypes as dt
from ._array import Array
from ._graph import LazyNode, View, check_valid, contiguous_strides
from ._shapes import normalize_axis
from .kernels.cache import get_program
from .kernels.sort_network import network_size
from .kernels.sort_radix import radix_passes, rows_phase
from .kernels.spec import SortSpec

__all__ = ["sort", "argsort", "sort_rows", "launch", "contiguous_copy"]


def launch(device, program, slots, n_items: int, nbytes: int, work: int) -> None:
    """Launch with int64 argument ``slots`` (and a work estimate for splitting it over threads).

    The slots go as a ctypes array, not a bare address: sim reads which VRAM buffers a kernel
    touches from them (so copies of other buffers overlap it) and cuda copies them to the GPU."""
    from ._schedule import pack_args
    device.launch(program, pack_args(slots), n_items, nbytes, work=work)


def contiguous_copy(node: LazyNode, dtype=None):
    """A new contiguous buffer holding ``node`` (cast to ``dtype``); returns the Buffer."""
    from ._elementwise import cast_node
    from ._schedule import realize_into
    dtype = dtype or node.dtype
    n = math.prod(node.shape)
    buf = node.device.allocator.alloc(max(n, 1) * dtype.itemsize)
    if n:
        src = cast_node(node, dtype)
        if src.op == "buffer":  # a plain copy kernel
            src = LazyNode("positive", (src,), dtype, src.shape, None, src.device)
        realize_into(src, View(buf, contiguous_strides(node.shape), 0))
    return buf


def contiguous_buffer(x: Array):
    """``x``'s own buffer when it is realized, C-contiguous and at offset 0; else a copy."""
    node = x._node
    if node.op == "buffer" and node.arg.offset == 0 and _is_c_contiguous(node.shape, node.arg.strides):
        check_valid(node)
        return node.arg.buffer
    return contiguous_copy(node)


def _is_c_contiguous(shape, strides) -> bool:
    expect = 1
    for n, s in zip(reversed(shape), reversed(strides)):
        if n != 1 and s != expect:
            return False
        expect *= n
    return True


def radix_applies(dtype, n_rows: int, row_len: int, device) -> bool:
    """Whether :func:`sort_rows` sorts these rows with the radix sort of a row's chunks in
    parallel: long rows of real values, fewer of them than the device has threads where the
    row-per-work-item radix sort is there (host targets; 2 rows on 2 threads: 8 rows of 1.25e6
    float32 21 ms by rows, 26 ms by chunks) and ROW_CHUNKS_MIN long, else at most RADIX_MAX_ROWS."""
    if dtype.kind == "c" or row_len < RADIX_MIN:
        return False
    if row_radix_applies(dtype, row_len, device):  # (one row: chunks, whatever the threads)
        return n_rows < max(2, getattr(device, "num_threads", 1)) and row_len >= ROW_CHUNKS_MIN
    return n_rows <= RADIX_MAX_ROWS


def sort_rows(keys, idx, dtype, n_rows: int, row_len: int, device, descending: bool, with_idx: bool,
              read_only: bool = False):
    """Sort ``n_rows`` contiguous rows of ``keys`` (a Buffer, overwritten unless ``read_only``,
    which only the radix sort accepts: its first pass reads ``keys`` and writes a new buffer).

    Returns ``(keys, idx)``, the Buffers holding the result (possibly the scratch ones); ``idx`` is
    None without ``with_idx`` (else a Buffer of ``n_rows * row_len`` int64 to use, or None to
    allocate one).
    """
    total = n_rows * row_len
    if total == 0 or row_len == 0:
        return keys, idx
    alloc = device.allocator.alloc
    ptr = lambda buf: buf.ptr if buf is not None else 0  # noqa: E731
    chunked = radix_applies(dtype, n_rows, row_len, device)
    net = not chunked and network_applies(dtype, row_len, device, with_idx)
    # (a network sorts in place: no scratch)
    scratch = alloc(total * dtype.itemsize) if not net else None
    ia = ib = None
    if with_idx:
        ia = idx or alloc(total * 8)
        ib = alloc(total * 8) if not net else None
    threads = getattr(device, "num_threads", 1)
    if chunked:
        spare = alloc(total * dtype.itemsize) if read_only else None
        return _radix_rows(keys, scratch, ia, ib, dtype, n_rows, row_len, device, descending, with_idx, threads,
                           spare)
    if read_only:
        raise AssertionError("sort_rows: read_only keys need the radix sort")
    if net or row_radix_applies(dtype, row_len, device):
        phase = rows_phase(dtype, WIDE_DIGITS_MIN <= row_len < (1 << 31))
        prog = get_program(device, SortSpec(dtype.name, bool(descending), with_idx,
                                            f"net{network_size(dtype, row_len, with_idx)}" if net else phase))
        per, passes = dtype.itemsize + (8 if with_idx else 0), radix_passes(dtype)
        launch(device, prog, [row_len, keys.ptr, ptr(scratch), ptr(ia), ptr(ib)], n_rows, total * per * 2 * passes,
               total * passes)
        return keys, ia
    nseg = 1
    if n_rows < threads and row_len >= (1 << 15):
        nseg = 1 << max(0, (threads // n_rows - 1)).bit_length()
    seg = -(-row_len // nseg)
    nseg = -(-row_len // seg)
    nbytes = total * (dtype.itemsize + (8 if with_idx else 0)) * 2
    prog = get_program(device, SortSpec(dtype.name, bool(descending), with_idx, "local"))
    work = total * max(1, int(math.log2(max(seg, 2))))
    launch(device, prog, [n_rows, row_len, seg, nseg, ptr(keys), ptr(scratch), ptr(ia), ptr(ib)],
           n_rows * nseg, nbytes, work)
    width = seg
    if width < row_len:
        prog = get_program(device, SortSpec(dtype.name, bool(descending), with_idx, "merge"))
        while width < row_len:
            npairs = -(-row_len // (2 * width))
            launch(device, prog, [n_rows, row_len, width, npairs, ptr(keys), ptr(scratch), ptr(ia), ptr(ib)],
                   n_rows * npairs, nbytes, total)
            keys, scratch, ia, ib = scratch, keys, ib, ia
            width *= 2
    return keys, ia


#: rows at least this long, when there are at most RADIX_MAX_ROWS of them, use the radix sort
RADIX_MIN = 1 << 16
RADIX_MAX_ROWS = 8
#: other rows of real values at least this long are radix-sorted a row per work item on host
#: targets (kernels.sort_radix ``rows``) when no network takes them
ROW_RADIX_MIN = 64
#: on host targets, a row is cut into chunks sorted by several threads only from this length:
#: shorter ones take the ``rows`` kernel on one thread (one launch, the counts of every pass in
#: one read). 2 threads on 2 busy cores (load 5-6), medians of 11, ms, chunks / one thread:
#: float32 1e5 0.59 / 0.39, 1e6 10.9 / 7.3, float64 1e5 1.06 / 0.81, 1e6 18.6 / 15.2 (NumPy 0.23,
#: 4.3, 0.40, 9.4); 4e6 float32 32 / 25 (chunks on one thread: 21), which 1e7 on an idle machine
#: reverses
ROW_CHUNKS_MIN = 1 << 21
#: rows at least this long sorted a row per work item take 11-bit digits (kernels.sort_radix
#: ``rows11``: 4- and 8-byte keys in 3 and 6 passes instead of 4 and 8)
WIDE_DIGITS_MIN = 1 << 14


def _host_sort(device) -> bool:
    """Whether ``device``'s target sorts with the host generators (GPU targets bring their own
    ``sort`` generator: kernels.ptx_sort)."""
    return "sort" not in getattr(getattr(device, "target", None), "generators", {})


def network_applies(dtype, row_len: int, device, with_idx: bool) -> bool:
    """Whether :func:`sort_rows` sorts rows of ``row_len`` with a bitonic network
    (kernels.sort_network: host targets, rows of at most 1024 real values; argsort of 8-byte
    values, 128)."""
    return _host_sort(device) and network_size(dtype, row_len, with_idx) is not None


def row_radix_applies(dtype, row_len: int, device) -> bool:
    """Whether :func:`sort_rows` sorts rows of ``row_len`` with the row-per-work-item radix sort
    (when :func:`radix_applies` does not)."""
    return _host_sort(device) and dtype.kind != "c" and row_len >= ROW_RADIX_MIN


def _radix_rows(keys, scratch, ia, ib, dtype, n_rows, row_len, device, descending, with_idx, threads,
                spare=None):
    """LSD radix sort (8-bit digits, stable) of each row: per pass, a prefix kernel and a stable
    scatter per chunk of the row (chunks in parallel); passes whose digit is the same for every
    element of every row are skipped (host-memory devices, where the counts are readable for free).
    Per-chunk counts depend on the order, so with several chunks every pass after the first one
    needs its digit counted in the order the previous pass left. Host targets (``fused``): the
    scatter counts them as it places the values (by the chunk each one lands in, a table per work
    item that the next prefix sums), so one ``hist_low`` kernel per row counts only the lowest
    digit and takes the AND and the OR of the keys (which digits vary); where the lowest digit is
    skipped, a ``hist`` kernel counts the first digit run. GPU targets: one ``hist_all`` kernel
    per row counts the digits of every pass at once, and every later pass recounts (``hist``).
    With ``spare`` (a second buffer) ``keys`` is only read: the passes ping-pong between
    ``scratch`` and ``spare``."""
    nchunks = max(1, min(threads, row_len // 4096))
    chunk = -(-row_len // nchunks)
    passes = radix_passes(dtype)
    per = nchunks * 256  # counts of one pass of one row
    hist = device.allocator.alloc(n_rows * passes * per * 8)
    fused = nchunks > 1 and _host_sort(device)
    # fused: per row, two tables of nchunks count tables each (one read by a pass, one written)
    nxt = device.allocator.alloc(n_rows * 2 * nchunks * per * 8) if fused else None
    bits = device.allocator.alloc(n_rows * nchunks * 2 * 8) if fused else None  # hist_low's AND, OR

    def prog(phase):
        return get_program(device, SortSpec(dtype.name, bool(descending), with_idx, phase))
    isz = dtype.itemsize
    nbytes = row_len * (isz + (8 if with_idx else 0))

    def row_slots(r, p, src, dst, si, di, counts=None, tables=1, next_counts=0, next_shift=0):
        k_off, i_off = r * row_len * isz, r * row_len * 8
        return [row_len, chunk, nchunks, 8 * p, src.ptr + k_off, dst.ptr + k_off,
                (si.ptr + i_off) if with_idx else 0, (di.ptr + i_off) if with_idx else 0,
                counts if counts is not None else hist.ptr + (r * passes + p) * per * 8,
                next_counts, next_shift, tables]

    def fused_table(r, k):  # row r's tables counted by pass k - 1, read by pass k
        return nxt.ptr + (r * 2 + k % 2) * nchunks * per * 8

    for r in range(n_rows):
        if fused:
            slots = row_slots(r, 0, keys, scratch, ia, ib, next_counts=bits.ptr + r * nchunks * 16)
            launch(device, prog("hist_low"), slots, nchunks, row_len * isz, row_len)
        else:
            launch(device, prog("hist_all"), row_slots(r, 0, keys, scratch, ia, ib), nchunks, row_len * isz,
                   row_len * passes)
    run = list(range(passes))
    if getattr(device, "host_memory", False):
        if fused:  # a digit varies where its bits differ between the AND and the OR of a row's keys
            b = device.host_view(bits, 0, n_rows * nchunks * 16).view(np.uint64).reshape(n_rows, nchunks, 2)
            varying = np.bitwise_and.reduce(b[:, :, 0], axis=1) ^ np.bitwise_or.reduce(b[:, :, 1], axis=1)
            same = [not ((varying >> np.uint64(8 * p)) & np.uint64(255)).any() for p in run]
        else:
            counts = device.host_view(hist, 0, n_rows * passes * per * 8).view(np.int64)
            totals = counts.reshape(n_rows, passes, nchunks, 256).sum(axis=2)
            same = [(totals[:, p, :] == row_len).any(axis=1).all() for p in run]
        run = [p for p in run if not same[p]] or ([0] if with_idx or spare is not None else [])
        if fused and run and run[0] != 0:  # hist_low counted a digit that stays: count the first run
            for r in range(n_rows):
                launch(device, prog("hist"), row_slots(r, run[0], keys, scratch, ia, ib), nchunks,
                       row_len * isz, row_len)
    for k, p in enumerate(run):
        for r in range(n_rows):
            # fused: the counts the last pass's scatter made; this scatter counts the next pass
            counts, tables = (fused_table(r, k), nchunks) if fused and k > 0 else (None, 1)
            upcoming = (fused_table(r, k + 1), 8 * run[k + 1]) if fused and k + 1 < len(run) else (0, 0)
            sl = row_slots(r, p, keys, scratch, ia, ib, counts, tables, *upcoming)
            if k > 0 and nchunks > 1 and not fused:  # per-chunk counts of the order the last pass left
                launch(device, prog("hist"), sl, nchunks, row_len * isz, row_len)
            launch(device, prog("prefix"), sl, 1, nchunks * 256 * 8, 1)
            launch(device, prog("scatter_first" if k == 0 else "scatter"), sl, nchunks, 2 * nbytes, row_len)
        keys, scratch, ia, ib = scratch, (spare if k == 0 and spare is not None else keys), ib, ia
    return keys, ia


def _sort_impl(func: str, x, axis, descending, want_idx: bool) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an egpu_array.Array, got {type(x).__name__}")
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{func}: axis must be an int, got {type(axis).__name__}")
    if x.ndim == 0:
        raise ValueError(f"{func}: expected an array of at least one dimension, got a 0-d array")
    ax = normalize_axis(axis, x.ndim, func)
    from ._views import permute_view
    perm = tuple(d for d in range(x.ndim) if d != ax) + (ax,)
    moved = permute_view(x, perm) if ax != x.ndim - 1 else x
    shape = moved.shape
    row_len = shape[-1]
    n_rows = math.prod(shape[:-1])
    device = x.device
    node = moved._node
    # a radix sort reads a contiguous input in place (its first pass writes a new buffer)
    direct = radix_applies(x.dtype, n_rows, row_len, device) and node.op == "buffer" and node.arg.offset == 0 \
        and _is_c_contiguous(node.shape, node.arg.strides)
    keys = node.arg.buffer if direct else contiguous_copy(node)
    counted = None
    if n_rows == 1 and row_len >= RADIX_MIN and x.dtype.kind != "c":  # few distinct values: counted (_set)
        from ._set import argsort_by_counting, sort_by_counting
        counted = (argsort_by_counting if want_idx else sort_by_counting)(keys, x.dtype, row_len, device, descending)
    if counted is not None:
        keys, idx = (None, counted) if want_idx else (counted, None)
    else:
        keys, idx = sort_rows(keys, None, x.dtype, n_rows, row_len, device, descending, want_idx, read_only=direct)
    if want_idx:
        if idx is None:  # nothing to sort: empty
            idx = device.allocator.alloc(8)
        out = Array._new(LazyNode("buffer", (), dt.int64, shape, View(idx, contiguous_strides(shape), 0), device))
    else:
        out = Array._new(LazyNode("buffer", (), x.dtype, shape, View(keys, contiguous_strides(shape), 0), device))
    if ax != x.ndim - 1:
        inv = [0] * x.ndim
        for k, d in enumerate(perm):
            inv[d] = k
        out = permute_view(out, tuple(inv))
    return out


def sort(x, /, *, axis=-1, descending=False, stable=True) -> Array:
    """A sorted copy of ``x`` along ``axis`` (always stable)."""
    return _sort_impl("sort", x, axis, descending, False)


def argsort(x, /, *, axis=-1, descending=False, stable=True) -> Array:
    """The int64 indices that sort ``x`` along ``axis`` (always stable)."""
    return _sort_impl("argsort", x, axis, descending, True)
