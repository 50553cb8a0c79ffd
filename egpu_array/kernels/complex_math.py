"""Complex transcendental functions as straight-line LLVM IR (no libm calls).

``emit_cmath(builder, name, z)`` returns the (re, im) pair of ``name(z)`` for ``z`` an (re, im)
pair of float or double scalars (or vectors): exp, expm1, log, log1p, log2, log10, sqrt, the
trigonometric and hyperbolic functions and their inverses; ``emit_cpow(builder, x, y)`` is
``exp(y * log(x))``. They are built on the real kernels of :mod:`.math` (range reductions,
polynomials, ``select`` instead of branches), so the code vectorizes on CPUs and compiles for NVPTX,
whose backend cannot lower the C99 complex functions of libm.

complex64 is evaluated in binary64 and rounded once at the end. The methods:

* exp, sinh, cosh: ``exp(x)`` as ``m * 2**k`` times ``cos y``/``sin y``, scaled by 2**k in two exact
  steps, so ``exp(x) cos y`` is finite wherever it should be (x up to ~750);
* log: ``log|z|`` as ``log1p(a^2 + b^2 - 1)/2`` (double-word sum) near the unit circle, else
  ``log(hypot)``; the argument is ``atan2``;
* sqrt: Kahan's ``t = sqrt((|x| + |z|)/2)``, ``y/(2t)``, with scaling at the ends of the range;
* tanh: ``(sinh x cosh x + i sin y cos y) / (sinh^2 x + cos^2 y)`` (no cancellation);
* asin/acos (and asinh/acosh through them): Hull, Fairgrieve and Tang's algorithm (ACM TOMS 23,
  1997) with ``R = |z+1|``, ``S = |z-1|``, ``A = (R+S)/2``; asymptotic forms for |z| > 2^28;
* atanh (and atan): ``log1p(4x/((1-x)^2+y^2))/4 + i atan2(2y, (1-x)(1+x)-y^2)/2``;
* sin, cos, tan, asinh, acosh, atan from the above by the identities of C99 Annex G.

Special values (infinities, NaNs, signed zeros, branch cuts) follow C99 Annex G as glibc implements
it, where the standard leaves a sign open: each function ends with its table of rules.
"""
from __future__ import annotations

from llvmlite import ir

from . import math_explog as _el
from . import math_trig as _tr
from .math_core import Ctx

__all__ = ["emit_cmath", "emit_cpow", "CMATH_FUNCS"]

_LN2 = 0.6931471805599453
_PI_LO = 1.2246467991473532e-16  # pi - float(pi)
_PI, _PIO2, _PIO4 = 3.141592653589793, 1.5707963267948966, 0.7853981633974483


# ------------------------------------------------------------------------------------- helpers
def _rules(cx, res, rules):
    """Apply (condition, re or None, im or None) rules in order; None keeps that part."""
    re, im = res
    for cond, r, i in rules:
        if r is not None:
            re = cx.sel(cond, r, re)
        if i is not None:
            im = cx.sel(cond, i, im)
    return re, im


def _finite(cx, v):
    return cx.lt(cx.abs(v), cx.inf)


def _isinf(cx, v):
    return cx.eq(cx.abs(v), cx.inf)


def _signed(cx, neg, v):
    """-v where ``neg`` (an i1), else v."""
    return cx.sel(neg, cx.neg(v), v)


def _pow2_thirds(cx, k):
    """Three powers of two whose product is 2**k, for k a float holding an integer, |k| <= 3066."""
    k1 = cx.trunc(cx.mul(k, 1.0 / 3.0))
    k2 = cx.trunc(cx.mul(cx.sub(k, k1), 0.5))
    k3 = cx.sub(cx.sub(k, k1), k2)
    return [cx.pow2i(cx.to_int(v)) for v in (k1, k2, k3)]


def _exp_cis(cx, x, c, s, shift=0.0):
    """exp(x) * 2**-shift * (c, s) without intermediate overflow (NaN x gives garbage).

    exp(x) = m * 2**k; m is scaled by a third of 2**k before the product with c or s, so a tiny
    (even subnormal) c or s still gives the right product with a huge exp(x), and back after it.
    """
    m, k = _el._exp_parts(cx, cx.clamp(x, -1500.0, 1500.0))
    p1, p2, p3 = _pow2_thirds(cx, cx.sub(k, shift))
    mp = cx.mul(m, p1)
    return cx.mul(cx.mul(cx.mul(mp, c), p2), p3), cx.mul(cx.mul(cx.mul(mp, s), p2), p3)


def _cos_sin(cx, y):
    # both reduce y the same way: LLVM merges the two reductions
    return _tr.emit_cos(cx, y), _tr.emit_sin(cx, y)


# ----------------------------------------------------------------------- exp, log, sqrt family
def _exp(cx, x, y):
    c, s = _cos_sin(cx, y)
    xinf_y_bad = cx.not_(_finite(cx, y))
    return _rules(cx, _exp_cis(cx, x, c, s), [
        (cx.and_(cx.eq(x, cx.inf), xinf_y_bad), cx.inf, cx.nan),
        (cx.and_(cx.eq(x, cx.neg(cx.inf)), xinf_y_bad), 0.0, cx.copysign(0.0, y)),
        (cx.isnan(x), cx.nan, cx.nan),
        (cx.eq(y, 0.0), None, y),
    ])


def _expm1(cx, x, y):
    """exp(z) - 1 = (expm1(x) cos y - 2 sin^2(y/2)) + i exp(x) sin y; cexp(z) - 1 off the finite range."""
    c, s = _cos_sin(cx, y)
    h = _tr.emit_sin(cx, cx.mul(y, 0.5))
    re = cx.sub(cx.mul(_el.emit_expm1(cx, x), c), cx.mul(2.0, cx.mul(h, h)))
    im = cx.mul(_el.emit_exp(cx, x), s)
    er, ei = _exp(cx, x, y)
    plain = cx.and_(_finite(cx, y), cx.lt(x, 700.0), cx.gt(x, -700.0))
    return _rules(cx, (cx.sub(er, 1.0), ei), [
        (plain, re, im),
        (cx.and_(plain, cx.eq(y, 0.0)), None, y),
        (cx.and_(cx.eq(x, 0.0), cx.eq(y, 0.0)), 0.0, None),  # the standard: +-0 +- 0j -> +0 +- 0j
    ])


def _log(cx, x, y):
    ax, ay = cx.abs(x), cx.abs(y)
    a, b = cx.fmax(ax, ay), cx.fmin(ax, ay)
    # |z| below 2^-1000: hypot of the parts scaled by 2^600 (exact), 600 ln 2 taken off after
    # (the subnormal |z| itself rounds: log2|5e-324 (1 + i)| would be -1074, not -1073.5)
    tiny = cx.lt(a, 2.0 ** -1000)
    scale = cx.sel(tiny, 2.0 ** 600, 1.0)
    far = cx.sub(_el.emit_log(cx, _el.emit_hypot(cx, cx.mul(x, scale), cx.mul(y, scale))),
                 cx.sel(tiny, 600 * _LN2, 0.0))
    # near |z| = 1: a^2 + b^2 - 1 summed in double-word arithmetic
    ah, al = cx.two_prod(a, a)
    bh, bl = cx.two_prod(b, b)
    s1, e1 = cx.two_sum(ah, -1.0)
    s2, e2 = cx.two_sum(s1, bh)
    t = cx.add(s2, cx.add(cx.add(e1, e2), cx.add(al, bl)))
    near = cx.mul(_el.emit_log1p(cx, t), 0.5)
    q = cx.add(ah, bh)
    use_near = cx.and_(cx.ge(q, 0.5), cx.le(q, 2.0), cx.not_(cx.isnan(cx.add(x, y))))
    re = cx.sel(use_near, near, far)
    return re, _tr.emit_atan2(cx, y, x)


def _log_scaled(scale):
    def emit(cx, x, y):
        re, im = _log(cx, x, y)
        return cx.mul(re, scale), cx.mul(im, scale)
    return emit


def _log1p(cx, x, y):
    """log(1 + z); near 0 the real part is log1p(2x + x^2 + y^2)/2 (double-word sum)."""
    xp1 = cx.add(x, 1.0)
    re, im = _log(cx, xp1, y)
    xh, xl = cx.two_prod(x, x)
    yh, yl = cx.two_prod(y, y)
    s1, e1 = cx.two_sum(cx.add(x, x), xh)
    s2, e2 = cx.two_sum(s1, yh)
    t = cx.add(s2, cx.add(cx.add(e1, e2), cx.add(xl, yl)))
    # |z| < 1 and |1 + z|^2 > 1/2 (closer to -1, 1 + x is exact or log|1 + z| is far from 0)
    small = cx.and_(cx.lt(cx.abs(x), 1.0), cx.lt(cx.abs(y), 1.0), cx.gt(t, -0.5))
    return cx.sel(small, cx.mul(_el.emit_log1p(cx, t), 0.5), re), im


def _sqrt(cx, x, y):
    ax, ay = cx.abs(x), cx.abs(y)
    mx = cx.fmax(ax, ay)
    big, tiny = cx.gt(mx, 2.0 ** 1000), cx.lt(mx, 2.0 ** -1000)
    sc = cx.sel(big, 2.0 ** -4, cx.sel(tiny, 2.0 ** 200, 1.0))
    un = cx.sel(big, 2.0 ** 2, cx.sel(tiny, 2.0 ** -100, 1.0))
    sx, sy = cx.mul(ax, sc), cx.mul(ay, sc)
    h = _el.emit_hypot(cx, sx, sy)
    t = cx.sqrt(cx.mul(cx.add(sx, h), 0.5))
    u = cx.div(cx.mul(sy, 0.5), t)
    pos = cx.ge(x, 0.0)
    re = cx.mul(cx.sel(pos, t, u), un)
    im = cx.copysign(cx.mul(cx.sel(pos, u, t), un), y)
    yfin = _finite(cx, y)
    return _rules(cx, (re, im), [
        (cx.eq(h, 0.0), 0.0, y),
        (cx.or_(cx.isnan(x), cx.isnan(y)), cx.nan, cx.nan),
        (cx.and_(cx.eq(x, cx.inf), cx.not_(yfin)), cx.inf, None),
        (cx.and_(cx.eq(x, cx.neg(cx.inf)), cx.isnan(y)), cx.nan, cx.inf),
        (_isinf(cx, y), cx.inf, y),
    ])


def _cmul_annex_g(cx, z, w):
    """z * w as C99 Annex G multiplies (an infinite factor gives an infinite product, not NaN + iNaN)."""
    a, b = z
    c, d = w
    re, im = cx.sub(cx.mul(a, c), cx.mul(b, d)), cx.add(cx.mul(a, d), cx.mul(b, c))
    both_nan = cx.and_(cx.isnan(re), cx.isnan(im))

    def box(v):  # an infinity -> +-1, a finite value -> +-0
        return cx.copysign(cx.sel(_isinf(cx, v), 1.0, 0.0), v)

    def unnan(v):
        return cx.sel(cx.isnan(v), cx.copysign(0.0, v), v)

    zinf = cx.or_(_isinf(cx, a), _isinf(cx, b))
    a, b = cx.sel(zinf, box(a), a), cx.sel(zinf, box(b), b)
    c, d = cx.sel(zinf, unnan(c), c), cx.sel(zinf, unnan(d), d)
    winf = cx.or_(_isinf(cx, c), _isinf(cx, d))
    c, d = cx.sel(winf, box(c), c), cx.sel(winf, box(d), d)
    a, b = cx.sel(winf, unnan(a), a), cx.sel(winf, unnan(b), b)
    ac, bd, ad, bc = cx.mul(a, c), cx.mul(b, d), cx.mul(a, d), cx.mul(b, c)
    over = cx.and_(cx.not_(cx.or_(zinf, winf)), cx.or_(_isinf(cx, ac), _isinf(cx, bd), _isinf(cx, ad), _isinf(cx, bc)))
    a, b, c, d = (cx.sel(over, unnan(v), v) for v in (a, b, c, d))
    again = cx.and_(both_nan, cx.or_(zinf, winf, over))
    re2 = cx.mul(cx.inf, cx.sub(cx.mul(a, c), cx.mul(b, d)))
    im2 = cx.mul(cx.inf, cx.add(cx.mul(a, d), cx.mul(b, c)))
    return cx.sel(again, re2, re), cx.sel(again, im2, im)


def _pow(cx, x, y):
    """cpow as glibc computes it: cexp(y * clog(x)) with an Annex G product."""
    return _exp(cx, *_cmul_annex_g(cx, y, _log(cx, *x)))


# ------------------------------------------------------------------------------ hyperbolic family
def _sinh_cosh(cx, x, y, sinh):
    """sinh(z) (sinh=True) or cosh(z): sinh x cos y + i cosh x sin y / cosh x cos y + i sinh x sin y."""
    ax = cx.abs(x)
    c, s = _cos_sin(cx, y)
    sh, ch = _el.emit_sinh(cx, x), _el.emit_cosh(cx, x)
    ec, es = _exp_cis(cx, ax, c, s, 1.0)  # |x| > 20: sinh |x| = cosh |x| = exp(|x|)/2
    xneg = cx.signbit(x)
    big = cx.gt(ax, 20.0)
    if sinh:
        re = cx.sel(big, _signed(cx, xneg, ec), cx.mul(sh, c))
        im = cx.sel(big, es, cx.mul(ch, s))
    else:
        re = cx.sel(big, ec, cx.mul(ch, c))
        im = cx.sel(big, _signed(cx, xneg, es), cx.mul(sh, s))
    xinf, yfin, yzero = _isinf(cx, x), _finite(cx, y), cx.eq(y, 0.0)
    return _rules(cx, (re, im), [
        (cx.and_(cx.eq(x, 0.0), cx.not_(yfin)), x if sinh else cx.nan, cx.nan if sinh else 0.0),
        (cx.and_(xinf, cx.not_(yfin)), cx.inf, cx.nan),
        (cx.isnan(x), cx.nan, cx.nan),
        (yzero, None, y if sinh else cx.sel(cx.isnan(x), y, _signed(cx, xneg, y))),
    ])


def _sinh(cx, x, y):
    return _sinh_cosh(cx, x, y, True)


def _cosh(cx, x, y):
    return _sinh_cosh(cx, x, y, False)


def _tanh(cx, x, y):
    ax = cx.abs(x)
    c, s = _cos_sin(cx, y)
    sh, ch = _el.emit_sinh(cx, x), _el.emit_cosh(cx, x)
    d = cx.fma(sh, sh, cx.mul(c, c))
    re, im = cx.div(cx.mul(sh, ch), d), cx.div(cx.mul(s, c), d)
    big = cx.gt(ax, 20.0)  # tanh x = +-1, im = 4 sin y cos y exp(-2|x|)
    re = cx.sel(big, cx.copysign(1.0, x), re)
    im = cx.sel(big, cx.mul(cx.mul(4.0, cx.mul(s, c)), _el.emit_exp(cx, cx.mul(ax, -2.0))), im)
    ybad = cx.not_(_finite(cx, y))
    return _rules(cx, (re, im), [
        (ybad, cx.nan, cx.nan),
        (cx.and_(cx.eq(x, 0.0), ybad), x, None),
        # x = +-inf: +-1 + 0j with y's sign for every y (the standard's rule for finite y > 0 and
        # its conjugate; C99 signs the zero as sin(2y))
        (_isinf(cx, x), cx.copysign(1.0, x), cx.copysign(0.0, y)),
        (cx.isnan(x), cx.nan, cx.nan),
        (cx.eq(y, 0.0), None, y),
    ])


def _times_i(fn):
    """f(z) = -i g(iz) (sin, tan from sinh, tanh)."""
    def emit(cx, x, y):
        u, v = fn(cx, cx.neg(y), x)
        return v, cx.neg(u)
    return emit


def _sin(cx, x, y):
    re, im = _times_i(_sinh)(cx, x, y)
    return _rules(cx, (re, im), [(cx.and_(cx.not_(_finite(cx, x)), _isinf(cx, y)), None, cx.inf)])


def _cos(cx, x, y):
    return _cosh(cx, cx.neg(y), x)


# ------------------------------------------------------------------------ inverse trig family
def _asin_parts(cx, x, y):
    """For x, y >= 0: (Re asin z, Re acos z, Im asin z = -Im acos z, |z| > 2^28), z = x + iy
    (Hull et al.)."""
    xp1, omx = cx.add(x, 1.0), cx.sub(1.0, x)
    r = _el.emit_hypot(cx, xp1, y)
    s = _el.emit_hypot(cx, cx.sub(x, 1.0), y)
    a = cx.mul(cx.add(r, s), 0.5)
    bq = cx.div(x, a)
    rx = cx.add(r, xp1)
    small_x = cx.lt(x, 1.0)
    # A - 1 and sqrt(A^2 - 1) without cancellation
    q = cx.mul(cx.add(cx.div(1.0, rx), cx.div(1.0, cx.add(s, omx))), 0.5)  # x < 1: A - 1 = y^2 q
    am1 = cx.sel(small_x, cx.mul(y, cx.mul(y, q)),
                 cx.mul(cx.add(cx.div(cx.mul(y, y), rx), cx.add(s, cx.sub(x, 1.0))), 0.5))
    root = cx.sel(small_x, cx.mul(y, cx.sqrt(cx.mul(q, cx.add(a, 1.0)))),
                  cx.sqrt(cx.mul(am1, cx.add(a, 1.0))))
    # x = 1: A - 1 = y (y/rx + 1)/2; keep sqrt(y) apart (y may be subnormal)
    root1 = cx.mul(cx.sqrt(y), cx.sqrt(cx.mul(cx.mul(cx.add(cx.div(y, rx), 1.0), 0.5), cx.add(a, 1.0))))
    root = cx.sel(cx.eq(x, 1.0), root1, root)
    near = _el.emit_log1p(cx, cx.add(am1, root))
    far = _el.emit_log(cx, cx.add(a, cx.sqrt(cx.mul(cx.sub(a, 1.0), cx.add(a, 1.0)))))
    imag = cx.sel(cx.le(a, 1.5), near, far)
    # the real part: asin(B) / acos(B) unless B is close to 1, then an atan2 form
    apx = cx.add(a, x)
    den_lo = cx.sqrt(cx.mul(cx.mul(apx, 0.5), cx.add(cx.div(cx.mul(y, y), rx), cx.add(s, omx))))
    den_hi = cx.mul(y, cx.sqrt(cx.mul(cx.add(cx.div(apx, rx), cx.div(apx, cx.add(s, cx.sub(x, 1.0)))), 0.5)))
    den = cx.sel(cx.le(x, 1.0), den_lo, den_hi)
    use_b = cx.le(bq, 0.6417)
    asin_re = cx.sel(use_b, _tr.emit_asin(cx, bq), _tr.emit_atan2(cx, x, den))
    acos_re = cx.sel(use_b, _tr.emit_acos(cx, bq), _tr.emit_atan2(cx, den, x))
    # |z| > 2^28: asin z = atan2(x, y) + i (log|z| + log 2) to within |z|^-2
    huge = cx.gt(cx.fmax(x, y), 2.0 ** 28)
    hl = cx.add(_el.emit_log(cx, _el.emit_hypot(cx, x, y)), _LN2)
    return (cx.sel(huge, _tr.emit_atan2(cx, x, y), asin_re), cx.sel(huge, _tr.emit_atan2(cx, y, x), acos_re),
            cx.sel(huge, hl, imag), huge)


def _asin(cx, x, y):
    ax, ay = cx.abs(x), cx.abs(y)
    re, _, im, _ = _asin_parts(cx, ax, ay)
    res = _rules(cx, (re, im), [
        (cx.isnan(x), cx.nan, cx.sel(_isinf(cx, y), cx.inf, cx.nan)),
        (cx.isnan(y), cx.sel(cx.eq(x, 0.0), 0.0, cx.nan), cx.sel(_isinf(cx, x), cx.inf, cx.nan)),
    ])
    return cx.copysign(res[0], x), cx.copysign(res[1], y)


def _acos(cx, x, y):
    ax, ay = cx.abs(x), cx.abs(y)
    _, re, im, huge = _asin_parts(cx, ax, ay)
    re = cx.sel(cx.lt(x, 0.0), cx.add(cx.sub(_PI, re), _PI_LO), re)  # acos(-0 + iy) = acos(+0 + iy)
    re = cx.sel(huge, _tr.emit_atan2(cx, ay, x), re)
    im = cx.neg(cx.copysign(im, y))
    return _rules(cx, (re, im), [
        (cx.isnan(x), cx.nan, cx.sel(_isinf(cx, y), cx.neg(cx.copysign(cx.inf, y)), cx.nan)),
        (cx.isnan(y), cx.sel(cx.eq(x, 0.0), _PIO2, cx.nan), cx.sel(_isinf(cx, x), cx.neg(cx.inf), cx.nan)),
    ])


def _asinh(cx, x, y):
    """asinh z = i asin(-iz): asinh(x + iy) = (Im, Re) of asin(y + ix)."""
    u, v = _asin(cx, y, x)
    return v, u


def _acosh(cx, x, y):
    """acosh z = +-i acos z, the sign making the real part >= 0."""
    u, v = _acos(cx, x, y)
    return cx.abs(v), cx.copysign(u, y)


def _atanh(cx, x, y):
    ax, ay = cx.abs(x), cx.abs(y)
    omx = cx.sub(1.0, ax)
    d = cx.fma(ay, ay, cx.mul(omx, omx))
    re = cx.mul(_el.emit_log1p(cx, cx.div(cx.mul(ax, 4.0), d)), 0.25)
    # d tiny (z close to 1): log|1 + z| - log|1 - z| directly (y^2 may underflow)
    lp = _el.emit_log(cx, _el.emit_hypot(cx, cx.add(ax, 1.0), ay))
    lm = _el.emit_log(cx, _el.emit_hypot(cx, omx, ay))
    re = cx.sel(cx.lt(d, 2.0 ** -200), cx.mul(cx.sub(lp, lm), 0.5), re)
    im = cx.mul(_tr.emit_atan2(cx, cx.add(ay, ay), cx.fma(cx.neg(ay), ay, cx.mul(omx, cx.add(ax, 1.0)))), 0.5)
    # |z| > 2^500: atanh z = x/|z|^2 + i pi/2 to rounding
    h = _el.emit_hypot(cx, ax, ay)
    huge = cx.gt(cx.fmax(ax, ay), 2.0 ** 500)
    re = cx.sel(huge, cx.div(cx.div(ax, h), h), re)
    im = cx.sel(huge, _PIO2, im)
    re, im = _rules(cx, (re, im), [
        (cx.or_(_isinf(cx, x), _isinf(cx, y)), 0.0, _PIO2),
        (cx.isnan(x), cx.sel(_isinf(cx, y), 0.0, cx.nan), cx.sel(_isinf(cx, y), _PIO2, cx.nan)),
        (cx.isnan(y), cx.sel(cx.or_(cx.eq(x, 0.0), _isinf(cx, x)), 0.0, cx.nan), cx.nan),
    ])
    return cx.copysign(re, x), cx.copysign(im, y)


_FUNCS = {
    "exp": _exp, "expm1": _expm1, "log": _log, "log1p": _log1p,
    "log2": _log_scaled(1.0 / _LN2), "log10": _log_scaled(1.0 / 2.302585092994046),
    "sqrt": _sqrt, "sinh": _sinh, "cosh": _cosh, "tanh": _tanh,
    "sin": _sin, "cos": _cos, "tan": _times_i(_tanh),
    "asin": _asin, "acos": _acos, "asinh": _asinh, "acosh": _acosh,
    "atanh": _atanh, "atan": _times_i(_atanh),
}

#: the complex functions :func:`emit_cmath` emits
CMATH_FUNCS = frozenset(_FUNCS)


def _in_double(b, fn, *zs):
    """Evaluate fn(cx, *parts) in binary64 (complex64 parts widened, results rounded once)."""
    ty = zs[0][0].type
    dty = ir.VectorType(ir.DoubleType(), ty.count) if isinstance(ty, ir.VectorType) else ir.DoubleType()
    # a generator that can retry sets ``b.trig_guards``: sin/cos then skip the wide reduction and
    # flag the lanes that need it (kernels.math), as for real functions
    cx = Ctx(b, dty, getattr(b, "trig_guards", None))
    if ty == dty:
        return fn(cx, *[v for z in zs for v in z])
    wide = [b.fpext(v, dty) for z in zs for v in z]
    return tuple(b.fptrunc(v, ty) for v in fn(cx, *wide))


def emit_cmath(b: ir.IRBuilder, name: str, z: tuple) -> tuple:
    """Emit ``name(z)`` for z = (re, im) float/double values; returns (re, im)."""
    try:
        fn = _FUNCS[name]
    except KeyError:
        raise ValueError(f"emit_cmath: no complex function {name!r}; expected one of {sorted(_FUNCS)}") from None
    return _in_double(b, fn, z)


def emit_cpow(b: ir.IRBuilder, x: tuple, y: tuple) -> tuple:
    """Emit ``exp(y * log(x))`` (as C99 cpow) for (re, im) pairs x and y."""
    return _in_double(b, lambda cx, a, c, d, e: _pow(cx, (a, c), (d, e)), x, y)
