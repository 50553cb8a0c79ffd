"""Generator of blocked GEMM kernels with a fused elementwise epilogue (host CPU form).

``C[b] = epilogue(A[b] @ B[b], ...)`` for float32/float64, the BLIS way: the output is cut into
column blocks of ``NC`` (and optionally row groups of ``MG`` rows); for each block, K is walked in
slices of ``KC``: the ``KC x NC`` slice of B is packed into micro-panels of ``NR`` columns, then for
each ``MC``-row slice the ``MC x KC`` slice of A is packed into micro-panels of ``MR`` rows, and a
register-blocked micro-kernel computes each ``MR x NR`` tile with vector FMAs (``llvm.fma`` on
``<VL x T>``; 6x16 for float32, 6x8 for float64: twelve accumulator registers). Packing pads edge
panels with zeros, so the micro-kernel always runs full tiles; stores keep to the valid part.
An operand may be an elementwise expression of its own leaves (a producer, ``kernels.gemm_pack``),
computed while it is packed: ``exp(x) @ w`` reads x once and writes no temporary.

Partial sums of earlier K slices are kept in the output; the epilogue (a flat program in the format
of ``kernels.spec``, whose input ``acc_input`` is the product) is applied on the last slice only, so
the output dtype must be the GEMM's dtype. Small outputs over a long K split K instead (split-K): task
``t`` also picks one of ``n_ksplit`` ranges of ``KS`` (a multiple of ``KC``) and writes its partial
product to its own output plane, ``split_stride`` elements after the previous one (the caller sums
the planes and applies the epilogue: the kernel's epilogue is then the identity). Full tiles of a unit-stride output are stored from the
registers, through the epilogue on vectors when its ops allow (``gemm_store.vector_epilogue``); edge tiles
and other epilogues go through a spilled tile element by element (``emit_expr`` with the
elementwise generator's ``Leaves``). Each tile's output lines are prefetched before its K loop.

Kernel ABI: ``void k(i64* args, i64 start, i64 stop)``; work item ``w`` is one share of the tasks
(K ranges x batch x column blocks x row groups) and owns workspace slot ``w`` (packed A, then packed B).
``args`` (see :func:`gemm_arg_layout`): the extents (batch..., M, N); the epilogue operands as in
``elementwise.operand_slots`` over those ``n_batch + 2`` dimensions; then K, A and B (pointer and
strides over batch..., rows, columns; for a producer, each leaf's pointer and strides, then its
scalars: ``gemm_pack.operand_block``), then the blocking parameters and the workspace.
"""
from __future__ import annotations

import functools
from contextlib import contextmanager
from dataclasses import dataclass

from llvmlite import ir

from .elementwise import Operand, dtype_named, load_scalar, operand_slots
from .gemm_pack import CHUNK, Packing, Producer, Source, operand_block
from .gemm_store import TileStores
from .irb import I64, add_offsets, const, extern, for_range, mem_type

__all__ = ["GemmSpec", "Producer", "generate", "gemm_arg_layout", "load_operands", "TILE", "PARAMS"]

#: dtype -> (MR rows, NR columns, VL vector lanes) of the micro-kernel's register tile
TILE = {"float32": (6, 16, 8), "float64": (6, 8, 4)}

#: the blocking parameters after the A and B operands, in slot order
PARAMS = ("MC", "KC", "NC", "MG", "n_igroups", "n_jblocks", "n_tasks", "n_items", "ws", "slot_elems",
          "a_elems", "n_ksplit", "KS", "split_stride")


@dataclass(frozen=True)
class GemmSpec:
    """A batched GEMM of ``dtype`` with a fused epilogue.

    ``a_layout``/``b_layout``: ``"k"`` when the operand is contiguous along K (A row-major, B
    transposed), ``"x"`` when it is contiguous along the other axis (A transposed, B row-major),
    ``"s"`` otherwise; packing reads along the contiguous axis. The epilogue
    is ``expr`` over inputs ``in_dtypes`` (input ``acc_input`` is the product; its slots are unused),
    scalar args and ``n_idx`` index operands; ``classes`` are the column-stride classes
    (``"c"``/``"0"``/``"s"``) of the output, the inputs and the index operands.

    ``a_prod``/``b_prod``: a :class:`.gemm_pack.Producer` when the operand is an elementwise
    expression computed while it is packed (host kernels only), else None (plain memory); the
    layout flag then describes the producer's largest leaf.
    """
    dtype: str
    a_layout: str
    b_layout: str
    n_batch: int
    expr: tuple
    in_dtypes: tuple
    arg_dtypes: tuple
    n_idx: int
    out_dtype: str
    acc_input: int
    classes: tuple
    a_prod: Producer | None = None
    b_prod: Producer | None = None

    kind = "gemm"

    @property
    def name(self) -> str:
        ops = [ins[0] if ins[0] != "cast" else f"cast_{ins[2]}" for ins in self.expr
               if ins[0] not in ("in", "arg", "idx")]
        epi = "_".join(list(dict.fromkeys(ops))[:4])
        pro = "".join(f"_{side}_" + "_".join(p.ops[:3]) for side, p in (("pa", self.a_prod), ("pb", self.b_prod))
                      if p is not None)
        return f"gemm_{self.dtype}_{self.a_layout}{self.b_layout}" + pro + (f"_{epi}" if epi else "")

    @property
    def identity(self) -> bool:
        """Whether the epilogue just stores the product."""
        return self.expr == (("in", self.acc_input),)


@functools.lru_cache(maxsize=256)
def gemm_arg_layout(spec: GemmSpec) -> dict:
    """Slot offsets: ``operands``/``idx``/``scalars`` of the epilogue, ``K``, ``A_block``/``B_block``
    (the operands' slots, :func:`.gemm_pack.operand_block`), ``A``/``B`` (pointer slot, first stride
    slot) of a plain operand, each name of :data:`PARAMS`, and ``size``."""
    nd = spec.n_batch + 2
    lay = operand_slots(spec, nd)
    pos = lay["end"]
    lay["K"] = pos
    pos += 1
    for name, prod in (("A", spec.a_prod), ("B", spec.b_prod)):
        block, pos = operand_block(prod, pos, nd)
        lay[f"{name}_block"] = block
        lay[name] = block["inputs"][0] if prod is None else None
    for name in PARAMS:
        lay[name] = pos
        pos += 1
    lay["size"] = pos
    return lay


@contextmanager
def _steps(b, start, stop, step, name):
    """``for i in range(start, stop, step)`` (step > 0); yields ``i``."""
    pre = b.block
    head, body, done = (b.append_basic_block(f"{name}.{s}") for s in ("head", "body", "done"))
    b.branch(head)
    b.position_at_end(head)
    i = b.phi(I64, name=name)
    i.add_incoming(start, pre)
    b.cbranch(b.icmp_signed("<", i, stop), body, done)
    b.position_at_end(body)
    yield i
    i.add_incoming(b.add(i, step, flags=["nsw"]), b.block)
    b.branch(head)
    b.position_at_end(done)


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def load_operands(g, spec, lay, producers: bool = False) -> None:
    """Set ``g``'s extents (``bext``, ``M``, ``N``, ``K``), epilogue operands (``ops``,
    ``idx_strides``, ``scalars``) and the A and B operands from the argument slots of
    :func:`gemm_arg_layout` (``g`` has ``b``, ``args``, ``slot`` and ``dt``; shared with the NVPTX
    tiled GEMM). Unit strides the layout flags promise become constants, so LLVM can vectorize
    along them. ``g.srcs`` are the two :class:`.gemm_pack.Source` operands; ``g.A``/``g.B`` their
    memory when plain. Only a generator that packs (``producers``) takes producer operands."""
    if not producers and (spec.a_prod is not None or spec.b_prod is not None):
        raise ValueError(f"{spec.kind}: this generator reads its operands from memory; "
                         "producers of the operands must be computed before the launch")
    b, nb = g.b, spec.n_batch
    nd = nb + 2
    ext = [g.slot(d) for d in range(nd)]
    g.bext, g.M, g.N = ext[:nb], ext[nb], ext[nb + 1]
    g.K = g.slot(lay["K"])
    dtypes = [dtype_named(spec.out_dtype)] + [dtype_named(n) for n in spec.in_dtypes]
    g.ops = [Operand(b, g.args, d, p, s, nd) for d, (p, s) in zip(dtypes, lay["operands"])]
    g.idx_strides = [[g.slot(s + d) for d in range(nd)] for s in lay["idx"]]
    g.scalars = [load_scalar(b, g.args, s, dtype_named(n)) for s, n in zip(lay["scalars"], spec.arg_dtypes)]
    g.srcs = (Source(b, g.args, lay["A_block"], spec.a_prod, g.dt, nd, spec.a_layout, -1, -2),
              Source(b, g.args, lay["B_block"], spec.b_prod, g.dt, nd, spec.b_layout, -2, -1))
    g.A, g.B = (None if p is not None else s.ops[0] for s, p in zip(g.srcs, (spec.a_prod, spec.b_prod)))
    one = const(I64, 1)
    if spec.classes[0] == "c":
        g.ops[0].strides[-1] = one


class _Gen(TileStores, Packing):
    """The IR of one GEMM kernel (state shared by the emitting methods)."""

    def __init__(self, spec: GemmSpec, module: ir.Module, fname: str):
        self.spec = spec
        self.MR, self.NR, self.VL = TILE[spec.dtype]
        self.dt = dtype_named(spec.dtype)
        self.T = mem_type(self.dt)
        self.vec = ir.VectorType(self.T, self.VL)
        # llvmlite's declare_intrinsic does not mangle vector types: declared by its full name
        self.fma = f"llvm.fma.v{self.VL}f{self.dt.itemsize * 8}"
        self.lay = gemm_arg_layout(spec)
        self.fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
        self.args, self.start, self.stop = self.fn.args
        self.b = ir.IRBuilder(self.fn.append_basic_block("entry"))

    def slot(self, k):
        return self.b.load(self.b.gep(self.args, [const(I64, k)]))

    def param(self, name):
        return self.slot(self.lay[name])

    # ---- set-up ---------------------------------------------------------------------------
    def build(self):
        spec, b, lay = self.spec, self.b, self.lay
        self.tile = b.alloca(ir.ArrayType(self.T, self.MR * self.NR), name="tile")
        self.tile.align = 32
        if spec.a_prod is not None or spec.b_prod is not None:  # producers' values, a run at a time
            self.scratch = b.alloca(ir.ArrayType(self.T, CHUNK), name="scratch")
            self.scratch.align = 32
        load_operands(self, spec, lay, producers=True)
        self.p = {name: self.param(name) for name in PARAMS}
        ws = b.inttoptr(self.p["ws"], self.T.as_pointer())

        with for_range(b, self.start, self.stop, "w") as w:
            apack = b.gep(ws, [b.mul(w, self.p["slot_elems"])])
            bpack = b.gep(apack, [self.p["a_elems"]])
            n_tasks, n_items = self.p["n_tasks"], self.p["n_items"]
            t0 = b.sdiv(b.mul(w, n_tasks), n_items)
            t1 = b.sdiv(b.mul(b.add(w, const(I64, 1)), n_tasks), n_items)
            with for_range(b, t0, t1, "t") as t:
                self.task(t, apack, bpack)
        b.ret_void()

    def task(self, t, apack, bpack):
        """One column block (and row group) of one batch entry, over one K range."""
        b, p = self.b, self.p
        ks = b.srem(t, p["n_ksplit"])
        t = b.sdiv(t, p["n_ksplit"])
        ig = b.srem(t, p["n_igroups"])
        rest = b.sdiv(t, p["n_igroups"])
        jb = b.srem(rest, p["n_jblocks"])
        bidx = b.sdiv(rest, p["n_jblocks"])
        asrc, bsrc = self.srcs
        strides = [o.strides for o in self.ops] + self.idx_strides + asrc.strides + bsrc.strides
        zero = const(I64, 0)
        bases = add_offsets(b, bidx, self.bext, strides, [zero] * len(strides)) if self.bext else [zero] * len(strides)
        n_ep = len(self.ops) + len(self.idx_strides)
        self.obase = bases[:n_ep]   # epilogue operands, then index operands
        self.obase[0] = b.add(self.obase[0], b.mul(ks, p["split_stride"]))  # the K range's plane
        abase, bbase = bases[n_ep:n_ep + len(asrc.ops)], bases[n_ep + len(asrc.ops):]
        j0 = b.mul(jb, p["NC"])
        nc = _min(b, p["NC"], b.sub(self.N, j0))
        i_lo = b.mul(ig, p["MG"])
        i_hi = _min(b, self.M, b.add(i_lo, p["MG"]))
        KC, MC = p["KC"], p["MC"]
        k_lo = b.mul(ks, p["KS"])
        k_hi = _min(b, self.K, b.add(k_lo, p["KS"]))
        with _steps(b, k_lo, k_hi, KC, "pc") as pc:
            kc = _min(b, KC, b.sub(k_hi, pc))
            first = b.icmp_signed("==", pc, k_lo)
            last = b.icmp_signed(">=", b.add(pc, kc), k_hi)
            self.pack_b(bpack, bbase, pc, kc, j0, nc)
            with _steps(b, i_lo, i_hi, MC, "ic") as ic:
                mc = _min(b, MC, b.sub(i_hi, ic))
                self.pack_a(apack, abase, ic, mc, pc, kc)
                with _steps(b, zero, nc, const(I64, self.NR), "jr") as jr:
                    nr = _min(b, const(I64, self.NR), b.sub(nc, jr))
                    bp = b.gep(bpack, [b.mul(b.sdiv(jr, const(I64, self.NR)), b.mul(kc, const(I64, self.NR)))])
                    with _steps(b, zero, mc, const(I64, self.MR), "ir") as ir_:
                        mr = _min(b, const(I64, self.MR), b.sub(mc, ir_))
                        ap = b.gep(apack, [b.mul(b.sdiv(ir_, const(I64, self.MR)), b.mul(kc, const(I64, self.MR)))])
                        self.prefetch_tile(b.add(ic, ir_), b.add(j0, jr))
                        acc = self.micro(ap, bp, kc)
                        self.store_tile(acc, b.add(ic, ir_), b.add(j0, jr), mr, nr, first, last)

    # ---- the micro-kernel -----------------------------------------------------------------
    def prefetch_tile(self, i0, j0):
        """Ask for the output tile's cache lines (first and last element of each row) while the
        micro-kernel runs; a prefetch never faults, so edge tiles need no care."""
        b = self.b
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        for i in range(self.MR):
            r = b.add(i0, const(I64, i))
            for j in (j0, b.add(j0, const(I64, self.NR - 1))):
                p = b.bitcast(self._out_ptr(r, j), i8p)
                extern(b, "llvm.prefetch.p0", ir.VoidType(), [i8p, i32, i32, i32], p,
                       const(i32, 1), const(i32, 3), const(i32, 1))

    def splat(self, x):
        """``<VL x T>`` with every lane ``x``."""
        b = self.b
        undef = ir.Constant(self.vec, ir.Undefined)
        mask = ir.Constant(ir.VectorType(ir.IntType(32), self.VL), [0] * self.VL)
        return b.shuffle_vector(b.insert_element(undef, x, const(ir.IntType(32), 0)), undef, mask)

    def micro(self, ap, bp, kc):
        """The MR x NR product of one packed A panel and one packed B panel: MR*NR/VL vectors."""
        b, MR, NR, VL = self.b, self.MR, self.NR, self.VL
        nv = NR // VL
        zero = ir.Constant(self.vec, [0.0] * VL)
        pre = b.block
        head, body, done = (b.append_basic_block(f"uk.{s}") for s in ("head", "body", "done"))
        b.branch(head)
        b.position_at_end(head)
        k = b.phi(I64, name="k")
        k.add_incoming(const(I64, 0), pre)
        acc = [[b.phi(self.vec) for _ in range(nv)] for _ in range(MR)]
        for row in acc:
            for a in row:
                a.add_incoming(zero, pre)
        b.cbranch(b.icmp_signed("<", k, kc), body, done)
        b.position_at_end(body)
        vptr = self.vec.as_pointer()
        brow = b.gep(bp, [b.mul(k, const(I64, NR))])
        bv = []
        for v in range(nv):
            ld = b.load(b.bitcast(b.gep(brow, [const(I64, v * VL)]), vptr))
            ld.align = 32  # packed rows are NR * itemsize = 64 bytes from a 64-byte aligned start
            bv.append(ld)
        arow = b.gep(ap, [b.mul(k, const(I64, MR))])
        new = []
        for i in range(MR):
            a = b.load(b.gep(arow, [const(I64, i)]))
            splat = self.splat(a)
            new.append([extern(b, self.fma, self.vec, [self.vec] * 3, splat, bv[v], acc[i][v]) for v in range(nv)])
        for i in range(MR):
            for v in range(nv):
                acc[i][v].add_incoming(new[i][v], b.block)
        k.add_incoming(b.add(k, const(I64, 1), flags=["nsw"]), b.block)
        b.branch(head)
        b.position_at_end(done)
        return acc


def generate(spec: GemmSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the GEMM kernel for ``spec`` to ``module`` under the name ``fname``."""
    if spec.dtype not in TILE or spec.out_dtype != spec.dtype:
        raise ValueError(f"gemm: unsupported dtypes {spec.dtype} -> {spec.out_dtype}")
    gen = _Gen(spec, module, fname)
    gen.build()
    return gen.fn
