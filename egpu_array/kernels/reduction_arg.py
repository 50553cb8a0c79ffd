"""The row loop of argmax/argmin kernels (kernels.reduction), and the merge of (value, index) pairs.

The host rule walks a row keeping ``(best, index)`` and replaces them when a value is strictly
better or the first NaN. As one chain of selects that is a dependency per element, which LLVM's
loop vectorizer does not vectorize (~5 cycles per element: argmax of 1e7 float32 ran at a third of
NumPy's speed; eight interleaved chains left to the SLP vectorizer stayed mostly scalar).
:func:`arg_row` takes two passes that both vectorize instead: the best value of the row (a plain
max/min reduction, and whether a NaN occurs), then the first position holding it (the first NaN
where one occurs), found block by block as a min-reduction of positions, stopping at the first
block that holds it. The answer is the host rule's: the first occurrence of the best value (for
float zeros, the first zero of either sign, as NumPy's). Rows with strided elements keep the one
chain: there the reads, not the selects, take the time, and a second pass would read the
column's cache lines again (argmax over axis 0 of a (2500, 4000) matrix: 24 -> 30 ms; that case
now runs in column order, kernels.reduction_outer_arg).
"""
from __future__ import annotations

from llvmlite import ir

from .irb import I1, I64, const, while_loop
from .reduction_rows import row_loop

__all__ = ["FIND_BLOCK", "arg_row", "arg_merge"]

#: elements searched for the best value's first position at a time (the pass stops after the
#: block that holds it)
FIND_BLOCK = 256


def arg_merge(b, op: str, dt, a: list, o: list) -> list:
    """The better of two ``[value, index]`` pairs by the total order (NaN first, then the better
    value, then the smaller index); an index below 0 marks an empty pair. Associative and
    commutative, so chunks merge in any order to the host rule's answer."""
    from .reduction import _arg_better
    (va, ia), (vo, io) = a, o
    if dt.kind == "f":
        both_nan = b.and_(b.fcmp_unordered("uno", vo, vo), b.fcmp_unordered("uno", va, va))
        tie = b.or_(b.fcmp_ordered("==", vo, va), both_nan)
    else:
        tie = b.icmp_unsigned("==", vo, va)
    wins = b.or_(_arg_better(b, op, dt, va, vo), b.and_(tie, b.icmp_signed("<", io, ia)))
    take = b.or_(b.icmp_signed("<", ia, const(I64, 0)), b.and_(b.icmp_signed(">=", io, const(I64, 0)), wins))
    return [b.select(take, vo, va), b.select(take, io, ia)]


def arg_row(b, op: str, dt, lo, hi, acc: list, element, flat) -> list:
    """``acc`` (``[best, flat index]`` of elements before this row's) updated with the elements
    ``element(j)``, ``lo <= j < hi``, by the host rule; ``flat(j)`` is element j's flat index."""
    from .reduction import _arg_better, _const_of, identity_of
    floats = dt.kind == "f"
    fast = ("nnan", "nsz")  # (the best may be poison where a NaN occurs: then it is not used)

    def best_step(j, state):
        v = element(j)
        if floats:
            better = b.fcmp_ordered(">" if op == "argmax" else "<", v, state[0], flags=fast)
            return [b.select(better, v, state[0], flags=fast), b.or_(state[1], b.fcmp_unordered("uno", v, v))]
        return [b.select(_arg_better(b, op, dt, state[0], v), v, state[0])]

    init = [_const_of(dt, identity_of(op, dt))] + ([ir.Constant(I1, 0)] if floats else [])
    found = row_loop(b, lo, hi, init, best_step, None, "am")
    if floats:
        nan = found[1]
        best = b.select(nan, const(found[0].type, float("nan")), found[0])

        def holds(v):
            return b.select(nan, b.fcmp_unordered("uno", v, v), b.fcmp_ordered("==", v, found[0]))
    else:
        best = found[0]

        def holds(v):
            return b.icmp_unsigned("==", v, best)

    i8 = ir.IntType(8)

    def block(state):  # whether [jb, jb + FIND_BLOCK) holds it (a vectorized or-reduction)
        jb = state[0]
        je = b.add(jb, const(I64, FIND_BLOCK))
        je = b.select(b.icmp_signed("<", je, hi), je, hi)
        (seen,) = row_loop(b, jb, je, [const(i8, 0)], lambda j, p: [b.or_(p[0], b.zext(holds(element(j)), i8))],
                           None, "af")
        hit = b.icmp_unsigned("!=", seen, const(i8, 0))
        return [b.select(hit, jb, je), hit]

    jb, hit = while_loop(b, [lo, ir.Constant(I1, 0)],
                         lambda s: b.and_(b.icmp_signed("<", s[0], hi), b.not_(s[1])), block, "afb")
    # the first position in that block (one is there when hit; nothing is read in an empty row)
    before = b.block
    with b.if_then(hit):
        (found_at,) = while_loop(b, [jb], lambda s: b.not_(holds(element(s[0]))),
                                 lambda s: [b.add(s[0], const(I64, 1))], "afj")
        scanned = b.block
    first = b.phi(I64)
    first.add_incoming(hi, before)
    first.add_incoming(found_at, scanned)
    # (acc's elements come before the row's: a tie keeps acc; an empty row finds nothing)
    take = b.and_(b.icmp_signed("<", first, hi), _arg_better(b, op, dt, acc[0], best))
    return [b.select(take, best, acc[0]), b.select(take, flat(first), acc[1])]

