"""Generators of searching kernels: binary search (searchsorted, isin) and compaction passes
(nonzero, unique) whose output size was computed, and read back, beforehand.

All kernels are ``void NAME(i64* args, i64 start, i64 stop)``.

``search`` args: ``n1``, sorted-array pointer, sorter pointer (int64, or 0), values pointer, output
pointer. Work item ``w`` searches value ``w``. Sorter entries are wrapped (negative) and clamped to
``[0, n1)``, so bad permutations give wrong answers, never out-of-bounds reads. isin requires
``n1 >= 1`` (the caller handles an empty set).

``compact`` args: ``n``, ``count`` (the number of results, computed and read back before), input
pointer, then per op: nonzero: output pointer (``ndim x count`` int64, dimension-major) and the
``ndim`` extents; unique: positions pointer (int64), then output pointers for values, indices,
counts, inverse (0 where not requested). One work item does the whole sequential pass; writes are
guarded by ``count``.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I8, I64, const, for_range
from .sort import Keys, _if, _while
from .spec import CompactSpec, SearchSpec

__all__ = ["generate_search", "generate_compact"]


def _entry(module, fname):
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    return fn, b, (lambda k: b.load(b.gep(args, [const(I64, k)]))), start, stop


def generate_search(spec: SearchSpec, module: ir.Module, fname: str) -> ir.Function:
    """Binary search kernel for ``spec``."""
    fn, b, slot, start, stop = _entry(module, fname)
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

        lo, _hi = _while(b, [zero, n1], lambda s: b.icmp_signed("<", s[0], s[1]), body, "bs")
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


def _nonzero_of(b, K, v):
    kind = K.dtype.kind
    if kind == "c":
        z = ir.Constant(v[0].type, 0.0)
        return b.or_(b.fcmp_unordered("!=", v[0], z), b.fcmp_unordered("!=", v[1], z))
    if kind == "f":
        return b.fcmp_unordered("!=", v, ir.Constant(v.type, 0.0))
    return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))


def generate_compact(spec: CompactSpec, module: ir.Module, fname: str) -> ir.Function:
    """Nonzero / unique compaction kernel for ``spec`` (only work item 0 does work)."""
    fn, b, slot, start, stop = _entry(module, fname)
    K = Keys(b, dtype_named(spec.dtype))
    n, count = slot(0), slot(1)
    x = K.ptr(slot(2))
    zero, one = const(I64, 0), const(I64, 1)
    with _if(b, b.icmp_signed("==", start, zero)):
        if spec.op == "nonzero":
            out = b.inttoptr(slot(3), I64.as_pointer())
            shape = [slot(4 + d) for d in range(spec.ndim)]

            def body(s):
                i, k = s
                nz = b.and_(_nonzero_of(b, K, K.load(x, i)), b.icmp_signed("<", k, count))
                with _if(b, nz):
                    rem = i
                    for d in range(spec.ndim - 1, -1, -1):
                        c = b.srem(rem, shape[d]) if d else rem
                        rem = b.sdiv(rem, shape[d])
                        b.store(c, b.gep(out, [b.add(b.mul(const(I64, d), count), k)]))
                return [b.add(i, one), b.add(k, b.zext(nz, I64))]

            _while(b, [zero, zero], lambda s: b.icmp_signed("<", s[0], n), body, "nz")
        else:
            pos = b.inttoptr(slot(3), I64.as_pointer())
            want = spec.outputs
            vals = K.ptr(slot(4))
            ptrs = {name: b.inttoptr(slot(5 + j), I64.as_pointer())
                    for j, name in enumerate(("indices", "counts", "inverse"))}

            def body(s):
                i, k = s
                v = K.load(x, i)
                prev = K.load(x, b.select(b.icmp_signed(">", i, zero), b.sub(i, one), zero))
                new = b.or_(b.icmp_signed("==", i, zero), b.not_(K.eq(v, prev)))
                k2 = b.add(k, b.zext(new, I64))
                slot_k = b.sub(k2, one)
                with _if(b, b.icmp_signed("<", slot_k, count)):
                    p = b.load(b.gep(pos, [i])) if ("indices" in want or "inverse" in want) else None
                    with _if(b, new):
                        if "values" in want:
                            K.store(vals, slot_k, v)
                        if "indices" in want:
                            b.store(p, b.gep(ptrs["indices"], [slot_k]))
                        if "counts" in want:
                            b.store(zero, b.gep(ptrs["counts"], [slot_k]))
                    if "counts" in want:
                        cp = b.gep(ptrs["counts"], [slot_k])
                        b.store(b.add(b.load(cp), one), cp)
                    if "inverse" in want:
                        with _if(b, b.icmp_unsigned("<", p, n)):
                            b.store(slot_k, b.gep(ptrs["inverse"], [p]))
                return [b.add(i, one), k2]

            _while(b, [zero, zero], lambda s: b.icmp_signed("<", s[0], n), body, "uq")
    b.ret_void()
    return fn
