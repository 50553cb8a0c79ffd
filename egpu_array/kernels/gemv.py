"""Generator of matrix-vector product kernels (BLAS's gemv) for real dtypes and row-major matrices:
the per-column products of the blocked Householder reductions (``_linalg_reduce``, ``_linalg_svd``),
which call them hundreds of times with a prepared argument block (no lazy graph per call).

``void NAME(i64* args, i64 start, i64 stop)``; args: matrix pointer (element ``[0, 0]``), row
stride (elements; columns are contiguous), rows ``m``, columns ``n``, vector pointer, result
pointer, rows or columns per work item.

* ``trans``: ``y = v^T A`` (``y[c] = sum_i v[i] A[i, c]``, ``v`` of ``m``): work item ``w`` owns
  the columns ``[w * chunk, (w + 1) * chunk)``, walks the rows in order, :data:`ROWS` at a time,
  and adds ``v[i] *`` each row's piece into its part of ``y`` (kept in cache): A is read once,
  along its rows.
* not ``trans``: ``y = A v`` (``y[i] = A[i, :] . v``, ``v`` of ``n``): work item ``w`` owns rows
  ``[w * chunk, (w + 1) * chunk)``, :data:`ROWS` dot products at a time (each ``v[j]`` loaded
  once for them); the dot products are reassociable (vectorized by LLVM).

The caller checks the pointers and extents (see ``_linalg_reduce.Gemv``).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I64, const, for_range, kernel_entry, mem_type
from .trsv import dots

__all__ = ["GemvSpec", "generate"]

#: rows added into ``y`` per pass of the transposed product (y is loaded and stored once per pass)
ROWS = 4


@dataclass(frozen=True)
class GemvSpec:
    """Matrix-vector product for one real floating dtype; ``trans``: ``v^T A``, else ``A v``."""
    dtype: str
    trans: bool

    kind = "gemv"

    @property
    def name(self) -> str:
        return f"gemv_{self.dtype}_{'t' if self.trans else 'n'}"


def generate(spec: GemvSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the matrix-vector kernel for ``spec`` (see the module docstring)."""
    from .elementwise import dtype_named
    fty = mem_type(dtype_named(spec.dtype))
    fn, b, slot, start, stop = kernel_entry(module, fname)
    a = b.inttoptr(slot(0), fty.as_pointer())
    lda, m, n = slot(1), slot(2), slot(3)
    v = b.inttoptr(slot(4), fty.as_pointer())
    y = b.inttoptr(slot(5), fty.as_pointer())
    chunk = slot(6)
    zero = const(I64, 0)

    def clip(x, limit):
        return b.select(b.icmp_signed("<", x, limit), x, limit)

    with for_range(b, start, stop, name="w") as w:
        lo = b.mul(w, chunk)
        hi = clip(b.add(lo, chunk), n if spec.trans else m)
        if spec.trans:
            with for_range(b, lo, hi, name="z") as c:
                b.store(ir.Constant(fty, 0.0), b.gep(y, [c]))
            quads = b.sdiv(m, const(I64, ROWS))
            with for_range(b, zero, quads, name="q") as q:
                _add_rows(b, a, lda, v, y, b.mul(q, const(I64, ROWS)), ROWS, lo, hi)
            with for_range(b, b.mul(quads, const(I64, ROWS)), m, name="r") as i:
                _add_rows(b, a, lda, v, y, i, 1, lo, hi)
        else:
            quads = b.sdiv(b.sub(hi, lo), const(I64, ROWS))
            with for_range(b, zero, quads, name="q") as q:
                first = b.add(lo, b.mul(q, const(I64, ROWS)))
                rows = [b.add(first, const(I64, r)) for r in range(ROWS)]
                sums = dots(b, fty, [b.gep(a, [b.mul(i, lda)]) for i in rows], v, zero, n)
                for i, acc in zip(rows, sums):
                    b.store(acc, b.gep(y, [i]))
            with for_range(b, b.add(lo, b.mul(quads, const(I64, ROWS))), hi, name="r") as i:
                (acc,) = dots(b, fty, [b.gep(a, [b.mul(i, lda)])], v, zero, n)
                b.store(acc, b.gep(y, [i]))
    b.ret_void()
    return fn


def _add_rows(b: ir.IRBuilder, a, lda, v, y, first, count: int, lo, hi) -> None:
    """``y[lo:hi] += sum(v[first + r] * A[first + r, lo:hi] for r < count)``, rows in order."""
    coefs, rows = [], []
    for r in range(count):
        i = b.add(first, const(I64, r))
        coefs.append(b.load(b.gep(v, [i])))
        rows.append(b.gep(a, [b.mul(i, lda)]))
    with for_range(b, lo, hi, name="c") as c:
        yc = b.gep(y, [c])
        acc = b.load(yc)
        for vi, row in zip(coefs, rows):
            acc = b.fadd(acc, b.fmul(vi, b.load(b.gep(row, [c]))))
        b.store(acc, yc)

