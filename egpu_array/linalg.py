"""The ``linalg`` extension of the standard.

Products, norms, ``trace``, ``diagonal``, ``cross``, ``outer`` and ``matrix_power`` are generated
kernels on the array's device (views, fused elementwise expressions and reductions).

``cholesky``, ``qr``, ``solve``, ``inv``, ``det`` and ``slogdet`` of matrices wider than one panel
are blocked factorizations (:mod:`._linalg_blocked`): panels on the host with LAPACK, every
trailing update a GEMM on the array's device. ``eigh``/``eigvalsh`` reduce to tridiagonal form in
panels (:mod:`._linalg_reduce`) and solve it by divide and conquer (:mod:`._tridiagonal`, merges as
GEMMs); ``svd``/``svdvals`` of square matrices reduce to bidiagonal form and solve that through the
Golub-Kahan tridiagonal (:mod:`._linalg_svd`). ``svd``, ``svdvals`` and ``pinv`` of rectangular
matrices start with the blocked QR and decompose the ``n x n`` factor R.
Everything else (single panels, ``eig``, spectral problems below ``_linalg_route.SPECTRAL_HOST_BELOW``
on the cpu device) is one host LAPACK step (NumPy): on the cpu device this copies nothing; on other
devices the operands cross the link and the profiler shows the bytes and a note naming the step.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _dtypes as dt
from . import _linalg_blocked as blocked
from . import _linalg_svd as _svd
from ._array import Array, same_device
from ._linalg_funcs import matmul, matrix_transpose, tensordot, vecdot
from ._linalg_route import (_back, _blocked, _host, _solve_blocked, _spectral_blocked, _square_blocked,
                            _square_svd, _svd_tall, _tall, check_solve_shapes)

__all__ = ["cholesky", "cross", "det", "diagonal", "eig", "eigvals", "eigh", "eigvalsh", "inv", "matmul", "matrix_norm",
           "matrix_power", "matrix_rank", "matrix_transpose", "outer", "pinv", "qr", "slogdet", "solve",
           "svd", "svdvals", "tensordot", "trace", "vecdot", "vector_norm"]


def _check(func: str, x, category: str = "floating-point", min_ndim: int = 2) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"linalg.{func}: expected an Array, got {type(x).__name__}")
    dt.check_category(f"linalg.{func}", category, x.dtype)
    if x.ndim < min_ndim:
        raise ValueError(f"linalg.{func}: expected at least {min_ndim} dimensions, got shape {x.shape}")
    return x


def _square(func: str, x) -> None:
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"linalg.{func}: expected square matrices, got shape {x.shape}")


def cholesky(x, /, *, upper=False) -> Array:
    """Cholesky factor (lower, or upper with ``upper=True``) of Hermitian positive-definite matrices."""
    _check("cholesky", x)
    _square("cholesky", x)
    if _blocked(x):
        lower = blocked.cholesky(x)
        return blocked.conj_transpose(lower) if upper else lower
    (a,) = _host("cholesky", x)
    lower = np.linalg.cholesky(a)
    return _back(np.conj(np.swapaxes(lower, -1, -2)) if upper else lower, x)


def det(x, /) -> Array:
    """Determinants of square matrices."""
    _check("det", x)
    _square("det", x)
    if _blocked(x):
        sign, logabs = _sign_logabs(blocked.lu(x, "det"))
        return _back(sign * np.exp(logabs), x)  # as NumPy: no overflow in the pivots' running product
    (a,) = _host("det", x)
    return _back(np.linalg.det(a), x)


class EigResult(NamedTuple):
    eigenvalues: Array
    eigenvectors: Array


def _complex_of(dtype):
    return dt.complex64 if dtype in (dt.float32, dt.complex64) else dt.complex128


def eig(x, /) -> EigResult:
    """Eigenvalues and right eigenvectors of general square matrices (complex results)."""
    _check("eig", x)
    _square("eig", x)
    (a,) = _host("eig", x)
    w, v = np.linalg.eig(a)
    c = _complex_of(x.dtype)
    return EigResult(_back(w, x, c), _back(v, x, c))


def eigvals(x, /) -> Array:
    """Eigenvalues of general square matrices (complex)."""
    _check("eigvals", x)
    _square("eigvals", x)
    (a,) = _host("eigvals", x)
    return _back(np.linalg.eigvals(a), x, _complex_of(x.dtype))


class EighResult(NamedTuple):
    eigenvalues: Array
    eigenvectors: Array


def eigh(x, /) -> EighResult:
    """Eigenvalues (ascending, real) and eigenvectors of Hermitian matrices."""
    _check("eigh", x)
    _square("eigh", x)
    if _spectral_blocked(x):
        from ._linalg_reduce import eigh_blocked
        return EighResult(*eigh_blocked(x, True, "eigh"))
    (a,) = _host("eigh", x)
    w, v = np.linalg.eigh(a)
    return EighResult(_back(w, x, x.dtype.real_dtype), _back(v, x))


def eigvalsh(x, /) -> Array:
    """Eigenvalues of Hermitian matrices, ascending."""
    _check("eigvalsh", x)
    _square("eigvalsh", x)
    if _spectral_blocked(x):
        from ._linalg_reduce import eigh_blocked
        return eigh_blocked(x, False, "eigvalsh")[0]
    (a,) = _host("eigvalsh", x)
    return _back(np.linalg.eigvalsh(a), x, x.dtype.real_dtype)


def inv(x, /) -> Array:
    """Inverses of square matrices."""
    _check("inv", x)
    _square("inv", x)
    if _blocked(x):
        from ._creation import eye
        from ._manipulation import broadcast_to
        return blocked.lu_solve(blocked.lu(x, "inv"), broadcast_to(eye(x.shape[-1], dtype=x.dtype, device=x.device),
                                                                  x.shape), "inv")
    (a,) = _host("inv", x)
    return _back(np.linalg.inv(a), x)


def pinv(x, /, *, rtol=None) -> Array:
    """Moore-Penrose pseudo-inverses: ``V diag(1/s) U^H`` over the singular values above
    ``rtol * max(s)`` (from :func:`svd`; the product is a GEMM on the device)."""
    from ._searching import where
    _check("pinv", x)
    if x.size == 0:
        (a,) = _host("pinv", x)
        return _back(np.linalg.pinv(a), x)
    u, s, vh = svd(x, full_matrices=False)
    keep = s > _cutoff(x, s, rtol)
    inv_s = where(keep, 1.0 / where(keep, s, 1.0), 0.0)
    return matmul(blocked.conj_transpose(vh) * inv_s[..., None, :], blocked.conj_transpose(u))


def _cutoff(x, s, rtol):
    """``rtol * max(s)`` per matrix, keeping the last axis (rtol: None for ``max(M, N) * eps``, a
    float, or an Array broadcast against the batch)."""
    from ._statistical import max as _max
    if rtol is None:
        rtol = max(x.shape[-2:]) * float(np.finfo(x.dtype.real_dtype.np).eps)
    largest = _max(s, axis=-1, keepdims=True)
    return largest * (rtol[..., None] if isinstance(rtol, Array) else float(rtol))


class QRResult(NamedTuple):
    Q: Array
    R: Array


def qr(x, /, *, mode="reduced") -> QRResult:
    """QR factorization (``mode`` "reduced" or "complete")."""
    _check("qr", x)
    if mode not in ("reduced", "complete"):
        raise ValueError(f"linalg.qr: mode must be 'reduced' or 'complete', got {mode!r}")
    if _blocked(x, min(x.shape[-2:])):
        return QRResult(*blocked.qr(x, complete=mode == "complete"))
    (a,) = _host("qr", x)
    q, r = np.linalg.qr(a, mode=mode)
    return QRResult(_back(q, x), _back(r, x))


class SlogdetResult(NamedTuple):
    sign: Array
    logabsdet: Array


def _sign_logabs(f) -> tuple:
    """(sign, log|det|) on the host from the blocked LU's pivots ``f.diag`` and ``f.parity``,
    summed in double precision (the pivots' product could overflow or underflow on the way)."""
    diag = f.diag.astype(np.complex128 if np.iscomplexobj(f.diag) else np.float64)
    mag = np.abs(diag)
    with np.errstate(divide="ignore"):
        logabs = np.sum(np.log(mag), axis=-1)
    unit = np.where(mag == 0, 0, diag / np.where(mag == 0, 1, mag))
    return f.parity * np.prod(unit, axis=-1), logabs


def slogdet(x, /) -> SlogdetResult:
    """Sign and log of the absolute value of determinants."""
    _check("slogdet", x)
    _square("slogdet", x)
    if _blocked(x):
        sign, logabs = _sign_logabs(blocked.lu(x, "slogdet"))
        return SlogdetResult(_back(sign, x), _back(logabs, x, x.dtype.real_dtype))
    (a,) = _host("slogdet", x)
    s, l = np.linalg.slogdet(a)
    return SlogdetResult(_back(s, x), _back(l, x, x.dtype.real_dtype))


def solve(x1, x2, /) -> Array:
    """Solutions X of x1 @ X = x2 (x2 a vector when it is 1-D)."""
    _check("solve", x1)
    _square("solve", x1)
    if not isinstance(x2, Array):
        raise TypeError("linalg.solve: x2 must be an Array")
    same_device("linalg.solve", (x1, x2))
    check_solve_shapes(x1, x2)
    dtype = dt.promote_types(x1.dtype, x2.dtype, "linalg.solve")
    if _blocked(x1) and x2.ndim >= 1:
        return _solve_blocked(x1, x2, dtype)
    a, b = _host("solve", x1, x2)
    if b.ndim == 1:
        out = np.linalg.solve(a, b[..., None])[..., 0] if a.ndim > 2 else np.linalg.solve(a, b)
    else:
        out = np.linalg.solve(a, b)
    return _back(out, x1, dtype)


class SVDResult(NamedTuple):
    U: Array
    S: Array
    Vh: Array


def svd(x, /, *, full_matrices=True) -> SVDResult:
    """Singular value decomposition."""
    _check("svd", x)
    if _tall(x):
        return SVDResult(*_svd_tall(x, full_matrices))
    if _tall(x.mT):
        u, s, vh = _svd_tall(blocked.conj_transpose(x), full_matrices)
        return SVDResult(blocked.conj_transpose(vh), s, blocked.conj_transpose(u))
    if _square_blocked(x):
        return SVDResult(*_svd.svd_blocked(x, True))
    (a,) = _host("svd", x)
    u, s, vh = np.linalg.svd(a, full_matrices=full_matrices)
    return SVDResult(_back(u, x), _back(s, x, x.dtype.real_dtype), _back(vh, x))


def svdvals(x, /) -> Array:
    """Singular values, descending."""
    _check("svdvals", x)
    if _tall(x) or _tall(x.mT):
        q, r = blocked.qr(x if _tall(x) else blocked.conj_transpose(x), complete=False)
        return _square_svd("svdvals", r, False)[1]
    if _square_blocked(x):
        return _svd.svd_blocked(x, False, "svdvals")[1]
    (a,) = _host("svdvals", x)
    return _back(np.linalg.svd(a, compute_uv=False), x, x.dtype.real_dtype)


def matrix_rank(x, /, *, rtol=None) -> Array:
    """Numerical rank: how many singular values (:func:`svdvals`) exceed ``rtol * max(s)``."""
    from ._data_type import astype
    from ._statistical import sum as _sum
    _check("matrix_rank", x)
    if x.size == 0:
        return _back(np.zeros(x.shape[:-2], dtype=np.int64), x, dt.int64)
    s = svdvals(x)
    return astype(_sum(astype(s > _cutoff(x, s, rtol), dt.int64), axis=-1), dt.int64)


# ---- device kernels ------------------------------------------------------------------------------

def diagonal(x, /, *, offset=0) -> Array:
    """The ``offset`` diagonal of the last two axes (a view)."""
    from ._views import make_view
    _check("diagonal", x, "any")
    n, m = x.shape[-2:]
    v = x._realize()
    s0, s1 = v.strides[-2:]
    start_r, start_c = (0, offset) if offset >= 0 else (-offset, 0)
    length = max(0, min(n - start_r, m - start_c))
    off = v.offset + (start_r * s0 + start_c * s1 if length else 0)
    return make_view(x, x.shape[:-2] + (length,), v.strides[:-2] + (s0 + s1,), off)


def trace(x, /, *, offset=0, dtype=None) -> Array:
    """Sum of the ``offset`` diagonal."""
    from ._statistical import sum as _sum
    _check("trace", x, "numeric")
    return _sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


def outer(x1, x2, /) -> Array:
    """Outer product of two vectors."""
    for x in (x1, x2):
        _check("outer", x, "numeric", 1)
        if x.ndim != 1:
            raise ValueError(f"linalg.outer: expected 1-D arrays, got shape {x.shape}")
    return x1[:, None] * x2[None, :]


def cross(x1, x2, /, *, axis=-1) -> Array:
    """Cross product of 3-vectors along ``axis``."""
    from ._manipulation import stack
    from ._shapes import broadcast_shapes
    _check("cross", x1, "numeric", 1)
    _check("cross", x2, "numeric", 1)
    shape = broadcast_shapes(x1.shape, x2.shape, func="linalg.cross")
    if not -len(shape) <= axis < 0 and not 0 <= axis < min(x1.ndim, x2.ndim):
        raise ValueError(f"linalg.cross: axis {axis} is out of range")
    ax = axis if axis < 0 else axis - len(shape)
    if x1.shape[ax] != 3 or x2.shape[ax] != 3:
        raise ValueError(f"linalg.cross: axis {axis} must have size 3 in both arrays")

    def comp(x, i):
        key = (Ellipsis, i) + (slice(None),) * (-ax - 1)
        return x[key]
    a = [comp(x1, i) for i in range(3)]
    b = [comp(x2, i) for i in range(3)]
    parts = [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    return stack(parts, axis=ax)


def vector_norm(x, /, *, axis=None, keepdims=False, ord=2) -> Array:
    """Vector p-norms (``ord`` any real p, 0, inf, -inf) over ``axis``."""
    from ._elementwise import abs as _abs
    from ._statistical import max as _max, min as _min, sum as _sum
    _check("vector_norm", x, "floating-point", 0)
    a = _abs(x)
    if ord == 2:
        from ._elementwise import sqrt
        return sqrt(_sum(a * a, axis=axis, keepdims=keepdims))
    if ord == 1:
        return _sum(a, axis=axis, keepdims=keepdims)
    if ord == float("inf"):
        return _max(a, axis=axis, keepdims=keepdims)
    if ord == float("-inf"):
        return _min(a, axis=axis, keepdims=keepdims)
    if ord == 0:
        from ._data_type import astype
        return _sum(astype(a != 0, a.dtype), axis=axis, keepdims=keepdims)
    return _sum(a ** float(ord), axis=axis, keepdims=keepdims) ** (1.0 / ord)


def matrix_norm(x, /, *, keepdims=False, ord="fro") -> Array:
    """Matrix norms: 'fro', 'nuc', 1, -1, 2, -2, inf, -inf over the last two axes."""
    from ._elementwise import abs as _abs, sqrt
    from ._statistical import max as _max, min as _min, sum as _sum
    _check("matrix_norm", x)
    axes = (-2, -1)
    if 0 in x.shape[-2:] and ord in (1, 2, float("inf")):
        # the largest of no (non-negative) column sums / singular values is 0, as in NumPy; the
        # smallest of none (ord -1, -2, -inf) stays an error
        from ._creation import zeros
        shape = x.shape[:-2] + ((1, 1) if keepdims else ())
        return zeros(shape, dtype=x.dtype.real_dtype, device=x.device)
    if ord == "fro":
        a = _abs(x)
        return sqrt(_sum(a * a, axis=axes, keepdims=keepdims))
    if ord in (1, -1, float("inf"), float("-inf")):
        inner, outer_ax = (-2, -1) if ord in (1, -1) else (-1, -2)
        s = _sum(_abs(x), axis=inner, keepdims=True)
        r = (_max if ord > 0 else _min)(s, axis=outer_ax, keepdims=True)
        return r if keepdims else r[..., 0, 0]
    if ord in ("nuc", 2, -2):
        s = svdvals(x)
        r = _sum(s, axis=-1) if ord == "nuc" else (_max if ord == 2 else _min)(s, axis=-1)
        return r[..., None, None] if keepdims else r
    raise ValueError(f"linalg.matrix_norm: unsupported ord {ord!r}")


def matrix_power(x, n, /) -> Array:
    """x raised to the integer power n (n < 0 inverts first) by repeated squaring."""
    from ._creation import eye
    from ._manipulation import broadcast_to
    _check("matrix_power", x, "numeric")
    _square("matrix_power", x)
    if not isinstance(n, int):
        raise TypeError("linalg.matrix_power: n must be an int")
    if n < 0:
        x, n = inv(x), -n
    result = None
    base = x
    while n:
        if n & 1:
            result = base if result is None else matmul(result, base)
        n >>= 1
        if n:
            base = matmul(base, base)
    if result is None:
        return broadcast_to(eye(x.shape[-1], dtype=x.dtype, device=x.device), x.shape) * 1
    return result
