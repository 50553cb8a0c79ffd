"""The row loop of argmax/argmin kernels (kernels.reduction), the merge of (value, index) pairs, and
the phase 2 of chunked ones (each chunk's best recomputed at its index, merged in chunk order).

The host rule walks a row keeping ``(best, index)`` and replaces them when a value is strictly
better or the first NaN. As one chain of selects that is a dependency per element, which LLVM's
loop vectorizer does not vectorize (~5 cycles per element: argmax of 1e7 float32 ran at a third of
NumPy's speed; eight interleaved chains left to the SLP vectorizer stayed mostly scalar).
:func:`arg_row` reads the row once in blocks of :data:`FIND_BLOCK` elements instead: each block's
best value (a plain max/min reduction, which vectorizes, and a count of NaNs) is compared with the
running best, which moves to the block when it holds a strictly better value or the first NaN;
then the first position holding the best (the first NaN where one occurs) is found in that one
block, in cache (a vectorized min of positions). Until 2026-11 the best value's position was
searched from the row's start in a second pass, which read half the row again on average (argmax
of 1e7 float32: 2.2 -> 1.8 ms, max alone 1.6 ms). The answer is the host rule's: the first
occurrence of the best value (for float zeros, the first zero of either sign, as NumPy's).
Rows with strided elements keep the one chain: there the reads, not the selects, take the time
(argmax over axis 0 of a C-contiguous matrix, the common case, runs in column order instead:
kernels.reduction_outer_arg).
"""
from __future__ import annotations

from llvmlite import ir

from .irb import I1, I64, const, while_loop
from .reduction_rows import row_loop

__all__ = ["FIND_BLOCK", "arg_row", "arg_merge", "arg_value_at", "arg_chunks", "arg_finalize_entry",
           "generate_arg_finalize"]

#: elements per block of the row pass (the best value's position is searched in one block)
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
    fast = ("nnan", "nsz")  # (a block's best may be poison where a NaN occurs: then it is not used)
    false = ir.Constant(I1, 0)

    # whether a NaN occurs: a count of them in integers of the value's width (the compare's lane
    # masks subtracted: one instruction per vector; an or of i1 flags was packed to bytes per
    # vector, argmax of 1e7 float32 2.0 -> 1.8 ms; a max of the masks needs AVX-512 for int64)
    flag = ir.IntType(8 * dt.itemsize) if floats else None

    def best_step(j, state):
        v = element(j)
        if floats:
            better = b.fcmp_ordered(">" if op == "argmax" else "<", v, state[0], flags=fast)
            return [b.select(better, v, state[0], flags=fast),
                    b.add(state[1], b.zext(b.fcmp_unordered("uno", v, v), flag))]
        return [b.select(_arg_better(b, op, dt, state[0], v), v, state[0])]

    init = [_const_of(dt, identity_of(op, dt))] + ([const(flag, 0)] if floats else [])

    def block(state):
        """The block's best (one vectorized pass); the running best moves to this block when it
        holds the first NaN or a strictly better value (a block of the identity only, e.g. all
        -inf, moves nothing: then ``acc``'s index stands, as the host rule's does)."""
        jb, best, nan, at = state
        je = b.add(jb, const(I64, FIND_BLOCK))
        je = b.select(b.icmp_signed("<", je, hi), je, hi)
        found = row_loop(b, jb, je, init, best_step, None, "am")
        if floats:
            found_nan = b.icmp_unsigned("!=", found[1], const(flag, 0))
            # (select, not and: found[0] may be poison in a block with a NaN)
            take = b.select(found_nan, b.not_(nan), b.select(nan, false, _arg_better(b, op, dt, best, found[0])))
            nan = b.or_(nan, found_nan)
        else:
            take = _arg_better(b, op, dt, best, found[0])
        return [je, b.select(take, found[0], best), nan, b.select(take, jb, at)]

    _, best, nan, at = while_loop(b, [lo, init[0], false, const(I64, -1)],
                                  lambda s: b.icmp_signed("<", s[0], hi), block, "afb")
    if floats:
        best = b.select(nan, const(best.type, float("nan")), best)

        def holds(v):
            return b.select(nan, b.fcmp_unordered("uno", v, v), b.fcmp_ordered("==", v, best))
    else:
        def holds(v):
            return b.icmp_unsigned("==", v, best)

    # the first position in the best's block holding it (a vectorized min of positions; an
    # empty row has no block and finds nothing)
    jb = b.select(b.icmp_signed("<", at, const(I64, 0)), hi, at)
    je = b.add(jb, const(I64, FIND_BLOCK))
    je = b.select(b.icmp_signed("<", je, hi), je, hi)

    def position(j, state):
        p = b.select(holds(element(j)), j, hi)
        return [b.select(b.icmp_signed("<", p, state[0]), p, state[0])]
    (first,) = row_loop(b, jb, je, [hi], position, None, "afj")
    # (acc's elements come before the row's: a tie keeps acc)
    take = b.and_(b.icmp_signed("<", first, hi), _arg_better(b, op, dt, acc[0], best))
    return [b.select(take, best, acc[0]), b.select(take, flat(first), acc[1])]


# ---- phase 2 of chunked argmax/argmin (row order; kernels.reduction, kernels.ptx_reduce) --------

def arg_value_at(b, spec, ra, args, lay, kbases):
    """``value_at(index)``: the expression's value at flat index ``index`` of the reduced space of
    the output at ``kbases`` (phase 2 of a chunked argmax/argmin recomputes each chunk's best)."""
    from .elementwise import Leaves, emit_expr
    from .irb import add_offsets

    def value_at(idx):
        row, j = b.sdiv(idx, ra.red[-1]), b.srem(idx, ra.red[-1])
        bases = add_offsets(b, row, ra.red[:-1], ra.all_strides, kbases, first=spec.n_kept)
        leaf = Leaves(b, args, ra.ops, ra.idx_strides, ra.scalars, spec.classes, bases, j, lay["gather"],
                      lay["error"])
        return emit_expr(b, spec.expr, leaf)
    return value_at


def arg_chunks(b, op: str, dt, part, nchunks, o, value_at):
    """The index that output ``o``'s chunk partials (``part[o * nchunks + c]``: each chunk's index,
    -1 for an empty chunk) give by the host rule: taken in chunk order, each one's value recomputed
    by ``value_at(index)``, a later chunk's only when strictly better or the first NaN."""
    from .irb import range_loop
    from .reduction import _arg_better, _const_of, identity_of

    def step(c, state):
        best, bidx = state
        idx = b.load(b.gep(part, [b.add(b.mul(o, nchunks), c)]))
        valid = b.icmp_signed(">=", idx, const(I64, 0))
        v = value_at(b.select(valid, idx, const(I64, 0)))
        take = b.and_(valid, b.or_(b.icmp_signed("<", bidx, const(I64, 0)), _arg_better(b, op, dt, best, v)))
        return [b.select(take, v, best), b.select(take, idx, bidx)]
    init = [_const_of(dt, identity_of(op, dt)), const(I64, -1)]
    return range_loop(b, const(I64, 0), nchunks, init, step, "c")[1]


def arg_finalize_entry(module, name: str, spec, lay) -> tuple:
    """The function ``void name(i64* args)`` of a chunked argmax/argmin's phase 2: (function,
    builder in its entry block, args, ReduceArgs, the int64 partials, the number of outputs)."""
    from .irb import product
    from .reduction import ReduceArgs, index_partials
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), name=name)
    (args,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    return fn, b, args, ra, index_partials(b, args, lay), product(b, ra.kept)


def generate_arg_finalize(spec, module, fname, lay, dt) -> None:
    """Phase 2 of a chunked argmax/argmin, ``void NAME(i64* args)``: per output, the chunks'
    indices merged by :func:`arg_chunks` (the value at each recomputed from the inputs); the index
    is stored into the output."""
    from .irb import add_offsets, for_range
    from .reduction import _store_value
    _, b, args, ra, part, n_out = arg_finalize_entry(module, fname, spec, lay)
    with for_range(b, const(I64, 0), n_out, name="o") as o:
        kbases = add_offsets(b, o, ra.kept, ra.all_strides, [const(I64, 0)] * len(ra.all_strides))
        value_at = arg_value_at(b, spec, ra, args, lay, kbases)
        _store_value(b, ra.ops[0], kbases[0], arg_chunks(b, spec.op, dt, part, ra.nchunks, o, value_at))
    b.ret_void()
