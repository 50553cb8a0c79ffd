"""What makes an in-place write safe (``Array._write``, scatters, DLPack exports).

- The pending readers of a buffer (weak references to the lazy Arrays whose expressions read it):
  before its memory is written in place, or handed to another library that may write it, every
  pending reader is computed, so it keeps the values it was created with. Readers are registered
  by ``Array._new`` and pruned there as the list grows.
- Views that repeat elements (broadcasts) refuse writes.
- A value that reads the written memory through another view is computed apart first.
"""
from __future__ import annotations

import threading

from ._graph import LazyNode, View

__all__ = ["flush_readers", "check_writable"]


def flush_readers(x) -> View:
    """Realize ``x`` and every pending expression that reads its buffer (before its memory is
    written in place, or handed to another library that may write it); returns ``x``'s View."""
    view = x._realize()
    _flush(view.buffer, x)
    return view


#: guards the buffers' reader lists: the clean-ups (:func:`_prune`), the hand-over before a write
#: and the returns after one (appends of new readers go without it: ``Array._new`` registers
#: again, under the lock, a reader whose append may have reached a list handed over meanwhile)
_READERS_LOCK = threading.Lock()


def _flush(buffer, owner, value_node: LazyNode | None = None) -> list:
    """Compute every pending reader of ``buffer`` (but ``owner``) before its memory changes.
    Readers whose pending expression is ``value_node`` (the value about to be written) are
    returned instead, to be computed straight into the memory. If a computation fails (a link
    fault, out of memory), every reader not yet computed stays on the buffer's list, so a later
    write still computes it first instead of letting it read the new values."""
    with _READERS_LOCK:  # (a copy: a clean-up of the old list by another thread cannot skip entries)
        readers, buffer.readers = buffer.readers[:], []
    values = []
    try:
        for ref in readers:
            reader = ref()
            if reader is None or reader is owner or not reader._node.srcs:
                continue
            if reader._node is value_node:
                values.append(reader)
            else:
                reader._realize()
    except BaseException:
        _keep_reading(buffer, readers)  # (the computed ones are dropped at the next clean-up)
        raise
    return values


def _prune(readers: list) -> None:
    """Drop the dead or computed arrays from a buffer's reader list. Other threads may append to
    it meanwhile (without the lock, which would cost every new array): only the part seen here
    is replaced, in one slice assignment, so their appends after it stay."""
    with _READERS_LOCK:
        seen = readers[:]
        readers[:len(seen)] = [r for r in seen if (a := r()) is not None and a._node.srcs]


def _keep_reading(buffer, refs: list) -> None:
    """Put weak references of arrays that still read ``buffer`` back on its list."""
    with _READERS_LOCK:
        buffer.readers.extend(refs)


def check_writable(view: View, shape: tuple, func: str) -> None:
    """Refuse a write through a view that repeats elements (a stride-0 axis of length > 1, as
    ``broadcast_to`` makes): each element would be updated once per repetition (``b += 1`` adding
    3 to a row broadcast 3 times), so NumPy makes such views read-only; so are all views of a
    ``broadcast_to`` result (``View.readonly``: ``b[0] = 0`` wrote every row), empty ones included,
    as in NumPy. Other empty views write nothing."""
    if view.readonly:
        raise ValueError(f"{func}: the array is {view.readonly} and cannot be written through; "
                         "write to the array it views, or to a copy (asarray(x, copy=True))")
    if 0 in shape:
        return
    for axis, (n, st) in enumerate(zip(shape, view.strides)):
        if st == 0 and n > 1:
            raise ValueError(f"{func}: the array is a broadcast view (axis {axis} repeats each element "
                             f"{n} times) and cannot be written through; write to the array it was "
                             "broadcast from, or to a copy (asarray(x, copy=True))")


#: ops whose output element depends on more than the same element of their inputs
_NOT_ELEMENTWISE = frozenset({"matmul", "reduce", "gather"})


def _overlaps_differently(node: LazyNode, view: View) -> bool:
    """Whether ``node`` reads elements of ``view.buffer`` that ``view`` (of ``node.shape``) covers
    other than element for element through ``view`` itself (through another view, through
    ``view``'s layout broadcast from a smaller shape, or under a product, reduction or gather), so
    that computing it straight into ``view`` could read elements already overwritten. Reads of a
    disjoint part of the buffer (another block of the matrix) are safe."""
    stack = [(node, False)]
    while stack:
        n, under = stack.pop()
        if n.op == "buffer":
            v = n.arg
            if v.buffer is not view.buffer:
                continue
            if n.dtype.itemsize != node.dtype.itemsize:  # (memory imported twice as two dtypes: offsets
                return True                              # in elements of different sizes do not compare)
            same = v.strides == view.strides and v.offset == view.offset and n.shape == node.shape
            if (under or not same) and not _disjoint(v, n.shape, view, node.shape):
                return True
            continue
        if view.buffer not in n.buffers:
            continue
        deeper = under or n.op in _NOT_ELEMENTWISE
        if n.op == "gather":
            stack.append((n.arg.source, True))
        stack.extend((src, deeper) for src in n.srcs)
    return False


def _disjoint(a: View, a_shape: tuple, b: View, b_shape: tuple) -> bool:
    """Whether two views of one buffer share no element: their extents do not meet, or they are
    boxes of the same strided layout (same strides, each coordinate within its dimension's pitch)
    that are apart along some dimension."""
    from ._transfer import view_extent
    lo1, hi1 = view_extent(a_shape, a.strides, a.offset)
    lo2, hi2 = view_extent(b_shape, b.strides, b.offset)
    if hi1 <= lo1 or hi2 <= lo2 or hi1 <= lo2 or hi2 <= lo1:
        return True
    if a.strides != b.strides or len(a_shape) != len(b_shape):
        return False
    dims = sorted((st, i) for i, st in enumerate(a.strides) if st != 0 and (a_shape[i] > 1 or b_shape[i] > 1))
    if any(st < 0 for st, _ in dims):
        return False
    boxes = []
    for off, shape in ((a.offset, a_shape), (b.offset, b_shape)):
        box = {}
        for k in range(len(dims) - 1, -1, -1):  # largest stride first
            st, i = dims[k]
            c, off = divmod(off, st)
            pitch = dims[k + 1][0] // st if k + 1 < len(dims) else None
            if pitch is not None and (dims[k + 1][0] % st or c + shape[i] > pitch):
                return False
            box[i] = (c, c + shape[i])
        if off:
            return False
        boxes.append(box)
    return any(boxes[0][i][1] <= boxes[1][i][0] or boxes[1][i][1] <= boxes[0][i][0] for _, i in dims)
