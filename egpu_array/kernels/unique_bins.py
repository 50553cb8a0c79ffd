"""The unique_* functions of integers in a small range, by counting (``CompactSpec`` op
``"unique_bins"``): no sort.

Values ``v`` fall in ``nbins`` bins ``v - lo`` (the caller's ``lo`` and ``nbins``: the dtype's
whole range for 8-bit integers and bool, else the data's min and max read back). A bin outside
``[0, nbins)`` is never written (the data changed since its min and max were read): it is
skipped. Phases, each over work items:

- ``bins``: ``n``, ``chunk``, x, ``lo``, ``nbins``, counts (int32, ``nbins`` per chunk), firsts
  (int64, ``nbins`` per chunk; 0 unless "indices" is wanted). Work item ``c`` zeroes its own
  counts and counts elements ``[c * chunk, min((c + 1) * chunk, n))``; a bin's first element in
  the chunk stores its index in firsts;
- ``merge``: ``nbins``, ``nchunks`` (of ``bins``), counts, firsts, ``bin_chunk``, distinct (int64
  per work item). Work item ``w`` sums bins ``[w * bin_chunk, ...)`` over the chunks into chunk
  0's row, keeps the first chunk's first index that has one, and stores how many bins are not
  empty;
- ``emit``: ``nbins``, ``lo``, ``count`` (the total read back), counts, firsts, ``bin_chunk``,
  distinct, values, indices, occurrence counts, ranks (int64 per bin: the result slot of the
  bin's value; each output 0 where not wanted). Work item ``w`` writes its non-empty bins from the
  sum of ``distinct`` before it (slots below ``count`` only);
- ``inverse``: ``n``, ``chunk``, x, ``lo``, ``nbins``, ranks, inverse: element ``i``'s rank.
"""
from __future__ import annotations

from llvmlite import ir

from .compact_chunks import chunk_range
from .elementwise import dtype_named
from .irb import I64, const, for_range, mem_type, range_loop
from .sort import Keys, _if
from .spec import CompactSpec

__all__ = ["generate_unique_bins", "bin_of"]

I32 = ir.IntType(32)


def bin_of(b, K, v, lo):
    """``v - lo`` in int64 (wrapping: a value outside the bins gives a bin outside them)."""
    wide = b.sext(v, I64) if K.dtype.kind == "i" else b.zext(v, I64)
    return b.sub(wide, lo)


def _inside(b, bin_, nbins):
    return b.icmp_unsigned("<", bin_, nbins)


def generate_unique_bins(spec: CompactSpec, b, slot, start, stop) -> None:
    """Emit the body of phase ``spec.phase`` (see the module; builder in the entry block)."""
    K = Keys(b, dtype_named(spec.dtype))
    zero = const(I64, 0)
    ptr = lambda k, ty=I64: b.inttoptr(slot(k), ty.as_pointer())  # noqa: E731
    want = spec.outputs
    if spec.phase in ("bins", "inverse"):
        n, chunk, x, lo, nbins = slot(0), slot(1), K.ptr(slot(2)), slot(3), slot(4)
        with for_range(b, start, stop, name="c") as c:
            e_lo, e_hi = chunk_range(b, c, chunk, n)
            if spec.phase == "inverse":
                ranks, inverse = ptr(5), ptr(6)
                with for_range(b, e_lo, e_hi, name="i") as i:
                    bin_ = bin_of(b, K, K.load(x, i), lo)
                    with _if(b, _inside(b, bin_, nbins)):
                        b.store(b.load(b.gep(ranks, [bin_])), b.gep(inverse, [i]))
            else:
                counts = b.gep(ptr(5, I32), [b.mul(c, nbins)])
                firsts = b.gep(ptr(6), [b.mul(c, nbins)])
                with for_range(b, zero, nbins, name="z") as z:
                    b.store(const(I32, 0), b.gep(counts, [z]))
                with for_range(b, e_lo, e_hi, name="i") as i:
                    bin_ = bin_of(b, K, K.load(x, i), lo)
                    with _if(b, _inside(b, bin_, nbins)):
                        at = b.gep(counts, [bin_])
                        seen = b.load(at)
                        b.store(b.add(seen, const(I32, 1)), at)
                        if "indices" in want:
                            with _if(b, b.icmp_unsigned("==", seen, const(I32, 0))):
                                b.store(i, b.gep(firsts, [bin_]))
        return
    if spec.phase == "merge":
        nbins, nchunks, counts, firsts, bin_chunk, distinct = slot(0), slot(1), ptr(2, I32), ptr(3), slot(4), ptr(5)
        with for_range(b, start, stop, name="w") as w:
            b_lo, b_hi = chunk_range(b, w, bin_chunk, nbins)

            def per_bin(k, acc):
                def per_chunk(c, state):
                    total, first = state
                    at = b.add(b.mul(c, nbins), k)
                    cnt = b.zext(b.load(b.gep(counts, [at])), I64)
                    if "indices" in want:  # the first chunk that holds the value has its first index
                        mine = b.load(b.gep(firsts, [at]))
                        first = b.select(b.and_(b.icmp_signed("==", total, zero), b.icmp_signed("!=", cnt, zero)),
                                         mine, first)
                    return [b.add(total, cnt), first]
                total, first = range_loop(b, zero, nchunks, [zero, zero], per_chunk, "mc")
                # (chunk 0's row holds the totals; int32: a total of n < 2**31 elements, see _set)
                b.store(b.trunc(total, I32), b.gep(counts, [k]))
                if "indices" in want:
                    b.store(first, b.gep(firsts, [k]))
                return [b.add(acc[0], b.zext(b.icmp_signed("!=", total, zero), I64))]
            (found,) = range_loop(b, b_lo, b_hi, [zero], per_bin, "mb")
            b.store(found, b.gep(distinct, [w]))
        return
    # emit
    nbins, lo, count, counts, firsts = slot(0), slot(1), slot(2), ptr(3, I32), ptr(4)
    bin_chunk, distinct = slot(5), ptr(6)
    values, indices, occurrences, ranks = K.ptr(slot(7)), ptr(8), ptr(9), ptr(10)
    with for_range(b, start, stop, name="w") as w:
        b_lo, b_hi = chunk_range(b, w, bin_chunk, nbins)
        (k0,) = range_loop(b, zero, w, [zero], lambda j, acc: [b.add(acc[0], b.load(b.gep(distinct, [j])))], "off")

        def per_bin(k, acc):
            slot_k = acc[0]
            cnt = b.zext(b.load(b.gep(counts, [k])), I64)
            full = b.icmp_signed("!=", cnt, zero)
            with _if(b, b.and_(full, b.icmp_signed("<", slot_k, count))):
                if "values" in want:
                    K.store(values, slot_k, _narrow(b, b.add(lo, k), mem_type(K.dtype)))
                if "indices" in want:
                    b.store(b.load(b.gep(firsts, [k])), b.gep(indices, [slot_k]))
                if "counts" in want:
                    b.store(cnt, b.gep(occurrences, [slot_k]))
                if "inverse" in want:
                    b.store(slot_k, b.gep(ranks, [k]))
            return [b.add(slot_k, b.zext(full, I64))]
        range_loop(b, b_lo, b_hi, [k0], per_bin, "eb")


def _narrow(b, v, ty):
    """The int64 ``v`` in the element's integer type (its low bits)."""
    return v if ty.width == 64 else b.trunc(v, ty)
