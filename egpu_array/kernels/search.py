"""Generators of searching kernels: binary search (searchsorted, isin) and compaction passes
(nonzero, unique) whose output size was computed, and read back, beforehand.

All kernels are ``void NAME(i64* args, i64 start, i64 stop)``.

``search`` args: ``n1``, sorted-array pointer, sorter pointer (int64, or 0), values pointer, output
pointer. Work item ``w`` searches value ``w``. Sorter entries are wrapped (negative) and clamped to
``[0, n1)``, so bad permutations give wrong answers, never out-of-bounds reads. isin requires
``n1 >= 1`` (the caller handles an empty set).

``compact`` kernels (nonzero, unique) count results per chunk of the input, then fill each chunk's
results from its own offset: see kernels/compact_chunks.py.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I64, I8, const, for_range, kernel_entry, while_loop
from .sort import Keys
from .spec import CompactSpec, SearchSpec

__all__ = ["generate_search", "generate_compact"]


def generate_search(spec: SearchSpec, module: ir.Module, fname: str) -> ir.Function:
    """Binary search kernel for ``spec``."""
    fn, b, slot, start, stop = kernel_entry(module, fname)
    K = Keys(b, dtype_named(spec.dtype))
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

    with for_range(b, start, stop, name="w") as w:
        v = K.load(x2, w)

        def body(s):
            lo, hi = s
            mid = b.lshr(b.add(lo, hi), one)
            y = K.load(x1, pos_of(mid))
            right = b.not_(K.lt(v, y)) if spec.mode == "right" else K.lt(y, v)
            return [b.select(right, b.add(mid, one), lo), b.select(right, hi, mid)]

        lo, _hi = while_loop(b, [zero, n1], lambda s: b.icmp_signed("<", s[0], s[1]), body, "bs")
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
    b.ret_void()
    return fn


def generate_compact(spec: CompactSpec, module: ir.Module, fname: str) -> ir.Function:
    """Nonzero / unique compaction kernel for ``spec`` (the phases are in kernels/compact_chunks.py)."""
    from .compact_chunks import generate_compact_chunks
    fn, b, slot, start, stop = kernel_entry(module, fname)
    generate_compact_chunks(spec, b, slot, start, stop)
    b.ret_void()
    return fn
