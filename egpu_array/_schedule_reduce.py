"""Scheduling of reductions and scans (``"reduce"`` nodes): one generated kernel that absorbs
the reduction's elementwise producers, in row ("inner") or column ("outer") order, cut into chunks
combined by a second step when there are too few outputs to keep every thread busy."""
from __future__ import annotations

import math

from . import profiler
from ._graph import LazyNode, View
from ._dtypes import float64 as _F64
from ._schedule import (ReduceArg, _check_gather, _collapse, _gather_slots, _leaf_strides, _scalar_slots, _stride_class,
                        lower_elementwise, pack_args)
from .kernels import cache as _kcache
from .kernels.cache import get_program
from .kernels.reduction import reduce_arg_layout
from .kernels.reduction_outer import PACK_ELEMS, outer_tile
from .kernels.reduction_outer_arg import ARG_CHUNK_ROWS
from .kernels.reduction_short import SHORT_MAX, SHORT_MIN_OUTPUTS
from .kernels.reduction_streams import STREAMS
from .kernels.spec import REDUCE_OPS, ReduceSpec

__all__ = ["_realize_reduce"]


def _reduce_order(op: str, kshape, kstrides, rstrides) -> str:
    """"outer" (column order) when the last kept dimension, contiguous or broadcast in every
    operand, would otherwise be walked with strided reads: e.g. a sum over axis 0 of a C-contiguous
    matrix, or over axis 1 of a 3-D array (the kept dimensions before the last are a batch)."""
    if REDUCE_OPS[op] or kshape[-1] < 2:
        return "inner"
    if any(st[-1] not in (0, 1) for st in kstrides):
        return "inner"
    if all(st[-1] in (0, 1) for st in rstrides[1:]):  # the reduced rows are contiguous already
        return "inner"
    return "outer"


def _short_rows(device, op: str, order: str, chunks: int, kshape, kstrides, rshape, rstrides, n_inputs: int,
                other_leaves) -> int:
    """The row length a row-order reduction compiles in (kernels.reduction_short), or 0: one kept
    and one reduced dimension, rows of 2..SHORT_MAX elements, many outputs, every input's rows
    packed (strides ``(row length, 1)``) or the input constant (``(0, 0)``); cpu-like devices."""
    if order != "inner" or REDUCE_OPS[op] or chunks > 1 or other_leaves \
            or gpu_blocks(device) or len(kshape) != 1 or len(rshape) != 1:
        return 0
    length = rshape[0]
    if not 2 <= length <= SHORT_MAX or kshape[0] < SHORT_MIN_OUTPUTS:
        return 0
    packed = all((kstrides[k][0], rstrides[k][0]) in ((length, 1), (0, 0)) for k in range(1, 1 + n_inputs))
    return length if packed else 0


#: column-order reductions of fewer elements keep the general kernel (no second kernel to
#: compile for small arrays, where the runs of rows gain nothing)
PACK_MIN_ELEMS = 1 << 16


def _packed_rows(order: str, acc, kshape, kstrides, rshape, rstrides, n_inputs: int, other_leaves) -> bool:
    """Whether a column-order reduction walks runs of rows as one wide row (kernels.reduction_outer
    PACK_ELEMS): one reduced dimension, a narrow last kept dimension, every input's rows following
    one another in memory (strides ``(1, width)``) or the input constant along both (``(0, 0)``)."""
    if order != "outer" or other_leaves or len(rshape) != 1:
        return False
    width = kshape[-1]
    if width > min(PACK_ELEMS, outer_tile(acc)) // 2 or width * rshape[0] < PACK_MIN_ELEMS:
        return False
    return all((kstrides[k][-1], rstrides[k][0]) in ((1, width), (0, 0)) for k in range(1, 1 + n_inputs))


#: a reduction with too few outputs to share is cut into about this many chunks per thread (in
#: row order times the STREAMS that one call walks side by side: the cpu device hands a thread
#: several chunks per call, kernels.reduction_streams walks them as parallel memory streams)
CHUNKS_PER_THREAD = 8


def _reduce_chunks(op: str, order: str, kshape, n_out: int, n_red: int, threads: int, acc,
                   chunks: int | None = None) -> tuple:
    """(chunks, work items) of a reduction: the reduced space is cut into chunks (a second step
    combines them) when there are too few outputs (inner) or column tiles (outer) to keep every
    thread busy with even shares (argmax/argmin too: their partials are each chunk's index, see
    kernels.reduction_arg.generate_arg_finalize)."""
    if order == "outer":
        inner = kshape[-1]
        tile = outer_tile(acc, op)
        units, per_row = n_out // inner * -(-inner // tile), min(inner, tile)
    else:
        units, per_row = n_out, 1
    if chunks is None:
        chunks = 1
        # one thread too: row order walks several chunks side by side (kernels.reduction_streams)
        if (threads > 1 or order == "inner") and not REDUCE_OPS[op] and units < 4 * threads \
                and n_out * n_red >= (1 << 18):
            want = -(-CHUNKS_PER_THREAD * threads * (STREAMS if order == "inner" else 1) // units)
            chunks = max(1, min(want, n_red * per_row // (1 << 14), n_red))
    if order == "outer" and op in ("argmax", "argmin"):  # (given chunks too: tests of the two-phase path)
        chunks = max(chunks, -(-n_red // ARG_CHUNK_ROWS))  # the kernel's rows are int32 within a chunk
    return chunks, units * chunks


def gpu_blocks(device) -> bool:
    """Whether ``device``'s target has GPU block forms of reductions (kernels.ptx_reduce: the cuda
    device, and the tests' grid emulation of it): thousands of threads, row order only."""
    return "reduce" in getattr(getattr(device, "target", None), "generators", {})


#: GPU targets: rows of at least this many contiguous elements (and reductions of at least
#: GPU_BLOCK_MIN elements per output) are reduced by a thread block each, not a thread: a warp's
#: loads then read neighbouring elements instead of one element from each of 32 rows
GPU_BLOCK_ROW = 32
GPU_BLOCK_MIN = 128
#: GPU targets: threads to keep busy per unit of ``device.num_threads``, and the fewest rows of a
#: chunk of a reduction down columns (walk "spread")
GPU_THREADS_PER_UNIT = 512
GPU_SPREAD_ROWS = 32


def _gpu_walk(op: str, n_out: int, n_red: int, rshape, rstrides, threads: int, chunks: int) -> tuple:
    """(walk, chunks) of a row-order reduction on a GPU target (kernels.spec.ReduceSpec.walk):
    contiguous rows long enough for a block, one block per output ("blocks"; with chunks > 1
    the chunked block kernel already is one); reduced dimensions that are not contiguous (a sum
    down the columns of a matrix) with too few outputs to fill the GPU: "spread" chunks, each
    thread one chunk of one output, neighbouring threads on neighbouring outputs (coalesced)."""
    if REDUCE_OPS[op] or not rshape:
        return "", chunks
    if all(st[-1] in (0, 1) for st in rstrides[1:]):  # every input's rows are contiguous
        long_rows = rshape[-1] >= GPU_BLOCK_ROW and n_red >= GPU_BLOCK_MIN
        return ("blocks" if long_rows and chunks == 1 else ""), chunks
    want = -(-threads * GPU_THREADS_PER_UNIT // n_out)
    spread = max(1, min(want, n_red // GPU_SPREAD_ROWS))
    return ("spread", spread) if spread > 1 else ("", 1)


def _subset_collapse(shape, strides_list, dims):
    return _collapse([shape[d] for d in dims], [[st[d] for d in dims] for st in strides_list])


_LAYOUT_SIZE: dict = {}  # ReduceSpec -> its argument block size (checked on every launch)

#: (the reduction, its buffer leaf's dtype/shape/strides, the output's strides, id(device)) -> _Plan
_PLANS: dict = {}


class _Plan:
    """A reduction of a buffer leaf seen before: the argument slots the general path built, with
    the slots that change between calls (the two pointers, the divisor, the partials) refilled,
    and the launch's sizes. The device is held so that ``id(device)`` in the key is never reused."""

    __slots__ = ("device", "program", "spec", "slots", "ptr_out", "ptr_in", "div", "part", "part_bytes",
                 "items", "nbytes", "work", "div_value", "spares")


def _plan_key(root: LazyNode, out: View):
    """The plan key of a reduction whose source is a buffer leaf (the eager ``sum(x)`` case)."""
    src = root.srcs[0]
    if src.op != "buffer":
        return None
    arg = root.arg
    return (arg.op, arg.axes, arg.keepdims, arg.acc, arg.divisor is None, root.dtype, src.dtype, src.shape,
            src.arg.strides, out.strides, id(root.device))


def _run_plan(plan: _Plan, root: LazyNode, out: View) -> None:
    """Launch a planned reduction into ``out`` (what the general path would launch)."""
    device = plan.device
    slots = list(plan.slots)
    slots[plan.ptr_out] = out.buffer.ptr + out.offset * root.dtype.itemsize
    v = root.srcs[0].arg
    slots[plan.ptr_in] = v.buffer.ptr + v.offset * root.srcs[0].dtype.itemsize
    divisor = root.arg.divisor
    divisor = divisor if divisor is not None else 1.0
    if divisor != plan.div_value or not divisor:  # (the planned slot holds the bits of a nonzero value)
        slots[plan.div] = _scalar_slots(divisor, _F64)[0]
    partial = None
    if plan.part_bytes:
        if plan.spares is not None:
            try:  # a partials buffer of an earlier call (list.pop: one step, safe between threads)
                partial = plan.spares.pop()
            except IndexError:
                pass
        if partial is None:
            partial = device.allocator.alloc(plan.part_bytes)
        slots[plan.part] = partial.ptr
    if profiler._active:
        profiler.count("cache_hits")
    if _kcache.recorders:  # the spec is requested again: tell the recorders, as get_program does
        for r in _kcache.recorders:
            r(device, plan.spec)
    device.launch(plan.program, pack_args(slots), plan.items, plan.nbytes, work=plan.work)
    if plan.spares is not None and partial is not None:
        plan.spares.append(partial)  # (the cpu device's launch has finished with it)


#: partials buffers up to this size stay with their plan for the next call (cpu devices only,
#: whose launches are synchronous); larger ones go back to the allocator
SPARE_BYTES = 65536


def _remember(key, root, spec, program, slots, items, nbytes, work, part_bytes) -> None:
    lay = reduce_arg_layout(spec)
    plan = _Plan()
    plan.device, plan.program, plan.spec, plan.slots = root.device, program, spec, tuple(slots)
    plan.ptr_out, plan.ptr_in = lay["operands"][0][0], lay["operands"][1][0]
    plan.div, plan.part, plan.part_bytes = lay["divisor"], lay["partials"], part_bytes
    plan.items, plan.nbytes, plan.work = items, nbytes, work
    divisor = root.arg.divisor
    plan.div_value = divisor if divisor is not None else 1.0  # the value whose bits slots[div] holds
    plan.spares = [] if part_bytes and root.device.kind == "cpu" and part_bytes <= SPARE_BYTES else None
    if len(_PLANS) > 1024:
        _PLANS.clear()
    _PLANS[key] = plan


def _realize_reduce(root: LazyNode, out: View, chunks: int | None = None) -> None:
    """Compute a reduction/scan node into ``out`` (one kernel, or two with partial sums)."""
    key = _plan_key(root, out) if chunks is None else None
    if key is not None:
        plan = _PLANS.get(key)
        if plan is not None and plan.device is root.device:
            return _run_plan(plan, root, out)
    arg: ReduceArg = root.arg
    src = root.srcs[0]
    in_shape = src.shape
    nd = len(in_shape)
    axes = arg.axes
    kept_dims = [d for d in range(nd) if d not in axes]
    scan = REDUCE_OPS[arg.op]
    n_out = math.prod(in_shape[d] for d in kept_dims)
    n_red = math.prod(in_shape[d] for d in axes)
    if n_out == 0 or (scan and n_red == 0):
        return
    expr, inputs, consts, iotas, gathers = lower_elementwise(src)
    # the output's strides in the input's index space (0 along reduced axes, except for scans)
    out_st = [0] * nd
    if scan or arg.keepdims:
        for d in range(nd):
            out_st[d] = out.strides[d] if (scan or d in kept_dims) else 0
    else:
        for k, d in enumerate(kept_dims):
            out_st[d] = out.strides[k]
    operand_strides = [out_st] + [_leaf_strides(n, in_shape) for n in inputs] \
        + [_leaf_strides(n, in_shape) for n in iotas]
    kshape, kstrides = _subset_collapse(in_shape, operand_strides, kept_dims)
    rshape, rstrides = _subset_collapse(in_shape, operand_strides, list(axes))
    device = root.device
    threads = getattr(device, "num_threads", 1)
    acc = arg.acc
    # column order suits CPU threads (long row streams, L1 accumulators); on a GPU one thread per
    # output, adjacent outputs in adjacent threads, already reads coalesced rows
    gpu = gpu_blocks(device)
    order = _reduce_order(arg.op, kshape, kstrides, rstrides) if not gpu else "inner"
    is_arg = arg.op in ("argmax", "argmin")
    walk, chosen = "", chunks is None
    chunks, items = _reduce_chunks(arg.op, order, kshape, n_out, n_red, threads, acc, chunks)
    if gpu and chosen:  # (row order: a work item per output and chunk)
        walk, chunks = _gpu_walk(arg.op, n_out, n_red, rshape, rstrides, threads, chunks)
        items = n_out * chunks
    # partials: one accumulator per chunk, or for argmax/argmin an int64 index (kernels.ptx_reduce)
    part_bytes = n_out * chunks * (8 if is_arg else acc.itemsize) if chunks > 1 else 0
    partial = device.allocator.alloc(part_bytes) if part_bytes else None
    spec = ReduceSpec(
        op=arg.op, expr=expr,
        in_dtypes=tuple(n.dtype.name for n in inputs),
        arg_dtypes=tuple(n.dtype.name for n in consts),
        n_idx=len(iotas), expr_dtype=src.dtype.name, acc_dtype=acc.name, out_dtype=root.dtype.name,
        n_kept=len(kshape), n_red=len(rshape),
        # outer: the classes describe the kept (vectorized) dimension instead
        classes=tuple(_stride_class(st[-1]) for st in (kstrides if order == "outer" else rstrides)),
        post="divide" if arg.divisor is not None else "",
        chunked=chunks > 1,
        order=order,
        short=_short_rows(device, arg.op, order, chunks, kshape, kstrides, rshape, rstrides, len(inputs),
                          iotas or gathers),
        # (argmax/argmin: kernels.reduction_outer_arg walks rows as they are)
        packed=not is_arg and _packed_rows(order, acc, kshape, kstrides, rshape, rstrides, len(inputs),
                                           iotas or gathers),
        walk=walk,
    )
    program = get_program(device, spec)
    slots = list(kshape) + list(rshape)
    views = [out] + [n.arg for n in inputs]
    dts = [root.dtype] + [n.dtype for n in inputs]
    for k in range(1 + len(inputs)):
        v = views[k]
        slots.append(v.buffer.ptr + v.offset * dts[k].itemsize)
        slots.extend(kstrides[k] + rstrides[k])
    for k in range(len(iotas)):
        slots.extend(kstrides[1 + len(inputs) + k] + rstrides[1 + len(inputs) + k])
    for c in consts:
        slots.extend(_scalar_slots(c.arg, c.dtype))
    divisor = arg.divisor if arg.divisor is not None else 1.0
    slots.extend(_scalar_slots(divisor, _F64) + [chunks, -(-n_red // chunks)])
    slots.append(partial.ptr if partial is not None else 0)
    _gather_slots(slots, gathers)
    size = _LAYOUT_SIZE.get(spec)
    if size is None:
        size = _LAYOUT_SIZE[spec] = reduce_arg_layout(spec)["size"]
    assert len(slots) == size
    args = pack_args(slots)
    nbytes = sum(math.prod(n.shape) * n.dtype.itemsize for n in inputs) + n_out * root.dtype.itemsize
    if key is not None and len(inputs) == 1 and not consts and not iotas and not gathers:
        _remember(key, root, spec, program, slots, items, nbytes, n_out * max(n_red, 1),
                  part_bytes)
    # chunked: one launch of a two-phase kernel (chunks in parallel, then the finalize step)
    device.launch(program, args, items, nbytes, work=n_out * max(n_red, 1))
    _check_gather(args, gathers)
