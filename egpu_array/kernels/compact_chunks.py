"""Parallel compaction (nonzero, unique) over chunks of the input: count, then fill.

Work item ``c`` handles elements ``[c * chunk, min((c + 1) * chunk, n))``. Args:

- nonzero ``count``: ``n``, ``chunk``, input, counts (int64 per chunk);
- nonzero ``fill``: ``n``, ``count`` (the total), input, output (``ndim x count`` int64,
  dimension-major, then SPARE_STRIDE slots per chunk: its spare slot on a cache line of its own),
  ``chunk``, counts, then the ``ndim`` extents.
  Chunk ``c`` writes from the sum of the counts of the chunks before it, so every chunk writes its
  own slots; 1-D inputs are compacted from a bit mask per block of MASK_BLOCK elements (one store
  per hit), the chunk's last elements without branches (a miss stores to the chunk's spare slot);
- unique ``count``: ``n``, ``chunk``, sorted values, counts (run starts per chunk: position 0 and
  every value that differs from the one before it, so each NaN starts a run, ``-0.0 == 0.0``);
- unique ``fill``: ``n``, ``count``, sorted values, positions (int64, the stable sort's original
  indices), values, indices, starts (int64 per result: where its run begins), inverse (0 where not
  requested), ``chunk``, counts. Only a run's first element writes the run's slot; each element
  writes its own inverse entry;
- unique ``runs``: ``n``, ``count``, starts, occurrence counts; work item ``k`` stores
  ``starts[k + 1] - starts[k]`` (``n - starts[k]`` for the last run).

Writes are guarded by ``count`` (a total read back before the fill), never past the outputs.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I64, const, for_range, intrinsic, mem_type, range_loop, while_loop
from .sort import Keys, _if
from .spec import CompactSpec

__all__ = ["generate_compact_chunks", "chunk_range", "SPARE_STRIDE"]

#: int64 slots per chunk after a 1-D nonzero's results (its spare slot, then padding)
SPARE_STRIDE = 8
#: elements per mask of the 1-D nonzero fill (one int64 of hit bits)
MASK_BLOCK = 64


def _min(b, x, y):
    return b.select(b.icmp_signed("<", x, y), x, y)


def chunk_range(b, c, chunk, n):
    """Elements ``[c * chunk, min((c + 1) * chunk, n))`` of work item ``c``."""
    lo = b.mul(c, chunk)
    return lo, _min(b, b.add(lo, chunk), n)


def _nonzero_of(b, K, v):
    """``v != 0`` (NaN counts as nonzero; complex: either part)."""
    kind = K.dtype.kind
    if kind == "c":
        z = ir.Constant(v[0].type, 0.0)
        return b.or_(b.fcmp_unordered("!=", v[0], z), b.fcmp_unordered("!=", v[1], z))
    if kind == "f":
        return b.fcmp_unordered("!=", v, ir.Constant(v.type, 0.0))
    return b.icmp_unsigned("!=", v, ir.Constant(v.type, 0))


def _run_start(b, K, x, i):
    """Whether sorted element ``i`` starts a run (i == 0 or differs from element i - 1)."""
    zero, one = const(I64, 0), const(I64, 1)
    prev = K.load(x, b.select(b.icmp_signed(">", i, zero), b.sub(i, one), zero))
    return b.or_(b.icmp_signed("==", i, zero), b.not_(K.eq(K.load(x, i), prev)))


def generate_compact_chunks(spec: CompactSpec, b, slot, start, stop) -> None:
    """Emit the body of the parallel compaction phase ``spec.phase`` (builder in the entry block)."""
    K = Keys(b, dtype_named(spec.dtype))
    zero, one = const(I64, 0), const(I64, 1)
    n = slot(0)
    ptr = lambda k: b.inttoptr(slot(k), I64.as_pointer())  # noqa: E731
    if spec.phase == "runs":
        count, starts, counts = slot(1), ptr(2), ptr(3)
        with for_range(b, start, stop, name="k") as k:
            nxt = b.add(k, one)
            hi = b.select(b.icmp_signed("<", nxt, count), b.load(b.gep(starts, [_min(b, nxt, b.sub(count, one))])), n)
            b.store(b.sub(hi, b.load(b.gep(starts, [k]))), b.gep(counts, [k]))
        return
    x = K.ptr(slot(2))
    is_nz = spec.op == "nonzero"
    hit = (lambda i: _nonzero_of(b, K, K.load(x, i))) if is_nz else (lambda i: _run_start(b, K, x, i))
    if spec.phase == "count":
        chunk, counts = slot(1), ptr(3)
        with for_range(b, start, stop, name="c") as c:
            lo, hi = chunk_range(b, c, chunk, n)

            def body(s):
                i, acc = s
                return [b.add(i, one), b.add(acc, b.zext(hit(i), I64))]
            _, total = while_loop(b, [lo, zero], lambda s: b.icmp_signed("<", s[0], hi), body, "cnt")
            b.store(total, b.gep(counts, [c]))
        return
    count = slot(1)
    chunk, counts = (slot(4), ptr(5)) if is_nz else (slot(8), ptr(9))
    with for_range(b, start, stop, name="c") as c:
        lo, hi = chunk_range(b, c, chunk, n)

        def before(s):  # results of the chunks before this one
            j, acc = s
            return [b.add(j, one), b.add(acc, b.load(b.gep(counts, [j])))]
        _, k0 = while_loop(b, [zero, zero], lambda s: b.icmp_signed("<", s[0], c), before, "off")
        if is_nz:
            _fill_nonzero(spec, b, slot, ptr(3), count, hit, lo, hi, k0, c)
        else:
            _fill_unique(spec, b, K, x, ptr, count, hit, lo, hi, k0)


def _fill_nonzero(spec, b, slot, out, count, hit, lo, hi, k0, c):
    one = const(I64, 1)
    shape = [slot(6 + d) for d in range(spec.ndim)]
    if spec.ndim == 1:  # branch-free: a miss stores to this chunk's spare slot
        # (one cache line per chunk: threads storing misses to adjacent slots of one line kept
        # moving it between their cores, 10 ms of a 1e7-element fill)
        spare = b.add(count, b.mul(c, const(I64, SPARE_STRIDE)))
        if dtype_named(spec.dtype).kind != "c":
            lo, k0 = _fill_by_masks(b, dtype_named(spec.dtype), slot, out, count, spare, lo, hi, k0)

        def flat(s):
            i, k = s
            h = hit(i)
            # (the guard decides the store's slot only: k's own chain is one add per element,
            # 4x faster than with the compare in it)
            b.store(i, b.gep(out, [b.select(b.and_(h, b.icmp_signed("<", k, count)), k, spare)]))
            return [b.add(i, one), b.add(k, b.zext(h, I64))]
        while_loop(b, [lo, k0], lambda s: b.icmp_signed("<", s[0], hi), flat, "nz1")
        return

    def body(s):
        i, k = s
        h = hit(i)
        with _if(b, b.and_(h, b.icmp_signed("<", k, count))):
            rem = i
            for d in range(spec.ndim - 1, -1, -1):
                c = b.srem(rem, shape[d]) if d else rem
                rem = b.sdiv(rem, shape[d])
                b.store(c, b.gep(out, [b.add(b.mul(const(I64, d), count), k)]))
        return [b.add(i, one), b.add(k, b.zext(h, I64))]
    while_loop(b, [lo, k0], lambda s: b.icmp_signed("<", s[0], hi), body, "nz")


def _fill_by_masks(b, dtype, slot, out, count, spare, lo, hi, k0):
    """1-D nonzero in blocks of MASK_BLOCK elements: a vector compare of the block, its mask as an
    int64 (a movemask), then one store per set bit (count trailing zeros, clear the lowest bit;
    past ``count`` to the chunk's ``spare`` slot). Costs per hit, not per element: the fill of a
    1e7-element mask with 16% set 5 -> 1.8 ms on 2 threads. Returns ``(first element left, its
    result slot)`` for the element loop to finish the chunk."""
    x = b.inttoptr(slot(2), mem_type(dtype).as_pointer())
    vec = ir.VectorType(mem_type(dtype), MASK_BLOCK)
    blocks = b.sdiv(b.sub(hi, lo), const(I64, MASK_BLOCK))

    def block(g, state):
        (k,) = state
        first = b.add(lo, b.mul(g, const(I64, MASK_BLOCK)))
        v = b.load(b.bitcast(b.gep(x, [first]), vec.as_pointer()), align=dtype.itemsize)
        zero = ir.Constant(vec, [0.0 if dtype.kind == "f" else 0] * MASK_BLOCK)
        hits = b.fcmp_unordered("!=", v, zero) if dtype.kind == "f" else b.icmp_unsigned("!=", v, zero)
        mask = b.bitcast(hits, I64)

        def bit(st):
            m, kk = st
            t = intrinsic(b, "llvm.cttz", I64, m, ir.Constant(ir.IntType(1), 1))
            b.store(b.add(first, t), b.gep(out, [b.select(b.icmp_signed("<", kk, count), kk, spare)]))
            return [b.and_(m, b.sub(m, const(I64, 1))), b.add(kk, const(I64, 1))]
        _, k = while_loop(b, [mask, k], lambda st: b.icmp_unsigned("!=", st[0], const(I64, 0)), bit, "bit")
        return [k]

    (k,) = range_loop(b, const(I64, 0), blocks, [k0], block, "blk")
    return b.add(lo, b.mul(blocks, const(I64, MASK_BLOCK))), k


def _fill_unique(spec, b, K, x, ptr, count, hit, lo, hi, k0):
    one = const(I64, 1)
    want = spec.outputs
    pos = ptr(3)
    vals = K.ptr(b.ptrtoint(ptr(4), I64))
    indices, starts, inverse = ptr(5), ptr(6), ptr(7)

    def body(s):
        i, k = s
        new = hit(i)
        k2 = b.add(k, b.zext(new, I64))
        slot_k = b.sub(k2, one)
        ok = b.and_(b.icmp_signed(">=", slot_k, const(I64, 0)), b.icmp_signed("<", slot_k, count))
        with _if(b, ok):
            p = b.load(b.gep(pos, [i])) if ("indices" in want or "inverse" in want) else None
            with _if(b, new):
                if "values" in want:
                    K.store(vals, slot_k, K.load(x, i))
                if "indices" in want:
                    b.store(p, b.gep(indices, [slot_k]))
                if "counts" in want:
                    b.store(i, b.gep(starts, [slot_k]))
            if "inverse" in want:
                n = b.load(b.gep(b.function.args[0], [const(I64, 0)]))
                with _if(b, b.and_(b.icmp_signed(">=", p, const(I64, 0)), b.icmp_signed("<", p, n))):
                    b.store(slot_k, b.gep(inverse, [p]))
        return [b.add(i, one), k2]
    while_loop(b, [lo, k0], lambda s: b.icmp_signed("<", s[0], hi), body, "uq")

