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

import math
from typing import NamedTuple

import numpy as np

__all__ = ["MergePlan", "merge_plan", "merge_plans", "secular_batch", "secular_roots", "secular_vectors"]

EPS = np.finfo(np.float64).eps
#: iteration limit of the secular solver (bisection steps included)
MAXIT = 200


def _two_pole_root(c, a, b, lo, hi):
    """The root in ``(lo, hi)`` of ``c t^2 - a t + b = 0`` (both roots computed stably), or the
    middle of the interval when neither is inside."""
    with np.errstate(all="ignore"):
        q = (a + np.copysign(np.sqrt(np.abs(a * a - 4 * b * c)), a)) / 2
        r1, r2 = q / c, b / q
        r1 = np.where(c == 0, b / a, r1)
    inside = lambda r: (r > lo) & (r < hi) & np.isfinite(r)
    return np.where(inside(r1), r1, np.where(inside(r2), r2, (lo + hi) / 2))


def secular_batch(problems: list) -> list:
    """Roots of the secular equations ``1/rho + sum z_j^2/(d_j - lam) = 0`` of several problems
    ``(d, z, rho)`` at once (``d`` strictly increasing, ``z`` nonzero, ``rho > 0``).

    The problems are padded to one size ``K`` (padding: ``z = 0``, poles beyond every root) and all
    roots iterate together, so a level of the merge tree costs one loop. Returns per problem
    ``(lam, delta)``: the roots ascending and ``delta[i, j] = d_j - lam_i``, computed relative to
    the pole nearest each root (small differences keep their relative accuracy)."""
    out = [None] * len(problems)
    big = []
    for n, (d, z, rho) in enumerate(problems):
        if d.size > 1:
            big.append(n)
        else:
            delta = -rho * (z * z)[:, None]
            out[n] = (d - delta[:, 0], delta)
    if not big:
        return out
    ks = np.array([problems[n][0].size for n in big])
    nb, kmax = len(big), int(ks.max())
    rho = np.array([float(problems[n][2]) for n in big])[:, None]
    d, z2 = np.empty((nb, kmax)), np.zeros((nb, kmax))
    for b, n in enumerate(big):
        d[b, :ks[b]] = problems[n][0]
        z2[b, :ks[b]] = problems[n][1] ** 2
    top = rho[:, 0] * z2.sum(axis=1)                  # the last root lies in (d_k, d_k + top]
    i = np.arange(kmax)[None, :]
    kk = ks[:, None]
    pad = i >= kk
    d = np.where(pad, (d[np.arange(nb), ks - 1] + 2 * top + 1)[:, None] + i, d)
    last, inner = i == kk - 1, i < kk - 1
    dn = np.concatenate([d[:, 1:], d[:, -1:] + 1], axis=1)
    z2n = np.concatenate([z2[:, 1:], z2[:, -1:]], axis=1)
    gap = dn - d
    mid = d + gap / 2
    fmid = 1 / rho + np.einsum("bij,bj->bi", 1 / (d[:, None, :] - mid[:, :, None]), z2)
    left = fmid >= 0                      # root in (d_i, mid]: measured from d_i, else from d_i+1
    org = np.where(inner & ~left, i + 1, i)
    lo = np.where(inner, np.where(left, 0.0, -gap / 2), 0.0)
    hi = np.where(inner, np.where(left, gap / 2, 0.0), (top * (1 + 8 * EPS))[:, None])
    # initial guesses: the two-pole model with the other poles' sum frozen at the middle
    c = fmid - z2 / (d - mid) - z2n / (dn - mid)
    s = z2 + z2n
    tau = _two_pole_root(c, np.where(left, c * gap + s, s - c * gap),
                         np.where(left, z2 * gap, -z2n * gap), lo, hi)
    lam0 = d[np.arange(nb), ks - 1] + top / 2
    f0 = 1 / rho[:, 0] + (z2 / (d - lam0[:, None])).sum(axis=1)
    g = np.take_along_axis(gap, np.maximum(ks - 2, 0)[:, None], 1)[:, 0]
    zl, zm = (np.take_along_axis(z2, np.maximum(ks - j, 0)[:, None], 1)[:, 0] for j in (2, 1))
    dl, dm = (np.take_along_axis(d, np.maximum(ks - j, 0)[:, None], 1)[:, 0] for j in (2, 1))
    c0 = f0 - zl / (dl - lam0) - zm / (dm - lam0)
    tau = np.where(last, _two_pole_root(c0, zl + zm - c0 * g, -zm * g, 0 * top, top)[:, None], tau)
    dd = (d[:, None, :] - np.take_along_axis(d, org, 1)[:, :, None]).reshape(nb * kmax, kmax)
    rows_b = np.repeat(np.arange(nb), kmax)
    p1 = np.minimum(i, kk - 2).ravel()
    last, tau, lo, hi = last.ravel(), tau.ravel(), lo.ravel(), hi.ravel()
    rhof = np.repeat(rho[:, 0], kmax)
    noise = np.repeat(np.maximum(1.0, np.sqrt(ks) / 4), kmax)  # rounding in sums of k terms
    act = np.flatnonzero(~pad.ravel())
    for _ in range(MAXIT):
        if not act.size:
            break
        na = act.size
        tau_a, pa = tau[act], p1[act]
        delta = dd[act]
        delta -= tau_a[:, None]
        zr = z2[rows_b[act]]
        t = zr / delta
        tot = t.sum(axis=1)
        dtot = (t / delta).sum(axis=1)
        np.minimum(t, 0.0, out=t)         # the poles left of the root (psi); the others are phi
        psi = t.sum(axis=1)
        dpsi = np.divide(t, delta, out=t).sum(axis=1)
        r = np.arange(na)
        d1, d2 = delta[r, pa], delta[r, pa + 1]
        fix = last[act]                   # the last root: phi is its nearest pole, on the left
        zf = zr[r[fix], pa[fix] + 1]
        psi[fix] -= zf / d2[fix]
        dpsi[fix] -= zf / (d2[fix] * d2[fix])
        ra = rhof[act]
        w = 1 / ra + tot
        dphi = dtot - dpsi
        err = 8 * (1 / ra + np.where(fix, -tot, tot - 2 * psi)) + np.abs(tau_a) * dtot
        done = np.abs(w) <= EPS * err * noise[act]
        neg = w < 0                       # f increases: below the root
        la = np.where(neg, tau_a, lo[act])
        ha = np.where(neg, hi[act], tau_a)
        lo[act], hi[act] = la, ha
        c = w - d1 * dpsi - d2 * dphi
        a = (d1 + d2) * w - d1 * d2 * dtot
        b = d1 * d2 * w
        new = tau_a + _two_pole_root(c, a, b, la - tau_a, ha - tau_a)
        new = np.where((new > la) & (new < ha), new, (la + ha) / 2)
        tight = (ha - la) <= 4 * EPS * np.maximum(np.abs(la), np.abs(ha))
        small = np.abs(new - tau_a) <= EPS * np.abs(tau_a)     # the step is below the resolution
        tau[act] = np.where(done, tau_a, np.where(tight, (la + ha) / 2, new))
        act = act[~(done | tight | small)]
    tau = tau.reshape(nb, kmax)
    lam = np.take_along_axis(d, org, 1) + tau
    for b, n in enumerate(big):
        k = ks[b]
        out[n] = (lam[b, :k], dd.reshape(nb, kmax, kmax)[b, :k, :k] - tau[b, :k, None])
    return out


def secular_roots(d: np.ndarray, z: np.ndarray, rho: float):
    """:func:`secular_batch` of one problem."""
    return secular_batch([(d, z, rho)])[0]


def secular_vectors(d: np.ndarray, z: np.ndarray, rho: float, roots=None):
    """Eigenvalues (ascending) and orthonormal eigenvectors (columns) of ``diag(d) + rho z z^T``
    for strictly increasing ``d`` and nonzero ``z``; ``z`` is recomputed from the roots first.
    ``roots``: ``(lam, delta)`` from :func:`secular_batch` when already solved."""
    lam, delta = secular_roots(d, z, rho) if roots is None else roots
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


class _Deflation(NamedTuple):
    """A merge after deflation: ``perm`` sorts the poles; in sorted positions ``keep`` are the
    entries with a z component (``nd`` non-deflated, ``cdf`` deflated by the rotations ``rots``),
    ``unit`` the ones without; ``d``, ``z``: poles and z after the rotations; ``ds``: before."""
    perm: np.ndarray
    keep: np.ndarray
    nd: list
    cdf: list
    rots: list
    unit: np.ndarray
    d: np.ndarray
    z: np.ndarray
    ds: np.ndarray
    rho: float


def _deflate(w1: np.ndarray, w2: np.ndarray, z: np.ndarray, rho: float, m: int) -> _Deflation:
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
        r = math.hypot(zp, zq)
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
    unit = np.flatnonzero(zdef)
    unit = np.concatenate([unit[perm[unit] < m], unit[perm[unit] >= m]])   # first half's columns first
    return _Deflation(perm, keep, nd, cdf, rots, unit, np.array(dl), np.array(zl), ds, rho)


def _finish(x: _Deflation, roots, vectors: bool) -> MergePlan:
    k = len(x.nd)
    if vectors and k:
        lam, u = secular_vectors(x.d[x.nd], x.z[x.nd], x.rho, roots)
    else:
        lam, u = roots[0], None
    values = np.concatenate([lam, x.d[x.cdf], x.ds[x.unit]])
    order = np.argsort(values, kind="stable")
    mat = np.empty((x.keep.size, 0))
    if vectors:
        pos = np.empty(x.ds.size, dtype=np.int64)
        pos[x.keep] = np.arange(x.keep.size)
        mat = np.zeros((x.keep.size, k + len(x.cdf)))
        if k:
            mat[pos[x.nd], :k] = u
        mat[pos[x.cdf], k + np.arange(len(x.cdf))] = 1.0
        for p, q, c, s in reversed(x.rots):    # R = G_1 ... G_r applied to rows: last rotation first
            xp, xq = mat[pos[p]].copy(), mat[pos[q]]
            mat[pos[p]] = c * xp + s * xq
            mat[pos[q]] = c * xq - s * xp
    return MergePlan(values, order, x.perm, x.keep, mat, x.unit, len(x.cdf))


def merge_plans(merges: list, vectors: bool = True) -> list:
    """:class:`MergePlan` of each merge ``(w1, w2, z, rho, m)``: ``diag(w1, w2) + rho z z^T`` with
    ``rho >= 0`` and ``m = len(w1)``; the secular equations of all of them are solved together.
    ``vectors=False``: only the eigenvalues (``mat`` left empty)."""
    defl = [_deflate(*mg) for mg in merges]
    roots = secular_batch([(x.d[x.nd], x.z[x.nd], x.rho) for x in defl])
    return [_finish(x, r, vectors) for x, r in zip(defl, roots)]


def merge_plan(w1: np.ndarray, w2: np.ndarray, z: np.ndarray, rho: float, m: int,
               vectors: bool = True) -> MergePlan:
    """:func:`merge_plans` of one merge."""
    return merge_plans([(w1, w2, z, rho, m)], vectors)[0]
