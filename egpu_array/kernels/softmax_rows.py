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
from .irb import F32, F64, I64, const, intrinsic
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


def _loop(b, n, name, carried=()):
    """for j in [0, n): yields (j, phis) positioned in the body; ``carried`` = [(type, init)]. The
    caller adds the phis' next values (``phi.add_incoming(v, b.block)``) before leaving the block;
    returns a finisher that closes the loop (with ``metadata``) and leaves the builder after it."""
    pre = b.block
    head, body, done = (b.append_basic_block(f"{name}.{s}") for s in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    j = b.phi(I64, name=name)
    j.add_incoming(const(I64, 0), pre)
    phis = []
    for ty, init in carried:
        p = b.phi(ty)
        p.add_incoming(init, pre)
        phis.append(p)
    b.cbranch(b.icmp_signed("<", j, n), body, done)
    b.position_at_end(body)

    def finish(metadata=None):
        j.add_incoming(b.add(j, const(I64, 1), flags=["nsw"]), b.block)
        br = b.branch(head)
        if metadata is not None:
            br.set_metadata("llvm.loop", metadata)
        b.position_at_end(done)

    return j, phis, finish


def generate(spec: SoftmaxRowsSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the kernel for ``spec`` to ``module`` under the name ``fname``."""
    ft = F32 if spec.dtype == "float32" else F64
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def slot(k):
        return b.load(b.gep(args, [const(I64, k)]))

    ncols = slot(0)
    xp = b.inttoptr(slot(1), ft.as_pointer())
    xs = slot(2)
    op = b.inttoptr(slot(3), ft.as_pointer())
    os_ = slot(4)
    width = 8 if ft is F32 else 4

    # for row in [start, stop)
    pre = b.block
    head, body, done = (b.append_basic_block(n) for n in ("row.head", "row.body", "row.done"))
    b.branch(head)
    b.position_at_end(head)
    row = b.phi(I64, name="row")
    row.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", row, stop), body, done)
    b.position_at_end(body)
    xrow = b.gep(xp, [b.mul(row, xs)])
    orow = b.gep(op, [b.mul(row, os_)])

    # 1) the row's maximum (maxnum: NaN-ignoring, vectorizes as a min/max reduction)
    j, (m,), finish = _loop(b, ncols, "jm", [(ft, ir.Constant(ft, float("-inf")))])
    v = b.load(b.gep(xrow, [j]))
    m.add_incoming(intrinsic(b, "llvm.maxnum", ft, m, v), b.block)
    finish(loop_metadata(module, fname + ".max", width=width, interleave=2))

    # 2) e = exp(x - max) into the output, summed (float64 accumulators, reassociated: vectorized)
    j, (acc,), finish = _loop(b, ncols, "je", [(F64, ir.Constant(F64, 0.0))])
    v = b.load(b.gep(xrow, [j]))
    e = emit_math(b, "exp", [b.fsub(v, m)])
    b.store(e, b.gep(orow, [j]))
    e64 = b.fpext(e, F64) if ft is F32 else e
    acc.add_incoming(b.fadd(acc, e64, flags=["reassoc"]), b.block)
    finish(loop_metadata(module, fname + ".exp", width=width, interleave=2))

    # 3) out = e / sum, the sum rounded to the row's dtype first (as the sum reduction's result is)
    s = b.fptrunc(acc, ft) if ft is F32 else acc
    j, _, finish = _loop(b, ncols, "jd")
    p = b.gep(orow, [j])
    b.store(b.fdiv(b.load(p), s), p)
    finish(loop_metadata(module, fname + ".div", width=width))

    row.add_incoming(b.add(row, const(I64, 1)), b.block)
    b.branch(head)
    b.position_at_end(done)
    b.ret_void()
    return fn
