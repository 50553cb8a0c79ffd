"""The LU's panel steps on host-code devices (used by ``_linalg_blocked.lu``): the panel
factorization of real panels by the generated kernel (kernels/lu_panel), in place in the matrix
on host memory or on a host copy; the recursive NumPy form for complex panels; and U's row block
solved in place by kernels/trsm.
"""
from __future__ import annotations

import numpy as np

from ._array import Array

__all__ = ["LEAF", "TRSM_CHUNK"]


#: panel columns below which the host panel LU runs column by column (rank-1 updates)
LEAF = 8


def _panel_lu(p: np.ndarray):
    """LU with partial pivoting of host panels ``p`` (B, m, w), C-contiguous, ``m >= w``, in place.

    Real panels go to the generated kernel (kernels/lu_panel, run by the cpu device on the host
    array); complex ones are factored here, recursively as LAPACK's getrf2 (factor the left half;
    update the right half with a triangular solve and a matrix product, BLAS; factor its lower
    part), on a column-major copy so that the column steps of panels of at most :data:`LEAF`
    columns read contiguous memory. Pivots are the first entry of largest magnitude in the column,
    as LAPACK picks them; a zero pivot leaves its column unscaled (the matrix is singular; U shows it).

    Returns (order (B, m): row ``i`` of the result is row ``order[:, i]`` of the input;
    swaps (B,): how many row exchanges each matrix needed, for the determinant's sign;
    pairs: one matrix's row exchanges in order, as ``_linalg_blocked.swap_sequence`` gives them (from the
    kernel's pivot rows), or None for a batch or a panel factored here)."""
    bsz, m, w = p.shape
    if p.dtype.kind == "f":
        if not p.flags.c_contiguous or m < w:
            raise ValueError("linalg: the panel kernel needs a C-contiguous panel at least as tall as wide")
        from .backend.device import get_device
        return _lu_kernel(get_device("cpu"), p.ctypes.data, p.dtype, w, m * w, m, w, 0, 0, bsz)
    cols = np.ascontiguousarray(np.swapaxes(p, -1, -2))
    order, swaps = _lu_cols(cols)
    p[...] = np.swapaxes(cols, -1, -2)
    return order, swaps, None


def _contiguous(a: Array, what: str):
    """(realized view, n, batch size) of the square matrices ``a`` that the in-place kernels
    address as contiguous ``n x n`` blocks; anything else is refused before a launch."""
    v = a._realize()
    n = a.shape[-1]
    bsz = int(np.prod(a.shape[:-2], dtype=np.int64))
    if v.strides[-1] != 1 or v.strides[-2] != n or (bsz > 1 and v.strides[-3] != n * n):
        raise ValueError(f"linalg: {what} needs a contiguous matrix")
    return v, n, bsz


def _panel_in_place(a: Array, k: int, e: int):
    """:func:`_panel_lu` of the panel ``a[..., k:, k:e]`` of a real matrix in host memory, on
    ``a``'s own buffer: row exchanges move whole rows of ``a``, so nothing is copied."""
    v, n, bsz = _contiguous(a, "the in-place panel LU")
    ptr = v.buffer.ptr + (v.offset + k * n + k) * a.dtype.itemsize
    return _lu_kernel(a.device, ptr, a.dtype.np, n, n * n, n - k, e - k, k, n - e, bsz)


#: columns of U12 per work item of the in-place triangular solve (a 128-row slab of 32 KiB float64)
TRSM_CHUNK = 32


def _trsm_in_place(a: Array, k: int, e: int) -> None:
    """``A[k:e, e:] := L11^-1 A[k:e, e:]`` (U's row block) with the unit lower ``L11 = A[k:e, k:e]``,
    in place in ``a``'s buffer (kernels.trsm; a contiguous real matrix in host memory)."""
    from ._sorting import launch
    from .kernels.cache import get_program
    from .kernels.trsm import TrsmSpec
    v, n, bsz = _contiguous(a, "the in-place triangular solve")
    isz = a.dtype.itemsize
    w, ncols = e - k, n - e
    program = get_program(a.device, TrsmSpec(a.dtype.name))
    for t in range(bsz):
        base = v.buffer.ptr + (v.offset + t * n * n + k * n) * isz
        launch(a.device, program, [base + k * isz, n, base + e * isz, n, w, ncols, TRSM_CHUNK],
               -(-ncols // TRSM_CHUNK), 2 * w * ncols * isz, w * w * ncols // 2)


def _lu_kernel(device, ptr: int, dtype, lda: int, mstride: int, m: int, w: int, left: int, right: int,
               bsz: int):
    """Run kernels/lu_panel on ``bsz`` row-major panels at ``ptr`` (see its docstring for the
    arguments); returns (order, swaps, pairs) as :func:`_panel_lu`."""
    from ._sorting import launch
    from .kernels.cache import get_program
    from .kernels.lu_panel import LUPanelSpec
    order = np.empty((bsz, m), dtype=np.int64)
    swaps = np.empty(bsz, dtype=np.int64)
    ipiv = np.empty((bsz, w), dtype=np.int64)
    isz = np.dtype(dtype).itemsize
    launch(device, get_program(device, LUPanelSpec(np.dtype(dtype).name)),
           [ptr, lda, mstride, m, w, left, right, order.ctypes.data, swaps.ctypes.data, ipiv.ctypes.data],
           bsz, bsz * m * w * isz * 2, bsz * m * w * w)
    pairs = None
    if bsz == 1:
        steps = np.arange(w)
        pairs = np.stack([steps, ipiv[0]], axis=1)[ipiv[0] != steps]
    return order, swaps, pairs


def _lu_cols(c: np.ndarray):
    """:func:`_panel_lu` on the transposed panel ``c`` (B, w, m): ``c[:, j]`` is column ``j``."""
    bsz, w, m = c.shape
    if w <= LEAF:
        return _lu_columns(c)
    h = w // 2
    order, swaps = _lu_cols(c[:, :h])
    c[:, h:] = np.take_along_axis(c[:, h:], order[:, None, :], axis=2)
    l11 = np.swapaxes(np.triu(c[:, :h, :h], 1), -1, -2)       # unit lower L11 (rows x columns)
    l11[:, np.arange(h), np.arange(h)] = 1
    c[:, h:, :h] = np.swapaxes(np.linalg.solve(l11, np.swapaxes(c[:, h:, :h], -1, -2)), -1, -2)
    c[:, h:, h:] -= c[:, h:, :h] @ c[:, :h, h:]
    order2, swaps2 = _lu_cols(c[:, h:, h:])
    c[:, :h, h:] = np.take_along_axis(c[:, :h, h:], order2[:, None, :], axis=2)
    order[:, h:] = np.take_along_axis(order[:, h:], order2, axis=1)
    return order, swaps + swaps2


def _lu_columns(c: np.ndarray):
    """:func:`_lu_cols` for narrow panels: one column at a time (getf2)."""
    bsz, kb, m = c.shape
    rows = np.arange(bsz)
    order = np.tile(np.arange(m), (bsz, 1))
    swaps = np.zeros(bsz, dtype=np.int64)
    for j in range(min(m, kb)):
        r = j + np.argmax(np.abs(c[:, j, j:]), axis=1)
        moved = r != j
        if moved.any():
            swaps += moved
            c[rows, :, j], c[rows, :, r] = c[rows, :, r], c[rows, :, j].copy()
            order[rows, j], order[rows, r] = order[rows, r], order[rows, j].copy()
        piv = c[:, j, j]
        c[:, j, j + 1:] /= np.where(piv == 0, 1, piv)[:, None]
        if j + 1 < kb:
            c[:, j + 1:, j + 1:] -= c[:, j + 1:, j:j + 1] * c[:, j:j + 1, j + 1:]
    return order, swaps
