"""The tiled form of fused elementwise kernels (``ElementwiseSpec.tiled``: inputs read transposed,
``exp(x.mT)``, ``x.mT + y``): the same arguments as the row form (kernels.elementwise), but the
work items are square blocks of the last two dimensions; each transposed input's block is
transposed in registers into a stack buffer, then the block's rows are computed as plain rows.
"""
from __future__ import annotations

from llvmlite import ir

from .copies import MAX_TILE, MIN_TILE, VECTOR_BYTES, _block_copy, _walk
from .elementwise import Operand, _has_math, _row_loop, dtype_named, loop_metadata
from .irb import I64, add_offsets, const, for_range, mem_type

__all__ = ["walk_tiles", "tile_side", "tiles", "TILE_ROW_BYTES", "MIN_TILE", "MAX_TILE"]


#: most bytes of a block's row in a tiled kernel (:func:`walk_tiles`): two cache lines
TILE_ROW_BYTES = 128


def tile_side(spec) -> int:
    """Block edge (elements) of a tiled kernel: rows of :data:`TILE_ROW_BYTES` of the widest of
    the output and the staged inputs, within [:data:`MIN_TILE`, :data:`MAX_TILE`]."""
    names = [spec.out_dtype] + [n for n, c in zip(spec.in_dtypes, spec.classes[1:]) if c == "t"]
    size = max(dtype_named(n).itemsize for n in names)
    return max(MIN_TILE, min(MAX_TILE, TILE_ROW_BYTES // size))


def tiles(triple: str) -> bool:
    """Whether elementwise kernels for the target ``triple`` may be tiled (host CPUs: a block of a
    transposed input is staged in registers and a stack buffer; GPU threads walk elements)."""
    return not triple.startswith("nvptx")


def walk_tiles(b, spec, module, fname, args, lay, shape, ops, idx_strides, scalars, start, stop) -> None:
    """The loops of a ``tiled`` spec over blocks ``[start, stop)``: square blocks (edge
    :func:`tile_side`) of the last two dimensions, C order over the leading dimensions, then block
    columns, then block rows: down the output's columns, along the staged inputs' rows (a few
    sequential read streams; faster than super-blocks along the output's rows, as
    ``kernels.copies`` walks its smaller copies: 3000^2 float32 ``x.mT * 2``, one thread, 6.5 ->
    5.7 ms, and no slower at 1000^2 and 2000^2).

    Each input of class ``"t"`` (unit stride along dimension ``ndim - 2``: read transposed) is
    first staged: its block transposed into a stack buffer laid out like the output's block
    (:func:`_stage`); then the block's rows are computed as plain rows (:func:`_row_loop`) reading
    the staged inputs contiguously. Both the output's rows and the transposed reads stay in the
    cache, and the row loop vectorizes as for contiguous inputs.

    A ``stream`` spec (large outputs whose rows are whole cache lines, x86-64) stores full blocks
    with non-temporal stores, as streamed transposing copies do."""
    side = tile_side(spec)
    tile = const(I64, side)
    n0, n1 = shape[-2], shape[-1]
    classes = tuple("c" if c == "t" else c for c in spec.classes)
    staged = {k: _scratch(b, ops[k].dtype, side) for k, c in enumerate(spec.classes) if c == "t"}
    row_ops = [staged.get(k, op) for k, op in enumerate(ops)]
    all_strides = [op.strides for op in ops] + idx_strides
    math = spec.fast_trig or _has_math(spec.expr)
    # a block's rows are short: one register's width a step, so a full row has no remainder
    # (left to itself the vectorizer took steps of 64 elements, and the rows ran scalar)
    lanes = VECTOR_BYTES // ops[0].dtype.itemsize
    plain_md = None if math else loop_metadata(module, fname, width=lanes, interleave=1)
    with for_range(b, start, stop, name="t") as t:
        outer, tr, tc = _walk(b, t, tile, n0, n1, None, True)
        bases = add_offsets(b, outer, shape[:-2], all_strides, [const(I64, 0)] * len(all_strides))
        i0, j0 = b.mul(tr, tile), b.mul(tc, tile)
        iend, jend = b.add(i0, tile), b.add(j0, tile)
        full = b.and_(b.icmp_signed("<=", iend, n0), b.icmp_signed("<=", jend, n1))
        iend = b.select(b.icmp_signed("<", iend, n0), iend, n0)
        jend = b.select(b.icmp_signed("<", jend, n1), jend, n1)
        for k, buf in staged.items():
            _stage(b, ops[k], buf, side, bases[k], i0, j0, iend, jend, full)

        def rows(last, align=None, latch_md=plain_md):
            with for_range(b, i0, iend, name="ti") as i:
                row = [b.add(base, b.mul(i, st[-2])) for base, st in zip(bases, all_strides)]
                for k in staged:  # element (i, j) of the block at (i - i0) * side + j - j0
                    row[k] = b.sub(b.mul(b.sub(i, i0), tile), j0)
                _row_loop(b, spec, module, fname, args, lay, row_ops, idx_strides, scalars, classes, row, j0, last,
                          align, latch_md)

        if not spec.stream:
            rows(jend)
        else:  # a full block's rows (whole cache lines, the scheduler checked) with non-temporal
            # vector stores, side elements a row (no remainder loop runs)
            with b.if_else(full) as (yes, no):
                with yes:
                    rows(b.add(j0, tile), VECTOR_BYTES, loop_metadata(module, fname, width=lanes, interleave=1))
                with no:
                    rows(jend)
    if spec.stream:  # order the non-temporal stores before returning
        b.call(module.declare_intrinsic("llvm.x86.sse.sfence", fnty=ir.FunctionType(ir.VoidType(), [])), [])


def _scratch(b, dtype, side: int) -> Operand:
    """A stack buffer for one staged block of ``dtype`` (``side`` rows of ``side`` elements,
    aligned to a cache line) as a memory operand of unit strides."""
    comps = side * side * (2 if dtype.kind == "c" else 1)
    buf = b.alloca(ir.ArrayType(mem_type(dtype), comps), name="block")
    buf.align = 64
    return Operand.at(dtype, b.bitcast(buf, mem_type(dtype).as_pointer()), [const(I64, side), const(I64, 1)])


def _stage(b, src: Operand, buf: Operand, side: int, base, i0, j0, iend, jend, full) -> None:
    """Copy the block ``[i0, iend) x [j0, jend)`` of ``src`` (element offset ``base`` + ``i`` +
    ``j * stride``: unit stride along the rows' index) into ``buf``, element (i, j) at
    ``(i - i0) * side + j - j0``. A full block is transposed in registers
    (``kernels.copies._block_copy``), an edge block element by element (its bits: any dtype)."""
    size = const(I64, src.dtype.itemsize)
    col = src.strides[-1]
    src_at = b.ptrtoint(src.ptr, I64)
    dst_at = b.ptrtoint(buf.ptr, I64)
    first = b.add(src_at, b.mul(b.add(base, b.add(i0, b.mul(j0, col))), size))
    with b.if_else(full) as (fast, slow):
        with fast:
            _block_copy(b, src.dtype, side, first, b.mul(col, size), dst_at, const(I64, side * src.dtype.itemsize))
        with slow:
            bits = ir.IntType(8 * src.dtype.itemsize).as_pointer()
            align = min(src.dtype.itemsize // src.comp, 8)
            with for_range(b, j0, jend, name="sj") as j:
                at = b.add(src_at, b.mul(b.add(base, b.mul(j, col)), size))
                with for_range(b, i0, iend, name="si") as i:
                    v = b.load(b.inttoptr(b.add(at, b.mul(i, size)), bits), align=align)
                    to = b.add(b.mul(b.sub(i, i0), const(I64, side)), b.sub(j, j0))
                    b.store(v, b.inttoptr(b.add(dst_at, b.mul(to, size)), bits), align=align)
