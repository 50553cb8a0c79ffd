"""Generator of reduction and scan kernels that absorb their elementwise producers.

``void NAME(i64* args, i64 start, i64 stop)`` computes outputs (work items) ``[start, stop)``.
``args``: the kept extents, the reduced extents; for the output and each buffer input a pointer and
``n_kept + n_red`` strides; strides of index operands; scalar slots; then the divisor (f64 bits),
the number of chunks and the chunk length. Each work item walks its part of the reduced space a
row of the innermost reduced dimension at a time; float sums/products use reassociation inside a
row so LLVM vectorizes them (float32 accumulates in float64, complex64 in complex128; float32 sums
add blocks of F32_BLOCK values in float32 first, see ``_block_sum``); float max/min find the plain
extremum and fix NaN and the sign of a zero afterwards (``_extremum``).
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import (Leaves, Operand, _has_math, dtype_named, emit_expr, gather_pairs, load_scalar, loop_metadata,
                          operand_slots)
from .irb import F64, I1, I64, add_offsets, const, for_range, intrinsic, reg_type
from .ops import cast
from .spec import REDUCE_OPS, ReduceSpec

__all__ = ["generate_reduction", "reduce_arg_layout", "identity_of", "float32_blocks", "F32_BLOCK"]

_REASSOC = ("reassoc",)


def reduce_arg_layout(spec: ReduceSpec) -> dict:
    """Slot offsets in ``args`` for a reduction kernel: the shared operand slots over
    ``n_kept + n_red`` dimensions, then divisor, chunking, partials, gather pairs, error flag."""
    lay = operand_slots(spec, spec.n_kept + spec.n_red)
    pos = lay["end"]
    g = gather_pairs(spec.expr)
    lay.update(divisor=pos, nchunks=pos + 1, chunk=pos + 2, partials=pos + 3, gather=pos + 4,
               error=pos + 4 + 2 * g, size=pos + 5 + 2 * g)
    return lay


def identity_of(op: str, dtype):
    """The identity of a reduction as a Python value of ``dtype``."""
    import numpy as np
    if op in ("sum", "cumsum"):
        return -0.0 if dtype.kind in "fc" else 0
    if op in ("prod", "cumprod"):
        return 1
    if op == "all":
        return True
    if op == "any":
        return False
    lowest = op in ("max", "argmax")
    if dtype.kind == "f":
        return float("-inf") if lowest else float("inf")
    if dtype.kind == "b":
        return not lowest
    info = np.iinfo(dtype.np)
    return int(info.min) if lowest else int(info.max)


def _const_of(dtype, value):
    ty = reg_type(dtype)
    if dtype.kind == "c":
        v = complex(value)
        return (const(ty, v.real), const(ty, v.imag))
    if dtype.kind == "b":
        return ir.Constant(I1, int(bool(value)))
    return const(ty, value)


def _combine(b, op: str, dtype, acc, v):
    """acc (+) v for the accumulating ops (not argmax/argmin)."""
    kind = dtype.kind
    if op in ("sum", "cumsum"):
        if kind == "c":
            return (b.fadd(acc[0], v[0], flags=_REASSOC), b.fadd(acc[1], v[1], flags=_REASSOC))
        return b.fadd(acc, v, flags=_REASSOC) if kind == "f" else b.add(acc, v)
    if op in ("prod", "cumprod"):
        if kind == "c":
            from .complex_ops import cmul
            return cmul(b, acc, v)
        return b.fmul(acc, v, flags=_REASSOC) if kind == "f" else b.mul(acc, v)
    if op == "all":
        return b.and_(acc, v)
    if op == "any":
        return b.or_(acc, v)
    if kind == "f":
        return intrinsic(b, "llvm.maximum" if op == "max" else "llvm.minimum", acc.type, acc, v)
    cmp = b.icmp_signed if kind == "i" else b.icmp_unsigned
    return b.select(cmp(">" if op == "max" else "<", v, acc), v, acc)


def _arg_better(b, op: str, dtype, best, v):
    """Whether ``v`` replaces ``best`` (strictly better, or the first NaN) in argmax/argmin."""
    if dtype.kind == "f":
        better = b.fcmp_ordered(">" if op == "argmax" else "<", v, best)
        first_nan = b.and_(b.fcmp_unordered("uno", v, v), b.fcmp_ordered("ord", best, best))
        return b.or_(better, first_nan)
    if dtype.kind == "b":
        return b.icmp_unsigned(">" if op == "argmax" else "<", v, best)
    cmp = b.icmp_signed if dtype.kind == "i" else b.icmp_unsigned
    return cmp(">" if op == "argmax" else "<", v, best)


def _flat(v):
    return list(v) if isinstance(v, tuple) else [v]


def _unflat(vals, like):
    return tuple(vals) if isinstance(like, tuple) else vals[0]


def _store_value(b, out: Operand, off, value):
    if out.comp == 2:
        off2 = b.mul(off, const(I64, 2))
        b.store(value[0], b.gep(out.ptr, [off2]))
        b.store(value[1], b.gep(out.ptr, [b.add(off2, const(I64, 1))]))
    elif out.dtype.kind == "b":
        b.store(b.zext(value, ir.IntType(8)), b.gep(out.ptr, [off]))
    else:
        b.store(value, b.gep(out.ptr, [off]))


class ReduceArgs:
    """The runtime arguments of a reduce kernel, loaded from its int64 slots (one unpacking for
    the host generators here and in reduction_outer, and the NVPTX block reduction)."""

    def __init__(self, b: ir.IRBuilder, args, spec):
        lay = reduce_arg_layout(spec)
        nk, nd = spec.n_kept, spec.n_kept + spec.n_red
        slot = lambda k: b.load(b.gep(args, [const(I64, k)]))  # noqa: E731
        shape = [slot(d) for d in range(nd)]
        self.kept, self.red = shape[:nk], shape[nk:]
        self.expr_dt, self.acc_dt, self.out_dt = (dtype_named(n) for n in
                                                  (spec.expr_dtype, spec.acc_dtype, spec.out_dtype))
        dtypes = [self.out_dt] + [dtype_named(n) for n in spec.in_dtypes]
        self.ops = [Operand(b, args, dt, p, q, nd) for dt, (p, q) in zip(dtypes, lay["operands"])]
        self.idx_strides = [[slot(q + d) for d in range(nd)] for q in lay["idx"]]
        self.scalars = [load_scalar(b, args, q, dtype_named(n)) for q, n in zip(lay["scalars"], spec.arg_dtypes)]
        self.divisor = b.bitcast(slot(lay["divisor"]), F64)
        self.nchunks, self.chunk = slot(lay["nchunks"]), slot(lay["chunk"])
        self.all_strides = [op.strides for op in self.ops] + self.idx_strides
        total = const(I64, 1)
        for n in self.red:
            total = b.mul(total, n)
        self.total_red = total
        self.layout = lay


def generate_reduction(spec: ReduceSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the kernel for ``spec`` to ``module`` under the name ``fname``."""
    if spec.order == "outer":
        from .reduction_outer import generate_outer
        fn = generate_outer(spec, module, fname)
        if spec.chunked:
            _generate_finalize(spec, module, fname + "_fin", reduce_arg_layout(spec))
        return fn
    nk = spec.n_kept
    lay = reduce_arg_layout(spec)
    scan = REDUCE_OPS[spec.op]
    is_arg = spec.op in ("argmax", "argmin")
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    kept, red, ops, idx_strides, scalars = ra.kept, ra.red, ra.ops, ra.idx_strides, ra.scalars
    expr_dt, acc_dt, out_dt = ra.expr_dt, ra.acc_dt, ra.out_dt
    divisor, nchunks, chunk, all_strides, total_red = ra.divisor, ra.nchunks, ra.chunk, ra.all_strides, ra.total_red
    red_inner = red[-1]
    init = _const_of(acc_dt if not is_arg else expr_dt, identity_of(spec.op, acc_dt if not is_arg else expr_dt))
    init_flat = _flat(init) + ([const(I64, 0)] if is_arg else [])

    # ---- loop over work items --------------------------------------------------------------
    pre = b.block
    w_head, w_body, w_done = (b.append_basic_block(n) for n in ("w.head", "w.body", "w.done"))
    b.branch(w_head)
    b.position_at_end(w_head)
    w = b.phi(I64, name="w")
    w.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", w, stop), w_body, w_done)
    b.position_at_end(w_body)
    if spec.chunked:
        o, c = b.sdiv(w, nchunks), b.srem(w, nchunks)
    else:
        o, c = w, const(I64, 0)
    kbases = add_offsets(b, o, kept, all_strides, [const(I64, 0)] * len(all_strides))
    r_lo = b.mul(c, chunk)
    r_hi = b.add(r_lo, chunk)
    r_hi = b.select(b.icmp_signed("<", r_hi, total_red), r_hi, total_red)

    # ---- loop over rows of the reduced space ----------------------------------------------
    r_pre = b.block
    r_head, r_body, r_done = (b.append_basic_block(n) for n in ("r.head", "r.body", "r.done"))
    b.branch(r_head)
    b.position_at_end(r_head)
    r = b.phi(I64, name="r")
    r.add_incoming(r_lo, r_pre)
    acc_phis = [b.phi(v.type) for v in init_flat]
    for p, v in zip(acc_phis, init_flat):
        p.add_incoming(v, r_pre)
    b.cbranch(b.icmp_signed("<", r, r_hi), r_body, r_done)
    b.position_at_end(r_body)
    if spec.n_red == 1:  # one reduced dimension: r < red_inner, no division (rows of 3: ~2x faster)
        row, j0 = const(I64, 0), r
    else:
        row, j0 = b.sdiv(r, red_inner), b.srem(r, red_inner)
    bases = add_offsets(b, row, red[:-1], all_strides, kbases, first=nk)
    jend = b.add(j0, b.sub(r_hi, r))
    jend = b.select(b.icmp_signed("<", jend, red_inner), jend, red_inner)

    # ---- the inner (vectorizable) loop ------------------------------------------------------
    classes = spec.classes

    def element(j):
        leaf = Leaves(b, args, ops, idx_strides, scalars, classes, bases, j, lay["gather"], lay["error"])
        return emit_expr(b, spec.expr, leaf)

    def step(j, phis):
        v = element(j)
        if is_arg:
            best, bidx = phis
            take = _arg_better(b, spec.op, expr_dt, best, v)
            flat_idx = b.add(b.mul(row, red_inner), j)
            return [b.select(take, v, best), b.select(take, flat_idx, bidx)]
        v = cast(b, expr_dt, acc_dt, v)
        acc = _combine(b, spec.op, acc_dt, _unflat(phis, init), v)
        if scan:
            out = ops[0]
            off = b.add(bases[0], b.mul(j, out.strides[-1]))
            _store_value(b, out, off, cast(b, acc_dt, out_dt, acc))
        return _flat(acc)

    if float32_blocks(spec):
        inner_phis = [_block_sum(b, module, fname, j0, jend, acc_phis[0], element, step, _has_math(spec.expr))]
    elif fast_extremum(spec):
        inner_phis = [_extremum(b, spec.op, acc_dt, j0, jend, acc_phis[0], element, step)]
    else:
        md = None
        if not (scan or is_arg) and spec.expr_dtype == "float32" and spec.acc_dtype == "float64" \
                and _has_math(spec.expr):
            # float32 math summed in float64 (sum(exp(x - m)) of a softmax): 8 lanes for the math,
            # not the 4 of the float64 accumulator's register
            md = loop_metadata(module, fname, width=8)
        inner_phis = _row_loop(b, j0, jend, acc_phis, step, md, "j")
    j_done = b.block

    r.add_incoming(b.add(r, b.sub(jend, j0)), j_done)
    for p, v2 in zip(acc_phis, inner_phis):
        p.add_incoming(v2, j_done)
    b.branch(r_head)

    # ---- finish the work item -----------------------------------------------------------------
    b.position_at_end(r_done)
    if spec.chunked:  # phase 1: the raw accumulator of this chunk
        _store_value(b, _partials(b, args, lay, acc_dt), w, _unflat(acc_phis, init))
    elif not scan:
        result = acc_phis[1] if is_arg else _finish(b, spec, acc_dt, out_dt, _unflat(acc_phis, init), divisor)
        _store_value(b, ops[0], kbases[0], result)
    w.add_incoming(b.add(w, const(I64, 1)), b.block)
    b.branch(w_head)
    b.position_at_end(w_done)
    b.ret_void()
    if spec.chunked:
        _generate_finalize(spec, module, fname + "_fin", lay)
    return fn


#: float32 sums (accumulated in float64) add blocks of this many elements in float32 first
F32_BLOCK = 512


def float32_blocks(spec: ReduceSpec) -> bool:
    """Whether a kernel sums float32 values in float32 first: blocks in row order (see
    :func:`_block_sum`), row groups in column order (kernels.reduction_outer)."""
    return spec.op == "sum" and spec.expr_dtype == "float32" and spec.acc_dtype == "float64"


def _row_loop(b, lo, hi, init: list, step, md, name: str) -> list:
    """``for j in range(lo, hi)`` with flat accumulators ``init`` updated by ``step(j, phis)``;
    returns their final values (the builder is left after the loop). ``md``: loop metadata."""
    pre = b.block
    head, body, done = (b.append_basic_block(f"{name}.{n}") for n in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    j = b.phi(I64, name=name)
    j.add_incoming(lo, pre)
    phis = [b.phi(v.type) for v in init]
    for p, v in zip(phis, init):
        p.add_incoming(v, pre)
    b.cbranch(b.icmp_signed("<", j, hi), body, done)
    b.position_at_end(body)
    new = step(j, phis)
    for p, v in zip(phis, new):
        p.add_incoming(v, b.block)
    j.add_incoming(b.add(j, const(I64, 1)), b.block)
    latch = b.branch(head)
    if md is not None:
        latch.set_metadata("llvm.loop", md)
    b.position_at_end(done)
    return phis


def _block_sum(b, module, fname, lo, hi, acc64, element, step64, math: bool):
    """``acc64`` plus the float32 values ``element(j)``, ``lo <= j < hi``, as the float64 sum of
    blocks of :data:`F32_BLOCK` elements each summed in float32 (reassociated: LLVM keeps several
    8-lane accumulators, so a float32 partial adds F32_BLOCK / 32 values; NumPy's pairwise sum has
    blocks of 128 and 8 accumulators). The float32 pass costs one vector add per 8 elements
    instead of two conversions and two float64 vector adds. A block whose float32 total is not finite (an overflow
    of float32 that float64 would not have, or inf/nan in the data) is summed again in float64
    by ``step64``, so results only differ from a float64 accumulation by rounding. ``math``: the
    values are transcendental functions (softmax's exp): 8 lanes, LLVM's own interleaving."""
    f32 = ir.FloatType()
    md = loop_metadata(module, fname, width=8, interleave=None if math else 4)
    pre = b.block
    head, body, redo, merge, done = (b.append_basic_block(f"blk.{n}") for n in ("head", "body", "redo", "merge",
                                                                                    "done"))
    b.branch(head)
    b.position_at_end(head)
    jb = b.phi(I64, name="jb")
    jb.add_incoming(lo, pre)
    acc = b.phi(F64)
    acc.add_incoming(acc64, pre)
    b.cbranch(b.icmp_signed("<", jb, hi), body, done)
    b.position_at_end(body)
    je = b.add(jb, const(I64, F32_BLOCK))
    je = b.select(b.icmp_signed("<", je, hi), je, hi)
    (s32,) = _row_loop(b, jb, je, [const(f32, -0.0)], lambda j, p: [b.fadd(p[0], element(j), flags=_REASSOC)],
                       md, "j")
    finite = b.fcmp_ordered("ord", b.fsub(s32, s32), const(f32, 0.0))
    wide = b.fpext(s32, F64)
    ok_block = b.block
    b.cbranch(finite, merge, redo)
    b.position_at_end(redo)
    (s64,) = _row_loop(b, jb, je, [const(F64, -0.0)], step64, None, "j64")
    redo_end = b.block
    b.branch(merge)
    b.position_at_end(merge)
    total = b.phi(F64)
    total.add_incoming(wide, ok_block)
    total.add_incoming(s64, redo_end)
    new = b.fadd(acc, total, flags=_REASSOC)
    acc.add_incoming(new, merge)
    jb.add_incoming(je, merge)
    b.branch(head)
    b.position_at_end(done)
    return acc


def fast_extremum(spec: ReduceSpec) -> bool:
    """Whether a row-order kernel finds a float max/min with :func:`_extremum`."""
    return spec.op in ("max", "min") and spec.acc_dtype in ("float32", "float64") \
        and spec.expr_dtype == spec.acc_dtype


def _extremum(b, op, acc_dt, lo, hi, acc, element, step_exact):
    """``acc`` combined with the max/min of ``element(j)``, ``lo <= j < hi``, with the rule of
    llvm.maximum/minimum (NaN propagates, -0.0 < +0.0) at the cost of one vector max/min and one
    multiply-add per vector. The loop keeps the plain extremum ``m`` (``x > m ? x : m``) and
    ``z = -0.0 + sum(x * s)`` with ``s`` = +0.0 (max) or -0.0 (min): ``z`` is NaN once any x is
    NaN or infinite, else a zero whose sign says whether some x has the sign that wins a tie of
    zeros (a sum of zeros is -0.0 only if all are). So ``m`` is exact unless ``z`` is NaN (then
    the range is walked again with the exact rule by ``step_exact``: a NaN or infinity in the
    data) or ``m`` is a zero (then its sign is ``z``'s (max) or the opposite (min))."""
    ty = acc.type
    fast = ("nnan", "nsz")  # m may be poison where x is NaN: then z is NaN and m is not used
    init = _const_of(acc_dt, identity_of(op, acc_dt))
    sign_probe = const(ty, 0.0 if op == "max" else -0.0)

    def step(j, phis):
        m, z = phis
        v = element(j)
        better = b.fcmp_ordered(">" if op == "max" else "<", v, m, flags=fast)
        probe = b.fmul(v, sign_probe, flags=("contract",))
        return [b.select(better, v, m, flags=fast), b.fadd(z, probe, flags=("reassoc", "contract"))]

    m, z = _row_loop(b, lo, hi, [init, const(ty, -0.0)], step, None, "j")
    zero = z if op == "max" else b.fneg(z)
    m = b.select(b.fcmp_ordered("==", m, const(ty, 0.0)), zero, m)
    fast_value = _combine(b, op, acc_dt, acc, m)
    fast_block = b.block
    redo, merge = b.append_basic_block("ext.redo"), b.append_basic_block("ext.merge")
    b.cbranch(b.fcmp_unordered("uno", z, z), redo, merge)
    b.position_at_end(redo)
    (exact,) = _row_loop(b, lo, hi, [acc], step_exact, None, "jx")
    redo_end = b.block
    b.branch(merge)
    b.position_at_end(merge)
    out = b.phi(ty)
    out.add_incoming(fast_value, fast_block)
    out.add_incoming(exact, redo_end)
    return out


class _Flat:
    """A contiguous operand (partial accumulators): pointer and dtype only."""

    def __init__(self, ptr, dtype):
        self.ptr, self.dtype = ptr, dtype
        self.comp = 2 if dtype.kind == "c" else 1


def _partials(b, args, lay, acc_dt) -> _Flat:
    from .irb import mem_type
    raw = b.load(b.gep(args, [const(I64, lay["partials"])]))
    return _Flat(b.inttoptr(raw, mem_type(acc_dt).as_pointer()), acc_dt)


def load_partial(b, part: _Flat, off):
    """Partial accumulator ``off`` of a chunked reduction (complex: a pair; bool: an i1)."""
    if part.comp == 2:
        off2 = b.mul(off, const(I64, 2))
        return (b.load(b.gep(part.ptr, [off2])), b.load(b.gep(part.ptr, [b.add(off2, const(I64, 1))])))
    v = b.load(b.gep(part.ptr, [off]))
    return b.icmp_unsigned("!=", v, const(v.type, 0)) if part.dtype.kind == "b" else v


def _finish(b, spec, acc_dt, out_dt, result, divisor):
    """The post-op (division for mean/var) and the cast to the output dtype."""
    if spec.post == "divide":
        ty = reg_type(acc_dt)
        dv = b.fptrunc(divisor, ty) if ty != F64 else divisor
        result = tuple(b.fdiv(x, dv) for x in result) if isinstance(result, tuple) else b.fdiv(result, dv)
    return cast(b, acc_dt, out_dt, result)


class FinalizeArgs:
    """What phase 2 of a chunked reduction reads from its slots: the kept extents and their
    product ``n_out``, the output operand, the partials, the chunk count, the divisor, the
    accumulator's identity (``like``, ``init`` flat) and its merge of flat values."""

    def __init__(self, b, args, spec: ReduceSpec, lay: dict):
        slot = lambda k: b.load(b.gep(args, [const(I64, k)]))  # noqa: E731
        nk, nd = spec.n_kept, spec.n_kept + spec.n_red
        self.spec, self.b = spec, b
        self.kept = [slot(d) for d in range(nk)]
        self.acc_dt, self.out_dt = dtype_named(spec.acc_dtype), dtype_named(spec.out_dtype)
        self.out = Operand(b, args, self.out_dt, *lay["operands"][0], nd)
        self.part = _partials(b, args, lay, self.acc_dt)
        self.nchunks = slot(lay["nchunks"])
        self.divisor = b.bitcast(slot(lay["divisor"]), F64)
        self.n_out = const(I64, 1)
        for n in self.kept:
            self.n_out = b.mul(self.n_out, n)
        self.like = _const_of(self.acc_dt, identity_of(spec.op, self.acc_dt))
        self.init = _flat(self.like)
        self.op = {"cumsum": "sum", "cumprod": "prod"}.get(spec.op, spec.op)

    def merge(self, b, a: list, o: list) -> list:
        return _flat(_combine(b, self.op, self.acc_dt, _unflat(a, self.like), _unflat(o, self.like)))

    def combine_chunks(self, o, first, step) -> list:
        """Flat merge of output ``o``'s partials ``first, first + step, ... < nchunks``."""
        b = self.b
        base = b.mul(o, self.nchunks)
        pre = b.block
        head, body, done = (b.append_basic_block(n) for n in ("c.head", "c.body", "c.done"))
        b.branch(head)
        b.position_at_end(head)
        c = b.phi(I64)
        c.add_incoming(first, pre)
        phis = [b.phi(v.type) for v in self.init]
        for p, v in zip(phis, self.init):
            p.add_incoming(v, pre)
        b.cbranch(b.icmp_signed("<", c, self.nchunks), body, done)
        b.position_at_end(body)
        new = self.merge(b, phis, _flat(load_partial(b, self.part, b.add(base, c))))
        for p, v in zip(phis, new):
            p.add_incoming(v, b.block)
        c.add_incoming(b.add(c, step), b.block)
        b.branch(head)
        b.position_at_end(done)
        return phis

    def store(self, o, flat: list) -> None:
        """Post-op, cast and store of output ``o``'s total."""
        b = self.b
        (kb,) = add_offsets(b, o, self.kept, [self.out.strides], [const(I64, 0)])
        _store_value(b, self.out, kb, _finish(b, self.spec, self.acc_dt, self.out_dt, _unflat(flat, self.like),
                                             self.divisor))


def _generate_finalize(spec: ReduceSpec, module: ir.Module, fname: str, lay: dict) -> None:
    """Phase 2 of a chunked reduction, ``void NAME(i64* args)``: combine each output's partial
    accumulators, apply the post-op and store. The launcher runs it once, after every chunk."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), name=fname)
    (args,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fa = FinalizeArgs(b, args, spec, lay)
    with for_range(b, const(I64, 0), fa.n_out, name="o") as o:
        fa.store(o, fa.combine_chunks(o, const(I64, 0), const(I64, 1)))
    b.ret_void()
