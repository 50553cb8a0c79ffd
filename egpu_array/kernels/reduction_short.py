"""Row-order reductions of short packed rows (kernels.reduction): ``sum(x, axis=1)`` of an (N, 3)
matrix, the log-sum-exp over a few classes, the squared norms of 3-D points.

The general row-order kernel pays a row loop's set-up, its float32 blocks or extremum checks, and
the output's offsets for every output; with rows of 2-8 elements that is several times the work
of the values themselves (a (3333333, 3) float32 sum over axis 1 ran at 5 GB/s; argmax over the
classes of predicted probabilities is this shape too). Where every
input's rows follow one another in memory (reduced stride 1, kept stride the row length) or is
constant over both dimensions, the scheduler compiles the row length into the spec
(``ReduceSpec.short``); this kernel then unrolls each row and runs one loop over the outputs,
which LLVM vectorizes with interleaved loads. At most :data:`SHORT_MAX` - 1 kernels per reduction
and expression: the row length is the one shape that is not an argument here.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import Leaves, emit_expr
from .irb import I64, const, kernel_entry, range_loop
from .ops import cast
from .spec import ReduceSpec

__all__ = ["SHORT_MAX", "SHORT_MIN_OUTPUTS", "generate_short"]

#: rows of 2..SHORT_MAX elements take this kernel
SHORT_MAX = 8
#: ... when there are at least this many outputs (fewer: the general kernel, no extra compile)
SHORT_MIN_OUTPUTS = 4096


def generate_short(spec: ReduceSpec, module: ir.Module, fname: str) -> ir.Function:
    """``void fname(i64* args, i64 start, i64 stop)``: outputs ``[start, stop)`` of a reduction
    whose one kept and one reduced dimension are ``spec.short`` elements long rows (the argument
    layout of kernels.reduction; the row length in the slots equals ``spec.short``)."""
    from .reduction import (ReduceArgs, _arg_better, _combine, _const_of, _finish, _store_value, identity_of,
                            reduce_arg_layout)
    assert spec.n_kept == 1 and spec.n_red == 1 and spec.short >= 2 and not spec.chunked
    lay = reduce_arg_layout(spec)
    fn, b, _slot, start, stop = kernel_entry(module, fname)
    args = fn.args[0]
    ra = ReduceArgs(b, args, spec)
    length = const(I64, spec.short)
    n_mem = len(ra.ops)
    out_stride = ra.ops[0].strides[0]
    init = _const_of(ra.acc_dt, identity_of(spec.op, ra.acc_dt))

    def output(o):
        # rows that follow one another: input row o starts at o * short ("0": a constant operand)
        bases = [b.mul(o, out_stride)] + [b.mul(o, length) if cls == "c" else const(I64, 0)
                                          for cls in spec.classes[1:n_mem]]
        values = [emit_expr(b, spec.expr, Leaves(b, args, ra.ops, ra.idx_strides, ra.scalars, spec.classes, bases,
                                                 const(I64, k), lay["gather"], lay["error"]))
                  for k in range(spec.short)]
        if spec.op in ("argmax", "argmin"):  # the host rule: strictly better, or the first NaN
            best, idx = values[0], const(I64, 0)
            for k, v in enumerate(values[1:], 1):
                take = _arg_better(b, spec.op, ra.expr_dt, best, v)
                best, idx = b.select(take, v, best), b.select(take, const(I64, k), idx)
            _store_value(b, ra.ops[0], bases[0], idx)
            return
        acc = init
        for v in values:
            acc = _combine(b, spec.op, ra.acc_dt, acc, cast(b, ra.expr_dt, ra.acc_dt, v))
        _store_value(b, ra.ops[0], bases[0], _finish(b, spec, ra.acc_dt, ra.out_dt, acc, ra.divisor))

    # (LLVM's cost model vectorizes the float and integer loops itself; forcing it would print a
    # remark for the loops it cannot vectorize, such as complex inputs)
    range_loop(b, start, stop, [], lambda o, _: (output(o), [])[1], "o")
    b.ret_void()
    return fn
