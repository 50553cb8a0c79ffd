"""Generator of multi-copy kernels: many strided pieces copied (and cast) in one launch.

``concat``, ``stack`` and ``roll`` copy several source views into views of one output. One kernel
does all of it: the pieces are described in the argument block at run time (so one compiled
kernel serves any number of pieces, of any shapes and strides), and the work items are
``(piece, flat range)`` pairs, so big pieces are split across threads and small ones cost little.

Kernel ``void NAME(i64* args, i64 start, i64 stop)``; ``args``:

- slot 0: ``R``, the slot where the piece records start;
- work item ``w``: slots ``1 + 3w .. 3 + 3w``: piece number, first and end flat element (C order
  over the piece's shape);
- piece record ``k`` at ``R + k * (4 + 3 * ndim)``: source dtype code (an index into
  ``spec.src_dtypes``), tiling (0; the super-block side in blocks; or -1, streamed: see below),
  source pointer, destination pointer, ``ndim`` extents, ``ndim`` source strides, ``ndim``
  destination strides (elements).

Rows of the innermost dimension are copied by a counted loop; when both inner strides are 1 the
loop is the contiguous one LLVM vectorizes. A *tiled* piece (a transposing copy: the source's
unit stride is along dimension ``ndim - 2``, the destination's along the last one) is walked in
T x T blocks of its last two dimensions (:func:`tile_of`: rows of whole cache lines on both
sides, but for 1-byte elements), grouped in super-blocks, so both sides stay in cache and in the TLB; its work items count
blocks instead of elements. A full block of a same-dtype copy is moved with vector loads,
shuffles (a transpose in registers) and vector stores; edge blocks and casts element by element.

A *streamed* tiled piece (:func:`tiled_walk`: a destination of :data:`STREAM_MIN_BYTES` or more,
rows on cache-line boundaries, on an x86-64 host) writes its full blocks with non-temporal stores, whole
destination lines at a time: the destination is not read into the cache before it is written
(no read-for-ownership: a third less memory traffic) and does not evict the source. Its blocks are
twice as wide (:func:`tile_of` with ``stream``) and go along the source's rows (the source is read
as a few sequential streams; the scattered destination lines cost nothing more when streamed);
the kernel ends with a store fence. Other targets (NVPTX) never get streamed pieces, and their
form of the kernel has no non-temporal stores (its streamed walk copies element by element).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I64, add_offsets, const, for_range, while_loop
from .ops import cast
from .scatter import _Mem

__all__ = ["CopiesSpec", "record_size", "generate", "tile_of", "tiled_walk", "streams"]

#: bytes of a cache line: a block's rows are whole lines on both sides
LINE_BYTES = 64
#: fewest and most elements along a block edge (wide elements: several lines per row, so the
#: per-block bookkeeping is shared by at least 256 elements; 1-byte elements: 32 x 32 blocks)
MIN_TILE, MAX_TILE = 16, 32
#: bytes of a vector register (AVX2): blocks are transposed in squares of this width
VECTOR_BYTES = 32
#: destinations of at least this many bytes (past the caches a core can use) are streamed:
#: non-temporal stores (measured: no gain for 4-8 MiB, a large one from 16 MiB)
STREAM_MIN_BYTES = 1 << 23
#: the tiling field of a streamed piece's record
STREAMED = -1


def tile_of(itemsize: int, stream: bool = False) -> int:
    """Block edge, in elements, of tiled pieces copied into elements of ``itemsize`` bytes;
    streamed blocks have rows of two cache lines (fewer blocks, longer source runs)."""
    return max(MIN_TILE, min(MAX_TILE, (2 if stream else 1) * LINE_BYTES // itemsize))


def streams(triple: str) -> bool:
    """Whether kernels for the target ``triple`` stream full blocks (x86-64 non-temporal stores)."""
    return triple.startswith("x86_64")


def tiled_walk(cshape, itemsize: int, dst_at: int, dst_st, group: int, chunk: int, triple: str) -> tuple:
    """How a tiled piece is walked: ``(tiling field, work items, blocks per work item)``.

    ``cshape``/``dst_st``: the piece's extents and destination strides (elements) as recorded,
    ``dst_at`` its destination address, ``group`` the super-block side limit (blocks), ``chunk``
    the elements per work item. Streamed (:data:`STREAMED`) when :func:`streams` holds for the
    target, the destination has :data:`STREAM_MIN_BYTES` or more, its rows start on cache-line
    boundaries (the blocks' rows are whole lines: streamed parts of lines gain nothing, measured)
    and a block's destination row is at least a cache line (not 1-byte elements)."""
    lead = 1
    for n in cshape[:-2]:
        lead *= n
    stream = (streams(triple) and itemsize > 1 and lead * cshape[-2] * cshape[-1] * itemsize >= STREAM_MIN_BYTES
              and dst_at % LINE_BYTES == 0 and (dst_st[-2] * itemsize) % LINE_BYTES == 0)
    tile = tile_of(itemsize, stream)
    t0, t1 = -(-cshape[-2] // tile), -(-cshape[-1] // tile)
    step = max(1, chunk // (tile * tile))
    if stream:
        return STREAMED, lead * t0 * t1, step
    g = min(group, t0, t1)
    return g, lead * -(-t0 // g) * -(-t1 // g) * g * g, step


@dataclass(frozen=True)
class CopiesSpec:
    """Copies into an ``out_dtype`` destination from sources of any of ``src_dtypes`` (chosen per
    piece at run time, cast in the kernel), over ``ndim`` dimensions per piece."""
    out_dtype: str
    src_dtypes: tuple
    ndim: int

    kind = "copies"

    @property
    def name(self) -> str:
        return f"copies_{self.out_dtype}_from_{'_'.join(self.src_dtypes)}"


def record_size(ndim: int) -> int:
    """Slots per piece record."""
    return 4 + 3 * ndim


def _copy_row(b, src, dst, sbase, dbase, ss, ds, j0, jend, dtype):
    """``dst[dbase + j*ds] = cast(src[sbase + j*ss])`` for j in [j0, jend); a contiguous variant
    when both strides are 1."""
    one = const(I64, 1)
    contiguous = b.and_(b.icmp_signed("==", ss, one), b.icmp_signed("==", ds, one))
    with b.if_else(contiguous) as (then, other):
        with then:
            with for_range(b, j0, jend, name="jc") as j:
                dst.store(b.add(dbase, j), cast(b, src.dtype, dtype, src.load(b.add(sbase, j))))
        with other:
            with for_range(b, j0, jend, name="js") as j:
                v = cast(b, src.dtype, dtype, src.load(b.add(sbase, b.mul(j, ss))))
                dst.store(b.add(dbase, b.mul(j, ds)), v)


def generate(spec: CopiesSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the multi-copy kernel for ``spec`` to ``module`` under the name ``fname``."""
    nd = spec.ndim
    out_dtype = dtype_named(spec.out_dtype)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))

    def slot(k):
        return b.load(b.gep(args, [k if isinstance(k, ir.Value) else const(I64, k)]))

    records = slot(0)
    with for_range(b, start, stop, name="w") as w:
        item = b.add(b.mul(w, const(I64, 3)), const(I64, 1))
        piece, lo, hi = (slot(b.add(item, const(I64, k))) for k in range(3))
        rec = b.add(records, b.mul(piece, const(I64, record_size(nd))))

        def field(k):
            return slot(b.add(rec, const(I64, k)))

        code, tiled, src_raw, dst_raw = field(0), field(1), field(2), field(3)
        shape = [field(4 + d) for d in range(nd)]
        sst = [field(4 + nd + d) for d in range(nd)]
        dst_st = [field(4 + 2 * nd + d) for d in range(nd)]
        dst = _Mem(b, dst_raw, out_dtype)
        if nd >= 2:
            piece = (b, spec, code, src_raw, dst_raw, dst, shape, sst, dst_st, lo, hi, tiled)
            with b.if_else(b.icmp_signed("==", tiled, const(I64, 0))) as (then, other):
                with then:
                    _rows(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi)
                with other:
                    with b.if_else(b.icmp_signed("==", tiled, const(I64, STREAMED))) as (streamed, grouped):
                        with streamed:
                            _tiles(*piece, stream=True)
                        with grouped:
                            _tiles(*piece, stream=False)
        else:
            _rows(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi)
    if nd >= 2 and streams(module.triple):  # order the non-temporal stores before returning
        b.call(module.declare_intrinsic("llvm.x86.sse.sfence", fnty=ir.FunctionType(ir.VoidType(), [])), [])
    b.ret_void()
    return fn


def _by_code(b, spec, code, body):
    """``body(src_dtype)`` under a branch on the piece's source dtype code."""
    for c, name in enumerate(spec.src_dtypes):
        with b.if_then(b.icmp_signed("==", code, const(I64, c))):
            body(dtype_named(name))


def _rows(b, spec, code, src_raw, dst, shape, sst, dst_st, lo, hi):
    """Copy flat elements [lo, hi) of a piece, a row of the last dimension at a time."""
    out_dtype = dst.dtype
    inner = shape[-1]

    def row(s):
        i = s[0]
        r, j0 = b.sdiv(i, inner), b.srem(i, inner)
        sbase, dbase = add_offsets(b, r, shape[:-1], [sst, dst_st], [const(I64, 0)] * 2)
        jend = b.add(j0, b.sub(hi, i))
        jend = b.select(b.icmp_signed("<", jend, inner), jend, inner)
        _by_code(b, spec, code, lambda dt: _copy_row(b, _Mem(b, src_raw, dt), dst, sbase, dbase,
                                                     sst[-1], dst_st[-1], j0, jend, out_dtype))
        return [b.add(i, b.sub(jend, j0))]

    while_loop(b, [lo], lambda s: b.icmp_signed("<", s[0], hi), row, "row")


def _tiles(b, spec, code, src_raw, dst_raw, dst, shape, sst, dst_st, lo, hi, group, stream):
    """Copy blocks [lo, hi) of a tiled piece: T x T blocks of its last two dimensions (T from
    :func:`tile_of`), in the order of :func:`_walk`.

    A full block of a plain copy (same dtype, unit strides inside the block) is copied by
    :func:`_block_copy` (row loads, transposes in registers, row stores; streamed on x86-64:
    :func:`_stream_block`); other blocks (edges, casts, strided blocks) element by element."""
    tile = tile_of(dst.dtype.itemsize, stream)
    T = const(I64, tile)
    one = const(I64, 1)
    n0, n1 = shape[-2], shape[-1]
    unit = b.and_(b.icmp_signed("==", sst[-2], one), b.icmp_signed("==", dst_st[-1], one))
    nt = stream and streams(b.module.triple) and dst.dtype.itemsize > 1  # (as tiled_walk decides)
    with for_range(b, lo, hi, name="t") as t:
        outer, tr, tc = _walk(b, t, T, n0, n1, group, stream)
        sbase, dbase = add_offsets(b, outer, shape[:-2], [sst, dst_st], [const(I64, 0)] * 2)
        i0, j0 = b.mul(tr, T), b.mul(tc, T)
        iend, jend = b.add(i0, T), b.add(j0, T)
        full = b.and_(unit, b.and_(b.icmp_signed("<=", iend, n0), b.icmp_signed("<=", jend, n1)))
        iend = b.select(b.icmp_signed("<", iend, n0), iend, n0)
        jend = b.select(b.icmp_signed("<", jend, n1), jend, n1)

        def elementwise(dt):
            src = _Mem(b, src_raw, dt)
            with for_range(b, i0, iend, name="ti") as i:
                sb_ = b.add(sbase, b.mul(i, sst[-2]))
                db = b.add(dbase, b.mul(i, dst_st[-2]))
                with for_range(b, j0, jend, name="tj") as j:
                    v = cast(b, dt, dst.dtype, src.load(b.add(sb_, b.mul(j, sst[-1]))))
                    dst.store(b.add(db, b.mul(j, dst_st[-1])), v)

        def block(dt):
            if dt.name != dst.dtype.name or (stream and not nt):
                elementwise(dt)
                return
            with b.if_else(full) as (fast, slow):
                with fast:
                    size = const(I64, dt.itemsize)
                    src_at = b.add(src_raw, b.mul(b.add(sbase, b.add(i0, b.mul(j0, sst[-1]))), size))
                    dst_at = b.add(dst_raw, b.mul(b.add(dbase, b.add(b.mul(i0, dst_st[-2]), j0)), size))
                    src_row, dst_row = b.mul(sst[-1], size), b.mul(dst_st[-2], size)
                    if nt:  # (the host checked the alignment; checked again: an unaligned one faults)
                        aligned = b.icmp_signed("==", b.and_(b.or_(dst_at, dst_row), const(I64, VECTOR_BYTES - 1)),
                                                const(I64, 0))
                        with b.if_else(aligned) as (yes, no):
                            with yes:
                                _stream_block(b, dt, tile, src_at, src_row, dst_at, dst_row)
                            with no:
                                _block_copy(b, dt, tile, src_at, src_row, dst_at, dst_row)
                    else:
                        _block_copy(b, dt, tile, src_at, src_row, dst_at, dst_row)
                with slow:
                    elementwise(dt)

        _by_code(b, spec, code, block)


def _walk(b, t, T, n0, n1, group, stream):
    """Block ``t`` of a tiled piece as (flat index over the leading dimensions, block row, block
    column). Grouped: C order over the leading dimensions, then super-blocks of ``group`` x
    ``group`` blocks, then the blocks inside along the destination's rows (a super-block touches
    few pages; blocks past the piece's edge are empty). Streamed: C order over the leading
    dimensions, then block columns, then block rows: down the source's rows (a few sequential
    source streams per thread)."""
    one = const(I64, 1)
    t0 = b.sdiv(b.add(n0, b.sub(T, one)), T)
    if stream:
        tr, rest = b.srem(t, t0), b.sdiv(t, t0)
        t1 = b.sdiv(b.add(n1, b.sub(T, one)), T)
        return b.sdiv(rest, t1), tr, b.srem(rest, t1)
    span = b.mul(T, group)  # elements per super-block side
    s1n = b.sdiv(b.add(n1, b.sub(span, one)), span)
    s0n = b.sdiv(b.add(n0, b.sub(span, one)), span)
    gg = b.mul(group, group)
    inside, sb = b.srem(t, gg), b.sdiv(t, gg)
    sc, rest = b.srem(sb, s1n), b.sdiv(sb, s1n)
    sr, outer = b.srem(rest, s0n), b.sdiv(rest, s0n)
    tr = b.add(b.mul(sr, group), b.sdiv(inside, group))
    tc = b.add(b.mul(sc, group), b.srem(inside, group))
    return outer, tr, tc


def _block_copy(b, dtype, tile, src_at, src_row, dst_at, dst_row) -> None:
    """One full block: source row j (``tile`` contiguous elements from byte ``src_at + j *
    src_row``) becomes column j of the destination (row i from byte ``dst_at + i * dst_row``).

    The block is cut in squares of one vector register's width (:data:`VECTOR_BYTES`), each loaded,
    transposed in registers (:func:`_transpose`) and stored on its own (a whole block would not
    fit the registers). Squares go by groups of 2 x 2 covering one cache line per row on each
    side, in the order top-left, bottom-left, bottom-right, top-right, so the two halves of every
    line are read (written) by consecutive squares; groups go along the destination's rows. A
    compiler barrier after each square keeps that order: rows are often a power of two of bytes
    apart, all in one cache set, and interleaved squares would evict lines between their halves."""
    v = min(tile, VECTOR_BYTES // dtype.itemsize)
    size = dtype.itemsize
    vec, k = _row_type(dtype, v)
    ptr = vec.as_pointer()
    pair = [(0, 0)] if v == tile else [(0, 0), (1, 0), (1, 1), (0, 1)]
    groups = max(1, tile // (2 * v))
    for ga in range(groups):
        for gc in range(groups):
            for a, c in pair:  # square (a, c): elements a*v.. of source rows c*v..
                a, c = a + 2 * ga, c + 2 * gc
                s_at = b.add(src_at, b.add(b.mul(const(I64, c * v), src_row), const(I64, a * v * size)))
                d_at = b.add(dst_at, b.add(b.mul(const(I64, a * v), dst_row), const(I64, c * v * size)))
                rows = [b.load(b.inttoptr(b.add(s_at, b.mul(const(I64, j), src_row)), ptr), align=size)
                        for j in range(v)]
                for i, col in enumerate(_transpose(b, rows, k)):
                    b.store(col, b.inttoptr(b.add(d_at, b.mul(const(I64, i), dst_row)), ptr), align=size)
                _in_order(b)


def _stream_block(b, dtype, tile, src_at, src_row, dst_at, dst_row) -> None:
    """One full block as :func:`_block_copy` does it, with non-temporal stores of whole
    destination lines: for each band of register-wide destination rows, the squares that make one
    line of those rows are loaded and transposed together, then each row's line is stored as
    consecutive vector stores (a partly written line would go to memory in pieces). ``dst_at`` and
    ``dst_row`` are multiples of :data:`VECTOR_BYTES` (the vectors are stored aligned)."""
    v = min(tile, VECTOR_BYTES // dtype.itemsize)
    size = dtype.itemsize
    vec, k = _row_type(dtype, v)
    ptr = vec.as_pointer()
    squares = tile // v  # per block side
    per_line = max(1, min(squares, LINE_BYTES // VECTOR_BYTES))  # squares side by side in a line
    streamed = b.module.add_metadata([ir.Constant(ir.IntType(32), 1)])
    for a in range(squares):  # destination rows a*v.. (source elements a*v.. of each row)
        for c0 in range(0, squares, per_line):  # destination columns c0*v.. (source rows c0*v..)
            cols = []
            for c in range(c0, c0 + per_line):
                s_at = b.add(src_at, b.add(b.mul(const(I64, c * v), src_row), const(I64, a * v * size)))
                rows = [b.load(b.inttoptr(b.add(s_at, b.mul(const(I64, j), src_row)), ptr), align=size)
                        for j in range(v)]
                cols.append(_transpose(b, rows, k))
            d_at = b.add(dst_at, b.add(b.mul(const(I64, a * v), dst_row), const(I64, c0 * v * size)))
            for i in range(v):
                row_at = b.add(d_at, b.mul(const(I64, i), dst_row))
                for q in range(per_line):
                    at = b.inttoptr(b.add(row_at, const(I64, q * VECTOR_BYTES)), ptr)
                    b.store(cols[q][i], at, align=VECTOR_BYTES).set_metadata("nontemporal", streamed)
            _in_order(b)


def _row_type(dtype, n: int):
    """The vector type of a row of ``n`` elements (integer lanes of at most 64 bits: the copy
    moves bits) and the lanes per element."""
    lane = min(dtype.itemsize, 8)
    k = dtype.itemsize // lane
    return ir.VectorType(ir.IntType(8 * lane), n * k), k


def _transpose(b, rows: list, k: int) -> list:
    """The transpose of a square held as row vectors of ``k`` lanes per element: for each bit s of
    the element index, rows r and r + s (r without bit s) swap their s-wide column halves (one
    two-input shuffle per row), which exchanges bit s of the row and of the column index."""
    n = len(rows)
    s = n // 2
    while s:
        lo = [c if not c & s else n + c - s for c in range(n)]
        hi = [c + s if not c & s else n + c for c in range(n)]
        masks = [ir.Constant(ir.VectorType(ir.IntType(32), n * k), [m * k + q for m in mask for q in range(k)])
                 for mask in (lo, hi)]
        new = list(rows)
        for r in range(n):
            if not r & s:
                new[r] = b.shuffle_vector(rows[r], rows[r + s], masks[0])
                new[r + s] = b.shuffle_vector(rows[r], rows[r + s], masks[1])
        rows = new
        s //= 2
    return rows


def _in_order(b) -> None:
    """A compiler-only barrier (an empty asm that clobbers memory): no load or store moves across."""
    b.call(ir.InlineAsm(ir.FunctionType(ir.VoidType(), []), "", "~{memory}", side_effect=True), [])
