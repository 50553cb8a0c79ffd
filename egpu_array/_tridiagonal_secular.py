"""The host half of a divide-and-conquer merge: deflation, the secular equation, its eigenvectors.

A merge of two solved halves is the eigenproblem of ``D + rho z z^T`` (``D`` diagonal, ``rho > 0``).
Everything here is O(n^2) host work in float64 with NumPy, vectorized over all roots (and over
all merges of a tree level); the pole sums of the iterations run in a generated kernel
(kernels/secular_sums). The O(n^3) part (applying the result to the halves' eigenvectors) is the
caller's GEMM.

* Deflation (as LAPACK's dlaed2 describes it): a component with ``rho |z_j| <= tol`` leaves
  ``d_j`` an eigenvalue unchanged; two entries whose values are close enough are rotated (a Givens
  rotation in their plane) so that one of them gets ``z = 0`` and is deflated too.
* The secular equation ``f(lam) = 1/rho + sum_j z_j^2 / (d_j - lam) = 0`` (dlaed4's scheme): root
  ``i`` lies in ``(d_i, d_{i+1})`` (the last one in ``(d_k, d_k + rho |z|^2]``); each root is
  found relative to its nearer pole, so the differences ``d_j - lam_i`` are known to high relative
  accuracy; the step is the "middle way" two-pole rational model, guarded by bisection inside the
  origin's half of the interval; starting points come from a local model (a window of poles, the
  others' sums linear).
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
#: poles around each root in the local model that gives the starting points
WINDOW = 16


def _two_pole_step(c, a, b, outer):
    """The correction ``eta`` of the two-pole model, a root of ``c eta^2 - a eta + b = 0``: for a
    root between its two poles ``(a - sqrt(a^2 - 4bc)) / (2c)``, for the last root (beyond both)
    ``(a + sqrt(...)) / (2c)``, each in its cancellation-free form. Where the model is poor (a
    pole with a tiny weight) the step may land anywhere; the caller's bracket catches that."""
    with np.errstate(all="ignore"):
        disc = np.sqrt(np.abs(a * a - 4 * b * c))
        inner = np.where(a <= 0, (a - disc) / (2 * c), 2 * b / (a + disc))
        beyond = np.where(a >= 0, (a + disc) / (2 * c), 2 * b / (a - disc))
        return np.where(c == 0, b / a, np.where(outer, beyond, inner))


def _full_sums(dd, z2, rows_b):
    """The pole sums over all poles, by the generated kernel (kernels/secular_sums) on the host:
    for the active rows ``act`` at ``tau_a``, returns ``(delta at the columns asked later, sum
    z^2/delta, sum z^2/delta^2, and the same two over the poles left of the root)``."""
    from ._sorting import launch
    from .backend.device import get_device
    from .kernels.cache import get_program
    from .kernels.secular_sums import SecularSumsSpec
    cpu = get_device("cpu")
    prog = get_program(cpu, SecularSumsSpec())
    kmax = dd.shape[1]

    def sums(act, tau_a):
        act = np.ascontiguousarray(act, dtype=np.int64)
        tau_a = np.ascontiguousarray(tau_a, dtype=np.float64)
        out = np.empty((act.size, 4))
        launch(cpu, prog, [dd.ctypes.data, kmax, act.ctypes.data, tau_a.ctypes.data, z2.ctypes.data,
                           rows_b.ctypes.data, out.ctypes.data], act.size, act.size * kmax * 8, act.size * kmax)
        return _Rows(dd, act, tau_a), out[:, 0], out[:, 1], out[:, 2], out[:, 3]
    return sums


class _Rows:
    """``delta[r, c] = dd[act[r], c] - tau_a[r]`` computed only where indexed."""

    def __init__(self, dd, act, tau_a):
        self.dd, self.act, self.tau = dd, act, tau_a

    def __getitem__(self, key):
        r, c = key
        return self.dd[self.act[r], c] - self.tau[r]


def _window_sums(ddl, z2l, tref, c1l, c1r):
    """:func:`_full_sums` of the local model: the poles of a window around each root, plus the
    other poles' sums taken linear in ``tau`` about ``tref`` (slopes ``c1l`` for those left of the
    root, ``c1r`` for those right of it)."""
    def sums(act, tau_a):
        delta = ddl[act] - tau_a[:, None]
        t = z2l[act] / delta
        t2 = t / delta
        neg = delta < 0
        x = tau_a - tref[act]
        sl, sr = c1l[act], c1r[act]
        return (delta, t.sum(axis=1) + (sl + sr) * x, t2.sum(axis=1) + sl + sr,
                (t * neg).sum(axis=1) + sl * x, (t2 * neg).sum(axis=1) + sl)
    return sums


def _iterate(sums, weight, cst, act, tau, lo, hi, p1, last, noise, maxit=MAXIT):
    """Solve ``cst + sum z_j^2/(d_j - d_org - tau) = 0`` for the rows ``act`` (in place on ``tau``
    and the brackets ``lo < tau < hi``): the middle-way step of the two-pole rational model
    through the poles ``p1, p1 + 1`` (column indices of ``sums``' delta), bisection when the step
    leaves the bracket; stop when ``|f|`` is at the rounding level of its terms. ``weight(rows,
    cols)``: the ``z^2`` of those poles."""
    for _ in range(maxit):
        if not act.size:
            break
        tau_a, pa = tau[act], p1[act]
        delta, tot, dtot, psi, dpsi = sums(act, tau_a)
        r = np.arange(act.size)
        d1, d2 = delta[r, pa], delta[r, pa + 1]
        fix = last[act]                   # the last root: phi is its nearest pole, on the left
        if fix.any():
            wf, df = weight(act[fix], pa[fix] + 1), d2[fix]
            psi[fix] -= wf / df
            dpsi[fix] -= wf / (df * df)
        w = cst[act] + tot
        dphi = dtot - dpsi
        err = 8 * (np.abs(cst[act]) + np.where(fix, -tot, tot - 2 * psi)) + np.abs(tau_a) * dtot
        done = np.abs(w) <= EPS * err * noise[act]
        neg = w < 0                       # f increases: below the root
        la = np.where(neg, tau_a, lo[act])
        ha = np.where(neg, hi[act], tau_a)
        lo[act], hi[act] = la, ha
        c = w - d1 * dpsi - d2 * dphi
        a = (d1 + d2) * w - d1 * d2 * dtot
        b = d1 * d2 * w
        new = tau_a + _two_pole_step(c, a, b, fix)
        new = np.where((new > la) & (new < ha) & np.isfinite(new), new, (la + ha) / 2)
        tight = (ha - la) <= 4 * EPS * np.maximum(np.abs(la), np.abs(ha))
        small = np.abs(new - tau_a) <= EPS * np.abs(tau_a)     # the step is below the resolution
        tau[act] = np.where(done, tau_a, np.where(tight, (la + ha) / 2, new))
        act = act[~(done | tight | small)]


def secular_batch(problems: list, deltas: bool = True) -> list:
    """Roots of the secular equations ``1/rho + sum z_j^2/(d_j - lam) = 0`` of several problems
    ``(d, z, rho)`` at once (``d`` strictly increasing, ``z`` nonzero, ``rho > 0``).

    The problems are padded to one size ``K`` (padding: ``z = 0``, poles beyond every root) and all
    roots iterate together, so a level of the merge tree costs one loop. Starting points: the
    two-pole model with the other poles' sum frozen at the middle of the interval, refined on a
    window of :data:`WINDOW` poles around the root (the far sum frozen) before the full iteration.
    Returns per problem ``(lam, delta)``: the roots ascending and ``delta[j, i] = d_j - lam_i``,
    computed relative to the pole nearest each root (small differences keep their relative
    accuracy); ``deltas=False``: ``delta`` is None (the eigenvalues alone skip those k^2 entries)."""
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
    last = i == kk - 1
    dn = np.concatenate([d[:, 1:], d[:, -1:] + 1], axis=1)
    gap = dn - d
    # reference points: the middle of each interval; for the last root, the middle of its bracket
    ref = np.where(last, (d + top[:, None] / 2), d + gap / 2)
    dd = (d[:, None, :] - d[:, :, None]).reshape(nb * kmax, kmax)    # poles relative to d_i
    rows_b = np.repeat(np.arange(nb), kmax)
    z2 = np.ascontiguousarray(z2)
    full = _full_sums(dd, z2, rows_b)
    _, fref, dref, _, dlref = full(np.arange(nb * kmax), (ref - d).ravel())
    fref = 1 / rho + fref.reshape(nb, kmax)
    left = (fref >= 0) | last             # root in (d_i, mid]: measured from d_i, else from d_i+1
    org = np.where(left, i, i + 1)
    dorg = np.take_along_axis(d, np.minimum(org, kmax - 1), 1)
    right = np.flatnonzero(~left.ravel())
    dd[right] = d[rows_b[right]] - dorg.ravel()[right, None]        # relative to d_i+1 there
    # brackets: the origin's half of the interval, widened by the rounding of the middle point and
    # of f there (a root next to the middle may lie just across it)
    half = np.minimum(gap, gap / 2 + 16 * EPS * (np.abs(ref) + gap))
    lo = np.where(left, 0.0, -half)
    hi = np.where(last, (top * (1 + 8 * EPS))[:, None], np.where(left, half, 0.0))
    tau = (lo + hi) / 2
    p1 = np.minimum(i, kk - 2)
    # the local model: WINDOW poles around the root, the others' sum frozen at the reference point
    wd = min(WINDOW, kmax)
    cols = np.clip(p1 - wd // 2 + 1, 0, np.maximum(kk - wd, 0))[..., None] + np.arange(wd)
    ddl = (np.take_along_axis(d[:, None, :], cols, 2) - dorg[..., None]).reshape(-1, wd)
    z2l = np.take_along_axis(z2[:, None, :], cols, 2).reshape(-1, wd)
    tref = (ref - dorg).ravel()
    _, wtot, wd, _, wdl = _window_sums(ddl, z2l, tref, 0 * tref, 0 * tref)(np.arange(tref.size), tref)
    cst = fref.ravel() - wtot
    c1l = np.where(last.ravel(), 0.0, dlref - wdl)               # the far poles' slopes at ref
    c1r = np.where(last.ravel(), 0.0, dref - dlref - (wd - wdl))
    pl = (p1[..., None] - cols[..., :1])[..., 0].ravel()
    noise = np.repeat(np.maximum(1.0, np.sqrt(ks) / 4), kmax)  # rounding in sums of k terms
    act = np.flatnonzero(~pad.ravel())
    tau, lo, hi, last, p1 = tau.ravel(), lo.ravel(), hi.ravel(), last.ravel(), p1.ravel()
    _iterate(_window_sums(ddl, z2l, tref, c1l, c1r), lambda r, c: z2l[r, c], cst, act, tau,
             lo.copy(), hi.copy(), pl, last, np.ones_like(noise), maxit=12)
    _iterate(full, lambda r, c: z2[rows_b[r], c],
             np.repeat(1 / rho[:, 0], kmax), act, tau, lo, hi, p1, last, noise)
    tau = tau.reshape(nb, kmax)
    lam = dorg + tau
    for b, n in enumerate(big):
        k = ks[b]
        out[n] = (lam[b, :k], (d[b, :k, None] - dorg[b, None, :k]) - tau[b, None, :k] if deltas else None)
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
    buf = np.subtract(d[None, :], d[:, None])
    np.fill_diagonal(buf, -1.0)
    np.divide(delta, buf, out=buf)        # [j, i]: (d_j - lam_i) / (d_i - d_j); diagonal: lam_j - d_j
    zhat = np.copysign(np.sqrt(np.abs(np.prod(buf, axis=1) / rho)), z)
    u = np.divide(zhat[:, None], delta, out=buf)      # column i: eigenvector i (unnormalized)
    u /= np.sqrt(np.einsum("ji,ji->i", u, u))[None, :]
    return lam, u


class MergePlan(NamedTuple):
    """How a merge maps the halves' eigenvectors to the merged ones.

    Columns of the result, in catalogue order, are: ``len(mat)`` columns ``Q_sorted[:, rows] @ mat``
    (the secular eigenvectors and the rotated deflated ones), then the deflated unit columns
    ``Q_sorted[:, unit]``. ``Q_sorted = blockdiag(Q1, Q2)[:, perm]``; the rows (and the unit
    columns) that come from Q1 precede those from Q2; ``values`` are the eigenvalues in
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
    entries with a z component, those from the first half first (``nd`` non-deflated, ``cdf``
    deflated by the rotations ``rots``), ``unit`` the ones without; ``d``, ``z``: poles and z
    after the rotations; ``ds``: before."""
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


def _close_pairs(ds, zs, keep, tol, rotated: list):
    """The pairs ``t`` (of consecutive kept entries ``keep[t], keep[t + 1]``) that the deflation
    must test one by one, ascending: those a vectorized screen of the unrotated values finds
    close (within twice the tolerance, so rounding cannot hide one), and each pair after one the
    caller rotated (``rotated[t]`` set before the next pair is asked for: the rotation changed
    that pair's first entry)."""
    n = keep.size - 1
    if n <= 0:
        return
    a, b = keep[:-1], keep[1:]
    with np.errstate(all="ignore"):
        r = np.hypot(zs[a], zs[b])
        close = ~(np.abs((ds[b] - ds[a]) * (zs[b] / r) * (zs[a] / r)) > 2 * tol)
    cands = np.flatnonzero(close).tolist()
    i, t = 0, -1
    while True:
        while i < len(cands) and cands[i] <= t:
            i += 1
        t = t + 1 if t >= 0 and rotated[t] else (cands[i] if i < len(cands) else n)
        if t >= n:
            return
        yield t


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
    dl, zl, kl = ds.tolist(), zs.tolist(), keep.tolist()
    rotated = [False] * len(kl)           # keep[t] deflated by the rotation of pair (t, t + 1)
    rots = []
    for t in _close_pairs(ds, zs, keep, tol, rotated):   # rotate z of keep[t] into keep[t + 1]
        pj, j = kl[t], kl[t + 1]
        zp, zq = zl[pj], zl[j]
        r = math.hypot(zp, zq)
        c, s = zq / r, zp / r
        if abs((dl[j] - dl[pj]) * c * s) <= tol:
            dp, dq = dl[pj], dl[j]
            dl[pj], dl[j] = c * c * dp + s * s * dq, s * s * dp + c * c * dq
            zl[pj], zl[j] = 0.0, r
            rots.append((pj, j, c, s))
            rotated[t] = True
    nd = [j for j, rot in zip(kl, rotated) if not rot]
    cdf = [j for j, rot in zip(kl, rotated) if rot]
    unit = np.flatnonzero(zdef)
    unit = np.concatenate([unit[perm[unit] < m], unit[perm[unit] >= m]])   # first half's columns first
    keep = np.concatenate([keep[perm[keep] < m], keep[perm[keep] >= m]])  # the first half's rows first
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
    roots = secular_batch([(x.d[x.nd], x.z[x.nd], x.rho) for x in defl], deltas=vectors)
    return [_finish(x, r, vectors) for x, r in zip(defl, roots)]


def merge_plan(w1: np.ndarray, w2: np.ndarray, z: np.ndarray, rho: float, m: int,
               vectors: bool = True) -> MergePlan:
    """:func:`merge_plans` of one merge."""
    return merge_plans([(w1, w2, z, rho, m)], vectors)[0]
