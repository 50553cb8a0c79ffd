"""Short rows sorted by a bitonic network in vector registers (``sort`` phase ``net<N>``, host
targets).

A row of at most ``N`` values (``N`` a power of two, :data:`NETWORK_SIZES`) of a dtype of at most
4 bytes becomes ``N`` unsigned 64-bit words ``key << 32 | position`` (the order-preserving key of
kernels.sort_radix, so NaNs go last and ``-0.0 == 0.0``; the padding words are all ones and sort
last). Every word is distinct, so the network (which is not stable by itself) gives the stable
order: equal keys sort by position. 8-byte keys (rows of at most :data:`WIDE_MAX`) keep the keys
and the positions in two vectors, ordered by key, then position. The network is straight-line code on ``<N x i64>`` values:
per stage a shuffle to each lane's partner, an unsigned min and max, and a blend by a constant
mask, which LLVM lowers to permutes and min/max over ``N / 8`` AVX-512 registers (or what the host
has). The row's values are kept on the stack and written back in the sorted order (the sort keeps
``-0.0`` and NaN payloads); with indices, the positions too.

Slots (those of the ``rows`` phase): ``row_len`` (at most ``N``), keys, scratch (unused), indices
(0 without), index scratch (unused). Work item ``r`` sorts row ``r`` in place.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I32, I64, const, for_range

__all__ = ["generate_network", "NETWORK_SIZES", "network_size"]

#: the network widths there are kernels for (rows up to the largest; longer rows: radix)
NETWORK_SIZES = (8, 16, 32, 64, 128, 256, 512)
#: the widest network for 8-byte keys (a key vector and a position vector: wider ones spill
#: registers; 1e7 float64 as rows of 200: 73 ms by a network of 256, 75 by radix; of 100: 50 and
#: 102, of 64: 19 and 130, NumPy 15-17 ms)
WIDE_MAX = 128


def network_size(dtype, row_len: int) -> int | None:
    """The network width for rows of ``row_len`` values of ``dtype`` (None: no network applies)."""
    if dtype.kind == "c":
        return None
    sizes = NETWORK_SIZES if dtype.itemsize <= 4 else tuple(n for n in NETWORK_SIZES if n <= WIDE_MAX)
    return next((n for n in sizes if row_len <= n), None)


def _bitonic(b, vecs: list, n: int) -> list:
    """``vecs`` sorted ascending by a bitonic network: one ``<n x i64>`` word vector (unsigned
    order), or a key vector and a position vector (ordered by key, then position)."""
    k = 2
    while k <= n:
        j = k // 2
        while j >= 1:
            swap = ir.Constant(ir.VectorType(I32, n), [i ^ j for i in range(n)])
            partners = [b.shuffle_vector(v, ir.Constant(v.type, ir.Undefined), swap) for v in vecs]
            before = b.icmp_unsigned("<", vecs[0], partners[0])
            if len(vecs) == 2:  # equal keys: the earlier position first
                ties = b.and_(b.icmp_unsigned("==", vecs[0], partners[0]), b.icmp_unsigned("<", vecs[1], partners[1]))
                before = b.or_(before, ties)
            # lane i takes the smaller of (itself, its partner) where takes_lo, the larger elsewhere
            takes_lo = ir.Constant(ir.VectorType(ir.IntType(1), n), [((i & j) == 0) == ((i & k) == 0) for i in range(n)])
            vecs = [b.select(takes_lo, b.select(before, v, p), b.select(before, p, v)) for v, p in zip(vecs, partners)]
            j //= 2
        k *= 2
    return vecs


def generate_network(spec, b, slot, start, stop) -> None:
    """Emit the body of phase ``net<N>`` (see the module; the builder is in the entry block)."""
    from .sort import Keys
    from .sort_radix import radix_key
    n = int(spec.phase[3:])
    K = Keys(b, dtype_named(spec.dtype))
    wide = K.dtype.itemsize > 4  # keys and positions in two vectors
    row_len, keys = slot(0), K.ptr(slot(1))
    idx = b.inttoptr(slot(3), I64.as_pointer())
    vty = ir.VectorType(I64, n)
    # (vector allocas: aligned for the vector loads and stores)
    words = [b.alloca(vty) for _ in range(2 if wide else 1)]
    wps = [b.bitcast(w, I64.as_pointer()) for w in words]
    vals = b.alloca(ir.ArrayType(keys.type.pointee, n))
    vp = b.bitcast(vals, keys.type)
    ones = ir.Constant(vty, [(1 << 64) - 1] * n)
    with for_range(b, start, stop, name="r") as r:
        base = b.mul(r, row_len)
        for w in words:  # padding: after every key (all ones) and every position
            b.store(ones, w)
        with for_range(b, const(I64, 0), row_len, name="ld") as i:
            v = K.load(keys, b.add(base, i))
            K.store(vp, i, v)
            key = b.zext(radix_key(b, K.dtype, v, spec.descending), I64) \
                if not wide else radix_key(b, K.dtype, v, spec.descending)
            if wide:
                b.store(key, b.gep(wps[0], [i]))
                b.store(i, b.gep(wps[1], [i]))
            else:
                b.store(b.or_(b.shl(key, const(I64, 32)), i), b.gep(wps[0], [i]))
        for w, v in zip(words, _bitonic(b, [b.load(w) for w in words], n)):
            b.store(v, w)
        with for_range(b, const(I64, 0), row_len, name="st") as i:
            # the position (the low half of a word, or its own vector): < n, as is every read
            at = b.and_(b.load(b.gep(wps[-1], [i])), const(I64, n - 1))
            K.store(keys, b.add(base, i), K.load(vp, at))
            if spec.with_idx:
                b.store(at, b.gep(idx, [b.add(base, i)]))
