"""The per-thread pieces of the tiled NVPTX GEMM (:mod:`.ptx_gemm`): its tiling, the reads of an
operand's K slice (global memory -> registers -> shared memory) and the register tile's products.

Tiling (:class:`Tiling`, one per dtype in :data:`TILINGS`): a block of ``tx x ty`` (16 x 16)
threads computes a ``bm x bn`` (128 x 128) output tile, K in slices of ``bk`` (8). Thread
``(tx, ty) = (tid % 16, tid / 16)`` owns an ``rm x rn`` (8 x 8) register tile made of
``(rm / vec) x (rn / vec)`` sub-tiles of ``vec x vec``, ``vec`` the elements of 16 bytes (4 float32,
2 float64): its rows are ``s * 16 vec + ty * vec + i`` (``s < rm / vec``, ``i < vec``), its columns
likewise with ``tx``. Both operands' slices sit in shared memory k-major (A transposed): row ``k``
holds the slice's ``bm`` values of M (of N for B), padded to ``lds = bm + vec``, so each k step of
the product reads a thread's A and B values as 16-byte vectors (``ld.shared.v4.f32``; B's vectors of
a warp are consecutive, A's are broadcasts). Two slices are kept (double buffering): while the
block multiplies slice ``t`` out of one buffer, each thread holds its part of slice ``t + 1`` in
registers (read from global memory before the products) and stores it into the other buffer after
them, so one barrier per slice suffices.

A thread's part of a slice is ``bm * bk / threads`` (4) elements, read as vectors of ``vec``
elements along the operand's contiguous axis (``a_layout``/``b_layout``: ``"k"`` along K, ``"x"``
along M or N; ``"s"``: the ``"x"`` positions, element by element). A vector is one 16-byte global
load when the operand allows it (:meth:`TileOps.vector_ok`: 16-byte aligned pointer, other strides
multiples of ``vec``) and the whole vector lies inside the matrix; otherwise (edges, odd strides or
offsets) its elements are loaded one by one, those past M, N or K as zeros, so the product needs no
masks. Along K a thread's vector is stored into shared memory element by element (the transpose),
along M or N as one vector store; the padding of ``lds`` keeps both free of bank conflicts.

Registers (ptxas 13.0, sm_90, -O3, plain product): float32 128 (``min_blocks`` 2 asks for two
blocks per SM), no spills; float64 254 (one block per SM), 8 bytes of spills. Measured on an H200
(plain float32 product, median of 5): 41.9 TFLOP/s at 4096^2, 43.3 at 8192^2 (cuBLAS with TF32 off:
50.7 and 50.9); K slices of 16 (38.1, 38.8) and no ``min_blocks`` (207 registers: 33.9, 35.8) were
slower. Other layouts at 4096^2 (float32): A transposed 40.1, B transposed 37.6, both 42.1, rows of
4097 elements (element loads only) 31.5, with a fused ``maximum(. + bias, 0)`` 38.4; float64 19.7
(PyTorch 62.0, on DMMA tensor cores), with that epilogue 16.8 (its loop reloads spilled registers).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I32, I64, const, intrinsic


@dataclass(frozen=True)
class Tiling:
    """Block tile ``bm x bn`` (equal), K slice ``bk``, ``tx x ty`` threads, ``vec`` elements a vector."""

    bm: int = 128
    bn: int = 128
    bk: int = 8
    tx: int = 16
    ty: int = 16
    vec: int = 4
    #: blocks per SM the register allocation must allow (``.minnctapersm``; 0: no bound)
    min_blocks: int = 0

    @property
    def threads(self) -> int:
        return self.tx * self.ty

    @property
    def rm(self) -> int:
        """Rows of a thread's register tile."""
        return self.bm // self.ty

    @property
    def rn(self) -> int:
        """Columns of a thread's register tile."""
        return self.bn // self.tx

    @property
    def lds(self) -> int:
        """Shared row length (elements): a k of the slice, padded (no bank conflicts on stores along K)."""
        return self.bm + self.vec

    @property
    def buf(self) -> int:
        """Elements of one shared buffer of one operand."""
        return self.bk * self.lds

    @property
    def per_thread(self) -> int:
        """Elements of an operand's slice each thread loads."""
        return self.bm * self.bk // self.threads

    def check(self) -> "Tiling":
        assert self.bm == self.bn and self.rm % self.vec == 0 and self.rn % self.vec == 0
        assert self.per_thread % self.vec == 0 and self.bk % self.vec == 0 and self.bm % self.vec == 0
        return self


#: the tiling of each dtype (same bm x bn: the launch's tile count does not depend on the dtype)
#: float32: 2 blocks per SM (at most 128 registers); float64: the 64 accumulators take 128 alone
TILINGS = {"float32": Tiling(vec=4, min_blocks=2).check(), "float64": Tiling(vec=2).check()}


@dataclass
class Slice:
    """One operand's K slices, as :meth:`TileOps.fetch` reads them: the operand (``op``), its
    pointer for loads (``ptr``, global address space on the GPU), ``layout`` flag, batch entry's
    element offset ``base``, tile start ``x0`` and extent ``ext`` along M (N for B), the axes of its
    strides along M/N and K, and the i1 :meth:`TileOps.vector_ok` (None: never vectors)."""

    op: object
    ptr: ir.Value
    layout: str
    base: ir.Value
    x0: ir.Value
    ext: ir.Value
    x_axis: int
    k_axis: int
    vec_ok: ir.Value | None


def tile_index(b: ir.IRBuilder, tl: Tiling, r: int, t, n_threads: int) -> ir.Value:
    """Row (column) in the block tile of register-tile row (column) ``r`` of thread row (column)
    ``t``: ``(r / vec) * n_threads * vec + t * vec + r % vec``."""
    v = tl.vec
    return b.add(b.mul(t, const(t.type, v)), const(t.type, (r // v) * n_threads * v + r % v))


class TileOps:
    """Mixin of the tiled GEMM's generator: needs ``b``, ``gpu``, ``T``, ``tl`` (a :class:`Tiling`),
    ``K`` and the shared arrays ``sh_a``/``sh_b``."""

    # ---- global -> registers -----------------------------------------------------------------
    def vector_ok(self, op, layout: str, x_axis: int, k_axis: int, batch_axes: int) -> ir.Value | None:
        """i1: whether ``op``'s vectors along its contiguous axis are 16-byte aligned wherever they
        start (pointer aligned, every other stride a multiple of ``vec``); None for layout ``"s"``."""
        if layout not in ("k", "x"):
            return None
        b, v = self.b, self.tl.vec
        ok = b.icmp_unsigned("==", b.and_(b.ptrtoint(op.ptr, I64), const(I64, 15)), const(I64, 0))
        other = [x_axis if layout == "k" else k_axis] + list(range(batch_axes))
        for d in other:
            ok = b.and_(ok, b.icmp_signed("==", b.srem(op.strides[d], const(I64, v)), const(I64, 0)))
        return ok

    def positions(self, t32, layout: str) -> list:
        """(xx, kk, along_k) of each vector of this thread's part of a slice (i32 offsets in the slice)."""
        tl = self.tl
        b, along_k = self.b, layout == "k"
        per_row = (tl.bk if along_k else tl.bm) // tl.vec  # vectors along the contiguous axis
        out = []
        for r in range(tl.per_thread // tl.vec):
            s = b.add(t32, const(I32, r * tl.threads))
            outer, inner = b.udiv(s, const(I32, per_row)), b.mul(b.urem(s, const(I32, per_row)), const(I32, tl.vec))
            out.append((outer, inner, True) if along_k else (inner, outer, False))
        return out

    def fetch(self, sl: Slice, t32, k0) -> list:
        """This thread's ``per_thread`` elements of the slice at ``k0`` of :class:`Slice` ``sl``,
        zeros outside the matrix."""
        b, tl = self.b, self.tl
        strides = sl.op.strides
        vals = []
        for xx, kk, along_k in self.positions(t32, sl.layout):
            x, k = b.add(sl.x0, b.zext(xx, I64)), b.add(k0, b.zext(kk, I64))
            off = b.add(sl.base, b.add(b.mul(x, strides[sl.x_axis]), b.mul(k, strides[sl.k_axis])))
            if sl.vec_ok is None:
                vals += self._scalars(sl, off, x, k, along_k)
                continue
            last = const(I64, tl.vec)
            inside = (b.and_(b.icmp_signed("<", x, sl.ext), b.icmp_signed("<=", b.add(k, last), self.K)) if along_k
                      else b.and_(b.icmp_signed("<=", b.add(x, last), sl.ext), b.icmp_signed("<", k, self.K)))
            with b.if_else(b.and_(sl.vec_ok, inside)) as (whole, part):
                with whole:
                    vt = ir.VectorType(self.T, tl.vec)
                    ld = self.gpu.global_load(b, b.bitcast(b.gep(sl.ptr, [off]), vt.as_pointer(sl.ptr.type.addrspace)),
                                              16)
                    got_v = [b.extract_element(ld, const(I32, e)) for e in range(tl.vec)]
                    from_v = b.block
                with part:
                    got_s = self._scalars(sl, off, x, k, along_k)
                    from_s = b.block
            for gv, gs in zip(got_v, got_s):
                phi = b.phi(self.T)
                phi.add_incoming(gv, from_v)
                phi.add_incoming(gs, from_s)
                vals.append(phi)
        return vals

    def _scalars(self, sl: Slice, off, x, k, along_k) -> list:
        """The vector at ``off`` element by element, zeros past the matrix (reads stay at ``base``)."""
        b = self.b
        zero = ir.Constant(self.T, 0.0)
        step = sl.op.strides[sl.k_axis if along_k else sl.x_axis]
        out = []
        for e in range(self.tl.vec):
            xe, ke = (x, b.add(k, const(I64, e))) if along_k else (b.add(x, const(I64, e)), k)
            oe = b.add(off, b.mul(const(I64, e), step)) if e else off
            inside = b.and_(b.icmp_signed("<", xe, sl.ext), b.icmp_signed("<", ke, self.K))
            v = self.gpu.global_load(b, b.gep(sl.ptr, [b.select(inside, oe, sl.base)]))
            out.append(b.select(inside, v, zero))
        return out

    # ---- registers -> shared -----------------------------------------------------------------
    def stash(self, sh, layout: str, vals: list, t32, tid, buf) -> None:
        """Store this thread's ``vals`` (from :meth:`fetch`) into buffer ``buf`` (i32 element offset)
        of the shared array ``sh``: k-major, along K element by element, along M/N as vectors."""
        b, tl, v = self.b, self.tl, self.tl.vec
        for n, (xx, kk, along_k) in enumerate(self.positions(t32, layout)):
            at = b.add(buf, b.add(b.mul(kk, const(I32, tl.lds)), xx))
            part = vals[n * v:(n + 1) * v]
            if along_k:
                for e, val in enumerate(part):
                    self.gpu.shared_store(b, val, sh, b.add(at, const(I32, e * tl.lds)), tid)
            else:
                self.gpu.shared_store_vec(b, part, sh, at, tid)

    # ---- the register tile -------------------------------------------------------------------
    def multiply(self, acc: list, t32, tid, buf) -> list:
        """``acc[r][c] += As[k][row r] * Bs[k][column c]`` over the ``bk`` k of buffer ``buf``
        (``acc`` flat, row-major ``rm x rn``); returns the new accumulators."""
        b, tl, v = self.b, self.tl, self.tl.vec
        tx, ty = b.urem(t32, const(I32, tl.tx)), b.udiv(t32, const(I32, tl.tx))
        a_at = b.add(buf, b.mul(ty, const(I32, v)))
        b_at = b.add(buf, b.mul(tx, const(I32, v)))
        for k in range(tl.bk):
            av, bv = [], []
            for s in range(tl.rm // v):
                av += self.gpu.shared_load_vec(b, self.sh_a, b.add(a_at, const(I32, k * tl.lds + s * tl.ty * v)),
                                               v, tid)
            for s in range(tl.rn // v):
                bv += self.gpu.shared_load_vec(b, self.sh_b, b.add(b_at, const(I32, k * tl.lds + s * tl.tx * v)),
                                               v, tid)
            acc = [intrinsic(b, "llvm.fma", self.T, av[q // tl.rn], bv[q % tl.rn], acc[q])
                   for q in range(tl.rm * tl.rn)]
        return acc
