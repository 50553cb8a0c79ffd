"""The lazy graph: LazyNode, the unit the namespace builds and the scheduler cuts into kernels.

A node is ``op`` over ``srcs`` with a result ``dtype`` and ``shape`` on a ``device``. Leaves:

- ``"buffer"``: ``arg`` is a :class:`View` of realized device memory;
- ``"const"``: ``arg`` is a Python scalar, broadcast to ``shape`` (a kernel argument, not baked in);
- ``"iota"``: ``arg`` is an axis; the value is the index along that axis (int64).

Inner nodes are elementwise ops of ``kernels.ops.OPS``, ``"cast"`` and ``"where"``. ``size`` counts
the pending ops under a node (the graph-size limit reads it); ``buffers`` the buffers it reads.
"""
from __future__ import annotations

__all__ = ["LazyNode", "View", "buffer_node", "check_valid", "contiguous_strides", "BROADCAST_VIEW",
           "READ_ONLY_MEMORY"]


def contiguous_strides(shape) -> tuple:
    """C-order strides, in elements."""
    strides = []
    acc = 1
    for n in reversed(shape):
        strides.append(acc)
        acc *= max(n, 1)
    return tuple(reversed(strides))


#: why a View refuses writes (``View.readonly``; "" where it takes them)
BROADCAST_VIEW = "a broadcast view (from broadcast_to)"
READ_ONLY_MEMORY = "a view of read-only memory shared with another library"


class View:
    """Shape/strides/offset (in elements) over a Buffer; ``readonly``: why writes through it are
    refused ("" when they are not): :data:`BROADCAST_VIEW` for ``broadcast_to`` and every view
    taken from it, :data:`READ_ONLY_MEMORY` for memory imported read-only."""

    __slots__ = ("buffer", "strides", "offset", "readonly")

    def __init__(self, buffer, strides: tuple, offset: int = 0, readonly: str = ""):
        self.buffer = buffer
        self.strides = strides
        self.offset = offset
        self.readonly = readonly


_EMPTY = frozenset()


class LazyNode:
    """One node of the lazy graph (see the module docstring)."""

    __slots__ = ("op", "srcs", "dtype", "shape", "arg", "device", "size", "buffers", "computed")

    def __init__(self, op: str, srcs: tuple, dtype, shape: tuple, arg, device):
        self.op = op
        self.srcs = srcs
        self.dtype = dtype
        self.shape = shape
        self.arg = arg
        self.device = device
        #: the buffer leaf holding this node's value once the scheduler computed it on its own
        #: (a reduction used by several expressions is computed once)
        self.computed = None
        if len(srcs) == 2:  # the common case, unrolled (this runs once per operation)
            a, c = srcs
            self.size = 1 + a.size + c.size
            ab, cb = a.buffers, c.buffers
            self.buffers = ab if (cb is ab or not cb) else (cb if not ab else ab | cb)
        elif srcs:
            size = 1
            bufs = _EMPTY
            for s in srcs:
                size += s.size
                sb = s.buffers
                if sb and sb is not bufs:
                    bufs = bufs | sb if bufs else sb
            self.size = size
            if op == "gather":  # the gathered array is read too (it is the arg, not a source)
                bufs = bufs | arg.source.buffers
            self.buffers = bufs
        else:
            self.size = 0
            self.buffers = frozenset((arg.buffer,)) if op == "buffer" else _EMPTY

    @property
    def is_leaf(self) -> bool:
        return not self.srcs

    def __repr__(self) -> str:
        return f"LazyNode({self.op}, {self.dtype}, {self.shape})"


def buffer_node(buffer, dtype, shape: tuple, strides: tuple | None = None, offset: int = 0) -> LazyNode:
    """A leaf over realized memory (contiguous unless ``strides`` are given)."""
    if strides is None:
        strides = contiguous_strides(shape)
    return LazyNode("buffer", (), dtype, tuple(shape), View(buffer, tuple(strides), offset), buffer.device)


def check_valid(node: LazyNode) -> None:
    """Refuse to compute from memory whose contents were lost: TransferError when a buffer
    ``node`` reads was marked invalid by a failed copy into it or by a reset of its device."""
    for buf in node.buffers:
        if not buf.valid:
            from ._errors import TransferError
            raise TransferError(f"an input on {buf.device} holds invalid data (an earlier copy into "
                                "it failed, or its device was reset); recreate that array")
