"""Tiled shared-memory GEMM for NVPTX, with the fused elementwise epilogue of :mod:`.gemm`.

``C[b] = epilogue(A[b] @ B[b], ...)`` for float32/float64 on the cuda device, in the classic SIMT
SGEMM structure (the per-thread pieces and the tiling are in :mod:`.ptx_gemm_tiles`): one thread
block of :data:`THREADS` (256, seen as 16 x 16) computes a ``BM x BN`` (128 x 128) output tile,
each thread an 8 x 8 register tile (2 x 2 sub-tiles of 16-byte vectors), K in slices of ``BK`` (8)
staged in shared memory k-major (A transposed), read back as 16-byte vectors. Per tile:

1. prologue: every thread zeroes its accumulators and copies its part of slice 0 (global memory,
   16-byte loads where the operand's layout, alignment and the edges allow, else element by element
   with zeros past M, N or K) into shared buffer 0; barrier;
2. for each slice ``t``: every thread reads its part of slice ``t + 1`` (if any) into registers,
   accumulates its register tile over the ``BK`` k of buffer ``t % 2`` (``llvm.fma``, unrolled),
   stores the registers into buffer ``(t + 1) % 2``; barrier (one per slice: the buffer written in
   a slice is read in the next one, the one read is written in the next one, after the barrier);
3. each thread applies the epilogue (the spec's expression, with the product as input
   ``acc_input``; ``elementwise.Leaves``/``emit_expr`` as the host GEMM's edge stores) to its valid
   elements and stores them.

Tiles are numbered batch-major, then tile rows, then tile columns; the entry
``NAME_grid(i64* args, i64 n, i64 per)`` strides over tiles by blocks (``ctaid.x``, ``nctaid.x``),
so every loop that contains a barrier has block-uniform bounds.

Argument slots: those of :func:`.gemm.gemm_arg_layout` up to B's strides (the blocking parameters
after them are not read: :func:`arg_layout`). The PTX header says ``mode=tile2d``: the cuda device
launches ``min(n, max_grid)`` blocks of :data:`THREADS` threads over ``n = tile_count(...)`` tiles.

The GPU operations go through a :class:`Gpu` object. Each phase between barriers is emitted as the
body of ``gpu.threads(b)``; per-thread state that crosses a barrier (the accumulators) lives in an
array with ``gpu.lanes`` rows. On the GPU the body is emitted once for the thread at hand and the
array (one row) is promoted to registers; the tests' host form emits the body in a loop over the
threads of the block, so barrier-separated phases run in order, as they do on the GPU.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace

from llvmlite import ir

from .elementwise import Leaves, dtype_named, emit_expr, store_elem
from .gemm import GemmSpec, gemm_arg_layout, load_operands
from .irb import I32, I64, add_offsets, const, mem_type
from .ptx import ENTRY_SUFFIX, _mark_kernel
from .ptx_gemm_tiles import TILINGS, Slice, TileOps, tile_index
from .ptx_block import Intrinsics

__all__ = ["PtxGemmSpec", "generate", "arg_layout", "tile_count", "Gpu", "BM", "BN", "BK", "THREADS",
           "LAUNCH_MODE", "TILINGS"]

BM, BN, BK = TILINGS["float32"].bm, TILINGS["float32"].bn, TILINGS["float32"].bk  # every dtype's bm, bn
THREADS = TILINGS["float32"].threads
assert all((t.bm, t.bn, t.threads) == (BM, BN, THREADS) for t in TILINGS.values())
#: the PTX header's mode: one block of THREADS threads per tile (block-strided over the tiles)
LAUNCH_MODE = "tile2d"
DTYPES = tuple(TILINGS)


@dataclass(frozen=True)
class PtxGemmSpec(GemmSpec):
    """The fields of :class:`.gemm.GemmSpec`; kind ``ptx_gemm`` (this module's generator)."""

    kind = "ptx_gemm"

    @property
    def name(self) -> str:
        return "tiled_" + super().name


def arg_layout(spec) -> dict:
    """Slot offsets (those of ``gemm_arg_layout``); ``size`` ends after B's strides."""
    lay = dict(gemm_arg_layout(spec))
    lay["size"] = lay["MC"]
    return lay


def tile_count(m: int, n: int, n_batch: int) -> int:
    """Thread blocks' worth of work (tiles) of a batch of ``n_batch`` ``m x n`` outputs."""
    return n_batch * -(-m // BM) * -(-n // BN)


class Gpu(Intrinsics):
    """The GPU operations (NVVM special registers and barriers from :class:`.ptx_block.Intrinsics`)
    and the thread model: ``threads`` emits a phase for the current thread; one lane of state.
    Shared-memory indices are i32 element offsets; vector accesses are 16-byte aligned."""

    lanes = 1
    #: address space of A and B's loads (NVPTX global: ``ld.global``; the generic pointers are cast)
    global_addrspace = 1

    @contextmanager
    def threads(self, b: ir.IRBuilder):
        """Emit a phase (code between barriers); yields this thread's index in the block (i64)."""
        yield self.sreg(b, "tid.x")

    def lane(self, b: ir.IRBuilder, tid) -> ir.Value:
        """Row of the per-thread state array for thread ``tid``."""
        return const(I64, 0)

    def shared_load(self, b: ir.IRBuilder, g, idx, tid) -> ir.Value:
        """Element ``idx`` of the shared array ``g``, read by thread ``tid``."""
        return b.load(b.gep(g, [const(I32, 0), idx]))

    def shared_store(self, b: ir.IRBuilder, value, g, idx, tid) -> None:
        """Store ``value`` at element ``idx`` of the shared array ``g`` (thread ``tid``)."""
        b.store(value, b.gep(g, [const(I32, 0), idx]))

    def global_ptr(self, b: ir.IRBuilder, ptr) -> ir.Value:
        """``ptr`` (generic) in :attr:`global_addrspace`."""
        if self.global_addrspace == ptr.type.addrspace:
            return ptr
        return b.addrspacecast(ptr, ptr.type.pointee.as_pointer(self.global_addrspace))

    def global_load(self, b: ir.IRBuilder, ptr, align: int | None = None) -> ir.Value:
        """A load of A or B (scalar or vector ``ptr``; ``align`` bytes promised), not written while
        the kernel runs: ``!invariant.load`` (``ld.global.nc``)."""
        ld = b.load(ptr, align=align)
        ld.set_metadata("invariant.load", b.module.add_metadata([]))
        return ld

    def _vec_ptr(self, b, g, idx, n):
        vt = ir.VectorType(g.value_type.element, n)
        return b.bitcast(b.gep(g, [const(I32, 0), idx]), vt.as_pointer(self.shared_addrspace))

    def shared_load_vec(self, b: ir.IRBuilder, g, idx, n: int, tid) -> list:
        """Elements ``idx .. idx + n - 1`` of ``g`` (one 16-byte load; ``idx`` aligned to it)."""
        ld = b.load(self._vec_ptr(b, g, idx, n))
        ld.align = 16
        return [b.extract_element(ld, const(I32, e)) for e in range(n)]

    def shared_store_vec(self, b: ir.IRBuilder, values: list, g, idx, tid) -> None:
        """Store ``values`` at elements ``idx ..`` of ``g`` (one 16-byte store; ``idx`` aligned)."""
        vec = ir.Constant(ir.VectorType(values[0].type, len(values)), None)
        for e, v in enumerate(values):
            vec = b.insert_element(vec, v, const(I32, e))
        st = b.store(vec, self._vec_ptr(b, g, idx, len(values)))
        st.align = 16


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _ceil_div(b, x, d):
    return b.sdiv(b.add(x, const(I64, d - 1)), const(I64, d))


class _Gen(TileOps):
    """The IR of one tiled GEMM kernel."""

    def __init__(self, spec, module: ir.Module, fname: str, gpu: Gpu):
        self.spec, self.module, self.gpu = spec, module, gpu
        self.tl = TILINGS[spec.dtype]
        self.dt = dtype_named(spec.dtype)
        self.T = mem_type(self.dt)
        self.lay = arg_layout(spec)
        self.fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]),
                              name=fname + ENTRY_SUFFIX)
        self.args, self.n_items, _ = self.fn.args
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))
        self.sh_a = self._shared(fname + "_sa")
        self.sh_b = self._shared(fname + "_sb")
        self.in_phase = False

    def _shared(self, name):
        """Two buffers (double buffering) of ``bk`` padded rows."""
        g = ir.GlobalVariable(self.module, ir.ArrayType(self.T, 2 * self.tl.buf), name,
                              addrspace=self.gpu.shared_addrspace)
        g.linkage = "internal"
        g.initializer = ir.Constant(g.value_type, None)
        g.align = 16
        return g

    def slot(self, k):
        return self.b.load(self.b.gep(self.args, [const(I64, k)]))

    @contextmanager
    def phase(self):
        """A phase of every thread of the block (see ``Gpu.threads``); barriers only between phases.
        Yields (tid as i64, tid as i32)."""
        self.in_phase = True
        with self.gpu.threads(self.b) as tid:
            yield tid, self.b.trunc(tid, I32)
        self.in_phase = False

    def barrier(self):
        assert not self.in_phase, "a barrier inside a per-thread phase"
        self.gpu.barrier(self.b)

    # ---- set-up and the loop over tiles ------------------------------------------------------
    def build(self):
        spec, b, lay = self.spec, self.b, self.lay
        load_operands(self, spec, lay)
        nb = len(self.bext)
        self.vec_ok = (self.vector_ok(self.A, spec.a_layout, -2, -1, nb),
                       self.vector_ok(self.B, spec.b_layout, -1, -2, nb))
        self.gptr = (self.gpu.global_ptr(b, self.A.ptr), self.gpu.global_ptr(b, self.B.ptr))
        tl = self.tl
        self.acc = b.alloca(ir.ArrayType(self.T, self.gpu.lanes * tl.rm * tl.rn), name="acc")

        ntm, ntn = _ceil_div(b, self.M, BM), _ceil_div(b, self.N, BN)
        total = b.mul(ntm, ntn)
        for e in self.bext:
            total = b.mul(total, e)
        total = _min(b, total, self.n_items)
        first, step = self.gpu.sreg(b, "ctaid.x"), self.gpu.sreg(b, "nctaid.x")
        pre = b.block
        head, body, done = (b.append_basic_block(f"tile.{s}") for s in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        t = b.phi(I64, name="t")
        t.add_incoming(first, pre)
        b.cbranch(b.icmp_signed("<", t, total), body, done)
        b.position_at_end(body)
        jt = b.srem(t, ntn)
        rest = b.sdiv(t, ntn)
        it, bidx = b.srem(rest, ntm), b.sdiv(rest, ntm)
        self.tile(bidx, b.mul(it, const(I64, BM)), b.mul(jt, const(I64, BN)))
        t.add_incoming(b.add(t, step), b.block)
        b.branch(head)
        b.position_at_end(done)
        b.ret_void()

    def tile(self, bidx, i0, j0):
        """One BM x BN output tile of batch entry ``bidx``: prologue, K slices, epilogue."""
        b, spec, tl = self.b, self.spec, self.tl
        zero = const(I64, 0)
        bases = [zero, zero]
        if self.bext:
            bases = add_offsets(b, bidx, self.bext, [self.A.strides, self.B.strides], bases)
        jobs = (Slice(self.A, self.gptr[0], spec.a_layout, bases[0], i0, self.M, -2, -1, self.vec_ok[0]),
                Slice(self.B, self.gptr[1], spec.b_layout, bases[1], j0, self.N, -1, -2, self.vec_ok[1]))
        shared = ((self.sh_a, spec.a_layout), (self.sh_b, spec.b_layout))
        n_acc = tl.rm * tl.rn

        with self.phase() as (tid, t32):  # prologue: zero accumulators, slice 0 into buffer 0
            for q in range(n_acc):
                b.store(ir.Constant(self.T, 0.0), self._acc_ptr(tid, q))
            for job, (sh, layout) in zip(jobs, shared):
                self.stash(sh, layout, self.fetch(job, t32, zero), t32, tid, const(I32, 0))
        self.barrier()

        n_slices = _ceil_div(b, self.K, tl.bk)
        pre = b.block
        head, body, done = (b.append_basic_block(f"kslice.{s}") for s in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        ks = b.phi(I64, name="ks")
        ks.add_incoming(zero, pre)
        b.cbranch(b.icmp_signed("<", ks, n_slices), body, done)
        b.position_at_end(body)
        nxt = b.add(ks, const(I64, 1))
        more = b.icmp_signed("<", nxt, n_slices)  # block-uniform
        parity = b.trunc(b.and_(ks, const(I64, 1)), I32)
        cur = b.mul(parity, const(I32, tl.buf))
        other = b.sub(const(I32, tl.buf), cur)
        with self.phase() as (tid, t32):
            # slice ks + 1 into registers (before the products: its loads overlap them)
            entry = b.block
            with b.if_then(more):
                got = [self.fetch(job, t32, b.mul(nxt, const(I64, tl.bk))) for job in jobs]
                fetched = b.block
            regs = []
            for vals in got:
                phis = []
                for v in vals:
                    phi = b.phi(self.T)
                    phi.add_incoming(v, fetched)
                    phi.add_incoming(ir.Constant(self.T, 0.0), entry)
                    phis.append(phi)
                regs.append(phis)
            acc = [b.load(self._acc_ptr(tid, q)) for q in range(n_acc)]
            acc = self.multiply(acc, t32, tid, cur)
            for q, v in enumerate(acc):
                b.store(v, self._acc_ptr(tid, q))
            with b.if_then(more):
                for vals, (sh, layout) in zip(regs, shared):
                    self.stash(sh, layout, vals, t32, tid, other)
        self.barrier()
        ks.add_incoming(nxt, b.block)
        b.branch(head)
        b.position_at_end(done)
        with self.phase() as (tid, t32):
            self.store(tid, t32, bidx, i0, j0)

    def _acc_ptr(self, tid, q):
        b, n = self.b, self.tl.rm * self.tl.rn
        return b.gep(self.acc, [const(I64, 0), b.add(b.mul(self.gpu.lane(b, tid), const(I64, n)), const(I64, q))])

    # ---- epilogue and stores -------------------------------------------------------------------
    def store(self, tid, t32, bidx, i0, j0):
        """This thread's valid elements through the epilogue into the output. The epilogue's
        operands are read from the argument slots again here (not kept in registers over the K loop)."""
        b, spec, tl = self.b, self.spec, self.tl
        ep = SimpleNamespace(b=b, args=self.args, slot=self.slot, dt=self.dt)
        load_operands(ep, spec, self.lay)
        strides = [o.strides for o in ep.ops] + ep.idx_strides
        obase = [const(I64, 0)] * len(strides)
        if ep.bext:
            obase = add_offsets(b, bidx, ep.bext, strides, obase)
        tx = b.zext(b.urem(t32, const(I32, tl.tx)), I64)
        ty = b.zext(b.udiv(t32, const(I32, tl.tx)), I64)
        for r in range(tl.rm):
            i = b.add(i0, tile_index(b, tl, r, ty, tl.ty))
            row_ok = b.icmp_signed("<", i, self.M)
            bases = [b.add(base, b.mul(i, st[-2])) for base, st in zip(obase, strides)]
            for c in range(tl.rn):
                j = b.add(j0, tile_index(b, tl, c, tx, tl.tx))
                with b.if_then(b.and_(row_ok, b.icmp_signed("<", j, self.N))):
                    v = b.load(self._acc_ptr(tid, r * tl.rn + c))
                    if not spec.identity:
                        leaves = Leaves(b, self.args, ep.ops, ep.idx_strides, ep.scalars, spec.classes,
                                        bases, j, 0, 0)
                        acc_in = ("in", spec.acc_input)
                        v = emit_expr(b, spec.expr, lambda ins, vals, v=v: v if ins == acc_in else leaves(ins, vals))
                    store_elem(b, ep.ops[0], bases[0], j, spec.classes[0], v)


def generate(spec, module: ir.Module, fname: str, gpu: Gpu | None = None) -> ir.Function:
    """Add the tiled GEMM entry ``fname + "_grid"`` for ``spec`` (a GemmSpec's fields) to ``module``;
    ``gpu`` substitutes the GPU operations (the tests' host emulation)."""
    if spec.dtype not in DTYPES or spec.out_dtype != spec.dtype:
        raise ValueError(f"ptx_gemm: unsupported dtypes {spec.dtype} -> {spec.out_dtype}")
    gen = _Gen(spec, module, fname, gpu or Gpu())
    gen.build()
    _mark_kernel(module, gen.fn)
    # .reqntid: a launch with any other block size fails instead of computing a wrong tile
    module.add_named_metadata("nvvm.annotations", [gen.fn, "reqntidx", const(I32, THREADS)])
    if gen.tl.min_blocks:  # .minnctapersm: registers for that many blocks per SM
        module.add_named_metadata("nvvm.annotations", [gen.fn, "minctasm", const(I32, gen.tl.min_blocks)])
    module.egpu_launch = LAUNCH_MODE
    return gen.fn
