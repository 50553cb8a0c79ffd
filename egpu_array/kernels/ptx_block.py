"""Thread-block building blocks of our NVPTX kernels (block reductions, scans, sorts, the tiled
GEMM): the GPU operations behind an :class:`Intrinsics` object (so tests run the same kernels on
the host with emulated blocks), block-strided work-item loops, shared-memory records of flat
values, warp and block tree merges.
"""
from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir

from .irb import I1, I32, I64, const
from .ptx import _sreg

__all__ = ["Intrinsics", "WARP", "block_stride_loop", "block_combine", "warp_combine", "shared_array",
           "shared_store", "shared_load"]

WARP = 32


class Intrinsics:
    """The GPU operations the block reduction uses (NVVM intrinsics); tests substitute a host form."""

    shared_addrspace = 3
    #: lanes per warp (32 on NVIDIA GPUs; the host emulation may use fewer: the same code, cheaper)
    warp = WARP

    def lanes(self, b: ir.IRBuilder, tid, ntid) -> tuple:
        """(lane, warp index, warps in the block, threads of the block from this warp's first on)."""
        w, sh = self.warp, self.warp.bit_length() - 1
        wid = b.lshr(tid, const(I64, sh))
        return (b.and_(tid, const(I64, w - 1)), wid, b.lshr(b.add(ntid, const(I64, w - 1)), const(I64, sh)),
                b.sub(ntid, b.mul(wid, const(I64, w))))

    def deltas(self) -> list:
        """The shuffle distances of a warp tree, largest first: 16, 8, 4, 2, 1 for 32 lanes."""
        return [1 << k for k in reversed(range(self.warp.bit_length() - 1))]

    def sreg(self, b: ir.IRBuilder, name: str) -> ir.Value:
        return _sreg(b, name)

    def shfl_down(self, b: ir.IRBuilder, v: ir.Value, delta: int) -> ir.Value:
        """The i32 ``v`` of lane ``lane + delta`` of the warp (all 32 lanes take part)."""
        name = "llvm.nvvm.shfl.sync.down.i32"
        fn = b.module.globals.get(name)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(I32, [I32, I32, I32, I32]), name=name)
        return b.call(fn, [const(I32, -1), v, const(I32, delta), const(I32, WARP - 1)])

    def shfl_up(self, b: ir.IRBuilder, v: ir.Value, delta: int) -> ir.Value:
        """The i32 ``v`` of lane ``lane - delta`` (lanes below ``delta`` keep their own)."""
        name = "llvm.nvvm.shfl.sync.up.i32"
        fn = b.module.globals.get(name)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(I32, [I32, I32, I32, I32]), name=name)
        return b.call(fn, [const(I32, -1), v, const(I32, delta), const(I32, 0)])

    def match_any(self, b: ir.IRBuilder, v: ir.Value) -> ir.Value:
        """The i32 mask of the warp's lanes whose i32 ``v`` equals this lane's (all lanes take part)."""
        name = "llvm.nvvm.match.any.sync.i32"
        fn = b.module.globals.get(name)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(I32, [I32, I32]), name=name)
        return b.call(fn, [const(I32, -1), v])

    def barrier(self, b: ir.IRBuilder) -> None:
        name = "llvm.nvvm.barrier0"
        fn = b.module.globals.get(name)
        if fn is None:
            fn = ir.Function(b.module, ir.FunctionType(ir.VoidType(), []), name=name)
        b.call(fn, [])


def block_combine(b, intr, merge, accs: list, init: list, shared, tid, ntid) -> list:
    """Merge the flat values ``accs`` of every thread of the block (warp shuffles, then warp 0 over
    the warps' results in ``shared``); thread 0 gets the block's total (others: unspecified)."""
    lane, warp, nwarps, in_warp = intr.lanes(b, tid, ntid)
    mine = warp_combine(b, intr, merge, list(accs), lane, in_warp)
    with b.if_then(b.icmp_unsigned("==", lane, const(I64, 0))):
        shared_store(b, shared, warp, mine)
    intr.barrier(b)
    out = [ir.Constant(v.type, ir.Undefined) for v in init]
    pre = b.block
    with b.if_then(b.icmp_unsigned("==", warp, const(I64, 0))):
        has = b.icmp_unsigned("<", lane, nwarps)
        got = shared_load(b, shared, b.select(has, lane, const(I64, 0)), init)
        val = [b.select(has, g, i) for g, i in zip(got, init)]
        total = warp_combine(b, intr, merge, val, lane, nwarps)
        inner = b.block
    phis = [b.phi(v.type) for v in init]
    for p, t, u in zip(phis, total, out):
        p.add_incoming(t, inner)
        p.add_incoming(u, pre)
    return phis


@contextmanager
def block_stride_loop(b, intr: "Intrinsics", n_items, name: str = "w"):
    """``for w in range(ctaid.x, n_items, nctaid.x)``: thread block ``ctaid`` takes work items
    ``ctaid, ctaid + nblocks, ...`` (every thread of the block runs the same trip count, so the
    body's barriers are reached by all of them); yields ``w`` with the builder in the body."""
    first, nblocks = intr.sreg(b, "ctaid.x"), intr.sreg(b, "nctaid.x")
    pre = b.block
    head, body, done = (b.append_basic_block(f"{name}.{s}") for s in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    w = b.phi(I64, name=name)
    w.add_incoming(first, pre)
    b.cbranch(b.icmp_signed("<", w, n_items), body, done)
    b.position_at_end(body)
    yield w
    w.add_incoming(b.add(w, nblocks), b.block)
    b.branch(head)
    b.position_at_end(done)


def shared_array(module: ir.Module, name: str, words: int, intr: Intrinsics) -> ir.GlobalVariable:
    """A block-shared array of ``words`` int64 words (internal, zero-initialised)."""
    shared = ir.GlobalVariable(module, ir.ArrayType(I64, words), name, addrspace=intr.shared_addrspace)
    shared.linkage = "internal"
    shared.initializer = ir.Constant(shared.value_type, None)
    return shared


def warp_combine(b, intr, merge, acc: list, lane, active) -> list:
    """Tree-merge the flat values ``acc`` over the warp with ``merge(b, mine, other) -> flat``:
    after it, lane 0 holds the merge of lanes ``[0, active)``, lower lanes on the left; a lane
    whose partner ``lane + d`` is not below ``active`` keeps its value."""
    for d in intr.deltas():
        other = [_from_i32s(b, [intr.shfl_down(b, p, d) for p in _to_i32s(b, x)], x.type) for x in acc]
        has = b.icmp_unsigned("<", b.add(lane, const(I64, d)), active)
        comb = merge(b, acc, other)
        acc = [b.select(has, y, x) for x, y in zip(acc, comb)]
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


def shared_store(b, shared, idx, vals: list) -> None:
    """Store the flat values ``vals`` as record ``idx`` (one int64 word each) of ``shared``."""
    for k, x in enumerate(vals):
        b.store(_to_i64(b, x), _shared_slot(b, shared, idx, k, len(vals)))


def shared_load(b, shared, idx, like: list) -> list:
    """Record ``idx`` of ``shared`` as values of the types of ``like``."""
    return [_from_i64(b, b.load(_shared_slot(b, shared, idx, k, len(like))), x.type) for k, x in enumerate(like)]


def _to_i64(b, x):
    ty = x.type
    if isinstance(ty, ir.IntType):
        return b.zext(x, I64) if ty.width < 64 else x
    return b.zext(b.bitcast(x, I32), I64) if ty == ir.FloatType() else b.bitcast(x, I64)


def _from_i64(b, v, ty):
    if isinstance(ty, ir.IntType):
        return b.trunc(v, ty) if ty.width < 64 else v
    return b.bitcast(b.trunc(v, I32), ty) if ty == ir.FloatType() else b.bitcast(v, ty)
