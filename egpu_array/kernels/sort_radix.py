"""Phases of the stable LSD radix sort (8-bit digits) of one row, for the ``sort`` kernel kind.

Slots (shared by every phase): ``row_len``, ``chunk``, ``nchunks``, ``shift`` (8 * pass), keys
source, keys destination, indices source, indices destination, counts, then (host phases only)
the next pass's counts (0: none) and its shift, and the number of count tables ``prefix`` sums.
Work item ``c`` handles chunk ``c`` of the row (``[c * chunk, min((c + 1) * chunk, row_len))``).

- ``hist``: chunk ``c``'s counts of the digit at ``shift``, at ``counts[c * 256 + digit]``;
- ``hist_all``: the counts of every pass in one read, at ``counts[(p * nchunks + c) * 256 + digit]``;
- ``hist_low`` (host targets, where the scatters count the passes after the first): chunk ``c``'s
  counts of the lowest digit, as ``hist`` at shift 0, and the AND and the OR of its keys (zero-
  extended) at ``bits[2 * c]``, ``bits[2 * c + 1]`` (slot 9): a digit is the same in every key
  iff its bits agree in the row's AND and OR, so the host learns which passes to skip;
- ``prefix`` (work item 0): the counts become scatter offsets (digit-major, chunk order inside);
  with several count tables (slot 11), chunk ``c``'s count of a digit is the sum of the tables'
  (table ``s`` at ``counts[(s * nchunks + c) * 256 + digit]``);
- ``scatter`` / ``scatter_first``: values (and indices; ``scatter_first`` takes the positions as
  indices) move to their digit's next offset, in order, so the sort is stable. With a next-pass
  table (slot 9), work item ``c`` also counts each value's next digit (slot 10) by the chunk it
  lands in, into table ``c`` there: the next pass's per-chunk counts without reading the row
  again (``prefix`` sums the ``nchunks`` tables).

``rows`` (one launch, host targets): work item ``r`` sorts row ``r`` whole, every pass in turn,
for many rows that each fit a core's caches. Slots: ``row_len``, keys, scratch (a row each), indices,
index scratch (0 without indices). It counts every pass's digits in one read, fills the indices
with the positions, then per pass whose digit varies in the row: offsets from the counts, a
scatter into the other buffer. Rows where an odd number of passes ran copy back at the end.
``rows11`` is the same with 11-bit digits (:data:`WIDE_DIGIT_BITS`; int32 counts, one copy: rows
shorter than 2**31): keys of 4 and 8 bytes in 3 and 6 passes instead of 4 and 8, for rows long
enough that the 2048 counts per pass cost little (the caller's choice: _sorting.WIDE_DIGITS_MIN).

Keys are order-preserving unsigned integers (:func:`radix_key`). Each phase walks its chunk in
blocks of :data:`BLOCK`: a vectorizable loop computes the block's keys into a stack buffer, then a
scalar loop counts or scatters; counters live on the stack in several copies (alternate elements
use alternate copies) so runs of equal digits do not serialize on one counter.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I64, const, extern, for_range, range_loop
from .spec import SortSpec

__all__ = ["generate_radix", "generate_radix_rows", "radix_key", "radix_passes", "rows_phase", "BLOCK",
           "WIDE_DIGIT_BITS"]

#: elements whose keys are computed together before counting / scattering them
BLOCK = 256
#: the scatter prefetches (for writing) the cache line this many bytes past each element it stores.
#: (Software write-combining instead, a 64-byte line per digit on the stack stored whole with a
#: non-temporal store, was measured slower on Zen 5: 1e7 float32 sort 24 -> 39 ms, float64
#: 66 -> 112 ms; a C loop of the same, one thread, 4.1 -> 6.3 ms per 5e6 keys.)
PREFETCH_BYTES = 32


#: the digit width of the ``rows11`` phase
WIDE_DIGIT_BITS = 11


def radix_passes(dtype, bits: int = 8) -> int:
    """Digit passes (8-bit digits, or ``bits``) of an LSD radix sort of ``dtype`` keys."""
    return max(1, -(-8 * dtype.itemsize // bits))


def rows_phase(dtype, wide: bool) -> str:
    """The ``rows`` phase for ``dtype``: ``rows11`` where ``wide`` (the caller's choice by row length)
    and 11-bit digits take fewer passes than bytes (keys of 4 and 8 bytes), else ``rows``."""
    fewer = radix_passes(dtype, WIDE_DIGIT_BITS) < radix_passes(dtype)
    return f"rows{WIDE_DIGIT_BITS}" if wide and fewer else "rows"


def radix_key(b, dtype, v, descending: bool):
    """The unsigned key whose integer order is the sort order of ``v`` (NaNs last, ``-0.0 == 0.0``)."""
    kind = dtype.kind
    if kind == "f":
        ity = ir.IntType(dtype.bits)
        bits = b.bitcast(v, ity)
        bits = b.select(b.fcmp_ordered("==", v, ir.Constant(v.type, 0.0)), ir.Constant(ity, 0), bits)
        ones, sign = ir.Constant(ity, -1), ir.Constant(ity, 1 << (dtype.bits - 1))
        k = b.xor(bits, b.select(b.icmp_signed("<", bits, ir.Constant(ity, 0)), ones, sign))
        k = b.select(b.fcmp_unordered("uno", v, v), ones, k)
    elif kind == "i":
        k = b.xor(v, ir.Constant(v.type, 1 << (v.type.width - 1)))
    else:
        k = v
    return b.not_(k) if descending else k


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _digit(b, k, shift, bits: int = 8):
    """``(k >> shift) & (2**bits - 1)`` as an i64 (``shift`` an i64 value or a Python int)."""
    if isinstance(shift, int):
        sh = ir.Constant(k.type, shift)
    else:
        sh = b.trunc(shift, k.type) if k.type.width < 64 else shift
    d = b.and_(b.lshr(k, sh), ir.Constant(k.type, (1 << bits) - 1))
    return b.zext(d, I64) if k.type.width < 64 else d


def key_type(dtype) -> ir.IntType:
    """The integer type of :func:`radix_key` for ``dtype``."""
    return ir.IntType(8 * dtype.itemsize)


class _Row:
    """The chunk of a row a work item handles, walked block by block with the keys precomputed.
    Create it in the entry block (it allocates the key buffer), then set ``lo``/``hi``."""

    def __init__(self, spec, b, keys, src, bits: bool = False):
        """``bits``: also keep the AND and the OR of the keys walked (``and_``, ``or_``: stack
        slots, reset by each ``blocks``)."""
        self.spec, self.b, self.K, self.src = spec, b, keys, src
        kty = self.kty = key_type(keys.dtype)
        self.kbuf = b.bitcast(b.alloca(ir.ArrayType(kty, BLOCK)), kty.as_pointer())
        self.and_, self.or_ = (b.alloca(kty), b.alloca(kty)) if bits else (None, None)
        self.lo = self.hi = None

    def blocks(self, body):
        """``body(first, m)`` per block, after the block's keys are in ``key(j)``, j < m."""
        b = self.b
        if self.and_ is not None:
            b.store(ir.Constant(self.kty, -1), self.and_)
            b.store(ir.Constant(self.kty, 0), self.or_)
        span = b.sub(self.hi, self.lo)
        nblk = b.sdiv(b.add(span, const(I64, BLOCK - 1)), const(I64, BLOCK))
        with for_range(b, const(I64, 0), nblk, name="blk") as blk:
            first = b.add(self.lo, b.mul(blk, const(I64, BLOCK)))
            m = _min(b, const(I64, BLOCK), b.sub(self.hi, first))
            with for_range(b, const(I64, 0), m, name="kj") as j:
                v = self.K.load(self.src, b.add(first, j))
                k = radix_key(b, self.K.dtype, v, self.spec.descending)
                b.store(k, b.gep(self.kbuf, [j]))
                if self.and_ is not None:
                    b.store(b.and_(b.load(self.and_), k), self.and_)
                    b.store(b.or_(b.load(self.or_), k), self.or_)
            body(first, m)

    def key(self, j):
        return self.b.load(self.b.gep(self.kbuf, [j]))


def _count(b, row: _Row, shifts: list, copies: int, cnt, bits: int = 8):
    """Count the ``bits``-bit digits at each of ``shifts`` into
    ``cnt[(s * copies + copy) * 2**bits + digit]`` (counters of ``cnt``'s element type)."""
    one = const(cnt.type.pointee, 1)

    def inc(k, copy):
        for s, sh in enumerate(shifts):
            hp = b.gep(cnt, [b.add(const(I64, (s * copies + copy) << bits), _digit(b, k, sh, bits))])
            b.store(b.add(b.load(hp), one), hp)

    def body(first, m):
        groups = b.sdiv(m, const(I64, copies))
        with for_range(b, const(I64, 0), groups, name="cg") as g:
            for copy in range(copies):
                inc(row.key(b.add(b.mul(g, const(I64, copies)), const(I64, copy))), copy)
        with for_range(b, b.mul(groups, const(I64, copies)), m, name="cr") as j:
            inc(row.key(j), 0)
    row.blocks(body)


def _stack_counts(b, n: int):
    arr = b.alloca(ir.ArrayType(I64, n))
    return b.bitcast(arr, I64.as_pointer())


def generate_radix(spec: SortSpec, b, slot, start, stop):
    """Emit the body of radix phase ``spec.phase`` (the builder is in the kernel's entry block)."""
    from .sort import Keys
    K = Keys(b, dtype_named(spec.dtype))
    n, chunk, nchunks, shift = slot(0), slot(1), slot(2), slot(3)
    sk, dk = K.ptr(slot(4)), K.ptr(slot(5))
    si, di = (b.inttoptr(slot(k), I64.as_pointer()) for k in (6, 7))
    hist = b.inttoptr(slot(8), I64.as_pointer())
    if spec.phase == "prefix":
        _prefix(b, hist, nchunks, start, slot(11))
        return
    counting = spec.phase.startswith("hist")
    passes = radix_passes(K.dtype)
    shifts = {"hist_all": [8 * p for p in range(passes)], "hist_low": [0]}.get(spec.phase, [shift])
    copies = 2 if len(shifts) > 1 else 4
    ncnt = len(shifts) * copies * 256 if counting else 256
    cnt = b.bitcast(b.alloca(ir.ArrayType(I64, ncnt)), I64.as_pointer())
    row = _Row(spec, b, K, sk, bits=spec.phase == "hist_low")
    if not counting:  # the scatter's next-pass chunk tracking (see _scatter_chunk)
        tracking = (_stack_counts(b, 256), _stack_counts(b, 256))
    with for_range(b, start, stop, name="c") as c:
        row.lo = b.mul(c, chunk)
        row.hi = _min(b, b.add(row.lo, chunk), n)
        if counting:
            _count_chunk(spec, b, row, shifts, copies, cnt, ncnt, hist, nchunks, c)
            if row.and_ is not None:
                bits = b.inttoptr(slot(9), I64.as_pointer())
                for k, acc in enumerate((row.and_, row.or_)):
                    b.store(b.zext(b.load(acc), I64) if row.kty.width < 64 else b.load(acc),
                            b.gep(bits, [b.add(b.mul(c, const(I64, 2)), const(I64, k))]))
        else:
            nxt = b.inttoptr(slot(9), I64.as_pointer())
            counting_next = b.icmp_unsigned("!=", slot(9), const(I64, 0))
            with b.if_else(counting_next) as (then, otherwise):
                with then:
                    _scatter_chunk(spec, b, row, K, cnt, hist, c, shift, sk, dk, si, di,
                                   (b.gep(nxt, [b.mul(c, b.mul(nchunks, const(I64, 256)))]), chunk, nchunks,
                                    slot(10), tracking))
                with otherwise:
                    _scatter_chunk(spec, b, row, K, cnt, hist, c, shift, sk, dk, si, di)


def _count_chunk(spec, b, row, shifts, copies, cnt, ncnt, hist, nchunks, c):
    """hist / hist_all for one chunk: count on the stack, then store the summed copies."""
    zero, nb = const(I64, 0), const(I64, 256)
    with for_range(b, zero, const(I64, ncnt), name="z") as z:
        b.store(zero, b.gep(cnt, [z]))
    _count(b, row, shifts, copies, cnt)
    for s in range(len(shifts)):
        base = b.mul(b.add(b.mul(const(I64, s), nchunks), c), nb) if spec.phase == "hist_all" else b.mul(c, nb)
        with for_range(b, zero, nb, name="h") as d:
            tot = zero
            for copy in range(copies):
                tot = b.add(tot, b.load(b.gep(cnt, [b.add(const(I64, (s * copies + copy) * 256), d)])))
            b.store(tot, b.gep(hist, [b.add(base, d)]))


def _scatter_chunk(spec, b, row, K, cnt, hist, c, shift, sk, dk, si, di, nxt=None, bits: int = 8):
    """scatter / scatter_first for one chunk, with its offsets copied to the stack (``bits``-bit
    digits: ``rows11`` passes its offsets as both, which copies them onto themselves); with ``nxt``
    (this work item's next-pass table, the chunk length, the chunk count, the next shift, two
    stack arrays of 256 from the entry block) it also counts each value's next digit under the
    chunk its position falls in (each digit's offset moves up one at a time, so its chunk is
    tracked with the end of that chunk: no division)."""
    zero, one, nb = const(I64, 0), const(I64, 1), const(I64, 1 << bits)
    hrow = b.gep(hist, [b.mul(c, nb)])
    if hist is not cnt:
        with for_range(b, zero, nb, name="l") as d:
            b.store(b.load(b.gep(hrow, [d])), b.gep(cnt, [d]))
    if nxt is not None:
        table, chunk, nchunks, next_shift, (at, end) = nxt
        with for_range(b, zero, b.mul(nchunks, nb), name="nz") as z:
            b.store(zero, b.gep(table, [z]))
        # per digit: where its chunk's counts start in ``table`` (chunk * 256) and where that chunk ends
        with for_range(b, zero, nb, name="nl") as d:
            dc = b.udiv(b.load(b.gep(cnt, [d])), chunk)
            b.store(b.mul(dc, nb), b.gep(at, [d]))
            b.store(b.mul(b.add(dc, one), chunk), b.gep(end, [d]))

    def body(first, m):
        with for_range(b, zero, m, name="e") as j:
            i = b.add(first, j)
            k = row.key(j)
            dig = _digit(b, k, shift, bits)
            hp = b.gep(cnt, [dig])
            pos = b.load(hp)
            b.store(b.add(pos, one), hp)
            if nxt is not None:
                ap, ep = b.gep(at, [dig]), b.gep(end, [dig])
                with b.if_then(b.icmp_signed(">=", pos, b.load(ep)), likely=False):  # the next chunk
                    b.store(b.add(b.load(ap), nb), ap)
                    b.store(b.add(b.load(ep), chunk), ep)
                np_ = b.gep(table, [b.add(b.load(ap), _digit(b, k, next_shift))])
                b.store(b.add(b.load(np_), one), np_)
            if PREFETCH_BYTES:
                _prefetch_write(b, dk, pos, max(1, PREFETCH_BYTES // K.dtype.itemsize))
                if spec.with_idx:
                    _prefetch_write(b, di, pos, max(1, PREFETCH_BYTES // 8))
            K.store(dk, pos, K.load(sk, i))
            if spec.with_idx:
                b.store(i if spec.phase == "scatter_first" else b.load(b.gep(si, [i])), b.gep(di, [pos]))
    row.blocks(body)


def generate_radix_rows(spec: SortSpec, b, slot, start, stop):
    """Emit the body of the ``rows`` / ``rows11`` phase (see the module; the builder is in the
    entry block)."""
    from .sort import Keys
    K = Keys(b, dtype_named(spec.dtype))
    bits = WIDE_DIGIT_BITS if spec.phase == f"rows{WIDE_DIGIT_BITS}" else 8
    row_len, nb, zero = slot(0), const(I64, 1 << bits), const(I64, 0)
    keys, scratch = K.ptr(slot(1)), K.ptr(slot(2))
    ia, ib = (b.inttoptr(slot(k), I64.as_pointer()) for k in (3, 4))
    passes = radix_passes(K.dtype, bits)
    # (1 copy: 13% faster on rows of 100, 7% slower on long rows of few values; 11-bit digits:
    # one copy of int32 counts, 24 KiB for 4-byte keys)
    copies = 1 if bits > 8 else 2 if passes > 1 else 4
    cty = ir.IntType(32) if bits > 8 else I64
    ncnt = passes * copies << bits
    cnt = b.bitcast(b.alloca(ir.ArrayType(cty, ncnt)), cty.as_pointer())
    offsets = _stack_counts(b, 1 << bits)  # (the scatter moves them on: they are its cursors too)
    odd = b.alloca(ir.IntType(1))
    row = _Row(spec, b, K, keys)
    with for_range(b, start, stop, name="r") as r:
        base = b.mul(r, row_len)
        a_k, b_k = b.gep(keys, [base]), b.gep(scratch, [base])
        a_i, b_i = (b.gep(p, [base]) for p in (ia, ib)) if spec.with_idx else (ia, ib)
        row.src, row.lo, row.hi = a_k, zero, row_len
        with for_range(b, zero, const(I64, ncnt), name="z") as z:
            b.store(const(cty, 0), b.gep(cnt, [z]))
        _count(b, row, [bits * p for p in range(passes)], copies, cnt, bits)
        if spec.with_idx:
            with for_range(b, zero, row_len, name="io") as i:
                b.store(i, b.gep(a_i, [i]))
        b.store(ir.Constant(ir.IntType(1), 0), odd)
        with for_range(b, zero, const(I64, passes), name="p") as p:
            # offsets of pass p (digit order); the digit is the same in the whole row if one
            # digit holds every element
            (_, same) = range_loop(b, zero, nb, [zero, ir.Constant(ir.IntType(1), 0)], lambda d, s: _offset(
                b, cnt, copies, p, d, s, offsets, row_len, nb), "po")
            with b.if_then(b.not_(same)):
                flip = b.load(odd)
                src, dst = b.select(flip, b_k, a_k), b.select(flip, a_k, b_k)
                si, di = (b.select(flip, b_i, a_i), b.select(flip, a_i, b_i)) if spec.with_idx else (ia, ib)
                row.src = src
                _scatter_chunk(spec, b, row, K, offsets, offsets, zero, b.mul(p, const(I64, bits)), src, dst, si, di,
                               bits=bits)
                b.store(b.not_(flip), odd)
        with b.if_then(b.load(odd)):  # the row ended in the scratch: copy it back
            with for_range(b, zero, row_len, name="cb") as i:
                K.store(a_k, i, K.load(b_k, i))
                if spec.with_idx:
                    b.store(b.load(b.gep(b_i, [i])), b.gep(a_i, [i]))


def _offset(b, cnt, copies: int, p, d, state, offsets, row_len, nb):
    """One step of the offsets of pass ``p`` (``nb`` digits): digit ``d``'s offset is the running
    sum ``state[0]`` of the counts before it (summed over the copies; int32 counts widened);
    ``state[1]``: some digit holds the row."""
    run, same = state
    tot = const(I64, 0)
    for copy in range(copies):
        at = b.add(b.mul(b.add(b.mul(p, const(I64, copies)), const(I64, copy)), nb), d)
        c = b.load(b.gep(cnt, [at]))
        tot = b.add(tot, b.zext(c, I64) if c.type != I64 else c)
    b.store(run, b.gep(offsets, [d]))
    return [b.add(run, tot), b.or_(same, b.icmp_signed("==", tot, row_len))]


def _prefetch_write(b, base, pos, ahead: int):
    """Prefetch for writing the element ``ahead`` places after ``base[pos]`` (no fault past the end)."""
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    p = b.bitcast(b.gep(base, [b.add(pos, const(I64, ahead))]), i8p)
    extern(b, "llvm.prefetch.p0", ir.VoidType(), [i8p, i32, i32, i32], p, const(i32, 1), const(i32, 3), const(i32, 1))


def _prefix(b, hist, nchunks, start, tables):
    """Counts -> offsets: digit-major, chunks in order within a digit (work item 0 only); a chunk's
    count is the sum of ``tables`` count tables (at least one) of ``nchunks * 256`` each."""
    zero, nb = const(I64, 0), const(I64, 256)
    run = b.alloca(I64)
    per = b.mul(nchunks, nb)
    with b.if_then(b.icmp_signed("==", start, zero)):
        b.store(zero, run)
        with for_range(b, zero, nb, name="pd") as d:
            with for_range(b, zero, nchunks, name="pc") as c:
                p = b.gep(hist, [b.add(b.mul(c, nb), d)])
                (t,) = range_loop(b, const(I64, 1), tables, [b.load(p)],
                                  lambda s, tot: [b.add(tot[0], b.load(b.gep(p, [b.mul(s, per)])))], "ps")
                r = b.load(run)
                b.store(r, p)
                b.store(b.add(r, t), run)
