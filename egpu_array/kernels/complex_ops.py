"""Complex arithmetic on (re, im) pairs of IR values.

Arithmetic is emitted inline (division by Smith's algorithm with NumPy's special cases); the
transcendental functions are emitted as straight-line IR by ``kernels.complex_math`` (C99 Annex G
special cases, as glibc implements them, but where the standard's text differs: tanh(+-inf + iy)
is +-1 + 0j with the zero signed as y, expm1(+-0 + 0j) = +0 + 0j). Host kernels call the C99 complex functions of libm for
the names in ``HOST_LIBM`` (NVPTX cannot lower those calls: it always gets the IR forms).
"""
from __future__ import annotations

from llvmlite import ir

from . import complex_math
from .irb import I32, const, extern, intrinsic

__all__ = ["cadd", "csub", "cmul", "cdiv", "creciprocal", "cabs", "csign", "cpow", "cmath", "COMPLEX_LIBM",
           "HOST_LIBM"]

#: functions that host kernels take from libm's C99 complex functions instead of kernels.complex_math
#: (whose forms are as accurate as glibc's, with its special values, and vectorize). None now:
#: "pow" used glibc's cpowf to reproduce NumPy's complex64 results, but cpowf (binary32 inside) is
#: up to ~27 ulp off per part where the IR form (binary64 inside, rounded once) is within 1 ulp;
#: the tests compare complex64 pow with the complex128 result rounded once, as for the unary
#: functions, and host and GPU kernels now compute the same values.
HOST_LIBM = frozenset()


def _use_libm(b, name: str) -> bool:
    return name in HOST_LIBM and not b.module.triple.startswith("nvptx")


def cadd(b, x, y):
    return (b.fadd(x[0], y[0]), b.fadd(x[1], y[1]))


def csub(b, x, y):
    return (b.fsub(x[0], y[0]), b.fsub(x[1], y[1]))


def cmul(b, x, y):
    a, c = x
    d, e = y
    return (b.fsub(b.fmul(a, d), b.fmul(c, e)), b.fadd(b.fmul(a, e), b.fmul(c, d)))


def cdiv(b, x, y):
    """(a+bi)/(c+di) by Smith's algorithm, as NumPy computes it."""
    a, bb = x
    c, d = y
    ty = a.type
    fabs = lambda v: intrinsic(b, "llvm.fabs", ty, v)  # noqa: E731
    one, zero = const(ty, 1.0), const(ty, 0.0)
    c_big = b.fcmp_ordered(">=", fabs(c), fabs(d))
    # branch 1: |c| >= |d|
    rat1 = b.fdiv(d, c)
    scl1 = b.fdiv(one, b.fadd(c, b.fmul(d, rat1)))
    re1 = b.fmul(b.fadd(a, b.fmul(bb, rat1)), scl1)
    im1 = b.fmul(b.fsub(bb, b.fmul(a, rat1)), scl1)
    # both zero: NumPy divides the parts by |c| (inf or nan results)
    zero_div = b.and_(b.fcmp_ordered("==", c, zero), b.fcmp_ordered("==", d, zero))
    re1 = b.select(zero_div, b.fdiv(a, fabs(c)), re1)
    im1 = b.select(zero_div, b.fdiv(bb, fabs(c)), im1)
    # branch 2: |c| < |d|
    rat2 = b.fdiv(c, d)
    scl2 = b.fdiv(one, b.fadd(d, b.fmul(c, rat2)))
    re2 = b.fmul(b.fadd(b.fmul(a, rat2), bb), scl2)
    im2 = b.fmul(b.fsub(b.fmul(bb, rat2), a), scl2)
    return (b.select(c_big, re1, re2), b.select(c_big, im1, im2))


def creciprocal(b, x):
    """1 / (a+bi) as NumPy computes it (Smith's form with a numerator of 1: 1/(tiny+0j) is inf-0j)."""
    a, bb = x
    ty = a.type
    fabs = lambda v: intrinsic(b, "llvm.fabs", ty, v)  # noqa: E731
    one = const(ty, 1.0)
    small_im = b.fcmp_ordered("<=", fabs(bb), fabs(a))
    # |b| <= |a|: r = b/a, d = a + b r -> (1/d, -r/d)
    r1 = b.fdiv(bb, a)
    d1 = b.fadd(a, b.fmul(bb, r1))
    re1, im1 = b.fdiv(one, d1), b.fneg(b.fdiv(r1, d1))
    # otherwise: r = a/b, d = a r + b -> (r/d, -1/d)
    r2 = b.fdiv(a, bb)
    d2 = b.fadd(b.fmul(a, r2), bb)
    re2, im2 = b.fdiv(r2, d2), b.fneg(b.fdiv(one, d2))
    return (b.select(small_im, re1, re2), b.select(small_im, im1, im2))


def _vec2(b, x):
    ty = ir.VectorType(x[0].type, 2)
    v = b.insert_element(ir.Constant(ty, None), x[0], ir.Constant(I32, 0))
    return b.insert_element(v, x[1], ir.Constant(I32, 1))


def _libm_complex(b, name: str, *zs):
    """Call a C99 complex function with the x86-64 SysV ABI of its _Complex arguments."""
    ty = zs[0][0].type
    if ty == ir.DoubleType():
        pair = ir.LiteralStructType([ty, ty])
        args = [v for z in zs for v in z]
        r = extern(b, name, pair, [ty] * len(args), *args)
        return (b.extract_value(r, 0), b.extract_value(r, 1))
    vty = ir.VectorType(ty, 2)
    r = extern(b, name + "f", vty, [vty] * len(zs), *[_vec2(b, z) for z in zs])
    return (b.extract_element(r, ir.Constant(I32, 0)), b.extract_element(r, ir.Constant(I32, 1)))


def cabs(b, x):
    """|x|: the vectorizable hypot of kernels.math (xp.hypot's; a libm call per element kept
    abs of 1e6 complex128 at 11-47x NumPy's time)."""
    from .math import emit_math
    return emit_math(b, "hypot", [x[0], x[1]])


def csign(b, x):
    """x / |x|, and 0 for 0 (the standard's definition)."""
    ty = x[0].type
    mag = cabs(b, x)
    is_zero = b.fcmp_ordered("==", mag, const(ty, 0.0))
    safe = b.select(is_zero, const(ty, 1.0), mag)
    re, im = b.fdiv(x[0], safe), b.fdiv(x[1], safe)
    return (b.select(is_zero, const(ty, 0.0), re), b.select(is_zero, const(ty, 0.0), im))


def cpow(b, x, y):
    """C99 cpow, with NumPy's answers where it defines them: z**0 = 1 (also 0**0), 0**real>0 = 0."""
    ty = x[0].type
    zero, one = const(ty, 0.0), const(ty, 1.0)
    re, im = _libm_complex(b, "cpow", x, y) if _use_libm(b, "pow") else complex_math.emit_cpow(b, x, y)
    y_im0 = b.fcmp_ordered("==", y[1], zero)
    y_zero = b.and_(b.fcmp_ordered("==", y[0], zero), y_im0)
    x_zero = b.and_(b.fcmp_ordered("==", x[0], zero), b.fcmp_ordered("==", x[1], zero))
    zero_pos = b.and_(x_zero, b.and_(b.fcmp_ordered(">", y[0], zero), y_im0))
    re = b.select(y_zero, one, b.select(zero_pos, zero, re))
    im = b.select(b.or_(y_zero, zero_pos), zero, im)
    return (re, im)


# Our name -> C99 complex function. Functions absent from C99 are composed in cmath().
COMPLEX_LIBM = {
    "exp": "cexp", "log": "clog", "sqrt": "csqrt", "sin": "csin", "cos": "ccos", "tan": "ctan",
    "sinh": "csinh", "cosh": "ccosh", "tanh": "ctanh", "asin": "casin", "acos": "cacos",
    "atan": "catan", "asinh": "casinh", "acosh": "cacosh", "atanh": "catanh",
}


def cmath(b, name: str, x):
    """A complex transcendental function of x = (re, im)."""
    if not _use_libm(b, name):
        return complex_math.emit_cmath(b, name, x)
    if name in COMPLEX_LIBM:
        return _libm_complex(b, COMPLEX_LIBM[name], x)
    ty = x[0].type
    if name in ("log2", "log10"):
        scale = const(ty, 1.0 / {"log2": 0.6931471805599453, "log10": 2.302585092994046}[name])
        re, im = _libm_complex(b, "clog", x)
        return (b.fmul(re, scale), b.fmul(im, scale))
    if name == "log1p":
        return _libm_complex(b, "clog", (b.fadd(x[0], const(ty, 1.0)), x[1]))
    if name == "expm1":
        # exp(a+ib) - 1 = (expm1(a) cos b - 2 sin^2(b/2)) + i exp(a) sin b, accurate near 0
        from .ops import real_math
        a, bb = x
        em1 = real_math(b, "expm1", a)
        cb, sb = real_math(b, "cos", bb), real_math(b, "sin", bb)
        sh = real_math(b, "sin", b.fmul(bb, const(ty, 0.5)))
        re = b.fsub(b.fmul(em1, cb), b.fmul(const(ty, 2.0), b.fmul(sh, sh)))
        im = b.fmul(real_math(b, "exp", a), sb)
        # special cases (infinities, nans) follow cexp(z) - 1
        ce = _libm_complex(b, "cexp", x)
        finite = b.fcmp_ordered("<", intrinsic(b, "llvm.fabs", ty, a), const(ty, float("inf")))
        finite = b.and_(finite, b.fcmp_ordered("<", intrinsic(b, "llvm.fabs", ty, bb), const(ty, float("inf"))))
        re = b.select(finite, re, b.fsub(ce[0], const(ty, 1.0)))
        im = b.select(finite, b.select(b.fcmp_ordered("==", bb, const(ty, 0.0)), bb, im), ce[1])
        return (re, im)
    raise KeyError(f"no complex lowering for {name}")
