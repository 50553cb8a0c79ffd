"""Blocked factorizations whose bulk flops run in our GEMM kernels on the array's device.

The shape is MAGMA's hybrid one: a factorization walks the matrix in panels of :data:`NB` columns.
Each panel (an ``m x NB`` slab) is factored on the host with LAPACK (numpy.linalg), an explicit
step the profiler notes; every trailing update, which holds all but ``O(n^2 NB)`` of the flops, is a
matmul on the array's device (the generated GEMM on the cpu device, with the subtraction fused
into its output writes). Triangular solves against a panel's diagonal block are products with its
inverse, computed on the host from the small block (as MAGMA's GPU trsm does); on the cpu
device LU's row block of U is solved in place instead (kernels/trsm).

On the cpu device the host steps read the device memory in place: nothing is copied but the
panels themselves. On other devices each panel crosses the link twice (down, factored, up), and the
profiler lists those copies as the library's own, named after the function.

* :func:`cholesky`: right-looking, lower; reads only the lower triangle, like LAPACK.
* :func:`lu`: right-looking with partial pivoting (LAPACK's getrf pivot order); :func:`lu_solve`
  applies it blockwise (forward and back substitution as GEMMs). ``solve``, ``inv``, ``det``
  and ``slogdet`` are built on them. Real panels are factored by a generated kernel
  (kernels/lu_panel; numpy has no getrf), in place in the matrix on the cpu device (its row
  exchanges move whole rows), on a host copy of the panel elsewhere.
* :func:`qr`: Householder panels from LAPACK's geqrf (``numpy.linalg.qr(mode="raw")``), applied to
  the trailing matrix and accumulated into Q in compact WY form ``I - V T V^H``.

Matrices whose factorization is a single panel (``min(m, n) <= NB``) go to the host in one step:
blocking buys nothing there, and batches of small matrices stay one LAPACK call.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _dtypes as dt
from . import profiler
from ._array import Array
from ._transfer import from_host, internal, to_host
from ._host_blas import one_blas_thread
from ._linalg_panels import _panel_in_place, _panel_lu, _trsm_in_place

__all__ = ["NB", "conj_transpose", "cholesky", "lu", "lu_solve", "LU", "qr", "single_panel"]

#: panel width: columns factored per host step (a multiple of the GEMM's register tiles)
NB = 128


def single_panel(n: int) -> bool:
    """Whether a factorization of ``n`` columns is one panel (done in one host step)."""
    return n <= NB


# ---- small helpers: host reads/writes of device blocks, device products ------------------------

def _read(func: str, block: Array) -> np.ndarray:
    """The values of a device block as a writable host array (on the cpu device, one host copy;
    elsewhere the block is first made contiguous on the device, so only its own bytes cross)."""
    if not block.device.host_memory:
        from ._creation import asarray
        block = asarray(block, copy=True)
    with internal(f"linalg.{func}"):
        return np.array(to_host(block), copy=True)


def _up(func: str, host: np.ndarray, like: Array) -> Array:
    """A host array on ``like``'s device, in ``like``'s dtype."""
    with internal(f"linalg.{func}"):
        return from_host(host, like.dtype, like.device)


def _work_copy(x: Array) -> Array:
    """A private contiguous copy of ``x`` on its device, realized (the blocked steps update it)."""
    from ._creation import asarray
    a = asarray(x, copy=True)
    a._realize()
    return a


def conj_transpose(a: Array) -> Array:
    """Conjugate transpose of the last two axes (a view, or a lazy expression for complex)."""
    from ._elementwise import conj
    t = a.mT
    return conj(t) if a.dtype.kind == "c" else t


def _hn(a: np.ndarray) -> np.ndarray:
    """Conjugate transpose of the last two axes of a host array."""
    return np.conj(np.swapaxes(a, -1, -2))


def _permute_rows(func: str, a: Array, k: int, order: np.ndarray, pairs: np.ndarray | None = None) -> None:
    """Reorder rows ``k:`` of ``a`` in place: row ``k + i`` takes row ``k + order[..., i]``;
    ``pairs`` (optional, one matrix): the same reordering as row swaps, see :func:`swap_sequence`.

    A single matrix moves only the rows that change (partial pivoting over a panel of NB columns
    moves at most 2 NB): one gather and one scatter of those rows. A batch reorders all rows
    with one gather."""
    from ._gather import take_along_axis
    rows = a[..., k:, :]
    if order.ndim == 1 and _runs_host_code(a):
        return _swap_rows(func, a, k, swap_sequence(order) if pairs is None else pairs)
    if order.ndim == 1:
        moved = np.flatnonzero(order != np.arange(order.shape[0]))
        if moved.size:
            with internal(f"linalg.{func}"):
                dst, src = (from_host(i, dt.int64, a.device) for i in (moved, order[moved]))
            rows[dst] = rows[src]
        return
    with internal(f"linalg.{func}"):
        idx = from_host(order[..., None], dt.int64, a.device)
    a[..., k:, :] = take_along_axis(rows, idx, axis=-2)


def _runs_host_code(a: Array) -> bool:
    """Whether ``a``'s device runs host machine code (cpu, sim): the kernels of this module that
    have no GPU form (row swaps, triangular solves) run there."""
    from .kernels.targets import HostTarget
    return isinstance(getattr(a.device, "target", None), HostTarget)


def swap_sequence(order: np.ndarray) -> np.ndarray:
    """Row swaps (LAPACK's ipiv, as pairs ``(i, j)``, applied in order) that reorder rows so that
    row ``i`` takes row ``order[i]``; only rows that move are visited."""
    cur = np.arange(order.shape[0])       # original row now at each position
    where = cur.copy()                    # position of each original row
    pairs = []
    for i in np.flatnonzero(order != cur).tolist():
        r = int(order[i])
        p = int(where[r])
        if p != i:
            pairs.append((i, p))
            moved = cur[i]
            cur[i], cur[p] = r, moved
            where[r], where[moved] = i, p
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def _swap_rows(func: str, a: Array, k: int, pairs: np.ndarray) -> None:
    """:func:`_permute_rows` of one contiguous matrix in place by the row swaps ``pairs`` (offset
    by ``k``; kernels.laswp): no temporaries, each moved row read and written once."""
    from ._sorting import launch
    from .kernels.cache import get_program
    from .kernels.laswp import LaswpSpec, unit_bytes
    swaps = pairs + k
    if not swaps.size:
        return
    v = a._realize()
    n_rows, n_cols = a.shape
    if v.strides[-1] != 1 or int(swaps.max()) >= n_rows:
        raise ValueError(f"linalg.{func}: row swaps need a contiguous matrix and rows below {n_rows}")
    isz = a.dtype.itemsize
    unit = unit_bytes(isz)
    per = isz // unit
    width = n_cols * per
    chunk = 512
    with internal(f"linalg.{func}"):
        pairs = from_host(swaps.reshape(-1), dt.int64, a.device)
    pv = pairs._realize()
    device = a.device
    launch(device, get_program(device, LaswpSpec(unit)),
           [v.buffer.ptr + v.offset * isz, v.strides[-2] * per, width, swaps.shape[0],
            pv.buffer.ptr + pv.offset * 8, chunk], -(-width // chunk), 4 * swaps.shape[0] * n_cols * isz,
           2 * swaps.shape[0] * n_cols)


def tri_inv(t: np.ndarray, lower: bool) -> np.ndarray:
    """Inverse of host triangular matrices ``t`` (..., n, n) by recursive 2 x 2 blocking
    (``inv([[A, 0], [C, D]]) = [[A^-1, 0], [-D^-1 C A^-1, D^-1]]``): about a sixth of the flops of a
    general inverse, all in matrix products."""
    n = t.shape[-1]
    if n <= 64:
        inv = np.linalg.inv(t)
        return np.tril(inv) if lower else np.triu(inv)
    h = n // 2
    out = np.zeros_like(t)
    ai, di = tri_inv(t[..., :h, :h], lower), tri_inv(t[..., h:, h:], lower)
    out[..., :h, :h], out[..., h:, h:] = ai, di
    if lower:
        out[..., h:, :h] = -(di @ (t[..., h:, :h] @ ai))
    else:
        out[..., :h, h:] = -(ai @ (t[..., :h, h:] @ di))
    return out


def _note(func: str, n: int) -> None:
    profiler.note(f"linalg.{func}: blocked, {-(-n // NB)} panel(s) of {NB} columns factored on the "
                  f"host (LAPACK); trailing updates are GEMMs on the device")


# ---- Cholesky ------------------------------------------------------------------------------------

@one_blas_thread
def cholesky(x: Array) -> Array:
    """Lower Cholesky factor of Hermitian positive-definite matrices (last two axes), blocked.

    Raises ``numpy.linalg.LinAlgError`` when a leading minor is not positive definite."""
    from ._creation import tril
    from ._linalg_funcs import matmul
    n = x.shape[-1]
    _note("cholesky", n)
    a = _work_copy(x)
    for k in range(0, n, NB):
        e = min(k + NB, n)
        l11 = np.linalg.cholesky(_read("cholesky", a[..., k:e, k:e]))
        a[..., k:e, k:e] = _up("cholesky", l11, a)
        if e < n:
            w = _up("cholesky", _hn(np.linalg.inv(l11)), a)   # L11^-H: L21 = A21 L11^-H
            l21 = matmul(a[..., e:, k:e], w)
            a[..., e:, k:e] = l21
            _lower_update(a, e, l21)
    return tril(a)


def _lower_update(a: Array, e: int, l21: Array) -> None:
    """``A[e:, e:] -= L21 L21^H`` on the lower triangle only, one column block of NB at a time
    (the blocks above the diagonal are never read)."""
    from ._linalg_funcs import matmul
    n = a.shape[-1]
    l21h = conj_transpose(l21)
    for j in range(e, n, NB):
        f = min(j + NB, n)
        rows = l21[..., j - e:, :]
        a[..., j:, j:f] = a[..., j:, j:f] - matmul(rows, l21h[..., :, j - e:f - e])


# ---- LU with partial pivoting ---------------------------------------------------------------------

class LU(NamedTuple):
    """A blocked LU factorization ``P A = L U`` of the matrices in ``a`` (L unit lower below the
    diagonal, U on and above it). ``perm``: the row order (host, ``(..., n)``); ``parity``: the
    permutation's sign (host, batch shape); ``blocks``: per panel ``(k, e, L11, U11, L11^-1)``,
    the diagonal blocks on the host (L11^-1 None until made: inverses are made where a blockwise
    substitution needs them, once); ``diag``: U's diagonal (host, ``(..., n)``)."""
    a: Array
    perm: np.ndarray
    parity: np.ndarray
    blocks: list
    diag: np.ndarray


@one_blas_thread
def lu(x: Array, func: str = "lu") -> LU:
    """Blocked LU with partial pivoting of square matrices ``x`` (..., n, n) on their device."""
    from ._linalg_funcs import matmul
    n = x.shape[-1]
    batch = x.shape[:-2]
    bsz = int(np.prod(batch, dtype=np.int64))
    _note(func, n)
    a = _work_copy(x)
    in_place = a.device.host_memory and a.dtype.kind == "f"   # the panel kernel works on a's buffer
    perm = np.tile(np.arange(n), (bsz, 1))
    swaps = np.zeros(bsz, dtype=np.int64)
    blocks, diag = [], np.empty((bsz, n), dtype=x.dtype.np)
    for k in range(0, n, NB):
        e = min(k + NB, n)
        if in_place:
            order, s, _ = _panel_in_place(a, k, e)
            p = _read(func, a[..., k:e, k:e]).reshape(bsz, e - k, e - k)
        else:
            p = _read(func, a[..., k:, k:e]).reshape(bsz, n - k, e - k)
            order, s, pairs = _panel_lu(p)
            if (order != np.arange(n - k)).any():
                _permute_rows(func, a, k, order.reshape(batch + (n - k,)), pairs)
            a[..., k:, k:e] = _up(func, p.reshape(batch + p.shape[1:]), a)
        swaps += s
        perm[:, k:] = np.take_along_axis(perm[:, k:], order, axis=1)
        l11 = np.tril(p[:, :e - k], -1) + np.eye(e - k, dtype=p.dtype)
        u11 = np.triu(p[:, :e - k])
        diag[:, k:e] = np.diagonal(u11, axis1=-2, axis2=-1)
        shape = batch + (e - k, e - k)
        l11, u11 = l11.reshape(shape), u11.reshape(shape)
        linv = None
        if e < n:
            if in_place:
                _trsm_in_place(a, k, e)
                u12 = a[..., k:e, e:]
            else:
                linv = tri_inv(l11, lower=True).reshape(shape)
                u12 = matmul(_up(func, linv, a), a[..., k:e, e:])
                a[..., k:e, e:] = u12
            a[..., e:, e:] = a[..., e:, e:] - matmul(a[..., e:, k:e], u12)
        blocks.append((k, e, l11, u11, linv))
    parity = np.where(swaps % 2, -1, 1).reshape(batch)
    return LU(a, perm.reshape(batch + (n,)), parity, blocks, diag.reshape(batch + (n,)))


@one_blas_thread
def lu_solve(f: LU, b: Array, func: str = "solve") -> Array:
    """Solve ``A X = B`` from the factorization ``f`` of A; ``b`` (..., n, k) with the batch shape of
    ``f``. Raises ``numpy.linalg.LinAlgError`` when A is singular."""
    from ._linalg_funcs import matmul
    if (f.diag == 0).any():
        raise np.linalg.LinAlgError(f"linalg.{func}: singular matrix")
    n = f.a.shape[-1]
    if _runs_host_code(f.a) and f.a.dtype.kind == "f" and b.shape[-1] <= TRSV_MAX_RHS:
        return _solve_by_rows(f, b)
    x = _work_copy(b)
    _permute_rows(func, x, 0, f.perm)
    for k, e, l11, _, linv in f.blocks:                  # forward: L Y = P B
        linv = tri_inv(l11, lower=True) if linv is None else linv
        y = matmul(_up(func, linv, f.a), x[..., k:e, :])
        x[..., k:e, :] = y
        if e < n:
            x[..., e:, :] = x[..., e:, :] - matmul(f.a[..., e:, k:e], y)
    for k, e, _, u11, _ in reversed(f.blocks):           # back: U X = Y
        z = matmul(_up(func, tri_inv(u11, lower=False), f.a), x[..., k:e, :])
        x[..., k:e, :] = z
        if k:
            x[..., :k, :] = x[..., :k, :] - matmul(f.a[..., :k, k:e], z)
    return x


#: right-hand sides up to which lu_solve substitutes row by row (kernels.trsv) instead of blockwise
TRSV_MAX_RHS = 8


def _solve_by_rows(f: LU, b: Array) -> Array:
    """:func:`lu_solve` for a few right-hand sides: ``P B`` transposed into contiguous vectors (one
    gather), then one forward (unit lower) and one back (upper) substitution launch over all of
    them, each reading the factor's rows once."""
    from ._creation import asarray
    from ._gather import take_along_axis
    from ._sorting import launch
    from .kernels.cache import get_program
    from .kernels.trsv import TrsvSpec
    n, nrhs = b.shape[-2:]
    bsz = int(np.prod(b.shape[:-2], dtype=np.int64))
    with internal("linalg.solve"):
        perm = from_host(np.ascontiguousarray(f.perm[..., None, :]), dt.int64, b.device)
    xt = asarray(take_along_axis(conj_transpose(b), perm, axis=-1), copy=True)   # (..., nrhs, n)
    xv, av = xt._realize(), f.a._realize()
    if xv.strides[-1] != 1 or av.strides[-1] != 1 or av.strides[-2] != n:
        raise ValueError("linalg.solve: substitution needs contiguous factors and vectors")
    isz = b.dtype.itemsize
    device = b.device
    for lower in (True, False):
        launch(device, get_program(device, TrsvSpec(b.dtype.name, lower, unit=lower)),
               [av.buffer.ptr + av.offset * isz, n, nrhs, xv.buffer.ptr + xv.offset * isz], bsz * nrhs,
               (bsz * n * n // 2 + bsz * nrhs * n) * isz, bsz * nrhs * n * n // 2)
    return xt.mT


# ---- QR ------------------------------------------------------------------------------------------

def _larft(v: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """The upper triangular T of the compact WY form ``H_1 ... H_k = I - V T V^H`` (LAPACK's
    larft, forward and columnwise) for host reflectors ``v`` (..., m, k) and ``tau`` (..., k)."""
    k = v.shape[-1]
    gram = _hn(v) @ v                                   # V^H V, (..., k, k)
    t = np.zeros(v.shape[:-2] + (k, k), dtype=v.dtype)
    for i in range(k):
        t[..., i, i] = tau[..., i]
        if i:
            t[..., :i, i] = -tau[..., i, None] * np.einsum("...ij,...j->...i", t[..., :i, :i], gram[..., :i, i])
    return t


@one_blas_thread
def qr(x: Array, complete: bool) -> tuple:
    """Blocked Householder QR of ``x`` (..., m, n): (Q, R) reduced, or complete when asked."""
    from ._creation import eye, triu
    from ._linalg_funcs import matmul
    from ._manipulation import broadcast_to
    m, n = x.shape[-2:]
    kmax = min(m, n)
    batch = x.shape[:-2]
    _note("qr", kmax)
    a = _work_copy(x)
    panels = []
    for k in range(0, kmax, NB):
        e = min(k + NB, kmax)
        h, tau = np.linalg.qr(_read("qr", a[..., k:, k:e]), mode="raw")
        h = np.swapaxes(h, -1, -2)                      # LAPACK's layout: (..., m - k, kb)
        v = np.tril(h, -1)
        v[..., np.arange(e - k), np.arange(e - k)] = 1
        a[..., k:, k:e] = _up("qr", np.triu(h), a)
        vd, td = _up("qr", v, a), _up("qr", _larft(v, tau), a)
        if e < n:                                       # A2 <- Q^H A2 = A2 - V T^H (V^H A2)
            c = a[..., k:, e:]
            a[..., k:, e:] = c - matmul(vd, matmul(conj_transpose(td), matmul(conj_transpose(vd), c)))
        panels.append((k, vd, td))
    cols = m if complete else kmax
    q = _work_copy(broadcast_to(eye(m, cols, dtype=x.dtype, device=x.device), batch + (m, cols)))
    for k, vd, td in reversed(panels):                  # Q = H_1 ... H_p I, applied backwards
        c = q[..., k:, k:]
        q[..., k:, k:] = c - matmul(vd, matmul(td, matmul(conj_transpose(vd), c)))
    r = triu(a if complete else a[..., :kmax, :])
    return q, r
