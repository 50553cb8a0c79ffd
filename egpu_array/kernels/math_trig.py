"""Trigonometric kernels (see :mod:`.math`).

Argument reduction for sin/cos/tan is branch-free: a Cody-Waite reduction
with pi/2 split in three parts (exact first step thanks to fma) and a
Payne-Hanek reduction (integer multiply of the mantissa by a 2/pi bit window
read from a constant table indexed by the exponent) are both computed and the
right one is selected per lane. With ``Ctx.guards`` (the fused kernels' first
try) only the Cody-Waite one is emitted and lanes that need the other are
flagged; the kernel is then rerun without guards.

float64 sin and cos reduce modulo pi instead (k*pi, resp. (k + 1/2)*pi) and
evaluate one odd polynomial on |r| <= pi/2; tan and float32 keep the pi/2
quadrants with the sin and cos polynomials.
"""

import struct
from fractions import Fraction

import numpy as np
from llvmlite import ir

from .math_core import (PIO2_FRACTION, TABLE_PAD_WORDS, TABLE_WORDS,
                        TWO_OVER_PI_WORDS, split3)

_TABLE_NAME = "__egpu_math_two_over_pi"


def _table(cx):
    g = cx.module.globals.get(_TABLE_NAME)
    if g is None:
        aty = ir.ArrayType(ir.IntType(32), TABLE_WORDS)
        g = ir.GlobalVariable(cx.module, aty, _TABLE_NAME)
        g.global_constant = True
        g.linkage = "internal"
        g.unnamed_addr = True
        g.initializer = ir.Constant(aty, TWO_OVER_PI_WORDS)
    return g


def _load_words(cx, idx):
    """T[idx] (zero-extended to i64) for an i64 scalar/vector index."""
    b = cx.b
    g = _table(cx)
    zero = ir.Constant(ir.IntType(32), 0)
    i64 = ir.IntType(64)
    if cx.n is None:
        return b.zext(b.load(b.gep(g, [zero, idx], inbounds=True)), i64)
    out = ir.Constant(cx.i64, ir.Undefined)
    for lane in range(cx.n):
        ln = ir.Constant(ir.IntType(32), lane)
        v = b.load(b.gep(g, [zero, b.extract_element(idx, ln)], inbounds=True))
        out = b.insert_element(out, b.zext(v, i64), ln)
    return out


def _cw_threshold(cx):
    return 2.0 ** 30 if cx.double else 2.0 ** 16


def _split_pi(cx):
    """pi = p1 + p2 + p3 with p1 = pi rounded down (so p2 > 0: sin's signed zeros rely on it)."""
    p1, p2, p3 = split3(2 * PIO2_FRACTION, cx.double)
    if p2 < 0:
        p1 = float(np.nextafter(np.float32(p1), np.float32(0)))  # (binary64's p1 is below pi)
        p2, p3 = split3(2 * PIO2_FRACTION - Fraction(p1), False)[:2]
    return p1, p2, p3


def _reduce_cw(cx, ax, by_pi=False, halves=False):
    """Cody-Waite: ax = k*c + r + e with c = pi/2, |r| <~ pi/4, |e| <~ ulp(r) not renormalized,
    q an integer whose low bits are k's. ``by_pi``: c = pi (ax may be negative) and the low part
    is returned negated (-e). ``halves`` (with by_pi, ax >= 0): ax = (k + 1/2)*pi + r - e'."""
    if halves:  # the multiplier n = 2k + 1 of pi/2 (exact), so pi/2's parts
        p1, p2, p3 = split3(PIO2_FRACTION, cx.double)
        t = cx.add(cx.fma(ax, cx.dd("invpi")[0], -0.5), cx.magic)
    else:
        p1, p2, p3 = _split_pi(cx) if by_pi else split3(PIO2_FRACTION, cx.double)
        # k = rint(ax / c) as a float (see Ctx.round_magic); q = the bits of t: the magic
        # number's low M - 1 bits are 0, so q = k + bits(magic) agrees with k in the two low
        # bits, the only ones the callers use (quadrant and sign)
        t = cx.fma(ax, cx.dd("invpi" if by_pi else "twoopi")[0], cx.magic)
    k, q = cx.sub(t, cx.magic), cx.bits(t)
    if halves:
        k = cx.fma(k, 2.0, 1.0)
    nk = cx.neg(k)
    r1 = cx.fma(nk, p1, ax)  # exact
    th, tl = cx.two_prod(k, cx.c(p2, ax.type))
    # Fast2Sum is exact here although |r1| < |th| can happen: r1 is a multiple of ulp(p1) (of
    # ulp(p1)/2 when k = 1 and ax < 1, then |r1| < 1), so it has a p-bit representation whose
    # exponent is at least th's (Fast2Sum's condition); with c = pi, |k| >= 1 needs |ax| >= 1, so
    # r1 is a multiple of ulp(1) and |r1| < 2. With halves and ax < 1 (n = 1) r1 ~ -pi/2 is
    # rounded (by <= ulp(1)/2: cos's result ~1 moves by ~ax * 2**-53) and larger than th
    r, e = cx.fast_two_sum(r1, cx.neg(th))
    # the low part, |e| <~ ulp(r): not renormalized (the kernels take any small low part), and
    # its terms off the critical path (k*p3 and tl are ready long before Fast2Sum's error)
    if by_pi:  # -e (sin's form): k*p3 + tl - e is +0 where ax = +-0, so sin(-0) = -0 - (+0)
        return r, cx.sub(cx.fma(k, p3, tl), e), q
    e = cx.add(e, cx.fma(nk, p3, cx.neg(tl)))
    return r, e, q


def _reduce_ph(cx, ax):
    b = cx.b
    i64 = cx.i64

    def k64(v):
        return cx.ci(v, i64)

    bits = cx.bits(ax)
    if not cx.double:
        bits = b.zext(bits, i64)
    e = b.lshr(bits, k64(cx.M))
    m = b.or_(b.and_(bits, k64((1 << cx.M) - 1)), k64(1 << cx.M))
    nwin = 6 if cx.double else 4
    # window of 2/pi bits starting at bit p = s - 1, s = e - bias - M
    g = b.add(e, k64(-(cx.bias + cx.M) - 2 + 32 * TABLE_PAD_WORDS))
    gmax = 32 * (TABLE_WORDS - nwin - 2)
    g = b.select(b.icmp_signed("<", g, k64(0)), k64(0), g)
    g = b.select(b.icmp_signed(">", g, k64(gmax)), k64(gmax), g)
    q0 = b.lshr(g, k64(5))
    sh = b.and_(g, k64(31))
    words = [_load_words(cx, b.add(q0, k64(j))) for j in range(nwin + 1)]
    mask = k64(0xFFFFFFFF)
    win = []
    for j in range(nwin):
        comb = b.or_(b.shl(words[j], k64(32)), words[j + 1])
        win.append(b.lshr(b.shl(comb, sh), k64(32)))
    ml = b.and_(m, mask)
    mh = b.lshr(m, k64(32))
    acc = [None] * (nwin + 1)

    def put(n, v):
        if 1 <= n <= nwin:
            acc[n] = v if acc[n] is None else b.add(acc[n], v)

    for j, w in enumerate(win):
        p = b.mul(ml, w)
        put(j + 1, b.and_(p, mask))
        put(j, b.lshr(p, k64(32)))
        if cx.double:
            p = b.mul(mh, w)
            put(j, b.and_(p, mask))
            put(j - 1, b.lshr(p, k64(32)))
    limbs = [None] * (nwin + 2)
    carry = None
    for n in range(nwin, 0, -1):
        a = acc[n] if carry is None else b.add(acc[n], carry)
        carry = b.lshr(a, k64(32))
        limbs[n] = b.and_(a, mask)
    limbs[nwin + 1] = k64(0)
    l1, l2, l3, l4, l5 = limbs[1:6] if cx.double else (limbs[1], limbs[2], limbs[3], limbs[4], k64(0))
    fa = b.or_(b.or_(b.shl(l1, k64(34)), b.shl(l2, k64(2))), b.lshr(l3, k64(30)))
    fb = b.or_(b.or_(b.shl(l3, k64(34)), b.shl(l4, k64(2))), b.lshr(l5, k64(30)))
    neg = b.icmp_signed("<", fa, k64(0))
    q = b.add(b.lshr(l1, k64(30)), b.zext(neg, i64))
    if not cx.double:
        q = b.trunc(q, cx.ity)
    # fraction of a quarter turn: (fa + fb/2^64) / 2^64, fa signed
    a1 = b.ashr(fa, k64(1))
    ah = b.sitofp(a1, cx.ty)
    rem = b.sub(a1, b.fptosi(ah, i64))
    al = b.sitofp(rem, cx.ty)
    b1 = b.or_(b.shl(b.and_(fa, k64(1)), k64(63)), b.lshr(fb, k64(1)))
    bl = b.uitofp(b1, cx.ty)
    vl = cx.mul(cx.fma(bl, 2.0 ** -64, al), 2.0 ** -63)
    vh = cx.mul(ah, 2.0 ** -63)
    vh, vl = cx.two_sum(vh, vl)
    ph, pl = cx.dd("pio2")
    rh, rl = cx.two_prod(vh, cx.c(ph, ax.type))
    rl = cx.add(rl, cx.fma(vl, ph, cx.mul(vh, pl)))
    rh, rl = cx.fast_two_sum(rh, rl)
    return rh, rl, q


def _needs_wide(cx, ax):
    """i1: threshold <= ax < inf, as ``icmp slt v, 0`` where v's sign bit is that condition:
    v = (bits(ax) - bits(inf)) & ~(bits(ax) - bits(threshold)) (ax >= 0, so both differences are
    exact integers; a NaN's bits lie above inf's). A kernel ORs the lanes' v over its loop in
    integers of the float's width and tests the sign once after it (elementwise.py): two float
    compares and an AND, packed to a narrower vector before each OR, cost twice as many
    instructions per vector."""
    a = cx.bits(ax)
    below_inf = cx.b.sub(a, cx.ci(_float_bits(cx, float("inf"))))
    at_least = cx.b.sub(a, cx.ci(_float_bits(cx, _cw_threshold(cx))))
    v = cx.b.and_(below_inf, cx.b.not_(at_least))
    return cx.b.icmp_signed("<", v, cx.ci(0))


def _float_bits(cx, v):
    return struct.unpack("<Q", struct.pack("<d", v))[0] if cx.double else \
        struct.unpack("<I", struct.pack("<f", v))[0]


def _reduce(cx, ax):
    """|x| = q*pi/2 + r + rl (mod 2pi) with |r| <~ pi/4; q an integer of the float's width whose two
    low bits are those of the quadrant count (its other bits are not meaningful)."""
    r1, e1, q1 = _reduce_cw(cx, ax)
    if cx.guards is not None:  # fast variant: flag the lanes that need Payne-Hanek
        cx.guards.append(_needs_wide(cx, ax))
        return r1, e1, q1
    r2, e2, q2 = _reduce_ph(cx, ax)
    cw = cx.lt(ax, _cw_threshold(cx))
    return cx.sel(cw, r1, r2), cx.sel(cw, e1, e2), cx.b.select(cw, q1, q2)


def _sin_cos_k(cx, r, rl):
    z = cx.mul(r, r)
    s = cx.poly(z, cx.poly_coeffs("sin_s"))
    hz = cx.mul(z, 0.5)  # exact (or z so small that 1 - hz rounds to 1 either way)
    w = cx.sub(1.0, hz)  # = fma(z, -0.5, 1): it also serves as the cos(r) ~ 1 - z/2 of sin's rl term
    corr = cx.mul(rl, w)
    sn = cx.add(r, cx.fma(cx.mul(r, z), s, corr))
    c = cx.poly(z, cx.poly_coeffs("cos_c"))
    tail = cx.fma(cx.mul(z, z), c, cx.neg(cx.mul(r, rl)))
    cs = cx.add(w, cx.add(cx.sub(cx.sub(1.0, w), hz), tail))
    return sn, cs


def _trig(cx, x, which):
    b = cx.b
    ax = cx.abs(x)
    r, rl, q = _reduce(cx, ax)
    sn, cs = _sin_cos_k(cx, r, rl)
    # bit 0 of q moved to the sign bit: a select on it is one blend
    odd = b.icmp_signed("<", b.shl(q, cx.ci(cx.W - 1)), cx.ci(0))
    sign = cx.ci(1 << (cx.W - 1))

    def flip(v, s):
        """v with its sign bit xor-ed with the sign bit of the integer s."""
        return cx.from_bits(b.xor(cx.bits(v), b.and_(s, sign)))

    if which == "sin":  # sign: bit 1 of q xor the sign of x
        res = flip(cx.sel(odd, cs, sn), b.xor(b.shl(q, cx.ci(cx.W - 2)), cx.bits(x)))
    elif which == "cos":  # sign: bit 1 of q + 1
        res = flip(cx.sel(odd, sn, cs), b.shl(b.add(q, cx.ci(1)), cx.ci(cx.W - 2)))
    else:
        num = cx.sel(odd, cx.neg(cs), sn)
        den = cx.sel(odd, sn, cs)
        res = flip(cx.div(num, den), cx.bits(x))
    if cx.guards is not None:  # infinities and NaNs already gave NaN (no wide reduction ran)
        return res
    return cx.sel(cx.lt(ax, cx.inf), res, cx.sub(x, x))


def _ph_by_pi(cx, x, ax, quarter=0):
    """Payne-Hanek for sin's reduction mod pi: x = k*pi + r - nl, |r| <~ pi/2, q's bit 0 = k's.
    |x| = Q*pi/2 + s (|s| <= pi/4) gives k = Q/2, r = s for an even Q, else k = (Q +- 1)/2 and
    r = s -+ pi/2 (the sign of s); x's sign goes to r (sin is odd; x = None: no sign).
    ``quarter``: reduce |x| + quarter*pi/2 instead."""
    b = cx.b
    rh, rl, qq = _reduce_ph(cx, ax)
    if quarter:
        qq = b.add(qq, cx.ci(quarter, qq.type))
    odd = b.trunc(qq, ir.IntType(1)) if cx.n is None else b.trunc(qq, ir.VectorType(ir.IntType(1), cx.n))
    spos = cx.gt(rh, 0.0)
    step = b.select(odd, b.select(spos, cx.ci(1), cx.ci(-1)), cx.ci(0))
    q = b.lshr(b.add(qq, step), cx.ci(1))
    ph, pl = cx.dd("pio2")
    sh = cx.sel(spos, -ph, ph)
    sl = cx.sel(spos, -pl, pl)
    hh, hl = cx.two_sum(rh, cx.sel(odd, sh, cx.c(0.0)))
    hl = cx.add(hl, cx.add(rl, cx.sel(odd, sl, cx.c(0.0))))
    hh, hl = cx.fast_two_sum(hh, hl)
    if x is None:
        return hh, cx.neg(hl), q
    return _xor_sign(cx, hh, x), cx.neg(_xor_sign(cx, hl, x)), q


def _xor_sign(cx, v, x):
    """v with its sign flipped where x is negative."""
    return cx.from_bits(cx.b.xor(cx.bits(v), cx.b.and_(cx.bits(x), cx.ci(1 << (cx.W - 1)))))


def emit_sin(cx, x):
    """sin(x) = (-1)**k sin(r) for x = k*pi + r: one odd polynomial on |r| <= pi/2 (half the
    multiplies of sin and cos on |r| <= pi/4 and a select between them). NaN and infinities
    give NaN through the Cody-Waite reduction itself (inf - inf), so no special-case select."""
    if not cx.double:
        return _trig(cx, x, "sin")
    r, nl, q = _reduce_cw(cx, x, by_pi=True)  # x = k*pi + r - nl
    ax = cx.abs(x)
    if cx.guards is not None:
        cx.guards.append(_needs_wide(cx, ax))
    else:
        wide = _needs_wide(cx, ax)
        r2, nl2, q2 = _ph_by_pi(cx, x, ax)
        r, nl, q = cx.sel(wide, r2, r), cx.sel(wide, nl2, nl), cx.b.select(wide, q2, q)
    return _sin_pi_kernel(cx, r, nl, q)


def _sin_pi_kernel(cx, r, nl, q, negate=False):
    """(-1)**k sin(r - nl) for |r| <~ pi/2, k's parity in bit 0 of the integer q (negated with
    ``negate``: the sign of the difference below is swapped, at no cost)."""
    b = cx.b
    # sin(r - nl) = r - T, T = r^3 Q(z) + nl cos(r), Q = -P. T reaches 0.65 |sin r| near
    # |r| = pi/2, so T is summed as r^3/6 (one rounding, the last) + small terms: rounding Q(z)
    # (~0.15 there) or z = r^2 would each cost up to ~0.5 ULP. z's error zl is added back
    # through the leading term (r^3 = a + r*zl, a = r*z; also adding a's own error gains ~0.2
    # ULP for two more instructions). Horner's chain: fewer instructions and live registers
    # than Estrin's, and the loop is bound by instruction throughput, not latency
    z = cx.mul(r, r)
    zl = cx.fma(r, r, cx.neg(z))
    a = cx.mul(r, z)
    coeffs = [-c for c in cx.poly_coeffs("sin_pi")]
    u = cx.mul(z, cx.poly(z, coeffs[1:], horner=True))
    # nl enters as nl * cos(r), cos(r) ~ 1 - z/2 (off by <= 0.24 at |r| = pi/2, where plain nl
    # would cost up to ~0.9 ULP). For x = -0: r = -0 and every term of T is +0 (see _reduce_cw),
    # so the difference keeps sin(-0) = -0
    corr = cx.fma(cx.mul(r, zl), coeffs[0], cx.fma(cx.mul(nl, z), -0.5, nl))
    t = cx.fma(a, coeffs[0], cx.fma(a, u, corr))
    sn = cx.sub(t, r) if negate else cx.sub(r, t)
    return cx.from_bits(b.xor(cx.bits(sn), b.shl(q, cx.ci(cx.W - 1))))


def emit_cos(cx, x):
    """float64: cos(x) = (-1)**(k+1) sin(r) for |x| = (k + 1/2)*pi + r, sin's polynomial (cos has
    no zeros in binary64, so no signed-zero care); NaN and infinities give NaN as in sin."""
    if not cx.double:
        return _trig(cx, x, "cos")
    ax = cx.abs(x)
    r, nl, q = _reduce_cw(cx, ax, by_pi=True, halves=True)
    if cx.guards is not None:
        cx.guards.append(_needs_wide(cx, ax))
    else:
        # Payne-Hanek: cos|x| = sin(|x| + pi/2), whose k is this one's + 1
        wide = _needs_wide(cx, ax)
        r2, nl2, q2 = _ph_by_pi(cx, None, ax, quarter=1)
        r, nl = cx.sel(wide, r2, r), cx.sel(wide, nl2, nl)
        q = cx.b.select(wide, cx.b.add(q2, cx.ci(1)), q)
    return _sin_pi_kernel(cx, r, nl, q, negate=True)


def emit_tan(cx, x):
    return _trig(cx, x, "tan")


# ---------------------------------------------------------------------------
# inverse trigonometric functions
# ---------------------------------------------------------------------------
_BASES = (("zero", "pi"), ("atan05", "pi_m_atan05"), ("pio4", "3pio4"),
          ("atan2", "pi_m_atan2"), ("pio2", "pio2"))


def _base(cx, name):
    return (0.0, 0.0) if name == "zero" else cx.dd(name)


def emit_atan2(cx, y, x):
    ax, ay = cx.abs(x), cx.abs(y)
    inf = cx.inf
    both = cx.and_(cx.eq(ax, inf), cx.eq(ay, inf))
    ax = cx.sel(both, 1.0, ax)
    ay = cx.sel(both, 1.0, ay)
    mx = cx.fmax(ax, ay)
    if cx.double:
        bt, bs, st, ss = 2.0 ** 1000, 2.0 ** -8, 2.0 ** -960, 2.0 ** 100
    else:
        bt, bs, st, ss = 2.0 ** 120, 2.0 ** -8, 2.0 ** -100, 2.0 ** 40
    sc = cx.sel(cx.gt(mx, bt), bs, cx.sel(cx.lt(mx, st), ss, 1.0))
    sx, sy = cx.mul(ax, sc), cx.mul(ay, sc)
    c0 = cx.le(sy, cx.mul(sx, 0.25))
    c1 = cx.lt(sy, cx.mul(sx, 0.75))
    c2 = cx.lt(sy, cx.mul(sx, 4.0 / 3.0))
    c3 = cx.lt(sy, cx.mul(sx, 4.0))
    c = cx.sel(c1, 0.5, cx.sel(c2, 1.0, 2.0))
    num = cx.sel(c0, ay, cx.sel(c3, cx.sub(sy, cx.mul(c, sx)), cx.neg(ax)))
    den = cx.sel(c0, ax, cx.sel(c3, cx.fma(c, sy, sx), ay))
    u = cx.div(num, den)
    u = cx.sel(cx.eq(ay, 0.0), 0.0, u)
    z = cx.mul(u, u)
    p = cx.fma(cx.mul(u, z), cx.poly(z, cx.poly_coeffs("atan_a")), u)
    xneg = cx.signbit(x)
    conds = (c0, c1, c2, c3)
    parts = []
    for comp in (0, 1):
        v = None
        for i in range(4, -1, -1):
            pos, negn = _base(cx, _BASES[i][0]), _base(cx, _BASES[i][1])
            val = cx.sel(xneg, cx.c(negn[comp]), cx.c(pos[comp]))
            v = val if v is None else cx.sel(conds[i], val, v)
        parts.append(v)
    bh, bl = parts
    sp = cx.sel(xneg, cx.neg(p), p)
    theta = cx.add(bh, cx.add(bl, sp))
    res = cx.copysign(theta, y)
    return cx.sel(cx.or_(cx.isnan(x), cx.isnan(y)), cx.add(x, y), res)


def emit_atan(cx, x):
    return emit_atan2(cx, x, cx.c(1.0))


def _cofn(cx, x):
    return cx.sqrt(cx.fma(cx.neg(x), x, 1.0))


def emit_asin(cx, x):
    return emit_atan2(cx, x, _cofn(cx, x))


def emit_acos(cx, x):
    return emit_atan2(cx, _cofn(cx, x), x)
