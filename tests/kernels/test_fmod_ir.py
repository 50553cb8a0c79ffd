"""The exact fmod that NVPTX kernels get without libdevice (kernels.ptx FALLBACKS "fmod"/"fmodf"),
compiled for the host and compared bit for bit with NumPy's fmod (glibc's, exact).

NVPTX expands LLVM's ``frem`` approximately (``x - trunc(x / y) * y``), so NVPTXTarget.optimize
turns every ``frem`` into a call of fmod: libdevice's ``__nv_fmod[f]`` when found, else this body.
Also here: the frem rewrite itself, and a float remainder kernel assembled with ptxas both ways.
"""
from __future__ import annotations

import ctypes
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llvmlite import ir

from egpu_array.kernels.irb import I64, for_range

DTYPES = ("float32", "float64")
_BITS = {"float32": np.uint32, "float64": np.uint64}


@functools.cache
def _host_fmod(dtype):
    """``void f(T* x, T* y, T* out, i64 n)``: out[i] = fallback fmod(x[i], y[i]), JIT-compiled."""
    import llvmlite.binding as llvm

    from egpu_array.kernels import ptx
    from egpu_array.kernels.targets import host_target
    t = host_target()
    ty = ir.FloatType() if dtype == "float32" else ir.DoubleType()
    m = t.new_module("fmod_fb")
    fmod = ir.Function(m, ir.FunctionType(ty, [ty, ty]), name="fmodf" if dtype == "float32" else "fmod")
    assert ptx.define_fallbacks(m) == [fmod.name]
    fmod.linkage = ""  # a host symbol of that name would be libm's: call it through our loop only
    fmod.name = "fb_fmod"
    p = ty.as_pointer()
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [p, p, p, I64]), name="run")
    b = ir.IRBuilder(fn.append_basic_block("e"))
    with for_range(b, ir.Constant(I64, 0), fn.args[3]) as i:
        x, y = (b.load(b.gep(a, [i])) for a in fn.args[:2])
        b.store(b.call(fmod, [x, y]), b.gep(fn.args[2], [i]))
    b.ret_void()
    mod = llvm.parse_assembly(str(m))
    mod.verify()
    tm = llvm.Target.from_triple(t.triple).create_target_machine(opt=2)
    eng = llvm.create_mcjit_compiler(mod, tm)
    eng.finalize_object()
    cp = ctypes.POINTER(ctypes.c_float if dtype == "float32" else ctypes.c_double)
    f = ctypes.CFUNCTYPE(None, cp, cp, cp, ctypes.c_int64)(eng.get_function_address("run"))
    return f, eng, tm


def _check(dtype, x, y):
    f = _host_fmod(dtype)[0]
    x, y = np.ascontiguousarray(x, dtype), np.ascontiguousarray(y, dtype)
    out = np.empty_like(x)
    cp = ctypes.POINTER(ctypes.c_float if dtype == "float32" else ctypes.c_double)
    f(x.ctypes.data_as(cp), y.ctypes.data_as(cp), out.ctypes.data_as(cp), x.size)
    with np.errstate(all="ignore"):
        want = np.fmod(x, y)
    same = (out.view(_BITS[dtype]) == want.view(_BITS[dtype])) | (np.isnan(out) & np.isnan(want))
    bad = np.flatnonzero(~same)
    assert bad.size == 0, [(x[i], y[i], out[i], want[i]) for i in bad[:5]]


def _specials(dtype):
    fi = np.finfo(dtype)
    sub = float(fi.smallest_subnormal)
    return np.array([0.0, -0.0, 1.0, -1.0, 1.5, -3.0, 0.1, np.inf, -np.inf, np.nan, -np.nan, sub, -sub,
                     sub * 3, float(fi.tiny), -float(fi.tiny), float(fi.tiny) * 0.75, float(fi.max),
                     -float(fi.max), float(fi.eps), 7.0, 2.0 ** 20 + 1, 1e30 if dtype == "float32" else 1e300],
                    dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_grid(dtype):
    """Every pair of +-0, +-inf, NaN, subnormals, the largest finite, small integers."""
    s = _specials(dtype)
    _check(dtype, np.repeat(s, s.size), np.tile(s, s.size))


@pytest.mark.parametrize("dtype", DTYPES)
def test_random_bit_patterns(dtype):
    """Uniform bit patterns (every exponent difference, NaNs and infinities included), plus pairs
    of nearby magnitudes and subnormal divisors."""
    rng = np.random.default_rng(7)
    bits = _BITS[dtype]
    n = 40000
    x = rng.integers(0, np.iinfo(bits).max, n, dtype=bits, endpoint=True).view(dtype)
    y = rng.integers(0, np.iinfo(bits).max, n, dtype=bits, endpoint=True).view(dtype)
    _check(dtype, x, y)
    mag = rng.standard_normal(n).astype(dtype)
    _check(dtype, mag * dtype_scale(dtype, rng, n), mag[::-1] * dtype_scale(dtype, rng, n))
    sub = (rng.integers(1, 1 << 20, n).astype(bits)).view(dtype)  # subnormal divisors
    _check(dtype, x, sub)
    _check(dtype, sub[::-1], sub)


def dtype_scale(dtype, rng, n):
    """Powers of two spanning the dtype's whole exponent range (huge and tiny ratios)."""
    lo, hi = (-149, 127) if dtype == "float32" else (-1074, 1023)
    return np.ldexp(np.ones(n, dtype), rng.integers(lo, hi, n)).astype(dtype)


def _floats(dtype):
    width = 32 if dtype == "float32" else 64
    return st.floats(width=width, allow_nan=True, allow_infinity=True, allow_subnormal=True)


@pytest.mark.parametrize("dtype", DTYPES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_hypothesis_values(dtype, data):
    xs = data.draw(st.lists(_floats(dtype), min_size=1, max_size=16))
    ys = data.draw(st.lists(_floats(dtype), min_size=len(xs), max_size=len(xs)))
    _check(dtype, np.array(xs, dtype), np.array(ys, dtype))


def test_frem_becomes_a_fmod_call_for_nvptx():
    """The NVPTX target rewrites frem into fmod[f] before LLVM sees it (libdevice or fallback)."""
    from egpu_array.kernels import targets
    t = targets.NVPTXTarget(80)
    m = t.new_module("k_rem")
    fn = ir.Function(m, ir.FunctionType(ir.VoidType(), [I64.as_pointer(), I64, I64]), name="k_rem")
    b = ir.IRBuilder(fn.append_basic_block("e"))
    for ty in (ir.FloatType(), ir.DoubleType()):
        p = b.bitcast(fn.args[0], ty.as_pointer())
        v = b.load(p)
        b.store(b.frem(v, b.load(b.gep(p, [ir.Constant(I64, 1)]))), p)
    b.ret_void()
    targets.replace_frem(m)
    text = str(m)
    assert "frem" not in text
    assert 'call float @"fmodf"' in text and 'call double @"fmod"' in text


# A worker process per libdevice setting (find_libdevice is cached per process).
_PTX_SCRIPT = """
import sys
import numpy as np
import egpu_array as xp
from egpu_array.kernels import cache, ptx
from egpu_array.kernels.targets import NVPTXTarget
specs = {}
cache.recorders.append(lambda d, s: specs.setdefault(s, None))
for dt in ("float32", "float64"):
    x = xp.asarray(np.array([1.5, -2.0, 3.0], dt))
    for o in (xp.remainder(x, x + 3), x % 2.5, xp.floor_divide(x, x - 7), 1.5 // x):
        np.asarray(o)
cache.recorders.clear()
fallback, linked = [], []
define, link = ptx.define_fallbacks, ptx.link_libdevice
ptx.define_fallbacks = lambda m, lib=False: fallback.extend(define(m, lib)) or fallback
ptx.link_libdevice = lambda mod, path: (link(mod, path), linked.extend(
    f.name for f in mod.functions if f.name.startswith("__nv_fmod") and not f.is_declaration))[0]
t = NVPTXTarget(80)
m = t.new_module("rem")
names = tuple(f"k{i}" for i in range(len(specs)))
for s, n in zip(specs, names):
    cache.generator_for(s.kind)(s, m, n)
open(sys.argv[1], "wb").write(t.compile(m, names))
print(ptx.find_libdevice() is not None, ",".join(sorted(fallback)) or "-", ",".join(sorted(linked)) or "-", len(specs))
"""


@pytest.mark.parametrize("libdevice", ["found", "missing"])
def test_remainder_kernels_assemble(tmp_path, libdevice):
    """float32/float64 remainder and floor_divide kernels (arrays and Python scalars) compile for
    NVPTX with libdevice's fmod or, with EGPU_ARRAY_LIBDEVICE pointing nowhere, with the fallback;
    no refused call; the PTX assembles for sm_80 and sm_90."""
    from egpu_array.kernels.ptx import find_libdevice
    if libdevice == "found" and find_libdevice() is None:
        pytest.skip("no libdevice on this machine")
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]), EGPU_ARRAY_CACHE_DIR="off")
    if libdevice == "missing":
        env["EGPU_ARRAY_LIBDEVICE"] = str(tmp_path / "no-libdevice.bc")
    out = tmp_path / "rem.ptx"
    r = subprocess.run([sys.executable, "-c", _PTX_SCRIPT, str(out)], capture_output=True, text=True,
                       env=env, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    lib, fallback, linked, nspecs = r.stdout.split()
    assert lib == str(libdevice == "found") and int(nspecs) >= 8
    # the frem became fmod/fmodf calls, bound to libdevice's functions or to the fallback bodies
    if libdevice == "found":
        assert (fallback, linked) == ("-", "__nv_fmod,__nv_fmodf"), r.stdout
    else:
        assert (fallback, linked) == ("fmod,fmodf", "-"), r.stdout
    text = out.read_text()
    assert "call" not in text  # everything inlined: no call of an external fmod left
    ptxas = shutil.which("ptxas")
    if ptxas is None:
        pytest.skip("ptxas not on PATH")
    for arch in (80, 90):
        p = subprocess.run([ptxas, f"-arch=sm_{arch}", str(out), "-o", os.devnull], capture_output=True, text=True)
        assert p.returncode == 0, p.stderr[-3000:]
