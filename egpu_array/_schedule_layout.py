"""The scheduler's choice of walk order for an elementwise kernel: the output's rows walked last,
and the blocked (tiled) layout of expressions that read inputs transposed
(kernels.elementwise_tiles)."""
from __future__ import annotations

from .kernels import elementwise_tiles as _tiles

__all__ = ["stride_class", "output_rows_last", "tiled_layout", "TILED_MIN_ITEMS", "TILED_MIN_SIDE", "MAX_STAGED"]


def stride_class(s: int) -> str:
    """The class of an inner stride in a kernel spec: "c" (1), "0" (broadcast) or "s" (any)."""
    return "c" if s == 1 else ("0" if s == 0 else "s")


#: fewest elements of an expression walked in blocks, and fewest along each of the two blocked
#: dimensions (thinner: the transposed reads' rows stay in the cache anyway)
TILED_MIN_ITEMS, TILED_MIN_SIDE = 2 * _tiles.MAX_TILE ** 2, _tiles.MIN_TILE
#: most inputs staged by a tiled kernel (a stack buffer of at most 4 KiB each); more are read in place
MAX_STAGED = 16


def output_rows_last(shape: list, operand_strides: list) -> tuple:
    """``(shape, operand_strides)`` with the output's (``operand_strides[0]``) unit-stride
    dimension moved last for every operand when it is elsewhere (a write through a transposed
    view: ``x.mT[...] = y``, ``x.mT += 1``), so that the output is walked along its rows (the
    order of an elementwise walk is free); unchanged otherwise."""
    out = operand_strides[0]
    if not out or out[-1] == 1:
        return shape, operand_strides
    unit = [d for d, (n, st) in enumerate(zip(shape, out)) if st == 1 and n > 1]
    if not unit:
        return shape, operand_strides
    order = [d for d in range(len(shape)) if d != unit[-1]] + [unit[-1]]
    return [shape[d] for d in order], [[st[d] for d in order] for st in operand_strides]


def tiled_layout(cshape: list, cstrides: list, n_inputs: int, total: int):
    """``(shape, strides, classes)`` of a tiled kernel (``kernels.elementwise_tiles``) for an
    expression over the collapsed ``cshape`` whose output (``cstrides[0]``) has unit stride along
    the last dimension and some input has it along another one (a transposed read: its inner
    stride is neither 0 nor 1), else None. That dimension (of the first such input with the fewest
    broadcast dimensions) moves next to last for every operand (the order of an elementwise walk
    is free); inputs with unit stride there are staged (class "t"), the others read in place."""
    nd = len(cshape)
    if nd < 2 or total < TILED_MIN_ITEMS or cstrides[0][-1] != 1:
        return None
    best = None
    for k in range(1, 1 + n_inputs):
        st = cstrides[k]
        unit = [d for d in range(nd - 1) if st[d] == 1]
        if st[-1] in (0, 1) or not unit:
            continue
        full = sum(1 for s in st if s != 0)
        if best is None or full > best[0]:
            best = (full, unit[-1])
    if best is None:
        return None
    d = best[1]
    if cshape[d] < TILED_MIN_SIDE or cshape[-1] < TILED_MIN_SIDE:
        return None
    order = [e for e in range(nd - 1) if e != d] + [d, nd - 1]
    shape = [cshape[e] for e in order]
    strides = [[st[e] for e in order] for st in cstrides]
    classes = [stride_class(st[-1]) for st in strides]
    staged = [k for k in range(1, 1 + n_inputs) if strides[k][-2] == 1 and strides[k][-1] not in (0, 1)]
    for k in staged[:MAX_STAGED]:
        classes[k] = "t"
    return shape, strides, tuple(classes)
