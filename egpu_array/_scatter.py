"""Assignment through index arrays: ``x[key] = value`` as one scatter kernel (kernels/scatter.py).

The key is read as in ``x[key]`` (``_advanced``: masks become the indices of their True elements,
Python ints next to arrays are advanced indices, separated advanced indices move to the front),
and ``value`` is broadcast to the shape ``x[key]`` would have. Semantics:

- repeated indices: the last write in C order of the broadcast index space wins (deterministic;
  NumPy only promises that one of them lands, and in practice also keeps the last);
- negative indices wrap; an index outside ``[-n, n)`` raises IndexError and *nothing* is written
  (the kernel checks every index before its first store);
- the value follows the 2025.12 rules (checked by ``_indexing.setitem``): it is cast in the kernel
  to the array's dtype, which must be its promotion with the value's dtype;
- pending lazy expressions that read the array are computed first, so they keep the values they
  had when built; a value or an index array that shares memory with the array is copied first.

A lazy value or index array is computed into a temporary first (its own fused kernel); a realized
one (or a cast of one) is read by the scatter kernel directly.
"""
from __future__ import annotations

import math

from ._array import Array
from ._inplace import check_writable, flush_readers
from ._graph import LazyNode
from ._schedule import _collapse, _leaf_strides, _scalar_slots, compute_new, materialize, pack_args
from ._shapes import broadcast_shapes, value_shape_for
from .kernels.cache import get_program
from .kernels.scatter import ScatterSpec, arg_layout

__all__ = ["scatter_setitem"]

FUNC = "__setitem__"
#: index positions from which a scatter to one outer position is split over threads by target
#: range, on devices with at least PARTITION_THREADS threads: every part scans all the indices, so
#: two threads lose (measured on the 2-core dev machine under load: 1e6 random writes 27-33 ms in
#: one part, 44-48 ms in two); wider machines are not measured yet
PARTITION_MIN = 1 << 15
PARTITION_THREADS = 4


def _readable(node: LazyNode, buffer) -> LazyNode:
    """``node`` as a leaf the kernel can read: realized memory other than ``buffer``."""
    if node.op == "buffer" and node.arg.buffer is not buffer:
        return node
    if node.op == "buffer":  # shares the written memory: copy it first
        node = LazyNode("positive", (node,), node.dtype, node.shape, None, node.device)
        return compute_new(node)
    return materialize(node)


def _split_key(x: Array, key):
    """The basic part of the key, the advanced axes (in the basic view), the advanced indices
    (int64-castable Arrays and Python ints) and whether they go to the front (an ellipsis between
    them, see ``_advanced._expand``), as in ``advanced_getitem``."""
    from ._advanced import _expand
    keys, split = _expand(x, key, FUNC)
    basic, adv_axes, adv = [], [], []
    axis = 0
    for k in keys:
        if k is None or isinstance(k, slice):
            basic.append(k)
        else:
            basic.append(slice(None))
            adv_axes.append(axis)
            adv.append(k)
        axis += 1
    return tuple(basic), adv_axes, adv, split


def scatter_setitem(x: Array, key, value_node: LazyNode) -> None:
    """``x[key] = value`` where ``key`` holds integer arrays (and/or masks mixed with other
    indices); ``value_node`` is of ``x``'s dtype, or a cast to it."""
    from ._advanced import reshape_node
    from ._indexing import basic_view
    from ._manipulation import permute_dims
    basic, adv_axes, adv, split = _split_key(x, key)
    view = basic_view(x, basic, FUNC)
    if split or adv_axes != list(range(adv_axes[0], adv_axes[0] + len(adv_axes))):
        rest = [a for a in range(view.ndim) if a not in adv_axes]
        view = permute_dims(view, tuple(adv_axes + rest))
        adv_axes = list(range(len(adv_axes)))
    v = view._realize()
    first, last = adv_axes[0], adv_axes[-1] + 1
    # Python ints among the advanced indices: a fixed offset (checked here), no index array
    offset, arrays, axes = v.offset, [], []
    for a, k in zip(adv_axes, adv):
        n = view.shape[a]
        if isinstance(k, Array):
            arrays.append(k)
            axes.append(a)
        elif not -n <= k < n:
            raise IndexError(f"{FUNC}: index {k} is out of bounds for axis {a} with size {n}")
        else:
            offset += (k % n) * v.strides[a]
    ishape = broadcast_shapes(*(k.shape for k in arrays), func=FUNC)
    pre, post = view.shape[:first], view.shape[last:]
    rshape = pre + ishape + post
    if len(value_node.shape) > len(rshape):
        value_node = reshape_node(value_node, value_shape_for(value_node.shape, len(rshape)))
    if broadcast_shapes(rshape, value_node.shape, func=FUNC) != rshape:
        raise ValueError(f"{FUNC}: a value of shape {value_node.shape} cannot be broadcast to the "
                         f"indexed shape {rshape}")
    if math.prod(ishape) == 0:
        return
    buffer = v.buffer
    idx_nodes = [_readable(k._node, buffer) for k in arrays]
    scalar = value_node.op == "const"
    if not scalar and value_node.op == "cast" and value_node.srcs[0].op == "buffer":
        value_node = value_node.srcs[0]  # cast in the kernel
    if not scalar:
        value_node = _readable(value_node, buffer)
    outer_shape = list(pre + post)
    outer_t = list(v.strides[:first] + v.strides[last:])
    nd_i = len(ishape)
    inner_idx = [_leaf_strides(n, ishape) for n in idx_nodes]
    if scalar:
        oshape, (ot,) = _collapse(outer_shape, [outer_t])
        ishp, istr = _collapse(list(ishape), inner_idx)
    else:
        vs = _leaf_strides(value_node, rshape)
        v_outer = vs[:first] + vs[first + nd_i:]
        oshape, (ot, ov) = _collapse(outer_shape, [outer_t, v_outer])
        ishp, istr = _collapse(list(ishape), inner_idx + [vs[first:first + nd_i]])
    spec = ScatterSpec(dtype=x.dtype.name, value_dtype=value_node.dtype.name, scalar_value=scalar,
                       idx_dtypes=tuple(n.dtype.name for n in idx_nodes), n_outer=len(oshape),
                       n_inner=len(ishp))
    n_outer, n_inner = math.prod(oshape), math.prod(ishp)
    slots = [n_outer, n_inner] + list(oshape) + list(ishp)
    slots += [buffer.ptr + offset * x.dtype.itemsize] + list(ot)
    for node, a, st in zip(idx_nodes, axes, istr):
        iv = node.arg
        slots += [iv.buffer.ptr + iv.offset * node.dtype.itemsize] + list(st)
        slots += [view.shape[a], v.strides[a]]
    if scalar:
        slots += _scalar_slots(value_node.arg, x.dtype)
    else:
        vv = value_node.arg
        slots += [vv.buffer.ptr + vv.offset * value_node.dtype.itemsize] + list(ov) + list(istr[-1])
    parts = 0  # work items are outer positions
    if n_outer == 1:  # work items are ranges of the target (see the kernel); several for long scatters
        parts = 1
        threads = getattr(x.device, "num_threads", 1)
        if n_inner >= PARTITION_MIN and threads >= PARTITION_THREADS:
            parts = max(1, min(threads, view.shape[axes[0]]))
    slots += [parts, 0]  # partitions, error flag
    assert len(slots) == arg_layout(spec)["size"]
    device = x.device
    program = get_program(device, spec)
    check_writable(flush_readers(x), x.shape, FUNC)
    args = pack_args(slots)
    n_items = n_outer * n_inner
    nbytes = n_items * x.dtype.itemsize * (1 if scalar else 2) + sum(
        math.prod(n.shape) * n.dtype.itemsize for n in idx_nodes)
    device.launch(program, args, parts or max(n_outer, 1), nbytes, work=max(n_items, 1) * max(parts, 1))
    if args[len(slots) - 1]:
        raise IndexError(f"{FUNC}: an index array holds a value outside [-n, n) for the axis it "
                         f"indexes (sizes {[view.shape[a] for a in axes]}); nothing was assigned")
