"""Generator of plain gather kernels: ``out[p, i, q] = src[p, idx[i], q]`` (``take``, ``x[idx]``).

A gather whose result is needed as such (not fused into a larger expression) is a loop of
independent random reads: its speed is how many reads are in flight at once. This kernel keeps
the loop body short (the index is loaded, wrapped, checked and clamped without a branch, the
error flag is a register ORed over the loop and stored once) and, on x86-64, prefetches the
element :data:`PREFETCH_AHEAD` positions ahead, so the misses of many elements overlap.

Elements are moved as integers of their size (1, 2, 4, 8 or 16 bytes: the copy moves bits).
Index values wrap once when negative (signed index dtypes); an index outside ``[0, extent)``
after that sets the error slot and reads element 0 instead (memory outside the source is never
touched); the caller raises IndexError.

Kernel ``void NAME(i64* args, i64 start, i64 stop)`` over work items ``r`` in ``[0, P * N)``
(``p = r // N``, ``i = r % N``; in column order, :attr:`GatherSpec.by_column`, ``i = r // P``,
``p = r % P``), each copying ``Q`` elements; ``args`` (:data:`SLOTS`): ``N, Q, extent, src,
src p-stride, src gathered stride, src q-stride, idx, idx stride, out, out p-stride, out
i-stride, out q-stride, error, P``. Pointers and strides of ``src`` and ``out`` are
in bytes, the index stride in index elements.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I1, I64, const, extern, for_range, kernel_entry, range_loop, while_loop

__all__ = ["GatherSpec", "SLOTS", "PREFETCH_AHEAD", "generate"]

#: argument slot names, in order (``p``: the number of rows P, read by the column-order kernel)
SLOTS = ("n", "q", "extent", "src", "src_p", "src_g", "src_q", "idx", "idx_st", "out", "out_p", "out_i",
         "out_q", "error", "p")

#: how many positions ahead of the current one the source element is prefetched (x86-64)
PREFETCH_AHEAD = 32
#: index dtype -> (bits, signed)
_INDEX = {"int8": (8, True), "int16": (16, True), "int32": (32, True), "int64": (64, True),
          "uint8": (8, False), "uint16": (16, False), "uint32": (32, False), "uint64": (64, False)}


@dataclass(frozen=True)
class GatherSpec:
    """Gathers of ``itemsize``-byte elements at indices of dtype ``idx_dtype``. ``by_column``:
    work items in column order (``i = r // P``, ``p = r % P``) for one-element rows (Q = 1) and
    few indices (``x[:, cols]``): each piece is a strided walk down one gathered column, its
    index read once, where in row order every row of a few elements paid a division and a loop
    of its own."""
    itemsize: int
    idx_dtype: str
    by_column: bool = False

    kind = "gather"

    @property
    def name(self) -> str:
        return f"gather_{self.itemsize}B_by_{self.idx_dtype}{'_columns' if self.by_column else ''}"


def generate(spec: GatherSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the gather kernel for ``spec`` to ``module`` under the name ``fname``."""
    fn, b, slot, start, stop = kernel_entry(module, fname)
    a = {name: slot(k) for k, name in enumerate(SLOTS)}
    bits, signed = _INDEX[spec.idx_dtype]
    ity = ir.IntType(bits)
    ety = ir.IntType(8 * spec.itemsize)
    eptr = ety.as_pointer()
    idx = b.inttoptr(a["idx"], ity.as_pointer())
    extent, n = a["extent"], a["n"]
    prefetch = module.triple.startswith("x86_64")

    def position(i):
        """The checked index at position i: (clamped value, out of range)."""
        k = b.load(b.gep(idx, [b.mul(i, a["idx_st"])]))
        k = b.sext(k, I64) if signed and bits < 64 else (b.zext(k, I64) if bits < 64 else k)
        if signed:
            k = b.add(k, b.and_(b.ashr(k, const(I64, 63)), extent))  # one wrap of a negative index
        bad = b.icmp_unsigned(">=", k, extent)
        return b.select(bad, const(I64, 0), k), bad

    def element(base, k):
        return b.inttoptr(b.add(base, b.mul(k, a["src_g"])), eptr)

    def column(state):  # (by_column) positions r = i * P + p: rows [p0, p1) of gathered column i
        r, err = state
        rows = a["p"]
        i, p0 = b.sdiv(r, rows), b.srem(r, rows)
        p1 = b.add(p0, b.sub(stop, r))
        p1 = b.select(b.icmp_signed("<", p1, rows), p1, rows)
        k, bad = position(i)
        src = b.add(a["src"], b.mul(k, a["src_g"]))
        dst = b.add(a["out"], b.mul(i, a["out_i"]))
        with for_range(b, p0, p1, name="cp") as p:
            v = b.load(b.inttoptr(b.add(src, b.mul(p, a["src_p"])), eptr))
            b.store(v, b.inttoptr(b.add(dst, b.mul(p, a["out_p"])), eptr))
        return [b.add(r, b.sub(p1, p0)), b.or_(err, bad)]

    # positions [start, stop); the error flag is ORed over every row (a register), stored once
    def piece(state):
        r, err = state
        p, i0 = b.sdiv(r, n), b.srem(r, n)
        i1 = b.add(i0, b.sub(stop, r))
        i1 = b.select(b.icmp_signed("<", i1, n), i1, n)
        sbase = b.add(a["src"], b.mul(p, a["src_p"]))
        obase = b.add(a["out"], b.mul(p, a["out_p"]))
        single = b.icmp_signed("==", a["q"], const(I64, 1))
        with b.if_else(single) as (one, rows):
            with one:  # one element per position: the hot loop
                e1 = _singles(b, i0, i1, position, element, sbase, obase, a, spec, prefetch)
                one_end = b.block
            with rows:  # Q elements per position
                def row(i):
                    k, bad = position(i)
                    src = b.add(sbase, b.mul(k, a["src_g"]))
                    dst = b.add(obase, b.mul(i, a["out_i"]))
                    _copy_run(b, src, dst, a["q"], a["src_q"], a["out_q"], ety, spec.itemsize)
                    return bad
                e2 = _loop(b, i0, i1, row)
                rows_end = b.block
        flag = b.phi(I1)
        flag.add_incoming(e1, one_end)
        flag.add_incoming(e2, rows_end)
        return [b.add(r, b.sub(i1, i0)), b.or_(err, flag)]

    _, err = while_loop(b, [start, const(I1, 0)], lambda st: b.icmp_signed("<", st[0], stop),
                        column if spec.by_column else piece, "row")
    with b.if_then(err, likely=False):
        b.store(const(I64, 1), b.gep(fn.args[0], [const(I64, SLOTS.index("error"))]))
    b.ret_void()
    return fn


def _singles(b, i0, i1, position, element, sbase, obase, a, spec, prefetch) -> ir.Value:
    """Positions [i0, i1) of one-element rows; returns the OR of their error bits. When the
    indices, the gathered axis and the output are all unit-stride (``take`` of a 1-D array), the
    loop prefetches the element :data:`PREFETCH_AHEAD` positions ahead (x86-64) up to that many
    positions before the end, then finishes without; other strides take a plain loop."""
    size = const(I64, spec.itemsize)
    eptr = ir.IntType(8 * spec.itemsize).as_pointer()
    unit = b.and_(b.icmp_signed("==", a["idx_st"], const(I64, 1)),
                  b.and_(b.icmp_signed("==", a["src_g"], size), b.icmp_signed("==", a["out_i"], size)))

    def copy(i):
        k, bad = position(i)
        b.store(b.load(element(sbase, k)), b.inttoptr(b.add(obase, b.mul(i, a["out_i"])), eptr))
        return bad

    def ahead(i):
        kp, _ = position(b.add(i, const(I64, PREFETCH_AHEAD)))
        i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        extern(b, "llvm.prefetch.p0", ir.VoidType(), [i8p, i32, i32, i32], b.bitcast(element(sbase, kp), i8p),
               const(i32, 0), const(i32, 3), const(i32, 1))
        return copy(i)

    if not prefetch:
        return _loop(b, i0, i1, copy)
    with b.if_else(unit) as (fast, plain):
        with fast:
            mid = b.sub(i1, const(I64, PREFETCH_AHEAD))
            mid = b.select(b.icmp_signed(">", mid, i0), mid, i0)
            e_a = b.or_(_loop(b, i0, mid, ahead), _loop(b, mid, i1, copy))
            fast_end = b.block
        with plain:
            e_b = _loop(b, i0, i1, copy)
            plain_end = b.block
    bad = b.phi(I1)
    bad.add_incoming(e_a, fast_end)
    bad.add_incoming(e_b, plain_end)
    return bad


def _loop(b, lo, hi, body) -> ir.Value:
    """``for i in [lo, hi)``: ``body(i)`` returns an i1 error bit; returns their OR."""
    (bad,) = range_loop(b, lo, hi, [const(I1, 0)], lambda i, s: [b.or_(s[0], body(i))], "g")
    return bad


def _copy_run(b, src, dst, q, sq, dq, ety, size) -> None:
    """Copy ``q`` elements from byte address ``src`` (byte stride ``sq``) to ``dst`` (``dq``); a
    unit-stride loop (vectorized) when both strides are the element size."""
    eptr = ety.as_pointer()
    unit = b.and_(b.icmp_signed("==", sq, const(I64, size)), b.icmp_signed("==", dq, const(I64, size)))
    with b.if_else(unit) as (yes, no):
        with yes:
            s, d = b.inttoptr(src, eptr), b.inttoptr(dst, eptr)
            with for_range(b, const(I64, 0), q, name="qc") as j:
                b.store(b.load(b.gep(s, [j])), b.gep(d, [j]))
        with no:
            with for_range(b, const(I64, 0), q, name="qs") as j:
                v = b.load(b.inttoptr(b.add(src, b.mul(j, sq)), eptr))
                b.store(v, b.inttoptr(b.add(dst, b.mul(j, dq)), eptr))
