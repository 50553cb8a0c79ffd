"""Row-order reductions over several memory streams at once (kernels.reduction).

One core reads memory faster when it walks four streams far apart side by side than one
contiguous stream (measured in C on this znver3 host: ~16 vs ~25 GB/s; the hardware prefetchers
follow each stream, and four of them keep more cache-line fills in flight). So a kernel whose work
items reduce rows of one reduced dimension cuts its range of work items ``[start, stop)`` into
:data:`STREAMS` consecutive parts and walks one item of each part at a time, visiting the items'
ranges :data:`STREAM_BYTES` bytes at a time in turn. Every item keeps its own accumulators, so the
result is the one of walking the items one after the other: float32 sums add each visit as one
float32 block (at most ``F32_BLOCK`` values), max/min keep their extremum and exact re-walk
(kernels.reduction_rows). Max/min of a plain contiguous input keep that state in explicit
vectors across full visits (:func:`_vector_visit`): the loop vectorizer's form reduced its lanes
to a scalar at the end of every visit (max of 1e7 float32: 0.97x of sum's time, was 1.00-1.05x,
alternating processes).
"""
from __future__ import annotations

from llvmlite import ir

from .irb import I1, I64, const, for_range
from .ops import cast
from .reduction_rows import (F32_BLOCK, block_metadata, block_total, count_block, count_blocks, extremum_block,
                             extremum_end, extremum_start, fast_extremum, flag_block, flag_end, flag_lanes,
                             float32_blocks, row_loop)
from .spec import REDUCE_OPS, ReduceSpec

__all__ = ["STREAMS", "STREAM_BYTES", "STREAM_MIN", "streams_fit", "streamed_or_rows", "emit_streams"]

#: work items walked side by side (four streams: 16 -> 25 GB/s on one core; eight gain little more)
STREAMS = 4
#: bytes of one item's range read before the walk moves on to the next stream. 512 rather than
#: 2048: 1e7 float32/float64 sum/max/mean, whole array and axis 1, 1 and 2 threads, 7-25% less
#: time (old/new interleaved, medians of 31 paired runs, load 1-2.5); 256 gains nothing more
STREAM_BYTES = 512
#: items whose reduced range is shorter than this (elements) take the one-stream loop (rows of
#: a few elements would pay the visits' bookkeeping for no gain)
STREAM_MIN = 256


def streams_fit(spec: ReduceSpec) -> bool:
    """Whether a row-order kernel has the streamed form: one reduced dimension (after collapsing),
    an accumulating op (not a scan, not argmax/argmin, whose order matters)."""
    return spec.order == "inner" and spec.n_red == 1 and not REDUCE_OPS[spec.op] \
        and spec.op not in ("argmax", "argmin") and spec.walk != "spread"


def streamed_or_rows(b, module, fname, spec, ra, args, start, stop, init) -> None:
    """Where every item's reduced range has STREAM_MIN elements or more and there are two items
    or more, a call of the streamed walk of ``[start, stop)`` (a function of its own, so that its
    code does not move the one-stream loops' code: their speed on rows of a few elements depends
    on where they lie) and return; the builder continues in the one-stream form's block."""
    walk = _streams_function(module, fname, spec, init)
    length = ra.chunk if spec.chunked else ra.total_red
    streamed, rows = b.append_basic_block("streamed"), b.append_basic_block("rows")
    # (a range of one item, as a GPU thread's, has no streams to walk side by side)
    several = b.icmp_signed(">=", b.sub(stop, start), const(I64, 2))
    b.cbranch(b.and_(several, b.icmp_signed(">=", length, const(I64, STREAM_MIN))), streamed, rows)
    b.position_at_end(streamed)
    b.call(walk, [args, start, stop])
    b.ret_void()
    b.position_at_end(rows)


def _streams_function(module, fname, spec, init) -> ir.Function:
    """``void NAME_streams(i64* args, i64 start, i64 stop)``: the streamed walk (never inlined)."""
    from .elementwise import Leaves, emit_expr
    from .irb import add_offsets
    from .reduction import ReduceArgs, _combine, _finish, _flat, _partials, _store_value, _unflat
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname + "_streams")
    fn.attributes.add("noinline")
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    lay = ra.layout
    zeros = [const(I64, 0)] * len(ra.all_strides)

    def items(w):
        o, c = (b.sdiv(w, ra.nchunks), b.srem(w, ra.nchunks)) if spec.chunked else (w, const(I64, 0))
        lo = b.mul(c, ra.chunk)
        hi = b.add(lo, ra.chunk)
        return add_offsets(b, o, ra.kept, ra.all_strides, zeros), lo, b.select(
            b.icmp_signed("<", hi, ra.total_red), hi, ra.total_red)

    def element(bases, j):
        leaf = Leaves(b, args, ra.ops, ra.idx_strides, ra.scalars, spec.classes, bases, j, lay["gather"],
                      lay["error"])
        return emit_expr(b, spec.expr, leaf)

    def step(bases):
        def go(j, phis):
            v = cast(b, ra.expr_dt, ra.acc_dt, element(bases, j))
            return _flat(_combine(b, spec.op, ra.acc_dt, _unflat(phis, init), v))
        return go

    def store(w, kbases, flat):
        if spec.chunked:
            _store_value(b, _partials(b, args, lay, ra.acc_dt), w, _unflat(flat, init))
        else:
            _store_value(b, ra.ops[0], kbases[0],
                         _finish(b, spec, ra.acc_dt, ra.out_dt, _unflat(flat, init), ra.divisor))

    emit_streams(b, module, fname, spec, ra, start, stop, items, element, step, _flat(init), store)
    b.ret_void()
    return fn


def emit_streams(b, module, fname, spec, ra, start, stop, items, element, step, init: list, store) -> None:
    """Emit the streamed walk of work items ``[start, stop)``: ``items(w)`` gives item w's
    ``(kept bases, lo, hi)``, ``element(bases, j)`` and ``step(bases)(j, phis)`` its values and
    the accumulate step (flat phis), ``store(w, kbases, flat)`` its result; ``init`` the flat
    identity. The builder is left after the walk."""
    count = b.sub(stop, start)
    q = b.sdiv(b.add(count, const(I64, STREAMS - 1)), const(I64, STREAMS))
    # (the bytes read per element: the widest input's, e.g. 4 for any(x < 0) of float32)
    expr_size = max([ra.expr_dt.itemsize] + [op.dtype.itemsize for op in ra.ops[1:]])
    blocked = float32_blocks(spec)
    extremum = fast_extremum(spec)
    lanes = flag_lanes(spec)
    counted = count_blocks(spec)  # (a visit is one block of kernels.reduction_rows.count_block)
    visit = max(16, STREAM_BYTES // expr_size)
    if blocked:  # a visit is one float32 block (or a shorter one: 128 values)
        visit = min(F32_BLOCK, visit)
    md = block_metadata(module, fname, _math(spec)) if blocked else None
    # max/min of a plain contiguous input: full visits in explicit vectors kept across visits
    vec = extremum and spec.expr == (("in", 0),) and spec.classes[1] == "c"
    with for_range(b, const(I64, 0), q, name="sw") as i:
        streams = []
        for s in range(STREAMS):
            w = b.add(b.add(start, b.mul(q, const(I64, s))), i)
            valid = b.icmp_signed("<", w, stop) if s else ir.Constant(I1, 1)
            w = b.select(valid, w, start)
            kbases, lo, hi = items(w)
            hi = b.select(valid, hi, lo)
            streams.append((w, valid, kbases, lo, hi))
        longest = const(I64, 0)
        for _, _, _, lo, hi in streams:
            n = b.sub(hi, lo)
            longest = b.select(b.icmp_signed(">", n, longest), n, longest)
        if blocked:
            state = [[const(ir.DoubleType(), -0.0)] for _ in streams]
        elif extremum:
            state = [extremum_start(spec.op, ra.acc_dt) + (_vector_start(spec.op, ra.acc_dt) if vec else [])
                     for _ in streams]
        elif lanes is not None:
            state = [[const(lanes, 0)] for _ in streams]
        else:
            state = [list(init) for _ in streams]
        # the visits: offset t of every item's range, STREAM_BYTES at a time, the streams in turn
        pre = b.block
        head, body, done = (b.append_basic_block(f"sv.{n}") for n in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        t = b.phi(I64, name="t")
        t.add_incoming(const(I64, 0), pre)
        phis = []
        for st in state:
            ps = [b.phi(v.type) for v in st]
            for p, v in zip(ps, st):
                p.add_incoming(v, pre)
            phis.append(ps)
        b.cbranch(b.icmp_signed("<", t, longest), body, done)
        b.position_at_end(body)
        new = []
        for (w, valid, kbases, lo, hi), ps in zip(streams, phis):
            jb = b.add(lo, t)
            jb = b.select(b.icmp_signed("<", jb, hi), jb, hi)
            je = b.add(jb, const(I64, visit))
            je = b.select(b.icmp_signed("<", je, hi), je, hi)
            el = (lambda kb: lambda j: element(kb, j))(kbases)
            if blocked:
                new.append([b.fadd(ps[0], block_total(b, md, jb, je, el, step(kbases)), flags=("reassoc",))])
            elif vec:
                new.append(_vector_visit(b, spec.op, ra.ops[1], kbases[1], jb, je, visit, ps, el))
            elif extremum:
                new.append(extremum_block(b, spec.op, jb, je, ps, el))
            elif lanes is not None:
                bool_of = (lambda e: lambda j: cast(b, ra.expr_dt, ra.acc_dt, e(j)))(el)
                new.append([flag_block(b, spec.op, lanes, jb, je, ps[0], bool_of)])
            elif counted:
                new.append([count_block(b, jb, je, ps[0], el, visit)])
            else:
                new.append(row_loop(b, jb, je, ps, step(kbases), None, "sj"))
        for ps, vals in zip(phis, new):
            for p, v in zip(ps, vals):
                p.add_incoming(v, b.block)
        t.add_incoming(b.add(t, const(I64, visit)), b.block)
        b.branch(head)
        b.position_at_end(done)
        for (w, valid, kbases, lo, hi), ps in zip(streams, phis):
            if extremum:
                acc = init[0]
                exact = (lambda kb, lo_, hi_: lambda: row_loop(b, lo_, hi_, [acc], step(kb), None, "sx")[0])(
                    kbases, lo, hi)
                m, z = _vector_end(b, spec.op, ps) if vec else ps
                flat = [extremum_end(b, spec.op, ra.acc_dt, acc, m, z, exact)]
            elif lanes is not None:
                flat = [flag_end(b, spec.op, init[0], ps[0])]
            else:
                flat = list(ps)
            with b.if_then(valid):
                store(w, kbases, flat)


def _math(spec) -> bool:
    from .elementwise import _has_math
    return _has_math(spec.expr)


#: bytes of one explicit vector of :func:`_vector_visit` (AVX2's registers)
VECTOR_BYTES = 32


def _vector_start(op: str, acc_dt) -> list:
    """The initial vector ``[m, z]`` of :func:`_vector_visit` (extremum_start's, in every lane)."""
    m, z = extremum_start(op, acc_dt)
    lanes = VECTOR_BYTES // acc_dt.itemsize
    return [ir.Constant(ir.VectorType(m.type, lanes), [m.constant] * lanes),
            ir.Constant(ir.VectorType(z.type, lanes), [z.constant] * lanes)]


def _vector_visit(b, op: str, operand, base, jb, je, visit: int, ps: list, element) -> list:
    """One visit of max/min of a contiguous input: ``ps`` = scalar ``[m, z]`` and vector
    ``[m, z]`` (kernels.reduction_rows.extremum's). A full visit is ``visit`` elements as explicit
    vectors updating the vector state, which stays in registers from visit to visit (the
    vectorizer's loop reduced its lanes to a scalar at the end of every visit of 512 bytes:
    about 18 instructions and a few spills per 16 vectors); a short one, the last of an item, goes
    through the scalar loop."""
    m, z, mv, zv = ps
    lanes = mv.type.count
    fast = ("nnan", "nsz")
    full = b.icmp_signed("==", b.sub(je, jb), const(I64, visit))
    vec_block, scalar_block, join = (b.append_basic_block(f"vv.{n}") for n in ("vec", "scalar", "join"))
    b.cbranch(full, vec_block, scalar_block)
    b.position_at_end(vec_block)
    ptr = b.bitcast(b.gep(operand.ptr, [b.add(base, jb)]), mv.type.as_pointer())
    probe = ir.Constant(mv.type, [0.0 if op == "max" else -0.0] * lanes)
    nm, nz = mv, zv
    for k in range(visit // lanes):
        v = b.load(b.gep(ptr, [const(I64, k)]), align=operand.dtype.itemsize)
        better = b.fcmp_ordered(">" if op == "max" else "<", v, nm, flags=fast)
        nm = b.select(better, v, nm, flags=fast)
        nz = b.fadd(nz, b.fmul(v, probe, flags=("contract",)), flags=("reassoc", "contract"))
    vec_end = b.block
    b.branch(join)
    b.position_at_end(scalar_block)
    sm, sz = extremum_block(b, op, jb, je, [m, z], element)
    scalar_end = b.block
    b.branch(join)
    b.position_at_end(join)
    out = []
    for from_vec, from_scalar in ((m, sm), (z, sz), (nm, mv), (nz, zv)):
        p = b.phi(from_vec.type)
        p.add_incoming(from_vec, vec_end)
        p.add_incoming(from_scalar, scalar_end)
        out.append(p)
    return out


def _vector_end(b, op: str, ps: list) -> list:
    """The scalar ``[m, z]`` of :func:`_vector_visit`'s state: the vector lanes folded into the
    scalar ones (the same rules: an ordered compare for ``m``, a sum for ``z``)."""
    m, z, mv, zv = ps
    fast = ("nnan", "nsz")
    for k in range(mv.type.count):
        e = b.extract_element(mv, const(ir.IntType(32), k))
        m = b.select(b.fcmp_ordered(">" if op == "max" else "<", e, m, flags=fast), e, m, flags=fast)
        z = b.fadd(z, b.extract_element(zv, const(ir.IntType(32), k)), flags=("reassoc", "contract"))
    return [m, z]
