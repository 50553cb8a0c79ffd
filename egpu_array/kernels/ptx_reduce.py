"""Block reductions for NVPTX: the phase 1 of a chunked reduction, one thread block per work item.

Used by NVPTXTarget for ``reduce`` specs that are ``chunked`` (few outputs, long rows: a whole-array
sum, a sum over a long axis) and neither scans nor argmax/argmin, in the "inner" order; every other
reduce spec uses the host generator under the grid-stride wrapper. Same argument slots and partials
layout as :mod:`.reduction` (work item ``w`` reduces chunk ``w % nchunks`` of output
``w // nchunks`` into ``partials[w]``; the one-thread finalize step of :mod:`.reduction` combines
them), but the chunk is shared by the threads of a block:

1. thread ``t`` accumulates elements ``r_lo + t, r_lo + t + ntid, ...`` of the chunk (neighbouring
   threads read neighbouring elements when the reduced dimension is contiguous: coalesced);
2. each warp combines its 32 accumulators with ``shfl.sync.down`` (5 steps; a lane whose partner
   is past the block's last thread keeps its value);
3. lane 0 of every warp writes its value to shared memory; after a barrier, warp 0 combines those
   the same way and thread 0 stores the partial.

The entry ``NAME_grid(i64* args, i64 n, i64 per)`` strides over work items by blocks. The GPU
operations go through an :class:`Intrinsics` object, so tests can run the kernel on the host with
one-thread blocks (shuffles then have no partner; barriers are no-ops).
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import Leaves, emit_expr
from .irb import I1, I32, I64, add_offsets, const
from .ops import cast
from .ptx import ENTRY_SUFFIX, _mark_kernel, _sreg
from .reduction import (ReduceArgs, _combine, _const_of, _flat, _generate_finalize, _partials, _store_value,
                        _unflat,
                        generate_reduction, identity_of, reduce_arg_layout)
from .spec import REDUCE_OPS, ReduceSpec

__all__ = ["generate", "block_reducible", "Intrinsics", "LAUNCH_MODE"]

#: what NVPTXTarget writes in the PTX header for kernels whose entry wants one block per work item
LAUNCH_MODE = "block"
WARP = 32


class Intrinsics:
    """The GPU operations the block reduction uses (NVVM intrinsics); tests substitute a host form."""

    shared_addrspace = 3

    def sreg(self, b: ir.IRBuilder, name: str) -> ir.Value:
        return _sreg(b, name)

    def shfl_down(self, b: ir.IRBuilder, v: ir.Value, delta: int) -> ir.Value:
        """The i32 ``v`` of lane ``lane + delta`` of the warp (all 32 lanes take part)."""
        name = "llvm.nvvm.shfl.sync.down.i32"
        fn = b.module.globals.get(name)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(I32, [I32, I32, I32, I32]), name=name)
        return b.call(fn, [const(I32, -1), v, const(I32, delta), const(I32, WARP - 1)])

    def barrier(self, b: ir.IRBuilder) -> None:
        name = "llvm.nvvm.barrier0"
        fn = b.module.globals.get(name)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(ir.VoidType(), []), name=name)
        b.call(fn, [])


def block_reducible(spec) -> bool:
    """Whether :func:`generate` lowers ``spec`` as a block reduction."""
    return (isinstance(spec, ReduceSpec) and spec.chunked and spec.order == "inner"
            and not REDUCE_OPS[spec.op] and spec.op not in ("argmax", "argmin"))


def generate(spec, module: ir.Module, fname: str, intr: Intrinsics | None = None):
    """NVPTXTarget's generator of ``reduce`` specs: a block reduction when :func:`block_reducible`,
    else the host generator (then the grid-stride wrapper is added as for every kind)."""
    if not block_reducible(spec):
        return generate_reduction(spec, module, fname)
    intr = intr or Intrinsics()
    lay = reduce_arg_layout(spec)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]),
                     name=fname + ENTRY_SUFFIX)
    args, n_items, _per = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    nk = spec.n_kept
    kept, red, ops, idx_strides, scalars = ra.kept, ra.red, ra.ops, ra.idx_strides, ra.scalars
    expr_dt, acc_dt = ra.expr_dt, ra.acc_dt
    nchunks, chunk, all_strides, total_red = ra.nchunks, ra.chunk, ra.all_strides, ra.total_red
    init = _const_of(acc_dt, identity_of(spec.op, acc_dt))
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    lane, warp = b.and_(tid, const(I64, WARP - 1)), b.lshr(tid, const(I64, 5))
    nwarps = b.lshr(b.add(ntid, const(I64, WARP - 1)), const(I64, 5))
    comps = len(_flat(init))
    shared = ir.GlobalVariable(module, ir.ArrayType(I64, WARP * comps), fname + "_shared",
                               addrspace=intr.shared_addrspace)
    shared.linkage = "internal"
    shared.initializer = ir.Constant(shared.value_type, None)

    # ---- work items, one per block, block-strided ----------------------------------------------
    first, nblocks = intr.sreg(b, "ctaid.x"), intr.sreg(b, "nctaid.x")
    pre = b.block
    w_head, w_body, w_done = (b.append_basic_block(n) for n in ("w.head", "w.body", "w.done"))
    b.branch(w_head)
    b.position_at_end(w_head)
    w = b.phi(I64, name="w")
    w.add_incoming(first, pre)
    b.cbranch(b.icmp_signed("<", w, n_items), w_body, w_done)
    b.position_at_end(w_body)
    o, c = b.sdiv(w, nchunks), b.srem(w, nchunks)
    kbases = add_offsets(b, o, kept, all_strides, [const(I64, 0)] * len(all_strides))
    r_lo = b.mul(c, chunk)
    r_hi = b.add(r_lo, chunk)
    r_hi = b.select(b.icmp_signed("<", r_hi, total_red), r_hi, total_red)

    # ---- this thread's elements of the chunk: r_lo + tid, + ntid, ... ------------------------
    r_first = b.add(r_lo, tid)
    r_pre = b.block
    r_head, r_body, r_done = (b.append_basic_block(n) for n in ("r.head", "r.body", "r.done"))
    b.branch(r_head)
    b.position_at_end(r_head)
    r = b.phi(I64, name="r")
    r.add_incoming(r_first, r_pre)
    accs = [b.phi(v.type) for v in _flat(init)]
    for p, v in zip(accs, _flat(init)):
        p.add_incoming(v, r_pre)
    b.cbranch(b.icmp_signed("<", r, r_hi), r_body, r_done)
    b.position_at_end(r_body)
    row, j = b.sdiv(r, red[-1]), b.srem(r, red[-1])
    bases = add_offsets(b, row, red[:-1], all_strides, kbases, first=nk)
    leaf = Leaves(b, args, ops, idx_strides, scalars, spec.classes, bases, j, lay["gather"], lay["error"])
    v = cast(b, expr_dt, acc_dt, emit_expr(b, spec.expr, leaf))
    new = _flat(_combine(b, spec.op, acc_dt, _unflat(accs, init), v))
    for p, x in zip(accs, new):
        p.add_incoming(x, b.block)
    r.add_incoming(b.add(r, ntid), b.block)
    b.branch(r_head)
    b.position_at_end(r_done)

    # ---- combine the block's accumulators ------------------------------------------------------
    acc = _warp_combine(b, intr, spec, acc_dt, init, _unflat(accs, init), lane, b.sub(ntid, b.mul(warp, const(I64, WARP))))
    with b.if_then(b.icmp_unsigned("==", lane, const(I64, 0))):
        _shared_store(b, shared, warp, acc_dt, acc, comps)
    intr.barrier(b)
    with b.if_then(b.icmp_unsigned("==", warp, const(I64, 0))):
        mine = b.icmp_unsigned("<", lane, nwarps)
        got = _shared_load(b, shared, b.select(mine, lane, const(I64, 0)), acc_dt, init, comps)
        val = tuple(b.select(mine, g, i) for g, i in zip(_flat(got), _flat(init)))
        total = _warp_combine(b, intr, spec, acc_dt, init, _unflat(list(val), init), lane, nwarps)
        with b.if_then(b.icmp_unsigned("==", lane, const(I64, 0))):
            _store_value(b, _partials(b, args, lay, acc_dt), w, total)
    intr.barrier(b)  # the shared slots are reused by the next work item
    w.add_incoming(b.add(w, nblocks), b.block)
    b.branch(w_head)
    b.position_at_end(w_done)
    b.ret_void()
    _mark_kernel(module, fn)
    module.egpu_launch = LAUNCH_MODE
    _generate_finalize(spec, module, fname + "_fin", lay)
    return fn


def _warp_combine(b, intr, spec, acc_dt, init, acc, lane, active):
    """Tree-combine ``acc`` over the warp: after it, lane 0 holds the combination of lanes
    ``[0, active)``; a lane whose partner ``lane + d`` is not below ``active`` keeps its value."""
    for d in (16, 8, 4, 2, 1):
        other = _unflat([_from_i32s(b, [intr.shfl_down(b, p, d) for p in _to_i32s(b, x)], x.type)
                         for x in _flat(acc)], init)
        has = b.icmp_unsigned("<", b.add(lane, const(I64, d)), active)
        comb = _combine(b, spec.op, acc_dt, acc, other)
        acc = _unflat([b.select(has, y, x) for x, y in zip(_flat(acc), _flat(comb))], init)
    return acc


def _to_i32s(b, x) -> list:
    """A value as the i32 words a shuffle moves (bool: one word; 64-bit: two)."""
    ty = x.type
    if ty == I1:
        return [b.zext(x, I32)]
    bits = ty.width if isinstance(ty, ir.IntType) else (32 if ty == ir.FloatType() else 64)
    ity = ir.IntType(bits)
    raw = x if isinstance(ty, ir.IntType) else b.bitcast(x, ity)
    if bits <= 32:
        return [b.zext(raw, I32) if bits < 32 else raw]
    return [b.trunc(raw, I32), b.trunc(b.lshr(raw, const(ity, 32)), I32)]


def _from_i32s(b, words, ty):
    if ty == I1:
        return b.trunc(words[0], I1)
    bits = ty.width if isinstance(ty, ir.IntType) else (32 if ty == ir.FloatType() else 64)
    ity = ir.IntType(bits)
    if bits <= 32:
        raw = b.trunc(words[0], ity) if bits < 32 else words[0]
    else:
        raw = b.or_(b.zext(words[0], ity), b.shl(b.zext(words[1], ity), const(ity, 32)))
    return raw if isinstance(ty, ir.IntType) else b.bitcast(raw, ty)


def _shared_slot(b, shared, idx, k, comps):
    return b.gep(shared, [const(I32, 0), b.add(b.mul(idx, const(I64, comps)), const(I64, k))])


def _shared_store(b, shared, idx, acc_dt, acc, comps) -> None:
    for k, x in enumerate(_flat(acc)):
        b.store(_to_i64(b, x), _shared_slot(b, shared, idx, k, comps))


def _shared_load(b, shared, idx, acc_dt, init, comps):
    vals = [_from_i64(b, b.load(_shared_slot(b, shared, idx, k, comps)), x.type)
            for k, x in enumerate(_flat(init))]
    return _unflat(vals, init)


def _to_i64(b, x):
    ty = x.type
    if isinstance(ty, ir.IntType):
        return b.zext(x, I64) if ty.width < 64 else x
    return b.zext(b.bitcast(x, I32), I64) if ty == ir.FloatType() else b.bitcast(x, I64)


def _from_i64(b, v, ty):
    if isinstance(ty, ir.IntType):
        return b.trunc(v, ty) if ty.width < 64 else v
    return b.bitcast(b.trunc(v, I32), ty) if ty == ir.FloatType() else b.bitcast(v, ty)

