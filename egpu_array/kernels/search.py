"""Generators of searching kernels: binary search (searchsorted, isin) and compaction passes
(nonzero, unique) whose output size was computed, and read back, beforehand.

All kernels are ``void NAME(i64* args, i64 start, i64 stop)``.

``search`` args: ``n1``, sorted-array pointer, sorter pointer (int64, or 0), values pointer, output
pointer. Work item ``w`` searches value ``w``; a kernel searches :data:`SEARCH_LANES` values side by
side, each by ``bit_length(n1)`` halving steps with a conditional move (no data-dependent branch:
1e7 int32 values in 143 keys 229 -> 40 ms, in 1e5 keys 750 -> 210 ms on 2 threads). Sorter entries are wrapped (negative) and clamped to
``[0, n1)``, so bad permutations give wrong answers, never out-of-bounds reads. isin requires
``n1 >= 1`` (the caller handles an empty set).

isin of integers (or bool) whose set spans a small range ``[lo, lo + nrange)`` uses a byte table
instead (host-memory-like devices: the caller reads the set's min and max back): mode ``"mark"``
(args ``nrange``, table, ``lo``, set pointer; work item ``w`` sets the byte of set element ``w``)
after the table was zeroed, then ``"in_table"``/``"notin_table"`` (args ``nrange``, table, ``lo``,
values pointer, output pointer; work item ``w`` looks value ``w`` up: one load, no search).
Values (and set elements) outside the range are not in the set (never read or written there).

``compact`` kernels (nonzero, unique) count results per chunk of the input, then fill each chunk's
results from its own offset: see kernels/compact_chunks.py.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I64, I8, const, for_range, kernel_entry, while_loop
from .sort import Keys
from .spec import CompactSpec, SearchSpec

__all__ = ["generate_search", "generate_compact", "SEARCH_LANES", "TABLE_MODES"]

#: values a search kernel looks up side by side
SEARCH_LANES = 8
#: the modes of isin by a table (the others search)
TABLE_MODES = ("mark", "in_table", "notin_table")


def generate_search(spec: SearchSpec, module: ir.Module, fname: str) -> ir.Function:
    """Binary search kernel for ``spec`` (or a table phase of isin: see the module)."""
    fn, b, slot, start, stop = kernel_entry(module, fname)
    K = Keys(b, dtype_named(spec.dtype))
    if spec.mode in TABLE_MODES:
        _table(spec, b, K, slot, start, stop)
        b.ret_void()
        return fn
    n1 = slot(0)
    x1 = K.ptr(slot(1))
    sorter = b.inttoptr(slot(2), I64.as_pointer())
    x2 = K.ptr(slot(3))
    zero, one = const(I64, 0), const(I64, 1)

    def pos_of(mid):
        if not spec.sorter:
            return mid
        p = b.load(b.gep(sorter, [mid]))
        p = b.select(b.icmp_signed("<", p, zero), b.add(p, n1), p)
        p = b.select(b.icmp_signed("<", p, zero), zero, p)
        last = b.sub(n1, one)
        return b.select(b.icmp_signed(">", p, last), last, p)

    unpredictable = module.add_metadata([])

    def before(v, i):  # sorted element i lies before v's position (a monotone predicate)
        y = K.load(x1, pos_of(i))
        return b.not_(K.lt(v, y)) if spec.mode == "right" else K.lt(y, v)

    def search(ws: list) -> None:
        """Search the values of work items ``ws`` side by side (independent chains of loads)."""
        vs = [K.load(x2, w) for w in ws]

        def body(s):  # each answer lies in [base, base + n]; halve n
            n = s[-1]
            half = b.lshr(n, one)
            bases = []
            for v, base in zip(vs, s[:-1]):
                # (marked unpredictable: else LLVM turns the select into a branch, mispredicted
                # half the time)
                pick = b.select(before(v, b.add(base, half)), b.add(base, half), base)
                pick.set_metadata("unpredictable", unpredictable)
                bases.append(pick)
            return bases + [b.sub(n, half)]

        # (the number of steps depends on n1 only, not on the data: no mispredicted loop exit)
        state = while_loop(b, [zero] * len(vs) + [n1], lambda s: b.icmp_signed(">", s[-1], one), body, "bs")
        last = b.icmp_signed(">", n1, zero)
        for w, v, base in zip(ws, vs, state[:-1]):
            lo = b.select(last, b.add(base, b.zext(b.and_(last, before(v, b.select(last, base, zero))), I64)), zero)
            if spec.mode in ("left", "right"):
                out = b.inttoptr(slot(4), I64.as_pointer())
                b.store(lo, b.gep(out, [w]))
            else:
                inside = b.icmp_signed("<", lo, n1)
                y = K.load(x1, pos_of(b.select(inside, lo, zero)))
                found = b.and_(inside, K.eq(y, v))
                if spec.mode == "notin":
                    found = b.not_(found)
                out = b.inttoptr(slot(4), I8.as_pointer())
                b.store(b.zext(found, I8), b.gep(out, [w]))

    # SEARCH_LANES values at a time (their loads overlap: the core keeps several cache misses and
    # compare chains in flight), then the rest one at a time
    groups = b.sdiv(b.sub(stop, start), const(I64, SEARCH_LANES))
    with for_range(b, const(I64, 0), groups, name="g") as g:
        first = b.add(start, b.mul(g, const(I64, SEARCH_LANES)))
        search([b.add(first, const(I64, k)) for k in range(SEARCH_LANES)])
    with for_range(b, b.add(start, b.mul(groups, const(I64, SEARCH_LANES))), stop, name="w") as w:
        search([w])
    b.ret_void()
    return fn


def _table(spec: SearchSpec, b, K, slot, start, stop) -> None:
    """The body of a table phase of isin (``mark``, ``in_table``, ``notin_table``)."""
    from .unique_bins import bin_of
    nrange, table, lo, src = slot(0), b.inttoptr(slot(1), I8.as_pointer()), slot(2), K.ptr(slot(3))
    with for_range(b, start, stop, name="w") as w:
        u = bin_of(b, K, K.load(src, w), lo)
        inside = b.icmp_unsigned("<", u, nrange)
        if spec.mode == "mark":  # (threads may mark one byte together: an atomic store of the same value)
            with b.if_then(inside):
                b.store_atomic(const(I8, 1), b.gep(table, [u]), "monotonic", 1)
        else:
            marked = b.icmp_unsigned("!=", b.load(b.gep(table, [b.select(inside, u, const(I64, 0))])), const(I8, 0))
            found = b.and_(inside, marked)
            if spec.mode == "notin_table":
                found = b.not_(found)
            b.store(b.zext(found, I8), b.gep(b.inttoptr(slot(4), I8.as_pointer()), [w]))


def generate_compact(spec: CompactSpec, module: ir.Module, fname: str) -> ir.Function:
    """Nonzero / unique compaction kernel for ``spec`` (the phases are in kernels/compact_chunks.py;
    unique by counting in kernels/unique_bins.py, by hashing in kernels/unique_hash.py)."""
    from .compact_chunks import generate_compact_chunks
    from .unique_bins import generate_unique_bins
    from .unique_hash import generate_unique_hash
    fn, b, slot, start, stop = kernel_entry(module, fname)
    generate = {"unique_bins": generate_unique_bins, "unique_hash": generate_unique_hash}.get(
        spec.op, generate_compact_chunks)
    generate(spec, b, slot, start, stop)
    b.ret_void()
    return fn
