"""Tests of egpu_array.kernels.math (LLVM IR transcendental functions).

Each function is JIT-compiled (llvmlite MCJIT, host CPU) into a loop kernel
over numpy buffers and compared with numpy references: special values
exactly, random values within the documented ULP bounds.

``python3 tests/kernels/test_math.py --measure [N]`` runs the large accuracy
measurement whose results are recorded in docs/accuracy.rst.
"""

import ctypes
import functools
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

if __name__ == "__main__":  # allow running as a script from the repo root
    sys.path.insert(0, os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

from llvmlite import ir  # noqa: E402
import llvmlite.binding as llvm  # noqa: E402

from egpu_array.kernels.math import (ALLOWED_INTRINSICS, MATH_FUNCS,  # noqa: E402
                                     MATH_ULP_BOUNDS, emit_math)

# ---------------------------------------------------------------------------
# JIT harness
# ---------------------------------------------------------------------------
_I64 = ir.IntType(64)


@functools.lru_cache(maxsize=None)
def _llvm_init():
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    for fn in ("initialize_native_target", "initialize_native_asmprinter"):
        if hasattr(llvm, fn):
            getattr(llvm, fn)()
    target = llvm.Target.from_default_triple()
    return target.create_target_machine(cpu=llvm.get_host_cpu_name(),
                                        features=llvm.get_host_cpu_features().flatten(),
                                        opt=3)


def _scalar_type(dtype):
    return ir.DoubleType() if np.dtype(dtype) == np.float64 else ir.FloatType()


def build_module(names, dtype, width=None, triple=None):
    """Module with one kernel per function: void k(T* out, T* a, T* b, i64 n).

    width=None applies emit_math to scalars in the loop; width=w applies it
    to <w x T> vectors (n must then be a multiple of w).
    """
    st = _scalar_type(dtype)
    et = ir.VectorType(st, width) if width else st
    mod = ir.Module(name="mathtest")
    if triple:
        mod.triple = triple
    ptr = ir.PointerType(st)
    abi = 8 if np.dtype(dtype) == np.float64 else 4
    for name in names:
        fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [ptr, ptr, ptr, _I64]),
                         f"k_{name}")
        out, pa, pb, n = fn.args
        entry = fn.append_basic_block("entry")
        loop = fn.append_basic_block("loop")
        done = fn.append_basic_block("done")
        b = ir.IRBuilder(entry)
        step = width or 1
        b.cbranch(b.icmp_signed(">", n, ir.Constant(_I64, 0)), loop, done)
        b.position_at_end(loop)
        i = b.phi(_I64)
        i.add_incoming(ir.Constant(_I64, 0), entry)

        def ld(p):
            q = b.gep(p, [i])
            if width:
                q = b.bitcast(q, ir.PointerType(et))
            return b.load(q, align=abi)

        args = [ld(pa)] + ([ld(pb)] if MATH_FUNCS[name] == 2 else [])
        res = emit_math(b, name, args)
        q = b.gep(out, [i])
        if width:
            q = b.bitcast(q, ir.PointerType(et))
        b.store(res, q, align=abi)
        nxt = b.add(i, ir.Constant(_I64, step))
        i.add_incoming(nxt, loop)
        b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
        b.position_at_end(done)
        b.ret_void()
    return mod


_ENGINES = []


@functools.lru_cache(maxsize=None)
def compiled(names, dtype_str, width=None):
    """Compile kernels; returns {name: ctypes function}."""
    tm = _llvm_init()
    mod = build_module(names, np.dtype(dtype_str), width)
    llmod = llvm.parse_assembly(str(mod))
    llmod.verify()
    pto = llvm.create_pipeline_tuning_options(speed_level=3)
    pb = llvm.create_pass_builder(tm, pto)
    pb.getModulePassManager().run(llmod, pb)
    engine = llvm.create_mcjit_compiler(llmod, tm)
    engine.finalize_object()
    _ENGINES.append(engine)
    cty = ctypes.c_double if np.dtype(dtype_str) == np.float64 else ctypes.c_float
    out = {}
    for name in names:
        addr = engine.get_function_address(f"k_{name}")
        proto = ctypes.CFUNCTYPE(None, ctypes.POINTER(cty), ctypes.POINTER(cty),
                                 ctypes.POINTER(cty), ctypes.c_int64)
        out[name] = proto(addr)
    return out


def run(name, dtype, a, b=None, width=None):
    dtype = np.dtype(dtype)
    a = np.ascontiguousarray(a, dtype=dtype)
    b = a if b is None else np.ascontiguousarray(b, dtype=dtype)
    a, b = np.broadcast_arrays(a, b)
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    n = a.size
    pad = (-n) % (width or 1)
    if pad:
        a = np.concatenate([a.ravel(), np.ones(pad, dtype)])
        b = np.concatenate([b.ravel(), np.ones(pad, dtype)])
    out = np.empty(a.size, dtype)
    fn = compiled(tuple(sorted(MATH_FUNCS)), dtype.str, width)[name]
    cty = ctypes.c_double if dtype == np.float64 else ctypes.c_float

    def p(x):
        return x.ctypes.data_as(ctypes.POINTER(cty))

    fn(p(out), p(a), p(b), a.size)
    return out[:n].reshape(np.shape(a.ravel()[:n]))


# ---------------------------------------------------------------------------
# references and ULP errors
# ---------------------------------------------------------------------------
_NP_NAMES = {"asin": "arcsin", "acos": "arccos", "atan": "arctan", "atan2": "arctan2",
             "asinh": "arcsinh", "acosh": "arccosh", "atanh": "arctanh", "pow": "power"}


#: (name, dtype) -> frexp exponent floor for the ULP unit (see ulp_errors):
#: logaddexp float64 is accurate to 4 ULP of max(|result|, 0.5), i.e. it has
#: an absolute error of ~2^-52 where x + log1p(exp(y - x)) cancels.
ULP_FLOOR = {("logaddexp", "float64"): 0}


def reference(name, dtype, a, b=None):
    """Higher-precision reference: float64 numpy for float32, long double for float64."""
    wide = np.float64 if np.dtype(dtype) == np.float32 else np.longdouble
    f = getattr(np, _NP_NAMES.get(name, name))
    with np.errstate(all="ignore"):
        if MATH_FUNCS[name] == 2:
            return f(np.asarray(a, wide), np.asarray(b, wide))
        return f(np.asarray(a, wide))


def ulp_errors(got, ref, dtype, min_exp=None):
    """|got - ref| in ULPs of dtype at ref (binade of ref; subnormal ULP floor).

    min_exp: measure in ULPs of max(|ref|, 2**(min_exp-1)) instead (an
    absolute-error floor, used for logaddexp float64 near its zero set).
    """
    fi = np.finfo(dtype)
    p = fi.nmant + 1
    emin = fi.minexp - fi.nmant  # exponent of the smallest subnormal
    wide = ref.dtype
    with np.errstate(all="ignore"):
        g = got.astype(wide)
        err = np.zeros(got.shape, np.float64)
        nan_g, nan_r = np.isnan(g), np.isnan(ref)
        err[nan_g != nan_r] = np.inf
        fin = ~nan_g & ~nan_r
        big = np.asarray(fi.max, wide) * (1 + np.asarray(2.0 ** -p, wide))
        # reference beyond the format's range must give an infinity of the same sign
        ovf = fin & (np.abs(ref) >= big)
        err[ovf & (g != np.copysign(np.asarray(np.inf, wide), ref))] = np.inf
        rest = fin & ~ovf
        inf_g = rest & np.isinf(g)
        err[inf_g] = np.inf
        ok = rest & ~inf_g
        _, e = np.frexp(ref[ok])
        if min_exp is not None:
            e = np.maximum(e, min_exp)
        ulp = np.ldexp(np.ones(e.shape, wide), np.maximum(e - p, emin))
        err[ok] = (np.abs(g[ok] - ref[ok]) / ulp).astype(np.float64)
        # exact zeros: sign must match too (an error of 0.5 ULP marks a sign slip)
        z = ok & (ref == 0) & (g == 0)
        err[z & (np.signbit(g) != np.signbit(ref))] = np.inf
    return err


def _rand_bits(rng, dtype, n):
    """Random finite values spread uniformly over the bit patterns (all binades)."""
    it = np.uint64 if np.dtype(dtype) == np.float64 else np.uint32
    v = rng.integers(0, np.iinfo(it).max, size=n, dtype=it, endpoint=True).view(dtype)
    return v[np.isfinite(v)]


def _logu(rng, lo, hi, n, sign=False):
    """Log-uniform magnitudes in [lo, hi] (optionally random sign)."""
    v = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    if sign:
        v *= rng.choice([-1.0, 1.0], n)
    return v


def _uni(rng, lo, hi, n):
    return rng.uniform(lo, hi, n)


def _near_pio2_multiples(rng, n, double):
    """Values close to k*pi/2 (hard cancellation for the argument reduction)."""
    kk = np.round(rng.uniform(1, 2.0 ** 40 if double else 2.0 ** 20, n)).astype(np.longdouble)
    v = (kk * (np.longdouble("3.14159265358979323846264338327950288") / 2)).astype(np.float64)
    # known hard cases: 6381956970095103 * 2**797 (closest double to a multiple of pi/2)
    v[:4] = [6381956970095103 * 2.0 ** 797, 1.5707963267948966, 2.0 ** 1023 * 1.5, 16367173 * 2.0 ** 72]
    return v


def samples(name, dtype, n, seed=0):
    """Inputs for `name`: whole range + function-specific hard regions."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _samples(name, dtype, n, seed)


def _samples(name, dtype, n, seed):
    rng = np.random.default_rng(seed)
    d = np.dtype(dtype) == np.float64
    big = 1e308 if d else 3e38
    tiny = 1e-320 if d else 1e-44
    k = max(n // 8, 1)
    u, lg = functools.partial(_uni, rng), functools.partial(_logu, rng)
    unary = {
        "exp": [u(-760, 720, k) if d else u(-110, 95, k), lg(tiny, 1, k, True),
                u(700, 710, k) if d else u(85, 89, k), u(-746, -700, k) if d else u(-104, -85, k)],
        "exp2": [u(-1080, 1030, k) if d else u(-155, 130, k), lg(tiny, 1, k, True),
                 u(1000, 1024, k) if d else u(120, 128, k), u(-1076, -1000, k) if d else u(-151, -120, k)],
        "expm1": [u(-50, 710, k) if d else u(-20, 89, k), lg(tiny, 1, 2 * k, True), u(-1, 1, k)],
        "log": [lg(tiny, big, 2 * k), u(0.5, 2, k), 1 + lg(1e-16 if d else 1e-7, 1e-2, k, True)],
        "log1p": [lg(tiny, big, k), lg(tiny, 1, k, True), u(-1, 1, k), -1 + lg(1e-16 if d else 1e-7, 1, k)],
        "sin": [u(-10, 10, k), lg(tiny, big, 2 * k, True), u(-1e6, 1e6, k), lg(1e20, big, k),
                _near_pio2_multiples(rng, k, d)],
        "asin": [u(-1, 1, 2 * k), lg(tiny, 1, k, True), 1 - lg(1e-16 if d else 1e-7, 1, k)],
        "atan": [lg(tiny, big, 2 * k, True), u(-5, 5, 2 * k)],
        "sinh": [u(-712, 712, k) if d else u(-90, 90, k), lg(tiny, 30, 2 * k, True), u(-2, 2, k)],
        "tanh": [u(-25, 25, k), lg(tiny, 30, 2 * k, True), u(-1, 1, k)],
        "asinh": [lg(tiny, big, 2 * k, True), u(-3, 3, k)],
        "acosh": [1 + lg(tiny, big, 2 * k), u(1, 3, k)],
        "atanh": [u(-1, 1, 2 * k), lg(tiny, 1, k, True), 1 - lg(1e-16 if d else 1e-7, 1, k)],
        "cbrt": [lg(tiny, big, 2 * k, True)],
    }
    for a, b_ in (("log2", "log"), ("log10", "log"), ("cos", "sin"), ("tan", "sin"),
                  ("acos", "asin"), ("cosh", "sinh")):
        unary[a] = unary[b_]
    if MATH_FUNCS[name] == 1:
        parts = unary[name] + [_rand_bits(rng, dtype, 2 * k)]
        x = np.concatenate([np.asarray(p, np.float64).astype(dtype) for p in parts])
        return x, None
    if name == "pow":
        xs = [lg(1e-3, 1e3, 2 * k), u(0, 2, k), lg(tiny, big, k), -np.round(u(0, 30, k))]
        ys = [u(-100, 100, 2 * k) if d else u(-15, 15, 2 * k), u(-50, 50, k),
              u(-2, 2, k), np.round(u(-30, 30, k))]
    elif name == "atan2":
        xs = [lg(tiny, big, 2 * k, True), u(-3, 3, 2 * k), u(-1, 1, k)]
        ys = [lg(tiny, big, 2 * k, True), u(-3, 3, 2 * k), u(-1, 1, k)]
    elif name == "hypot":
        xs = [lg(tiny, big, 3 * k, True), u(-3, 3, 2 * k)]
        ys = [lg(tiny, big, 3 * k, True), u(-3, 3, 2 * k)]
    else:  # logaddexp
        xs = [u(-1000, 1000, k) if d else u(-100, 100, k), u(-5, 5, 2 * k), lg(tiny, big, 2 * k, True)]
        ys = [u(-1000, 1000, k) if d else u(-100, 100, k), u(-5, 5, 2 * k), lg(tiny, big, 2 * k, True)]
    x = np.concatenate([np.asarray(p, np.float64).astype(dtype) for p in xs])
    y = np.concatenate([np.asarray(p, np.float64).astype(dtype) for p in ys])
    return x, y


def max_ulp(name, dtype, n, seed=0):
    """(max ULP error, argmax input(s), count) over `samples` of size ~n."""
    x, y = samples(name, dtype, n, seed)
    with np.errstate(all="ignore"):
        got = run(name, dtype, x, y)
    ref = reference(name, dtype, x, y)
    err = ulp_errors(got, ref, dtype, ULP_FLOOR.get((name, np.dtype(dtype).name)))
    i = int(np.argmax(err))
    where = (x[i],) if y is None else (x[i], y[i])
    return float(err[i]), where, x.size


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------
DTYPES = [np.float32, np.float64]
UNARY = sorted(n for n, a in MATH_FUNCS.items() if a == 1)
BINARY = sorted(n for n, a in MATH_FUNCS.items() if a == 2)
ALL = sorted(MATH_FUNCS)


def _specials(dtype):
    fi = np.finfo(dtype)
    tiny_sub = fi.smallest_subnormal
    v = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 3.0, -3.0,
         0.25, 1.5, -1.5, 10.0, np.pi, np.pi / 2, 100.0, -100.0, 1e-3,
         float(tiny_sub), -float(tiny_sub), float(fi.smallest_normal), float(fi.max), -float(fi.max),
         float(fi.smallest_normal) / 3, 1 - float(fi.eps), 1 + float(fi.eps)]
    return np.array(v, dtype)


def _check(name, dtype, x, y, got):
    ref = reference(name, dtype, x, y)
    err = ulp_errors(got, ref, dtype, ULP_FLOOR.get((name, np.dtype(dtype).name)))
    bound = MATH_ULP_BOUNDS[name]
    with np.errstate(all="ignore"):
        exact = np.isnan(ref) | np.isinf(ref) | (ref == 0)
    bad = np.nonzero((err > bound) | (exact & (err > 0)))[0]
    if bad.size:
        i = bad[0]
        args = (x[i],) if y is None else (x[i], y[i])
        pytest.fail(f"{name}{args} [{np.dtype(dtype).name}] = {got[i]!r}, expected {ref[i]!r} "
                    f"({err[i]:.3g} ulp; {bad.size} failures)")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL)
def test_special_values(name, dtype):
    s = _specials(dtype)
    if MATH_FUNCS[name] == 1:
        x, y = s, None
    else:
        x, y = (a.ravel() for a in np.meshgrid(s, s))
    with np.errstate(all="ignore"):
        got = run(name, dtype, x, y)
    _check(name, dtype, x, y, got)


C99_CASES = [
    # (name, args, expected)
    ("pow", (np.nan, 0.0), 1.0), ("pow", (np.nan, -0.0), 1.0), ("pow", (1.0, np.nan), 1.0),
    ("pow", (1.0, np.inf), 1.0), ("pow", (-1.0, np.inf), 1.0), ("pow", (-1.0, -np.inf), 1.0),
    ("pow", (-np.inf, 3.0), -np.inf), ("pow", (-np.inf, -3.0), -0.0),
    ("pow", (-np.inf, 2.0), np.inf), ("pow", (-np.inf, -2.0), 0.0), ("pow", (-np.inf, 0.5), np.inf),
    ("pow", (-0.0, -3.0), -np.inf), ("pow", (-0.0, -2.0), np.inf), ("pow", (-0.0, 3.0), -0.0),
    ("pow", (-0.0, 0.5), 0.0), ("pow", (0.0, -np.inf), np.inf), ("pow", (0.5, -np.inf), np.inf),
    ("pow", (2.0, -np.inf), 0.0), ("pow", (0.5, np.inf), 0.0), ("pow", (-2.0, np.inf), np.inf),
    ("pow", (-2.0, 0.5), np.nan), ("pow", (-2.0, 3.0), -8.0), ("pow", (2.0, -1075.0), 0.0),
    ("atan2", (0.0, -0.0), np.pi), ("atan2", (-0.0, -0.0), -np.pi), ("atan2", (0.0, 0.0), 0.0),
    ("atan2", (-0.0, 0.0), -0.0), ("atan2", (-0.0, -1.0), -np.pi), ("atan2", (1.0, -0.0), np.pi / 2),
    ("atan2", (np.inf, -np.inf), 3 * np.pi / 4), ("atan2", (-np.inf, np.inf), -np.pi / 4),
    ("atan2", (-1.0, np.inf), -0.0), ("atan2", (1.0, -np.inf), np.pi),
    ("log", (-0.0,), -np.inf), ("log", (-1.0,), np.nan), ("log", (np.inf,), np.inf),
    ("log2", (0.0,), -np.inf), ("log10", (-np.inf,), np.nan), ("log1p", (-1.0,), -np.inf),
    ("log1p", (-0.0,), -0.0), ("expm1", (-0.0,), -0.0), ("expm1", (-np.inf,), -1.0),
    ("exp", (-np.inf,), 0.0), ("exp2", (np.inf,), np.inf), ("exp", (1000.0,), np.inf),
    ("tanh", (np.inf,), 1.0), ("tanh", (-np.inf,), -1.0), ("tanh", (-0.0,), -0.0),
    ("sinh", (-0.0,), -0.0), ("sinh", (-np.inf,), -np.inf), ("cosh", (-np.inf,), np.inf),
    ("asinh", (-0.0,), -0.0), ("acosh", (1.0,), 0.0), ("acosh", (0.5,), np.nan),
    ("atanh", (-1.0,), -np.inf), ("atanh", (-0.0,), -0.0), ("atanh", (2.0,), np.nan),
    ("sin", (-0.0,), -0.0), ("sin", (np.inf,), np.nan), ("cos", (-np.inf,), np.nan),
    ("tan", (-0.0,), -0.0), ("cos", (-0.0,), 1.0),
    ("asin", (-0.0,), -0.0), ("asin", (1.5,), np.nan), ("acos", (1.0,), 0.0),
    ("acos", (-1.0,), np.pi), ("atan", (-np.inf,), -np.pi / 2), ("atan", (-0.0,), -0.0),
    ("hypot", (np.inf, np.nan), np.inf), ("hypot", (np.nan, -np.inf), np.inf),
    ("hypot", (np.nan, 1.0), np.nan), ("hypot", (-0.0, 0.0), 0.0),
    ("logaddexp", (-np.inf, -np.inf), -np.inf), ("logaddexp", (np.inf, np.inf), np.inf),
    ("logaddexp", (np.inf, -np.inf), np.inf), ("logaddexp", (np.nan, np.inf), np.nan),
    ("cbrt", (-0.0,), -0.0), ("cbrt", (-np.inf,), -np.inf), ("cbrt", (-8.0,), -2.0),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,args,expected", C99_CASES)
def test_c99_cases(name, args, expected, dtype):
    a = np.array([args[0]], dtype)
    b = np.array([args[1]], dtype) if len(args) > 1 else None
    with np.errstate(all="ignore"):
        got = run(name, dtype, a, b)[0]
    exp = dtype(expected)
    if np.isnan(exp):
        assert np.isnan(got), (name, args, got)
    elif np.isinf(exp) or exp == 0:
        assert got == exp and np.signbit(got) == np.signbit(exp), (name, args, got)
    else:
        assert ulp_errors(np.array([got]), np.array([expected], np.longdouble), dtype)[0] <= 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ALL)
def test_ulp_bound(name, dtype):
    n = int(os.environ.get("EGPU_MATH_SAMPLES", 200_000))
    x, y = samples(name, dtype, n, seed=12345)
    with np.errstate(all="ignore"):
        got = run(name, dtype, x, y)
    _check(name, dtype, x, y, got)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["sin", "cos"])
def test_sin_cos_reduction_edges(name, dtype):
    """Within 0.1 of the extrema (float64 reduces mod pi: |r| ~ pi/2 there, where the cubic term
    is 0.65 of the result) and next to the zeros (tiny r, cancellation), in the Cody-Waite and
    the Payne-Hanek ranges, both signs: within the bound (float64: within 1.5 ULP, the measured
    1.35 plus a margin; summing r^3 Q(z) in one piece gave 2.3 here), and the symmetry (sin odd,
    cos even) bit for bit."""
    rng = np.random.default_rng(11)
    pi = np.longdouble("3.14159265358979323846264338327950288")
    top = 60 if np.dtype(dtype) == np.float64 else 40
    k = np.round(np.exp2(rng.uniform(0, top, 60000))).astype(np.longdouble)
    ext, zero = (0.5, 0.0) if name == "sin" else (0.0, 0.5)
    near_ext = (k + np.longdouble(ext)) * pi + rng.uniform(-0.1, 0.1, k.size)
    near_zero = (k[:2000] + np.longdouble(zero)) * pi
    near_zero = np.concatenate([near_zero, np.nextafter(near_zero, np.inf),
                                np.nextafter(near_zero, -np.inf)])
    x = np.concatenate([near_ext, near_zero]).astype(dtype)
    x = np.concatenate([x, -x])
    with np.errstate(all="ignore"):
        got = run(name, dtype, x)
        _check(name, dtype, x, None, got)
        if np.dtype(dtype) == np.float64:
            err = ulp_errors(got, reference(name, dtype, x), dtype)
            assert err.max() <= 1.5, (x[np.argmax(err)], err.max())
    n = x.size // 2
    assert np.array_equal(got[n:], -got[:n] if name == "sin" else got[:n]), "symmetry"


def test_ir_calls_only_allowed_intrinsics():
    allowed = {f"llvm.{n}" for n in ALLOWED_INTRINSICS}
    for dtype, width in ((np.float32, None), (np.float64, None), (np.float32, 8), (np.float64, 4)):
        text = str(build_module(tuple(ALL), dtype, width))
        calls = re.findall(r'\bcall\b[^@]*@"?([\w.]+)', text)
        decls = re.findall(r'^declare[^@]*@"?([\w.]+)', text, re.M)
        assert calls, "expected intrinsic calls"
        for c in calls + decls:
            base = re.sub(r"\.(v\d+)?f(32|64)$", "", c)
            assert base in allowed, c


def _emitted_blocks(name, dtype):
    """The math code itself must be branch-free: one basic block per emission."""
    st = _scalar_type(dtype)
    mod = ir.Module()
    fn = ir.Function(mod, ir.FunctionType(st, [st] * MATH_FUNCS[name]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    b.ret(emit_math(b, name, list(fn.args)))
    return len(fn.blocks), str(mod)


@pytest.mark.parametrize("name", ALL)
def test_straight_line(name):
    for dtype in DTYPES:
        nblocks, text = _emitted_blocks(name, dtype)
        assert nblocks == 1
        assert "br " not in text and "switch" not in text
        llvm.parse_assembly(text).verify()


@pytest.mark.parametrize("dtype,width", [(np.float32, 8), (np.float64, 4)])
def test_vector_matches_scalar(dtype, width):
    rng = np.random.default_rng(7)
    for name in ALL:
        x, y = samples(name, dtype, 4000, seed=3)
        s = _specials(dtype)
        x = np.concatenate([x, s])
        if y is not None:
            y = np.concatenate([y, rng.permutation(s)])
        with np.errstate(all="ignore"):
            sc = run(name, dtype, x, y)
            ve = run(name, dtype, x, y, width=width)
        same = (sc == ve) | (np.isnan(sc) & np.isnan(ve))
        assert same.all(), (name, x[~same][:3], sc[~same][:3], ve[~same][:3])
        z = sc == 0
        assert (np.signbit(sc[z]) == np.signbit(ve[z])).all(), name


def _f32_around(points, k=3):
    """The float32 values within k steps of each point (both signs of each, finite ones)."""
    p = np.asarray(points, np.float32)
    out = [p]
    lo, hi = p, p
    for _ in range(k):
        lo, hi = np.nextafter(lo, np.float32(-np.inf)), np.nextafter(hi, np.float32(np.inf))
        out += [lo, hi]
    v = np.concatenate(out)
    v = np.concatenate([v, -v])
    return np.unique(v[np.isfinite(v)])


def _f32_edges(name):
    """Inputs where a step of the binary32 kernel (math_f32) changes: the mantissa split at
    sqrt(1/2) in every binade (the exact Fast2Sum sums rely on it), the subnormal scaling, the
    thresholds between branches, and the ends of the domains."""
    split = np.ldexp(np.float32(0.70710677), np.arange(-149, 129)).astype(np.float32)
    split = split[np.isfinite(split) & (split > 0)]
    common = [1.0, 2.0 ** -126, 2.0 ** -25, 2.0 ** -13, 0.5, float(np.finfo(np.float32).max) / 2]
    with np.errstate(over="ignore"):
        return {
            "log": list(split) + common,
            "log1p": list(split[split >= 2.0 ** -24].astype(np.float64) - 1) + [-1.0] + common,
            "asinh": [2.0 ** 13, 2.0 ** 14, 1.0, 0.25] + common,
            "acosh": [1.0, 1.0 + 2.0 ** -10, 2.0 ** 13, 2.0 ** 24] + common,
            "atanh": [1.0, 0.5, 0.25] + common,
            "tanh": [0.625, 10.0, 9.0, 0.3] + common,
            "asin": [0.5, 1.0, 0.25, 0.97] + common,
        }[{"log2": "log", "log10": "log", "acos": "asin"}.get(name, name)]


@pytest.mark.parametrize("name", ["log", "log2", "log10", "log1p", "asinh", "acosh", "atanh",
                                  "tanh", "asin", "acos"])
def test_f32_branch_edges(name):
    """binary32 kernels in single precision: within the bound (exact special values and signed
    zeros) around every point where the computation changes; no double arithmetic emitted."""
    x = _f32_around(_f32_edges(name))
    with np.errstate(all="ignore"):
        got = run(name, np.float32, x)
    _check(name, np.float32, x, None, got)
    assert "double" not in _emitted_blocks(name, np.float32)[1]


def _guarded_kernel(name, dtype, width):
    """void k(T* out, T* a, i8* flag, i64 n): emit_math with a guards list (the fast trig variant
    the fused kernels try first); flag[i] = OR of the guards of the vector holding element i."""
    st = _scalar_type(dtype)
    et = ir.VectorType(st, width)
    mod = ir.Module(name="guarded")
    i8 = ir.IntType(8)
    fn = ir.Function(mod, ir.FunctionType(ir.VoidType(), [st.as_pointer(), st.as_pointer(),
                                                          i8.as_pointer(), _I64]), "k")
    out, pa, pf, n = fn.args
    entry, loop, done = (fn.append_basic_block(x) for x in ("entry", "loop", "done"))
    b = ir.IRBuilder(entry)
    b.branch(loop)
    b.position_at_end(loop)
    i = b.phi(_I64)
    i.add_incoming(ir.Constant(_I64, 0), entry)
    abi = np.dtype(dtype).itemsize
    x = b.load(b.bitcast(b.gep(pa, [i]), et.as_pointer()), align=abi)
    guards = []
    b.store(emit_math(b, name, [x], guards), b.bitcast(b.gep(out, [i]), et.as_pointer()), align=abi)
    assert len(guards) == 1
    g = b.zext(b.bitcast(guards[0], ir.IntType(width)), ir.IntType(64))
    b.store(b.zext(b.icmp_unsigned("!=", g, ir.Constant(ir.IntType(64), 0)), i8), b.gep(pf, [i]))
    nxt = b.add(i, ir.Constant(_I64, width))
    i.add_incoming(nxt, loop)
    b.cbranch(b.icmp_signed("<", nxt, n), loop, done)
    b.position_at_end(done)
    b.ret_void()
    llmod = llvm.parse_assembly(str(mod))
    llmod.verify()
    engine = llvm.create_mcjit_compiler(llmod, _llvm_init())
    engine.finalize_object()
    _ENGINES.append(engine)
    cty = ctypes.c_double if np.dtype(dtype) == np.float64 else ctypes.c_float
    return ctypes.CFUNCTYPE(None, ctypes.POINTER(cty), ctypes.POINTER(cty), ctypes.c_void_p,
                            ctypes.c_int64)(engine.get_function_address("k")), cty


@pytest.mark.parametrize("dtype,width", [(np.float32, 8), (np.float64, 4)])
@pytest.mark.parametrize("name", ["sin", "cos", "tan"])
def test_guarded_trig(name, dtype, width):
    """The fast variant (Cody-Waite only): where no lane of a vector needs the wide reduction its
    results are bit-identical to the full variant's, NaN/inf give NaN without a flag, and a vector
    is flagged exactly when one of its lanes is finite with |x| >= the Cody-Waite threshold."""
    thr = 2.0 ** 30 if np.dtype(dtype) == np.float64 else 2.0 ** 16
    x, _ = samples(name, dtype, 40000, seed=5)
    x = np.concatenate([x, _specials(dtype), np.array([thr, -thr, np.nextafter(thr, 0)], dtype)])
    x = np.concatenate([x, np.ones((-x.size) % width, dtype)]).astype(dtype)
    x = x[np.argsort(np.abs(x), kind="stable")]  # most vectors hold magnitudes on one side
    x[:width * 50] = np.random.default_rng(6).permutation(x[:width * 50])
    fn, cty = _guarded_kernel(name, dtype, width)
    out = np.empty_like(x)
    flag = np.zeros(x.size, np.uint8)
    with np.errstate(all="ignore"):
        fn(out.ctypes.data_as(ctypes.POINTER(cty)), x.ctypes.data_as(ctypes.POINTER(cty)),
           flag.ctypes.data, x.size)
        full = run(name, dtype, x, width=width)
    lanes = np.abs(x).reshape(-1, width)
    need = ((lanes >= thr) & np.isfinite(lanes)).any(axis=1)
    assert (flag.reshape(-1, width)[:, 0] != 0).tolist() == need.tolist()
    ok = ~np.repeat(need, width)
    assert ok.sum() > x.size // 4
    same = (out[ok] == full[ok]) | (np.isnan(out[ok]) & np.isnan(full[ok]))
    assert same.all(), (x[ok][~same][:3], out[ok][~same][:3], full[ok][~same][:3])
    assert (np.signbit(out[ok]) == np.signbit(full[ok])).all()
    assert np.isnan(out[~np.isfinite(x)]).all()


def test_bad_arguments():
    mod = ir.Module()
    fn = ir.Function(mod, ir.FunctionType(ir.DoubleType(), [ir.DoubleType(), ir.FloatType()]), "f")
    b = ir.IRBuilder(fn.append_basic_block())
    with pytest.raises(ValueError):
        emit_math(b, "nope", [fn.args[0]])
    with pytest.raises(TypeError):
        emit_math(b, "exp", [fn.args[0], fn.args[0]])
    with pytest.raises(TypeError):
        emit_math(b, "pow", [fn.args[0], fn.args[1]])
    assert MATH_FUNCS["atan2"] == 2 and MATH_FUNCS["exp"] == 1


_PTX_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import llvmlite.binding as llvm
    sys.path.insert(0, {root!r})
    from tests.kernels.test_math import build_module, MATH_FUNCS
    llvm.initialize_all_targets()
    llvm.initialize_all_asmprinters()
    triple = "nvptx64-nvidia-cuda"
    tm = llvm.Target.from_triple(triple).create_target_machine(cpu="sm_80", opt=3)
    for dt in ("f4", "f8"):
        mod = build_module(tuple(sorted(MATH_FUNCS)), np.dtype(dt), triple=triple)
        for f in mod.functions:
            if f.name.startswith("k_"):
                f.calling_convention = "ptx_kernel"
        m = llvm.parse_assembly(str(mod))
        m.triple = triple
        m.data_layout = str(tm.target_data)
        m.verify()
        pto = llvm.create_pipeline_tuning_options(speed_level=3)
        pb = llvm.create_pass_builder(tm, pto)
        pb.getModulePassManager().run(m, pb)
        with open({out!r} + "/math_" + dt + ".ptx", "w") as fh:
            fh.write(tm.emit_assembly(m))
    print("done")
""")


@pytest.mark.skipif(shutil.which("ptxas") is None, reason="ptxas not on PATH")
def test_nvptx_compiles(tmp_path):
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
    script = _PTX_SCRIPT.format(root=root, out=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0 and "done" in p.stdout, p.stderr[-3000:]
    for dt in ("f4", "f8"):
        ptx = tmp_path / f"math_{dt}.ptx"
        text = ptx.read_text()
        for name in MATH_FUNCS:
            assert f".entry k_{name}" in text, name
        assert "call" not in text
        q = subprocess.run(["ptxas", "-arch=sm_80", str(ptx), "-o", str(tmp_path / f"{dt}.cubin")],
                           capture_output=True, text=True, timeout=300)
        assert q.returncode == 0, q.stderr[-3000:]


# ---------------------------------------------------------------------------
# large measurement (docs/accuracy.rst)
# ---------------------------------------------------------------------------
def measure(n):  # pragma: no cover - manual tool
    print("| function | dtype | max ULP measured | documented bound | samples | worst input |")
    print("|---|---|---|---|---|---|")
    for name in ALL:
        for dtype in DTYPES:
            worst, where, count = 0.0, None, 0
            for seed in range(max(1, n // 1_000_000)):
                e, w, c = max_ulp(name, dtype, min(n, 1_000_000), seed=seed + 100)
                count += c
                if e >= worst:
                    worst, where = e, w
            ws = ", ".join(repr(float(v)) for v in where)
            print(f"| {name} | {np.dtype(dtype).name} | {worst:.3f} | {MATH_ULP_BOUNDS[name]:g} "
                  f"| {count} | ({ws}) |", flush=True)


if __name__ == "__main__":  # pragma: no cover
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        measure(int(float(sys.argv[2])) if len(sys.argv) > 2 else 4_000_000)
    else:
        sys.exit(pytest.main([__file__, "-q"]))
