"""Generator of reduction and scan kernels that absorb their elementwise producers.

``void NAME(i64* args, i64 start, i64 stop)`` computes outputs (work items) ``[start, stop)``.
``args``: the kept extents, the reduced extents; for the output and each buffer input a pointer and
``n_kept + n_red`` strides; strides of index operands; scalar slots; then the divisor (f64 bits),
the number of chunks and the chunk length. Each work item walks its part of the reduced space a
row of the innermost reduced dimension at a time; float sums/products use reassociation inside a
row so LLVM vectorizes them (float32 accumulates in float64, complex64 in complex128; float32 sums
add blocks of values in float32 first; float max/min find the plain extremum and fix NaN and the
sign of a zero afterwards: kernels.reduction_rows).
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import (Leaves, Operand, _has_math, dtype_named, emit_expr, gather_pairs, load_scalar, loop_metadata,
                          operand_slots)
from .irb import F64, I1, I64, add_offsets, const, for_range, intrinsic, product, range_loop, reg_type
from .ops import cast
from .reduction_arg import generate_arg_finalize
from .reduction_rows import (block_sum, count_block, count_blocks, extremum, fast_extremum, flag_block, flag_end,
                             flag_lanes, float32_blocks, row_loop)
from .reduction_streams import streamed_or_rows, streams_fit
from .spec import REDUCE_OPS, ReduceSpec

__all__ = ["generate_reduction", "reduce_arg_layout", "identity_of"]

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
            # v itself while the product is still exactly 1 (+-0j): the product of one element
            # is that element (the multiplication turns inf+1j into inf+nanj, 1-0j into 1+0j)
            from .complex_ops import cmul
            one = b.and_(b.fcmp_ordered("==", acc[0], const(acc[0].type, 1.0)),
                         b.fcmp_ordered("==", acc[1], const(acc[1].type, 0.0)))
            prod = cmul(b, acc, v)
            return (b.select(one, v[0], prod[0]), b.select(one, v[1], prod[1]))
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
        self.args = args
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
        self.total_red = product(b, self.red)
        self.layout = lay


def generate_reduction(spec: ReduceSpec, module: ir.Module, fname: str, finalize: bool = True) -> ir.Function:
    """Add the kernel for ``spec`` to ``module`` under the name ``fname`` (and, when chunked, its
    finalize step ``fname_fin``, unless ``finalize`` is false: the caller adds its own)."""
    if spec.order == "outer" and spec.op in ("argmax", "argmin"):
        from .reduction_outer_arg import generate_outer_arg, generate_outer_arg_finalize
        fn = generate_outer_arg(spec, module, fname)
        if spec.chunked:
            generate_outer_arg_finalize(spec, module, fname + "_fin")
        return fn
    if spec.order == "outer":
        from .reduction_outer import generate_outer, generate_outer_finalize
        fn = generate_outer(spec, module, fname)
        if spec.chunked:
            generate_outer_finalize(spec, module, fname + "_fin", reduce_arg_layout(spec))
        return fn
    if spec.short:
        from .reduction_short import generate_short
        return generate_short(spec, module, fname)
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
    divisor, chunk, all_strides, total_red = ra.divisor, ra.chunk, ra.all_strides, ra.total_red
    red_inner = red[-1]
    init = _const_of(acc_dt if not is_arg else expr_dt, identity_of(spec.op, acc_dt if not is_arg else expr_dt))
    init_flat = _flat(init) + ([const(I64, 0)] if is_arg else [])

    if streams_fit(spec):  # long rows: several work items side by side (kernels.reduction_streams)
        streamed_or_rows(b, module, fname, spec, ra, args, start, stop, init)
    # ---- loop over work items --------------------------------------------------------------
    pre = b.block
    w_head, w_body, w_done = (b.append_basic_block(n) for n in ("w.head", "w.body", "w.done"))
    b.branch(w_head)
    b.position_at_end(w_head)
    w = b.phi(I64, name="w")
    w.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", w, stop), w_body, w_done)
    b.position_at_end(w_body)
    o, c = work_item(b, spec, ra, w)
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
    # (argmax/argmin: the index starts at the chunk's first element, the answer when no value
    # beats the identity, e.g. all -inf)
    for p, v in zip(acc_phis, init_flat[:-1] + [r_lo] if is_arg else init_flat):
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

    if spec.walk == "spread" and SPREAD_UNROLL:  # a GPU thread down a column: loads in flight
        inner_phis = row_loop(b, j0, jend, acc_phis, step, loop_metadata(module, fname, unroll=SPREAD_UNROLL), "j")
    elif is_arg and all(c in "c0" for c in classes[1:]):  # rows in contiguous memory: two vectorized passes
        from .reduction_arg import arg_row
        inner_phis = arg_row(b, spec.op, expr_dt, j0, jend, acc_phis, element,
                             lambda j: b.add(b.mul(row, red_inner), j))
    elif flag_lanes(spec) is not None:
        ty = flag_lanes(spec)
        flag = flag_block(b, spec.op, ty, j0, jend, const(ty, 0), lambda j: cast(b, expr_dt, acc_dt, element(j)))
        inner_phis = [flag_end(b, spec.op, acc_phis[0], flag)]
    elif count_blocks(spec) and not scan:
        inner_phis = [count_block(b, j0, jend, acc_phis[0], element)]
    elif float32_blocks(spec):
        inner_phis = [block_sum(b, module, fname, j0, jend, acc_phis[0], element, step, _has_math(spec.expr))]
    elif fast_extremum(spec):
        inner_phis = [extremum(b, spec.op, acc_dt, j0, jend, acc_phis[0], element, step)]
    else:
        md = None
        if not (scan or is_arg) and spec.expr_dtype == "float32" and spec.acc_dtype == "float64" \
                and _has_math(spec.expr):
            # float32 math summed in float64 (sum(exp(x - m)) of a softmax): 8 lanes for the math,
            # not the 4 of the float64 accumulator's register
            md = loop_metadata(module, fname, width=8)
        inner_phis = row_loop(b, j0, jend, acc_phis, step, md, "j")
    j_done = b.block

    r.add_incoming(b.add(r, b.sub(jend, j0)), j_done)
    for p, v2 in zip(acc_phis, inner_phis):
        p.add_incoming(v2, j_done)
    b.branch(r_head)

    # ---- finish the work item -----------------------------------------------------------------
    b.position_at_end(r_done)
    if spec.chunked and is_arg:  # phase 1: the chunk's index (-1: an empty chunk)
        part = index_partials(b, args, lay)
        b.store(b.select(b.icmp_signed("<", r_lo, r_hi), acc_phis[1], const(I64, -1)),
                b.gep(part, [partial_index(b, spec, ra, w, o, c)]))
    elif spec.chunked:  # phase 1: the raw accumulator of this chunk
        _store_value(b, _partials(b, args, lay, acc_dt), partial_index(b, spec, ra, w, o, c),
                     _unflat(acc_phis, init))
    elif not scan:
        result = acc_phis[1] if is_arg else _finish(b, spec, acc_dt, out_dt, _unflat(acc_phis, init), divisor)
        _store_value(b, ops[0], kbases[0], result)
    w.add_incoming(b.add(w, const(I64, 1)), b.block)
    b.branch(w_head)
    b.position_at_end(w_done)
    b.ret_void()
    if spec.chunked and finalize and is_arg:
        generate_arg_finalize(spec, module, fname + "_fin", lay, expr_dt)
    elif spec.chunked and finalize:
        _generate_finalize(spec, module, fname + "_fin", lay)
    return fn


#: walk "spread" (a GPU thread reduces a chunk of one column): the row loop is unrolled this many
#: times, so that as many loads are in flight per thread (0: the host's row forms instead)
SPREAD_UNROLL = 8


def work_item(b, spec: ReduceSpec, ra: "ReduceArgs", w) -> tuple:
    """(output, chunk) of work item ``w``: ``(w, 0)`` unchunked; chunked ``(w // nchunks, w %
    nchunks)``, or for walk "spread" ``(w % n_out, w // n_out)`` (neighbouring work items,
    neighbouring GPU threads, read neighbouring outputs)."""
    if not spec.chunked:
        return w, const(I64, 0)
    if spec.walk == "spread":
        n_out = product(b, ra.kept)
        return b.srem(w, n_out), b.sdiv(w, n_out)
    return b.sdiv(w, ra.nchunks), b.srem(w, ra.nchunks)


def partial_index(b, spec: ReduceSpec, ra: "ReduceArgs", w, o, c):
    """Where work item ``w`` (output ``o``, chunk ``c``) stores its partial: ``o * nchunks + c``,
    which is ``w`` itself except for walk "spread"."""
    return b.add(b.mul(o, ra.nchunks), c) if spec.walk == "spread" else w


class _Flat:
    """A contiguous operand (partial accumulators): pointer and dtype only."""

    def __init__(self, ptr, dtype):
        self.ptr, self.dtype = ptr, dtype
        self.comp = 2 if dtype.kind == "c" else 1


def index_partials(b, args, lay):
    """The int64 partials of a chunked argmax/argmin (each chunk's index per output)."""
    return b.inttoptr(b.load(b.gep(args, [const(I64, lay["partials"])])), I64.as_pointer())


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
        if out_dt.itemsize < acc_dt.itemsize:
            # a float64 quotient rounded to float32: times the reciprocal (hoisted out of the
            # loops) is the same float32 but for ~2**-29 of values, and a vector divide per 4
            # outputs cost a fifth of a (10, 1000000) float32 mean over axis 0
            inv = b.fdiv(const(ty, 1.0), dv)
            scale = lambda x: b.fmul(x, inv)  # noqa: E731
        else:
            scale = lambda x: b.fdiv(x, dv)  # noqa: E731
        result = tuple(scale(x) for x in result) if isinstance(result, tuple) else scale(result)
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
        self.n_out = product(b, self.kept)
        self.like = _const_of(self.acc_dt, identity_of(spec.op, self.acc_dt))
        self.init = _flat(self.like)
        self.op = {"cumsum": "sum", "cumprod": "prod"}.get(spec.op, spec.op)

    def merge(self, b, a: list, o: list) -> list:
        return _flat(_combine(b, self.op, self.acc_dt, _unflat(a, self.like), _unflat(o, self.like)))

    def combine_chunks(self, o, first, step) -> list:
        """Flat merge of output ``o``'s partials ``first, first + step, ... < nchunks``."""
        b = self.b
        base = b.mul(o, self.nchunks)
        return range_loop(b, first, self.nchunks, self.init,
                          lambda c, acc: self.merge(b, acc, _flat(load_partial(b, self.part, b.add(base, c)))),
                          "c", step=step)

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
