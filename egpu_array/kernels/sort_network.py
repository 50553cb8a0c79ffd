"""Short rows sorted by a bitonic network in vector registers (``sort`` phase ``net<N>``, host
targets).

A row of at most ``N`` values (``N`` a power of two, :data:`NETWORK_SIZES`) becomes ``N``
order-preserving keys (those of kernels.sort_radix: NaNs go last and ``-0.0 == 0.0``; padding
keys are all ones and sort last). ``sort`` (no indices) sorts the keys alone, in a vector of their
own width, and turns them back into values: exact for integers; for floats the only values two
keys cannot tell apart are zeros of either sign and NaNs, so a row holding any has its own zeros
and NaNs written back over those runs, in their order (the stable result, bit for bit). ``argsort``
of keys of at most 4 bytes sorts unsigned 64-bit words ``key << 32 | position``: every word is
distinct, so the network (which is not stable by itself) gives the stable order, equal keys by
position; of 8-byte keys (rows of at most :data:`WIDE_MAX`), a key vector and a position vector,
ordered by key, then position. The network is straight-line code on ``<N x iK>`` vectors: per
stage a shuffle to each lane's partner, an unsigned compare, and blends by it and by a constant
mask, which LLVM lowers to permutes and min/max over AVX-512 registers (or what the host has).
argsort keeps the row's values on the stack and writes them back in the sorted order, and the
positions.

Slots (those of the ``rows`` phase): ``row_len`` (at most ``N``), keys, scratch (unused), indices
(0 without), index scratch (unused). Work item ``r`` sorts row ``r`` in place.
"""
from __future__ import annotations

from llvmlite import ir

from .elementwise import dtype_named
from .irb import I32, I64, const, for_range

__all__ = ["generate_network", "NETWORK_SIZES", "WIDE_MAX", "network_size"]

#: the network widths there are kernels for (rows up to the largest; longer rows: radix). 1024:
#: 1e7 as rows of 1000, sort float32 9.5 ms (radix 21 ms, NumPy 15 ms), float64 15 ms (radix
#: 47 ms, NumPy 27 ms), argsort float32 15 ms (radix 31 ms); its first compile takes 2-3 s
NETWORK_SIZES = (8, 16, 32, 64, 128, 256, 512, 1024)
#: the widest network for argsort of 8-byte keys (a key vector and a position vector: wider ones
#: spill registers; 1e7 float64 as rows of 200: 73 ms by a network of 256, 75 by radix; of 100:
#: 50 and 102, of 64: 19 and 130)
WIDE_MAX = 128


def network_size(dtype, row_len: int, with_idx: bool) -> int | None:
    """The network width for rows of ``row_len`` values of ``dtype`` (None: no network applies)."""
    if dtype.kind == "c":
        return None
    widest = WIDE_MAX if with_idx and dtype.itemsize > 4 else NETWORK_SIZES[-1]
    return next((n for n in NETWORK_SIZES if row_len <= n <= widest), None)


def _bitonic(b, vecs: list, n: int) -> list:
    """``vecs`` sorted ascending by a bitonic network: one vector of ``n`` keys or words (unsigned
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
            takes_lo = ir.Constant(ir.VectorType(ir.IntType(1), n),
                                   [((i & j) == 0) == ((i & k) == 0) for i in range(n)])
            vecs = [b.select(takes_lo, b.select(before, v, p), b.select(before, p, v)) for v, p in zip(vecs, partners)]
            j //= 2
        k *= 2
    return vecs


def generate_network(spec, b, slot, start, stop) -> None:
    """Emit the body of phase ``net<N>`` (see the module; the builder is in the entry block)."""
    from .sort import Keys
    from .sort_radix import key_type, radix_key
    n = int(spec.phase[3:])
    K = Keys(b, dtype_named(spec.dtype))
    wide = K.dtype.itemsize > 4
    # (see the module) sort: the keys alone; argsort: words key << 32 | position, or pairs
    bare, pairs = not spec.with_idx, spec.with_idx and wide
    row_len, keys = slot(0), K.ptr(slot(1))
    idx = b.inttoptr(slot(3), I64.as_pointer())
    tys = [key_type(K.dtype) if bare else I64] + ([I64] if pairs else [])
    # (vector allocas: aligned for the vector loads and stores)
    words = [b.alloca(ir.VectorType(t, n)) for t in tys]
    wps = [b.bitcast(w, t.as_pointer()) for w, t in zip(words, tys)]
    vals = b.alloca(ir.ArrayType(keys.type.pointee, n))
    vp = b.bitcast(vals, keys.type)
    # float keys alone: whether the row holds a zero or a NaN (then they are put back) and two
    # slots for that
    fix = (b.alloca(ir.IntType(1)), b.alloca(I64), b.alloca(ir.IntType(1))) if bare and K.dtype.kind == "f" else None
    with for_range(b, start, stop, name="r") as r:
        base = b.mul(r, row_len)
        for w, t in zip(words, tys):  # padding: after every key (all ones) and every position
            b.store(ir.Constant(ir.VectorType(t, n), [(1 << t.width) - 1] * n), w)
        if fix is not None:
            b.store(ir.Constant(ir.IntType(1), 0), fix[0])
        with for_range(b, const(I64, 0), row_len, name="ld") as i:
            v = K.load(keys, b.add(base, i))
            key = radix_key(b, K.dtype, v, spec.descending)
            if not bare or fix is not None:
                K.store(vp, i, v)
            if fix is not None:  # (unordered or equal: a zero or a NaN)
                b.store(b.or_(b.load(fix[0]), b.fcmp_unordered("==", v, ir.Constant(v.type, 0.0))), fix[0])
            if pairs:
                b.store(i, b.gep(wps[1], [i]))
            b.store(key if bare or wide else b.or_(b.shl(b.zext(key, I64), const(I64, 32)), i), b.gep(wps[0], [i]))
        for w, v in zip(words, _bitonic(b, [b.load(w) for w in words], n)):
            b.store(v, w)
        with for_range(b, const(I64, 0), row_len, name="st") as i:
            if bare:
                K.store(keys, b.add(base, i), _value_of(b, K.dtype, b.load(b.gep(wps[0], [i])), spec.descending))
            else:
                # the position (the low half of a word, or its own vector): < n, as is every read
                at = b.and_(b.load(b.gep(wps[-1], [i])), const(I64, n - 1))
                K.store(keys, b.add(base, i), K.load(vp, at))
                b.store(at, b.gep(idx, [b.add(base, i)]))
        if fix is not None:
            with b.if_then(b.load(fix[0]), likely=False):
                _restore_zeros_and_nans(b, K, b.gep(keys, [base]), vp, row_len, fix[1:])


def _value_of(b, dtype, k, descending: bool):
    """The value whose :func:`radix_key` is ``k`` (floats: +0.0 for a zero, a NaN for NaN)."""
    ity = k.type
    sign = ir.Constant(ity, 1 << (ity.width - 1))
    k = b.not_(k) if descending else k
    if dtype.kind == "i":
        return b.xor(k, sign)
    if dtype.kind != "f":
        return k
    positive = b.icmp_unsigned(">=", k, sign)  # (keys of values with the sign bit clear)
    fty = {64: ir.DoubleType(), 32: ir.FloatType()}[ity.width]
    return b.bitcast(b.select(positive, b.xor(k, sign), b.not_(k)), fty)


def _restore_zeros_and_nans(b, K, out, vals, row_len, slots) -> None:
    """Put the row's own zeros (-0.0 or 0.0) and NaNs (their payloads) back, in their order,
    where the sorted keys left +0.0 and one NaN: zeros form one run of the output, NaNs another
    (last, or first when descending). ``slots``: an i64 and an i1 stack slot (from the entry
    block)."""
    zero = const(I64, 0)
    one = const(I64, 1)
    dz = ir.Constant(vals.type.pointee, 0.0)

    def each(test, first):
        """Write the row's values passing ``test`` to ``out[first(), ...]`` in their order."""
        at = first()
        with for_range(b, zero, row_len, name="fx") as i:
            v = K.load(vals, i)
            with b.if_then(test(v)):
                K.store(out, b.load(at), v)
                b.store(b.add(b.load(at), one), at)

    def run_start(test):
        """A stack slot holding the output position of the first value passing ``test``."""
        at, found = slots
        b.store(zero, at)
        b.store(ir.Constant(ir.IntType(1), 0), found)
        with for_range(b, zero, row_len, name="fz") as i:
            hit = b.and_(test(K.load(out, i)), b.not_(b.load(found)))
            with b.if_then(hit):
                b.store(i, at)
                b.store(ir.Constant(ir.IntType(1), 1), found)
        return at

    def is_zero(v):
        return b.fcmp_ordered("==", v, dz)

    def is_nan(v):
        return b.fcmp_unordered("uno", v, v)
    each(is_zero, lambda: run_start(is_zero))
    each(is_nan, lambda: run_start(is_nan))
