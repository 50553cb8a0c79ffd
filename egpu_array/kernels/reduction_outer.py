"""Column-order ("outer") reduction kernels: axis-0 style reductions.

The last kept dimension is contiguous (or broadcast) in every operand while the reduced rows are
not, e.g. ``sum(x, axis=0)`` of a C-contiguous matrix or ``sum(x, axis=1)`` of a 3-D one (the
kept dimensions before the last one are a batch). Work item ``w`` reduces row chunk
``w % nchunks`` of column tile ``(w // nchunks) % ntiles`` (:func:`outer_tile` kept outputs) of
batch index ``w // (nchunks * ntiles)``: it zeroes a stack array of accumulators (L1/L2-resident),
then walks the chunk's rows ``ROW_UNROLL`` (tiles of ``WIDE_TILE`` outputs or more: ``WIDE_UNROLL``
first), then one at a time, adding the rows' values together before one
update of each accumulator, so the inner loop streams several contiguous rows at once and
vectorizes over the columns. A narrow tile whose operands' rows follow one another in memory
(a tall C-contiguous matrix) walks runs of ``fold`` rows as one row of ``fold`` times as many
outputs and folds those accumulators onto its own at the end (:data:`PACK_ELEMS`): the rows of
a (N, 3) matrix stream like those of a wide one. With one chunk the tile's results
are final; with several, the raw accumulators go to the partials buffer at
``(chunk * outputs + flat output)`` (one contiguous run per work item) and the chunked reduction's
``_fin`` step (:func:`generate_outer_finalize`) combines them, vectorized over the outputs.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import Leaves, emit_expr, gather_pairs, loop_metadata
from .irb import I64, add_offsets, const, for_range, mem_type, product, range_loop
from .reduction_rows import float32_blocks
from .ops import cast
from .spec import ReduceSpec

__all__ = ["generate_outer", "generate_outer_finalize", "outer_tile", "ROW_UNROLL", "WIDE_UNROLL", "WIDE_TILE"]

#: bytes of accumulators per work item (they stay in L1/L2 next to the streamed rows). 64 KiB:
#: longer contiguous row segments per tile, which the prefetchers follow further. 16 -> 32 KiB
#: was 5-10% faster on 1e7 float32/float64 sum/max over axis 0 of an AVX2 EPYC; 32 -> 64 KiB here
#: (Zen 5, 1 MiB L2 per core) +3-7% for max float64 and float32 sum/mean over axis 0 of
#: (2500, 40000) and (1000, 10000), the rest within noise (interleaved in one process). argmax/argmin
#: (:data:`ARG_TILE_BYTES`): 8 KiB, measured on Zen 5 against 32, 16 and 4 KiB (argmin over axis 0
#: of 1e7 float32 in (2500, 4000), (1000, 10000), (10000, 1000), (250, 40000) and float64
#: (2500, 4000), caches flushed between calls): 24-29 -> 27-36 GB/s, (250, 40000) unchanged
TILE_BYTES = 65536
ARG_TILE_BYTES = 8192
#: rows combined (a balanced tree) before each accumulator update
ROW_UNROLL = 4
#: narrow tiles of packed rows (each operand's rows follow one another in memory, as in a tall
#: C-contiguous matrix reduced over axis 0) walk runs of rows as one row of about this many
#: outputs (at most a tile), folded back onto the tile's outputs at the end: a (2500000, 16) or
#: (13333333, 3) float32 matrix then streams like a wide one (sum/max over axis 0, 1 thread:
#: 9-15 -> 18-21 GB/s; rows of 512 outputs reached only 10-11: the prefetchers lose short rows)
PACK_ELEMS = 4096
#: tiles of at least WIDE_TILE outputs combine WIDE_UNROLL rows per update first (half the
#: accumulator loads and stores; narrow tiles keep ROW_UNROLL, where the 8 row pointers cost more)
WIDE_UNROLL, WIDE_TILE = 8, 1024
#: float32 sums (added in float32 per row group, accumulated in float64): lanes of the vectorized
#: column loop. 16 (one 512-bit float32 register, two float64 accumulators on AVX-512; two and
#: four registers on AVX2) rather than 8: float32 sum/mean over axis 0 of 1e7-1e8 elements
#: 86-90% -> 95-102% of a plain read on Zen 5 (interleaved, with the 64 KiB tiles)
NARROW_LANES = 16


def outer_tile(acc_dtype, op: str = "") -> int:
    """Kept outputs per column tile for an accumulator dtype (argmax/argmin: two copies of the
    best value and its int32 row per output, in a multiple of 64 outputs)."""
    if op in ("argmax", "argmin"):
        return ARG_TILE_BYTES // (2 * (acc_dtype.itemsize + 4)) // 64 * 64
    return TILE_BYTES // acc_dtype.itemsize


def generate_outer(spec: ReduceSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the column-order kernel for ``spec`` to ``module`` as ``fname``. The last kept dimension
    is the vectorized one; the kept dimensions before it (if any) are a batch: work item ``w`` is
    (batch index, column tile, row chunk), the chunk varying fastest."""
    from .reduction import ReduceArgs, _combine, _const_of, _finish, _partials, _store_value, identity_of, \
        reduce_arg_layout
    nk = spec.n_kept
    lay = reduce_arg_layout(spec)
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    kept, ops, idx_strides, scalars = ra.kept, ra.ops, ra.idx_strides, ra.scalars
    n_inner = kept[-1]
    expr_dt, acc_dt, out_dt = ra.expr_dt, ra.acc_dt, ra.out_dt
    divisor, all_strides = ra.divisor, ra.all_strides
    init = _const_of(acc_dt, identity_of(spec.op, acc_dt))
    tile = outer_tile(acc_dt)
    n_out = product(b, kept)
    ntiles = _ceil_div(b, n_inner, tile)
    accs = _Accumulators(b, acc_dt, tile)
    # max/min of real floats: integer max/min of order-preserving keys (see _Keys); else as is
    dom = _Keys(b, spec.op, acc_dt, accs) if _Keys.applies(spec.op, expr_dt, acc_dt) else \
        _Plain(b, spec.op, acc_dt, accs)

    def row_bases(r, firsts):
        return _row_bases(b, spec, ra, r, firsts)

    # float32 sums: each row group is added in float32 (one conversion per group, not per row)
    narrow = float32_blocks(spec)

    def value(bases, o, raw=False):
        leaf = Leaves(b, args, ops, idx_strides, scalars, spec.classes, bases, o, lay["gather"], lay["error"])
        v = emit_expr(b, spec.expr, leaf)
        return v if raw else cast(b, expr_dt, acc_dt, v)

    # packed rows: a kernel of their own (spec.packed, the scheduler's choice: the extra loops
    # doubled the compile time of every column-order kernel); the strides are checked here again
    # (once: the same for every work item), so other strides only lose the speed-up
    packable = spec.packed and spec.n_red == 1 and not spec.n_idx and not gather_pairs(spec.expr)
    if packable:
        pack = min(PACK_ELEMS, tile)
        packed = b.icmp_signed("<=", n_inner, const(I64, pack // 2))
        for st in all_strides[1:]:
            inner_st, row_st = st[nk - 1], st[nk]
            rows_follow = b.and_(b.icmp_signed("==", inner_st, const(I64, 1)), b.icmp_signed("==", row_st, n_inner))
            broadcast = b.and_(b.icmp_signed("==", inner_st, const(I64, 0)), b.icmp_signed("==", row_st, const(I64, 0)))
            packed = b.and_(packed, b.or_(rows_follow, broadcast))

        def packed_fold(n, rows):
            """Rows per run: ``pack // n``, at most an eighth of the work item's rows (a short
            chunk would spend more on zeroing and folding the wide row than it saves)."""
            by_width = b.sdiv(const(I64, pack), b.select(b.icmp_signed(">", n, const(I64, 0)), n, const(I64, 1)))
            by_rows = b.sdiv(rows, const(I64, WIDE_UNROLL))
            fold = b.select(b.icmp_signed("<", by_rows, by_width), by_rows, by_width)
            return b.select(b.and_(packed, b.icmp_signed(">", fold, const(I64, 1))), fold, const(I64, 1))

    with for_range(b, start, stop, name="w") as w:
        c, batch, o0, n, bbase, firsts, r_lo, r_hi = _work_item(b, spec, ra, w, tile, ntiles)
        # packed rows: ``fold`` rows at a time as one row of fold * n outputs (see PACK_ELEMS)
        fold = packed_fold(n, b.sub(r_hi, r_lo)) if packable else const(I64, 1)
        width = b.mul(n, fold)
        with for_range(b, const(I64, 0), width, name="z") as z:
            dom.store(z, dom.leaf(init))

        def row_groups(r0, unroll: int, use):
            """Add the rows from ``r0`` in groups of ``unroll`` (packed: of ``unroll`` runs of
            ``fold`` rows) (none unless ``use``); returns the first row left over."""
            span = b.mul(fold, const(I64, unroll))
            groups = b.select(use, b.sdiv(b.sub(r_hi, r0), span), const(I64, 0))
            with for_range(b, const(I64, 0), groups, name=f"g{unroll}") as g:
                r = b.add(r0, b.mul(g, span))
                rows = [row_bases(b.add(r, b.mul(fold, const(I64, u))), firsts) for u in range(unroll)]
                with for_range(b, const(I64, 0), width, name=f"o{unroll}") as o:
                    vals = [value(bases, o, raw=narrow) for bases in rows]
                    if narrow:
                        while len(vals) > 1:  # a balanced tree: independent operations
                            vals = [_combine(b, spec.op, expr_dt, vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]
                        total = cast(b, expr_dt, acc_dt, vals[0])
                    else:
                        vals = [dom.pair(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]
                        while len(vals) > 1:
                            vals = [dom.combine(vals[i], vals[i + 1]) for i in range(0, len(vals), 2)]
                        total = vals[0]
                    dom.store(o, dom.combine(dom.load(o), total))
                    latch_block = b.block
                if narrow:  # NARROW_LANES float32 lanes
                    latch_block.terminator.set_metadata("llvm.loop", loop_metadata(module, fname, width=NARROW_LANES))
            return b.add(r0, b.mul(groups, span))
        wide = b.icmp_signed(">=", width, const(I64, WIDE_TILE))
        # (the rows after the last group of 4 go one at a time: passes of 2 rows or single runs
        # measured within noise and cost a vectorized loop's compile time each)
        r_left = row_groups(row_groups(r_lo, WIDE_UNROLL, wide), ROW_UNROLL, ir.Constant(ir.IntType(1), 1))
        with for_range(b, const(I64, 1), fold, name="fold") as k:  # packed: the runs onto the outputs
            at = b.mul(k, n)
            with for_range(b, const(I64, 0), n, name="fo") as o:
                dom.store(o, dom.combine(dom.load(o), dom.load(b.add(at, o))))
        with for_range(b, r_left, r_hi, name="r") as r:
            bases = row_bases(r, firsts)
            with for_range(b, const(I64, 0), n, name="o1") as o:
                dom.store(o, dom.combine(dom.load(o), dom.leaf(value(bases, o))))
        if spec.chunked:  # a contiguous run of partials: chunk c's row of all outputs
            part = _partials(b, args, lay, acc_dt)
            first = b.add(b.mul(c, n_out), b.add(b.mul(batch, n_inner), o0))

            def write(q, a):
                _store_value(b, part, b.add(first, q), a)
        else:
            out = ops[0]

            def write(q, a):
                off = b.add(bbase[0], b.mul(b.add(o0, q), out.strides[nk - 1]))
                _store_value(b, out, off, _finish(b, spec, acc_dt, out_dt, a, divisor))
        if not narrow:
            with for_range(b, const(I64, 0), n, name="s") as q:
                write(q, dom.value(dom.load(q)))
        else:  # a float32 group total that overflowed: that column again in float64, and stored again

            def not_finite(a):
                return b.fcmp_unordered("uno", b.fsub(a, a), const(a.type, 0.0))

            def store_and_count(q, seen):
                a = accs.load(q)
                write(q, a)
                # (a count, not an or of i1 flags: those are packed to bytes per vector)
                return [b.add(seen[0], b.zext(not_finite(a), I64))]
            # (the check rides on the store pass; a loop with the redo in its body stays scalar,
            # and took 30% of a (10, 1000000) sum's time)
            (seen,) = range_loop(b, const(I64, 0), n, [const(I64, 0)], store_and_count, "s")
            with b.if_then(b.icmp_unsigned("!=", seen, const(I64, 0))):
                with for_range(b, const(I64, 0), n, name="f") as q:
                    with b.if_then(not_finite(accs.load(q))):
                        accs.store(q, init)
                        with for_range(b, r_lo, r_hi, name="f64") as r:
                            accs.store(q, _combine(b, spec.op, acc_dt, accs.load(q), value(row_bases(r, firsts), q)))
                        write(q, accs.load(q))
    b.ret_void()
    return fn


def _ceil_div(b, n, k: int):
    return b.sdiv(b.add(n, const(I64, k - 1)), const(I64, k))


def _work_item(b, spec: ReduceSpec, ra, w, tile: int, ntiles) -> tuple:
    """Work item ``w`` of a column-order kernel: ``(chunk, batch index, first column o0, columns
    n, the batch's element offsets per operand, the tile's first offsets, first row, end row)``;
    the chunk varies fastest, then the column tile, then the batch index."""
    nk, all_strides = spec.n_kept, ra.all_strides
    c, rest = b.srem(w, ra.nchunks), b.sdiv(w, ra.nchunks)
    t, batch = b.srem(rest, ntiles), b.sdiv(rest, ntiles)
    o0 = b.mul(t, const(I64, tile))
    n = b.sub(ra.kept[-1], o0)
    n = b.select(b.icmp_signed("<", n, const(I64, tile)), n, const(I64, tile))
    zeros = [const(I64, 0)] * len(all_strides)
    bbase = add_offsets(b, batch, ra.kept[:-1], all_strides, zeros) if nk > 1 else zeros
    firsts = [b.add(f, b.mul(o0, st[nk - 1])) for f, st in zip(bbase, all_strides)]
    r_lo = b.mul(c, ra.chunk)
    r_hi = b.add(r_lo, ra.chunk)
    r_hi = b.select(b.icmp_signed("<", r_hi, ra.total_red), r_hi, ra.total_red)
    return c, batch, o0, n, bbase, firsts, r_lo, r_hi


def _row_bases(b, spec: ReduceSpec, ra, r, firsts) -> list:
    """Element offsets of row ``r`` of the reduced space, per operand (``firsts``: row 0's)."""
    nk = spec.n_kept
    if spec.n_red == 1:
        return [b.add(f, b.mul(r, st[nk])) for f, st in zip(firsts, ra.all_strides)]
    return add_offsets(b, r, ra.red, ra.all_strides, firsts, first=nk)


def generate_outer_finalize(spec: ReduceSpec, module: ir.Module, fname: str, lay: dict) -> None:
    """Phase 2 of a chunked column-order reduction, ``void NAME(i64* args)``: the partials are
    rows of all outputs, one per chunk; chunk 0's row accumulates the others in chunk order
    (contiguous loops over the outputs, which LLVM vectorizes), then the post-op and the store."""
    from .reduction import FinalizeArgs, _flat, _store_value, _unflat, load_partial
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), name=fname)
    (args,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    fa = FinalizeArgs(b, args, spec, lay)
    part, n_out = fa.part, fa.n_out
    with for_range(b, const(I64, 1), fa.nchunks, name="c") as c:
        row = b.mul(c, n_out)
        with for_range(b, const(I64, 0), n_out, name="o") as o:
            total = fa.merge(b, _flat(load_partial(b, part, o)), _flat(load_partial(b, part, b.add(row, o))))
            _store_value(b, part, o, _unflat(total, fa.like))
    with for_range(b, const(I64, 0), n_out, name="s") as o:
        fa.store(o, _flat(load_partial(b, part, o)))
    b.ret_void()


class _Plain:
    """The accumulators' values as they are: each op's own combine (kernels.reduction._combine)."""

    def __init__(self, b, op, acc_dt, accs):
        self.b, self.op, self.dt, self.accs = b, op, acc_dt, accs

    def load(self, i):
        return self.accs.load(i)

    def store(self, i, v):
        self.accs.store(i, v)

    def leaf(self, v):
        """An element's value in this domain."""
        return v

    def combine(self, x, y):
        from .reduction import _combine
        return _combine(self.b, self.op, self.dt, x, y)

    def pair(self, u, v):
        """Two elements combined (the first level of a row group's tree)."""
        return self.combine(self.leaf(u), self.leaf(v))

    def value(self, k):
        """The accumulator's value to store."""
        return k


class _Keys(_Plain):
    """max/min of real floats as integer max/min of order-preserving keys: the float's bits with
    the bits below the sign flipped for negative numbers (then -0.0 < +0.0 and the signed integer
    order is the float order), a NaN the largest key (max) or the smallest (min), so it wins.
    LLVM lowers the float ``maximum``/``minimum`` (NaN propagation, signed zeros) to six vector
    instructions per combine on AVX-512 (mask moves, blends, an unordered compare); keys take one
    integer max per combine, and a pair of elements one unordered compare for both, which moved
    max over axis 0 from compute-bound to memory-bound on Zen 5. The accumulators hold the keys
    (as bits of the float type); :meth:`value` turns a key back into the float (a NaN key into a
    quiet NaN)."""

    @staticmethod
    def applies(op, expr_dt, acc_dt) -> bool:
        return op in ("max", "min") and acc_dt.kind == "f" and expr_dt == acc_dt

    def __init__(self, b, op, acc_dt, accs):
        super().__init__(b, op, acc_dt, accs)
        self.bits = 8 * acc_dt.itemsize
        self.ity = ir.IntType(self.bits)
        self.fty = mem_type(acc_dt)
        self.nan = ir.Constant(self.ity, (1 << (self.bits - 1)) - 1 if op == "max" else -(1 << (self.bits - 1)))

    def _flip(self, bits):
        """``bits ^ ((bits >> (n-1)) >>> 1)``: its own inverse (the sign bit is kept)."""
        b, top = self.b, ir.Constant(self.ity, self.bits - 1)
        return b.xor(bits, b.lshr(b.ashr(bits, top), ir.Constant(self.ity, 1)))

    def load(self, i):
        return self.b.bitcast(self.accs.load(i), self.ity)

    def store(self, i, k):
        self.accs.store(i, self.b.bitcast(k, self.fty))

    def leaf(self, v):
        b = self.b
        return b.select(b.fcmp_unordered("uno", v, v), self.nan, self._flip(b.bitcast(v, self.ity)))

    def combine(self, x, y):
        b = self.b
        return b.select(b.icmp_signed(">" if self.op == "max" else "<", x, y), x, y)

    def pair(self, u, v):
        b = self.b
        best = self.combine(self._flip(b.bitcast(u, self.ity)), self._flip(b.bitcast(v, self.ity)))
        return b.select(b.fcmp_unordered("uno", u, v), self.nan, best)

    def value(self, k):
        return self.b.bitcast(self._flip(k), self.fty)


class _Accumulators:
    """A stack array of ``tile`` accumulators (complex: interleaved pairs; bool: bytes)."""

    def __init__(self, b, acc_dt, tile):
        self.b, self.dt = b, acc_dt
        self.comp = 2 if acc_dt.kind == "c" else 1
        self.ty = mem_type(acc_dt)
        arr = b.alloca(ir.ArrayType(self.ty, tile * self.comp))
        self.ptr = b.bitcast(arr, self.ty.as_pointer())

    def load(self, i):
        b = self.b
        if self.comp == 2:
            i2 = b.mul(i, const(I64, 2))
            return (b.load(b.gep(self.ptr, [i2])), b.load(b.gep(self.ptr, [b.add(i2, const(I64, 1))])))
        v = b.load(b.gep(self.ptr, [i]))
        return b.icmp_unsigned("!=", v, const(v.type, 0)) if self.dt.kind == "b" else v

    def store(self, i, v):
        b = self.b
        if self.comp == 2:
            i2 = b.mul(i, const(I64, 2))
            b.store(v[0], b.gep(self.ptr, [i2]))
            b.store(v[1], b.gep(self.ptr, [b.add(i2, const(I64, 1))]))
        else:
            b.store(b.zext(v, self.ty) if self.dt.kind == "b" else v, b.gep(self.ptr, [i]))
