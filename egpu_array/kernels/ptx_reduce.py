"""Block reductions for NVPTX: a thread block per work item of a row-order reduction.

Used by NVPTXTarget for ``reduce`` specs in the "inner" order that are not scans (see
:mod:`.ptx_scan`) and are ``chunked`` (few outputs, long rows: a whole-array sum, a sum over a long
axis) or have walk "blocks" (many long contiguous rows: thread 0 stores each row's result, no
partials); walk "spread" (chunks of columns, a thread each) uses the host generator under the
grid-stride wrapper, as every other reduce spec does. Same argument slots and partials layout as
:mod:`.reduction` (work item ``w`` reduces chunk ``w % nchunks`` of output ``w // nchunks`` into
``partials[w]``), but the chunk is shared by the threads of a block:

1. thread ``t`` accumulates elements ``r_lo + t, r_lo + t + ntid, ...`` of the chunk (neighbouring
   threads read neighbouring elements when the reduced dimension is contiguous: coalesced);
2. each warp combines its 32 accumulators with ``shfl.sync.down`` (5 steps; a lane whose partner
   is past the block's last thread keeps its value);
3. lane 0 of every warp writes its value to shared memory; after a barrier, warp 0 combines those
   the same way and thread 0 stores the partial.

The finalize step of every chunked spec (spread too) is a block per output as well.
argmax/argmin carry (value, index) pairs (:class:`_ArgBest`): their partial is the chunk's int64
index (8 bytes per chunk, whatever the dtype) and their finalize step re-evaluates the value at
each chunk's index (:func:`_generate_block_arg_finalize`). The scheduler
(``_schedule_reduce._reduce_chunks``) sizes their partials at 8 bytes.

The entry ``NAME_grid(i64* args, i64 n, i64 per)`` strides over work items by blocks. The GPU
operations go through an :class:`Intrinsics` object, so tests run the kernel on the host with
emulated blocks (tests/backend/test_cuda_grid_emulation.py: concurrent OS threads, shuffles and
barriers as callbacks, warps of 4 or 32 lanes).
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import Leaves, emit_expr
from .irb import I64, add_offsets, const
from .ops import cast
from .ptx import ENTRY_SUFFIX, _mark_kernel
from .ptx_block import (Intrinsics, block_combine, block_stride_loop, shared_array, shared_load,  # noqa: F401
                        shared_store, warp_combine)
from .elementwise import dtype_named
from .irb import range_loop
from .reduction import (FinalizeArgs, ReduceArgs, _arg_better, _combine, _const_of, _finish, _flat, _partials,
                        _store_value, _unflat, generate_reduction, identity_of, index_partials,
                        reduce_arg_layout)
from .reduction_arg import arg_finalize_entry, arg_merge, arg_value_at
from .spec import REDUCE_OPS, ReduceSpec

__all__ = ["generate", "block_reducible", "launch_mode", "Intrinsics", "LAUNCH_MODE", "warp_combine",
           "shared_array", "shared_store", "shared_load"]

#: what NVPTXTarget writes in the PTX header for kernels whose entry wants one block per work item
LAUNCH_MODE = "block"


def block_reducible(spec) -> bool:
    """Whether :func:`generate` lowers ``spec`` as a block reduction (inner order, not a scan,
    chunked or walk "blocks", not walk "spread"; argmax/argmin included: their partials are int64
    indices, see :class:`_ArgBest`)."""
    return isinstance(spec, ReduceSpec) and spec.order == "inner" and not REDUCE_OPS[spec.op] \
        and ((spec.chunked and spec.walk != "spread") or spec.walk == "blocks")


def block_finalized(spec) -> bool:
    """Whether the finalize step of ``spec`` is a block kernel, a block per output
    (:func:`_generate_block_finalize`, :func:`_generate_block_arg_finalize`: chunked row-order
    reductions, walk "spread" included); other finalize steps run on one thread."""
    return isinstance(spec, ReduceSpec) and spec.chunked and spec.order == "inner" and not REDUCE_OPS[spec.op]


def launch_mode(spec) -> str:
    """How the cuda device launches the NVPTX form of a ``reduce`` or ``sort`` spec: ``"block"``
    (a thread block per work item: block reductions, block scans, radix sort phases) or
    ``"grid"`` (a thread per work item)."""
    from .ptx_scan import block_scannable
    from .ptx_sort import block_sortable
    return LAUNCH_MODE if block_reducible(spec) or block_scannable(spec) or block_sortable(spec) else "grid"


def generate(spec, module: ir.Module, fname: str, intr: Intrinsics | None = None):
    """NVPTXTarget's generator of ``reduce`` specs: a block reduction when :func:`block_reducible`,
    a block scan when :func:`.ptx_scan.block_scannable`, else the host generator (then the
    grid-stride wrapper is added as for every kind)."""
    from . import ptx_scan
    if ptx_scan.block_scannable(spec):
        return ptx_scan.generate_scan(spec, module, fname, intr or Intrinsics())
    intr = intr or Intrinsics()
    if not block_reducible(spec):
        if not block_finalized(spec):
            return generate_reduction(spec, module, fname)
        # walk "spread": a thread per work item under the grid-stride entry, a block per output
        # to combine the chunks
        fn = generate_reduction(spec, module, fname, finalize=False)
        lay = reduce_arg_layout(spec)
        if spec.op in ("argmax", "argmin"):
            _generate_block_arg_finalize(spec, module, fname + "_fin", lay, intr)
        else:
            _generate_block_finalize(spec, module, fname + "_fin", lay, intr)
        return fn
    fn, b, args, n_items, ra, lay = block_entry(module, fname, spec)
    nchunks, chunk, all_strides, total_red = ra.nchunks, ra.chunk, ra.all_strides, ra.total_red
    acc = (_ArgBest if spec.op in ("argmax", "argmin") else _Accumulate)(spec, ra)
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    shared = shared_array(module, fname + "_shared", intr.warp * len(acc.init), intr)

    # ---- work items, one per block, block-strided ----------------------------------------------
    with block_stride_loop(b, intr, n_items, "w") as w:
        o, c = b.sdiv(w, nchunks), b.srem(w, nchunks)
        kbases = add_offsets(b, o, ra.kept, all_strides, [const(I64, 0)] * len(all_strides))
        r_lo = b.mul(c, chunk)
        r_hi = b.add(r_lo, chunk)
        r_hi = b.select(b.icmp_signed("<", r_hi, total_red), r_hi, total_red)
        accs = _thread_elements(b, spec, ra, lay, acc, kbases, b.add(r_lo, tid), r_hi, ntid, args)
        total = block_combine(b, intr, acc.merge, accs, acc.init, shared, tid, ntid)
        with b.if_then(b.icmp_unsigned("==", tid, const(I64, 0))):
            if spec.chunked:
                acc.store_partial(b, args, lay, w, total)
            else:  # walk "blocks": the block's total is the output's
                acc.store_result(b, ra, kbases[0], total)
        intr.barrier(b)  # the shared slots are reused by the next work item
    b.ret_void()
    _mark_kernel(module, fn)
    module.egpu_launch = LAUNCH_MODE
    if spec.chunked:
        acc.finalize(module, fname + "_fin", lay, intr)
    return fn


#: bytes of the expression's dtype a thread loads per step of a block reduction (independent
#: loads in flight): UNROLL = UNROLL_BYTES // itemsize elements, between 4 and 8
UNROLL_BYTES = 32


def unroll_of(spec) -> int:
    """Elements a thread of a block reduction loads per step (:data:`UNROLL_BYTES`)."""
    from .elementwise import dtype_named
    return min(8, max(4, UNROLL_BYTES // dtype_named(spec.expr_dtype).itemsize))


def _thread_elements(b, spec, ra, lay, acc, kbases, r_first, r_hi, ntid, args) -> list:
    """This thread's accumulators over elements ``r_first, r_first + ntid, ... < r_hi`` of the
    reduced space, in increasing order. The position (row of the innermost reduced dimension,
    column ``j``, operand bases) is unravelled once and then advanced by ``ntid`` (a division
    only where a step leaves the row); while :func:`unroll_of` steps stay in the row they load at
    once, so that many loads are in flight per thread."""
    red, nk = ra.red, spec.n_kept
    width = red[-1]
    one = const(I64, 1)

    def place(r):
        safe = b.select(b.icmp_signed(">", width, const(I64, 0)), width, one)  # (an empty chunk)
        row, j = b.sdiv(r, safe), b.srem(r, safe)
        return j, add_offsets(b, row, red[:-1], ra.all_strides, kbases, first=nk)

    def element(bases, j):
        leaf = Leaves(b, args, ra.ops, ra.idx_strides, ra.scalars, spec.classes, bases, j, lay["gather"],
                      lay["error"])
        return emit_expr(b, spec.expr, leaf)

    j0, bases0 = place(r_first)
    pre = b.block
    head, body, quad, single, step, wrap, done = (b.append_basic_block("r." + n) for n in (
        "head", "body", "quad", "single", "step", "wrap", "done"))
    b.branch(head)
    b.position_at_end(head)
    r, j = b.phi(I64, name="r"), b.phi(I64, name="j")
    bases = [b.phi(I64) for _ in bases0]
    accs = [b.phi(v.type) for v in acc.init]
    for phis, vals in ((r, r_first), (j, j0)):
        phis.add_incoming(vals, pre)
    for phis, vals in ((bases, bases0), (accs, acc.init)):
        for p, v in zip(phis, vals):
            p.add_incoming(v, pre)
    b.cbranch(b.icmp_signed("<", r, r_hi), body, done)

    b.position_at_end(body)
    unroll = unroll_of(spec)
    span = b.mul(ntid, const(I64, unroll - 1))
    fits = b.and_(b.icmp_signed("<", b.add(j, span), width), b.icmp_signed("<", b.add(r, span), r_hi))
    b.cbranch(fits, quad, single)
    outs = []
    for blk, count in ((quad, unroll), (single, 1)):
        b.position_at_end(blk)
        offs = [b.mul(ntid, const(I64, k)) if k else None for k in range(count)]
        vals = [element(bases, b.add(j, d) if d is not None else j) for d in offs]  # loads first
        cur = list(accs)
        for d, v in zip(offs, vals):
            cur = acc.step(b, cur, v, b.add(r, d) if d is not None else r)
        adv = b.mul(ntid, const(I64, count))
        outs.append((b.block, b.add(r, adv), b.add(j, adv), cur))
        b.branch(step)

    b.position_at_end(step)
    r2, j2 = b.phi(I64), b.phi(I64)
    accs2 = [b.phi(v.type) for v in acc.init]
    for blk, rn, jn, cur in outs:
        r2.add_incoming(rn, blk)
        j2.add_incoming(jn, blk)
        for p, v in zip(accs2, cur):
            p.add_incoming(v, blk)
    b.cbranch(b.icmp_signed("<", j2, width), head, wrap)
    r.add_incoming(r2, step)
    j.add_incoming(j2, step)
    for p, v in zip(bases, bases):
        p.add_incoming(v, step)
    for p, v in zip(accs, accs2):
        p.add_incoming(v, step)

    b.position_at_end(wrap)  # the step left the row: unravel again
    jw, basesw = place(r2)
    r.add_incoming(r2, b.block)
    j.add_incoming(jw, b.block)
    for p, v in zip(bases, basesw):
        p.add_incoming(v, b.block)
    for p, v in zip(accs, accs2):
        p.add_incoming(v, b.block)
    b.branch(head)
    b.position_at_end(done)
    return list(accs)


def _generate_block_finalize(spec, module, fname, lay, intr) -> None:
    """Phase 2 of a chunked block reduction, the entry ``NAME_grid(i64* args)``: a thread block per
    output (block-strided), whose threads combine the output's chunk partials (thread ``t``: chunks
    ``t, t + ntid, ...``) and merge them as phase 1 does; thread 0 applies the post-op and stores.
    The cuda device launches it with several blocks of BLOCK threads: a whole-array sum's thousands
    of partials are combined by a block, not by one thread waiting on each load in turn."""
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), name=fname + ENTRY_SUFFIX)
    (args,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fa = FinalizeArgs(b, args, spec, lay)
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    shared = shared_array(module, fname + "_shared", intr.warp * len(fa.init), intr)
    with block_stride_loop(b, intr, fa.n_out, "o") as o:
        mine = fa.combine_chunks(o, tid, ntid)
        total = block_combine(b, intr, fa.merge, mine, fa.init, shared, tid, ntid)
        with b.if_then(b.icmp_unsigned("==", tid, const(I64, 0))):
            fa.store(o, total)
        intr.barrier(b)  # the shared slots are reused by the next output
    b.ret_void()
    _mark_kernel(module, fn)


def _generate_block_arg_finalize(spec, module, fname, lay, intr) -> None:
    """Phase 2 of a chunked argmax/argmin, the entry ``NAME_grid(i64* args)``: a thread block per
    output (block-strided); thread ``t`` merges the pairs (value recomputed at the chunk's index,
    index) of chunks ``t, t + ntid, ...`` (an empty chunk's index -1 is an empty pair) by
    :func:`.reduction_arg.arg_merge`'s total order, whose every merge tree gives the host rule's
    answer (the first NaN, else the first best); thread 0 stores the index."""
    dt = dtype_named(spec.expr_dtype)
    fn, b, args, ra, part, n_out = arg_finalize_entry(module, fname + ENTRY_SUFFIX, spec, lay)
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    init = [_const_of(dt, identity_of(spec.op, dt)), const(I64, -1)]
    shared = shared_array(module, fname + "_shared", intr.warp * len(init), intr)

    def merge(b, a, o):
        return arg_merge(b, spec.op, dt, a, o)
    with block_stride_loop(b, intr, n_out, "o") as o:
        kbases = add_offsets(b, o, ra.kept, ra.all_strides, [const(I64, 0)] * len(ra.all_strides))
        value_at = arg_value_at(b, spec, ra, args, lay, kbases)
        base = b.mul(o, ra.nchunks)

        def chunk(c, acc):
            idx = b.load(b.gep(part, [b.add(base, c)]))
            valid = b.icmp_signed(">=", idx, const(I64, 0))
            return merge(b, acc, [value_at(b.select(valid, idx, const(I64, 0))), idx])
        mine = range_loop(b, tid, ra.nchunks, init, chunk, "c", step=ntid)
        total = block_combine(b, intr, merge, mine, init, shared, tid, ntid)
        with b.if_then(b.icmp_unsigned("==", tid, const(I64, 0))):
            _store_value(b, ra.ops[0], kbases[0], total[1])
        intr.barrier(b)  # the shared slots are reused by the next output
    b.ret_void()
    _mark_kernel(module, fn)


class _Accumulate:
    """sum/prod/min/max/all/any: the accumulator of :mod:`.reduction` (flattened: complex is two
    components); partials and finalize as there."""

    def __init__(self, spec, ra):
        self.spec, self.expr_dt, self.acc_dt = spec, ra.expr_dt, ra.acc_dt
        self.like = _const_of(ra.acc_dt, identity_of(spec.op, ra.acc_dt))
        self.init = _flat(self.like)

    def step(self, b, accs, v, r):
        v = cast(b, self.expr_dt, self.acc_dt, v)
        return _flat(_combine(b, self.spec.op, self.acc_dt, _unflat(accs, self.like), v))

    def merge(self, b, a, o):
        return _flat(_combine(b, self.spec.op, self.acc_dt, _unflat(a, self.like), _unflat(o, self.like)))

    def store_partial(self, b, args, lay, w, accs):
        _store_value(b, _partials(b, args, lay, self.acc_dt), w, _unflat(accs, self.like))

    def store_result(self, b, ra, base, accs):
        """The post-op, cast and store of an unchunked work item's total at the output's ``base``."""
        _store_value(b, ra.ops[0], base, _finish(b, self.spec, self.acc_dt, ra.out_dt, _unflat(accs, self.like),
                                                ra.divisor))

    def finalize(self, module, fname, lay, intr):
        _generate_block_finalize(self.spec, module, fname, lay, intr)


class _ArgBest:
    """argmax/argmin: the pair (best value, its flat index in the reduced space), index -1 while
    a thread has seen no element. A thread visits its elements in increasing index order and keeps
    the host rule (:func:`.reduction._arg_better`: strictly better, or the first NaN); pairs of
    different threads merge by the total order (NaN first, then the better value, then the
    smaller index), which is associative and commutative, so any merge tree gives the host's
    answer: the first NaN, else the first best. A chunk's partial is the int64 index (-1 for an
    empty chunk), so the partials buffer needs 8 bytes per chunk; the finalize step re-evaluates
    the expression at each chunk's index and keeps the host rule over chunks in order."""

    def __init__(self, spec, ra):
        self.spec, self.dt = spec, ra.expr_dt
        self.init = [_const_of(self.dt, identity_of(spec.op, self.dt)), const(I64, -1)]

    def step(self, b, accs, v, r):
        best, idx = accs
        take = b.or_(b.icmp_signed("<", idx, const(I64, 0)), _arg_better(b, self.spec.op, self.dt, best, v))
        return [b.select(take, v, best), b.select(take, r, idx)]

    def merge(self, b, a, o):
        return arg_merge(b, self.spec.op, self.dt, a, o)

    def store_partial(self, b, args, lay, w, accs):
        b.store(accs[1], b.gep(index_partials(b, args, lay), [w]))

    def store_result(self, b, ra, base, accs):
        """An unchunked work item's index (the output's)."""
        _store_value(b, ra.ops[0], base, accs[1])

    def finalize(self, module, fname, lay, intr):
        _generate_block_arg_finalize(self.spec, module, fname, lay, intr)


def block_entry(module: ir.Module, fname: str, spec):
    """The entry ``NAME_grid(i64* args, i64 n_items, i64 per)`` of a block kernel over the
    reduction argument layout: (function, builder in its entry block, args, n_items, ReduceArgs,
    layout)."""
    lay = reduce_arg_layout(spec)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]),
                     name=fname + ENTRY_SUFFIX)
    args, n_items, _per = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    return fn, b, args, n_items, ReduceArgs(b, args, spec), lay


