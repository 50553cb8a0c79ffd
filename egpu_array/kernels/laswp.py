"""Generator of the row-interchange kernel (LAPACK's laswp): a sequence of row swaps applied in
place to a row-major matrix, for the row exchanges of the blocked LU (``_linalg_blocked``).

``void NAME(i64* args, i64 start, i64 stop)``; args: matrix pointer (element ``[0, 0]``), row
stride (in units, see below), row width (units), number of swaps ``s``, swaps pointer (int64,
``2 s``: swap ``q`` exchanges rows ``swaps[2q]`` and ``swaps[2q + 1]``), columns per work item.
Work item ``w`` applies every swap, in order, to the units ``[w * chunk, (w + 1) * chunk)`` of
the rows (clipped to the width): the items touch disjoint columns, so they run on any threads.

A unit is an unsigned integer of the element's size up to 8 bytes (elements of 16 bytes are two
units): the kernel moves bits, for every dtype. The caller checks that every row index is within
the matrix and that rows are contiguous (column stride 1).
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import I64, const, for_range, kernel_entry

__all__ = ["LaswpSpec", "generate", "unit_bytes"]


def unit_bytes(itemsize: int) -> int:
    """The size of the integer unit that moves elements of ``itemsize`` bytes."""
    return min(itemsize, 8)


@dataclass(frozen=True)
class LaswpSpec:
    """Row swaps over units of ``unit`` bytes (1, 2, 4 or 8)."""
    unit: int

    kind = "laswp"

    @property
    def name(self) -> str:
        return f"laswp_u{self.unit}"


def generate(spec: LaswpSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the row-swap kernel for ``spec`` (see the module docstring)."""
    ty = ir.IntType(8 * spec.unit)
    fn, b, slot, start, stop = kernel_entry(module, fname)
    data = b.inttoptr(slot(0), ty.as_pointer())
    ld, width, nswaps = slot(1), slot(2), slot(3)
    swaps = b.inttoptr(slot(4), I64.as_pointer())
    chunk = slot(5)
    zero, one = const(I64, 0), const(I64, 1)

    with for_range(b, start, stop, name="w") as w:
        lo = b.mul(w, chunk)
        hi_raw = b.add(lo, chunk)
        hi = b.select(b.icmp_signed("<", hi_raw, width), hi_raw, width)
        with for_range(b, zero, nswaps, name="q") as q:
            two_q = b.shl(q, one)
            i = b.load(b.gep(swaps, [two_q]))
            j = b.load(b.gep(swaps, [b.add(two_q, one)]))
            ri = b.gep(data, [b.mul(i, ld)])
            rj = b.gep(data, [b.mul(j, ld)])
            with for_range(b, lo, hi, name="c") as c:
                pi, pj = b.gep(ri, [c]), b.gep(rj, [c])
                x, y = b.load(pi), b.load(pj)
                b.store(y, pi)
                b.store(x, pj)
    b.ret_void()
    return fn
