"""Block scans for NVPTX: cumulative sums and products, one thread block per scanned row.

Used by NVPTXTarget (through :func:`.ptx_reduce.generate`) for ``reduce`` specs of the scan ops
(``cumsum``, ``cumprod``) that are not chunked, in the "inner" order (all the scheduler produces
for scans). Same argument slots as :mod:`.reduction`; work item ``w`` is output row ``w`` (its
flat reduced space ``[0, L)``), and the block walks it in tiles of ``ntid`` elements:

1. thread ``t`` loads element ``base + t`` of the tile (neighbouring threads read neighbouring
   elements when the scanned dimension is contiguous) and casts it to the accumulator dtype;
   threads past the row's end take the identity;
2. each warp scans its 32 values inclusively with ``shfl.sync.up`` (5 steps for 32 lanes, Hillis-Steele);
3. the last lane of every warp writes the warp's total to shared memory; after a barrier warp 0
   scans those totals the same way and writes them back (inclusive), and after a second barrier
   warp ``k`` adds the total of warps ``< k``;
4. every thread adds the carry (the combination of all earlier tiles of the row) and stores its
   result cast to the output dtype; the carry grows by the tile's total (the last warp's
   inclusive total), and a third barrier lets the next tile reuse the shared slots.

Integer results wrap as the host kernel's do (two's complement, then the cast to the output
dtype: the same bits, since integer + and * are associative modulo 2**64). Float results are the
same sums/products in another association (a tree within a tile, carries across tiles) so they
match the host's sequential order to rounding (float32 scans accumulate in float64 as on the host).

Not yet: chunked scans (several blocks per row, a carry pass between them): the scheduler does not
chunk scans, so a single long row runs on one block of ``ntid`` threads.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import Leaves, emit_expr
from .irb import I64, add_offsets, const
from .ops import cast
from .ptx import _mark_kernel
from .ptx_block import (Intrinsics, _from_i32s, _to_i32s, block_stride_loop, shared_array, shared_load,
                        shared_store)
from .ptx_reduce import LAUNCH_MODE, block_entry
from .reduction import _combine, _const_of, _flat, _store_value, _unflat, identity_of
from .spec import REDUCE_OPS, ReduceSpec

__all__ = ["block_scannable", "generate_scan", "warp_scan", "block_scan"]


def block_scannable(spec) -> bool:
    """Whether ``spec`` is lowered as a block scan (a scan op, not chunked, inner order)."""
    return (isinstance(spec, ReduceSpec) and REDUCE_OPS[spec.op] and not spec.chunked
            and spec.order == "inner")


def warp_scan(b, intr: Intrinsics, merge, vals: list, lane) -> list:
    """Inclusive scan of the flat values ``vals`` over the warp's lanes in lane order:
    ``merge(b, earlier, later) -> flat``; lane ``l`` ends with the merge of lanes ``0..l``."""
    for d in reversed(intr.deltas()):
        up = [_from_i32s(b, [intr.shfl_up(b, p, d) for p in _to_i32s(b, x)], x.type) for x in vals]
        has = b.icmp_unsigned(">=", lane, const(I64, d))
        comb = merge(b, up, vals)
        vals = [b.select(has, y, x) for x, y in zip(vals, comb)]
    return vals


def block_scan(b, intr: Intrinsics, shared, merge, vals: list, ident: list, carry: list) -> tuple:
    """Inclusive scan of one value per thread over the block in thread order, after ``carry``:
    ``(carry (+) vals[0..tid], the block's total)``. Warp scans, the last lane of every warp
    stores the warp's total in ``shared`` (a record per warp), warp 0 scans those, each warp adds
    the total of the warps before it. Two barriers; the caller needs a third before ``shared``
    is written again (the totals are read after the second)."""
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    lane, warp, nwarps, in_warp = intr.lanes(b, tid, ntid)
    width = const(I64, intr.warp)
    last_lane = b.sub(b.select(b.icmp_unsigned("<", in_warp, width), in_warp, width), const(I64, 1))
    scanned = warp_scan(b, intr, merge, vals, lane)
    with b.if_then(b.icmp_unsigned("==", lane, last_lane)):
        shared_store(b, shared, warp, scanned)
    intr.barrier(b)
    with b.if_then(b.icmp_unsigned("==", warp, const(I64, 0))):
        has = b.icmp_unsigned("<", lane, nwarps)
        mine = shared_load(b, shared, b.select(has, lane, const(I64, 0)), ident)
        totals = warp_scan(b, intr, merge, [b.select(has, m, x) for m, x in zip(mine, ident)], lane)
        with b.if_then(has):
            shared_store(b, shared, lane, totals)
    intr.barrier(b)
    is_first = b.icmp_unsigned("==", warp, const(I64, 0))
    before = shared_load(b, shared, b.select(is_first, const(I64, 0), b.sub(warp, const(I64, 1))), ident)
    before = [b.select(is_first, x, y) for x, y in zip(ident, before)]
    return merge(b, carry, merge(b, before, scanned)), shared_load(b, shared, b.sub(nwarps, const(I64, 1)), ident)


def generate_scan(spec: ReduceSpec, module: ir.Module, fname: str, intr: Intrinsics) -> ir.Function:
    """Add the entry ``NAME_grid(i64* args, i64 n, i64 per)`` of a block scan of ``spec``: block
    ``ctaid`` scans rows ``ctaid, ctaid + nctaid, ...`` of the ``n`` rows; sets the module's launch
    mode to "block"."""
    fn, b, args, n_items, ra, lay = block_entry(module, fname, spec)
    op = spec.op
    expr_dt, acc_dt, out_dt = ra.expr_dt, ra.acc_dt, ra.out_dt
    like = _const_of(acc_dt, identity_of(op, acc_dt))
    ident = _flat(like)

    def merge(b, x, y):
        return _flat(_combine(b, op, acc_dt, _unflat(x, like), _unflat(y, like)))

    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    shared = shared_array(module, fname + "_shared", intr.warp * len(ident), intr)
    total_red, red = ra.total_red, ra.red

    # ---- rows, one per block, block-strided ----------------------------------------------------
    with block_stride_loop(b, intr, n_items, "w") as w:
        kbases = add_offsets(b, w, ra.kept, ra.all_strides, [const(I64, 0)] * len(ra.all_strides))

        # ---- tiles of ntid elements (the same count on every thread: barriers stay uniform) --------
        t_pre = b.block
        t_head, t_body, t_done = (b.append_basic_block(n) for n in ("t.head", "t.body", "t.done"))
        b.branch(t_head)
        b.position_at_end(t_head)
        base = b.phi(I64, name="base")
        base.add_incoming(const(I64, 0), t_pre)
        carry = [b.phi(x.type) for x in ident]
        for p, x in zip(carry, ident):
            p.add_incoming(x, t_pre)
        b.cbranch(b.icmp_signed("<", base, total_red), t_body, t_done)
        b.position_at_end(t_body)
        r = b.add(base, tid)
        valid = b.icmp_signed("<", r, total_red)
        safe = b.select(valid, r, const(I64, 0))
        row, j = b.sdiv(safe, red[-1]), b.srem(safe, red[-1])
        bases = add_offsets(b, row, red[:-1], ra.all_strides, kbases, first=spec.n_kept)
        with b.if_else(valid) as (then, other):
            with then:
                leaf = Leaves(b, args, ra.ops, ra.idx_strides, ra.scalars, spec.classes, bases, j, lay["gather"],
                              lay["error"])
                got = _flat(cast(b, expr_dt, acc_dt, emit_expr(b, spec.expr, leaf)))
                got_block = b.block
            with other:
                other_block = b.block
        vals = []
        for g, x in zip(got, ident):
            p = b.phi(x.type)
            p.add_incoming(g, got_block)
            p.add_incoming(x, other_block)
            vals.append(p)

        result, tile = block_scan(b, intr, shared, merge, vals, ident, carry)
        with b.if_then(valid):
            out = ra.ops[0]
            off = b.add(bases[0], b.mul(j, out.strides[-1]))
            _store_value(b, out, off, cast(b, acc_dt, out_dt, _unflat(result, like)))
        new_carry = merge(b, carry, tile)
        intr.barrier(b)  # every thread has read the totals before the next tile writes them
        for p, x in zip(carry, new_carry):
            p.add_incoming(x, b.block)
        base.add_incoming(b.add(base, ntid), b.block)
        b.branch(t_head)

        b.position_at_end(t_done)
    b.ret_void()
    _mark_kernel(module, fn)
    module.egpu_launch = LAUNCH_MODE
    return fn
