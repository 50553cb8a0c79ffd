"""Gathers: ``take``, ``take_along_axis`` and integer-array indexing as one fused kernel.

A gather node reads its source at positions given by index values computed in the same kernel;
indices are clamped in the kernel (so memory outside the source is never touched) and an
out-of-range index raises IndexError after the launch.

A gather computed on its own (its node is what is realized, the indices a buffer, one gathered
axis: ``take``, ``x[idx]``) runs the plain gather kernel (:mod:`.kernels.gather`: branch-free
index checks, prefetches ahead) on the cpu device, through :func:`gather_into`; inside a larger
expression it is fused into that expression's kernel.
"""
from __future__ import annotations

import math

from . import _dtypes as dt
from ._array import Array
from ._elementwise import cast_node
from ._graph import LazyNode, View
from ._schedule import GatherArg, _collapse, _leaf_strides, gather_index_error, pack_args
from ._shapes import broadcast_shapes, normalize_axis
from .kernels.cache import get_program
from .kernels.gather import SLOTS, GatherSpec

__all__ = ["take", "take_along_axis", "gather_axes", "gather_into"]


#: device kinds whose kernels are host code (sim runs the cpu's kernels on its emulated VRAM)
_HOST_KERNELS = frozenset({"cpu", "sim"})


class _AxesGather(GatherArg):
    """The GatherArg of :func:`gather_axes`, with the layout of its node's shape (``lead``
    dimensions before the ``nidx`` index dimensions)."""

    __slots__ = ("lead", "nidx")

    def __init__(self, source, extents, strides, func, lead, nidx):
        super().__init__(source, extents, strides, func)
        self.lead, self.nidx = lead, nidx


def _index_node(func: str, indices, device) -> LazyNode:
    if not isinstance(indices, Array):
        raise TypeError(f"{func}: indices must be an Array, got {type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{func}: indices must have an integer dtype, got {indices.dtype}")
    if indices.device != device:
        raise ValueError(f"{func}: indices are on {indices.device}, the array on {device}")
    return index_int64(indices._node)


def index_int64(node: LazyNode) -> LazyNode:
    """An integer index array as the int64 positions the gather kernels read. uint64 values at or
    above 2**63 would wrap to negative (valid) positions in the cast: they are first clamped to
    2**63 - 1, which every bounds check refuses."""
    if node.dtype == dt.uint64:
        from ._elementwise import const_node
        top = const_node(2**63 - 1, dt.uint64, node.device)
        node = LazyNode("minimum", (node, top), dt.uint64, node.shape, None, node.device)
    return cast_node(node, dt.int64)


def _raw_index(node: LazyNode) -> LazyNode:
    """The integer buffer behind an index node made by :func:`index_int64` (this module's gather
    kernel reads every integer dtype itself, uint64 without wrapping), or the node as it is."""
    if node.op == "cast":
        src = node.srcs[0]
        if src.op == "minimum" and src.dtype == dt.uint64 and src.srcs[1].op == "const":
            src = src.srcs[0]
        if src.op == "buffer" and src.dtype.kind in "iu":
            return src
    return node


def _placed(node: LazyNode, ndim_after: int) -> LazyNode:
    """``node`` with ``ndim_after`` trailing unit dimensions (a view; lazy nodes are computed)."""
    if ndim_after == 0:
        return node
    if node.op == "cast" and node.srcs[0].op == "buffer":  # (the cast stays in the kernel)
        return cast_node(_placed(node.srcs[0], ndim_after), node.dtype)
    from ._schedule import materialize
    leaf = materialize(node)
    v = leaf.arg
    return LazyNode("buffer", (), leaf.dtype, leaf.shape + (1,) * ndim_after,
                    View(v.buffer, v.strides + (0,) * ndim_after, v.offset), leaf.device)


def gather_axes(x: Array, axes: list, index_nodes: list, func: str) -> Array:
    """``x`` indexed on consecutive ``axes`` by broadcast integer index nodes (NumPy's rule for
    adjacent advanced indices): the indexed axes are replaced by the indices' broadcast shape."""
    v = x._realize()
    first, last = axes[0], axes[-1] + 1
    ishape = broadcast_shapes(*(n.shape for n in index_nodes), func=func)
    pre, post = x.shape[:first], x.shape[last:]
    shape = pre + ishape + post
    strides = v.strides[:first] + (0,) * len(ishape) + v.strides[last:]
    source = LazyNode("buffer", (), x.dtype, shape, View(v.buffer, strides, v.offset), x.device)
    idx = [_placed(n, len(post)) for n in index_nodes]
    arg = _AxesGather(source, [x.shape[a] for a in axes], [v.strides[a] for a in axes], func, len(pre),
                      len(ishape))
    if any(x.shape[a] == 0 for a in axes) and 0 not in ishape:
        raise IndexError(f"{func}: cannot index an axis of size 0")
    return Array._new(LazyNode("gather", tuple(idx), x.dtype, shape, arg, x.device))


def take(x, indices, /, *, axis=None) -> Array:
    """Elements of ``x`` at ``indices`` along ``axis`` (negative indices count from the end)."""
    if not isinstance(x, Array):
        raise TypeError(f"take: expected an Array, got {type(x).__name__}")
    if axis is None:
        if x.ndim != 1:
            raise ValueError("take: axis is required for arrays of more than one dimension")
        axis = 0
    ax = normalize_axis(axis, x.ndim, "take")
    node = _index_node("take", indices, x.device)
    if indices.ndim != 1:
        raise ValueError(f"take: indices must be 1-D, got shape {indices.shape}")
    out = gather_axes(x, [ax], [node], "take")
    out._realize()  # computed now, as x[idx] is: an index out of range raises here, not at a later write to x
    return out


def take_along_axis(x, indices, /, *, axis=-1) -> Array:
    """``x`` picked along ``axis`` at ``indices`` (same number of dimensions, broadcast elsewhere)."""
    if not isinstance(x, Array):
        raise TypeError(f"take_along_axis: expected an Array, got {type(x).__name__}")
    node = _index_node("take_along_axis", indices, x.device)
    if indices.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices must have {x.ndim} dimensions, got {indices.ndim}")
    ax = normalize_axis(axis, x.ndim, "take_along_axis")
    xshape = x.shape[:ax] + (1,) + x.shape[ax + 1:]
    shape = broadcast_shapes(xshape, indices.shape, func="take_along_axis")
    v = x._realize()
    strides = tuple(0 if (d == ax or x.shape[d] == 1) else s for d, s in enumerate(v.strides))
    lead = ()
    source = LazyNode("buffer", (), x.dtype, shape, View(v.buffer, lead + strides, v.offset), x.device)
    arg = GatherArg(source, [x.shape[ax]], [v.strides[ax]], "take_along_axis")
    if x.shape[ax] == 0 and 0 not in shape:
        raise IndexError("take_along_axis: cannot index an axis of size 0")
    out = Array._new(LazyNode("gather", (node,), x.dtype, shape, arg, x.device))
    out._realize()  # (computed now, as take)
    return out



def _group(shape, strides: list, lo: int, hi: int):
    """Dimensions [lo, hi) of ``shape`` merged into one: (extent, stride per operand), or None
    when they are not one run of memory for every operand."""
    cshape, cst = _collapse(list(shape[lo:hi]), [list(s[lo:hi]) for s in strides])
    return (cshape[0], [c[0] for c in cst]) if len(cshape) == 1 else None


#: gathers of single elements with at most this many indices per row, over at least this many
#: rows, run in column order (kernels.gather.GatherSpec.by_column: ``x[:, cols]`` of 3 columns
#: of a 10000 x 1000 matrix took 5.5x NumPy's time in row order)
COLUMN_ORDER_MAX_N, COLUMN_ORDER_MIN_P = 32, 256


def gather_into(root: LazyNode, out: View) -> bool:
    """Compute the gather node ``root`` into ``out`` with the plain gather kernel
    (:mod:`.kernels.gather`); False (nothing done) where it does not apply: not on a device
    that runs host kernels (cpu, sim), not a :func:`gather_axes` node with one gathered axis, indices that are not a
    buffer (or a cast of one), or dimensions that do not merge into (lead, index, trailing).
    Raises IndexError (naming the function) on an index outside ``[-n, n)``. Called by
    ``_schedule.realize_into``."""
    arg = root.arg
    if not isinstance(arg, _AxesGather) or len(arg.extents) != 1 or root.device.kind not in _HOST_KERNELS:
        return False
    node = _raw_index(root.srcs[0])
    if node.op != "buffer":
        return False
    shape, lead, nidx = root.shape, arg.lead, arg.nidx
    total = math.prod(shape)
    if total == 0:
        return False
    src_st, idx_st, out_st = list(arg.source.arg.strides), _leaf_strides(node, shape), list(out.strides)
    if len(shape) == 1 and lead == 0 and nidx == 1:  # (a 1-D take: nothing to merge)
        parts = [(1, (0, 0)), (shape[0], (idx_st[0], out_st[0])), (1, (0, 0))]
    else:
        parts = [_group(shape, [src_st, out_st], 0, lead), _group(shape, [idx_st, out_st], lead, lead + nidx),
                 _group(shape, [src_st, out_st], lead + nidx, len(shape))]
        if None in parts:
            return False
    (p, (sp, op)), (n, (ist, oi)), (q, (sq, oq)) = parts
    size, isize = root.dtype.itemsize, node.dtype.itemsize
    sv, iv = arg.source.arg, node.arg
    slots = [n, q, arg.extents[0], sv.buffer.ptr + sv.offset * size, sp * size, arg.strides[0] * size, sq * size,
             iv.buffer.ptr + iv.offset * isize, ist, out.buffer.ptr + out.offset * size, op * size, oi * size,
             oq * size, 0, p]
    spec = GatherSpec(itemsize=size, idx_dtype=node.dtype.name,
                      by_column=q == 1 and n <= COLUMN_ORDER_MAX_N and p >= COLUMN_ORDER_MIN_P)
    args = pack_args(slots)
    root.device.launch(get_program(root.device, spec), args, p * n, total * 2 * size + p * n * isize, work=total)
    if args[SLOTS.index("error")]:
        raise gather_index_error([arg.func], arg.extents)
    return True
