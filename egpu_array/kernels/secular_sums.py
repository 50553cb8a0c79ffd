"""Generator of the secular-sums kernel of the tridiagonal divide-and-conquer eigensolver
(``_tridiagonal_secular``): one pass over the poles per root, no temporaries.

For each work item ``t`` (an active root): ``r = act[t]``, the poles relative to the root's origin
``dd[r, 0:K]`` (float64, row-major), the root's offset ``tau[t]`` and the weights ``z2[p, 0:K]`` of
its problem ``p = prob[r]``; with ``delta_j = dd[r, j] - tau[t]`` it writes to ``out[t, 0:4]``:
``sum z2_j/delta_j``, ``sum z2_j/delta_j^2`` and the same two sums over the poles with
``delta_j < 0`` (those left of the root).

``void NAME(i64* args, i64 start, i64 stop)``; args: dd pointer, K, act pointer (int64), tau
pointer, z2 pointer, prob pointer (int64), out pointer (float64, 4 per item). The caller
guarantees the buffers' sizes and that no ``delta_j`` is zero where ``z2_j`` is nonzero.
"""
from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from .irb import F64, I64, const, kernel_entry, while_loop

__all__ = ["SecularSumsSpec", "generate"]

#: the pole sums may be reassociated (LLVM vectorizes the pole loop: several poles per divide);
#: each term is still ``z2_j / delta_j`` rounded as written
_SUM = ("reassoc",)


@dataclass(frozen=True)
class SecularSumsSpec:
    """The secular-sums kernel (float64 only: the eigensolver's host work is float64)."""

    kind = "secular_sums"

    @property
    def name(self) -> str:
        return "secular_sums_float64"


def generate(spec: SecularSumsSpec, module: ir.Module, fname: str) -> ir.Function:
    """Emit the kernel (see the module docstring)."""
    fn, b, slot, start, stop = kernel_entry(module, fname)
    ptr = lambda k, ty: b.inttoptr(slot(k), ty.as_pointer())  # noqa: E731
    dd, k = ptr(0, F64), slot(1)
    act, tau, z2, prob, out = ptr(2, I64), ptr(3, F64), ptr(4, F64), ptr(5, I64), ptr(6, F64)
    at = lambda p, i: b.gep(p, [i])  # noqa: E731
    zero, one, fzero, fone = const(I64, 0), const(I64, 1), const(F64, 0.0), const(F64, 1.0)

    def item(s):
        t = s[0]
        r = b.load(at(act, t))
        row = at(dd, b.mul(r, k))
        zrow = at(z2, b.mul(b.load(at(prob, r)), k))
        ta = b.load(at(tau, t))

        def pole(st):
            j, tot, dtot, psi, dpsi = st
            delta = b.fsub(b.load(at(row, j)), ta)
            inv = b.fdiv(fone, delta)
            tz = b.fmul(b.load(at(zrow, j)), inv)
            t2 = b.fmul(tz, inv)
            left = b.fcmp_ordered("<", delta, fzero)
            return [b.add(j, one), b.fadd(tot, tz, flags=_SUM), b.fadd(dtot, t2, flags=_SUM),
                    b.fadd(psi, b.select(left, tz, fzero), flags=_SUM),
                    b.fadd(dpsi, b.select(left, t2, fzero), flags=_SUM)]

        sums = while_loop(b, [zero, fzero, fzero, fzero, fzero], lambda st: b.icmp_signed("<", st[0], k), pole, "pole")
        base = at(out, b.mul(t, const(I64, 4)))
        for c, v in enumerate(sums[1:]):
            b.store(v, at(base, const(I64, c)))
        return [b.add(t, one)]

    while_loop(b, [start], lambda s: b.icmp_signed("<", s[0], stop), item, "item")
    b.ret_void()
    return fn
