"""Column-order argmax/argmin kernels: ``argmax(x, axis=0)`` of a C-contiguous matrix.

The row order (kernels.reduction, kernels.reduction_arg) walks each output's reduced elements
one after another; along axis 0 of a C-contiguous matrix they are a row apart in memory, one
strided read per element (27 ms for argmin over axis 0 of a (2500, 4000) float32 matrix, 1.5
GB/s). Here, as in kernels.reduction_outer, work item ``w`` takes a tile of :func:`outer_tile`
columns and a chunk of rows and walks the rows in order, each row's tile contiguous (3.2 ms).
Stack arrays hold each column's best value and its row (int32, relative to the chunk's first),
and one vectorized loop per row group updates them by the host rule (a value replaces the best
when strictly better, or when it is the first NaN), so ties keep the first row. The rows come
``ROWS`` at a time: the group's best (later rows replace earlier ones by the same rule) updates
the arrays once. The arrays are held twice and each pass reads one copy and writes the other:
written in place, ``store(select(take, v, load(p)), p)`` became masked stores (vmaskmovps), which
are microcoded on AMD (argmin over axis 0 above: 6.8 ms with them and int64 rows). Float
tiles are walked first with plain compares (no NaN rule: a compare and two blends per merge
instead of seven instructions) while NaNs are counted (one unordered compare per two values);
a work item that saw one walks its rows again with the exact rule (5-10% faster overall).

With one chunk the rows are the answers. With several, chunk ``c`` writes its rows of output
``o`` at ``o * nchunks + c`` (-1: an empty chunk), and the finalize step (:func:`generate_outer_arg_finalize`)
recomputes each one's value from the inputs and keeps the first best in chunk order, as
kernels.reduction_arg's generate_arg_finalize does for the row order.
"""
from __future__ import annotations

import functools

from llvmlite import ir

from .elementwise import Leaves, emit_expr
from .irb import I64, const, for_range, range_loop
from .reduction_outer import _Accumulators, _ceil_div, _row_bases, _work_item, outer_tile
from .reduction_rows import or_redo
from .spec import ReduceSpec

__all__ = ["generate_outer_arg", "generate_outer_arg_finalize", "ROWS", "ARG_CHUNK_ROWS"]

#: rows merged (by the host rule, in row order) before each update of the tile's best values
#: (an even number; 8 was within +-6% of 4 with 8 KiB tiles on Zen 5)
ROWS = 4
#: the most rows of one chunk: the kernel keeps rows relative to the chunk's first in int32 (the
#: scheduler cuts longer reductions into more chunks)
ARG_CHUNK_ROWS = (1 << 31) - 1


def _element(b, spec: ReduceSpec, ra, bases, o):
    """The expression's value at column ``o`` of the row whose offsets are ``bases``."""
    lay = ra.layout
    leaf = Leaves(b, ra.args, ra.ops, ra.idx_strides, ra.scalars, spec.classes, bases, o, lay["gather"],
                  lay["error"])
    return emit_expr(b, spec.expr, leaf)


def _merge(b, op: str, dt, first: list, later: list, fast: bool = False) -> list:
    """``[value, row]`` of two candidates, ``later``'s rows after ``first``'s: later wins only by
    the host rule (strictly better, or the first NaN; ``fast``: strictly better, no NaN rule)."""
    from .reduction import _arg_better
    if fast:
        take = b.fcmp_ordered(">" if op == "argmax" else "<", later[0], first[0])
    else:
        take = _arg_better(b, op, dt, first[0], later[0])
    return [b.select(take, later[0], first[0]), b.select(take, later[1], first[1])]


def generate_outer_arg(spec: ReduceSpec, module: ir.Module, fname: str) -> ir.Function:
    """Add the column-order argmax/argmin kernel for ``spec`` to ``module`` as ``fname`` (work
    items as in kernels.reduction_outer: (batch index, column tile, row chunk))."""
    from .reduction import ReduceArgs, _const_of, _store_value, identity_of, index_partials
    from .._dtypes import int32
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name=fname)
    args, start, stop = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    dt, nk = ra.expr_dt, spec.n_kept
    tile = outer_tile(dt, spec.op)
    ntiles = _ceil_div(b, ra.kept[-1], tile)
    # two copies of the tile's state: each pass reads one and writes the other (see the module)
    best, where = _Accumulators(b, dt, 2 * tile), _Accumulators(b, int32, 2 * tile)
    init = _const_of(dt, identity_of(spec.op, dt))
    i32 = ir.IntType(32)

    floats = dt.kind == "f"
    nan_ty = ir.IntType(8 * dt.itemsize)

    def update(cur, n, candidate, fast, nans):
        """One pass over the tile's columns: state at ``cur`` merged with ``candidate(o)`` (a
        ``[value, row]`` pair of later rows, and whether a NaN was among them) into the other
        copy; returns the other copy's offset (and the NaN count, fast)."""
        nxt = b.sub(const(I64, tile), cur)

        def column(o, state):
            cand, nan = candidate(o)
            new = _merge(b, spec.op, dt, [best.load(b.add(cur, o)), where.load(b.add(cur, o))], cand, fast)
            best.store(b.add(nxt, o), new[0])
            where.store(b.add(nxt, o), new[1])
            return [b.add(state[0], b.sext(nan, nan_ty))] if fast else []
        return [nxt] + range_loop(b, const(I64, 0), n, [nans] if fast else [], column, "o")

    def walk(fast, n, firsts, r_lo, r_hi):
        """The tile's rows into the state; returns ``[the final copy's offset]`` (fast: and how
        many NaNs were seen: compares without the NaN rule, redone exactly when one occurs)."""
        # rows are kept relative to r_lo, in int32 (the scheduler cuts chunks of fewer than 2**31
        # rows); the first row is the answer when no value beats the identity, e.g. all -inf
        with for_range(b, const(I64, 0), n, name="z") as z:
            best.store(z, init)
            where.store(z, const(i32, 0))
        groups = b.sdiv(b.sub(r_hi, r_lo), const(I64, ROWS))
        state = [const(I64, 0)] + ([const(nan_ty, 0)] if fast else [])

        def group(g, state):
            rel = b.mul(g, const(I64, ROWS))
            row_offsets = [_row_bases(b, spec, ra, b.add(r_lo, b.add(rel, const(I64, u))), firsts)
                           for u in range(ROWS)]
            rows = [b.trunc(b.add(rel, const(I64, u)), i32) for u in range(ROWS)]

            def candidate(o):
                cands = [[_element(b, spec, ra, bases, o), q] for bases, q in zip(row_offsets, rows)]
                nan = None
                if fast:  # (an unordered compare of two values: either is NaN)
                    pairs = [b.fcmp_unordered("uno", cands[i][0], cands[i + 1][0]) for i in range(0, ROWS, 2)]
                    nan = functools.reduce(b.or_, pairs)
                while len(cands) > 1:  # a balanced tree in row order (the merge keeps earlier rows on ties)
                    cands = [_merge(b, spec.op, dt, cands[i], cands[i + 1], fast) for i in range(0, len(cands), 2)]
                return cands[0], nan
            return update(state[0], n, candidate, fast, state[1] if fast else None)

        state = range_loop(b, const(I64, 0), groups, state, group, "g")

        def single(r, state):
            bases = _row_bases(b, spec, ra, r, firsts)
            row = b.trunc(b.sub(r, r_lo), i32)

            def candidate(o):
                v = _element(b, spec, ra, bases, o)
                return [v, row], (b.fcmp_unordered("uno", v, v) if fast else None)
            return update(state[0], n, candidate, fast, state[1] if fast else None)

        return range_loop(b, b.add(r_lo, b.mul(groups, const(I64, ROWS))), r_hi, state, single, "r")

    with for_range(b, start, stop, name="w") as w:
        c, batch, o0, n, bbase, firsts, r_lo, r_hi = _work_item(b, spec, ra, w, tile, ntiles)
        if floats:  # without the NaN rule first (a third of the work), exactly where a NaN occurs
            cur, nans = walk(True, n, firsts, r_lo, r_hi)
            cur = or_redo(b, cur, b.icmp_unsigned("!=", nans, const(nan_ty, 0)),
                          lambda: walk(False, n, firsts, r_lo, r_hi)[0], "nan")
        else:
            (cur,) = walk(False, n, firsts, r_lo, r_hi)

        def answer(q):
            return b.add(r_lo, b.sext(where.load(b.add(cur, q)), I64))
        if spec.chunked:  # chunk c's row of each output at (output * nchunks + c); -1: no rows
            part = index_partials(b, args, ra.layout)
            first = b.add(b.mul(batch, ra.kept[-1]), o0)
            empty = b.icmp_signed(">=", r_lo, r_hi)
            with for_range(b, const(I64, 0), n, name="p") as q:
                at = b.add(b.mul(b.add(first, q), ra.nchunks), c)
                b.store(b.select(empty, const(I64, -1), answer(q)), b.gep(part, [at]))
        else:
            out = ra.ops[0]
            with for_range(b, const(I64, 0), n, name="s") as q:
                _store_value(b, out, b.add(bbase[0], b.mul(b.add(o0, q), out.strides[nk - 1])), answer(q))
    b.ret_void()
    return fn


def generate_outer_arg_finalize(spec: ReduceSpec, module: ir.Module, fname: str) -> None:
    """Phase 2 of a chunked column-order argmax/argmin, ``void NAME(i64* args)``: per output, the
    chunks' rows in chunk order; each one's value is recomputed from the inputs and the host rule
    keeps the first best (or first NaN); the row is stored into the output."""
    from .reduction import ReduceArgs, _store_value, index_partials
    from .reduction_arg import arg_chunks
    from .irb import add_offsets
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [I64.as_pointer()]), name=fname)
    (args,) = fn.args
    b = ir.IRBuilder(fn.append_basic_block("entry"))
    ra = ReduceArgs(b, args, spec)
    dt, nk = ra.expr_dt, spec.n_kept
    part = index_partials(b, args, ra.layout)
    n_inner = ra.kept[-1]
    n_batch = const(I64, 1)
    for k in ra.kept[:-1]:
        n_batch = b.mul(n_batch, k)
    zeros = [const(I64, 0)] * len(ra.all_strides)
    with for_range(b, const(I64, 0), n_batch, name="bt") as batch:
        bbase = add_offsets(b, batch, ra.kept[:-1], ra.all_strides, zeros) if nk > 1 else zeros
        with for_range(b, const(I64, 0), n_inner, name="o") as o:
            row = arg_chunks(b, spec.op, dt, part, ra.nchunks, b.add(b.mul(batch, n_inner), o),
                             lambda r: _element(b, spec, ra, _row_bases(b, spec, ra, r, bbase), o))
            out = ra.ops[0]
            _store_value(b, out, b.add(bbase[0], b.mul(o, out.strides[nk - 1])), row)
    b.ret_void()
