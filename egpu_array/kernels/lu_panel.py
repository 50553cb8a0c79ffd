"""Generator of the LU panel kernel: LU with partial pivoting (LAPACK's getf2, with delayed
updates) of tall real panels, one matrix per work item. The blocked LU (``_linalg_blocked``)
factors each panel of ``NB`` columns with it and does everything else with GEMMs.

``void NAME(i64* args, i64 start, i64 stop)``; args:

0. panel pointer: element ``[0, 0]`` of the first matrix's panel; rows of ``lda`` elements, the
   panel's ``w`` columns contiguous in each (row-major), matrix ``t`` at ``t * mstride``;
1. ``lda``; 2. ``mstride``; 3. ``m`` (rows); 4. ``w`` (columns);
5. ``left``, 6. ``right``: a row exchange also moves the ``left`` elements before the panel's
   columns and the ``right`` after them (the whole row of the matrix when the panel is factored in
   place; 0 and 0 for a host copy of the panel);
7. order pointer (int64, ``B x m``: row ``i`` of the result is row ``order[i]`` of the input);
8. swaps pointer (int64, ``B``: row exchanges made, for the sign of the determinant);
9. pivot pointer (int64, ``B x w``: LAPACK's ipiv, 0-based: step ``j`` exchanged rows ``j`` and
   ``ipiv[j]``).

The caller guarantees ``m >= w >= 1`` and buffers of those sizes.

Columns are factored in blocks of :data:`BLOCK` (one cache line of float64 per row): within a
block, one pass over the rows below the pivot scales the column and updates the block's later
columns; once the block is done, the panel's later columns get the block's rows of U (a forward
substitution) and one rank-BLOCK update of the rows below, so a panel larger than the cache is
streamed once per block instead of once per column, along its rows.

Pivot: the first entry of largest magnitude in the column (``|x| > best``, as LAPACK's idamax, so
NaN is never chosen over a number). The column is scaled by the pivot's reciprocal, or divided by
the pivot when the reciprocal would overflow (as LAPACK's getf2). A zero pivot leaves its column
unscaled: the matrix is singular and the zero stays on U's diagonal.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from .irb import I64, const, for_range, intrinsic, kernel_entry, mem_type, range_loop, subtract_rows, vector_loop, \
    while_loop
from .sort import _if

__all__ = ["LUPanelSpec", "generate", "BLOCK"]

#: columns factored together before one delayed (rank-BLOCK) update of the panel's later columns
BLOCK = 8


@dataclass(frozen=True)
class LUPanelSpec:
    """LU panel kernel for one real floating dtype."""
    dtype: str

    kind = "lu_panel"

    @property
    def name(self) -> str:
        return f"lu_panel_{self.dtype}"


class _Panel:
    """Addressing of one matrix's panel: ``at(i, j)`` points at element ``[i, j]``."""

    def __init__(self, b: ir.IRBuilder, base, lda):
        self.b, self.base, self.lda = b, base, lda

    def row(self, i):
        return self.b.gep(self.base, [self.b.mul(i, self.lda)])

    def at(self, i, j):
        return self.b.gep(self.row(i), [j])


def generate(spec: LUPanelSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the panel LU kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named
    fty = mem_type(dtype_named(spec.dtype))
    lanes = 32 // np.dtype(spec.dtype).itemsize
    fn, b, slot, start, stop = kernel_entry(module, fname)
    data = b.inttoptr(slot(0), fty.as_pointer())
    lda, mstride, m, w, left, right = (slot(k) for k in range(1, 7))
    order_all = b.inttoptr(slot(7), I64.as_pointer())
    swaps_all = b.inttoptr(slot(8), I64.as_pointer())
    ipiv_all = b.inttoptr(slot(9), I64.as_pointer())
    zero, nb = const(I64, 0), const(I64, BLOCK)

    with for_range(b, start, stop, name="t") as t:
        pan = _Panel(b, b.gep(data, [b.mul(t, mstride)]), lda)
        order = b.gep(order_all, [b.mul(t, m)])
        ipiv = b.gep(ipiv_all, [b.mul(t, w)])
        with for_range(b, zero, m, name="o") as i:
            b.store(i, b.gep(order, [i]))
        ext = (b.neg(left), b.add(w, right))

        def block(s):
            j0, nswaps = s
            end = b.select(b.icmp_signed("<", b.add(j0, nb), w), b.add(j0, nb), w)
            (nswaps,) = range_loop(
                b, j0, end, [nswaps],
                lambda j, st: [_column(b, fty, pan, order, ipiv, m, ext, j, end, st[0], lanes)], "col")
            with _if(b, b.icmp_signed("<", end, w)):          # a full block with columns after it
                _delayed_update(b, fty, pan, m, w, j0, end, lanes)
            return [end, nswaps]

        _, total = while_loop(b, [zero, zero], lambda s: b.icmp_signed("<", s[0], w), block, "blk")
        b.store(total, b.gep(swaps_all, [t]))
    b.ret_void()
    return fn


def _column(b, fty, pan, order, ipiv, m, ext, j, end, nswaps, lanes):
    """getf2's step for column ``j`` of a block ending at ``end``: pivot search, row exchange over
    the columns ``ext`` (and ``order``), then one pass over the rows below that scales the column
    and updates the block's columns ``j+1 .. end``; returns the new count of exchanges."""
    one = const(I64, 1)
    j1 = b.add(j, one)

    def scan(st):  # first entry of largest magnitude in rows j..m
        i, p, best = st
        v = intrinsic(b, "llvm.fabs", fty, b.load(pan.at(i, j)))
        better = b.fcmp_ordered(">", v, best)
        return [b.add(i, one), b.select(better, i, p), b.select(better, v, best)]
    first = intrinsic(b, "llvm.fabs", fty, b.load(pan.at(j, j)))
    _, p, _ = while_loop(b, [j1, j, first], lambda st: b.icmp_signed("<", st[0], m), scan, "piv")
    b.store(p, b.gep(ipiv, [j]))
    moved = b.icmp_signed("!=", p, j)
    with _if(b, moved):
        rj, rp = pan.row(j), pan.row(p)

        def swap(c):
            x, y = b.load(b.gep(rj, [c])), b.load(b.gep(rp, [c]))
            b.store(y, b.gep(rj, [c]))
            b.store(x, b.gep(rp, [c]))
        vector_loop(b, ext[0], ext[1], swap, "sw", lanes)
        oj, op = b.load(b.gep(order, [j])), b.load(b.gep(order, [p]))
        b.store(op, b.gep(order, [j]))
        b.store(oj, b.gep(order, [p]))
    piv = b.load(pan.at(j, j))
    scale = b.fcmp_unordered("!=", piv, ir.Constant(fty, 0.0))
    tiny = ir.Constant(fty, float(np.finfo(np.float32 if fty == ir.FloatType() else np.float64).tiny))
    recip = b.fcmp_ordered(">=", intrinsic(b, "llvm.fabs", fty, piv), tiny)
    inv = b.fdiv(ir.Constant(fty, 1.0), piv)
    rowj = pan.row(j)
    with for_range(b, j1, m, name="sc") as i:
        ri = pan.row(i)
        x = b.load(b.gep(ri, [j]))
        lij = b.select(scale, b.select(recip, b.fmul(x, inv), b.fdiv(x, piv)), x)
        b.store(lij, b.gep(ri, [j]))
        nl = b.fneg(lij)
        with for_range(b, j1, end, name="r1") as c:
            v = b.gep(ri, [c])
            b.store(intrinsic(b, "llvm.fma", fty, nl, b.load(b.gep(rowj, [c])), b.load(v)), v)
    return b.add(nswaps, b.zext(moved, I64))


def _delayed_update(b, fty, pan, m, w, j0, end, lanes):
    """Apply the factored block of :data:`BLOCK` columns ``j0 .. end`` to the panel's later columns:
    the block's rows by forward substitution with its unit lower triangle (U's rows), the rows
    below by one rank-BLOCK update, each row read and written once."""
    urows = [pan.row(b.add(j0, const(I64, s))) for s in range(BLOCK)]
    low = [[b.load(b.gep(urows[t], [b.add(j0, const(I64, s))])) for s in range(t)] for t in range(BLOCK)]

    def solve(c):
        xs = []
        for t in range(BLOCK):
            x = b.load(b.gep(urows[t], [c]))
            for s in range(t):
                x = intrinsic(b, "llvm.fma", fty, b.fneg(low[t][s]), xs[s], x)
            if t:
                b.store(x, b.gep(urows[t], [c]))
            xs.append(x)
    vector_loop(b, end, w, solve, "u", lanes)

    with for_range(b, end, m, name="rk") as i:
        ri = pan.row(i)
        nls = [b.fneg(b.load(b.gep(ri, [b.add(j0, const(I64, s))]))) for s in range(BLOCK)]
        subtract_rows(b, fty, ri, nls, urows, end, w, "rk8", lanes)
