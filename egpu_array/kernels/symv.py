"""Generator of the symmetric matrix-vector product (BLAS's symv, lower triangle) for real dtypes
and row-major matrices: ``y = A v`` reading only ``A[i, j]`` with ``j <= i``, half the bytes of a
full product. The blocked tridiagonal reduction (``_linalg_reduce``) takes each column's product
with its symmetric trailing matrix through it.

``void NAME(i64* args, i64 start, i64 stop)``; args: matrix pointer (element ``[0, 0]``), row
stride (elements; columns are contiguous), order ``n``, vector pointer, result pointer. One work
item (``[0, 1)``) computes all of ``y``: each row ``i`` is read once, its part left of the
diagonal both dotted with ``v`` (into ``y[i]``) and added, times ``v[i]``, into ``y[:i]`` (the
upper triangle's share), :data:`ROWS` rows at a time so that ``y`` is loaded and stored once per
group; ``y`` and ``v`` stay in cache while ``A`` streams.

The caller checks the pointers and extents (see ``_linalg_reduce._Gemv``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from .irb import I64, const, for_range, kernel_entry, mem_type, range_loop
from .sort import _if

__all__ = ["SymvSpec", "generate", "ROWS"]

#: rows of the lower triangle read together (``y`` loaded and stored once per group)
ROWS = 4

_FAST = ("reassoc", "contract", "nsz")


@dataclass(frozen=True)
class SymvSpec:
    """Symmetric (lower) matrix-vector product for one real floating dtype."""
    dtype: str

    kind = "symv"

    @property
    def name(self) -> str:
        return f"symv_{self.dtype}"


def generate(spec: SymvSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the symmetric matrix-vector kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named, loop_metadata
    fty = mem_type(dtype_named(spec.dtype))
    lanes = 32 // np.dtype(spec.dtype).itemsize
    fn, b, slot, start, stop = kernel_entry(module, fname)
    a = b.inttoptr(slot(0), fty.as_pointer())
    lda, n = slot(1), slot(2)
    v = b.inttoptr(slot(3), fty.as_pointer())
    y = b.inttoptr(slot(4), fty.as_pointer())
    zero, fzero = const(I64, 0), ir.Constant(fty, 0.0)
    meta = loop_metadata(module, f"{fname}.rows", width=lanes)
    first = b.and_(b.icmp_signed("<=", start, zero), b.icmp_signed(">", stop, zero))

    with _if(b, first):                                 # work item 0 does it all
        with for_range(b, zero, n, name="z") as i:
            b.store(fzero, b.gep(y, [i]))
        groups = b.sdiv(n, const(I64, ROWS))
        with for_range(b, zero, groups, name="g") as g:
            _rows(b, fty, a, lda, v, y, b.mul(g, const(I64, ROWS)), ROWS, meta)
        with for_range(b, b.mul(groups, const(I64, ROWS)), n, name="r") as i:
            _rows(b, fty, a, lda, v, y, i, 1, loop_metadata(module, f"{fname}.one", width=lanes))
    b.ret_void()
    return fn



def _rows(b, fty, a, lda, v, y, i0, count: int, meta) -> None:
    """Rows ``i0 .. i0 + count`` of the lower triangle: the columns left of ``i0`` in one loop
    (each ``y[j]`` and ``v[j]`` loaded once for all the rows), then the small triangle at the
    diagonal; ``y[i] +=`` row ``i`` dotted with ``v``, ``y[j] += A[i, j] v[i]`` for ``j < i``."""
    rows = [b.gep(a, [b.mul(b.add(i0, const(I64, t)), lda)]) for t in range(count)]
    vis = [b.load(b.gep(v, [b.add(i0, const(I64, t))])) for t in range(count)]
    fzero = ir.Constant(fty, 0.0)

    def step(j, accs):
        aij = [b.load(b.gep(r, [j])) for r in rows]
        yj = b.gep(y, [j])
        add = b.load(yj)
        for x, vi in zip(aij, vis):
            add = b.fadd(add, b.fmul(x, vi, flags=_FAST), flags=_FAST)
        b.store(add, yj)
        vj = b.load(b.gep(v, [j]))
        return [b.fadd(acc, b.fmul(x, vj, flags=_FAST), flags=_FAST) for acc, x in zip(accs, aij)]
    accs = range_loop(b, const(I64, 0), i0, [fzero] * count, step, "rows", meta)
    for t in range(count):                              # the triangle: columns i0 .. i0 + t
        acc = accs[t]
        for u in range(t + 1):
            j = b.add(i0, const(I64, u))
            x = b.load(b.gep(rows[t], [j]))
            acc = b.fadd(acc, b.fmul(x, b.load(b.gep(v, [j]))))
            if u < t:
                yj = b.gep(y, [j])
                b.store(b.fadd(b.load(yj), b.fmul(x, vis[t])), yj)
        yi = b.gep(y, [b.add(i0, const(I64, t))])
        b.store(b.fadd(b.load(yi), acc), yi)
