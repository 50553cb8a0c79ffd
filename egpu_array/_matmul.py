"""matmul on generated GEMM kernels (kernels.gemm): the lazy node, blocking, workspace, launch.

``matmul`` of float32/float64 arrays builds a lazy ``"matmul"`` node over its two (cast) operands;
``arg`` is a :class:`MatmulArg` with the standard's 1-D rules. When an elementwise expression over
that node is realized, the scheduler (``_schedule.realize_into``, through :data:`HOOKS`) asks
:func:`find_fusable` for the product under it and :func:`realize_matmul` runs ONE GEMM kernel whose
output writes apply the rest of the expression (bias, activation, scaling: the epilogue), so
``maximum(x @ w + b, 0)`` is one launch. Anything the epilogue cannot absorb (a gather, another
dtype for the result, a broadcast of the product) computes the product on its own first.

Products with one output column (matrix @ vector) are not built here: ``_linalg_funcs`` keeps them
row-wise dot products, which read x1 once (4-5x faster than packing it for 16-wide tiles).
Scaling and accumulation (BLAS's alpha and beta) are epilogues like any other: ``2 * (a @ b) + 0.5 * c``
is one launch. Integer and complex products keep the reduction form of ``_linalg_funcs`` (exact
integer wrap-around, NumPy's complex rounding).

An operand that is an elementwise expression (``2 * a``, ``exp(x)``, ``(x - mu) / sd``, a cast)
is a producer (``_matmul_operands.side``): the host GEMM evaluates it from its leaves while it packs the
operand (``kernels.gemm_pack``), which saves the temporary's write and read; ``relu(exp(x) @ w + b)``
is one launch. Producers with gathers or index leaves, reductions and products as operands, the
small-matrix kernel and the tiled GPU GEMM compute the operand first, as before.

On the cuda device (an NVPTX target, :func:`tiled`) the same node runs the tiled shared-memory
GEMM of ``kernels.ptx_gemm`` instead (one thread block per 128 x 128 output tile, the same argument
slots and epilogue fusion, no blocking parameters or workspace).

Blocking is decided here, at run time (shapes are not in the kernel spec): K slices of ``KC``,
row blocks of ``MC`` (packed A: L2), column blocks of ``NC`` (packed B: L3); the tasks (batch x
column blocks x row groups) are shared among ``num_threads`` work items, each with its own slot of
packing workspace allocated on the array's device. A small output over a long K (``X.T @ X`` of a
tall, narrow X: too few column blocks or row groups for the threads, each of which would pack all
of B) splits K instead (:func:`plan`, :func:`_launch_split`): each work item writes the partial
product of its K range to its own plane of a scratch array, a reduction sums the planes in the
GEMM's dtype, and the epilogue runs once over that sum (an elementwise launch of its own).
"""
from __future__ import annotations

import functools
import math
import weakref

from ._graph import LazyNode, View, contiguous_strides
from . import _schedule as sch
from .kernels.cache import get_program
from ._matmul_operands import check_leaf, operand, side, side_layout
from .kernels.gemm import TILE, GemmSpec, gemm_arg_layout
from .kernels.ptx_gemm import PtxGemmSpec, tile_count
from .kernels.ptx_gemm import arg_layout as ptx_arg_layout

__all__ = ["MatmulArg", "gemm_dtype", "matmul_node", "find_fusable", "realize_matmul", "BLOCKING"]

#: dtype -> (MC, KC, NC) upper bounds of the cache blocking (AVX2 host: 32 KiB L1, 512 KiB L2)
BLOCKING = {"float32": (144, 256, 4080), "float64": (72, 256, 2040)}

#: at most this many nodes are searched for a product under an expression
_SEARCH_LIMIT = 48

#: the MatmulArg of every live matmul node (the search is skipped while there are none)
_pending: "weakref.WeakSet[MatmulArg]" = weakref.WeakSet()


class MatmulArg:
    """A ``"matmul"`` node's 1-D rules: ``vec1`` (x1 was 1-D: a (1, K) row whose M axis is
    dropped from the result), ``vec2`` (x2 was 1-D: a (K, 1) column whose N axis is dropped)."""

    __slots__ = ("vec1", "vec2", "__weakref__")

    def __init__(self, vec1: bool, vec2: bool):
        self.vec1, self.vec2 = vec1, vec2


def gemm_dtype(dtype, device) -> bool:
    """Whether products of ``dtype`` on ``device`` run on the GEMM kernels (float32/float64 on a
    device that runs host code, cpu and sim, or on a tiled one, see :func:`tiled`); other dtypes
    keep the reduction form."""
    from .kernels.targets import HostTarget
    return dtype.name in TILE and (isinstance(getattr(device, "target", None), HostTarget) or tiled(device))


def tiled(device) -> bool:
    """Whether ``device`` runs the tiled shared-memory GEMM of ``kernels.ptx_gemm`` (one thread
    block per output tile): NVPTX targets (cuda), and targets that set ``tiled_gemm`` (the tests'
    host emulation of its thread blocks)."""
    from .kernels.targets import NVPTXTarget
    target = getattr(device, "target", None)
    return isinstance(target, NVPTXTarget) or bool(getattr(target, "tiled_gemm", False))


def matmul_node(a: LazyNode, b: LazyNode, dtype, shape: tuple, vec1: bool, vec2: bool, device) -> LazyNode:
    """The lazy product of ``a`` and ``b`` (already of ``dtype``; 1-D operands flagged)."""
    arg = MatmulArg(vec1, vec2)
    _pending.add(arg)  # lives as long as the node
    node = LazyNode("matmul", (a, b), dtype, shape, arg, device)
    return node


def find_fusable(root: LazyNode):
    """The matmul node whose output writes can compute ``root`` (an elementwise expression over
    it of the same shape and dtype), or None."""
    if root.op == "matmul":
        return root if root.computed is None else None
    if not _pending or root.op in ("reduce", "buffer", "const", "iota"):
        return None
    stack = list(root.srcs)
    seen = 0
    while stack and seen < _SEARCH_LIMIT:
        n = stack.pop()
        seen += 1
        if n.op == "matmul":
            if n.computed is None and n.shape == root.shape and n.dtype is root.dtype:
                return n
            continue
        if n.op in ("reduce", "gather"):
            continue
        stack.extend(n.srcs)
    return None


class _Sentinel:
    """Stands for the product's buffer while the epilogue is lowered (never read)."""
    ptr = 0
    device = None


def realize_matmul(root: LazyNode, out: View, mm: LazyNode) -> None:
    """Compute ``root`` (``mm`` itself or an elementwise expression over it) into ``out``."""
    device = mm.device
    a_src, b_src = mm.srcs
    k = a_src.shape[-1]
    if math.prod(root.shape) == 0:
        return
    if k == 0:  # an empty sum: the epilogue over zeros, one elementwise launch
        mm.computed = LazyNode("const", (), mm.dtype, mm.shape, 0.0, device)
        return sch.realize_into(root, out)
    if _small(mm, k):  # a batch of small matrices: the product on its own, then the epilogue
        if root is not mm:
            sch.materialize(mm)
            return sch.realize_into(root, out)
        return _launch_small(mm, out, k)
    if _split_k(mm, k) > 1:  # partial products over K ranges, summed, then the epilogue
        return _launch_split(root, out, mm)
    if out.buffer in root.buffers and not _reads_safely(root, out, mm, k):
        tmp = sch.compute_new(root)  # the output is also read, and the GEMM writes partial sums early
        return sch.realize_into(tmp, out)
    _compute_barriers(root, mm)  # (one of them over mm computes mm: then the expression reads it)
    if mm.computed is not None:
        return sch.realize_into(root, out)
    sentinel = LazyNode("buffer", (), mm.dtype, mm.shape, View(_Sentinel(), contiguous_strides(mm.shape)), device)
    low = sch.lower_elementwise(root, stand_in=(mm, sentinel))  # (never published on mm: threads)
    if low.gathers or root.dtype is not mm.dtype:
        sch.materialize(mm)  # the product on its own, then the expression over it
        return sch.realize_into(root, out)
    acc_input = low.inputs.index(sentinel)
    _launch(root, out, mm, low, acc_input)


def _dims(mm: LazyNode) -> tuple:
    """(batch shape, M, N) of a product (1 for the M or N axis that a 1-D operand drops)."""
    arg: MatmulArg = mm.arg
    shape = mm.shape
    n_rows = 1 if arg.vec1 else shape[-2 if not arg.vec2 else -1]
    n_cols = 1 if arg.vec2 else shape[-1]
    return tuple(shape[:len(shape) - (not arg.vec1) - (not arg.vec2)]), n_rows, n_cols


def _split_k(mm: LazyNode, k: int) -> int:
    """How many K ranges the host GEMM of ``mm`` splits K into (:func:`plan`; 1: no split-K)."""
    if tiled(mm.device):
        return 1
    batch, m, n = _dims(mm)
    return plan(mm.dtype.name, m, n, k, math.prod(batch), getattr(mm.device, "num_threads", 1))[0]["n_ksplit"]


def _launch_split(root: LazyNode, out: View, mm: LazyNode) -> None:
    """Compute ``root`` into ``out`` by split-K: one GEMM launch writes the partial product of
    each K range to its own plane of a scratch array (the identity epilogue), one reduction sums
    the planes (in the GEMM's dtype), then ``root`` is computed over that sum."""
    device, dtype = mm.device, mm.dtype
    n_split = _split_k(mm, mm.srcs[0].shape[-1])
    shape = (n_split,) + mm.shape
    stride = split_stride(mm.shape, dtype)
    scratch = device.allocator.alloc(n_split * stride * dtype.itemsize)
    plane = View(scratch, contiguous_strides(mm.shape), 0)
    sentinel = LazyNode("buffer", (), dtype, mm.shape, View(_Sentinel(), contiguous_strides(mm.shape)), device)
    low = sch.lower_elementwise(mm, stand_in=(mm, sentinel))  # (never published on mm: threads)
    _launch(mm, plane, mm, low, 0, split=True)
    planes = LazyNode("buffer", (), dtype, shape, View(scratch, (stride,) + contiguous_strides(mm.shape), 0), device)
    total = LazyNode("reduce", (planes,), dtype, mm.shape, sch.ReduceArg("sum", (0,), False, dtype), device)
    if root is mm:
        return sch.realize_into(total, out)
    mm.computed = sch.materialize(total)
    sch.realize_into(root, out)


def split_stride(shape: tuple, dtype) -> int:
    """Elements from one split-K plane (a contiguous ``shape``) to the next: whole cache lines
    apart, beyond what the last tile's prefetches reach (MR rows and NR columns of the tile past
    the edge), so the threads' planes share no cache line."""
    mr, nr, _ = TILE[dtype.name]
    row = shape[-1] if shape else 1
    return _up(math.prod(shape) + mr * row + nr, 64 // dtype.itemsize)


def _reads_safely(root: LazyNode, out: View, mm: LazyNode, k: int) -> bool:
    """Whether the GEMM may write ``out`` although ``root`` reads its buffer (``C = C - A @ B`` in
    a blocked factorization): K is one slice, so no partial sum is stored before the epilogue
    reads its element, the epilogue reads ``out`` only element for element, and the operands read
    a disjoint part of the buffer. The tiled GPU GEMM keeps a whole tile's sums over all of K in
    registers and writes each element once, after reading it in the epilogue: any K will do."""
    from ._inplace import _overlaps_differently
    one_write = tiled(mm.device) or (mm.dtype.name in BLOCKING and k <= BLOCKING[mm.dtype.name][1])
    return one_write and not _overlaps_differently(root, out)


def _compute_barriers(root: LazyNode, mm: LazyNode) -> None:
    """Compute the reductions and the other products in ``root``'s expression (lowering would
    compute them anyway); one that reads ``mm`` computes it, and the expression then reads the
    product's buffer instead of taking the GEMM's accumulator."""
    stack, seen = [root], set()
    while stack:
        n = stack.pop()
        if id(n) in seen or n is mm:
            continue
        seen.add(id(n))
        if n.op == "reduce" or n.op == "matmul":
            sch.materialize(n)
        else:
            stack.extend(n.srcs)


def _full_strides(strides, arg: MatmulArg) -> list:
    """Strides over (batch..., M, N) from strides over the result's shape (dropped axes: 0)."""
    st = list(strides)
    if arg.vec1 and arg.vec2:
        return st + [0, 0]
    if arg.vec1:
        return st[:-1] + [0, st[-1]]
    if arg.vec2:
        return st + [0]
    return st


def _launch(root, out: View, mm, low, acc_input: int, split: bool = False) -> None:
    """One GEMM launch computing ``root`` (the epilogue ``low`` over ``mm``, its input
    ``acc_input``) into ``out``; the operands are read from memory or as producers (:func:`side`).
    ``split``: the split-K launch of :func:`_launch_split` (``root`` is ``mm``, ``out`` the first
    plane of the scratch array, the planes follow each other)."""
    arg: MatmulArg = mm.arg
    device = mm.device
    a_src, b_src = mm.srcs
    shape = root.shape
    batch, n_rows, n_cols = _dims(mm)
    k = a_src.shape[-1]
    gpu = tiled(device)
    sides = (side(a_src, 0 if arg.vec1 else None, batch, not gpu), side(b_src, 1 if arg.vec2 else None, batch, not gpu))
    inputs, iotas = low.inputs, low.iotas
    full = [_full_strides(out.strides, arg)] + [_full_strides(sch._leaf_strides(n, shape), arg) for n in inputs] \
        + [_full_strides(sch._leaf_strides(n, shape), arg) for n in iotas]
    n_mem = 1 + len(inputs)
    n_a = len(sides[0].strides)
    every = full + sides[0].strides + sides[1].strides
    nb = len(batch)
    if math.prod(batch) == 1:
        cbatch, cst = [], [[] for _ in every]
    else:
        cbatch, cst = sch._collapse(list(batch), [st[:nb] for st in every])
    every = [c + st[nb:] for c, st in zip(cst, every)]
    ep = every[:len(full)]
    ast, bst = every[len(full):len(full) + n_a], every[len(full) + n_a:]
    a_layout, a_prod = side_layout(sides[0], ast, -1, -2)
    b_layout, b_prod = side_layout(sides[1], bst, -2, -1)
    dname = mm.dtype.name
    make = PtxGemmSpec if gpu else GemmSpec
    extra = {} if gpu else {"a_prod": a_prod, "b_prod": b_prod}
    spec = make(dtype=dname, a_layout=a_layout, b_layout=b_layout,
                n_batch=len(cbatch), expr=low.expr, in_dtypes=tuple(n.dtype.name for n in inputs),
                arg_dtypes=tuple(n.dtype.name for n in low.consts), n_idx=len(iotas), out_dtype=root.dtype.name,
                acc_input=acc_input, classes=tuple(sch._stride_class(st[-1]) for st in ep), **extra)
    program = get_program(device, spec)

    n_batch = math.prod(cbatch)
    if gpu:  # no blocking parameters, no workspace: one thread block per output tile (ptx_gemm.BM x BN)
        lay, params, ws = ptx_arg_layout(spec), None, None
    else:
        lay = gemm_arg_layout(spec)
        threads = getattr(device, "num_threads", 1)
        params, ws_elems = plan(dname, n_rows, n_cols, k, n_batch, threads, split)
        assert (params["n_ksplit"] > 1) == split, params
        params = dict(params, split_stride=split_stride(shape, mm.dtype) if split else 0)

    slots = list(cbatch) + [n_rows, n_cols]
    views = [out] + [n.arg for n in inputs]
    dts = [root.dtype] + [n.dtype for n in inputs]
    for j in range(n_mem):
        v = views[j]
        slots.append(0 if j == acc_input + 1 else v.buffer.ptr + v.offset * dts[j].itemsize)
        slots.extend(ep[j])
    for j in range(len(iotas)):
        slots.extend(ep[n_mem + j])
    for c in low.consts:
        slots.extend(sch._scalar_slots(c.arg, c.dtype))
    slots.append(k)
    for sd, sts in zip(sides, (ast, bst)):
        for leaf, st in zip(sd.leaves, sts):
            check_leaf(leaf)
            v = leaf.arg
            slots.append(v.buffer.ptr + v.offset * leaf.dtype.itemsize)
            slots.extend(st)
        for c in sd.consts:
            slots.extend(sch._scalar_slots(c.arg, c.dtype))
    if params is not None:
        ws = device.allocator.alloc(ws_elems * mm.dtype.itemsize + 64)
        params = dict(params, ws=ws.ptr + (-ws.ptr) % 64)  # packed panels are read with aligned vector loads
        slots.extend(params[name] for name in ("MC", "KC", "NC", "MG", "n_igroups", "n_jblocks", "n_tasks",
                                               "n_items", "ws", "slot_elems", "a_elems", "n_ksplit", "KS",
                                               "split_stride"))
    assert len(slots) == lay["size"], (len(slots), lay["size"])
    args = sch.pack_args(slots)
    nbytes = (sum(n.dtype.itemsize * math.prod(n.shape) for sd in sides for n in sd.leaves)
              + math.prod(shape) * root.dtype.itemsize
              + sum(math.prod(n.shape) * n.dtype.itemsize for j, n in enumerate(inputs) if j != acc_input))
    items = tile_count(n_rows, n_cols, n_batch) if gpu else params["n_items"]
    device.launch(program, args, items, nbytes, work=n_batch * n_rows * n_cols * k)
    del ws  # the workspace goes back to the pool after the (synchronous) launch


#: products whose M, N and K are all at most this, in batches of at least SMALL_BATCH matrices, run
#: on kernels.gemm_small (no packing, no padding to register tiles)
SMALL_DIM, SMALL_BATCH = 8, 2


def _small(mm: LazyNode, k: int) -> bool:
    """Whether ``mm`` is a batch of small products for kernels.gemm_small (host targets)."""
    shape = mm.shape
    arg = mm.arg
    m = 1 if arg.vec1 else shape[-2 if not arg.vec2 else -1]
    n = 1 if arg.vec2 else shape[-1]
    batch = math.prod(shape[:len(shape) - (not arg.vec1) - (not arg.vec2)])
    return batch >= SMALL_BATCH and max(m, n, k) <= SMALL_DIM and not tiled(mm.device)


def _launch_small(mm: LazyNode, out: View, k: int) -> None:
    """``out = mm`` (a batch of small products) by one kernels.gemm_small launch."""
    from .kernels.gemm_small import GemmSmallSpec
    arg: MatmulArg = mm.arg
    a_src, b_src = mm.srcs
    shape = mm.shape
    nbd = len(shape) - (not arg.vec1) - (not arg.vec2)
    batch = tuple(shape[:nbd])
    m = 1 if arg.vec1 else shape[nbd]
    n = 1 if arg.vec2 else shape[-1]
    _, av, ast = operand(a_src, 0 if arg.vec1 else None, batch)
    _, bv, bst = operand(b_src, 1 if arg.vec2 else None, batch)
    every = [_full_strides(out.strides, arg), ast, bst]
    cbatch, cst = sch._collapse(list(batch), [st[:nbd] for st in every])
    every = [c + st[nbd:] for c, st in zip(cst, every)]
    unit = every[0][-1] == 1 and every[2][-1] == 1
    spec = GemmSmallSpec(mm.dtype.name, len(cbatch), unit)
    isz = mm.dtype.itemsize
    slots = list(cbatch) + [m, n, k]
    for v, st in zip((out, av, bv), every):
        slots.append(v.buffer.ptr + v.offset * isz)
        slots.extend(st)
    count = math.prod(cbatch)
    mm.device.launch(get_program(mm.device, spec), sch.pack_args(slots), count,
                     count * (m * k + k * n + m * n) * isz, work=count * m * n * k)


def _up(x: int, m: int) -> int:
    return -(-x // m) * m


#: split K (see :func:`plan`) when K is at least this many times the output's larger side
SPLIT_K_RATIO = 16


@functools.lru_cache(maxsize=512)
def plan(dtype: str, m: int, n: int, k: int, n_batch: int, threads: int, split: bool = True):
    """Blocking parameters (the names of ``kernels.gemm.PARAMS`` but ``ws``) and the workspace
    size in elements: column blocks (or, for narrow outputs, row groups) enough for every thread.
    A small output over a long K (too few column blocks for the threads, K at least
    :data:`SPLIT_K_RATIO` times M and N) splits K instead when ``split`` (``n_ksplit`` > 1): each
    thread packs and multiplies its own K range into its own plane of a scratch output."""
    mr, nr, _ = TILE[dtype]
    mc_max, kc_max, nc_max = BLOCKING[dtype]
    kc = min(k, kc_max)
    nc = min(nc_max, _up(n, nr))
    njb = -(-n // nc)
    mg, nig = m, 1
    n_split, ks = 1, k
    if n_batch == 1 and threads <= njb < 4 * threads and m * n * k >= (1 << 18):
        # a few column blocks, the last maybe a sliver (2040 + 8 of 2048): a multiple of the
        # threads, of even widths, so every thread gets the same work
        nc = _up(-(-n // (-(-njb // threads) * threads)), nr)
        njb = -(-n // nc)
    if n_batch * njb < threads and m * n * k >= (1 << 18):
        if n >= threads * 8 * nr:  # wide enough: split the columns
            nc = _up(-(-n // threads), nr)
            njb = -(-n // nc)
        elif split and k >= SPLIT_K_RATIO * max(m, n) and k >= 2 * kc_max:
            # a long K: each thread packs both operands along its own K range (row groups would
            # each pack all of B); ranges of whole K slices, the scratch planes at most an eighth
            # of the operands
            parts = min(threads // (n_batch * njb), k * (m + n) // (8 * m * n))
            ks = _up(-(-k // parts), kc_max)
            n_split = -(-k // ks)
            if m > mr and n_batch * njb * n_split * 2 <= threads:  # threads left: row groups too
                mg = _up(-(-m // (threads // (n_batch * njb * n_split))), mr)
                nig = -(-m // mg)
        elif m > mr:
            mg = _up(-(-m // threads), mr)
            nig = -(-m // mg)
    mc = min(mc_max, _up(mg, mr))
    n_tasks = n_batch * njb * nig * n_split
    n_items = max(1, min(threads, n_tasks))
    a_elems = _up(mc * kc, 16)
    slot = a_elems + _up(kc * _up(nc, nr), 16)
    return ({"MC": mc, "KC": kc, "NC": nc, "MG": mg, "n_igroups": nig, "n_jblocks": njb, "n_tasks": n_tasks,
             "n_items": n_items, "slot_elems": slot, "a_elems": a_elems, "n_ksplit": n_split, "KS": ks},
            slot * n_items)


sch.MATMUL_HOOKS = (find_fusable, realize_matmul)
