"""Blocked Householder reduction to tridiagonal form, and ``eigh`` built on it.

:func:`tridiagonalize` is LAPACK's sytrd/hetrd (lower) in MAGMA's hybrid shape. The matrix is
walked in panels of :data:`NB` columns. A panel (latrd) runs on the host column by column: it
updates its column with the reflectors and ``W`` columns found so far in the panel, makes the
column's Householder reflector, and needs one product of the trailing matrix with the reflector;
that product (the half of sytrd's flops that reads the whole trailing matrix every column) is
a matrix-vector product on the array's device, so only two vectors cross per column. After the
panel, the rank-``2 NB`` trailing update ``A22 -= V W^H + W V^H`` is one GEMM on the device. The
last block of at most :data:`TAIL` columns is read to the host once and reduced there, in
panels of :data:`NB` columns with host rank-``2 NB`` updates between them.

Reflectors are LAPACK's (larfg): ``H = I - tau v v^H`` with ``H^H [alpha; x] = [beta; 0]`` and
``beta`` real, so for Hermitian matrices the off-diagonal ``e`` comes out real with no phase
scaling, and ``A = Q T Q^H`` with ``Q = H_0 H_1 ... H_{n-2}``. :func:`apply_q` computes ``Q Z``
in blocks of :data:`APPLY_WIDTH` reflectors in compact WY form ``I - V T V^H`` (GEMMs on the
device, last block first).

Cost: on host-memory devices (cpu) the per-column product of a real matrix is one launch of a
``kernels.gemv`` kernel through a prepared argument block (:class:`_Gemv`); elsewhere, and for
complex matrices, it goes through the lazy graph (about 0.15-0.3 ms of Python a column on this
host, as much as its memory reads). The host work per column (latrd) and the tridiagonal solver
keep eigvalsh several times slower than LAPACK on the cpu device.

:func:`eigh_blocked` solves the tridiagonal problem with
:func:`egpu_array._tridiagonal.tridiagonal_eigh` and multiplies its eigenvectors by Q.

On the cpu device nothing is copied but the panels (host copies of device memory); on other
devices the panels, the tail block and two vectors per column cross the link, listed in the
profiler as the library's own copies (named after the function).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from . import profiler
from ._array import Array
from ._linalg_blocked import _hn, _read, _up, _work_copy, conj_transpose
from ._transfer import from_host, internal, to_host
from ._host_blas import one_blas_thread

__all__ = ["NB", "TAIL", "APPLY_WIDTH", "Reflectors", "tridiagonalize", "apply_q", "eigh_blocked"]

#: panel width of the reduction: columns reduced per host panel step
NB = 64

#: the last columns (at most this many) are reduced on the host from one copy of their block, as
#: LAPACK's sytrd hands its last ``nx`` columns to the unblocked code: there a product with the
#: trailing matrix moves fewer bytes than a device launch costs in overhead
TAIL = 256

#: reflectors per compact WY block when Q is applied (wider blocks: fewer, larger GEMMs)
APPLY_WIDTH = 128


class Reflectors(NamedTuple):
    """A product of Householder reflectors on ``n`` rows: per panel ``(r, v, tau)`` (host) with
    ``v`` (n - r, kb) the panel's reflectors on rows ``r:`` (unit first entries, zeros above) and
    ``tau`` (kb,); the panel's product of reflectors is ``I - V T V^H``."""
    n: int
    panels: list


def _norm(x: np.ndarray):
    """The 2-norm of a host vector: one dot product, rescaled only where its square over- or
    underflows."""
    ss = np.vdot(x, x).real
    if np.isfinite(ss) and (ss > np.finfo(ss.dtype).tiny or ss == 0 and not x.any()):
        return np.sqrt(ss)
    scale = np.abs(x).max()
    return scale * np.sqrt(np.vdot(x / scale, x / scale).real) if scale else scale


#: per real dtype, the square norms that take :func:`_larfg`'s plain float path (well inside the
#: dtype's normal range, where the dot product neither over- nor underflows)
_SAFE = {np.dtype(t): (float(np.finfo(t).tiny) * 2.0 ** 20, float(np.finfo(t).max) * 2.0 ** -20)
         for t in (np.float32, np.float64)}


def _larfg(alpha, x: np.ndarray):
    """LAPACK's larfg: (beta, tau, v) with ``(I - tau [1; v] [1; v]^H)^H [alpha; x] = [beta; 0]``,
    ``beta`` real; ``tau = 0`` (the identity) when ``x`` is zero and ``alpha`` real. Real vectors
    whose square norm neither over- nor underflows take Python floats (no NumPy scalars)."""
    safe = _SAFE.get(x.dtype) if x.size else None
    if safe is not None:
        ss, a = float(np.vdot(x, x)), float(alpha)      # vdot: no overflow warning, as _norm
        if safe[0] < ss < safe[1]:
            beta = -math.copysign(math.hypot(a, math.sqrt(ss)), a)
            return beta, (beta - a) / beta, x * (1.0 / (a - beta))
    xnorm = _norm(x) if x.size else 0.0
    if xnorm == 0 and alpha.imag == 0:
        return alpha.real, alpha * 0, x
    beta = -np.copysign(np.hypot(abs(alpha), xnorm), alpha.real)
    return beta, (beta - alpha) / beta, x / (alpha - beta)


def _panel(p: np.ndarray, ncols: int, matvec):
    """latrd (lower) on the host panel ``p`` (m, >= ncols): the columns of the trailing matrix as
    they were at the panel's start (a column-major ``p`` is updated in place, others copied).
    ``matvec(j, v)`` returns the product of the panel-start trailing matrix from local row/column
    ``j`` on with ``v`` (host vectors).

    Returns (d (ncols,), e, tau (min(ncols, m - 1),), vw, wv (m, 2 ncols)): the columns of vw
    pair each reflector ``v_i`` (column 2i, unit entry on row i + 1) with its ``w_i`` (column
    2i + 1), wv holds the same with each pair swapped; the panel's update of the trailing matrix
    is ``A -= V W^H + W V^H = vw wv^H``."""
    m = p.shape[0]
    nref = min(ncols, m - 1)
    cplx = p.dtype.kind == "c"
    p = np.asfortranarray(p)                    # contiguous columns (a copy of a row-major panel)
    vw = np.zeros((m, 2 * ncols), dtype=p.dtype, order="F")
    wv = np.zeros((m, 2 * ncols), dtype=p.dtype, order="F")
    d = np.empty(ncols, dtype=p.real.dtype)
    e = np.empty(nref, dtype=p.real.dtype)
    tau = np.zeros(nref, dtype=p.dtype)
    for i in range(ncols):
        col = p[i:, i]
        if i:                                   # A(i:, i) -= V W(i, :)^H + W V(i, :)^H
            row = wv[i, :2 * i]
            col -= vw[i:, :2 * i] @ (np.conj(row) if cplx else row)
        d[i] = col[0].real
        if i == nref:
            break
        beta, t, tail = _larfg(col[1], col[2:])
        e[i], tau[i] = beta, t
        v = vw[i + 1:, 2 * i]
        v[0] = 1
        v[1:] = tail
        wv[i + 1:, 2 * i + 1] = v
        if t == 0:
            continue
        y = matvec(i + 1, v)
        if i:                                   # y -= W (V^H v) + V (W^H v)
            prev = vw[i + 1:, :2 * i]
            s = np.conj(np.conj(v) @ prev) if cplx else v @ prev
            y -= wv[i + 1:, :2 * i] @ s
        y *= t
        y += (-0.5 * t * np.vdot(y, v)) * v
        vw[i + 1:, 2 * i + 1] = y
        wv[i + 1:, 2 * i] = y
    return d, e, tau, vw, wv


class _Products:
    """Products of the device matrix ``a`` (contiguous, realized) with host vectors, one launch
    each: ``A[i:, j:] @ v`` and ``A[i:, j:]^H @ v`` as host vectors. The adjoint product is
    ``conj(conj(v)^T A)``, which reads the rows of A once, in place (so a Hermitian A takes it for
    ``A v`` too). On a device with host memory the vectors go through one staging buffer."""

    def __init__(self, func: str, a: Array):
        self.func, self.a, self.cplx = func, a, a.dtype.kind == "c"
        self.stage = None
        if a.device.host_memory:
            with internal(f"linalg.{func}"):
                self.stage = from_host(np.zeros(max(a.shape)), a.dtype, a.device)
            self.host = to_host(self.stage, writeable=True)
        self.gemv = _Gemv(a) if a.device.host_memory and a.dtype.kind == "f" else None

    def _vector(self, v: np.ndarray) -> Array:
        from ._views import make_view
        if self.stage is None:
            return from_host(v, self.a.dtype, self.a.device)
        self.host[:v.size] = v
        return make_view(self.stage, v.shape, (1,), 0)

    def __call__(self, i: int, j: int, v: np.ndarray, adjoint: bool) -> np.ndarray:
        from ._linalg_funcs import matmul
        from ._views import make_view
        if self.gemv is not None:
            return self.gemv(i, j, v, adjoint)
        a, view = self.a, self.a._realize()
        s0, s1 = view.strides
        block = make_view(a, (a.shape[0] - i, a.shape[1] - j), (s0, s1), view.offset + i * s0 + j * s1)
        with internal(f"linalg.{self.func}"):
            if not adjoint:
                return np.array(to_host(matmul(block, self._vector(v))), copy=True)
            y = np.array(to_host(matmul(self._vector(np.conj(v) if self.cplx else v), block)), copy=True)
        return np.conj(y, out=y) if self.cplx else y


#: blocks below this many bytes are multiplied by one work item (one thread): split over the two
#: cores of this host, a block that sits in one core's cache is slower (1000 x 1000 float64:
#: 210-220 us on one thread, 320-360 us on two); from ~1500 x 1500 on two threads win
GEMV_SPLIT_BYTES = 12 << 20


class _Gemv:
    """:class:`_Products` of a real matrix on a host-memory device by the kernels of
    ``kernels.gemv`` with one prepared argument block: per call, the block's corner and extents
    and the vector go in, the product comes out (no lazy graph, no allocation)."""

    def __init__(self, a: Array):
        from .kernels.cache import get_program
        from .kernels.gemv import GemvSpec
        from ._schedule import pack_args
        view = a._realize()
        if view.strides[-1] != 1:
            raise ValueError("linalg: matrix-vector products need rows with contiguous columns")
        self.a, self.view, self.isz = a, view, a.dtype.itemsize
        self.programs = {t: get_program(a.device, GemvSpec(a.dtype.name, t)) for t in (True, False)}
        self.symv = None
        size = max(a.shape)
        self.v, self.y = np.zeros(size, dtype=a.dtype.np), np.zeros(size, dtype=a.dtype.np)
        self.args = pack_args([0] * 7)

    def __call__(self, i: int, j: int, v: np.ndarray, adjoint: bool) -> np.ndarray:
        m, n = self.a.shape[0] - i, self.a.shape[1] - j
        if not (0 <= i <= self.a.shape[0] and 0 <= j <= self.a.shape[1]) or v.shape != ((m,) if adjoint else (n,)):
            raise ValueError(f"linalg: product of a {m} x {n} block with a vector of shape {v.shape}")
        self.v[:v.size] = v
        out, chunk = (n, 256) if adjoint else (m, 64)
        if m * n * self.isz < GEMV_SPLIT_BYTES:
            chunk = max(out, 1)                 # one work item: the block stays on one core's cache
        ld = self.view.strides[-2]
        corner = self.view.buffer.ptr + (self.view.offset + i * ld + j) * self.isz
        for k, value in enumerate((corner, ld, m, n, self.v.ctypes.data, self.y.ctypes.data, chunk)):
            self.args[k] = value
        self.a.device.launch(self.programs[adjoint], self.args, -(-out // chunk), m * n * self.isz, work=m * n)
        return self.y[:out].copy()

    def symmetric(self, i: int, v: np.ndarray) -> np.ndarray:
        """``A[i:, i:] @ v`` of a symmetric ``A`` from its lower triangle (kernels.symv: half the
        bytes of :meth:`__call__`), on one thread; blocks of :data:`GEMV_SPLIT_BYTES` or more take
        the full product split over the threads."""
        from .kernels.cache import get_program
        from .kernels.symv import SymvSpec
        m = self.a.shape[0] - i
        if m * m * self.isz >= GEMV_SPLIT_BYTES:
            return self(i, i, v, False)
        if not 0 <= i <= self.a.shape[0] or self.a.shape[0] != self.a.shape[1] or v.shape != (m,):
            raise ValueError(f"linalg: symmetric product of a {m} x {m} block with a vector of shape {v.shape}")
        if self.symv is None:
            self.symv = get_program(self.a.device, SymvSpec(self.a.dtype.name))
        self.v[:m] = v
        ld = self.view.strides[-2]
        corner = self.view.buffer.ptr + (self.view.offset + i * ld + i) * self.isz
        for k, value in enumerate((corner, ld, m, self.v.ctypes.data, self.y.ctypes.data)):
            self.args[k] = value
        self.a.device.launch(self.symv, self.args, 1, m * m * self.isz // 2, work=m * m // 2)
        return self.y[:m].copy()


def _hermitian_copy(x: Array) -> Array:
    """A private copy of ``x`` with its upper triangle rebuilt from the lower one and a real
    diagonal (LAPACK's lower eigh reads only those)."""
    from ._creation import eye, tril
    from ._elementwise import real
    n = x.shape[-1]
    low = tril(x, k=-1)
    diag = real(x) * eye(n, dtype=x.dtype.real_dtype, device=x.device)
    return _work_copy(low + conj_transpose(low) + diag)


def tridiagonalize(x: Array, func: str = "eigh", keep_q: bool = True):
    """Reduce one Hermitian matrix ``x`` (n, n; its lower triangle is read) to ``T = Q^H A Q``.

    Returns (d (n,), e (n - 1,): T's diagonal and off-diagonal, real host arrays; the
    :class:`Reflectors` of Q, or None when ``keep_q`` is false)."""
    from ._linalg_funcs import matmul
    n = x.shape[-1]
    real = x.dtype.real_dtype.np
    d, e = np.empty(n, dtype=real), np.empty(max(n - 1, 0), dtype=real)
    panels = []
    a = _hermitian_copy(x)
    product = _Products(func, a)
    if product.gemv is not None:        # real, host memory: A v from A's lower triangle (kernels.symv)
        def matvec(j, vec):
            return product.gemv.symmetric(k + j, vec)
    else:                               # else as the adjoint product (it reads A's rows once)
        def matvec(j, vec):
            return product(k + j, k + j, vec, True)
    k = 0
    while n - k > max(NB, TAIL):                        # device panels
        f = k + NB
        p = _read(func, a[k:, k:f])
        d[k:f], e[k:f], tau, vw, wv = _panel(p, NB, matvec)
        left, right = _up(func, vw[NB:], a), _up(func, _hn(wv[NB:]), a)
        a[f:, f:] = a[f:, f:] - matmul(left, right)      # A22 -= V W^H + W V^H
        if keep_q:
            panels.append((k + 1, vw[1:, 0::2], tau))
        k = f
    if k < n:                                           # the last block, on the host
        p = np.array(_read(func, a[k:, k:]), order="F")
        for j in range(0, n - k, NB):                   # host panels, host trailing updates
            f = min(j + NB, n - k)
            d[k + j:k + f], e[k + j:k + f], tau, vw, wv = _panel(
                p[j:, j:f], f - j, lambda i, vec: p[j + i:, j + i:] @ vec)
            if f < n - k:
                p[f:, f:] -= vw[f - j:] @ _hn(wv[f - j:])
            if keep_q and tau.size:
                panels.append((k + j + 1, vw[1:, 0:2 * tau.size:2], tau))
    return d, e, (Reflectors(n, panels) if keep_q else None)


def _merged(panels: list, width: int) -> list:
    """Consecutive panels ``(r, v, tau)`` joined into blocks of at least ``width`` reflectors
    (while they adjoin: each starts where the previous one's columns end)."""
    out = []
    for r, v, tau in panels:
        if out and out[-1][1].shape[1] < width and out[-1][0] + out[-1][1].shape[1] == r:
            r0, v0, t0 = out[-1]
            pad = np.zeros((r - r0, v.shape[1]), dtype=v.dtype)
            out[-1] = (r0, np.concatenate([v0, np.concatenate([pad, v])], axis=1), np.concatenate([t0, tau]))
        else:
            out.append((r, v, tau))
    return out


def _larft(v: np.ndarray, tau: np.ndarray) -> np.ndarray:
    """The upper triangular T of ``H_0 ... H_{k-1} = I - V T V^H`` (LAPACK's larft, forward and
    columnwise) for one host block of reflectors ``v`` (m, k) and ``tau`` (k,): column i of T is
    ``-tau_i T[:i, :i] (V^H V)[:i, i]`` (one small matrix-vector product per column)."""
    k = v.shape[1]
    gram = np.conj(v.T) @ v if v.dtype.kind == "c" else v.T @ v
    t = np.zeros((k, k), dtype=v.dtype)
    for i in range(k):
        t[i, i] = tau[i]
        if i:
            t[:i, i] = (-tau[i]) * (t[:i, :i] @ gram[:i, i])
    return t


def apply_q(refl: Reflectors, z: Array, func: str = "eigh") -> Array:
    """``Q @ z`` for the product of reflectors ``refl`` (the Q of :func:`tridiagonalize`) and ``z``
    (n, c) on the device: the panels joined into blocks of :data:`APPLY_WIDTH` reflectors, each
    block ``I - V T V^H`` (compact WY) applied to its rows as three GEMMs, last block first."""
    from ._linalg_funcs import matmul
    if z.shape[-2] != refl.n:
        raise ValueError(f"linalg.{func}: apply_q expected {refl.n} rows, got shape {z.shape}")
    out = _work_copy(z)
    for r, v, tau in reversed(_merged(refl.panels, APPLY_WIDTH)):
        vd, td = _up(func, v, out), _up(func, _larft(v, tau), out)
        c = out[r:, :]
        out[r:, :] = c - matmul(vd, matmul(td, matmul(conj_transpose(vd), c)))
    return out


def _device_panels(n: int) -> int:
    """How many panels of :data:`NB` columns :func:`tridiagonalize` runs on the device for order n."""
    return max(0, -(-(n - max(NB, TAIL)) // NB))


def _note(func: str, n: int) -> None:
    p = _device_panels(n)
    profiler.note(f"linalg.{func}: blocked tridiagonal reduction, {p} panel(s) of {NB} columns on the host "
                  f"with each column's product with the trailing matrix and the trailing updates on the "
                  f"device, then the last {n - p * NB} columns on the host")


@one_blas_thread
def eigh_blocked(x: Array, vectors: bool, func: str = "eigh"):
    """Eigenvalues (ascending) and, when ``vectors``, eigenvectors of the Hermitian matrices ``x``
    (..., n, n; lower triangles read), one matrix at a time: :func:`tridiagonalize`, the
    tridiagonal solver, :func:`apply_q`. Returns (w Array (..., n) real, v Array or None)."""
    from ._data_type import astype
    from ._manipulation import reshape, stack
    from ._tridiagonal import tridiagonal_eigh
    from ._creation import zeros
    n = x.shape[-1]
    batch = x.shape[:-2]
    if x.size == 0:
        w = zeros(batch + (n,), dtype=x.dtype.real_dtype, device=x.device)
        return w, (zeros(x.shape, dtype=x.dtype, device=x.device) if vectors else None)
    _note(func, n)
    ws, vs = [], []
    for idx in np.ndindex(*batch):
        d, e, refl = tridiagonalize(x[idx], func, keep_q=vectors)
        if not (np.isfinite(d).all() and np.isfinite(e).all()):
            raise np.linalg.LinAlgError(f"linalg.{func}: eigenvalues did not converge (the matrix has nan "
                                        f"or inf entries)")
        w, z = tridiagonal_eigh(d, e, like=x, vectors=vectors)
        ws.append(np.asarray(w))
        if vectors:
            vs.append(apply_q(refl, astype(z, x.dtype, copy=False), func))
    with internal(f"linalg.{func}"):
        w = from_host(np.stack(ws).reshape(batch + (n,)), x.dtype.real_dtype, x.device)
    if not vectors:
        return w, None
    return w, (vs[0] if not batch else reshape(stack(vs), batch + (n, n)))

