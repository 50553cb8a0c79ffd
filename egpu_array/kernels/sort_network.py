"""Short rows of narrow keys sorted by a bitonic network in vector registers (``sort`` phase
``net<N>``, host targets).

A row of at most ``N`` values (``N`` a power of two, :data:`NETWORK_SIZES`) of a dtype of at most
4 bytes becomes ``N`` unsigned 64-bit words ``key << 32 | position`` (the order-preserving key of
kernels.sort_radix, so NaNs go last and ``-0.0 == 0.0``; the padding words are all ones and sort
last). Every word is distinct, so the network (which is not stable by itself) gives the stable
order: equal keys sort by position. The network is straight-line code on one ``<N x i64>`` value:
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


def network_size(dtype, row_len: int) -> int | None:
    """The network width for rows of ``row_len`` values of ``dtype`` (None: no network applies)."""
    if dtype.kind == "c" or dtype.itemsize > 4:
        return None
    return next((n for n in NETWORK_SIZES if row_len <= n), None)


def _bitonic(b, vec, n: int):
    """``vec`` (``<n x i64>``) sorted ascending (unsigned) by a bitonic network."""
    i32 = I32
    k = 2
    while k <= n:
        j = k // 2
        while j >= 1:
            partner = b.shuffle_vector(vec, ir.Constant(vec.type, ir.Undefined),
                                       ir.Constant(ir.VectorType(i32, n), [i ^ j for i in range(n)]))
            lo = b.select(b.icmp_unsigned("<", vec, partner), vec, partner)
            hi = b.select(b.icmp_unsigned("<", vec, partner), partner, vec)
            takes_lo = [((i & j) == 0) == ((i & k) == 0) for i in range(n)]
            vec = b.select(ir.Constant(ir.VectorType(ir.IntType(1), n), takes_lo), lo, hi)
            j //= 2
        k *= 2
    return vec


def generate_network(spec, b, slot, start, stop) -> None:
    """Emit the body of phase ``net<N>`` (see the module; the builder is in the entry block)."""
    from .sort import Keys
    from .sort_radix import radix_key
    n = int(spec.phase[3:])
    K = Keys(b, dtype_named(spec.dtype))
    row_len, keys = slot(0), K.ptr(slot(1))
    idx = b.inttoptr(slot(3), I64.as_pointer())
    vty = ir.VectorType(I64, n)
    words = b.alloca(vty)  # (a vector alloca: aligned for the vector load and store)
    wp = b.bitcast(words, I64.as_pointer())
    vals = b.alloca(ir.ArrayType(keys.type.pointee, n))
    vp = b.bitcast(vals, keys.type)
    with for_range(b, start, stop, name="r") as r:
        base = b.mul(r, row_len)
        b.store(ir.Constant(vty, [(1 << 64) - 1] * n), words)
        with for_range(b, const(I64, 0), row_len, name="ld") as i:
            v = K.load(keys, b.add(base, i))
            K.store(vp, i, v)
            key = b.zext(radix_key(b, K.dtype, v, spec.descending), I64)
            b.store(b.or_(b.shl(key, const(I64, 32)), i), b.gep(wp, [i]))
        b.store(_bitonic(b, b.load(words), n), words)
        with for_range(b, const(I64, 0), row_len, name="st") as i:
            at = b.and_(b.load(b.gep(wp, [i])), const(I64, n - 1))  # (the position: < n, as is every read)
            K.store(keys, b.add(base, i), K.load(vp, at))
            if spec.with_idx:
                b.store(at, b.gep(idx, [b.add(base, i)]))
