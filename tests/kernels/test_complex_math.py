"""Complex transcendental functions emitted as IR (kernels/complex_math), through the namespace.

* special values: a grid of +-0, +-1, +-inf, NaN, tiny and huge parts, compared with NumPy (glibc's
  C99 complex functions) exactly: same NaN-ness, same infinities, same signs of zeros (expm1: with
  ``exp(z) - 1``, the standard's special cases; NumPy's own formula gives NaN where they don't);
* accuracy: values drawn with hypothesis (magnitudes 1e-300..1e300 or a range that doesn't
  overflow) plus points near the branch points and the unit circle. complex64 results are compared
  with NumPy's complex128 results (error in float32 ULP of |w|, w the reference); complex128 with
  NumPy's (glibc's) own results, the bound covering both libraries' errors (ULP of |w|). log1p is
  compared with mpmath near 0, where NumPy's complex log1p (log of 1 + z) loses all digits;
* the IR forms against the libm path they replace (complex_ops.HOST_LIBM), special grid, through a
  JIT; pow's IR form (host and NVPTX kernels both use it now) for accuracy too;
* NVPTX: every function's kernel (complex64 and complex128 in turn) compiles for sm_80 without a
  refused call and assembles with ptxas (when installed).

Measured maxima (random + near-singular points, this file's draws and a 3000-point mpmath run per
function): complex128 <= 3 ULP of |w| (glibc: <= 5), complex64 <= 0.6 ULP of |w| (evaluated in
binary64).
"""
from __future__ import annotations

import ctypes
import functools
import shutil
import subprocess

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import egpu_array as xp

FUNCS = ("exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "sin", "cos", "tan", "sinh", "cosh",
         "tanh", "asin", "acos", "atan", "asinh", "acosh", "atanh")
NUMPY = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "asinh": "arcsinh", "acosh": "arccosh",
         "atanh": "arctanh"}
#: functions whose argument must stay moderate (|Re| or |Im| large overflows or loses all digits)
BOUNDED = {"exp": "re", "expm1": "re", "sinh": "re", "cosh": "re", "tanh": "re",
           "sin": "im", "cos": "im", "tan": "im"}
#: max error in ULP of |w| (w the reference): complex128 vs NumPy (ours + glibc's), complex64 vs
#: the complex128 reference
BOUND = {"complex128": 8.0, "complex64": 1.5}

inf, nan = np.inf, np.nan
_PARTS = [0.0, -0.0, 1.0, -1.0, 0.5, -2.0, 3.0, inf, -inf, nan, 1e-310, -1e-300, 1e300, -1e300, 2.0 ** 30]
SPECIAL = np.array([complex(a, b) for a in _PARTS for b in _PARTS])


def _np(name, z):
    with np.errstate(all="ignore"):
        if name == "expm1":
            return np.exp(z) - 1
        return getattr(np, NUMPY.get(name, name))(z)


def _ours(name, z):
    with np.errstate(all="ignore"):
        return np.asarray(getattr(xp, name)(xp.asarray(z)))


def _same_class(got, want):
    """Where ``want`` is NaN, inf or zero: the same, signs included; elsewhere: close."""
    ok = np.ones(got.shape, bool)
    for g, w in ((got.real, want.real), (got.imag, want.imag)):
        exact = (w == 0) | ~np.isfinite(w)
        ok &= np.where(np.isnan(w), np.isnan(g), True)
        ok &= np.where(exact & ~np.isnan(w), (g == w) & (np.signbit(g) == np.signbit(w)), True)
    close = np.abs(got - want) <= 1e-5 * np.abs(want)
    finite = np.isfinite(want.real) & np.isfinite(want.imag) & (want.real != 0) & (want.imag != 0)
    return ok & np.where(finite, close, True)


def _standard_rules(name, z, want):
    """Where the 2025.12 standard's special cases differ from C99/glibc, the standard's (the
    array-api-tests special cases check these): tanh(+-inf + iy), y finite, is +-1 + 0j with the
    zero signed as y (C99: as sin(2y)), so tan(x +- i inf) is +-0 with x's sign +- 1j; expm1 of
    +-0 +- 0j has a +0 real part (expm1(-0) = -0 on the real line)."""
    want = want.copy()
    if name == "tanh":
        at = np.isinf(z.real) & np.isfinite(z.imag)
        want.imag[at] = np.copysign(0.0, z.imag[at])
    if name == "tan":
        at = np.isinf(z.imag) & np.isfinite(z.real)
        want.real[at] = np.copysign(0.0, z.real[at])
    if name == "expm1":
        want.real[(z.real == 0) & (z.imag == 0)] = 0.0
    return want


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name", FUNCS)
def test_special_values_match_glibc(name, dtype):
    z = SPECIAL.astype(dtype)
    got, want = _ours(name, z), _np(name, z)
    if name == "expm1":  # NumPy's formula where it is finite, else exp(z) - 1 (the standard's cases)
        fin = np.isfinite(z.real) & np.isfinite(z.imag) & (np.abs(z.real) < 700)
        with np.errstate(all="ignore"):
            want = np.where(fin, np.expm1(z), want)
    if name == "log1p":  # NumPy's log(1 + z) loses tiny z entirely; log1p(z) = z (1 - z/2 + ...)
        tiny = (np.abs(z) < 1e-8) & (z != 0)
        want.real[tiny] = z.real[tiny] + 0.0  # Re log1p(+-0 + iy) = log|1 + iy| > 0: +0
        want.imag[tiny] = z.imag[tiny]
    want = _standard_rules(name, z, want)
    bad = ~_same_class(got, want)
    assert not bad.any(), [(z[i], got[i], want[i]) for i in np.nonzero(bad)[0][:8]]


@functools.cache
def _jit(name, dtype, libm):
    """Host JIT of ``void f(re, im, [re2, im2,] out_re, out_im, n)`` applying complex_ops' lowering of
    ``name`` ("pow": x ** y), from libm or not (complex_ops.HOST_LIBM; the kernel cache is not involved)."""
    import llvmlite.binding as llvm
    from llvmlite import ir

    from egpu_array.kernels import complex_ops
    from egpu_array.kernels.irb import I64, for_range
    from egpu_array.kernels.targets import host_target
    t = host_target()
    ty = ir.FloatType() if dtype == "complex64" else ir.DoubleType()
    nin = 4 if name == "pow" else 2
    m = t.new_module("cm_" + name)
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [ty.as_pointer()] * (nin + 2) + [I64]), name="f")
    b = ir.IRBuilder(fn.append_basic_block("e"))
    saved, complex_ops.HOST_LIBM = complex_ops.HOST_LIBM, frozenset(FUNCS + ("pow",) if libm else ())
    try:
        with for_range(b, ir.Constant(I64, 0), fn.args[-1]) as i:
            v = [b.load(b.gep(a, [i])) for a in fn.args[:nin]]
            if name == "pow":
                re, im = complex_ops.cpow(b, (v[0], v[1]), (v[2], v[3]))
            else:
                re, im = complex_ops.cmath(b, name, (v[0], v[1]))
            b.store(re, b.gep(fn.args[nin], [i]))
            b.store(im, b.gep(fn.args[nin + 1], [i]))
    finally:
        complex_ops.HOST_LIBM = saved
    b.ret_void()
    tm = llvm.Target.from_triple(t.triple).create_target_machine(cpu=t.cpu, features=t.features, opt=2)
    mod = llvm.parse_assembly(str(m))  # no O3 pipeline: faster to build, same arithmetic
    mod.verify()
    eng = llvm.create_mcjit_compiler(mod, tm)
    eng.finalize_object()
    f = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * (nin + 2) + [ctypes.c_int64]))(eng.get_function_address("f"))
    return eng, f


def _run_jit(name, libm, *zs):
    _, f = _jit(name, zs[0].dtype.name, libm)
    ft = zs[0].real.dtype
    parts = [np.ascontiguousarray(p, ft) for z in zs for p in (z.real, z.imag)]
    out = np.empty(zs[0].size, zs[0].dtype)
    ore, oim = np.empty(out.size, ft), np.empty(out.size, ft)
    f(*[a.ctypes.data for a in parts + [ore, oim]], out.size)
    out.real, out.imag = ore, oim
    return out


@pytest.mark.parametrize("name", FUNCS + ("pow",))
def test_special_values_match_libm_path(name):
    """IR forms against the host's C99 complex libm functions (HOST_LIBM, what the host used before)
    on the special grid, complex128: same NaNs, infinities and signed zeros (but the standard's
    rules, :func:`_standard_rules`); pow on all pairs."""
    z = SPECIAL
    if name == "pow":
        parts = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, inf, -inf, nan]
        vs = np.array([complex(a, b) for a in parts for b in parts])
        args = (np.repeat(vs, vs.size), np.tile(vs, vs.size))
    else:
        args = (z,)
    got, want = _run_jit(name, False, *args), _run_jit(name, True, *args)
    if name == "log1p":  # the libm path is clog(1 + z): tiny z is lost there (see the NumPy test)
        tiny = (np.abs(z) < 1e-8) & (z != 0)
        want.real[tiny] = z.real[tiny] + 0.0
        want.imag[tiny] = z.imag[tiny]
    if name != "pow":
        want = _standard_rules(name, z, want)
    bad = ~_same_class(got, want)
    assert not bad.any(), [tuple(a[i] for a in args) + (got[i], want[i]) for i in np.nonzero(bad)[0][:8]]


# --------------------------------------------------------------------------------- accuracy
def _ulp_err(got, ref, dtype):
    ft = np.float32 if dtype == "complex64" else np.float64
    unit = np.spacing(np.abs(ref).astype(ft)).astype(np.float64)
    return np.maximum(np.abs(got.real - ref.real), np.abs(got.imag - ref.imag)) / unit


def _near_singular(rng, n):
    """Points near +-1, +-i (branch points) and the unit circle."""
    k = n // 2
    base = rng.choice(np.array([1, -1, 1j, -1j]), k)
    a = base + (rng.standard_normal(k) + 1j * rng.standard_normal(k)) * 10.0 ** rng.uniform(-15, -1, k)
    b = np.exp(1j * rng.uniform(-np.pi, np.pi, n - k)) * (1 + rng.standard_normal(n - k) * 10.0 ** rng.uniform(-15, -2, n - k))
    return np.concatenate([a, b])


def _bounded(name, z, dtype):
    part = BOUNDED.get(name)
    lim = 80 if dtype == "complex64" else 700  # exp(lim) stays finite
    if part == "re":
        return np.clip(z.real, -lim, lim) + 1j * np.clip(z.imag, -1e6, 1e6)
    if part == "im":
        return np.clip(z.real, -1e6, 1e6) + 1j * np.clip(z.imag, -lim, lim)
    return z


def _reference(name, z, dtype):
    """complex128 reference: NumPy (complex64 inputs widened); log1p and expm1 near 0 with mpmath
    (NumPy's complex log1p is log(1 + z) and its expm1 cancels: no digits left for tiny z)."""
    ref = _np(name, z.astype("complex128"))
    if name in ("log1p", "expm1"):
        mpmath = pytest.importorskip("mpmath")
        small = np.abs(z) < 0.5
        fn = getattr(mpmath, name)
        ref[small] = [complex(fn(mpmath.mpc(complex(v)))) for v in z[small].astype("complex128")]
    return ref


def _check_accuracy(name, dtype, z):
    z = _bounded(name, z, dtype).astype(dtype)
    z = z[np.isfinite(z)]
    got = _ours(name, z).astype("complex128")
    ref = _reference(name, z, dtype)
    ok = np.isfinite(ref) & (np.abs(ref) > 0)
    if name == "expm1":  # NumPy's expm1 overflows in exp(x) where exp(x) cos y is finite
        ok &= np.abs(z.real) < 700
    err = _ulp_err(got[ok], ref[ok], dtype)
    assert np.isfinite(got[ok]).all(), z[ok][~np.isfinite(got[ok])][:5]
    worst = int(np.argmax(err)) if err.size else 0
    assert err.size == 0 or err.max() <= BOUND[dtype], \
        f"{name}({z[ok][worst]!r}) = {got[ok][worst]!r}, reference {ref[ok][worst]!r}: {err.max():.1f} ULP"


_magnitude = st.floats(-300, 300)
_angle = st.floats(-np.pi, np.pi)


@settings(max_examples=12)
@given(mags=st.lists(st.tuples(_magnitude, _angle), min_size=1, max_size=40), seed=st.integers(0, 2 ** 32 - 1))
@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
@pytest.mark.parametrize("name", FUNCS)
def test_accuracy(name, dtype, mags, seed):
    lim = 38 if dtype == "complex64" else 300
    z = np.array([10.0 ** min(max(m, -lim), lim) * np.exp(1j * a) for m, a in mags])
    rng = np.random.default_rng(seed)
    extra = 10.0 ** rng.uniform(-lim, lim, 40) * np.exp(1j * rng.uniform(-np.pi, np.pi, 40))
    _check_accuracy(name, dtype, np.concatenate([z, extra, _near_singular(rng, 40)]))


@pytest.mark.parametrize("dtype", ["complex128", "complex64"])
def test_pow_accuracy(dtype):
    """The IR cpow (what NVPTX kernels use; host kernels keep libm's, see complex_ops.HOST_LIBM)."""
    rng = np.random.default_rng(3)
    x = 10.0 ** rng.uniform(-3, 3, 300) * np.exp(1j * rng.uniform(-np.pi, np.pi, 300))
    y = rng.uniform(-4, 4, 300) + 1j * rng.uniform(-4, 4, 300)
    x, y = x.astype(dtype), y.astype(dtype)
    got = _run_jit("pow", False, x, y).astype("complex128")
    ref = np.exp(y.astype("complex128") * np.log(x.astype("complex128")))
    # exp(y log x) amplifies the error of log x by |y log x|: the bound scales with it
    scale = 1 + np.abs(y * np.log(x.astype("complex128")))
    err = _ulp_err(got, ref, dtype) / scale
    assert err.max() <= BOUND[dtype], err.max()


#: tests/test_elementwise.py's bound for complex64 pow: 8 ULP of |w| per part
ELEMENTWISE_POW_BOUND = 8.0


def _c64(draw, lim):
    part = st.floats(-lim, lim, width=32, allow_subnormal=False)
    z = complex(draw(part), draw(part))
    return z if z != 0 else 1.0


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_complex64_pow_ir_is_correctly_rounded(data):
    """complex64 x ** y as NVPTX kernels compute it (the IR; binary64 inside, one rounding at the
    end) against the binary64 result rounded to complex64, on values like those tests/test_elementwise.py
    draws (parts in [-4, 4]; a float32 exponent of any size, as for pow(complex64, float32)).

    NumPy's complex64 power (glibc's cpowf in binary32, or float32 products for integer exponents)
    is off from that reference by up to ~27 ULP of |w| and gives (1.5+2j)**1047103 as -inf+infj
    where the exact value is +inf+infj: on the GPU test_binary[pow] failed against it (bound 8 ULP)
    while this IR measured <= 0.5 ULP from the reference there (H200, 50000 draws)."""
    n = data.draw(st.integers(1, 24), label="n")
    x = np.array([_c64(data.draw, 4.0) for _ in range(n)], np.complex64)
    wide_y = data.draw(st.booleans(), label="wide_y")
    if wide_y:
        y = np.array([data.draw(st.floats(-3e7, 3e7, width=32)) for _ in range(n)], np.complex64)
    else:
        y = np.array([_c64(data.draw, 4.0) for _ in range(n)], np.complex64)
    got = _run_jit("pow", False, x, y)
    with np.errstate(all="ignore"):
        ref = np.power(x.astype("complex128"), y.astype("complex128"))
        want = ref.astype("complex64")
    for part in ("real", "imag"):
        g, w = getattr(got, part), getattr(want, part)
        inf = np.isinf(w) & (np.abs(ref) > 1e39)  # clear overflows: the same infinities
        assert np.array_equal(g[inf], w[inf]), (x[inf], y[inf], got[inf], want[inf])
    fin = np.isfinite(want.real) & np.isfinite(want.imag) & (np.abs(ref) < 3e38)
    fin &= np.abs(ref) > 1e-37  # results in float32's subnormal range are compared by their ULP below
    err = _ulp_err(got[fin].astype("complex128"), ref[fin], "complex64")
    assert err.size == 0 or err.max() <= 1.0, (x[fin][np.argmax(err)], y[fin][np.argmax(err)], err.max())
    assert err.size == 0 or err.max() <= ELEMENTWISE_POW_BOUND


def test_complex64_pow_overflow_signs():
    """(1.5+2j)**1047103 overflows to +inf+infj (cos and sin of 1047103 arg(1.5+2j) are both > 0,
    mpmath); binary32 evaluation of the angle (glibc's cpowf, NumPy's complex64) gets -inf+infj."""
    got = _run_jit("pow", False, np.array([1.5 + 2j], np.complex64), np.array([1047103.0], np.complex64))
    assert got[0].real == np.inf and got[0].imag == np.inf


def test_fused_complex_chain_matches_numpy():
    """Complex transcendentals fuse with arithmetic into one kernel and stay accurate."""
    rng = np.random.default_rng(5)
    h = (rng.standard_normal(1000) + 1j * rng.standard_normal(1000)).astype("complex64")
    z = xp.asarray(h)
    got = np.asarray(xp.exp(z) * xp.sin(z) + xp.log(z + 2))
    want = np.exp(h.astype("complex128")) * np.sin(h.astype("complex128")) + np.log(h.astype("complex128") + 2)
    np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6 * np.abs(want).max() * 1e-3)


@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_trig_next_to_real_trig(dtype):
    """A kernel with real sin uses the fast trig reduction and reruns the full one when a lane needs
    it; complex exp in the same kernel takes part (its cos/sin of arguments near 1e19 ask for it)."""
    rng = np.random.default_rng(9)
    n = 200
    r = rng.uniform(-3, 3, n)  # no real lane needs the rerun: only the complex ones ask for it
    c = rng.uniform(-3, 3, n) * np.where(rng.random(n) < 0.1, 1e19, 1.0) + 1j * rng.uniform(-3, 3, n)
    c = c.astype(dtype)
    r = r.astype("float32" if dtype == "complex64" else "float64")
    with np.errstate(all="ignore"):
        got = np.asarray(xp.sin(xp.asarray(r)) * xp.exp(xp.asarray(c) * 1j))
        want = np.sin(r.astype("float64")) * np.exp(c.astype("complex128") * 1j)
    err = np.abs(got - want) / np.maximum(np.abs(want), 1e-300)
    assert np.all(err < (2e-6 if dtype == "complex64" else 1e-13)), (c[np.argmax(err)], err.max())


# ------------------------------------------------------------------------------------- NVPTX
def test_every_function_compiles_and_assembles_for_nvptx(tmp_path):
    """Each complex function in one NVPTX module (complex64 and complex128 in turn: both evaluate
    the same binary64 code): no refused call; ptxas assembles it for sm_80."""
    from egpu_array.kernels import cache
    from egpu_array.kernels.targets import NVPTXTarget

    specs = {}
    cache.recorders.append(lambda dev, spec: specs.setdefault(spec, None))
    try:
        for i, name in enumerate(FUNCS + ("pow",)):
            z = xp.asarray(np.array([1 + 1j, 0.5 - 2j], dtype=("complex64", "complex128")[i % 2]))
            np.asarray(z ** z if name == "pow" else getattr(xp, name)(z))
    finally:
        cache.recorders.pop()
    specs = [s for s in specs if s.kind == "elementwise"]
    assert len(specs) >= len(FUNCS) + 1
    target = NVPTXTarget(80)
    module = target.new_module("cmath_all")
    names = tuple(f"k{i}" for i in range(len(specs)))
    for s, n in zip(specs, names):
        cache.generator_for(s.kind)(s, module, n)
    ptx = target.compile(module, names)  # raises KernelCompileError on a call NVPTX cannot lower
    assert b".entry" in ptx
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("ptxas not found on PATH")
    path = tmp_path / "cmath.ptx"
    path.write_bytes(ptx)
    r = subprocess.run([ptxas, "-arch=sm_80", "-O0", str(path), "-o", str(tmp_path / "cmath.cubin")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def test_log_of_subnormal_complex_keeps_the_half_bit():
    """|z| of subnormal parts rounds (|5e-324 (1 + i)| is 5e-324): the parts are scaled by 2^600
    first, so log2 of 5e-324 (1 + i) is -1073.5 as NumPy says, not -1074 (found by the deep
    hypothesis profile)."""
    z = np.array([5e-324 + 5e-324j, 1e-310 + 3e-310j, -1e-320j, 2.0 ** -1000 + 0j, 3 + 4j])
    for name in ("log", "log2", "log10"):
        got, want = _ours(name, z), _np(name, z)
        np.testing.assert_allclose(got.real, want.real, rtol=1e-15)
        np.testing.assert_allclose(got.imag, want.imag, rtol=1e-15)
