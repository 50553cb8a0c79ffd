"""Radix sort phases for NVPTX: a thread block per chunk of the row (``sort`` specs).

The host driver (``_sorting._radix_rows``) and the slots are those of :mod:`.sort_radix` (read its
docstring); NVPTXTarget generates these phases with a block per work item (chunk ``c``) instead of
one thread:

* ``hist`` / ``hist_all``: the block's threads read elements ``lo + t, lo + t + ntid, ...`` of the
  chunk (coalesced), compute the key (:func:`.sort_radix.radix_key`) and add 1 to the digit's
  counter in shared memory (32-bit atomic adds; order-free); after a barrier they store the counts
  at the layout of the host phase;
* ``scatter`` / ``scatter_first``: the stable scatter walks the chunk in tiles of ``ntid``
  elements, in order. In a tile, ``match.any.sync`` gives each thread the lanes of its warp with
  the same digit: its rank among them (lanes below) and, for the last of them, the warp's count of
  that digit, stored at ``wcount[warp][digit]`` in shared memory; after a barrier, each digit's
  counts are turned into offsets across the warps in warp order, starting at the digit's running
  base (the chunk's offset from the ``prefix`` phase plus the earlier tiles), and the base moves
  on; after another barrier every element goes to ``wcount[warp][digit] + rank``. Elements of a
  tile are ordered by (warp, lane), that is by position, so equal digits keep their order: stable.
* ``prefix`` (one work item): one block turns the ``nchunks * 256`` counts into offsets
  (digit-major, chunks in order inside) with the block scan of :mod:`.ptx_scan`, in tiles of
  ``ntid`` counters with a running carry (the host form is one thread's sequential loop).

The host emulation (tests/backend/test_cuda_grid_emulation.py) runs these blocks with concurrent
threads; it checks results against NumPy, not the absence of races on a GPU.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I32, I64, const
from .ptx import ENTRY_SUFFIX, _mark_kernel
from .ptx_block import Intrinsics, block_stride_loop
from .ptx_reduce import LAUNCH_MODE
from .sort_radix import _digit, radix_key, radix_passes
from .spec import SortSpec

__all__ = ["block_sortable", "generate"]

#: digits per pass (8-bit digits); an invalid lane of a tile takes digit NONE (matches no real one)
DIGITS, NONE = 256, 256
BLOCK_PHASES = ("hist", "hist_all", "prefix", "scatter", "scatter_first")


def block_sortable(spec) -> bool:
    """Whether :func:`generate` lowers ``spec`` as a block phase of the radix sort."""
    return isinstance(spec, SortSpec) and spec.phase in BLOCK_PHASES


def generate(spec, module: ir.Module, fname: str, intr: Intrinsics | None = None):
    """NVPTXTarget's generator of ``sort`` specs: block forms of the radix phases, the host
    generator for the rest (merge sort phases)."""
    if not block_sortable(spec):
        from .sort import generate_sort
        return generate_sort(spec, module, fname)
    intr = intr or Intrinsics()
    from .sort import Keys
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]),
                     name=fname + ENTRY_SUFFIX)
    args, n_items, _per = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    slot = lambda k: b.load(b.gep(args, [const(I64, k)]))  # noqa: E731
    K = Keys(b, dtype_named(spec.dtype))
    s = _Slots(b, K, slot)
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    if spec.phase == "prefix":
        return _block_prefix(module, fname, fn, b, intr, s)
    counting = spec.phase.startswith("hist")
    shifts = [8 * p for p in range(radix_passes(K.dtype))] if spec.phase == "hist_all" else [s.shift]
    if counting:
        cnt = _shared(module, fname + "_cnt", I32, len(shifts) * DIGITS, intr)
    else:
        # wcount holds up to `warp` warps: blocks of up to warp**2 threads (1024 for 32 lanes;
        # 35 KB of static shared memory with base and tilesum)
        sh = (_shared(module, fname + "_base", I64, DIGITS, intr),
              _shared(module, fname + "_wcount", I32, intr.warp * DIGITS, intr),
              _shared(module, fname + "_tilesum", I32, DIGITS, intr))

    with block_stride_loop(b, intr, n_items, "c") as c:
        lo = b.mul(c, s.chunk)
        hi = b.add(lo, s.chunk)
        hi = b.select(b.icmp_signed("<", hi, s.n), hi, s.n)
        if counting:
            _block_count(spec, b, intr, K, s, cnt, shifts, c, lo, hi, tid, ntid)
        else:
            _block_scatter(spec, b, intr, K, s, sh, c, lo, hi, tid, ntid)
    b.ret_void()
    _mark_kernel(module, fn)
    module.egpu_launch = LAUNCH_MODE
    return fn


class _Slots:
    """The radix phases' slots (see :mod:`.sort_radix`)."""

    def __init__(self, b, K, slot):
        self.n, self.chunk, self.nchunks, self.shift = slot(0), slot(1), slot(2), slot(3)
        self.sk, self.dk = K.ptr(slot(4)), K.ptr(slot(5))
        self.si, self.di = (b.inttoptr(slot(k), I64.as_pointer()) for k in (6, 7))
        self.hist = b.inttoptr(slot(8), I64.as_pointer())


def _shared(module, name, ty, n, intr):
    g = ir.GlobalVariable(module, ir.ArrayType(ty, n), name, addrspace=intr.shared_addrspace)
    g.linkage = "internal"
    g.initializer = ir.Constant(g.value_type, None)
    return g


def _at(b, g, i):
    return b.gep(g, [const(I32, 0), i])


def _strided(b, start, stop, step, name, body) -> None:
    """``for i in range(start, stop, step): body(i)`` (the threads' share of a range)."""
    pre = b.block
    head, loop, done = (b.append_basic_block(f"{name}.{s}") for s in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, stop), loop, done)
    b.position_at_end(loop)
    body(i)
    i.add_incoming(b.add(i, step), b.block)
    b.branch(head)
    b.position_at_end(done)


def _key(spec, b, K, s, i):
    return radix_key(b, K.dtype, K.load(s.sk, i), spec.descending)


def _block_count(spec, b, intr, K, s, cnt, shifts, c, lo, hi, tid, ntid) -> None:
    """hist / hist_all of chunk ``c``: zero, count with shared atomics, store (3 barriers)."""
    total = const(I64, len(shifts) * DIGITS)
    _strided(b, tid, total, ntid, "z", lambda i: b.store(const(I32, 0), _at(b, cnt, i)))
    intr.barrier(b)

    def count(i):
        k = _key(spec, b, K, s, i)
        for p, sh in enumerate(shifts):
            d = b.add(_digit(b, k, sh), const(I64, p * DIGITS))
            b.atomic_rmw("add", _at(b, cnt, d), const(I32, 1), "monotonic")
    _strided(b, b.add(lo, tid), hi, ntid, "e", count)
    intr.barrier(b)

    def store(i):
        p, d = b.udiv(i, const(I64, DIGITS)), b.urem(i, const(I64, DIGITS))
        row = b.add(b.mul(p, s.nchunks), c) if spec.phase == "hist_all" else c
        v = b.zext(b.load(_at(b, cnt, i)), I64)
        b.store(v, b.gep(s.hist, [b.add(b.mul(row, const(I64, DIGITS)), d)]))
    _strided(b, tid, total, ntid, "s", store)
    intr.barrier(b)  # the counters are zeroed again for the next chunk


def _block_scatter(spec, b, intr, K, s, sh, c, lo, hi, tid, ntid) -> None:
    """scatter / scatter_first of chunk ``c``: tiles of ``ntid`` elements, ranked per warp with
    match.any, offsets across warps per digit, then the stores (4 barriers per tile).

    Shared: ``base[d]`` (int64) the next free position of digit ``d``; ``wcount[w][d]`` (int32)
    warp ``w``'s count of ``d`` in the tile, then its offset within the tile's ``d`` elements;
    ``tilesum[d]`` the tile's count of ``d``, added to ``base[d]`` at the start of the next tile."""
    base, wcount, tilesum = sh
    lane, warp, nwarps, _ = intr.lanes(b, tid, ntid)
    nd = const(I64, DIGITS)
    hrow = b.mul(c, nd)

    def load_base(d):
        b.store(b.load(b.gep(s.hist, [b.add(hrow, d)])), _at(b, base, d))
        b.store(const(I32, 0), _at(b, tilesum, d))
    _strided(b, tid, nd, ntid, "l", load_base)
    span = b.sub(hi, lo)
    ntiles = b.sdiv(b.add(span, b.sub(ntid, const(I64, 1))), ntid)

    def advance(d):
        p = _at(b, base, d)
        b.store(b.add(b.load(p), b.zext(b.load(_at(b, tilesum, d)), I64)), p)

    def offsets(d):  # warp counts of digit d -> offsets in warp order; the tile's total
        pre = b.block
        head, body, done = (b.append_basic_block(f"ow.{x}") for x in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        w, run = b.phi(I64), b.phi(I32)
        w.add_incoming(const(I64, 0), pre)
        run.add_incoming(const(I32, 0), pre)
        b.cbranch(b.icmp_signed("<", w, nwarps), body, done)
        b.position_at_end(body)
        p = _at(b, wcount, b.add(b.mul(w, nd), d))
        got = b.load(p)
        b.store(run, p)
        w.add_incoming(b.add(w, const(I64, 1)), b.block)
        run.add_incoming(b.add(run, got), b.block)
        b.branch(head)
        b.position_at_end(done)
        b.store(run, _at(b, tilesum, d))

    def tile(t):
        i = b.add(b.add(lo, b.mul(t, ntid)), tid)
        valid = b.icmp_signed("<", i, hi)
        d = b.select(valid, _digit(b, _key(spec, b, K, s, b.select(valid, i, lo)), s.shift), const(I64, NONE))
        _strided(b, tid, b.mul(nwarps, nd), ntid, "wz", lambda k: b.store(const(I32, 0), _at(b, wcount, k)))
        _strided(b, tid, nd, ntid, "adv", advance)
        intr.barrier(b)
        mask = b.zext(intr.match_any(b, b.trunc(d, I32)), I64)
        rank = _popc(b, b.and_(mask, b.sub(b.shl(const(I64, 1), lane), const(I64, 1))))
        last = b.icmp_unsigned("==", b.lshr(mask, lane), const(I64, 1))  # no same-digit lane above
        mine = _at(b, wcount, b.add(b.mul(warp, nd), b.select(valid, d, const(I64, 0))))
        with b.if_then(b.and_(valid, last)):
            b.store(b.trunc(b.add(rank, const(I64, 1)), I32), mine)
        intr.barrier(b)
        _strided(b, tid, nd, ntid, "od", offsets)
        intr.barrier(b)
        with b.if_then(valid):
            pos = b.add(b.load(_at(b, base, d)), b.add(b.zext(b.load(mine), I64), rank))
            K.store(s.dk, pos, K.load(s.sk, i))
            if spec.with_idx:
                src = i if spec.phase == "scatter_first" else b.load(b.gep(s.si, [i]))
                b.store(src, b.gep(s.di, [pos]))
        intr.barrier(b)  # base and wcount change at the next tile's start
    _strided(b, const(I64, 0), ntiles, const(I64, 1), "tile", tile)


def _block_prefix(module, fname, fn, b, intr, s):
    """The prefix phase as one block: an exclusive scan of the counts in the order (digit, chunk)
    (element ``e`` is ``hist[(e % nchunks) * 256 + e // nchunks]``), in place, tile by tile."""
    from .ptx_scan import block_scan
    from .ptx_block import shared_array
    tid, ntid = intr.sreg(b, "tid.x"), intr.sreg(b, "ntid.x")
    shared = shared_array(module, fname + "_shared", intr.warp, intr)
    zero = const(I64, 0)
    total = b.mul(s.nchunks, const(I64, DIGITS))
    pre = b.block
    head, body, done = (b.append_basic_block(f"p.{x}") for x in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    first = b.phi(I64)
    carry = b.phi(I64)
    first.add_incoming(zero, pre)
    carry.add_incoming(zero, pre)
    # only block 0 works (one work item; a launch of more blocks leaves the rest idle)
    go = b.and_(b.icmp_signed("<", first, total), b.icmp_unsigned("==", intr.sreg(b, "ctaid.x"), zero))
    b.cbranch(go, body, done)
    b.position_at_end(body)
    e = b.add(first, tid)
    valid = b.icmp_signed("<", e, total)
    safe = b.select(valid, e, zero)
    ptr = b.gep(s.hist, [b.add(b.mul(b.urem(safe, s.nchunks), const(I64, DIGITS)), b.udiv(safe, s.nchunks))])
    v = b.select(valid, b.load(ptr), zero)
    add = lambda b, x, y: [b.add(x[0], y[0])]  # noqa: E731
    (incl,), (tile,) = block_scan(b, intr, shared, add, [v], [zero], [carry])
    with b.if_then(valid):
        b.store(b.sub(incl, v), ptr)
    intr.barrier(b)  # the warp totals are read before the next tile writes them
    first.add_incoming(b.add(first, ntid), b.block)
    carry.add_incoming(b.add(carry, tile), b.block)
    b.branch(head)
    b.position_at_end(done)
    b.ret_void()
    _mark_kernel(module, fn)
    module.egpu_launch = LAUNCH_MODE
    return fn


def _popc(b, x):
    fn = b.module.declare_intrinsic("llvm.ctpop", [x.type])
    return b.call(fn, [x])
