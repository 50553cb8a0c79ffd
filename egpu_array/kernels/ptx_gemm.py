"""Tiled shared-memory GEMM for NVPTX, with the fused elementwise epilogue of :mod:`.gemm`.

``C[b] = epilogue(A[b] @ B[b], ...)`` for float32/float64 on the cuda device. The output is cut
into tiles of ``BM x BN`` (64 x 64); one thread block of :data:`THREADS` (256, seen as 16 x 16:
``tx = tid % 16``, ``ty = tid / 16``) computes a tile, each thread a 4 x 4 register tile of rows
``i0 + ty + 16 r`` and columns ``j0 + tx + 16 c`` (neighbouring threads own neighbouring columns:
coalesced stores, and shared-memory reads of B without bank conflicts; A's reads are broadcasts).
K is walked in slices of ``BK`` (16):

1. every thread loads 4 elements of the ``BM x BK`` slice of A and 4 of the ``BK x BN`` slice of B
   into shared memory (``addrspace(3)`` arrays, k-major, rows padded by one element); consecutive
   threads read along the operand's contiguous axis (``a_layout``/``b_layout`` of the spec), and
   elements past M, N or K are stored as zeros, so the product needs no masks;
2. barrier; every thread accumulates its 4 x 4 tile over the 16 k of the slice (``llvm.fma``);
3. barrier (the next slice overwrites the shared arrays).

Then each thread applies the epilogue (the spec's expression, with the product as input
``acc_input``; ``elementwise.Leaves``/``emit_expr`` as the host GEMM's edge stores) to its valid
elements and stores them. Tiles are numbered batch-major, then tile rows, then tile columns; the
entry ``NAME_grid(i64* args, i64 n, i64 per)`` strides over tiles by blocks (``ctaid.x``,
``nctaid.x``), so every loop that contains a barrier has block-uniform bounds.

Argument slots: those of :func:`.gemm.gemm_arg_layout` up to B's strides (the blocking parameters
after them are not read: :func:`arg_layout`). The PTX header says ``mode=tile2d``: the cuda device
launches ``min(n, max_grid)`` blocks of :data:`THREADS` threads over ``n = tile_count(...)`` tiles.

The GPU operations go through a :class:`Gpu` object. Each phase between barriers is emitted as the
body of ``gpu.threads(b)``; per-thread state that crosses a barrier (the accumulators) lives in an
array with ``gpu.lanes`` rows. On the GPU the body is emitted once for the thread at hand and the
array (one row) is promoted to registers; the tests' host form emits the body in a loop over the
256 threads of the block, so barrier-separated phases run in order, as they do on the GPU.
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass

from llvmlite import ir

from .elementwise import Leaves, dtype_named, emit_expr, store_elem
from .gemm import GemmSpec, gemm_arg_layout, load_operands
from .irb import I32, I64, add_offsets, const, intrinsic, mem_type
from .ptx import ENTRY_SUFFIX, _mark_kernel
from .ptx_reduce import Intrinsics

__all__ = ["PtxGemmSpec", "generate", "arg_layout", "tile_count", "Gpu", "BM", "BN", "BK", "THREADS",
           "LAUNCH_MODE"]

BM, BN, BK = 64, 64, 16     # output tile rows, columns; K slice depth
TX = TY = 16                # threads along a tile's columns, rows
RM, RN = BM // TY, BN // TX  # each thread's register tile: 4 x 4
THREADS = TX * TY
LDS = BM + 1                # shared row length (padded: k-major stores of a K-contiguous A/B spread over banks)
#: the PTX header's mode: one block of THREADS threads per tile (block-strided over the tiles)
LAUNCH_MODE = "tile2d"
DTYPES = ("float32", "float64")


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
    """The GPU operations (NVVM special registers and barriers from :class:`.ptx_reduce.Intrinsics`)
    and the thread model: ``threads`` emits a phase for the current thread; one lane of state."""

    lanes = 1

    @contextmanager
    def threads(self, b: ir.IRBuilder):
        """Emit a phase (code between barriers); yields this thread's index in the block."""
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


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def _ceil_div(b, x, d):
    return b.sdiv(b.add(x, const(I64, d - 1)), const(I64, d))


class _Gen:
    """The IR of one tiled GEMM kernel."""

    def __init__(self, spec, module: ir.Module, fname: str, gpu: Gpu):
        self.spec, self.module, self.gpu = spec, module, gpu
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
        g = ir.GlobalVariable(self.module, ir.ArrayType(self.T, BK * LDS), name,
                              addrspace=self.gpu.shared_addrspace)
        g.linkage = "internal"
        g.initializer = ir.Constant(g.value_type, None)
        g.align = 16
        return g

    def slot(self, k):
        return self.b.load(self.b.gep(self.args, [const(I64, k)]))

    @contextmanager
    def phase(self):
        """A phase of every thread of the block (see ``Gpu.threads``); barriers only between phases."""
        self.in_phase = True
        with self.gpu.threads(self.b) as tid:
            yield tid
        self.in_phase = False

    def barrier(self):
        assert not self.in_phase, "a barrier inside a per-thread phase"
        self.gpu.barrier(self.b)

    # ---- set-up and the loop over tiles ------------------------------------------------------
    def build(self):
        spec, b, lay = self.spec, self.b, self.lay
        load_operands(self, spec, lay)
        self.acc = b.alloca(ir.ArrayType(self.T, self.gpu.lanes * RM * RN), name="acc")

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
        """One BM x BN output tile of batch entry ``bidx``: K slices, then the epilogue."""
        b = self.b
        mem = self.ops + [self.A, self.B]
        strides = [o.strides for o in mem] + self.idx_strides
        zero = const(I64, 0)
        bases = [zero] * len(strides)
        if self.bext:
            bases = add_offsets(b, bidx, self.bext, strides, bases)
        n_ops = len(self.ops)
        self.obase = bases[:n_ops] + bases[n_ops + 2:]
        abase, bbase = bases[n_ops], bases[n_ops + 1]
        with self.phase() as tid:
            for q in range(RM * RN):
                b.store(ir.Constant(self.T, 0.0), self._acc_ptr(tid, q))
        pre = b.block
        head, body, done = (b.append_basic_block(f"kslice.{s}") for s in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        k0 = b.phi(I64, name="k0")
        k0.add_incoming(zero, pre)
        b.cbranch(b.icmp_signed("<", k0, self.K), body, done)
        b.position_at_end(body)
        with self.phase() as tid:
            self.load_slices(tid, abase, bbase, i0, j0, k0)
        self.barrier()
        with self.phase() as tid:
            self.multiply(tid)
        self.barrier()
        k0.add_incoming(b.add(k0, const(I64, BK)), b.block)
        b.branch(head)
        b.position_at_end(done)
        with self.phase() as tid:
            self.store(tid, i0, j0)

    def _acc_ptr(self, tid, q):
        b = self.b
        return b.gep(self.acc, [const(I64, 0), b.add(b.mul(self.gpu.lane(b, tid), const(I64, RM * RN)),
                                                     const(I64, q))])

    # ---- phase 1: global -> shared -------------------------------------------------------------
    def load_slices(self, tid, abase, bbase, i0, j0, k0):
        """This thread's elements of A[i0:i0+BM, k0:k0+BK] and B[k0:k0+BK, j0:j0+BN] into shared
        memory (k-major), zeros where the slice passes M, N or K."""
        b = self.b
        zero = ir.Constant(self.T, 0.0)
        jobs = ((self.A, self.spec.a_layout == "k", abase, i0, self.M, self.sh_a, -2, -1),
                (self.B, self.spec.b_layout == "k", bbase, j0, self.N, self.sh_b, -1, -2))
        for op, k_inner, base, x0, x_ext, sh, x_axis, k_axis in jobs:
            for r in range(BM * BK // THREADS):
                e = b.add(tid, const(I64, r * THREADS))
                if k_inner:  # consecutive threads along K (the operand's contiguous axis)
                    kk, xx = b.urem(e, const(I64, BK)), b.udiv(e, const(I64, BK))
                else:
                    xx, kk = b.urem(e, const(I64, BM)), b.udiv(e, const(I64, BM))
                x, k = b.add(x0, xx), b.add(k0, kk)
                inside = b.and_(b.icmp_signed("<", x, x_ext), b.icmp_signed("<", k, self.K))
                off = b.add(base, b.add(b.mul(x, op.strides[x_axis]), b.mul(k, op.strides[k_axis])))
                off = b.select(inside, off, base)  # element 0 of this batch entry: always readable
                v = b.select(inside, b.load(b.gep(op.ptr, [off])), zero)
                self.gpu.shared_store(b, v, sh, b.add(b.mul(kk, const(I64, LDS)), xx), tid)

    # ---- phase 2: the register tile ------------------------------------------------------------
    def multiply(self, tid):
        """acc[r][c] += As[k][ty + 16 r] * Bs[k][tx + 16 c] over the slice's BK values of k."""
        b = self.b
        tx, ty = b.urem(tid, const(I64, TX)), b.udiv(tid, const(I64, TX))
        acc = [b.load(self._acc_ptr(tid, q)) for q in range(RM * RN)]
        for kk in range(BK):
            row = const(I64, kk * LDS)
            av = [self.gpu.shared_load(b, self.sh_a, b.add(row, b.add(ty, const(I64, TY * r))), tid)
                  for r in range(RM)]
            bv = [self.gpu.shared_load(b, self.sh_b, b.add(row, b.add(tx, const(I64, TX * c))), tid)
                  for c in range(RN)]
            acc = [intrinsic(b, "llvm.fma", self.T, av[q // RN], bv[q % RN], acc[q]) for q in range(RM * RN)]
        for q, v in enumerate(acc):
            b.store(v, self._acc_ptr(tid, q))

    # ---- phase 3: epilogue and stores ----------------------------------------------------------
    def store(self, tid, i0, j0):
        """This thread's valid elements through the epilogue into the output."""
        b, spec = self.b, self.spec
        tx, ty = b.urem(tid, const(I64, TX)), b.udiv(tid, const(I64, TX))
        strides = [o.strides for o in self.ops] + self.idx_strides
        for r in range(RM):
            i = b.add(i0, b.add(ty, const(I64, TY * r)))
            for c in range(RN):
                j = b.add(j0, b.add(tx, const(I64, TX * c)))
                ok = b.and_(b.icmp_signed("<", i, self.M), b.icmp_signed("<", j, self.N))
                with b.if_then(ok):
                    v = b.load(self._acc_ptr(tid, r * RN + c))
                    bases = [b.add(base, b.mul(i, st[-2])) for base, st in zip(self.obase, strides)]
                    if not spec.identity:
                        leaves = Leaves(b, self.args, self.ops, self.idx_strides, self.scalars, spec.classes,
                                        bases, j, 0, 0)
                        acc_in = ("in", spec.acc_input)
                        v = emit_expr(b, spec.expr, lambda ins, vals, v=v: v if ins == acc_in else leaves(ins, vals))
                    store_elem(b, self.ops[0], bases[0], j, spec.classes[0], v)


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
    module.egpu_launch = LAUNCH_MODE
    return gen.fn
