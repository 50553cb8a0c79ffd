"""The row softmax as one kernel: ``e / sum(e, axis=-1, keepdims=True)`` with
``e = exp(x - max(x, axis=-1, keepdims=True))`` (NumPy's and SciPy's formulation).

Unfused, that graph is three kernels (the max, the sum that absorbs one ``exp``, the elementwise
division that recomputes it) reading ``x`` three times. :func:`softmax_rows_into` recognizes it and
runs :mod:`.kernels.softmax_rows` instead: one pass over memory, one ``exp`` per element. Called by
``_schedule.realize_into``; anything else (another axis, a non-buffer ``x``, rows that are not unit
stride, a device that does not run host kernels) returns False and takes the general path.
"""
from __future__ import annotations

import math

from ._graph import LazyNode, View
from .kernels.cache import get_program
from .kernels.softmax_rows import SoftmaxRowsSpec

__all__ = ["softmax_rows_into", "match_softmax_rows"]

#: devices whose kernels are host code over host-addressable buffers
_HOST_KERNELS = ("cpu", "sim")


def _last_axis_reduce(node: LazyNode, op: str, src: LazyNode) -> bool:
    """``node`` is ``op`` over the last axis of ``src`` (keepdims, no divisor)."""
    arg = node.arg
    return (node.op == "reduce" and getattr(arg, "op", None) == op and node.srcs[0] is src
            and tuple(arg.axes) == (len(src.shape) - 1,) and arg.keepdims and arg.divisor is None
            and node.dtype == src.dtype)


def match_softmax_rows(root: LazyNode):
    """The buffer leaf ``x`` when ``root`` is the row softmax of it (see the module docstring), else
    None."""
    if root.op != "divide" or root.dtype.name not in ("float32", "float64") or not root.shape:
        return None
    e, s = root.srcs
    if e.op != "exp" or e.dtype != root.dtype or e.shape != root.shape or not _last_axis_reduce(s, "sum", e):
        return None
    sub = e.srcs[0]
    if sub.op != "subtract" or sub.dtype != root.dtype:
        return None
    x, m = sub.srcs
    if x.op != "buffer" or x.shape != root.shape or not _last_axis_reduce(m, "max", x):
        return None
    return x


def _row_stride(shape: tuple, strides: tuple):
    """The stride between consecutive rows (last axis unit stride, leading axes merging into one),
    or None."""
    if shape[-1] > 1 and strides[-1] != 1:
        return None
    lead = [(n, st) for n, st in zip(shape[:-1], strides[:-1]) if n != 1]
    for (_, outer), (n_in, inner) in zip(lead, lead[1:]):
        if outer != inner * n_in:
            return None
    return lead[-1][1] if lead else shape[-1]


def softmax_rows_into(root: LazyNode, out: View) -> bool:
    """Compute the row softmax ``root`` into ``out`` with the fused kernel; False (nothing done)
    where it does not apply."""
    if root.device.kind not in _HOST_KERNELS:
        return False
    x = match_softmax_rows(root)
    if x is None:
        return False
    shape = root.shape
    cols, rows = shape[-1], math.prod(shape[:-1])
    if cols == 0 or rows == 0:
        return False
    xv = x.arg
    xs, os_ = _row_stride(shape, tuple(xv.strides)), _row_stride(shape, tuple(out.strides))
    if xs is None or os_ is None:
        return False
    if out.buffer is xv.buffer and (out.offset != xv.offset or xs != os_):
        return False  # an output overlapping x elsewhere than in place
    from ._schedule import pack_args
    size = root.dtype.itemsize
    slots = [cols, xv.buffer.ptr + xv.offset * size, xs, out.buffer.ptr + out.offset * size, os_]
    program = get_program(root.device, SoftmaxRowsSpec(root.dtype.name))
    root.device.launch(program, pack_args(slots), rows, 2 * rows * cols * size, work=rows * cols)
    return True
