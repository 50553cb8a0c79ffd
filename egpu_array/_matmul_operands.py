"""How the host GEMM reads its operands (egpu_array._matmul): views, producers, layout flags.

An operand of a ``"matmul"`` node is read either from memory (a buffer leaf, or the operand
computed into a temporary first) or, on host GEMM kernels, as a producer: an elementwise expression
whose leaves the packing loop reads at each element's position (``kernels.gemm_pack``), which saves
the temporary's write and read. :func:`side` decides which; :func:`side_layout` gives the kernel
spec's layout flag and :class:`~egpu_array.kernels.gemm_pack.Producer`.
"""
from __future__ import annotations

import math

from ._graph import LazyNode
from . import _schedule as sch
from .kernels.gemm import Producer

__all__ = ["Side", "side", "side_layout", "operand", "check_leaf", "layout_flag", "PRODUCER_INPUTS",
           "PRODUCER_PROGRAM"]

#: producers with more leaves or instructions are computed before the launch (compile time)
PRODUCER_INPUTS, PRODUCER_PROGRAM = 6, 48


def _operand_strides(shape: tuple, strides, vec_axis: int | None, batch: tuple) -> list:
    """An operand's (or a leaf's, ``strides`` in the operand's index space) strides over
    (batch..., rows, cols): a 1-D operand gets its row (axis 0) or column (axis 1) added, batch
    axes it lacks or broadcasts get 0."""
    strides, shape = list(strides), list(shape)
    if vec_axis is not None:  # a 1-D operand: a row (axis 0 added) or a column (axis 1 added)
        shape.insert(vec_axis, 1)
        strides.insert(vec_axis, 0)
    lead = len(batch) + 2 - len(shape)
    return [0] * lead + [0 if (n == 1 and lead + d < len(batch)) else s for d, (n, s) in enumerate(zip(shape, strides))]


def operand(src: LazyNode, vec_axis: int | None, batch: tuple):
    """A materialized operand's view and its strides over (batch..., rows, cols)."""
    leaf = sch.materialize(src)
    return leaf, leaf.arg, _operand_strides(leaf.shape, leaf.arg.strides, vec_axis, batch)


class Side:
    """One GEMM operand as the kernel reads it: buffer ``leaves`` with their ``strides`` over
    (batch..., rows, cols), and for a producer its program ``expr`` and scalar ``consts``
    (``expr`` None: one plain leaf of the GEMM's dtype)."""

    __slots__ = ("leaves", "strides", "consts", "expr")

    def __init__(self, leaves, strides, consts, expr):
        self.leaves, self.strides, self.consts, self.expr = leaves, strides, consts, expr


def side(src: LazyNode, vec_axis: int | None, batch: tuple, fuse: bool) -> Side:
    """How the GEMM reads operand ``src``: a producer computed while packing when ``fuse`` and
    ``src`` is an elementwise expression over buffers and scalars (reductions inside it are
    computed first, as for any fused expression); else ``src`` computed into memory first (a
    reduction, product or gather, index leaves, an expression too large to compile quickly, or an
    operand broadcast over the batch whose program calls math functions: each batch entry would
    compute them again, where the temporary computes them once; cheap ops cost less than the
    temporary's pass)."""
    if fuse and src.op not in ("buffer", "reduce", "matmul", "gather") and src.computed is None:
        low = sch.lower_elementwise(src)
        own_batch = math.prod(src.shape[:-2]) if len(src.shape) > 2 else 1
        again = own_batch != math.prod(batch) and _calls_math(low.expr)
        if not (again or low.gathers or low.iotas or len(low.inputs) > PRODUCER_INPUTS
                or len(low.expr) > PRODUCER_PROGRAM):
            strides = [_operand_strides(src.shape, sch._leaf_strides(n, src.shape), vec_axis, batch)
                       for n in low.inputs]
            return Side(low.inputs, strides, low.consts, low.expr)
    leaf, _, st = operand(src, vec_axis, batch)
    return Side([leaf], [st], [], None)


def _calls_math(expr: tuple) -> bool:
    """Whether a program calls math functions of kernels.math (long instruction sequences; sqrt
    is one instruction)."""
    from .kernels.math import MATH_FUNCS
    return any(ins[0] in MATH_FUNCS and ins[0] != "sqrt" for ins in expr)


def side_layout(side: Side, strides: list, k_axis: int, x_axis: int) -> tuple:
    """(layout flag, Producer or None) of an operand from its leaves' collapsed ``strides``: a
    producer packs along the contiguous axis of its largest leaf (its first of the most elements)."""
    if side.expr is None:
        st = strides[0]
        return layout_flag(st[k_axis], st[x_axis]), None
    lay = "k"
    if strides:
        big = max(range(len(strides)), key=lambda i: (sum(s != 0 for s in strides[i]), -i))
        lay = layout_flag(strides[big][k_axis], strides[big][x_axis])
    inner = k_axis if lay == "k" else x_axis
    return lay, Producer(expr=side.expr, in_dtypes=tuple(n.dtype.name for n in side.leaves),
                         arg_dtypes=tuple(c.dtype.name for c in side.consts),
                         classes=tuple(sch._stride_class(st[inner]) for st in strides))


def check_leaf(leaf: LazyNode) -> None:
    """A leaf's view must lie inside its buffer (the kernel reads it without bounds checks)."""
    v = leaf.arg
    lo = hi = v.offset
    for n, s in zip(leaf.shape, v.strides):
        if n == 0:
            return
        if s > 0:
            hi += (n - 1) * s
        else:
            lo += (n - 1) * s
    if lo < 0 or (hi + 1) * leaf.dtype.itemsize > v.buffer.nbytes:
        raise ValueError(f"matmul: an operand view (shape {leaf.shape}, strides {v.strides}, offset {v.offset}) "
                         f"reaches outside its buffer of {v.buffer.nbytes} bytes")


def layout_flag(k_stride: int, x_stride: int) -> str:
    """kernels.gemm's layout flag of an operand from its strides along K and the other axis."""
    return "k" if k_stride == 1 else ("x" if x_stride == 1 else "s")
