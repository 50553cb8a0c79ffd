"""The unique_* functions of values with few distinct ones, by hashing (``CompactSpec`` op
``"unique_hash"``): a sort of the distinct values only, not of the data.

Each chunk of the input keeps a hash table of its values (open addressing, linear probing,
:data:`SLOTS` slots: a value's bits times a 64-bit odd constant, the top bits): keys (the values'
bits), counts (int32; 0: empty) and first indices. A chunk that meets more than :data:`LIMIT`
distinct values, a NaN (each NaN is distinct) or -0.0 (equal to 0.0, and the standard's sorted
result shows the zero that sorts first) stops and says so: the caller then sorts the data. Phases:

- ``table``: ``n``, ``chunk``, x, keys, counts, firsts (0 unless "indices" is wanted), filled
  (int64 per chunk: its distinct values, or -1 when it stopped). Work item ``c`` fills table
  ``c``;
- ``gather``: ``nchunks``, keys, counts, candidates (values), origins (int64: table slot
  ``c * SLOTS + s``). One work item writes every table's values in chunk order;
- (the caller sorts the candidates with their positions: values equal across chunks meet)
- ``emit``: ``m`` (candidates), sorted candidates, their positions, origins, counts, firsts,
  values, occurrence counts, indices, ranks (int64 per table slot: the value's result index,
  written for "inverse" or "ranks"; each output 0 where not wanted), distinct (one int64: the
  number of results). One work item walks the sorted candidates: a value unequal to the one
  before starts a result, whose count is the sum of its tables' counts and whose index the least
  of their first indices;
- ``inverse``: ``n``, ``chunk``, x, keys, counts, ranks, inverse: element ``i``'s value is looked
  up in its chunk's table;
- ``expand`` (sort by counting, with the values and occurrence counts of ``emit``): ``n``,
  ``count`` (distinct values), values, occurrence counts, out, ``chunk``, ``descending`` (0 or 1).
  Work item ``w`` writes ``out[w * chunk : (w + 1) * chunk]``: each value as often as it occurs,
  in ascending order (descending: the values taken from the last);
- ``offsets`` (stable argsort by counting, with the ranks of ``emit``; one work item):
  ``nchunks``, ``count``, counts, ranks, offsets (int64, ``nchunks * count``), ``descending``:
  chunk ``c``'s first output position for rank ``r`` at ``offsets[c * count + r]`` (rank-major,
  chunks in order; descending: rank ``count - 1 - r``);
- ``place``: ``n``, ``chunk``, x, keys, counts, ranks, offsets, out, ``count``, ``descending``.
  Work item ``c`` writes each element's position ``i`` at its rank's next offset, in order.
"""
from __future__ import annotations

from llvmlite import ir

from .compact_chunks import chunk_range
from .elementwise import dtype_named
from .irb import I64, const, for_range, range_loop, while_loop
from .sort import Keys, _if
from .spec import CompactSpec

__all__ = ["SLOTS", "LIMIT", "generate_unique_hash"]

I32 = ir.IntType(32)
#: slots of a chunk's table (keys, int32 counts and int64 first indices: 320 KiB for 8-byte
#: values, in L2). 2**14 rather than 2**12 or 2**13: 1e7 float32 of 1000 / 3000 / 6000 distinct
#: values, unique_counts 17 / 22 / 35 ms (2**13: 16 / 27 / 72 ms, the last sorted; 2**12: 17 / 70 / -)
SLOTS = 1 << 14
#: distinct values a chunk may hold (a table at most half full: short probe sequences)
LIMIT = SLOTS // 2
_LOG = SLOTS.bit_length() - 1
_MULT = 0x9E3779B97F4A7C15  # 2**64 / golden ratio, odd: Fibonacci hashing


def _bits(b, K, v):
    """The value's bits as an integer of its width."""
    return b.bitcast(v, ir.IntType(8 * K.dtype.itemsize)) if K.dtype.kind == "f" else v


def _home(b, bits):
    """The slot a value's probe sequence starts at: the top bits of ``bits * _MULT``."""
    wide = bits if bits.type.width == 64 else b.zext(bits, I64)
    return b.lshr(b.mul(wide, const(I64, _MULT)), const(I64, 64 - _LOG))


def _probe(b, keys, counts, base, bits):
    """The slot of table ``base`` that holds ``bits`` or the first empty one on its sequence."""
    mask = const(I64, SLOTS - 1)

    def taken_by_other(s):
        at = b.add(base, s[0])
        full = b.icmp_unsigned("!=", b.load(b.gep(counts, [at])), const(I32, 0))
        return b.and_(full, b.icmp_unsigned("!=", b.load(b.gep(keys, [at])), bits))
    (s,) = while_loop(b, [_home(b, bits)], taken_by_other, lambda s: [b.and_(b.add(s[0], const(I64, 1)), mask)],
                      "probe")
    return s


def _refused(b, K, bits):
    """Whether a value sends the data to the sort: NaN or -0.0 (floats only)."""
    if K.dtype.kind != "f":
        return const(ir.IntType(1), 0)
    w = bits.type.width
    sign = const(bits.type, 1 << (w - 1))
    exp_mask = {32: 0x7F800000, 64: 0x7FF0000000000000}[w]
    magnitude = b.and_(bits, const(bits.type, (1 << (w - 1)) - 1))
    nan = b.icmp_unsigned(">", magnitude, const(bits.type, exp_mask))
    return b.or_(nan, b.icmp_unsigned("==", bits, sign))


def generate_unique_hash(spec: CompactSpec, b, slot, start, stop) -> None:
    """Emit the body of phase ``spec.phase`` (see the module; builder in the entry block)."""
    K = Keys(b, dtype_named(spec.dtype))
    kty = ir.IntType(8 * K.dtype.itemsize)
    zero, one = const(I64, 0), const(I64, 1)
    ptr = lambda k, ty=I64: b.inttoptr(slot(k), ty.as_pointer())  # noqa: E731
    slots = const(I64, SLOTS)
    want = spec.outputs
    if spec.phase in ("table", "inverse", "place"):
        n, chunk, x, keys, counts = slot(0), slot(1), K.ptr(slot(2)), ptr(3, kty), ptr(4, I32)
        with for_range(b, start, stop, name="c") as c:
            e_lo, e_hi = chunk_range(b, c, chunk, n)
            base = b.mul(c, slots)
            if spec.phase == "table":
                _fill_table(b, K, x, keys, counts, ptr(5), ptr(6), c, base, e_lo, e_hi, want)
            else:  # each element's table slot: its rank (inverse) or its output position (place)
                ranks, target = ptr(5), ptr(6)
                found = _place(b, n, c, counts, ranks, target, ptr(7), slot(8), slot(9)) \
                    if spec.phase == "place" else (lambda i, at: b.store(b.load(b.gep(ranks, [at])),
                                                                         b.gep(target, [i])))
                with for_range(b, e_lo, e_hi, name="i") as i:
                    found(i, b.add(base, _probe(b, keys, counts, base, _bits(b, K, K.load(x, i)))))
        return
    if spec.phase == "gather":
        nchunks, keys, counts, cand, origins = slot(0), ptr(1, kty), ptr(2, I32), ptr(3, kty), ptr(4)
        with for_range(b, start, stop, name="w"):
            def per_slot(t, acc):
                full = b.icmp_unsigned("!=", b.load(b.gep(counts, [t])), const(I32, 0))
                with _if(b, full):
                    b.store(b.load(b.gep(keys, [t])), b.gep(cand, [acc[0]]))
                    b.store(t, b.gep(origins, [acc[0]]))
                return [b.add(acc[0], b.zext(full, I64))]
            range_loop(b, zero, b.mul(nchunks, slots), [zero], per_slot, "g")
        return
    if spec.phase == "emit":
        m, cand, perm, origins, counts, firsts = slot(0), ptr(1, kty), ptr(2), ptr(3), ptr(4, I32), ptr(5)
        values, occurrences, indices, ranks, distinct = ptr(6, kty), ptr(7), ptr(8), ptr(9), ptr(10)
        with for_range(b, start, stop, name="w"):
            def per_candidate(j, acc):
                k, prev = acc
                bits = b.load(b.gep(cand, [j]))
                o = b.load(b.gep(origins, [b.load(b.gep(perm, [j]))]))
                starts = b.or_(b.icmp_signed("==", j, zero), b.icmp_unsigned("!=", bits, prev))
                k = b.add(k, b.zext(starts, I64))
                cnt = b.zext(b.load(b.gep(counts, [o])), I64)
                if "values" in want:
                    b.store(bits, b.gep(values, [k]))
                if "counts" in want:
                    before = b.select(starts, zero, b.load(b.gep(occurrences, [k])))
                    b.store(b.add(before, cnt), b.gep(occurrences, [k]))
                if "indices" in want:
                    first = b.load(b.gep(firsts, [o]))
                    before = b.select(starts, first, b.load(b.gep(indices, [k])))
                    b.store(b.select(b.icmp_signed("<", first, before), first, before), b.gep(indices, [k]))
                if "inverse" in want or "ranks" in want:
                    b.store(k, b.gep(ranks, [o]))
                return [k, bits]
            k, _ = range_loop(b, zero, m, [const(I64, -1), const(kty, 0)], per_candidate, "m")
            b.store(b.add(k, one), distinct)
        return
    if spec.phase == "expand":
        _expand(b, K, slot, start, stop)
        return
    if spec.phase == "offsets":
        nchunks, count, counts, ranks, offsets, descending = slot(0), slot(1), ptr(2, I32), ptr(3), ptr(4), slot(5)
        with for_range(b, start, stop, name="w"):
            with for_range(b, zero, b.mul(nchunks, count), name="oz") as z:
                b.store(zero, b.gep(offsets, [z]))
            with for_range(b, zero, b.mul(nchunks, slots), name="ot") as t:
                cnt = b.load(b.gep(counts, [t]))
                with _if(b, b.icmp_unsigned("!=", cnt, const(I32, 0))):
                    c = b.lshr(t, const(I64, _LOG))
                    r = _ordered_rank(b, b.load(b.gep(ranks, [t])), count, descending)
                    b.store(b.zext(cnt, I64), b.gep(offsets, [b.add(b.mul(c, count), r)]))

            def per_rank(r, acc):
                def per_chunk(c, acc_):
                    at = b.gep(offsets, [b.add(b.mul(c, count), r)])
                    here = b.load(at)
                    b.store(acc_[0], at)
                    return [b.add(acc_[0], here)]
                return range_loop(b, zero, nchunks, acc, per_chunk, "oc")
            range_loop(b, zero, count, [zero], per_rank, "or")
        return


def _place(b, n, c, counts, ranks, offsets, out, count, descending):
    """The ``place`` step of element ``i`` found at table slot ``at``: its position goes to its
    rank's next offset in chunk ``c``'s row (a value not in the table, or a position past the
    end, only if the data changed since the table was filled: never written)."""
    row = b.gep(offsets, [b.mul(c, count)])

    def place(i, at):
        with _if(b, b.icmp_unsigned("!=", b.load(b.gep(counts, [at])), const(I32, 0))):
            op = b.gep(row, [_ordered_rank(b, b.load(b.gep(ranks, [at])), count, descending)])
            pos = b.load(op)
            b.store(b.add(pos, const(I64, 1)), op)
            with _if(b, b.icmp_unsigned("<", pos, n)):
                b.store(i, b.gep(out, [pos]))
    return place


def _ordered_rank(b, r, count, descending):
    """Rank ``r`` in the output's order (descending: from the last)."""
    return b.select(b.icmp_signed("!=", descending, const(I64, 0)), b.sub(b.sub(count, const(I64, 1)), r), r)


def _expand(b, K, slot, start, stop) -> None:
    """The ``expand`` phase (see the module)."""
    zero, one = const(I64, 0), const(I64, 1)
    n, count = slot(0), slot(1)
    values, occurrences, out = K.ptr(slot(2)), b.inttoptr(slot(3), I64.as_pointer()), K.ptr(slot(4))
    chunk, descending = slot(5), slot(6)

    def value_at(k):  # the k-th value of the output's order
        return _ordered_rank(b, k, count, descending)

    def times(k):  # (k clamped: the skip loop's test reads one past the last value)
        last = b.sub(count, one)
        return b.load(b.gep(occurrences, [value_at(b.select(b.icmp_signed("<", k, last), k, last))]))
    with for_range(b, start, stop, name="w") as w:
        lo, hi = chunk_range(b, w, chunk, n)
        # the value whose run holds position lo: skip the runs that end at or before it
        def before_lo(s):
            return b.and_(b.icmp_signed("<", s[0], count), b.icmp_signed("<=", b.add(s[1], times(s[0])), lo))
        k, run_start = while_loop(b, [zero, zero], before_lo,
                                  lambda s: [b.add(s[0], one), b.add(s[1], times(s[0]))], "skip")

        def run(s):  # value k_'s run starts at run_start; positions from pos on are not written yet
            k_, pos, start_k = s
            run_end = b.add(start_k, times(k_))
            end = b.select(b.icmp_signed("<", run_end, hi), run_end, hi)
            v = K.load(values, value_at(k_))
            with for_range(b, pos, end, name="f") as i:
                K.store(out, i, v)
            return [b.add(k_, one), end, run_end]
        while_loop(b, [k, lo, run_start], lambda s: b.icmp_signed("<", s[1], hi), run, "runs")


def _fill_table(b, K, x, keys, counts, firsts, filled, c, base, e_lo, e_hi, want) -> None:
    """The ``table`` phase for chunk ``c`` (elements ``[e_lo, e_hi)``, table ``base``)."""
    zero, one = const(I64, 0), const(I64, 1)
    with for_range(b, zero, const(I64, SLOTS), name="z") as z:
        b.store(const(I32, 0), b.gep(counts, [b.add(base, z)]))

    def more(s):
        return b.and_(b.icmp_signed("<", s[0], e_hi), b.icmp_signed(">=", s[1], zero))

    def element(s):
        i, used = s
        bits = _bits(b, K, K.load(x, i))
        at = b.add(base, _probe(b, keys, counts, base, bits))
        seen = b.load(b.gep(counts, [at]))
        new = b.icmp_unsigned("==", seen, const(I32, 0))
        b.store(b.add(seen, const(I32, 1)), b.gep(counts, [at]))
        with _if(b, new):
            b.store(bits, b.gep(keys, [at]))
            if "indices" in want:
                b.store(i, b.gep(firsts, [at]))
        used = b.add(used, b.zext(new, I64))
        stop_here = b.or_(_refused(b, K, bits), b.icmp_signed(">", used, const(I64, LIMIT)))
        return [b.add(i, one), b.select(stop_here, const(I64, -1), used)]
    _, used = while_loop(b, [e_lo, zero], more, element, "e")
    b.store(used, b.gep(filled, [c]))
