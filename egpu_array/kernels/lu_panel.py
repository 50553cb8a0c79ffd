"""Generator of the LU panel kernel: LU with partial pivoting (LAPACK's getf2, with delayed
updates) of tall real panels, one matrix per work item. The blocked LU (``_linalg_blocked``) factors each panel
of ``NB`` columns with it and does everything else with GEMMs.

``void NAME(i64* args, i64 start, i64 stop)``; args: panel pointer (``B`` matrices of ``w``
columns of ``m`` elements each, column-major: column ``j`` of matrix ``t`` starts at element
``(t * w + j) * m``), ``m``, ``w``, order pointer (int64, ``B x m``: row ``i`` of the result is
row ``order[i]`` of the input), swaps pointer (int64, ``B``: row exchanges made, for the sign of
the determinant), pivot pointer (int64, ``B x w``: LAPACK's ipiv, 0-based: step ``j`` exchanged
rows ``j`` and ``ipiv[j]``). The caller guarantees ``m >= w >= 1`` and buffers of those sizes.

Columns are factored in blocks of :data:`BLOCK`: within a block each column's rank-1 update
reaches only the block's later columns; once the block is done, every later column of the panel
gets the block's rows of U (a forward substitution) and one rank-BLOCK update of the rows below,
so a panel larger than the cache is streamed once per block instead of once per column.

Pivot: the first entry of largest magnitude in the column (``|x| > best``, as LAPACK's idamax, so
NaN is never chosen over a number). A zero pivot leaves its column unscaled: the matrix is singular
and the zero stays on U's diagonal. Columns are contiguous, so the updates are unit-stride
loops that LLVM vectorizes.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I64, const, for_range, intrinsic, kernel_entry, mem_type, range_loop, while_loop
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


def generate(spec: LUPanelSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the panel LU kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named
    fty = mem_type(dtype_named(spec.dtype))
    fn, b, slot, start, stop = kernel_entry(module, fname)
    data = b.inttoptr(slot(0), fty.as_pointer())
    m, w = slot(1), slot(2)
    order_all = b.inttoptr(slot(3), I64.as_pointer())
    swaps_all = b.inttoptr(slot(4), I64.as_pointer())
    ipiv_all = b.inttoptr(slot(5), I64.as_pointer())
    zero, one, fzero = const(I64, 0), const(I64, 1), ir.Constant(fty, 0.0)
    at = lambda p, i: b.gep(p, [i])  # noqa: E731
    nb = const(I64, BLOCK)

    with for_range(b, start, stop, name="t") as t:
        base = at(data, b.mul(t, b.mul(w, m)))
        order = at(order_all, b.mul(t, m))
        ipiv = at(ipiv_all, b.mul(t, w))
        col = lambda j: at(base, b.mul(j, m))  # noqa: E731
        with for_range(b, zero, m, name="o") as i:
            b.store(i, at(order, i))

        def block(s):
            j0, nswaps = s
            end = b.select(b.icmp_signed("<", b.add(j0, nb), w), b.add(j0, nb), w)
            (nswaps,) = range_loop(b, j0, end, [nswaps],
                                   lambda j, st: [_column(b, fty, col, order, ipiv, m, w, j, end, st[0])], "col")
            with _if(b, b.icmp_signed("<", end, w)):          # a full block with columns after it
                _delayed_update(b, fty, col, m, w, j0, end)
            return [end, nswaps]

        _, total = while_loop(b, [zero, zero], lambda s: b.icmp_signed("<", s[0], w), block, "blk")
        b.store(total, at(swaps_all, t))
    b.ret_void()
    return fn


def _column(b, fty, col, order, ipiv, m, w, j, end, nswaps):
    """getf2's step for column ``j`` of a block ending at ``end``: pivot search, row exchange over
    all ``w`` columns (and ``order``), scaling below the pivot, rank-1 update of the block's
    columns ``j+1 .. end``; returns the new count of exchanges."""
    one, zero = const(I64, 1), const(I64, 0)
    at = lambda p, i: b.gep(p, [i])  # noqa: E731
    cj = col(j)

    def scan(st):  # first entry of largest magnitude in rows j..m
        i, p, best = st
        v = intrinsic(b, "llvm.fabs", fty, b.load(at(cj, i)))
        better = b.fcmp_ordered(">", v, best)
        return [b.add(i, one), b.select(better, i, p), b.select(better, v, best)]
    first = intrinsic(b, "llvm.fabs", fty, b.load(at(cj, j)))
    _, p, _ = while_loop(b, [b.add(j, one), j, first], lambda st: b.icmp_signed("<", st[0], m), scan, "piv")
    b.store(p, at(ipiv, j))
    moved = b.icmp_signed("!=", p, j)
    with _if(b, moved):
        with for_range(b, zero, w, name="sw") as c:
            cc = col(c)
            x, y = b.load(at(cc, j)), b.load(at(cc, p))
            b.store(y, at(cc, j))
            b.store(x, at(cc, p))
        oj, op = b.load(at(order, j)), b.load(at(order, p))
        b.store(op, at(order, j))
        b.store(oj, at(order, p))
    piv = b.load(at(cj, j))
    with _if(b, b.fcmp_unordered("!=", piv, ir.Constant(fty, 0.0))):
        with for_range(b, b.add(j, one), m, name="sc") as i:
            b.store(b.fdiv(b.load(at(cj, i)), piv), at(cj, i))
    with for_range(b, b.add(j, one), end, name="up") as c:
        cc = col(c)
        f = b.load(at(cc, j))
        with for_range(b, b.add(j, one), m, name="r1") as i:
            v = b.fsub(b.load(at(cc, i)), b.fmul(b.load(at(cj, i)), f))
            b.store(v, at(cc, i))
    return b.add(nswaps, b.zext(moved, I64))


def _delayed_update(b, fty, col, m, w, j0, end):
    """Apply the factored block of :data:`BLOCK` columns ``j0 .. end`` to every later column ``c``:
    rows ``j0 .. end`` by forward substitution with the block's unit lower triangle (U's rows), the
    rows below by one rank-BLOCK update, so each later column is read once per block."""
    at = lambda p, i: b.gep(p, [i])  # noqa: E731
    lcols = [col(b.add(j0, const(I64, s))) for s in range(BLOCK)]
    with for_range(b, end, w, name="dc") as c:
        cc = col(c)
        us = []
        for t in range(BLOCK):
            r = b.add(j0, const(I64, t))
            u = b.load(at(cc, r))
            for s in range(t):
                u = b.fsub(u, b.fmul(b.load(at(lcols[s], r)), us[s]))
            b.store(u, at(cc, r))
            us.append(u)
        negs = [b.fneg(u) for u in us]
        with for_range(b, end, m, name="rk") as i:
            acc = b.load(at(cc, i))
            for lc, nu in zip(lcols, negs):
                acc = intrinsic(b, "llvm.fma", fty, b.load(at(lc, i)), nu, acc)
            b.store(acc, at(cc, i))
