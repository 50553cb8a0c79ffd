"""The scheduler: turns a lazy expression into one fused kernel launch.

A chain of elementwise ops over buffers, scalars and index leaves becomes one ElementwiseSpec;
broadcasting and views become strides (0 for broadcast dimensions); dimensions that are contiguous
for every operand merge, so most launches are 1-D. Shapes, strides, pointers and scalar values go
into the argument block, never into the spec, so the compiled kernel is reused for new shapes/data.
"""
from __future__ import annotations

import struct

import numpy as np

from ._graph import LazyNode, View, contiguous_strides
from .kernels.cache import get_program
from .kernels.spec import ElementwiseSpec

__all__ = ["realize_into", "lower_elementwise"]


def _leaf_strides(node: LazyNode, out_shape: tuple) -> list:
    """Strides of a leaf in the output's index space (0 where broadcast)."""
    nd = len(out_shape)
    lead = nd - len(node.shape)
    if node.op == "buffer":
        own = node.arg.strides
    else:  # iota: 1 along its axis
        own = tuple(1 if d == node.arg else 0 for d in range(len(node.shape)))
    st = [0] * nd
    for d, (n, s) in enumerate(zip(node.shape, own)):
        st[lead + d] = 0 if (n == 1 and out_shape[lead + d] != 1) else s
    return st


def _collapse(shape, operand_strides):
    """Drop unit dimensions and merge dimensions that are contiguous for every operand."""
    keep = [d for d, n in enumerate(shape) if n != 1]
    shape = [shape[d] for d in keep]
    strides = [[st[d] for d in keep] for st in operand_strides]
    if not shape:
        return [1], [[1] for _ in strides]
    out_shape = [shape[0]]
    out_strides = [[st[0]] for st in strides]
    for d in range(1, len(shape)):
        if all(st[d - 1] == st[d] * shape[d] for st in strides):
            out_shape[-1] *= shape[d]
            for o, st in zip(out_strides, strides):
                o[-1] = st[d]
        else:
            out_shape.append(shape[d])
            for o, st in zip(out_strides, strides):
                o.append(st[d])
    return out_shape, out_strides


def _stride_class(s: int) -> str:
    return "c" if s == 1 else ("0" if s == 0 else "s")


_PACK = {"f": "<d", "c": "<d"}


def _scalar_slots(value, dtype) -> list:
    """A scalar as 8-byte argument slots (the component's bits in the low bytes)."""
    kind = dtype.kind
    if kind == "c":
        comp = dtype.real_dtype
        return _scalar_slots(complex(value).real, comp) + _scalar_slots(complex(value).imag, comp)
    if kind == "f":
        fmt = "<f" if dtype.bits == 32 else "<d"
        raw = int.from_bytes(struct.pack(fmt, float(value)), "little")
        return [raw - (1 << 64) if raw >= (1 << 63) else raw]
    v = int(value) & ((1 << dtype.bits) - 1)
    return [v - (1 << 64) if v >= (1 << 63) else v]


def lower_elementwise(root: LazyNode):
    """The spec of the fused kernel computing ``root`` and its operands.

    Returns ``(expr, inputs, consts, iotas)``: the expression tuple and the leaf nodes in the order
    the spec numbers them.
    """
    memo: dict = {}
    inputs: list = []
    consts: list = []
    iotas: list = []
    buf_index: dict = {}

    def walk(n: LazyNode):
        key = id(n)
        e = memo.get(key)
        if e is not None:
            return e
        op = n.op
        if op == "buffer":
            vkey = (id(n.arg.buffer), n.arg.strides, n.arg.offset, n.shape, n.dtype)
            k = buf_index.get(vkey)
            if k is None:
                k = buf_index[vkey] = len(inputs)
                inputs.append(n)
            e = ("in", k)
        elif op == "const":
            e = ("arg", len(consts))
            consts.append(n)
        elif op == "iota":
            e = ("idx", len(iotas))
            iotas.append(n)
        elif op == "cast":
            e = ("cast", n.srcs[0].dtype.name, n.dtype.name, walk(n.srcs[0]))
        else:
            e = (op, n.srcs[-1].dtype.name) + tuple(walk(s) for s in n.srcs)
        memo[key] = e
        return e

    return walk(root), inputs, consts, iotas


def realize_into(root: LazyNode, out: View) -> None:
    """Compute ``root`` into the memory ``out`` describes (``root.shape`` elements)."""
    shape = root.shape
    total = 1
    for n in shape:
        total *= n
    if total == 0:
        return
    expr, inputs, consts, iotas = lower_elementwise(root)
    operand_strides = [list(out.strides)] + [_leaf_strides(n, shape) for n in inputs] \
        + [_leaf_strides(n, shape) for n in iotas]
    cshape, cstrides = _collapse(list(shape), operand_strides)
    spec = ElementwiseSpec(
        expr=expr,
        in_dtypes=tuple(n.dtype.name for n in inputs),
        arg_dtypes=tuple(n.dtype.name for n in consts),
        n_idx=len(iotas),
        out_dtype=root.dtype.name,
        ndim=len(cshape),
        classes=tuple(_stride_class(st[-1]) for st in cstrides),
    )
    device = root.device
    program = get_program(device, spec)
    slots = list(cshape)
    n_mem = 1 + len(inputs)
    views = [out] + [n.arg for n in inputs]
    dts = [root.dtype] + [n.dtype for n in inputs]
    for k in range(n_mem):
        v = views[k]
        slots.append(v.buffer.ptr + v.offset * dts[k].itemsize)
        slots.extend(cstrides[k])
    for k in range(len(iotas)):
        slots.extend(cstrides[n_mem + k])
    for c in consts:
        slots.extend(_scalar_slots(c.arg, c.dtype))
    args = np.array(slots, dtype=np.int64)
    nbytes = total * root.dtype.itemsize + sum(int(np.prod(n.shape)) * n.dtype.itemsize for n in inputs)
    device.launch(program, args.ctypes.data, total, nbytes)
