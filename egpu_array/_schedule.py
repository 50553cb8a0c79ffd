"""The scheduler: turns a lazy expression into one fused kernel launch.

A chain of elementwise ops over buffers, scalars and index leaves becomes one ElementwiseSpec;
broadcasting and views become strides (0 for broadcast dimensions); the output's unit-stride
dimension is walked last, and dimensions that are contiguous for every operand merge, so most
launches are 1-D. Inputs read transposed (unit stride along another dimension than the output's)
make a tiled kernel: blocks of those two dimensions (``kernels.elementwise_tiles``).
Shapes, strides, pointers and scalar values go into the argument block, never into the spec, so
the compiled kernel is reused for new shapes/data.
"""
from __future__ import annotations

import ctypes
import dataclasses
import math
import struct
from typing import NamedTuple

from . import profiler
from ._graph import LazyNode, View, check_valid
from ._schedule_plans import (contiguous_of, expression_plan, expression_plan_key, known_spec, leaf_plan,
                              remember_expression, remember_plan, remember_spec)
from .kernels import elementwise as _ew
from . import _schedule_layout as _layout
from ._schedule_layout import stride_class as _stride_class
from .kernels import elementwise_tiles as _tiles
from .kernels.cache import get_program
from .kernels.copies import LINE_BYTES
from .kernels.spec import ElementwiseSpec

__all__ = ["realize_into", "lower_elementwise", "ReduceArg", "GatherArg", "Lowered"]


class GatherArg:
    """What a ``"gather"`` node reads: ``source`` (a buffer leaf laid out in the node's index space,
    stride 0 along the gathered positions), indexed by its sources' values along axes of the given
    ``extents`` and element ``strides``. Out-of-range indices raise IndexError after the launch,
    naming ``func`` (the public function that made the gather: take, __getitem__, ...)."""

    __slots__ = ("source", "extents", "strides", "func")

    def __init__(self, source, extents, strides, func: str):
        self.source, self.extents, self.strides, self.func = source, tuple(extents), tuple(strides), func


class Lowered(NamedTuple):
    """A lowered expression: its program and its leaves in the program's numbering."""
    expr: tuple
    inputs: list
    consts: list
    iotas: list
    gathers: list  # (extent, stride, func) of each gathered axis, in slot order


class ReduceArg:
    """What a ``"reduce"`` node computes: ``op`` over ``axes`` of its source, in ``acc`` dtype.

    ``divisor`` (a float, or None) divides the result (mean, var); ``keepdims`` keeps the reduced
    axes as size 1. For scans (``cumsum``/``cumprod``) ``axes`` holds the one scanned axis.
    """

    __slots__ = ("op", "axes", "keepdims", "acc", "divisor")

    def __init__(self, op, axes, keepdims, acc, divisor=None):
        self.op, self.axes, self.keepdims, self.acc, self.divisor = op, tuple(axes), keepdims, acc, divisor


def materialize(node: LazyNode) -> LazyNode:
    """Compute ``node`` into a new contiguous buffer; returns the buffer leaf."""
    if node.op == "buffer":
        if not node.arg.buffer.valid:
            check_valid(node)
        return node
    if node.computed is None:
        node.computed = compute_new(node)
    return node.computed


def compute_new(node: LazyNode) -> LazyNode:
    """Compute ``node`` into new contiguous device memory; the buffer leaf holding it."""
    buf = node.device.allocator.alloc(math.prod(node.shape) * node.dtype.itemsize)
    view = View(buf, contiguous_of(node.shape), 0)
    realize_into(node, view)
    return LazyNode("buffer", (), node.dtype, node.shape, view, node.device)


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


_SLOT_CACHE: dict = {}  # keyed by value: zeros (0.0 == -0.0) are never cached


def _scalar_slots(value, dtype) -> list:
    """A scalar as 8-byte argument slots (the component's bits in the low bytes)."""
    key = (type(value), value, dtype)
    hit = _SLOT_CACHE.get(key) if _shareable(value) else None
    if hit is not None:
        return hit
    slots = _scalar_slots_uncached(value, dtype)
    if len(_SLOT_CACHE) > 4096:
        _SLOT_CACHE.clear()
    _SLOT_CACHE[key] = slots
    return slots


def _shareable(value) -> bool:
    """Whether equal values of this scalar are interchangeable (not so for signed zeros)."""
    if isinstance(value, complex):
        return value.real != 0 and value.imag != 0
    return value != 0 or not isinstance(value, float)


def _scalar_slots_uncached(value, dtype) -> list:
    kind = dtype.kind
    if kind == "c":
        comp = dtype.real_dtype
        return _scalar_slots_uncached(complex(value).real, comp) + _scalar_slots_uncached(complex(value).imag, comp)
    if kind == "f":
        fmt = "<f" if dtype.bits == 32 else "<d"
        try:
            raw = int.from_bytes(struct.pack(fmt, float(value)), "little")
        except OverflowError:  # beyond float32's range: rounds to +-inf, as a cast does
            raw = int.from_bytes(struct.pack(fmt, math.copysign(math.inf, float(value))), "little")
        return [raw - (1 << 64) if raw >= (1 << 63) else raw]
    v = int(value) & ((1 << dtype.bits) - 1)
    return [v - (1 << 64) if v >= (1 << 63) else v]


def lower_elementwise(root: LazyNode, stand_in: tuple | None = None):
    """The flat expression program of the fused kernel computing ``root``, and its operands.
    ``stand_in``: ``(node, leaf)``, a product read through ``leaf`` (the GEMM's own accumulator,
    see _matmul.realize_matmul) instead of being computed first; local to this lowering, so other
    threads lowering expressions of the same node never see it.

    Returns ``(program, inputs, consts, iotas)``: the program is a tuple of instructions in
    dependency order (see kernels.spec), the leaves are listed in the order the program numbers them.
    """
    memo: dict = {}
    prog: list = []
    inputs: list = []
    consts: list = []
    iotas: list = []
    buf_index: dict = {}
    gathers: list = []
    append = prog.append

    memo_get = memo.get

    def visit(n: LazyNode) -> int:
        k = memo_get(id(n))
        if k is not None:
            return k
        # chains of binary ops (x = x*a + b, ...) are walked down their first sources iteratively
        top = n
        spine = []
        while len(n.srcs) == 2 and n.op != "gather" and n.op != "matmul" and memo_get(id(n)) is None:
            spine.append(n)
            n = n.srcs[0]
        if memo_get(id(n)) is None:
            memo[id(n)] = lower_one(n)
        for m in reversed(spine):
            s0, s1 = m.srcs
            k1 = memo_get(id(s1))
            if k1 is None:
                k1 = visit(s1)
            memo[id(m)] = len(prog)
            append((m.op, s1.dtype.name, memo[id(s0)], k1))
        return memo[id(top)]

    def lower_one(n: LazyNode) -> int:
        """The instruction index of a node that is not a two-source op (its sources first)."""
        srcs = n.srcs
        op = n.op
        if not srcs:
            return _lower_leaf(n, prog, inputs, consts, iotas, buf_index)
        if op == "reduce" or op == "matmul":  # a reduction (or product) feeding an expression is computed first
            leaf = stand_in[1] if stand_in is not None and n is stand_in[0] else materialize(n)
            return _lower_leaf(leaf, prog, inputs, consts, iotas, buf_index)
        if op == "gather":
            ga = n.arg
            src_k = prog[_lower_leaf(ga.source, prog, inputs, consts, iotas, buf_index)][1]
            idx = [visit(s) for s in srcs]
            ins = ("gather", src_k, len(gathers)) + tuple(idx)
            for e, st in zip(ga.extents, ga.strides):
                gathers.append((e, st, ga.func))
        elif op == "cast":
            ins = ("cast", srcs[0].dtype.name, n.dtype.name, visit(srcs[0]))
        else:
            ins = (op, srcs[-1].dtype.name) + tuple([visit(s) for s in srcs])
        append(ins)
        return len(prog) - 1

    visit(root)
    return Lowered(tuple(prog), inputs, consts, iotas, gathers)


def _lower_leaf(n: LazyNode, prog, inputs, consts, iotas, buf_index) -> int:
    op = n.op
    if op == "buffer":
        v = n.arg
        vkey = (id(v.buffer), v.strides, v.offset, n.shape, id(n.dtype))
        k = buf_index.get(vkey)
        if k is not None:
            return k[1]
        ins = ("in", len(inputs))
        inputs.append(n)
        buf_index[vkey] = (ins, len(prog))
    elif op == "const":  # equal scalars share one argument slot (zeros don't: 0.0 == -0.0)
        ckey = (type(n.arg), n.arg, id(n.dtype))
        k = buf_index.get(ckey) if _shareable(n.arg) else None
        if k is not None:
            return k[1]
        ins = ("arg", len(consts))
        consts.append(n)
        buf_index[ckey] = (ins, len(prog))
    else:
        ins = ("idx", len(iotas))
        iotas.append(n)
    prog.append(ins)
    return len(prog) - 1


#: (find, realize) set by egpu_array._matmul: the "matmul" node an expression can absorb as the
#: epilogue of a GEMM kernel, and the function that launches that kernel
MATMUL_HOOKS = None


def realize_into(root: LazyNode, out: View) -> None:
    """Compute ``root`` into the memory ``out`` describes (``root.shape`` elements); TransferError
    when an input's memory holds invalid data (:func:`check_valid`)."""
    check_valid(root)
    if root.op == "reduce":
        return _realize_reduce(root, out)
    found = leaf_plan(root, out)  # an op over leaves seen before: its kernel is known
    if found is not None and found[1] is not None:
        return _run_plan(root, out, *found[1:])
    if MATMUL_HOOKS is not None:  # a product with this expression as its epilogue: one GEMM
        mm = MATMUL_HOOKS[0](root)
        if mm is not None:
            return MATMUL_HOOKS[1](root, out, mm)
    if root.op == "positive" and root.srcs[0].op == "buffer":  # a transposing copy: in tiles
        from ._copying import transposing_copy
        if transposing_copy(root, out):
            return
    if root.op == "gather":  # a gather on its own (take, x[idx]): the plain gather kernel
        from ._gather import gather_into
        if gather_into(root, out):
            return
    if root.op == "divide":  # exp(x - max) / sum(exp(x - max)) over rows: one fused kernel
        from ._schedule_softmax import softmax_rows_into
        if softmax_rows_into(root, out):
            return
    shape = root.shape
    total = 1
    for n in shape:
        total *= n
    if total == 0:
        return
    lowered = lower_elementwise(root)
    expr, inputs, consts, iotas, gathers = lowered
    # an expression over contiguous leaves seen before: its kernel is known (one unit-stride loop)
    ekey = expression_plan_key(root, out, lowered) if found is None else None
    if ekey is not None:
        plan = expression_plan(ekey, root.device)
        if plan is not None:
            return _run_plan(root, out, plan, inputs, consts)
    operand_strides = [list(out.strides)] + [_leaf_strides(n, shape) for n in inputs] \
        + [_leaf_strides(n, shape) for n in iotas]
    cshape, cstrides = _collapse(*_layout.output_rows_last(list(shape), operand_strides))
    device = root.device
    triple = getattr(device.target, "triple", "")
    tiled = None if gathers or not _tiles.tiles(triple) else _layout.tiled_layout(cshape, cstrides, len(inputs), total)
    if tiled is not None:  # inputs read transposed: blocks of the last two dimensions
        cshape, cstrides, classes = tiled
    else:
        classes = tuple([_stride_class(st[-1]) for st in cstrides])
    stream = (len(cshape) == 1 or tiled is not None) and classes[0] == "c" \
        and _ew.streams_output(triple, expr, root.dtype, total * root.dtype.itemsize)
    if stream and tiled is not None:  # (streamed blocks: the output's rows on cache lines)
        size = root.dtype.itemsize
        stream = (out.buffer.ptr + out.offset * size) % LINE_BYTES == 0 \
            and all(st * size % LINE_BYTES == 0 for st in cstrides[0][:-1])
    fields = (expr, tuple([n.dtype.name for n in inputs]), tuple([n.dtype.name for n in consts]), len(iotas),
              root.dtype.name, len(cshape), classes, stream, tiled is not None)
    known = known_spec(device, fields)  # (the same structure as an earlier launch: no new spec)
    if known is not None:
        spec, program = known
    else:
        spec = ElementwiseSpec(expr=expr, in_dtypes=fields[1], arg_dtypes=fields[2], n_idx=fields[3],
                               out_dtype=fields[4], ndim=fields[5], classes=classes,
                               fast_trig=_has_real_trig(expr), stream=stream, tiled=tiled is not None)
        program = get_program(device, spec)
        remember_spec(device, fields, spec, program)
    if found is not None:
        remember_plan(found[0], root, spec, program, found[2], found[3], lowered)
    elif ekey is not None:
        remember_expression(ekey, root, spec, program, inputs)
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
    _gather_slots(slots, gathers)
    nbytes = total * root.dtype.itemsize + sum(math.prod(n.shape) * n.dtype.itemsize for n in inputs)
    if tiled is None:
        return _launch(device, program, spec, slots, total, nbytes, gathers)
    side = _tiles.tile_side(spec)  # work items are blocks
    blocks = math.prod(cshape[:-2]) * -(-cshape[-2] // side) * -(-cshape[-1] // side)
    _launch(device, program, spec, slots, blocks, nbytes, gathers, total)


def _run_plan(root: LazyNode, out: View, plan, inputs: list, consts: list) -> None:
    """Launch a remembered plan (see _schedule_plans): one unit-stride loop over every operand."""
    total = 1
    for n in root.shape:
        total *= n
    if total == 0:
        return
    if profiler._active:
        profiler.count("cache_hits")
    slots = [total, out.buffer.ptr + out.offset * root.dtype.itemsize, 1]
    for n in inputs:
        v = n.arg
        slots.append(v.buffer.ptr + v.offset * n.dtype.itemsize)
        slots.append(1)
    for c in consts:
        slots.extend(_scalar_slots(c.arg, c.dtype))
    slots.append(0)  # the gather error flag (no gathers)
    program, spec = plan.program, plan.spec
    if plan.out_size and (total * plan.out_size >= _ew.STREAM_MIN_BYTES) != spec.stream:
        program, spec = plan.switched()  # the kernel with (or without) non-temporal stores
    if plan.fast_trig:
        return _launch(root.device, program, spec, slots, total, total * plan.item_bytes, ())
    n = len(slots)
    t = _ARG_TYPES.get(n)
    if t is None:
        t = _ARG_TYPES[n] = ctypes.c_int64 * n
    root.device.launch(program, t(*slots), total, total * plan.item_bytes, work=total)


def _launch(device, program, spec, slots: list, total: int, nbytes: int, gathers, work: int | None = None) -> None:
    """Run an elementwise program over ``total`` items (``work``: the elements they cover, default
    ``total``) with its argument ``slots`` (the gather error flag last); a fast-trig kernel that
    met huge arguments is rerun with the wide reduction."""
    work = total if work is None else work
    if spec.fast_trig:
        args = pack_args(slots + [0])
        device.launch(program, args, total, nbytes, work=work)
        if not args[len(slots)]:
            return _check_gather(args, gathers)
        # some |argument| of sin/cos/tan was huge: recompute with the wide range reduction
        profiler.note(f"{spec.name}: huge trig arguments, recomputed with the wide reduction")
        program = get_program(device, dataclasses.replace(spec, fast_trig=False))
    args = pack_args(slots)
    device.launch(program, args, total, nbytes, work=work)
    _check_gather(args, gathers)


_TRIG = frozenset({"sin", "cos", "tan"})
#: complex functions whose IR (kernels.complex_math) evaluates a sine or cosine
_COMPLEX_TRIG = frozenset({"sin", "cos", "tan", "sinh", "cosh", "tanh", "exp", "expm1", "pow"})


def _has_real_trig(expr: tuple) -> bool:
    """Whether the program evaluates sines or cosines (real sin/cos/tan, or complex functions
    built on them): its kernel then takes the fast range reduction and retries the wide one
    where a lane needs it."""
    return any((ins[0] in _TRIG and ins[1] in ("float32", "float64"))
               or (ins[0] in _COMPLEX_TRIG and ins[1] in ("complex64", "complex128")) for ins in expr)


def pack_args(slots: list):
    """The kernel argument block: a ctypes int64 array (its address is what kernels receive).

    Pointers above 2**63 do not occur in user space; every slot already fits an int64."""
    n = len(slots)
    t = _ARG_TYPES.get(n)
    if t is None:
        t = _ARG_TYPES[n] = ctypes.c_int64 * n
    return t(*slots)


_ARG_TYPES: dict = {}  # slot count -> ctypes array type


def _gather_slots(slots: list, gathers: list) -> None:
    for extent, stride, _ in gathers:
        slots.extend((extent, stride))
    slots.append(0)  # error flag, set by the kernel on an out-of-range gather index


def _check_gather(args, gathers) -> None:
    if gathers and args[-1]:
        raise gather_index_error([f for _, _, f in gathers], [e for e, _, _ in gathers])


def gather_index_error(funcs, sizes) -> IndexError:
    """The IndexError of an index outside ``[-n, n)`` met by gathers that ``funcs`` made along
    axes of ``sizes`` (a kernel has one error flag for all its gathers: every one is named)."""
    names, sizes = ", ".join(sorted(set(funcs))), sorted(set(sizes))
    if len(sizes) == 1:
        return IndexError(f"{names}: an index is out of bounds for an axis of size {sizes[0]} "
                          f"(expected values in [-{sizes[0]}, {sizes[0]}))")
    return IndexError(f"{names}: an index is out of bounds for an axis of one of the sizes {sizes} "
                      f"(expected values in [-n, n) for an axis of size n)")


from ._schedule_reduce import _realize_reduce  # noqa: E402  (reduce nodes; it imports from here)
