"""Generator of the triangular-solve kernel (BLAS's trsv, row oriented) for real dtypes: ``T x = b``
in place for a batch of right-hand sides, one vector per work item. The blocked LU's ``lu_solve``
uses it for a few right-hand sides, where the blockwise GEMM form spends its time in launches.

``void NAME(i64* args, i64 start, i64 stop)``; args: matrices pointer (``B`` contiguous ``n x n``
row-major matrices), ``n``, right-hand sides per matrix ``r``, vectors pointer (``B * r``
contiguous vectors of ``n`` elements; vector ``t`` belongs to matrix ``t // r``).

Lower (forward): ``x[i] = (x[i] - T[i, :i] . x[:i]) / T[i, i]``, from the first row; upper (back):
``x[i] = (x[i] - T[i, i+1:] . x[i+1:]) / T[i, i]``, from the last. With ``unit`` the diagonal is
taken as 1 and never read. Each dot product reads a contiguous row of T: the loop is marked
reassociable so LLVM vectorizes it (several vector accumulators, as a BLAS dot does). The caller
checks that the diagonal has no zero (a singular matrix is an error before the launch).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I64, const, for_range, kernel_entry, mem_type, range_loop

__all__ = ["TrsvSpec", "generate"]

_FAST = ("reassoc", "contract")


@dataclass(frozen=True)
class TrsvSpec:
    """Triangular solve for one real floating dtype; ``lower`` (else upper), ``unit`` diagonal."""
    dtype: str
    lower: bool
    unit: bool

    kind = "trsv"

    @property
    def name(self) -> str:
        return f"trsv_{self.dtype}_{'l' if self.lower else 'u'}{'u' if self.unit else 'n'}"


def generate(spec: TrsvSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the triangular-solve kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named
    fty = mem_type(dtype_named(spec.dtype))
    fn, b, slot, start, stop = kernel_entry(module, fname)
    mats = b.inttoptr(slot(0), fty.as_pointer())
    n, nrhs = slot(1), slot(2)
    vecs = b.inttoptr(slot(3), fty.as_pointer())
    zero, one = const(I64, 0), const(I64, 1)

    with for_range(b, start, stop, name="t") as t:
        a = b.gep(mats, [b.mul(b.sdiv(t, nrhs), b.mul(n, n))])
        x = b.gep(vecs, [b.mul(t, n)])
        with for_range(b, zero, n, name="s") as s:
            i = s if spec.lower else b.sub(b.sub(n, one), s)
            row = b.gep(a, [b.mul(i, n)])
            lo, hi = (zero, i) if spec.lower else (b.add(i, one), n)
            (acc,) = dots(b, fty, [row], x, lo, hi)
            v = b.fsub(b.load(b.gep(x, [i])), acc)
            if not spec.unit:
                v = b.fdiv(v, b.load(b.gep(row, [i])))
            b.store(v, b.gep(x, [i]))
    b.ret_void()
    return fn


def dots(b: ir.IRBuilder, fty: ir.Type, rows: list, x, lo, hi) -> list:
    """``[sum(row[lo:hi] * x[lo:hi]) for row in rows]`` in one loop (``x[j]`` loaded once per
    ``j``), reassociable (vectorized by LLVM)."""
    def step(j, accs):
        xj = b.load(b.gep(x, [j]))
        return [b.fadd(acc, b.fmul(b.load(b.gep(row, [j])), xj, flags=_FAST), flags=_FAST)
                for acc, row in zip(accs, rows)]
    return range_loop(b, lo, hi, [ir.Constant(fty, 0.0)] * len(rows), step, "dot")
