"""The fft extension against numpy.fft: lengths (powers of two, 5-smooth, small and large primes,
1), axes, strided views, norm modes, float32/float64/complex64/complex128; forward+inverse round
trips within a small multiple of eps*log2(n); the errors of the standard; the sim device."""
from __future__ import annotations

import math
import platform
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array import _fft_plan as FP
from egpu_array import fft as F
from egpu_array.kernels.fft_lanes import LANES

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


# ---- batches in SIMD lanes (kernels/fft_lanes.py) ------------------------------------------------

@contextmanager
def _lanes_calls():
    """Records the row counts of the batches the plan sends to the lanes kernel."""
    calls = []
    orig = FP._lanes

    def spy(device, dtype, src, dst, rows, *rest, **kw):
        calls.append(rows)
        return orig(device, dtype, src, dst, rows, *rest, **kw)

    FP._lanes = spy
    try:
        yield calls
    finally:
        FP._lanes = orig


LANE_LENGTHS = (2, 3, 5, 6, 8, 15, 16, 30, 32, 45, 64, 97, 100, 128, 194, 250, 256, 1000, 1024)


@st.composite
def lanes_case(draw):
    """A batch of rows (not a multiple of the lane count) of one length, in one of several layouts:
    contiguous, every other row, rows that start one element in, rows read with a step (pairs not
    adjacent), rows in reverse order, and along a non-last axis (rows of lanes adjacent)."""
    dtype = draw(st.sampled_from(("float32", "float64", "complex64", "complex128")))
    n = draw(st.sampled_from(LANE_LENGTHS))
    rows = draw(st.integers(2, 21))
    layout = draw(st.sampled_from(("contiguous", "every_other_row", "offset", "step", "reversed",
                                   "axis0", "middle_axis")))
    shape = {"contiguous": (rows, n), "every_other_row": (2 * rows, n), "offset": (rows, n + 1),
             "step": (rows, 2 * n), "reversed": (rows, n), "axis0": (n, rows), "middle_axis": (2, n, rows)}[layout]
    x = _data(draw, shape, dtype)
    view = {"every_other_row": lambda a: a[::2], "offset": lambda a: a[:, 1:], "step": lambda a: a[:, ::2],
            "reversed": lambda a: a[::-1]}.get(layout, lambda a: a)
    axis = {"axis0": 0, "middle_axis": 1}.get(layout, -1)
    return x, view, axis, draw(st.sampled_from(NORMS))


@settings(max_examples=60)
@given(lanes_case())
def test_lanes_batches(case):
    """Batches through the lanes kernel (every radix, Bluestein lengths, real transforms) against
    numpy.fft, in every layout; the plan must have used the lanes kernel."""
    x, view, axis, norm = case
    v = view(x)
    a = view(xp.asarray(x))
    n = v.shape[axis]
    rows = v.size // n
    with _lanes_calls() as calls:
        if x.dtype.kind == "f":
            got = F.rfft(a, axis=axis, norm=norm)
            ref = np.fft.rfft(v.astype(np.float64), axis=axis, norm=norm)
            _close(got, ref, str(x.dtype), n)
            back = F.irfft(got, n=n, axis=axis, norm=norm)
            _close(back, v.astype(np.float64), str(x.dtype), n)
        else:
            got = F.fft(a, axis=axis, norm=norm)
            _close(got, np.fft.fft(v.astype(np.complex128), axis=axis, norm=norm), str(x.dtype), n)
            back = F.ifft(got, axis=axis, norm=norm)
            _close(back, v.astype(np.complex128), str(x.dtype), n)
    # the plan's choice: complex length c (half of an even real length), Bluestein's length m
    cdt = np.dtype(CDT[str(x.dtype)])
    lanes = LANES[cdt.name]
    c = n // 2 if x.dtype.kind == "f" and n % 2 == 0 else n
    m = c if _smooth(c) else FP.bluestein_length(c)
    if c > 1 and 2 * rows >= lanes and 2 * m * lanes * cdt.itemsize <= FP.LANES_BYTES:
        assert calls and all(r == rows for r in calls), (calls, rows)


def test_lanes_and_rows_agree_on_a_big_batch():
    """A batch big enough for several work items and threads, and a length at the lanes' size
    limit: the lanes kernel matches the one-row-at-a-time kernels (forced by a zero size limit)."""
    rng = np.random.default_rng(5)
    for dtype, n in (("float32", 8192), ("float64", 8192)):
        cdt = np.dtype(CDT[dtype])
        assert 2 * (n // 2) * LANES[cdt.name] * cdt.itemsize == FP.LANES_BYTES  # the longest rows in lanes
        x = rng.standard_normal((203, n)).astype(dtype)
        a = xp.asarray(x)
        with _lanes_calls() as calls:
            lanes = np.asarray(F.rfft(a))
        assert calls == [203]
        old, FP.LANES_BYTES = FP.LANES_BYTES, 0
        try:
            rows = np.asarray(F.rfft(a))
        finally:
            FP.LANES_BYTES = old
        ref = np.fft.rfft(x.astype(np.float64))
        _close(lanes, ref, dtype, n)
        _close(rows, ref, dtype, n)


def test_lanes_kernel_is_vector_code():
    """The lanes kernel's passes are vector arithmetic of the host's width, and unit rows are moved
    by whole-vector loads and shuffles (the transposes), not element by element."""
    import llvmlite.binding as llvm
    from egpu_array.kernels.fft import FFTSpec, generate
    from egpu_array.kernels.targets import host_target
    feats = llvm.get_host_cpu_features()
    if platform.machine() not in ("x86_64", "AMD64") or not (feats.get("avx2") or feats.get("avx")):
        pytest.skip("checks x86 AVX code")
    t = host_target()
    for dtype, op in (("complex64", "ps"), ("complex128", "pd")):
        m = t.new_module("t")
        generate(FFTSpec(dtype, "lanes"), m, "kern")
        asm = t.assembly(m)
        r8 = asm[asm.index("kern_r8:"):]
        r8 = r8[:r8.index(".Lfunc_end")]
        arith = [ln for ln in r8.splitlines() if any(f"v{o}{op}" in ln for o in ("add", "sub", "mul"))]
        assert len(arith) >= 60 and all("ymm" in ln for ln in arith), dtype
        assert sum(f"vunpckl{op}" in ln or f"vunpckh{op}" in ln or "vperm2f128" in ln or "vinsertf128" in ln
                   for ln in asm.splitlines()) >= 8, dtype


def test_lanes_kernel_assembles_for_nvptx():
    """The lanes kernel lowers for NVPTX (vectors split into scalars) and its PTX assembles."""
    import os
    import shutil
    import subprocess
    import tempfile
    from egpu_array.kernels.fft import FFTSpec, generate
    from egpu_array.kernels.targets import nvptx_target
    t = nvptx_target(80)
    ptxas = shutil.which("ptxas")
    for dtype in ("complex64", "complex128"):
        spec = FFTSpec(dtype, "lanes")
        m = t.new_module(spec.name)
        generate(spec, m, spec.name)
        ptx = t.compile(m)
        assert b".entry" in ptx
        if ptxas is None:
            continue
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "k.ptx")
            with open(path, "wb") as f:
                f.write(ptx)
            res = subprocess.run([ptxas, "-arch=sm_80", "-O0", path, "-o", os.devnull], capture_output=True)
            assert res.returncode == 0, res.stderr.decode()[-2000:]
    if ptxas is None:
        pytest.skip("ptxas not found: PTX generated but not assembled")


def test_long_rows_in_four_steps():
    """Rows too long for the lanes go as two batches of lanes (columns, twiddles, rows written in
    place of the transpose): powers of two, a mixed length with unequal factors, a strided source,
    batches along the last and other axes (in chunks, in groups), real transforms and Bluestein's
    padded length."""
    rng = np.random.default_rng(6)
    calls = []
    orig = FP._four_step

    def spy(*a, **kw):
        calls.append(a[6])  # n
        return orig(*a, **kw)

    FP._four_step = spy
    try:
        cases = [((1 << 18,), "complex64", -1), ((1 << 17,), "complex128", -1), ((1024 * 243,), "complex128", -1),
                 ((1 << 19,), "complex64", -1), ((1 << 18, 3), "complex64", 0),
                 ((10, 1 << 17), "complex64", -1),  # rows in chunks of 8 MiB: 8 + 2
                 ((2, 1 << 16, 3), "complex128", 1)]  # two groups of three rows
        for shape, dtype, axis in cases:
            x = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dtype)
            a = xp.asarray(x)
            n = shape[axis]
            if shape == (1 << 19,):  # every other element: a strided source
                a, x, n = a[::2], x[::2], n // 2
            before = len(calls)
            got = F.fft(a, axis=axis)
            _close(got, np.fft.fft(x.astype(np.complex128), axis=axis), dtype, n)
            _close(F.ifft(got, axis=axis), x.astype(np.complex128), dtype, n)
            assert len(calls) == before + 2, (shape, calls)  # the forward and the inverse
        r = rng.standard_normal(1 << 19).astype(np.float32)
        spec = F.rfft(xp.asarray(r))
        _close(spec, np.fft.rfft(r.astype(np.float64)), "float32", 1 << 19)
        _close(F.irfft(spec), r.astype(np.float64), "float32", 1 << 19)
        p = rng.standard_normal(131071) + 1j * rng.standard_normal(131071)  # prime: Bluestein, M = 2^18
        before = len(calls)
        _close(F.fft(xp.asarray(p.astype(np.complex64))), np.fft.fft(p), "complex64", 131071)
        assert calls[before:] == [1 << 18, 1 << 18]
    finally:
        FP._four_step = orig
