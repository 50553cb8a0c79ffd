"""Blocked bidiagonal reduction and the SVD of square matrices built on it (``linalg.svd`` and
``svdvals`` of square matrices wider than one panel; see the last paragraph).

:func:`bidiagonalize` is LAPACK's gebrd in the hybrid shape of :mod:`._linalg_reduce`: panels of
``NB`` columns and rows (labrd) on the host; each column's two products with the trailing matrix
(``A^H u`` and ``A v``) and the rank-``2 NB`` trailing update ``A22 -= U Y^H + X V^H`` on the
array's device; the last block on the host, in panels with host rank-``2 NB`` updates. ``B = Q^H A P`` is upper bidiagonal with a real
diagonal and superdiagonal (larfg reflectors), Q and P are :class:`Reflectors` applied by
:func:`apply_q`.

:func:`svd_blocked` solves the bidiagonal SVD through the Golub-Kahan (TGK) tridiagonal of order
2n with :func:`egpu_array._tridiagonal.tridiagonal_eigh`. Plain TGK eigenvectors lose the
orthogonality of their u and v halves where ``+s`` and ``-s`` are close (small singular values):
the halves are renormalized, and the singular vectors of the singular values below
``SMALL * s_max`` are recomputed on the host from the TGK invariant subspace of the eigenvalues
``|lambda| < SMALL * s_max`` (orthonormal bases of its u and v halves, then the SVD of B projected
on them). It stays slower than one LAPACK call on the cpu device (float64, one thread, loaded
host: about 3.2-3.6x ``numpy.linalg.svd`` at n = 500, 2.2-2.5x at 1000; svdvals 4.3-4.8x and
2.1-2.5x), so on host-memory devices ``_linalg_route`` keeps orders below its ``SPECTRAL_HOST_BELOW``
on one LAPACK call.
"""
from __future__ import annotations

import numpy as np

from . import _dtypes as dt
from . import profiler
from ._array import Array
from ._linalg_blocked import _hn, _read, _up, _work_copy, conj_transpose
from ._linalg_reduce import Reflectors, _larfg, _Products, apply_q
from . import _linalg_reduce as _reduce
from ._transfer import from_host, internal
from ._host_blas import one_blas_thread

__all__ = ["bidiagonalize", "svd_blocked", "SMALL"]

#: singular values below SMALL * s_max get their vectors from the host subspace step
SMALL = 2.0 ** -6


def _panel_bd(cols: np.ndarray, rows: np.ndarray, ncols: int, rmatvec, matvec):
    """labrd on the host: ``cols`` (m, >= ncols) and ``rows`` (>= ncols, n) are the panel's
    columns and rows of the trailing matrix M (m >= n) as at the panel's start (updated in place;
    a ``cols`` not column-major is copied).
    ``rmatvec(i, u)`` returns ``M[i:, i + 1:]^H u`` and ``matvec(i, v)`` ``M[i:, i:] @ v`` of the
    panel-start M.

    Returns (d (ncols,), e, tauq, taup, ux (m, 2 ncols), yv (n, 2 ncols)): the columns of ux pair
    each column reflector ``u_i`` (column 2i, unit entry on row i) with its ``x_i`` (column
    2i + 1), those of yv pair ``y_i`` (column 2i) with the row reflector ``v_i`` (column 2i + 1,
    unit entry on row i + 1), with ``Q^H M P = B`` on the panel and ``M -= U Y^H + X V^H =
    ux yv^H`` the trailing update. The pairs make each of labrd's updates one product."""
    m, n = cols.shape[0], rows.shape[1]
    ne = min(ncols, n - 1)
    cplx = cols.dtype.kind == "c"
    cj = np.conj if cplx else (lambda z: z)
    cols = np.asfortranarray(cols)              # contiguous columns (a copy of a row-major panel)
    ux = np.zeros((m, 2 * ncols), cols.dtype, order="F")
    yv = np.zeros((n, 2 * ncols), cols.dtype, order="F")
    real = cols.real.dtype
    d, e = np.empty(ncols, real), np.empty(ne, real)
    tauq, taup = np.zeros(ncols, cols.dtype), np.zeros(ne, cols.dtype)
    for i in range(ncols):
        c = cols[i:, i]                         # M(i:, i) -= U Y(i, :)^H + X V(i, :)^H
        if i:
            c -= ux[i:, :2 * i] @ cj(yv[i, :2 * i])
        d[i], tauq[i], tail = _larfg(c[0], c[1:])
        ui = ux[i:, 2 * i]
        ui[0] = 1
        ui[1:] = tail
        if i == ne:
            break
        if tauq[i] != 0:                        # y = tauq (M^H u - Y U^H u - V X^H u)
            g = rmatvec(i, ui)
            if i:
                g -= yv[i + 1:, :2 * i] @ cj(cj(ui) @ ux[i:, :2 * i])
            yv[i + 1:, 2 * i] = tauq[i] * g
        r = rows[i, i + 1:]                     # M(i, i+1:) -= U(i, :) Y^H + X(i, :) V^H
        r -= cj(yv[i + 1:, :2 * i + 1]) @ ux[i, :2 * i + 1]
        e[i], taup[i], tail = _larfg(cj(r[0]), cj(r[1:]))
        vi = yv[i + 1:, 2 * i + 1]
        vi[0] = 1
        vi[1:] = tail
        if taup[i] != 0:                        # x = taup (M v - U Y^H v - X V^H v)
            g = matvec(i + 1, vi) - ux[i + 1:, :2 * i + 1] @ (vi @ cj(yv[i + 1:, :2 * i + 1]))
            ux[i + 1:, 2 * i + 1] = taup[i] * g
    return d, e, tauq, taup, ux, yv


def bidiagonalize(x: Array, func: str = "svd"):
    """Reduce one square matrix ``x`` (n, n) to upper bidiagonal ``B = Q^H A P`` (LAPACK's gebrd:
    host panels, each column's two products with the trailing matrix and the rank-2k trailing
    updates on the device). Returns (d (n,), e (n - 1,) real host arrays; Q, P as
    :class:`Reflectors`)."""
    from ._linalg_funcs import matmul
    n = x.shape[-1]
    real = x.dtype.real_dtype.np
    d, e = np.empty(n, dtype=real), np.empty(max(n - 1, 0), dtype=real)
    qs, ps = [], []
    a = _work_copy(x)
    product = _Products(func, a)
    nb = _reduce.NB
    k = 0
    while n - k > max(_reduce.NB, _reduce.TAIL):
        f = k + nb
        cols, rows = _read(func, a[k:, k:f]), _read(func, a[k:f, k:])
        d[k:f], e[k:f], tq, tp, ux, yv = _panel_bd(
            cols, rows, nb, lambda i, vec: product(k + i, k + i + 1, vec, True),
            lambda i, vec: product(k + i, k + i, vec, False))
        left, right = _up(func, ux[nb:], a), _up(func, _hn(yv[nb:]), a)
        a[f:, f:] = a[f:, f:] - matmul(left, right)      # A22 -= U Y^H + X V^H
        qs.append((k, ux[:, 0::2], tq))
        ps.append((k + 1, yv[1:, 1::2], tp))
        k = f
    if k < n:                                           # the last block, on the host
        block = np.array(_read(func, a[k:, k:]))
        adj = _hn if block.dtype.kind == "c" else np.transpose   # a real block's transpose is a view
        for j in range(0, n - k, nb):                   # host panels, host trailing updates
            f, sub = min(j + nb, n - k), block[j:, j:]
            d[k + j:k + f], e[k + j:k + f], tq, tp, ux, yv = _panel_bd(
                np.array(sub[:, :f - j], order="F"), sub[:f - j].copy(), f - j,
                lambda i, vec: adj(sub[i:, i + 1:]) @ vec, lambda i, vec: sub[i:, i:] @ vec)
            if f < n - k:
                block[f:, f:] -= ux[f - j:] @ _hn(yv[f - j:])
            qs.append((k + j, ux[:, 0::2], tq))
            if tp.size:
                ps.append((k + j + 1, yv[1:, 1:2 * tp.size:2], tp))
    return d, e, Reflectors(n, qs), Reflectors(n, ps)


def _bidiagonal_matvec(d: np.ndarray, e: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``B @ x`` for the upper bidiagonal B (d, e) and host columns x."""
    out = d[:, None] * x
    out[:-1] += e[:, None] * x[1:]
    return out


def _small_vectors(z: Array, w: np.ndarray, d, e, k: int, first: int = 0):
    """Singular triplets of the k smallest singular values from the TGK eigenvectors ``z`` of the
    2k eigenvalues of least magnitude (read to the host; column ``j`` of ``z`` belongs to
    ``w[first + j]``): orthonormal bases of their v and u halves, then the SVD of B projected on
    them. Returns (s, U_k, V_k) host, s descending."""
    from ._gather import take
    sel = np.sort(np.argsort(np.abs(w), kind="stable")[:2 * k]) - first
    with internal("linalg.svd"):
        idx = from_host(sel, dt.int64, z.device)
    zs = _read("svd", take(z, idx, axis=1))
    bases = [np.linalg.svd(half, full_matrices=False)[0][:, :k] for half in (zs[1::2], zs[0::2])]
    un, vn = bases
    uc, s, vct = np.linalg.svd(un.T @ _bidiagonal_matvec(d, e, vn))
    return s, un @ uc, vn @ vct.T


def _bidiagonal_svd(d: np.ndarray, e: np.ndarray, like: Array, vectors: bool):
    """SVD of the upper bidiagonal ``B`` (d, e) through its Golub-Kahan form: the ``2n x 2n``
    tridiagonal with zero diagonal and off-diagonal ``d_0, e_0, d_1, ...`` has eigenvalues
    ``+-s_i`` and eigenvectors ``(v_0, u_0, v_1, u_1, ...) / sqrt(2)``. Returns (s descending,
    U_B, V_B (n, n) on ``like``'s device, or None)."""
    from ._copying import concat
    from ._gather import take
    from ._tridiagonal import tridiagonal_eigh
    n = d.size
    off = np.empty(2 * n - 1, dtype=d.dtype)
    off[0::2], off[1::2] = d, e
    def keep(w):  # the eigenvectors used: +s_i, and -s_i of the singular values below the cut (+8)
        return n + min(n, _cut(np.sort(np.abs(w[n:]))[::-1]) + 8)
    w, z = tridiagonal_eigh(np.zeros(2 * n, dtype=d.dtype), off, like=like, vectors=vectors, keep=keep)
    order = n + np.argsort(-np.abs(w[n:]), kind="stable")
    s = np.abs(w[order])
    if not vectors:
        return s, None, None
    k = _cut(s)
    first = 2 * n - z.shape[1]                          # z's columns: w[first:]
    if first > n - k:                                   # (the cut moved by rounding: all columns)
        w, z = tridiagonal_eigh(np.zeros(2 * n, dtype=d.dtype), off, like=like, vectors=True)
        first = 0
    big = order[:n - k] - first
    with internal("linalg.svd"):
        idx = from_host(big, dt.int64, like.device)
    ub, vb = take(z[1::2, :], idx, axis=1), take(z[0::2, :], idx, axis=1)
    ub, vb = ub / _column_norms(ub), vb / _column_norms(vb)
    if k:
        s[n - k:], us, vs = _small_vectors(z, w, d, e, k, first)
        ub = concat([ub, _up("svd", us, ub)], axis=1)
        vb = concat([vb, _up("svd", vs, vb)], axis=1)
    return s, ub, vb


def _cut(s: np.ndarray) -> int:
    """How many of the smallest singular values (``s`` descending) take the host subspace step:
    those below ``SMALL * s_max``, and then more until a gap of ``SMALL * s_max / n`` separates
    them from the rest (so that no cluster is split between the two ways)."""
    n = s.size
    k = int(np.count_nonzero(s <= SMALL * s[0])) if n else 0
    while 0 < k < n and s[n - k - 1] - s[n - k] < SMALL * s[0] / n:
        k += 1
    return k


def _column_norms(m: Array) -> Array:
    """The 2-norms of the columns of ``m`` (a row vector, lazy)."""
    from ._elementwise import sqrt
    from ._statistical import sum as _sum
    return sqrt(_sum(m * m, axis=0, keepdims=True))


@one_blas_thread
def svd_blocked(x: Array, vectors: bool, func: str = "svd"):
    """SVD of square matrices ``x`` (..., n, n), one at a time: :func:`bidiagonalize`, the
    bidiagonal SVD (:func:`_bidiagonal_svd`), ``U = Q U_B`` and ``V = P V_B`` on the device.
    Returns (U, S (real, descending), Vh) Arrays, U and Vh None unless ``vectors``."""
    from ._data_type import astype
    from ._manipulation import reshape, stack
    n = x.shape[-1]
    batch = x.shape[:-2]
    profiler.note(f"linalg.{func}: blocked bidiagonalization ({_reduce.NB}-column panels on the host, each "
                  f"column's products and the trailing updates on the device), the bidiagonal SVD through "
                  f"the Golub-Kahan tridiagonal (divide and conquer, merges as GEMMs on the device)")
    us, ss, vs = [], [], []
    for idx in np.ndindex(*batch):
        d, e, q, p = bidiagonalize(x[idx], func)
        if not (np.isfinite(d).all() and np.isfinite(e).all()):
            raise np.linalg.LinAlgError(f"linalg.{func}: SVD did not converge (the matrix has nan or inf entries)")
        s, ub, vb = _bidiagonal_svd(d, e, x, vectors)
        ss.append(s)
        if vectors:
            us.append(apply_q(q, astype(ub, x.dtype), func))
            vs.append(conj_transpose(apply_q(p, astype(vb, x.dtype), func)))
    with internal(f"linalg.{func}"):
        s = from_host(np.stack(ss).reshape(batch + (n,)), x.dtype.real_dtype, x.device)
    if not vectors:
        return None, s, None
    group = (lambda m: m[0]) if not batch else (lambda m: reshape(stack(m), batch + (n, n)))
    return group(us), s, group(vs)
