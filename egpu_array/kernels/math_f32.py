"""binary32 kernels in single-precision arithmetic (see :mod:`.math`).

The float64 kernels of log/log1p/log2/log10 and the inverse hyperbolic functions share a
double-word logarithm; in binary32 that core made them 2-3x slower than NumPy (tanh and
asin/acos, built on expm1 and atan2, likewise).  Here these functions are evaluated in plain
float arithmetic, with one extra word only where an error would be large against the
result's ULP:

* log family: x = 2**e * (1 + f), f in [sqrt(1/2) - 1, sqrt(2) - 1) from the bits (no
  division, no table); log1p(f) = f - f^2/2 + f^3 P(f) (8 terms, relative error 2**-27 before
  rounding); e*log_b(2) + (f - f^2/2)*log_b(e) is summed exactly into a high word (Fast2Sum,
  the constant split so that e*hi is exact) and the small terms go into a low word added last.
* log1p / asinh / acosh / atanh: log of u = hi + lo (hi the rounded argument, lo its rounding
  error, entering as lo/u: the first-order term of log(u + lo)).  asinh and acosh of large
  arguments reuse the exponent: log(2|x|) = (e + 1) ln2 + log1p(f), one core for both ranges.
* tanh: 1 - 2/(e^{2|x|} + 1) with e^{2|x|} + 1 = fma(2^k, e^r - 1, 2^k + 1) (one rounding)
  above 0.625, the odd polynomial below.
* asin / acos: the odd polynomial on |x| <= 1/2, asin(x) = pi/2 - 2 asin(sqrt((1 - |x|)/2))
  above (1 - |x| is exact there), with the square root's rounding error added back.

Every kernel is straight-line code in the float type of its ``Ctx`` (scalar or vector), so the
vector emission is bit-identical to the scalar one.
"""

from . import math_explog as _el

__all__ = ["F32_EMITTERS"]

#: bits of 0.70710677f: x's bits minus these give the exponent e with the mantissa in
#: [sqrt(1/2), sqrt(2)) (the mantissa bits plus these again)
_SQRTH_BITS = 0x3F3504F3

#: log base -> (dd constant log_b(e) or None for ln, dd constant log_b(2) or None for log2)
_BASES = {"log": (None, "ln2"), "log2": ("log2e", None), "log10": ("log10e", "log10_2")}


def _reduce(cx, x, subnormals=True):
    """(e, f) with x = 2**e * (1 + f), f in [sqrt(1/2) - 1, sqrt(2) - 1) exact, e a float;
    garbage for x <= 0, inf and NaN. ``subnormals=False`` where x is never subnormal."""
    b = cx.b
    base = cx.ci(_SQRTH_BITS)
    if subnormals:  # scaled by 2**23, and 23 off the exponent field with the same subtraction
        sub = cx.lt(x, 2.0 ** -126)
        x = cx.sel(sub, cx.mul(x, 2.0 ** 23), x)
        base = b.select(sub, cx.ci(_SQRTH_BITS + (23 << 23)), base)
    ib = b.sub(cx.bits(x), base)
    e = cx.to_float(b.ashr(ib, cx.ci(23)))
    m = cx.from_bits(b.add(b.and_(ib, cx.ci(0x7FFFFF)), cx.ci(_SQRTH_BITS)))
    return e, cx.sub(m, 1.0)


def _log_sum(cx, e, f, lo, base):
    """log_b(2**e * (1 + f + lo)) for f from :func:`_reduce` and a small low part lo (|lo| <
    ~2**-23, already divided by 1 + f). log1p(f) = v + small with v = f - f^2/2 (f^2 split
    exactly, the sum kept as two words); v times log_b(e) and e*log_b(2) are summed exactly
    and everything else goes into one low word, added last."""
    hh = cx.mul(f, f)
    hl = cx.fma(f, f, cx.neg(hh))
    v, ve = cx.fast_two_sum(f, cx.mul(hh, -0.5))  # |f| >= f^2/2
    small = cx.fma(cx.mul(f, hh), cx.poly(f, cx.poly_coeffs("logf_q")), cx.fma(hl, -0.5, lo))
    small = cx.add(small, ve)
    cname, lname = _BASES[base]
    if cname is None:  # ln: e*ln2hi exact, and the larger of the two unless e = 0
        lh, ll = _el._ln2_split(cx, lname)
        s, err = cx.fast_two_sum(cx.mul(e, lh), v)
        return cx.add(s, cx.add(err, cx.fma(e, ll, small)))
    ch, cl = cx.dd(cname)
    p, pe = cx.two_prod(v, cx.c(ch, f.type))  # v*log_b(e), exactly
    tail = cx.fma(v, cl, cx.mul(small, ch))
    if lname is None:  # log2: e is an integer, |e| >= 1 > |p| unless e = 0
        a = e
    else:
        lh, ll = _el._ln2_split(cx, lname)
        a = cx.mul(e, lh)
        tail = cx.fma(e, ll, tail)
    s, err = cx.fast_two_sum(a, p)
    return cx.add(s, cx.add(err, cx.add(pe, tail)))


def _log(cx, x, base):
    """log_b(x) with C99's special values: +inf at +inf, -inf at +-0, NaN below 0 and at NaN
    (two selects: x > 0 is false for NaN)."""
    e, f = _reduce(cx, x)
    res = cx.sel(cx.eq(x, cx.inf), cx.inf, _log_sum(cx, e, f, cx.c(0.0), base))
    return cx.sel(cx.gt(x, 0.0), res, cx.sel(cx.eq(x, 0.0), cx.neg(cx.inf), cx.nan))


def emit_log(cx, x):
    """Natural logarithm (binary32)."""
    return _log(cx, x, "log")


def emit_log2(cx, x):
    """Base-2 logarithm (binary32)."""
    return _log(cx, x, "log2")


def emit_log10(cx, x):
    """Base-10 logarithm (binary32)."""
    return _log(cx, x, "log10")


def _log_hi_lo(cx, u, c, e_add=None):
    """log(u + c) for u > 0 (not subnormal) and |c| <~ ulp(u); ``e_add``: plus e_add * ln2."""
    e, f = _reduce(cx, u, subnormals=False)
    if e_add is not None:
        e = cx.add(e, e_add)
    return _log_sum(cx, e, f, cx.div(c, u), "log")


def _one_plus(cx, x, xl=None):
    """1 + x + xl as (u, c): u = 1 + x rounded, c its rounding error plus the low part xl."""
    u, c = cx.two_sum(x, 1.0)
    if xl is not None:
        c = cx.add(c, xl)
    return u, c


def emit_log1p(cx, x):
    """log(1 + x) (binary32): the logarithm of 1 + x kept as two words."""
    u, c = _one_plus(cx, x)
    res = cx.sel(cx.eq(x, cx.inf), cx.inf, _log_hi_lo(cx, u, c))
    res = cx.sel(cx.gt(x, -1.0), res, cx.sel(cx.eq(x, -1.0), cx.neg(cx.inf), cx.nan))
    # |x| < 2**-25 gives u = 1, c = x and so x itself, but +0 for -0: log1p has x's sign
    return cx.copysign(res, x)


_BIG = 2.0 ** 13  # asinh/acosh: log(2|x|) above (the next term, 1/(4x^2), is below 2**-28)


def emit_asinh(cx, x):
    """log1p(t), t = |x| + x^2/(1 + sqrt(1 + x^2)) with the final sum's error kept; log(2|x|)
    above 2**13 (u = |x| and e + 1: one logarithm for both)."""
    ax = cx.abs(x)
    a2 = cx.mul(ax, ax)
    q = cx.div(a2, cx.add(1.0, cx.sqrt(cx.add(1.0, a2))))
    t, tl = cx.fast_two_sum(ax, q)
    u, c = _one_plus(cx, t, tl)
    big = cx.gt(ax, _BIG)
    u = cx.sel(big, ax, u)
    c = cx.sel(big, 0.0, c)
    res = _log_hi_lo(cx, u, c, cx.sel(big, 1.0, 0.0))
    # below 2**-13 asinh rounds to x, and 1 + t is far from 1 + x - x^3/6 near 2**-24 (where
    # c/u's rounding is ~ulp(x)/4); +-inf and NaN: ax
    return cx.copysign(cx.sel(cx.and_(cx.ge(ax, 2.0 ** -13), cx.lt(ax, cx.inf)), res, ax), x)


def emit_acosh(cx, x):
    """log1p(w), w = t + sqrt(t^2 + 2t), t = x - 1 (exact below 2**24); log(2x) above 2**13."""
    t = cx.sub(x, 1.0)
    w, wl = cx.fast_two_sum(cx.sqrt(cx.fma(t, t, cx.add(t, t))), t)
    u, c = _one_plus(cx, w, wl)
    big = cx.gt(x, _BIG)
    u = cx.sel(big, x, u)
    c = cx.sel(big, 0.0, c)
    res = _log_hi_lo(cx, u, c, cx.sel(big, 1.0, 0.0))
    res = cx.sel(cx.lt(x, cx.inf), res, x)  # +inf and NaN
    return cx.sel(cx.lt(x, 1.0), cx.nan, res)


def emit_atanh(cx, x):
    """log1p(2|x|/(1 - |x|)) / 2."""
    ax = cx.abs(x)
    a2 = cx.add(ax, ax)
    w = cx.fma(a2, cx.div(ax, cx.sub(1.0, ax)), a2)
    u, c = _one_plus(cx, w)
    res = cx.mul(_log_hi_lo(cx, u, c), 0.5)  # tiny |x| (and 0): u = 1, c = 2|x|: |x| itself
    res = cx.sel(cx.lt(ax, 1.0), res, cx.sel(cx.eq(ax, 1.0), cx.inf, cx.nan))
    return cx.copysign(res, x)


def emit_tanh(cx, x):
    """|x| < 0.625: x + x^3 P(x^2); below 10: 1 - 2/d, d = e^{2|x|} + 1 = 2^k (1 + (e^r - 1)) + 1
    as one fma (2^k + 1 exact); from 10 on (and inf): 1 (the same formula at 10)."""
    ax = cx.abs(x)
    z = cx.mul(ax, ax)
    small = cx.fma(cx.mul(ax, z), cx.poly(z, cx.poly_coeffs("tanh_t")), ax)
    # 2|x| (exact) clamped to 20 (k <= 29), where 1 - 2/d rounds to 1; a NaN stays NaN
    y = cx.sel(cx.gt(ax, 10.0), 20.0, cx.add(ax, ax))
    h, l = cx.dd("ln2")
    k, n = cx.round_magic(cx.fma(y, cx.dd("log2e")[0], cx.magic), offset=cx.bias)
    nk = cx.neg(k)
    r = cx.fma(nk, l, cx.fma(nk, h, y))
    em1 = cx.fma(cx.mul(r, r), cx.poly(r, cx.poly_coeffs("exp_q"), horner=True), r)
    s = cx.from_bits(cx.b.shl(n, cx.ci(cx.M)))  # 2**k
    d = cx.fma(s, em1, cx.add(s, 1.0))
    large = cx.sub(1.0, cx.div(2.0, d))
    return cx.copysign(cx.sel(cx.lt(ax, 0.625), small, large), x)


def _asin_parts(cx, x):
    """(ax, small, q, big) for asin: small = asin(ax) where ax <= 1/2; above, asin(ax) =
    pi/2 - 2q, q = asin(s), s = sqrt((1 - ax)/2) (NaN for ax > 1)."""
    ax = cx.abs(x)
    coeffs = cx.poly_coeffs("asin_p")
    z1 = cx.mul(ax, ax)
    small = cx.fma(cx.mul(ax, z1), cx.poly(z1, coeffs), ax)
    z = cx.mul(cx.sub(1.0, ax), 0.5)  # exact for ax >= 1/2
    s = cx.sqrt(z)
    # sqrt(z) = s + sl to ~2**-48 (the floor on 2s: sl = 0, not 0/0, at |x| = 1)
    sl = cx.div(cx.fma(cx.neg(s), s, z), cx.fmax(cx.add(s, s), 2.0 ** -100))
    q = cx.add(s, cx.fma(cx.mul(s, z), cx.poly(z, coeffs), sl))
    return ax, small, q, cx.gt(ax, 0.5)


def emit_asin(cx, x):
    """asin(x) (binary32); |x| > 1 gives NaN through the square root."""
    ax, small, q, big = _asin_parts(cx, x)
    ph, pl = cx.dd("pio2")
    large = cx.add(cx.fma(q, -2.0, ph), pl)
    return cx.copysign(cx.sel(big, large, small), x)  # NaN: small is NaN


def emit_acos(cx, x):
    """acos(x) (binary32): pi/2 - asin(x) for |x| <= 1/2, else from the same q as asin."""
    ax, small, q, big = _asin_parts(cx, x)
    ph, pl = cx.dd("pio2")
    neg = cx.signbit(x)
    # x <= 1/2: pi/2 -+ asin|x|; above: 2q, or pi - 2q for x < -1/2
    mid = cx.add(ph, cx.sub(pl, cx.copysign(small, x)))
    pi_h, pi_l = cx.dd("pi")
    large = cx.sel(neg, cx.add(cx.fma(q, -2.0, pi_h), pi_l), cx.add(q, q))
    return cx.sel(big, large, mid)  # NaN: mid is NaN


#: name -> binary32 emitter (math.emit_math uses these for float, the shared kernels for double)
F32_EMITTERS = {
    "log": emit_log, "log2": emit_log2, "log10": emit_log10, "log1p": emit_log1p,
    "asinh": emit_asinh, "acosh": emit_acosh, "atanh": emit_atanh, "tanh": emit_tanh,
    "asin": emit_asin, "acos": emit_acos,
}
