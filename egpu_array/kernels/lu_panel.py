"""Generator of the LU panel kernel: unblocked LU with partial pivoting (LAPACK's getf2) of tall
real panels, one matrix per work item. The blocked LU (``_linalg_blocked``) factors each panel
of ``NB`` columns with it and does everything else with GEMMs.

``void NAME(i64* args, i64 start, i64 stop)``; args: panel pointer (``B`` matrices of ``w``
columns of ``m`` elements each, column-major: column ``j`` of matrix ``t`` starts at element
``(t * w + j) * m``), ``m``, ``w``, order pointer (int64, ``B x m``: row ``i`` of the result is
row ``order[i]`` of the input), swaps pointer (int64, ``B``: row exchanges made, for the sign of
the determinant). The caller guarantees ``m >= w >= 1`` and buffers of those sizes.

Pivot: the first entry of largest magnitude in the column (``|x| > best``, as LAPACK's idamax, so
NaN is never chosen over a number). A zero pivot leaves its column unscaled: the matrix is singular
and the zero stays on U's diagonal. Columns are contiguous, so the rank-1 updates are unit-stride
loops that LLVM vectorizes.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I64, const, for_range, intrinsic, kernel_entry, mem_type, while_loop
from .sort import _if

__all__ = ["LUPanelSpec", "generate"]


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
    zero, one, fzero = const(I64, 0), const(I64, 1), ir.Constant(fty, 0.0)
    at = lambda p, i: b.gep(p, [i])  # noqa: E731

    with for_range(b, start, stop, name="t") as t:
        base = at(data, b.mul(t, b.mul(w, m)))
        order = at(order_all, b.mul(t, m))
        col = lambda j: at(base, b.mul(j, m))  # noqa: E731
        with for_range(b, zero, m, name="o") as i:
            b.store(i, at(order, i))

        def column(s):
            j, nswaps = s
            cj = col(j)

            def scan(st):  # first entry of largest magnitude in rows j..m
                i, p, best = st
                v = intrinsic(b, "llvm.fabs", fty, b.load(at(cj, i)))
                better = b.fcmp_ordered(">", v, best)
                return [b.add(i, one), b.select(better, i, p), b.select(better, v, best)]
            first = intrinsic(b, "llvm.fabs", fty, b.load(at(cj, j)))
            _, p, _ = while_loop(b, [b.add(j, one), j, first], lambda st: b.icmp_signed("<", st[0], m), scan, "piv")
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
            with _if(b, b.fcmp_unordered("!=", piv, fzero)):
                with for_range(b, b.add(j, one), m, name="sc") as i:
                    b.store(b.fdiv(b.load(at(cj, i)), piv), at(cj, i))
            with for_range(b, b.add(j, one), w, name="up") as c:
                cc = col(c)
                f = b.load(at(cc, j))
                with for_range(b, b.add(j, one), m, name="r1") as i:
                    v = b.fsub(b.load(at(cc, i)), b.fmul(b.load(at(cj, i)), f))
                    b.store(v, at(cc, i))
            return [b.add(j, one), b.add(nswaps, b.zext(moved, I64))]

        _, total = while_loop(b, [zero, zero], lambda s: b.icmp_signed("<", s[0], w), column, "col")
        b.store(total, at(swaps_all, t))
    b.ret_void()
    return fn
