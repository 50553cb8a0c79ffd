"""Where each ``linalg`` decomposition runs: the blocked forms on the array's device, or one
explicit host LAPACK step (NumPy), with the helpers of that host step and the SVD's routing
(square, tall and wide matrices). :mod:`egpu_array.linalg` holds the public functions.
"""
from __future__ import annotations

import numpy as np

from . import _linalg_blocked as blocked
from . import _linalg_svd as _svd
from . import profiler
from ._array import Array
from ._transfer import from_host, internal, to_host


def _blocked(x, n: int | None = None) -> bool:
    """Whether a factorization of ``x`` runs blocked on its device (more than one panel, nonempty)."""
    n = x.shape[-1] if n is None else n
    return not blocked.single_panel(n) and x.size > 0


#: order below which eigh/eigvalsh and the square svd/svdvals stay one host LAPACK step on devices
#: whose memory is the host's (cpu): there the blocked forms pay Python per column and per merge
#: that LAPACK does not. Measured, one thread, ours/NumPy time (eigh, svd): n = 200: 9.1x, 10.9x;
#: 300: 7.1x, 8.3x; 500: 3.8x, 3.9x; 700: 3.2x, 3.2x; 1000: 2.0x, 2.65x. Other devices take the
#: blocked forms beyond one panel (the host step would move the whole matrix over the link).
SPECTRAL_HOST_BELOW = 768


def _spectral_order(x, n: int) -> bool:
    """Whether a spectral problem (eigh, the square SVD) of order ``n`` on ``x``'s device is
    large enough for the blocked forms there (see :data:`SPECTRAL_HOST_BELOW`)."""
    return not x.device.host_memory or n >= SPECTRAL_HOST_BELOW


def _spectral_blocked(x) -> bool:
    """Whether ``eigh``/``eigvalsh``/the square ``svd`` of ``x`` take the blocked forms."""
    return _blocked(x) and _spectral_order(x, x.shape[-1])


def check_solve_shapes(x1: Array, x2: Array) -> tuple:
    """The broadcast batch shape of ``solve(x1, x2)``; ValueError naming linalg.solve when x2's
    rows (its only axis when 1-D) do not match x1's order or the batches do not broadcast."""
    from ._shapes import broadcast_shapes
    n = x1.shape[-1]
    if x2.ndim == 0:
        raise ValueError("linalg.solve: x2 must have at least one dimension, got a 0-d array")
    rows, batch = (x2.shape[0], ()) if x2.ndim == 1 else (x2.shape[-2], x2.shape[:-2])
    if rows != n:
        raise ValueError(f"linalg.solve: x2 has {rows} rows, expected {n} (shape {x2.shape})")
    return broadcast_shapes(x1.shape[:-2], batch, func="linalg.solve")


def _solve_blocked(x1: Array, x2: Array, dtype) -> Array:
    """``solve`` through the blocked LU of ``x1``: batch dimensions broadcast; a 1-D ``x2`` is one
    right-hand side column."""
    from ._data_type import astype
    from ._manipulation import broadcast_to
    n = x1.shape[-1]
    vector = x2.ndim == 1
    b = x2[:, None] if vector else x2
    batch = check_solve_shapes(x1, x2)
    a = broadcast_to(astype(x1, dtype), batch + (n, n))
    b = broadcast_to(astype(b, dtype), batch + b.shape[-2:])
    out = blocked.lu_solve(blocked.lu(a, "solve"), b, "solve")
    return out[..., 0] if vector else out


# ---- host LAPACK steps (explicit, visible in the profiler) ---------------------------------------

def _host(func: str, *arrays) -> list:
    profiler.note(f"linalg.{func}: host LAPACK step (numpy.linalg) on "
                  f"{', '.join(str(a.shape) for a in arrays)}")
    with internal(f"linalg.{func}"):
        return [to_host(a, copy=True) for a in arrays]


def _back(value, like: Array, dtype=None) -> Array:
    dtype = dtype or like.dtype
    with internal("linalg (result of a host LAPACK step)"):
        return from_host(np.asarray(value, dtype=dtype.np), dtype, like.device)


def _square_blocked(x) -> bool:
    """Whether the SVD of ``x`` is the blocked square one (``_linalg_svd``: bidiagonalization on
    the device, the bidiagonal problem through the Golub-Kahan tridiagonal): square, wider than
    one panel (on host-memory devices, of order :data:`SPECTRAL_HOST_BELOW` at least)."""
    return x.shape[-1] == x.shape[-2] and _spectral_blocked(x)


def _tall(x) -> bool:
    """Whether the SVD of ``x`` starts with a blocked QR: taller than wide and wider than one panel,
    and either at least twice as tall as wide or large enough that the ``n x n`` factor R gets
    the blocked square SVD (otherwise R's SVD is a host step, which pays off only when R is
    much smaller than ``x``)."""
    m, n = x.shape[-2:]
    return m > n and _blocked(x, n) and (m >= 2 * n or _spectral_order(x, n))


def _square_svd(func: str, r, vectors: bool):
    """(U, S, Vh) of the square matrices ``r`` (U, Vh None unless ``vectors``): the blocked square
    SVD where :func:`_square_blocked` says so, else one host LAPACK step."""
    if _square_blocked(r):
        return _svd.svd_blocked(r, vectors, func)
    (rh,) = _host(func, r)
    if not vectors:
        return None, _back(np.linalg.svd(rh, compute_uv=False), r, r.dtype.real_dtype), None
    ur, s, vh = np.linalg.svd(rh, full_matrices=False)
    return _back(ur, r), _back(s, r, r.dtype.real_dtype), _back(vh, r)


def _svd_tall(x, full_matrices: bool) -> tuple:
    """SVD of tall ``x`` (..., m, n): blocked QR on the device, the SVD of the ``n x n`` R
    (:func:`_square_svd`), U = Q U_R on the device (with the complete Q's trailing columns when
    ``full_matrices``)."""
    from ._linalg_funcs import matmul
    from ._manipulation import concat
    n = x.shape[-1]
    q, r = blocked.qr(x, complete=full_matrices)
    ur, s, vh = _square_svd("svd", r[..., :n, :], True)
    u = matmul(q[..., :, :n], ur)
    if full_matrices:
        u = concat([u, q[..., :, n:]], axis=-1)
    return u, s, vh
