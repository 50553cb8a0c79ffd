"""Generator of the triangular solve with many right-hand sides (BLAS's trsm, left side, unit
lower triangle, no transpose) for real dtypes on row-major matrices, in place: ``B := L^-1 B``.

The blocked LU (``_linalg_blocked``) computes each panel's row block of U with it,
``U12 = L11^-1 A12``, where ``L11`` (``w x w``) and ``A12`` (``w x ncols``) are both parts of the
matrix being factored (disjoint ones), so nothing is copied and no inverse is formed.

``void NAME(i64* args, i64 start, i64 stop)``; args: ``L`` pointer (element ``[0, 0]``), its row
stride, ``B`` pointer, its row stride, ``w``, ``ncols``, columns per work item ``chunk``.

Work item ``t`` owns the columns ``[t * chunk, (t + 1) * chunk)`` of every row of B (a slab that
stays in cache while it is solved): row ``r`` becomes ``B[r] - sum_{s < r} L[r, s] B[s]``, the
rows ``s`` taken :data:`GROUP` at a time so each pass loads and stores row ``r``'s piece once per
group; the column loop is the vectorized one. The caller checks pointers and extents.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from llvmlite import ir

from .irb import I64, const, for_range, kernel_entry, mem_type, subtract_rows

__all__ = ["TrsmSpec", "generate", "GROUP"]

#: rows of B subtracted from a row per pass over its columns
GROUP = 4


@dataclass(frozen=True)
class TrsmSpec:
    """Unit lower left triangular solve, in place, for one real floating dtype."""
    dtype: str

    kind = "trsm"

    @property
    def name(self) -> str:
        return f"trsm_{self.dtype}"


def generate(spec: TrsmSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the triangular solve kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named
    fty = mem_type(dtype_named(spec.dtype))
    lanes = 32 // np.dtype(spec.dtype).itemsize
    fn, b, slot, start, stop = kernel_entry(module, fname)
    lmat = b.inttoptr(slot(0), fty.as_pointer())
    ldl = slot(1)
    bmat = b.inttoptr(slot(2), fty.as_pointer())
    ldb, w, ncols, chunk = slot(3), slot(4), slot(5), slot(6)
    one, group = const(I64, 1), const(I64, GROUP)

    def row_of(mat, ld, r):
        return b.gep(mat, [b.mul(r, ld)])

    def subtract(rowr, lrow, srcs, lo, hi):
        """``rowr[lo:hi] -= sum(L[r, s] * B[s, lo:hi] for s in srcs)`` (a loop of its own ID)."""
        negs = [b.fneg(b.load(b.gep(lrow, [s]))) for s in srcs]
        subtract_rows(b, fty, rowr, negs, [row_of(bmat, ldb, s) for s in srcs], lo, hi, f"c{len(srcs)}", lanes)

    with for_range(b, start, stop, name="t") as t:
        lo = b.mul(t, chunk)
        hi = b.add(lo, chunk)
        hi = b.select(b.icmp_signed("<", hi, ncols), hi, ncols)
        with for_range(b, one, w, name="r") as r:
            rowr, lrow = row_of(bmat, ldb, r), row_of(lmat, ldl, r)
            full = b.sdiv(r, group)
            with for_range(b, const(I64, 0), full, name="g") as g:
                s0 = b.mul(g, group)
                subtract(rowr, lrow, [b.add(s0, const(I64, q)) for q in range(GROUP)], lo, hi)
            with for_range(b, b.mul(full, group), r, name="s") as s:
                subtract(rowr, lrow, [s], lo, hi)
    b.ret_void()
    return fn
