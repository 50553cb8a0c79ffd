"""Generator of the fused row softmax kernel (host CPU form): ``exp(x - max) / sum(exp(x - max))``
over the last axis, one row per work item.

The unfused graph costs three kernels that read ``x`` three times and evaluate ``exp`` twice (the
sum's reduction absorbs one, the elementwise division recomputes it). Here a row is walked three
times while it sits in the core's cache: its maximum; ``e = exp(x - max)`` stored into the output
while the sum accumulates (float64 accumulators for float32 rows); then ``out = e / sum`` in place.
Memory sees ``x`` read once and the result written once, and ``exp`` runs once per element.

Same values as the unfused kernels up to the order of the sum: the maximum uses ``llvm.maxnum``
(NaN-ignoring; a row holding a NaN still comes out all NaN, through the sum), ``exp`` is
``kernels.math``'s, the sum is rounded to the row's dtype before the division (as the sum
reduction's result is).

Kernel ABI: ``void k(i64* args, i64 start, i64 stop)`` over rows; ``args`` = [columns, x pointer,
x row stride, out pointer, out row stride] (strides in elements; both rows have unit stride).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .elementwise import loop_metadata
from .irb import F32, F64, I64, const, for_range, intrinsic, kernel_entry, range_loop
from .math import emit_math

__all__ = ["SoftmaxRowsSpec", "generate"]


@dataclass(frozen=True)
class SoftmaxRowsSpec:
    """Row softmax over contiguous rows of ``dtype`` ("float32" or "float64")."""

    dtype: str

    kind = "softmax_rows"

    @property
    def name(self) -> str:
        return f"softmax_rows_{self.dtype}"


def generate(spec: SoftmaxRowsSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the kernel for ``spec`` to ``module`` under the name ``fname``."""
    ft = F32 if spec.dtype == "float32" else F64
    fn, b, slot, start, stop = kernel_entry(module, fname)
    ncols = slot(0)
    xp = b.inttoptr(slot(1), ft.as_pointer())
    xs = slot(2)
    op = b.inttoptr(slot(3), ft.as_pointer())
    os_ = slot(4)
    width = 8 if ft is F32 else 4

    zero = const(I64, 0)
    with for_range(b, start, stop, name="row") as row:
        xrow = b.gep(xp, [b.mul(row, xs)])
        orow = b.gep(op, [b.mul(row, os_)])

        # 1) the row's maximum (maxnum: NaN-ignoring, vectorizes as a min/max reduction)
        (m,) = range_loop(b, zero, ncols, [ir.Constant(ft, float("-inf"))],
                          lambda j, s: [intrinsic(b, "llvm.maxnum", ft, s[0], b.load(b.gep(xrow, [j])))],
                          "jm", loop_metadata(module, fname + ".max", width=width, interleave=2))

        # 2) e = exp(x - max) into the output, summed (float64 accumulators, reassociated: vectorized)
        def exp_store(j, s):
            e = emit_math(b, "exp", [b.fsub(b.load(b.gep(xrow, [j])), m)])
            b.store(e, b.gep(orow, [j]))
            e64 = b.fpext(e, F64) if ft is F32 else e
            return [b.fadd(s[0], e64, flags=["reassoc"])]
        (acc,) = range_loop(b, zero, ncols, [ir.Constant(F64, 0.0)], exp_store, "je",
                            loop_metadata(module, fname + ".exp", width=width, interleave=2))

        # 3) out = e / sum, the sum rounded to the row's dtype first (as the sum reduction's result is)
        total = b.fptrunc(acc, ft) if ft is F32 else acc

        def divide(j, s):
            p = b.gep(orow, [j])
            b.store(b.fdiv(b.load(p), total), p)
            return []
        range_loop(b, zero, ncols, [], divide, "jd", loop_metadata(module, fname + ".div", width=width))
    b.ret_void()
    return fn
