"""Symmetric tridiagonal eigensolver by divide and conquer (Cuppen's method, as LAPACK's dstedc).

``T = diag(d) + diag(e, 1) + diag(e, -1)`` is scaled to unit max norm and split where an
off-diagonal entry is negligible (``|e_i| <= eps sqrt(|d_i d_{i+1}|)``) into independent blocks
(consecutive small blocks are solved together). A larger block is halved, by rank-one tears
``T = diag(T1', T2') + rho u u^T``, until the pieces have at most :data:`LEAF` rows; the leaves are
NumPy's LAPACK ``eigh`` of the small dense matrices (one batched call per size). The tree is then
merged bottom-up, one level at a time: each merge solves ``D + rho z z^T`` on the host
(:mod:`._tridiagonal_secular`: deflation, the secular equation, Gu-Eisenstat eigenvectors; O(n^2),
the secular equations of a whole level together, their pole sums in a generated kernel). The merged
eigenvectors are ``blockdiag(Q1, Q2) @ U``: two GEMMs (``Q1 @ U_top``, ``Q2 @ U_bottom``, over the
non-deflated columns only) through egpu_array's matmul on the device of ``like`` for blocks of at
least :data:`DEVICE_MIN` rows (they hold nearly all the flops; smaller merges run in NumPy on the
host and their results go up once); deflated columns are copied there. Nothing of the eigenvectors
is read back: the rows a parent merge needs (the last row of the left half, the first row of the
right half) are tracked on the host by applying each merge to the two boundary rows.

With ``vectors=False`` the same tree runs without the device: only the boundary rows of the
eigenvector matrices are kept (O(n^2) host work in all), so the eigenvalues have the accuracy of
the full method.

Each node's eigenvector matrix is kept with its columns unsorted (``raw``) plus a host permutation
(``cols``: column ``i`` of Q is ``raw[:, cols[i]]``); the parent composes the permutation into its
own gathers, so columns are moved once per merge.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _dtypes as dt
from ._array import Array
from ._transfer import from_host, internal
from ._tridiagonal_secular import merge_plans

__all__ = ["tridiagonal_eigh", "LEAF", "DEVICE_MIN"]

#: largest block solved directly on the host (dense LAPACK eigh of the small tridiagonal, one
#: batched call per size): each merge level costs a few ms of Python, a leaf's dense eigh far less
#: (float64 1 thread, order 500 / 1000: eigenvalues 28 / 70 ms with 25, 13 / 25 ms with 64;
#: eigenvectors 37-45 / 68 ms with 25, 24 / 53 ms with 64)
LEAF = 64
#: merges of blocks with fewer rows build their eigenvectors on the host (NumPy; their flops are
#: a small share), larger ones on the device with its GEMM
DEVICE_MIN = 128


class _Node(NamedTuple):
    """A solved block: eigenvalues ascending, its eigenvectors' first and last rows (host), and
    the eigenvectors on the device as ``raw[:, cols]`` (``raw`` None without vectors)."""
    w: np.ndarray
    first: np.ndarray
    last: np.ndarray
    raw: Array | None
    cols: np.ndarray


def _dense(d: np.ndarray, e: np.ndarray) -> np.ndarray:
    t = np.diag(d)
    if e.size:
        i = np.arange(e.size)
        t[i, i + 1] = e
        t[i + 1, i] = e
    return t


class _Solver:
    """One call's state: the device, the eigenvectors' dtype, whether vectors are wanted."""

    def __init__(self, like: Array | None, vectors: bool):
        self.like = like
        self.vectors = vectors
        self.dtype = like.dtype.real_dtype if like is not None else dt.float64

    # -- device helpers ---------------------------------------------------------------------------

    def up(self, host: np.ndarray, dtype=None) -> Array:
        with internal("linalg.tridiagonal_eigh"):
            return from_host(host, dtype or self.dtype, self.like.device)

    def on_device(self, raw):
        """A node's eigenvectors as an Array on the device (host ones are uploaded)."""
        return raw if isinstance(raw, Array) else self.up(raw)

    def cols_of(self, raw, idx: np.ndarray):
        """``raw[:, idx]`` (``raw`` itself when ``idx`` picks every column in order), on the host
        or on the device, where ``raw`` is."""
        from ._gather import take
        if idx.size == raw.shape[1] and (idx == np.arange(idx.size)).all():
            return raw
        if isinstance(raw, np.ndarray):
            return raw[:, idx]
        return take(raw, self.up(idx, dt.int64), axis=1)

    def empty(self, n: int, device: bool, cols: int | None = None):
        from ._creation import empty
        shape = (n, n if cols is None else cols)
        return empty(shape, dtype=self.dtype, device=self.like.device) if device else np.empty(shape)

    # -- the merge tree ---------------------------------------------------------------------------

    def leaves(self, d: np.ndarray, e: np.ndarray, ranges: list, top: bool) -> list:
        """Solve the leaf blocks ``d[a:b]`` (at most LEAF rows each) on the host: one batched
        LAPACK ``eigh`` per block size."""
        nodes = [None] * len(ranges)
        for size in sorted({b - a for a, b in ranges}):
            which = [i for i, (a, b) in enumerate(ranges) if b - a == size]
            mats = np.stack([_dense(d[a:b], e[a:b - 1]) for a, b in (ranges[i] for i in which)])
            if not self.vectors and top:
                for i, w in zip(which, np.linalg.eigvalsh(mats)):
                    nodes[i] = _Node(w, None, None, None, None)
                continue
            ws, vs = np.linalg.eigh(mats)
            for j, i in enumerate(which):
                nodes[i] = _Node(ws[j], vs[j, 0].copy(), vs[j, -1].copy(), vs[j] if self.vectors else None,
                                 np.arange(size))
        return nodes

    def solve(self, d: np.ndarray, e: np.ndarray, top: bool = False, keep=None) -> _Node:
        """Eigen-decomposition of one block (``top``: the caller needs no boundary rows). The block
        is halved until the pieces have at most LEAF rows; the merges of one level of that tree
        solve their secular equations together. ``keep(w)`` (with vectors; w ascending): how many
        eigenvectors of the largest eigenvalues the last merge makes (its node's ``cols`` then
        lists only those, ascending)."""
        n = d.size
        levels = [[(0, n)]]
        while max(b - a for a, b in levels[-1]) > max(LEAF, 2):
            levels.append([r for a, b in levels[-1] for r in ((a, a + (b - a) // 2), (a + (b - a) // 2, b))])
        d = d.copy()
        for ranges in levels[:-1]:           # the rank-one tears: T = diag(T1', T2') + rho u u^T
            for a, b in ranges:
                p = a + (b - a) // 2
                d[p - 1] -= abs(e[p - 1])
                d[p] -= abs(e[p - 1])
        nodes = self.leaves(d, e, levels[-1], top and len(levels) == 1)
        for depth in range(len(levels) - 2, -1, -1):
            rows_needed = self.vectors or depth > 0 or not top
            merges = []
            for i, (a, b) in enumerate(levels[depth]):
                left, right = nodes[2 * i], nodes[2 * i + 1]
                beta = e[a + (b - a) // 2 - 1]
                z = np.concatenate([left.last, np.copysign(1.0, beta) * right.first])
                merges.append((left.w, right.w, z, abs(beta), left.w.size))
            plans = merge_plans(merges, vectors=rows_needed)
            parents = []
            for i, plan in enumerate(plans):
                left, right = nodes[2 * i], nodes[2 * i + 1]
                w = plan.values[plan.order]
                if not rows_needed:
                    parents.append(_Node(w, None, None, None, None))
                    continue
                m, k = left.w.size, right.w.size
                first = plan.apply_row(np.concatenate([left.first, np.zeros(k)]))
                last = plan.apply_row(np.concatenate([np.zeros(m), right.last]))
                if self.vectors and keep is not None and depth == 0:
                    wanted = plan.order[w.size - keep(w):]
                    raw, pos = self.merge_vectors(plan, left, right, m, m + k, wanted)
                    parents.append(_Node(w, first, last, raw, pos[wanted]))
                    continue
                raw = self.merge_vectors(plan, left, right, m, m + k) if self.vectors else None
                parents.append(_Node(w, first, last, raw, plan.order))
            nodes = parents
        return nodes[0]

    def merge_vectors(self, plan, left: _Node, right: _Node, m: int, n: int, wanted=None):
        """The merged eigenvectors, columns in the plan's catalogue order: ``Q1 @ mat_top`` over
        ``Q2 @ mat_bottom`` for the secular and rotated columns (two GEMMs), then the deflated
        unit columns copied from Q1 or Q2. Blocks of at least :data:`DEVICE_MIN` rows are merged on
        the device (children still on the host are uploaded first), smaller ones on the host.

        ``wanted`` (catalogue columns): only those are made; returns (matrix, pos) with ``pos[c]``
        the matrix column of catalogue column ``c``."""
        from ._linalg_funcs import matmul
        device = n >= DEVICE_MIN
        q1, q2 = (self.on_device(x.raw) if device else x.raw for x in (left, right))
        product = (lambda q, a: matmul(q, self.up(a))) if device else (lambda q, a: q @ a)
        nb = plan.mat.shape[1]
        sec = np.arange(nb) if wanted is None else np.sort(wanted[wanted < nb])
        uni = np.arange(n - nb) if wanted is None else np.sort(wanted[wanted >= nb]) - nb
        ns = sec.size
        out = self.empty(n, device, ns + uni.size)
        src = plan.perm[plan.rows]                 # block-diagonal column of each row of mat
        n1 = int(np.count_nonzero(src < m))        # mat's rows from Q1 come first
        if ns:
            mat = plan.mat if wanted is None else plan.mat[:, sec]
            for q, node, sel, rows, off in ((q1, left, slice(0, n1), slice(0, m), 0),
                                            (q2, right, slice(n1, None), slice(m, n), m)):
                if src[sel].size:
                    out[rows, :ns] = product(self.cols_of(q, node.cols[src[sel] - off]), mat[sel])
                else:
                    out[rows, :ns] = 0.0
        usrc = plan.perm[plan.unit][uni]
        from_q1 = usrc < m
        u1, u2 = usrc[from_q1], usrc[~from_q1] - m
        c1, c2 = ns + u1.size, ns + uni.size
        if u1.size:
            out[:m, ns:c1] = self.cols_of(q1, left.cols[u1])
            out[m:, ns:c1] = 0.0
        if u2.size:
            out[m:, c1:c2] = self.cols_of(q2, right.cols[u2])
            out[:m, c1:c2] = 0.0
        if wanted is None:
            return out
        pos = np.full(n, -1, dtype=np.int64)
        pos[sec] = np.arange(ns)
        pos[nb + uni[from_q1]] = np.arange(ns, c1)
        pos[nb + uni[~from_q1]] = np.arange(c1, c2)
        return out, pos


def _blocks(d: np.ndarray, e: np.ndarray) -> list:
    """(start, stop) of the unreduced blocks: ``e`` is zeroed where negligible."""
    small = np.abs(e) <= np.finfo(np.float64).eps * np.sqrt(np.abs(d[:-1]) * np.abs(d[1:]))
    e[small] = 0.0
    cuts = np.flatnonzero(e == 0) + 1
    edges = np.concatenate([[0], cuts, [d.size]])
    return list(zip(edges[:-1].tolist(), edges[1:].tolist()))


def _groups(blocks: list) -> list:
    """Consecutive small blocks gathered into groups of at most LEAF rows (one host eigh each);
    a larger block is a group of its own."""
    groups = []
    for a, b in blocks:
        if groups and b - groups[-1][0] <= LEAF and groups[-1][1] == a and groups[-1][1] - groups[-1][0] <= LEAF:
            groups[-1] = (groups[-1][0], b)
        else:
            groups.append((a, b))
    return groups


def _check(d, e, like, func: str = "tridiagonal_eigh"):
    d = np.asarray(d)
    e = np.asarray(e)
    if d.ndim != 1 or e.ndim != 1 or e.size != max(d.size - 1, 0):
        raise ValueError(f"{func}: expected d of shape (n,) and e of shape (n-1,), got {d.shape} and {e.shape}")
    if d.dtype.kind not in "fiu" or e.dtype.kind not in "fiu":
        raise TypeError(f"{func}: d and e must be real, got {d.dtype} and {e.dtype}")
    if not (np.isfinite(d).all() and np.isfinite(e).all()):
        raise ValueError(f"{func}: d and e must be finite")
    if not isinstance(like, Array):
        raise TypeError(f"{func}: like must be an egpu_array Array, got {type(like).__name__}")
    if like.dtype.kind not in "fc":
        raise TypeError(f"{func}: like must have a floating dtype, got {like.dtype}")
    return d, e


def tridiagonal_eigh(d: np.ndarray, e: np.ndarray, *, like: Array, vectors: bool = True, keep=None):
    """Eigen-decomposition of the real symmetric tridiagonal ``T = diag(d) + diag(e, 1) + diag(e, -1)``.

    ``d`` (n,) and ``e`` (n-1,): host arrays (float32 or float64); the host work is float64.
    ``like``: an Array fixing the device of the eigenvectors and their dtype (``like``'s real dtype).
    Returns ``(w, Z)``: the eigenvalues ascending (host, the dtype of ``d``; float64 for integer
    input) and ``Z`` (n x n Array on ``like``'s device) with ``T = Z diag(w) Z^T``, or None when
    ``vectors`` is False.

    ``keep(w)`` (optional; ``w`` the eigenvalues ascending, scaled): Z holds only the eigenvectors
    of the ``keep(w)`` largest eigenvalues (in ascending order, n x keep(w)); an unreduced T's last
    merge then makes only those (the SVD needs about half of its Golub-Kahan form's)."""
    from ._gather import take
    d, e = _check(d, e, like)
    wdtype = d.dtype if d.dtype.kind == "f" else np.dtype(np.float64)
    n = d.size
    solver = _Solver(like, vectors)
    scale = max(np.abs(d).max(initial=0.0), np.abs(e).max(initial=0.0))
    if n == 0 or scale == 0:
        z = None
        if vectors:
            z = solver.up(np.eye(n))
        return np.zeros(n, dtype=wdtype), z
    ds = d.astype(np.float64) / scale
    es = e.astype(np.float64) / scale
    groups = _groups(_blocks(ds, es))
    one = keep if len(groups) == 1 else None
    nodes = [solver.solve(ds[a:b], es[a:b - 1], top=True, keep=one) for a, b in groups]
    values = np.concatenate([nd.w for nd in nodes])
    order = np.argsort(values, kind="stable")
    w = (values[order] * scale).astype(wdtype)
    if not vectors:
        return w, None
    count = n if keep is None else int(keep(values[order]))
    if len(nodes) == 1:
        cols = nodes[0].cols
        return w, solver.on_device(solver.cols_of(nodes[0].raw, cols[cols.size - count:]))
    out = solver.empty(n, True)                    # block diagonal, then the columns sorted once
    out[...] = 0.0
    for (a, b), nd in zip(groups, nodes):
        out[a:b, a:b] = solver.on_device(nd.raw)
    cols = np.concatenate([nd.cols + a for (a, _), nd in zip(groups, nodes)])
    return w, take(out, solver.up(cols[order][n - count:], dt.int64), axis=1)
