"""The input side of the GEMM kernels (kernels.gemm): operand slots and packing, with fused producers.

An operand (A or B) is either plain memory (a pointer and strides over batch..., rows, columns), or
a :class:`Producer`: an elementwise expression (a flat program in the format of ``kernels.spec``)
over leaves of its own, evaluated while the operand is packed. The packing loop reads each leaf
at the element's (row, k) or (k, column) position, runs the program and writes the packed panel,
so ``(2 * a) @ b`` or ``exp(x) @ w`` reads its inputs once and writes no temporary.

A producer is evaluated along runs of the packing's inner axis (K for layout ``"k"``, else the other
axis, over the whole block rather than one panel): a run of at most :data:`CHUNK` values goes into
a scratch row in a loop LLVM vectorizes (libm-like math included), then to its panel positions.

An operand's slots (see :func:`operand_block`): per leaf a pointer and strides over the GEMM's
``n_batch + 2`` dimensions (a plain operand is one leaf), then the producer's scalar slots.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .elementwise import Operand, dtype_named, emit_expr, load_elem, load_scalar
from .irb import I64, const, for_range

__all__ = ["Producer", "operand_block", "Source", "Packing", "CHUNK"]

#: elements of a producer's run evaluated into the scratch row at a time (a multiple of every
#: panel width, 6, 8 and 16: a chunk along the panels' axis starts a panel)
CHUNK = 240


@dataclass(frozen=True)
class Producer:
    """An elementwise expression computing a GEMM operand while it is packed.

    ``expr`` is a flat program over inputs ``in_dtypes`` and scalar args ``arg_dtypes`` whose last
    instruction has the GEMM's dtype; ``classes`` gives each input's stride class (``"c"``: 1,
    ``"0"``: broadcast, ``"s"``: any) along the packing loop's inner axis (K when the operand's
    layout flag is ``"k"``, the other axis otherwise)."""
    expr: tuple
    in_dtypes: tuple
    arg_dtypes: tuple
    classes: tuple

    @property
    def ops(self) -> list:
        """The program's op names, in order of first use (for kernel names)."""
        return list(dict.fromkeys(ins[0] if ins[0] != "cast" else f"cast_{ins[2]}" for ins in self.expr
                                  if ins[0] not in ("in", "arg")))


def operand_block(prod: Producer | None, pos: int, nd: int) -> tuple:
    """The slots of one GEMM operand from slot ``pos``: ``({"inputs": [(pointer slot, first
    stride slot), ...], "scalars": [slot, ...]}, next free slot)``; a plain operand is one input."""
    inputs, scalars = [], []
    for _ in (prod.in_dtypes if prod is not None else (None,)):
        inputs.append((pos, pos + 1))
        pos += 1 + nd
    for name in (prod.arg_dtypes if prod is not None else ()):
        scalars.append(pos)
        pos += 2 if name.startswith("complex") else 1
    return {"inputs": inputs, "scalars": scalars}, pos


class Source:
    """One GEMM operand while it is packed: its leaves (``ops``, Operands whose strides along the
    inner packing axis are constants where the classes promise), program and scalars.

    ``k_axis``/``x_axis``: the operand's K axis and its other axis (-1/-2 for A, -2/-1 for B);
    ``k_inner``: the packing's inner loop runs along K (layout ``"k"``)."""

    def __init__(self, b, args, block: dict, prod: Producer | None, dt, nd: int, layout: str,
                 k_axis: int, x_axis: int):
        dtypes = [dt] if prod is None else [dtype_named(n) for n in prod.in_dtypes]
        self.ops = [Operand(b, args, d, p, s, nd) for d, (p, s) in zip(dtypes, block["inputs"])]
        self.scalars = [load_scalar(b, args, s, dtype_named(n))
                        for s, n in zip(block["scalars"], prod.arg_dtypes if prod is not None else ())]
        self.expr = (("in", 0),) if prod is None else prod.expr
        self.k_axis, self.x_axis = k_axis, x_axis
        self.k_inner = layout == "k"
        inner = k_axis if self.k_inner else x_axis
        classes = ("s" if layout == "s" else "c",) if prod is None else prod.classes
        for op, cls in zip(self.ops, classes):
            if cls != "s":
                op.strides[inner] = const(I64, 1 if cls == "c" else 0)

    @property
    def strides(self) -> list:
        """Per leaf, its strides (IR values)."""
        return [op.strides for op in self.ops]


class Packing:
    """Mixin of the GEMM generator: packing of K slices of A and B into micro-panels (it uses the
    builder ``b``, the element type ``T``, the tile sizes, the Sources ``srcs`` and, for producers,
    ``scratch``: a stack row of :data:`CHUNK` elements)."""

    def pack_b(self, bpack, bases, pc, kc, j0, nc):
        """B[pc:pc+kc, j0:j0+nc] into panels of NR columns (k-major, zero-padded)."""
        self._pack(bpack, self.srcs[1], bases, pc, kc, j0, nc, self.NR)

    def pack_a(self, apack, bases, ic, mc, pc, kc):
        """A[ic:ic+mc, pc:pc+kc] into panels of MR rows (k-major, zero-padded)."""
        self._pack(apack, self.srcs[0], bases, pc, kc, ic, mc, self.MR)

    def _pack(self, dst0, src: Source, bases, pc, kc, x0, nx, width):
        """Rows/columns ``x0:x0+nx`` (of the K slice ``pc:pc+kc``) as panels of ``width``."""
        b = self.b
        if src.expr != (("in", 0),):
            return self._pack_produced(dst0, src, bases, pc, kc, x0, nx, width)
        npan = b.sdiv(b.add(nx, const(I64, width - 1)), const(I64, width))
        with for_range(b, const(I64, 0), npan, "pk") as q:
            xq = b.add(x0, b.mul(q, const(I64, width)))
            rest = b.sub(b.add(x0, nx), xq)
            nq = b.select(b.icmp_signed("<", rest, const(I64, width)), rest, const(I64, width))
            dst = b.gep(dst0, [b.mul(q, b.mul(kc, const(I64, width)))])
            self._pack_panel(dst, src, bases, pc, kc, xq, nq, width)

    def _pack_panel(self, dst, src: Source, bases, pc, kc, x0, nx, width):
        """dst[k*width + x] = operand(pc+k, x0+x) for x < nx, else 0: each leaf read at
        ``base + (pc+k)*k_stride + (x0+x)*x_stride`` and the producer's program run on the values.

        A plain strided loop (compile time matters more than the packing's speed: O(K*(M+N))
        against the product's O(M*N*K)); the inner loop runs along the layout's contiguous axis."""
        b = self.b
        kst = [op.strides[src.k_axis] for op in src.ops]
        xst = [op.strides[src.x_axis] for op in src.ops]
        starts = [b.add(base, b.mul(pc, ks)) for base, ks in zip(bases, kst)]
        w = const(I64, width)
        zero = const(I64, 0)
        outer, inner = ((nx, "px"), (kc, "pk")) if src.k_inner else ((kc, "pk"), (nx, "px"))
        with for_range(b, zero, outer[0], outer[1]) as o:
            with for_range(b, zero, inner[0], inner[1]) as i:
                x, k = (o, i) if src.k_inner else (i, o)
                xx = b.add(x0, x)

                def leaf(ins, values):
                    if ins[0] == "arg":
                        return src.scalars[ins[1]]
                    m = ins[1]
                    off = b.add(starts[m], b.add(b.mul(k, kst[m]), b.mul(xx, xst[m])))
                    return load_elem(b, src.ops[m], off, None, "0")
                b.store(emit_expr(b, src.expr, leaf), b.gep(dst, [b.add(b.mul(k, w), x)]))
        with b.if_then(b.icmp_signed("<", nx, w)):  # an edge panel: zero columns past nx
            with for_range(b, zero, kc, "pz") as k:
                with for_range(b, nx, w, "pzx") as x:
                    b.store(ir.Constant(self.T, 0.0), b.gep(dst, [b.add(b.mul(k, w), x)]))

    def _pack_produced(self, dst0, src: Source, bases, pc, kc, x0, nx, width):
        """A producer's values for rows/columns ``x0:x0+nx`` of the K slice, into the panels of
        ``width`` from ``dst0``: along each run of the inner axis, chunks of :data:`CHUNK`
        evaluated into ``scratch`` (contiguous stores: the loop vectorizes), then stored at their
        panel positions ``(x // width) * kc * width + k * width + x % width``; the last panel's
        columns past ``nx`` are zeros."""
        b = self.b
        zero, w = const(I64, 0), const(I64, width)
        kst = [op.strides[src.k_axis] for op in src.ops]
        xst = [op.strides[src.x_axis] for op in src.ops]
        starts = [b.add(base, b.add(b.mul(pc, ks), b.mul(x0, xs))) for base, ks, xs in zip(bases, kst, xst)]
        outer_n, run_n = (nx, kc) if src.k_inner else (kc, nx)
        chunk = const(I64, CHUNK)
        n_chunks = b.sdiv(b.add(run_n, const(I64, CHUNK - 1)), chunk)
        panel = b.mul(kc, w)
        with for_range(b, zero, outer_n, "po") as o:
            with for_range(b, zero, n_chunks, "pch") as ch:
                c0 = b.mul(ch, chunk)
                rest = b.sub(run_n, c0)
                cn = b.select(b.icmp_signed("<", rest, chunk), rest, chunk)
                with for_range(b, zero, cn, "pe") as i:  # the producer along the run
                    r = b.add(c0, i)
                    x, k = (o, r) if src.k_inner else (r, o)

                    def leaf(ins, values):
                        if ins[0] == "arg":
                            return src.scalars[ins[1]]
                        m = ins[1]
                        return load_elem(b, src.ops[m], b.add(starts[m], b.add(b.mul(k, kst[m]), b.mul(x, xst[m]))),
                                         None, "0")
                    b.store(emit_expr(b, src.expr, leaf), b.gep(self.scratch, [zero, i]))
                if src.k_inner:  # to the panels: row o of the panel o // width, at every k of the run
                    q = b.udiv(o, w)
                    row = b.gep(dst0, [b.add(b.mul(q, panel), b.sub(o, b.mul(q, w)))])
                    with for_range(b, zero, cn, "ps") as i:
                        b.store(b.load(b.gep(self.scratch, [zero, i])), b.gep(row, [b.mul(b.add(c0, i), w)]))
                else:  # to the panels: line k of the panels the run crosses, width values each
                    first = b.sdiv(c0, w)
                    with for_range(b, zero, b.sdiv(b.add(cn, const(I64, width - 1)), w), "ps") as q:
                        xs = b.mul(q, w)
                        left = b.sub(cn, xs)
                        nq = b.select(b.icmp_signed("<", left, w), left, w)
                        line = b.gep(dst0, [b.add(b.mul(b.add(first, q), panel), b.mul(o, w))])
                        with for_range(b, zero, nq, "psx") as xi:
                            b.store(b.load(b.gep(self.scratch, [zero, b.add(xs, xi)])), b.gep(line, [xi]))
        tail = b.urem(nx, w)
        with b.if_then(b.icmp_signed("!=", tail, zero)):  # the last panel: zero columns past nx
            last = b.gep(dst0, [b.mul(b.udiv(nx, w), panel)])
            with for_range(b, zero, kc, "pz") as k:
                with for_range(b, tail, w, "pzx") as x:
                    b.store(ir.Constant(self.T, 0.0), b.gep(last, [b.add(b.mul(k, w), x)]))
