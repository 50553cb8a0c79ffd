"""The ``fft`` extension of the standard (2025.12), on generated kernels (kernels/fft.py).

Every transform runs on the input's device: one-dimensional transforms read the input through its
strides (a view along any axis is not copied when its other dimensions collapse to two strides),
write a new C-contiguous array, and multi-dimensional ones are such passes along each axis in turn.
Lengths with prime factors 2, 3, 5 use Stockham passes, others Bluestein's algorithm; real
transforms of even length run a complex transform of half the length (see _fft_plan.py).

Dtypes: ``fft``/``ifft``/``fftn``/``ifftn``/``hfft``/``irfft``/``irfftn`` take complex input (real
floating input is promoted to the complex dtype of its precision, as NumPy does); ``rfft``,
``rfftn`` and ``ihfft`` require real floating input. Integer and boolean inputs raise TypeError.
A transform length below 1 raises ValueError.
"""
from __future__ import annotations

import math

from . import _dtypes as dt
from ._array import Array
from ._fft_plan import (Opnd, c2c, complex_of, norm_scale, pointwise, real_of, real_table,
                        rows_layout)
from ._graph import buffer_node, contiguous_strides
from ._shapes import normalize_axis
from ._sorting import contiguous_copy

__all__ = ["fft", "ifft", "fftn", "ifftn", "rfft", "irfft", "rfftn", "irfftn", "hfft", "ihfft",
           "fftfreq", "rfftfreq", "fftshift", "ifftshift"]

_NORMS = ("backward", "ortho", "forward")


# ---- argument checks ------------------------------------------------------------------------------

def _check_x(func: str, x, want: str) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"fft.{func}: expected an egpu_array.Array, got {type(x).__name__}")
    kind = x.dtype.kind
    if want == "real" and kind != "f":
        raise TypeError(f"fft.{func}: expected a real floating-point array, got {x.dtype}")
    if want == "complex" and kind not in "fc":
        raise TypeError(f"fft.{func}: expected a complex (or real) floating-point array, got {x.dtype}")
    if x.ndim == 0:
        raise ValueError(f"fft.{func}: expected an array of at least one dimension, got a 0-d array")
    return x


def _check_norm(func: str, norm) -> str:
    if norm not in _NORMS:
        raise ValueError(f"fft.{func}: norm must be one of {_NORMS}, got {norm!r}")
    return norm


def _check_n(func: str, n, what: str = "n") -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"fft.{func}: {what} must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"fft.{func}: invalid number of data points {n} ({what} must be >= 1)")
    return n


def _axes_and_s(func: str, x, s, axes) -> tuple:
    """Normalized (s, axes) of an n-dimensional transform (``s`` entries -1 mean "as is")."""
    if s is not None and axes is None:
        raise ValueError(f"fft.{func}: axes must be given when s is given")
    if axes is None:
        axes = tuple(range(x.ndim))
    else:
        try:
            axes = tuple(axes)
        except TypeError:
            raise TypeError(f"fft.{func}: axes must be a sequence of ints") from None
        axes = tuple(normalize_axis(a, x.ndim, f"fft.{func}") for a in axes)
    if s is None:
        s = tuple(x.shape[a] for a in axes)
    else:
        try:
            s = tuple(s)
        except TypeError:
            raise TypeError(f"fft.{func}: s must be a sequence of ints") from None
        if len(s) != len(axes):
            raise ValueError(f"fft.{func}: s and axes must have the same length, got {len(s)} and {len(axes)}")
        s = tuple(x.shape[a] if (isinstance(v, int) and v == -1) else v for v, a in zip(s, axes))
    return s, axes


# ---- strided views --------------------------------------------------------------------------------

def _collapse(shape, strides):
    """(count, stride) of dims that form one arithmetic progression, or None."""
    dims = [(n, st) for n, st in zip(shape, strides) if n != 1]
    if not dims:
        return 1, 0
    for (n0, s0), (n1, s1) in zip(dims, dims[1:]):
        if s0 != s1 * n1:
            return None
    return math.prod(n for n, _ in dims), dims[-1][1]


def _fit(x: Array, axis: int, n: int) -> Array:
    """``x`` trimmed (a view) or zero-padded (a copy) to length ``n`` along ``axis``."""
    m = x.shape[axis]
    if n == m:
        return x
    if n < m:
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(0, n)
        return x[tuple(idx)]
    from ._copying import concat
    from ._creation import zeros
    pad = x.shape[:axis] + (n - m,) + x.shape[axis + 1:]
    return concat([x, zeros(pad, dtype=x.dtype, device=x.device)], axis=axis)


def _rows(x: Array, axis: int, dtype, packed: bool = False):
    """(Opnd, B1, B2) reading ``x`` (cast to ``dtype``) along ``axis`` through its strides.

    ``packed``: ``x`` is real and its even-length axis is read as complex pairs."""
    if x.dtype != dtype:
        buf = contiguous_copy(x._node, dtype)
        strides, offset = contiguous_strides(x.shape), 0
    else:
        view = x._realize()
        buf, strides, offset = view.buffer, view.strides, view.offset
    shape = x.shape
    pre = _collapse(shape[:axis], strides[:axis])
    post = _collapse(shape[axis + 1:], strides[axis + 1:])
    if pre is None or post is None:
        buf = contiguous_copy(x._node, dtype)
        strides, offset = contiguous_strides(shape), 0
        pre = _collapse(shape[:axis], strides[:axis])
        post = _collapse(shape[axis + 1:], strides[axis + 1:])
    (B1, s1), (B2, s2) = pre, post
    es = strides[axis]
    ptr = buf.ptr + offset * dtype.itemsize
    if packed:
        return Opnd(buf, ptr, 2 * es, s1, s2, es), B1, B2
    return Opnd(buf, ptr, 2 * es, 2 * s1, 2 * s2, 1), B1, B2


def _new_out(device, dtype, shape):
    buf = device.allocator.alloc(max(math.prod(shape), 1) * dtype.itemsize)
    return buf, Array._new(buffer_node(buf, dtype, tuple(shape), contiguous_strides(shape)))


def _split(shape, axis):
    return math.prod(shape[:axis]), math.prod(shape[axis + 1:])


# ---- one-dimensional transforms -------------------------------------------------------------------

def _c2c_axis(func, x: Array, n: int, axis: int, sign: int, scale: float) -> Array:
    """The complex transform of length ``n`` along ``axis`` (after trimming/padding)."""
    cdt = complex_of(x.dtype)
    x = _fit(x, axis, n)
    shape = x.shape
    B1, B2 = _split(shape, axis)
    buf, out = _new_out(x.device, cdt, shape)
    if B1 * B2:
        src, _, _ = _rows(x, axis, cdt)
        c2c(x.device, cdt, src, rows_layout(buf, cdt, B1, n, B2), B1, B2, n, sign, scale)
    return out


def _r2c_axis(func, x: Array, n: int, axis: int, scale: float) -> Array:
    """The first ``n//2 + 1`` values of the forward transform of real ``x`` along ``axis``."""
    x = _fit(x, axis, n)
    cdt = complex_of(x.dtype)
    if n % 2:
        full = _c2c_axis(func, x, n, axis, -1, scale)
        idx = [slice(None)] * x.ndim
        idx[axis] = slice(0, n // 2 + 1)
        return full[tuple(idx)]
    h = n // 2
    shape = x.shape[:axis] + (h + 1,) + x.shape[axis + 1:]
    B1, B2 = _split(shape, axis)
    buf, out = _new_out(x.device, cdt, shape)
    if B1 * B2:
        dev = x.device
        src, _, _ = _rows(x, axis, real_of(x.dtype), packed=True)
        zbuf = dev.allocator.alloc(B1 * h * B2 * cdt.itemsize)
        z = rows_layout(zbuf, cdt, B1, h, B2)
        c2c(dev, cdt, src, z, B1, B2, h, -1, 1.0,
            post=(rows_layout(buf, cdt, B1, h + 1, B2), real_table(dev, cdt, n, -1), scale))
    return out


def _c2r_axis(func, x: Array, n: int, axis: int, scale: float) -> Array:
    """The real length-``n`` inverse of a half spectrum along ``axis`` (``n//2 + 1`` values used)."""
    cdt = complex_of(x.dtype)
    rdt = real_of(x.dtype)
    x = _fit(x, axis, n // 2 + 1)
    dev = x.device
    shape = x.shape[:axis] + (n,) + x.shape[axis + 1:]
    B1, B2 = _split(shape, axis)
    if n % 2:
        buf, full = _new_out(dev, cdt, shape)
        if B1 * B2:
            src, _, _ = _rows(x, axis, cdt)
            pointwise(dev, cdt, "hext", src, rows_layout(buf, cdt, B1, n, B2), B1, B2, n, 0, 1.0,
                      real_table(dev, cdt, 1, 1))
        from ._elementwise import real
        return real(_c2c_axis(func, full, n, axis, 1, scale))
    h = n // 2
    buf, out = _new_out(dev, rdt, shape)
    if B1 * B2:
        src, _, _ = _rows(x, axis, cdt)
        c2c(dev, cdt, src, rows_layout(buf, cdt, B1, h, B2, real=True), B1, B2, h, 1, scale,
            pre=real_table(dev, cdt, n, 1))
    return out


def _one_d(func, x, axis, norm, want):
    """Checks of a one-dimensional transform's arguments; returns the normalized axis."""
    _check_x(func, x, want)
    _check_norm(func, norm)
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(f"fft.{func}: axis must be an int, got {type(axis).__name__}")
    ax = normalize_axis(axis, x.ndim, f"fft.{func}")
    return ax


def fft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The one-dimensional discrete Fourier transform along ``axis``."""
    ax = _one_d("fft", x, axis, norm, "complex")
    n = _check_n("fft", x.shape[ax] if n is None else n)
    return _c2c_axis("fft", x, n, ax, -1, norm_scale(norm, n, False, "fft.fft"))


def ifft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The one-dimensional inverse discrete Fourier transform along ``axis``."""
    ax = _one_d("ifft", x, axis, norm, "complex")
    n = _check_n("ifft", x.shape[ax] if n is None else n)
    return _c2c_axis("ifft", x, n, ax, 1, norm_scale(norm, n, True, "fft.ifft"))


def rfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The transform of real ``x`` along ``axis``: the ``n//2 + 1`` non-negative frequencies."""
    ax = _one_d("rfft", x, axis, norm, "real")
    n = _check_n("rfft", x.shape[ax] if n is None else n)
    return _r2c_axis("rfft", x, n, ax, norm_scale(norm, n, False, "fft.rfft"))


def irfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The inverse of ``rfft``: a real array of length ``n`` (default ``2*(m-1)``) along ``axis``."""
    ax = _one_d("irfft", x, axis, norm, "complex")
    n = _check_n("irfft", 2 * (x.shape[ax] - 1) if n is None else n)
    return _c2r_axis("irfft", x, n, ax, norm_scale(norm, n, True, "fft.irfft"))


_SWAP = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def hfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The transform of a Hermitian-symmetric signal given by its first half: a real array."""
    ax = _one_d("hfft", x, axis, norm, "complex")
    n = _check_n("hfft", 2 * (x.shape[ax] - 1) if n is None else n)
    from ._elementwise import conj
    xc = conj(x) if x.dtype.kind == "c" else x
    return _c2r_axis("hfft", xc, n, ax, norm_scale(_SWAP[norm], n, True, "fft.hfft"))


def ihfft(x, /, *, n=None, axis=-1, norm="backward") -> Array:
    """The inverse of ``hfft`` for real ``x``: ``n//2 + 1`` complex values along ``axis``."""
    ax = _one_d("ihfft", x, axis, norm, "real")
    n = _check_n("ihfft", x.shape[ax] if n is None else n)
    from ._elementwise import conj
    return conj(_r2c_axis("ihfft", x, n, ax, norm_scale(_SWAP[norm], n, False, "fft.ihfft")))


# ---- n-dimensional transforms ---------------------------------------------------------------------

def _nd(func, x, s, axes, norm, want):
    _check_x(func, x, want)
    _check_norm(func, norm)
    s, axes = _axes_and_s(func, x, s, axes)
    for v in s:
        _check_n(func, v, "s entries")
    return s, axes


def _c2c_nd(func, x, s, axes, norm, sign):
    s, axes = _nd(func, x, s, axes, norm, "complex")
    inverse = sign > 0
    out = x
    for n, a in reversed(list(zip(s, axes))):
        out = _c2c_axis(func, out, n, a, sign, norm_scale(norm, n, inverse, f"fft.{func}"))
    if not axes and out.dtype.kind != "c":
        from ._data_type import astype
        out = astype(out, complex_of(out.dtype))
    return out


def fftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The n-dimensional discrete Fourier transform over ``axes`` (default: all)."""
    return _c2c_nd("fftn", x, s, axes, norm, -1)


def ifftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The n-dimensional inverse discrete Fourier transform over ``axes`` (default: all)."""
    return _c2c_nd("ifftn", x, s, axes, norm, 1)


def rfftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The n-dimensional transform of real ``x``: the last axis of ``axes`` is halved (``rfft``)."""
    s, axes = _nd("rfftn", x, s, axes, norm, "real")
    if not axes:
        raise ValueError("fft.rfftn: expected at least one axis to transform")
    out = _r2c_axis("rfftn", x, s[-1], axes[-1], norm_scale(norm, s[-1], False, "fft.rfftn"))
    for n, a in reversed(list(zip(s[:-1], axes[:-1]))):
        out = _c2c_axis("rfftn", out, n, a, -1, norm_scale(norm, n, False, "fft.rfftn"))
    return out


def irfftn(x, /, *, s=None, axes=None, norm="backward") -> Array:
    """The inverse of ``rfftn``: a real array whose last transformed axis has ``s[-1]``
    (default ``2*(m-1)``) elements. A last entry ``-1`` of ``s`` uses every input element, as the
    standard says (``2*(m-1)`` outputs; NumPy 2.4 gives ``m`` outputs from a trimmed input)."""
    _check_x("irfftn", x, "complex")
    _check_norm("irfftn", norm)
    # s None, or a last entry of -1 ("use every input element"): 2*(m-1) output elements
    default_last = s is None or (len(tuple(s)) > 0 and isinstance(tuple(s)[-1], int) and tuple(s)[-1] == -1)
    s, axes = _axes_and_s("irfftn", x, s, axes)
    if not axes:
        raise ValueError("fft.irfftn: expected at least one axis to transform")
    if default_last:
        s = s[:-1] + (2 * (x.shape[axes[-1]] - 1),)
    for v in s:
        _check_n("irfftn", v, "s entries")
    out = x
    for n, a in reversed(list(zip(s[:-1], axes[:-1]))):
        out = _c2c_axis("irfftn", out, n, a, 1, norm_scale(norm, n, True, "fft.irfftn"))
    return _c2r_axis("irfftn", out, s[-1], axes[-1], norm_scale(norm, s[-1], True, "fft.irfftn"))


# ---- frequencies and shifts -----------------------------------------------------------------------

def _freq_args(func, n, d, dtype):
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"fft.{func}: n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"fft.{func}: n must be >= 1, got {n}")
    if dtype is None:
        dtype = dt.float64
    if not isinstance(dtype, dt.DType) or dtype.kind != "f":
        raise TypeError(f"fft.{func}: dtype must be a real floating-point dtype, got {dtype!r}")
    return dtype, 1.0 / (n * d)


def fftfreq(n, /, *, d=1.0, dtype=None, device=None) -> Array:
    """Sample frequencies ``[0, 1, ..., -(n//2), ..., -1] / (d*n)`` of a length-``n`` transform."""
    dtype, val = _freq_args("fftfreq", n, d, dtype)
    from ._creation import arange
    k = arange(n, dtype=dt.int64, device=device)
    k = (k + n // 2) % n - n // 2
    from ._data_type import astype
    return astype(k, dtype) * val


def rfftfreq(n, /, *, d=1.0, dtype=None, device=None) -> Array:
    """Sample frequencies ``[0, 1, ..., n//2] / (d*n)`` of ``rfft``."""
    dtype, val = _freq_args("rfftfreq", n, d, dtype)
    from ._creation import arange
    return arange(n // 2 + 1, dtype=dtype, device=device) * val


def _shift(func, x, axes, sign):
    if not isinstance(x, Array):
        raise TypeError(f"fft.{func}: expected an egpu_array.Array, got {type(x).__name__}")
    if axes is None:
        axes = tuple(range(x.ndim))
    elif isinstance(axes, int) and not isinstance(axes, bool):
        axes = (axes,)
    axes = tuple(normalize_axis(a, x.ndim, f"fft.{func}") for a in axes)
    if not axes:
        return x
    from ._copying import roll
    shifts = tuple(sign * (x.shape[a] // 2) for a in axes)
    return roll(x, shifts, axis=axes)


def fftshift(x, /, *, axes=None) -> Array:
    """``x`` with the zero frequency moved to the centre of each axis in ``axes`` (default: all)."""
    return _shift("fftshift", x, axes, 1)


def ifftshift(x, /, *, axes=None) -> Array:
    """The inverse of ``fftshift``."""
    return _shift("ifftshift", x, axes, -1)
