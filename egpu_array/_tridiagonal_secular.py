"""The host half of a divide-and-conquer merge: deflation, the secular equation, its eigenvectors.

A merge of two solved halves is the eigenproblem of ``D + rho z z^T`` (``D`` diagonal, ``rho > 0``).
Everything here is O(n^2) host work in float64 with NumPy, vectorized over all roots; the O(n^3)
part (applying the result to the halves' eigenvectors) is the caller's GEMM.

* Deflation (as LAPACK's dlaed2 describes it): a component with ``rho |z_j| <= tol`` leaves
  ``d_j`` an eigenvalue unchanged; two entries whose values are close enough are rotated (a Givens
  rotation in their plane) so that one of them gets ``z = 0`` and is deflated too.
* The secular equation ``f(lam) = 1/rho + sum_j z_j^2 / (d_j - lam) = 0`` (dlaed4's scheme): root
  ``i`` lies in ``(d_i, d_{i+1})`` (the last one in ``(d_k, d_k + rho |z|^2]``); each root is
  found relative to its nearer pole, so the differences ``d_j - lam_i`` are known to high relative
  accuracy; the step is the "middle way" two-pole rational model, guarded by bisection.
* The eigenvectors are built from ``z`` recomputed from the roots (Gu and Eisenstat's use of
  Loewner's formula), which makes them orthogonal to working precision.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["MergePlan", "merge_plan", "secular_roots", "secular_vectors"]

EPS = np.finfo(np.float64).eps
#: iteration limit of the secular solver (bisection steps included)
MAXIT = 200


def secular_roots(d: np.ndarray, z: np.ndarray, rho: float):
    """Roots of ``1/rho + sum z_j^2/(d_j - lam)`` for strictly increasing ``d`` and nonzero ``z``.

    Returns ``(lam, delta)``: the roots ascending and ``delta[i, j] = d_j - lam_i`` (computed
    relative to the pole nearest each root, so small differences keep their relative accuracy)."""
    k = d.size
    z2 = z * z
    if k == 1:
        delta = np.array([[-rho * z2[0]]])
        return d - delta[0], delta
    idx = np.arange(k)
    gap = np.diff(d)
    mid = d[:-1] + gap / 2
    fmid = 1 / rho + (z2 / (d[None, :] - mid[:, None])).sum(axis=1)
    left = fmid >= 0                      # root in (d_i, mid]: measure from d_i, else from d_{i+1}
    org = np.append(np.where(left, idx[:-1], idx[:-1] + 1), k - 1)
    lo = np.append(np.where(left, 0.0, -gap / 2), 0.0)
    hi = np.append(np.where(left, gap / 2, 0.0), rho * z2.sum() * (1 + 8 * EPS))
    dd = d[None, :] - d[org][:, None]     # poles relative to each root's origin
    p1 = np.minimum(idx, k - 2)           # the two poles of the rational model: (i, i+1), last (k-2, k-1)
    last = idx == k - 1
    tau = (lo + hi) / 2
    act = idx
    for _ in range(MAXIT):
        if not act.size:
            break
        tau_a = tau[act]
        delta = dd[act] - tau_a[:, None]
        t = z2 / delta
        w = 1 / rho + t.sum(axis=1)
        t2 = t / delta
        dpsi = np.where(idx[None, :] <= p1[act, None], t2, 0).sum(axis=1)
        dphi = t2.sum(axis=1) - dpsi
        err = 8 * (1 / rho + np.abs(t).sum(axis=1)) + np.abs(tau_a) * (dpsi + dphi)
        done = np.abs(w) <= EPS * err
        neg = w < 0                       # f increases: below the root
        lo[act] = np.where(neg, tau_a, lo[act])
        hi[act] = np.where(neg, hi[act], tau_a)
        rows = np.arange(act.size)
        d1, d2 = delta[rows, p1[act]], delta[rows, p1[act] + 1]
        c = w - d1 * dpsi - d2 * dphi
        a = (d1 + d2) * w - d1 * d2 * (dpsi + dphi)
        b = d1 * d2 * w
        with np.errstate(all="ignore"):
            disc = np.sqrt(np.abs(a * a - 4 * b * c))
            inner = np.where(a <= 0, (a - disc) / (2 * c), 2 * b / (a + disc))
            outer = np.where(a >= 0, (a + disc) / (2 * c), 2 * b / (a - disc))
            eta = np.where(last[act], outer, inner)
            eta = np.where(c == 0, b / a, eta)
            new = tau_a + eta
        la, ha = lo[act], hi[act]
        new = np.where((new > la) & (new < ha) & np.isfinite(new), new, (la + ha) / 2)
        tight = (ha - la) <= 4 * EPS * np.maximum(np.abs(la), np.abs(ha))
        tau[act] = np.where(done, tau_a, np.where(tight, (la + ha) / 2, new))
        act = act[~(done | tight)]
    delta = dd - tau[:, None]
    return d[org] + tau, delta


def secular_vectors(d: np.ndarray, z: np.ndarray, rho: float):
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of ``diag(d) + rho z z^T``
    for strictly increasing ``d`` and nonzero ``z``; ``z`` is recomputed from the roots first."""
    lam, delta = secular_roots(d, z, rho)
    k = d.size
    if k == 1:
        return lam, np.ones((1, 1))
    diff = d[:, None] - d[None, :]
    np.fill_diagonal(diff, 1.0)
    ratio = -delta / diff                 # (lam_i - d_j) / (d_i - d_j); diagonal: lam_j - d_j
    zhat = np.copysign(np.sqrt(np.abs(np.prod(ratio, axis=0) / rho)), z)
    vec = zhat[None, :] / delta           # row i: eigenvector i (unnormalized)
    vec /= np.linalg.norm(vec, axis=1)[:, None]
    return lam, vec.T


class MergePlan(NamedTuple):
    """How a merge maps the halves' eigenvectors to the merged ones.

    Columns of the result, in catalogue order, are: ``len(mat)`` columns ``Q_sorted[:, rows] @ mat``
    (the secular eigenvectors and the rotated deflated ones), then the deflated unit columns
    ``Q_sorted[:, unit]``. ``Q_sorted = blockdiag(Q1, Q2)[:, perm]``; ``values`` are the eigenvalues in
    catalogue order and ``order`` sorts them; ``rotated``: how many deflated columns came from a
    rotation of two close entries."""
    values: np.ndarray
    order: np.ndarray
    perm: np.ndarray
    rows: np.ndarray
    mat: np.ndarray
    unit: np.ndarray
    rotated: int

    def apply_row(self, v: np.ndarray) -> np.ndarray:
        """The merged eigenvectors' entries in the row whose entries before the merge were ``v``."""
        vs = v[self.perm]
        return np.concatenate([vs[self.rows] @ self.mat, vs[self.unit]])[self.order]


def merge_plan(w1: np.ndarray, w2: np.ndarray, z: np.ndarray, rho: float, m: int,
               vectors: bool = True) -> MergePlan:
    """The merge of ``diag(w1, w2) + rho z z^T`` (``rho >= 0``; ``m = len(w1)``). ``vectors=False``:
    only the eigenvalues (``mat`` left empty)."""
    d = np.concatenate([w1, w2])
    nz = np.linalg.norm(z)
    if nz > 0:
        z = z / nz
        rho = rho * nz * nz
    perm = np.argsort(d, kind="stable")
    ds, zs = d[perm], z[perm]
    tol = 8 * EPS * max(np.abs(ds).max(), rho)
    zdef = rho * np.abs(zs) <= tol
    keep = np.flatnonzero(~zdef)
    dl, zl = ds.tolist(), zs.tolist()
    nd, cdf, rots = [], [], []
    pj = -1
    for j in keep.tolist():               # close pairs: rotate z_pj into z_j, deflate pj
        if pj < 0:
            pj = j
            continue
        zp, zq = zl[pj], zl[j]
        r = float(np.hypot(zp, zq))
        c, s = zq / r, zp / r
        if abs((dl[j] - dl[pj]) * c * s) <= tol:
            dp, dq = dl[pj], dl[j]
            dl[pj], dl[j] = c * c * dp + s * s * dq, s * s * dp + c * c * dq
            zl[pj], zl[j] = 0.0, r
            rots.append((pj, j, c, s))
            cdf.append(pj)
        else:
            nd.append(pj)
        pj = j
    if pj >= 0:
        nd.append(pj)
    dl, zl = np.array(dl), np.array(zl)
    unit = np.flatnonzero(zdef)
    unit = np.concatenate([unit[perm[unit] < m], unit[perm[unit] >= m]])   # first half's columns first
    k = len(nd)
    if k:
        lam, u = secular_vectors(dl[nd], zl[nd], rho) if vectors else (secular_roots(dl[nd], zl[nd], rho)[0], None)
    else:
        lam, u = np.empty(0), np.empty((0, 0))
    values = np.concatenate([lam, dl[cdf], ds[unit]])
    order = np.argsort(values, kind="stable")
    mat = np.empty((keep.size, 0))
    if vectors:
        pos = np.empty(d.size, dtype=np.int64)
        pos[keep] = np.arange(keep.size)
        mat = np.zeros((keep.size, k + len(cdf)))
        mat[pos[nd], :k] = u
        mat[pos[cdf], k + np.arange(len(cdf))] = 1.0
        for p, q, c, s in reversed(rots):  # R = G_1 ... G_r applied to the rows: last rotation first
            xp, xq = mat[pos[p]].copy(), mat[pos[q]]
            mat[pos[p]] = c * xp + s * xq
            mat[pos[q]] = c * xq - s * xp
    return MergePlan(values, order, perm, keep, mat, unit, len(cdf))
