"""Exponential, logarithmic, power and hyperbolic kernels (see :mod:`.math`)."""

from fractions import Fraction

from llvmlite import ir

from .math_core import Ctx


# ---------------------------------------------------------------------------
# exponential core
# ---------------------------------------------------------------------------
def _expm1_poly(cx, r, rlo=None, big_lo=False):
    """e^(r+rlo) - 1 for |r| <= 0.3535.

    rlo is a correction term: tiny (|rlo| <~ ulp(r), folded in first order)
    or, with big_lo, up to ~2^-40 (then applied as a factor 1 + rlo).
    """
    q = cx.poly(r, cx.poly_coeffs("exp_q"))
    if big_lo:
        em = cx.fma(cx.mul(r, r), q, r)
        return cx.fma(rlo, cx.add(em, 1.0), em)
    base = r if rlo is None else cx.fma(rlo, cx.add(r, 1.0), r)
    return cx.fma(cx.mul(r, r), q, base)


def _exp_reduce(cx, x):
    """k = rint(x/ln2), r = x - k*ln2 (|r| <= ln2/2 + tiny)."""
    h, l = cx.dd("ln2")
    k = cx.rint(cx.mul(x, cx.dd("log2e")[0]))
    nk = cx.neg(k)
    r1 = cx.fma(nk, h, x)  # exact
    return k, r1, cx.mul(nk, l)


def _exp_parts(cx, x):
    """exp(x) = y * 2**k with y in [0.7, 1.42]."""
    k, r1, a = _exp_reduce(cx, x)
    r, e = cx.two_sum(r1, a)
    return cx.add(_expm1_poly(cx, r, e), 1.0), k


def _thresholds(cx):
    # (overflow above, underflow to zero below) for exp
    return (710.0, -746.0) if cx.double else (89.0, -104.0)


def emit_exp(cx, x):
    # clamp (a NaN passes) to where the result is already inf / 0: no select on the result
    ovf, unf = _thresholds(cx)
    x = cx.sel(cx.gt(x, ovf), ovf, x)
    x = cx.sel(cx.lt(x, unf), unf, x)
    h, l = cx.dd("ln2")
    # u = k + 2*bias: scale2's two biased exponents come straight from it
    k, u = cx.round_magic(cx.fma(x, cx.dd("log2e")[0], cx.magic), offset=2 * cx.bias)
    nk = cx.neg(k)
    r = cx.fma(nk, l, cx.fma(nk, h, x))  # the inner fma is exact
    # e^r - 1; Horner: fewer instructions and registers than Estrin (see Ctx.poly)
    em1 = cx.fma(cx.mul(r, r), cx.poly(r, cx.poly_coeffs("exp_q"), horner=True), r)
    return cx.scale2(em1, u, plus_one=True, biased=True)


def emit_exp2(cx, x):
    k = cx.rint(x)
    r = cx.sub(x, k)  # exact
    h, l = cx.dd("ln2")
    th, tl = cx.two_prod(r, cx.c(h, r.type))
    tl = cx.fma(r, l, tl)
    y = cx.add(_expm1_poly(cx, th, tl), 1.0)
    res = cx.ldexp(y, k)
    ovf, unf = (1024.0, -1076.0) if cx.double else (128.0, -151.0)
    res = cx.sel(cx.ge(x, ovf), cx.inf, res)
    return cx.sel(cx.lt(x, unf), 0.0, res)


def emit_expm1(cx, x):
    kmax = 1000.0 if cx.double else 100.0
    k, r1, a = _exp_reduce(cx, x)
    k = cx.clamp(k, -70.0, cx.bias + 1.0)
    r, e = cx.two_sum(r1, a)
    em = _expm1_poly(cx, r, e)
    # moderate k: (2^k - 1) + 2^k*r + 2^k*(r^2 q(r) + e(1+r)), the first
    # two summed exactly so that only the small tail carries rounding error
    ks = cx.to_int(cx.fmin(k, float(cx.bias)))
    s = cx.pow2i(ks)
    q = cx.poly(r, cx.poly_coeffs("exp_q"))
    tail = cx.fma(cx.mul(r, r), q, cx.mul(e, cx.add(r, 1.0)))
    t, te = cx.two_sum(cx.sub(s, 1.0), cx.mul(s, r))
    res = cx.add(t, cx.fma(s, tail, te))
    big = cx.ldexp(cx.add(em, 1.0), k)
    res = cx.sel(cx.gt(k, kmax), big, res)
    ovf = 710.0 if cx.double else 89.0
    lowx = -40.0 if cx.double else -18.0
    tiny = 2.0 ** -54 if cx.double else 2.0 ** -25
    res = cx.sel(cx.gt(x, ovf), cx.inf, res)
    res = cx.sel(cx.lt(x, lowx), -1.0, res)
    return cx.sel(cx.lt(cx.abs(x), tiny), x, res)


# ---------------------------------------------------------------------------
# logarithm core: log(x) as an unevaluated sum hi + lo, x > 0 finite
# ---------------------------------------------------------------------------
def _ln2_split(cx, name="ln2"):
    """ln2 (or the named constant) = LH + LL with LH short enough that e*LH is exact."""
    h, l = cx.dd(name)
    bits = 40 if cx.double else 14
    lh = round(h * 2.0 ** bits) / 2.0 ** bits
    ll = cx.rnd((Fraction(h) - Fraction(lh)) + Fraction(l))
    return lh, ll


def _log_dd(cx, x, corr=None):
    """log(x) + corr/x-ish correction, as (hi, lo); garbage for x<=0/inf/nan."""
    b = cx.b
    mn = 2.0 ** (1 - cx.bias)
    sh = cx.M + 1
    sub = cx.lt(x, mn)
    xs = cx.sel(sub, cx.mul(x, 2.0 ** sh), x)
    ib = cx.bits(xs)
    ebits = b.lshr(ib, cx.ci(cx.M))
    mant = b.and_(ib, cx.ci((1 << cx.M) - 1))
    m = cx.from_bits(b.or_(mant, cx.ci(cx.bias << cx.M)))  # [1, 2)
    big = cx.gt(m, 1.4142135623730951)
    m = cx.sel(big, cx.mul(m, 0.5), m)
    e = cx.to_float(b.sub(ebits, cx.ci(cx.bias)))
    e = cx.add(e, cx.sel(big, 1.0, 0.0))
    e = cx.sub(e, cx.sel(sub, float(sh), 0.0))
    f = cx.sub(m, 1.0)  # exact
    # s = f / (2 + f) as a double-word number
    d = cx.add(f, 2.0)
    dl = cx.add(cx.sub(2.0, d), f)
    s = cx.div(f, d)
    res = cx.sub(cx.fma(cx.neg(s), d, f), cx.mul(s, dl))
    sl = cx.div(res, d)
    # log1p(f) = 2s + s*z*(2/3 + z*P(z)),  z = s^2
    zh, zl = cx.two_prod(s, s)
    zl = cx.fma(cx.add(s, s), sl, zl)
    w = cx.mul(zh, cx.poly(zh, cx.poly_coeffs("log_r2")))
    th, tl = cx.dd("twothirds")
    uh, ul = cx.fast_two_sum(cx.c(th, x.type), w)
    ul = cx.add(ul, tl)
    vh, vl = cx.two_prod(zh, uh)
    vl = cx.add(vl, cx.fma(zh, ul, cx.mul(zl, uh)))
    ph, pl = cx.two_prod(s, vh)
    pl = cx.add(pl, cx.fma(s, vl, cx.mul(sl, vh)))
    s2 = cx.add(s, s)
    ah, al = cx.fast_two_sum(s2, ph)
    lo = cx.add(al, cx.add(cx.add(sl, sl), pl))
    if corr is not None:
        lo = cx.add(lo, corr)
    lh, ll = _ln2_split(cx)
    eh = cx.mul(e, lh)  # exact
    hh, hl = cx.fast_two_sum(eh, ah)
    lo = cx.add(hl, cx.fma(e, ll, lo))
    return cx.fast_two_sum(hh, lo)


def _log_specials(cx, x, res):
    res = cx.sel(cx.eq(x, 0.0), cx.neg(cx.inf), res)
    res = cx.sel(cx.lt(x, 0.0), cx.nan, res)
    res = cx.sel(cx.eq(x, cx.inf), cx.inf, res)
    return cx.sel(cx.isnan(x), x, res)


def emit_log(cx, x):
    h, l = _log_dd(cx, x)
    return _log_specials(cx, x, cx.add(h, l))


def emit_log2(cx, x):
    h, l = _log_dd(cx, x)
    h, l = cx.dd_mul_const(h, l, "log2e")
    return _log_specials(cx, x, cx.add(h, l))


def emit_log10(cx, x):
    h, l = _log_dd(cx, x)
    h, l = cx.dd_mul_const(h, l, "log10e")
    return _log_specials(cx, x, cx.add(h, l))


def _log1p_dd(cx, x):
    u, c = cx.two_sum(x, 1.0)
    return _log_dd(cx, u, cx.div(c, u))


def emit_log1p(cx, x):
    h, l = _log1p_dd(cx, x)
    res = cx.add(h, l)
    res = cx.sel(cx.eq(x, -1.0), cx.neg(cx.inf), res)
    res = cx.sel(cx.lt(x, -1.0), cx.nan, res)
    res = cx.sel(cx.eq(x, cx.inf), cx.inf, res)
    tiny = 2.0 ** -54 if cx.double else 2.0 ** -25
    res = cx.sel(cx.lt(cx.abs(x), tiny), x, res)
    return cx.sel(cx.isnan(x), x, res)


# ---------------------------------------------------------------------------
# pow
# ---------------------------------------------------------------------------
def _is_int(cx, y):
    return cx.eq(cx.trunc(y), y)


def _is_odd_int(cx, y):
    h = cx.mul(y, 0.5)
    return cx.and_(_is_int(cx, y), cx.b.fcmp_ordered("!=", cx.trunc(h), h))


def _pow_double(cx, x, y):
    ax = cx.abs(x)
    lh, ll = _log_dd(cx, ax)
    ph, pl = cx.two_prod(y, lh)
    pl = cx.fma(y, ll, pl)
    ph_safe = cx.clamp(ph, -800.0, 800.0)
    k, r1, a = _exp_reduce(cx, ph_safe)
    r, e = cx.two_sum(r1, a)
    e = cx.add(e, pl)
    mag = cx.ldexp(cx.add(_expm1_poly(cx, r, e, big_lo=True), 1.0), k)
    mag = cx.sel(cx.gt(ph, 710.0), cx.inf, mag)
    mag = cx.sel(cx.lt(ph, -746.0), 0.0, mag)
    ypos = cx.gt(y, 0.0)
    # x = +-0 and x = +-inf
    mag = cx.sel(cx.eq(ax, 0.0), cx.sel(ypos, 0.0, cx.inf), mag)
    mag = cx.sel(cx.eq(ax, cx.inf), cx.sel(ypos, cx.inf, 0.0), mag)
    # y = +-inf
    ay = cx.abs(y)
    grow = cx.b.icmp_unsigned("==", cx.gt(ax, 1.0), ypos)
    yinf = cx.sel(grow, cx.inf, 0.0)
    yinf = cx.sel(cx.eq(ax, 1.0), 1.0, yinf)
    mag = cx.sel(cx.eq(ay, cx.inf), yinf, mag)
    # sign and negative bases
    res = cx.sel(cx.and_(cx.signbit(x), _is_odd_int(cx, y)), cx.neg(mag), mag)
    negfin = cx.and_(cx.lt(x, 0.0), cx.gt(x, cx.neg(cx.inf)))
    bad = cx.and_(negfin, cx.lt(ay, cx.inf), cx.not_(_is_int(cx, y)))
    res = cx.sel(bad, cx.nan, res)
    res = cx.sel(cx.or_(cx.isnan(x), cx.isnan(y)), cx.add(x, y), res)
    res = cx.sel(cx.eq(x, 1.0), 1.0, res)
    return cx.sel(cx.eq(y, 0.0), 1.0, res)


def emit_pow(cx, x, y):
    if cx.double:
        return _pow_double(cx, x, y)
    # binary32: evaluate in binary64 (error << 1 ulp of float), round once.
    dty = cx.vt(ir.DoubleType())
    dx = Ctx(cx.b, dty)
    r = _pow_double(dx, cx.b.fpext(x, dty), cx.b.fpext(y, dty))
    return cx.b.fptrunc(r, cx.ty)


# ---------------------------------------------------------------------------
# hyperbolic functions
# ---------------------------------------------------------------------------
def _half_exp(cx, ax):
    """exp(ax)/2 without intermediate overflow."""
    y, k = _exp_parts(cx, ax)
    return cx.ldexp(y, cx.sub(k, 1.0))


def emit_sinh(cx, x):
    ax = cx.abs(x)
    z = cx.mul(ax, ax)
    small = cx.fma(cx.mul(ax, z), cx.poly(z, cx.poly_coeffs("sinh_h")), ax)
    h = _half_exp(cx, ax)
    large = cx.sub(h, cx.div(0.25, h))
    ovf = 710.4759 if cx.double else 89.416
    res = cx.sel(cx.lt(ax, 1.0), small, large)
    res = cx.sel(cx.gt(ax, ovf), cx.inf, res)
    res = cx.copysign(res, x)
    return cx.sel(cx.isnan(x), x, res)


def emit_cosh(cx, x):
    ax = cx.abs(x)
    h = _half_exp(cx, ax)
    res = cx.add(h, cx.div(0.25, h))
    ovf = 710.4759 if cx.double else 89.416
    res = cx.sel(cx.gt(ax, ovf), cx.inf, res)
    return cx.sel(cx.isnan(x), x, res)


def emit_tanh(cx, x):
    ax = cx.abs(x)
    z = cx.mul(ax, ax)
    small = cx.fma(cx.mul(ax, z), cx.poly(z, cx.poly_coeffs("tanh_t")), ax)
    big = cx.gt(ax, 22.0 if cx.double else 10.0)
    em = emit_expm1(cx, cx.mul(cx.fmin(ax, 40.0), 2.0))
    large = cx.sub(1.0, cx.div(2.0, cx.add(em, 2.0)))
    res = cx.sel(cx.lt(ax, 0.625), small, large)
    res = cx.sel(big, 1.0, res)
    res = cx.copysign(res, x)
    return cx.sel(cx.isnan(x), x, res)


def _big_threshold(cx):
    return 2.0 ** 28 if cx.double else 2.0 ** 13


def emit_asinh(cx, x):
    ax = cx.abs(x)
    a2 = cx.mul(ax, ax)
    t = cx.add(ax, cx.div(a2, cx.add(1.0, cx.sqrt(cx.add(1.0, a2)))))
    h, l = _log1p_dd(cx, t)
    mid = cx.add(h, l)
    h2, l2 = _log_dd(cx, ax)
    ln2h, ln2l = cx.dd("ln2")
    large = cx.add(cx.add(h2, ln2h), cx.add(l2, ln2l))
    res = cx.sel(cx.gt(ax, _big_threshold(cx)), large, mid)
    res = cx.sel(cx.eq(ax, cx.inf), cx.inf, res)
    tiny = 2.0 ** -28 if cx.double else 2.0 ** -13
    res = cx.sel(cx.lt(ax, tiny), ax, res)
    res = cx.copysign(res, x)
    return cx.sel(cx.isnan(x), x, res)


def emit_acosh(cx, x):
    t = cx.sub(x, 1.0)
    w = cx.add(t, cx.sqrt(cx.fma(t, t, cx.add(t, t))))
    h, l = _log1p_dd(cx, w)
    mid = cx.add(h, l)
    h2, l2 = _log_dd(cx, x)
    ln2h, ln2l = cx.dd("ln2")
    large = cx.add(cx.add(h2, ln2h), cx.add(l2, ln2l))
    res = cx.sel(cx.gt(x, _big_threshold(cx)), large, mid)
    res = cx.sel(cx.eq(x, cx.inf), cx.inf, res)
    res = cx.sel(cx.lt(x, 1.0), cx.nan, res)
    return cx.sel(cx.isnan(x), x, res)


def emit_atanh(cx, x):
    ax = cx.abs(x)
    a2 = cx.add(ax, ax)
    w = cx.fma(a2, cx.div(ax, cx.sub(1.0, ax)), a2)
    h, l = _log1p_dd(cx, w)
    res = cx.mul(cx.add(h, l), 0.5)
    res = cx.sel(cx.eq(ax, 1.0), cx.inf, res)
    res = cx.sel(cx.gt(ax, 1.0), cx.nan, res)
    tiny = 2.0 ** -28 if cx.double else 2.0 ** -13
    res = cx.sel(cx.lt(ax, tiny), ax, res)
    res = cx.copysign(res, x)
    return cx.sel(cx.isnan(x), x, res)


# ---------------------------------------------------------------------------
# hypot, logaddexp, cbrt
# ---------------------------------------------------------------------------
def emit_hypot(cx, x, y):
    ax, ay = cx.abs(x), cx.abs(y)
    big = cx.fmax(ax, ay)
    small = cx.fmin(ax, ay)
    if cx.double:
        hi_t, hi_s, lo_t, lo_s = 2.0 ** 500, 2.0 ** -600, 2.0 ** -500, 2.0 ** 600
    else:
        hi_t, hi_s, lo_t, lo_s = 2.0 ** 50, 2.0 ** -70, 2.0 ** -50, 2.0 ** 90
    sc = cx.sel(cx.gt(big, hi_t), hi_s, cx.sel(cx.lt(big, lo_t), lo_s, 1.0))
    bs, ss = cx.mul(big, sc), cx.mul(small, sc)
    # sqrt(b^2 + s^2) with b^2 + s^2 kept to ~2^-106 before the square root
    bh, bl = cx.two_prod(bs, bs)
    sh, sl = cx.two_prod(ss, ss)
    t, te = cx.fast_two_sum(bh, sh)
    lo = cx.add(te, cx.add(bl, sl))
    r = cx.sqrt(cx.add(t, lo))
    # one Newton correction: r += (t + lo - r^2) / (2r)
    rh, rl = cx.two_prod(r, r)
    resid = cx.add(cx.sub(t, rh), cx.sub(lo, rl))
    r = cx.add(r, cx.div(resid, cx.add(r, r)))
    r = cx.sel(cx.eq(bs, 0.0), 0.0, r)
    res = cx.div(r, sc)
    res = cx.sel(cx.or_(cx.isnan(x), cx.isnan(y)), cx.add(x, y), res)
    return cx.sel(cx.or_(cx.eq(ax, cx.inf), cx.eq(ay, cx.inf)), cx.inf, res)


def _logaddexp_impl(cx, x, y):
    mx = cx.sel(cx.gt(x, y), x, y)
    d = cx.neg(cx.abs(cx.sub(x, y)))
    ey, k = _exp_parts(cx, cx.fmax(d, -800.0 if cx.double else -120.0))
    e = cx.ldexp(ey, k)
    e = cx.sel(cx.lt(d, -760.0 if cx.double else -110.0), 0.0, e)
    h, l = _log1p_dd(cx, e)
    h, l2 = cx.two_sum(mx, h)
    res = cx.add(h, cx.add(l, l2))
    res = cx.sel(cx.eq(x, y), cx.add(x, cx.dd("ln2")[0]), res)
    res = cx.sel(cx.eq(d, cx.neg(cx.inf)), cx.add(mx, 0.0), res)
    return cx.sel(cx.or_(cx.isnan(x), cx.isnan(y)), cx.add(x, y), res)


def emit_logaddexp(cx, x, y):
    if cx.double:
        return _logaddexp_impl(cx, x, y)
    dty = cx.vt(ir.DoubleType())
    dx = Ctx(cx.b, dty)
    r = _logaddexp_impl(dx, cx.b.fpext(x, dty), cx.b.fpext(y, dty))
    return cx.b.fptrunc(r, cx.ty)


def emit_cbrt(cx, x):
    b = cx.b
    ax = cx.abs(x)
    mn = 2.0 ** (1 - cx.bias)
    sh = 54 if cx.double else 24
    sub = cx.lt(ax, mn)
    a = cx.sel(sub, cx.mul(ax, 2.0 ** sh), ax)
    # initial guess: divide the biased exponent (and mantissa) by three
    magic = ((2 * cx.bias) << cx.M) // 3
    i = b.add(b.udiv(cx.bits(a), cx.ci(3)), cx.ci(magic))
    y = cx.from_bits(i)
    for _ in range(4 if cx.double else 3):
        y = cx.mul(cx.add(cx.add(y, y), cx.div(a, cx.mul(y, y))), 1.0 / 3.0)
    # final correction with an accurate residual y^3 - a
    y2h, y2l = cx.two_prod(y, y)
    resid = cx.fma(y2h, y, cx.neg(a))
    resid = cx.fma(y2l, y, resid)
    y = cx.sub(y, cx.div(resid, cx.mul(cx.mul(y, y), 3.0)))
    y = cx.sel(sub, cx.mul(y, 2.0 ** -(sh // 3)), y)
    res = cx.copysign(y, x)
    special = cx.or_(cx.eq(ax, 0.0), cx.eq(ax, cx.inf), cx.isnan(x))
    return cx.sel(special, x, res)

