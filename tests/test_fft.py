"""The fft extension against numpy.fft: lengths (powers of two, 5-smooth, small and large primes,
1), axes, strided views, norm modes, float32/float64/complex64/complex128; forward+inverse round
trips within a small multiple of eps*log2(n); the errors of the standard; the sim device."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, strategies as st

import egpu_array as xp
from egpu_array import fft as F

LENGTHS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 15, 16, 17, 30, 64, 97, 128, 243, 250, 1009, 1024)
NORMS = ("backward", "ortho", "forward")
CDT = {"float32": np.complex64, "float64": np.complex128, "complex64": np.complex64,
       "complex128": np.complex128}


def _eps(dtype) -> float:
    return float(np.finfo(np.float32 if dtype in ("float32", "complex64") else np.float64).eps)


def _tol(dtype, n: int) -> float:
    """Relative (2-norm) error bound: a small multiple of eps*log2(n); Bluestein lengths (other
    prime factors) work at a length up to 4n, so their log2 is of that."""
    m = n if n <= 1 or _smooth(n) else 4 * n
    return 12 * _eps(dtype) * max(1.0, math.log2(max(m, 2)))


def _smooth(n: int) -> bool:
    for p in (2, 3, 5):
        while n % p == 0:
            n //= p
    return n == 1


def _close(got, ref, dtype, n):
    got = np.asarray(got)
    assert got.shape == ref.shape, (got.shape, ref.shape)
    scale = np.linalg.norm(ref.ravel()) or 1.0
    err = np.linalg.norm((got.astype(np.complex128) - ref).ravel()) / scale
    assert err <= _tol(dtype, n), f"relative error {err:.3g} > {_tol(dtype, n):.3g} (n={n})"


def _data(draw, shape, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal(shape) * draw(st.sampled_from([1.0, 1e-3, 1e4]))
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(shape)
    return x.astype(dtype)


@st.composite
def one_d_case(draw, dtypes):
    dtype = draw(st.sampled_from(dtypes))
    n = draw(st.sampled_from(LENGTHS))
    batch = draw(st.lists(st.integers(1, 3), max_size=2))
    ndim = len(batch) + 1
    axis = draw(st.integers(-ndim, ndim - 1))
    shape = list(batch)
    shape.insert(axis % ndim, n)
    x = _data(draw, tuple(shape), dtype)
    req = draw(st.one_of(st.none(), st.sampled_from(LENGTHS)))
    return x, axis, req, draw(st.sampled_from(NORMS))


@given(one_d_case(("float32", "float64", "complex64", "complex128")), st.sampled_from(["fft", "ifft"]))
def test_complex_1d(case, func):
    x, axis, n, norm = case
    got = getattr(F, func)(xp.asarray(x), n=n, axis=axis, norm=norm)
    ref = getattr(np.fft, func)(x.astype(np.complex128), n=n, axis=axis, norm=norm)
    assert got.dtype == getattr(xp, np.dtype(CDT[str(x.dtype)]).name)
    _close(got, ref, str(x.dtype), ref.shape[axis])


@given(one_d_case(("float32", "float64")), st.sampled_from(["rfft", "ihfft"]))
def test_real_forward_1d(case, func):
    x, axis, n, norm = case
    got = getattr(F, func)(xp.asarray(x), n=n, axis=axis, norm=norm)
    ref = getattr(np.fft, func)(x.astype(np.float64), n=n, axis=axis, norm=norm)
    assert got.dtype == getattr(xp, np.dtype(CDT[str(x.dtype)]).name)
    _close(got, ref, str(x.dtype), n or x.shape[axis])


@given(one_d_case(("complex64", "complex128")), st.sampled_from(["irfft", "hfft"]))
def test_real_inverse_1d(case, func):
    x, axis, n, norm = case
    if n is None and x.shape[axis] == 1:
        with pytest.raises(ValueError, match=func):
            getattr(F, func)(xp.asarray(x), axis=axis)
        return
    got = getattr(F, func)(xp.asarray(x), n=n, axis=axis, norm=norm)
    ref = getattr(np.fft, func)(x.astype(np.complex128), n=n, axis=axis, norm=norm)
    assert got.dtype == (xp.float32 if x.dtype == np.complex64 else xp.float64)
    _close(got, ref, str(x.dtype), ref.shape[axis])


@st.composite
def nd_case(draw, dtypes):
    dtype = draw(st.sampled_from(dtypes))
    shape = tuple(draw(st.lists(st.sampled_from((1, 2, 3, 4, 5, 7, 8, 16)), min_size=1, max_size=3)))
    x = _data(draw, shape, dtype)
    axes = draw(st.one_of(st.none(), st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True)))
    s = None
    if axes is not None and draw(st.booleans()):
        s = [draw(st.integers(max(1, shape[a] // 2), shape[a] * 2 + 1)) for a in axes]
    return x, s, axes, draw(st.sampled_from(NORMS))


@given(nd_case(("complex64", "complex128")), st.sampled_from(["fftn", "ifftn"]))
def test_complex_nd(case, func):
    x, s, axes, norm = case
    got = getattr(F, func)(xp.asarray(x), s=s, axes=axes, norm=norm)
    ref = getattr(np.fft, func)(x.astype(np.complex128), s=s, axes=axes, norm=norm)
    _close(got, ref, str(x.dtype), max(ref.shape))


@given(nd_case(("float32", "float64")))
def test_rfftn_irfftn(case):
    x, s, axes, norm = case
    got = F.rfftn(xp.asarray(x), s=s, axes=axes, norm=norm)
    ref = np.fft.rfftn(x.astype(np.float64), s=s, axes=axes, norm=norm)
    _close(got, ref, str(x.dtype), max(ref.shape))
    last = (axes or list(range(x.ndim)))[-1]
    if s is None and ref.shape[last] == 1:  # default output length 2*(1-1) = 0
        with pytest.raises(ValueError, match="irfftn"):
            F.irfftn(got, axes=axes, norm=norm)
        return
    back = F.irfftn(got, s=s, axes=axes, norm=norm)
    ref_back = np.fft.irfftn(ref, s=s, axes=axes, norm=norm)
    _close(back, ref_back, str(x.dtype), max(ref.shape))


@given(st.sampled_from((2, 3, 16, 97, 243, 1009, 1024, 4096, 3 * 5 ** 4, 1 << 16)),
       st.sampled_from(("complex64", "complex128")), st.sampled_from(NORMS))
def test_round_trip_error(n, dtype, norm):
    """ifft(fft(x)) and irfft(rfft(x)) return x within a small multiple of eps*log2(n)."""
    rng = np.random.default_rng(n)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(dtype)
    a = xp.asarray(x)
    back = np.asarray(F.ifft(F.fft(a, norm=norm), norm=norm))
    assert np.linalg.norm(back - x) / np.linalg.norm(x) <= _tol(dtype, n)
    r = x.real.copy()
    rb = np.asarray(F.irfft(F.rfft(xp.asarray(r), norm=norm), n=n, norm=norm))
    assert np.linalg.norm(rb - r) / np.linalg.norm(r) <= _tol(dtype, n)


def test_strided_views_are_read_in_place():
    x = np.random.default_rng(1).standard_normal((6, 10, 12)) + 0j
    a = xp.asarray(x)
    for view, ref in ((xp.permute_dims(a, (2, 0, 1))[::-1], np.transpose(x, (2, 0, 1))[::-1]),
                      (a[:, ::2, 1:], x[:, ::2, 1:])):
        for axis in range(3):
            _close(F.fft(view, axis=axis), np.fft.fft(ref, axis=axis), "complex128", ref.shape[axis])
        r = xp.real(view)
        _close(F.rfft(r, axis=0), np.fft.rfft(ref.real, axis=0), "float64", ref.shape[0])


def test_long_rows_per_pass_and_bluestein_batches():
    """A long power of two (one launch per pass, passes cut in chunks) and a batch along axis 0
    of a prime length (Bluestein with panels of rows)."""
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(1 << 17) + 1j * rng.standard_normal(1 << 17)).astype(np.complex64)
    _close(F.fft(xp.asarray(x)), np.fft.fft(x.astype(np.complex128)), "complex64", 1 << 17)
    y = rng.standard_normal((101, 40))
    _close(F.fft(xp.asarray(y), axis=0), np.fft.fft(y, axis=0), "float64", 101)
    _close(F.rfft(xp.asarray(y), axis=0, n=202), np.fft.rfft(y, axis=0, n=202), "float64", 202)


def test_s_entries_of_minus_one_use_the_whole_axis():
    x = np.random.default_rng(4).standard_normal((4, 6)) + 1j
    a = xp.asarray(x)
    _close(F.fftn(a, s=(-1, 9), axes=(0, 1)), np.fft.fftn(x, s=(4, 9)), "complex128", 9)
    # the standard: every input element is used, so the last axis gets 2*(6-1) outputs
    _close(F.irfftn(a, s=(3, -1), axes=(0, 1)), np.fft.irfftn(x, s=(3, 10)), "complex128", 10)


def test_non_finite_values_propagate():
    x = np.ones(16, dtype=np.complex128)
    x[3] = np.nan
    out = np.asarray(F.fft(xp.asarray(x)))
    assert np.isnan(out.real).any() and not np.isfinite(out).any()
    out = np.asarray(F.rfft(xp.asarray(np.where(np.arange(11) == 5, np.inf, 1.0))))
    assert not np.isfinite(out).all()


def test_empty_batch_and_padding_from_empty():
    a = xp.asarray(np.zeros((0, 8), dtype=np.complex64))
    assert F.fft(a).shape == (0, 8) and F.rfft(xp.real(a)).shape == (0, 5)
    out = F.fft(xp.asarray(np.zeros((3, 0))), n=4)
    np.testing.assert_array_equal(np.asarray(out), np.zeros((3, 4)))


@pytest.mark.parametrize("call, exc, match", [
    (lambda a, r: F.fft(a, n=0), ValueError, "fft"),
    (lambda a, r: F.ifft(a, n=-3), ValueError, "ifft"),
    (lambda a, r: F.fft(a, norm="none"), ValueError, "norm"),
    (lambda a, r: F.fft(a, axis=2), Exception, "axis"),
    (lambda a, r: F.fft(xp.asarray(np.arange(4))), TypeError, "floating"),
    (lambda a, r: F.fft(xp.asarray(np.complex128(1))), ValueError, "0-d"),
    (lambda a, r: F.rfft(a), TypeError, "real floating"),
    (lambda a, r: F.ihfft(a), TypeError, "real floating"),
    (lambda a, r: F.fftn(a, s=(4,)), ValueError, "axes"),
    (lambda a, r: F.fftn(a, s=(4, 4), axes=(0,)), ValueError, "same length"),
    (lambda a, r: F.irfft(xp.asarray(np.ones((4, 1), np.complex64))), ValueError, "irfft"),
    (lambda a, r: F.fft(a, n=2.5), TypeError, "int"),
    (lambda a, r: F.fftfreq(0), ValueError, "fftfreq"),
    (lambda a, r: F.rfftfreq(4, dtype=xp.int32), TypeError, "dtype"),
    (lambda a, r: F.fft(np.ones(4)), TypeError, "Array"),
])
def test_errors(call, exc, match):
    a = xp.asarray(np.ones((4, 6), dtype=np.complex64))
    with pytest.raises(exc, match=match):
        call(a, xp.real(a))


@pytest.mark.parametrize("n", [1, 2, 5, 8, 9])
@pytest.mark.parametrize("d", [1.0, 0.25])
def test_frequencies(n, d):
    f = F.fftfreq(n, d=d)
    assert f.dtype == xp.float64
    np.testing.assert_allclose(np.asarray(f), np.fft.fftfreq(n, d), rtol=1e-15)
    r = F.rfftfreq(n, d=d, dtype=xp.float32)
    assert r.dtype == xp.float32
    np.testing.assert_allclose(np.asarray(r), np.fft.rfftfreq(n, d), rtol=1e-6)


@given(st.lists(st.integers(1, 5), min_size=1, max_size=3), st.data())
def test_shifts(shape, data):
    x = np.arange(math.prod(shape), dtype=np.float32).reshape(shape)
    axes = data.draw(st.one_of(st.none(), st.integers(-len(shape), len(shape) - 1),
                               st.lists(st.integers(0, len(shape) - 1), unique=True)))
    a = xp.asarray(x)
    np.testing.assert_array_equal(np.asarray(F.fftshift(a, axes=axes)), np.fft.fftshift(x, axes=axes))
    np.testing.assert_array_equal(np.asarray(F.ifftshift(a, axes=axes)), np.fft.ifftshift(x, axes=axes))


def test_sim_device_no_host_transfers():
    """On sim everything runs on the device: once the tables are there, no byte crosses the link."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 24)) + 1j * rng.standard_normal((5, 24))
    a = xp.asarray(x, device="sim")
    r = xp.asarray(x.real.copy(), device="sim")

    def run():
        return (F.fft(a, axis=0), F.ifft(a, n=31), F.rfft(r), F.irfft(a, n=9), F.fftn(a),
                F.fftfreq(6, device="sim"))

    run()
    with xp.profile() as prof:
        outs = run()
        for o in outs:
            o._realize()
    assert prof.bytes_from_device == 0 and prof.bytes_to_device == 0
    assert all(o.device == a.device for o in outs)
    _close(outs[1], np.fft.ifft(x, n=31), "complex128", 31)
    _close(outs[3], np.fft.irfft(x, n=9), "complex128", 9)
