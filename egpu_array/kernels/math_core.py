"""Shared emission helpers for the transcendental kernels of :mod:`.math`.

:class:`Ctx` wraps an ``ir.IRBuilder`` together with one floating type (a
``float``/``double`` scalar or a vector of them) and offers typed
constructors for constants, arithmetic, comparisons, selects, bit views and
the small set of intrinsics the kernels may use.  Every helper emits
straight-line code: no branches, no calls except the whitelisted LLVM
intrinsics listed in :data:`ALLOWED_INTRINSICS`.
"""

import struct
from fractions import Fraction

from llvmlite import ir

from .math_coeffs import CONST, POLY

ALLOWED_INTRINSICS = ("fabs", "sqrt", "fma", "floor", "ceil", "trunc", "rint",
                      "copysign", "minnum", "maxnum")


def f32(x):
    """Round a Python float to the nearest binary32 value."""
    return struct.unpack("f", struct.pack("f", float(x)))[0]


# ---------------------------------------------------------------------------
# pi and 2/pi to ~1400 bits, computed exactly with integers (Machin's formula)
# ---------------------------------------------------------------------------
_PI_BITS = 1500


def _atan_inv(n, one):
    x = one // n
    total, k, sign, n2 = x, 1, -1, n * n
    while x:
        x //= n2
        k += 2
        total += sign * (x // k)
        sign = -sign
    return total


def _pi_fixed():
    one = 1 << (_PI_BITS + 32)
    pi = 4 * (4 * _atan_inv(5, one) - _atan_inv(239, one))
    return pi, one


_PI_INT, _ONE = _pi_fixed()
PIO2_FRACTION = Fraction(_PI_INT, 2 * _ONE)

TABLE_PAD_WORDS = 2
TABLE_WORDS = 48


def _two_over_pi_words():
    nbits = 32 * (TABLE_WORDS - TABLE_PAD_WORDS)
    v = (_ONE << (nbits + 1)) // _PI_INT  # floor(2/pi * 2^nbits)
    words = [(v >> (32 * (nbits // 32 - 1 - i))) & 0xFFFFFFFF
             for i in range(nbits // 32)]
    return [0] * TABLE_PAD_WORDS + words


TWO_OVER_PI_WORDS = _two_over_pi_words()


def split3(frac, double):
    """Split an exact rational into three floats of the given precision."""
    rnd = float if double else f32
    a = rnd(frac)
    b = rnd(frac - Fraction(a))
    c = rnd(frac - Fraction(a) - Fraction(b))
    return a, b, c


class Ctx:
    """Builder + float type; all helpers accept Python numbers as constants."""

    def __init__(self, builder, ty, guards=None):
        self.b = builder
        self.ty = ty
        #: None: full-range trig reductions. A list: sin/cos/tan use only the fast (Cody-Waite)
        #: reduction and append an i1 "this lane needed the wide reduction" to the list.
        self.guards = guards
        if isinstance(ty, ir.VectorType):
            self.n = ty.count
            ety = ty.element
        else:
            self.n = None
            ety = ty
        if isinstance(ety, ir.DoubleType):
            self.double, self.W, self.M, self.bias, sname = True, 64, 52, 1023, "f64"
        elif isinstance(ety, ir.FloatType):
            self.double, self.W, self.M, self.bias, sname = False, 32, 23, 127, "f32"
        else:
            raise TypeError(f"math kernels need float/double (vector) types, got {ty}")
        self.ety = ety
        self.sfx = f"v{self.n}{sname}" if self.n else sname
        self.ity = self.vt(ir.IntType(self.W))
        self.i64 = self.vt(ir.IntType(64))
        self.i32 = self.vt(ir.IntType(32))
        self.module = builder.function.module
        self.tag = "d" if self.double else "f"

    # -- types and constants ------------------------------------------------
    def vt(self, t):
        return ir.VectorType(t, self.n) if self.n else t

    def rnd(self, v):
        return float(v) if self.double else f32(v)

    def c(self, v, ty=None):
        ty = ty or self.ty
        if isinstance(ty, ir.VectorType):
            return ir.Constant(ty, [v] * ty.count)
        return ir.Constant(ty, v)

    def ci(self, v, ty=None):
        return self.c(int(v), ty or self.ity)

    def _v(self, x, like=None):
        if isinstance(x, (int, float)):
            return self.c(float(x), like.type if hasattr(like, 'type') else self.ty)
        return x

    def poly_coeffs(self, name):
        return POLY[f"{name}_{self.tag}"]

    def dd(self, name):
        """(hi, lo) split of a named constant in this precision."""
        h, l = CONST[name]
        if self.double:
            return h, l
        hi = f32(h)
        return hi, f32((Fraction(h) - Fraction(hi)) + Fraction(l))

    @property
    def inf(self):
        return self.c(float("inf"))

    @property
    def nan(self):
        return self.c(float("nan"))

    # -- float arithmetic ---------------------------------------------------
    def add(self, a, b):
        return self.b.fadd(self._v(a, b), self._v(b, a))

    def sub(self, a, b):
        return self.b.fsub(self._v(a, b), self._v(b, a))

    def mul(self, a, b):
        return self.b.fmul(self._v(a, b), self._v(b, a))

    def div(self, a, b):
        return self.b.fdiv(self._v(a, b), self._v(b, a))

    def neg(self, a):
        return self.b.fneg(a)

    def intr(self, name, *args):
        assert name in ALLOWED_INTRINSICS
        like = next(a for a in args if not isinstance(a, (int, float)))
        args = [self._v(a, like) for a in args]
        ty = like.type
        if isinstance(ty, ir.VectorType):
            s = f"v{ty.count}{'f64' if isinstance(ty.element, ir.DoubleType) else 'f32'}"
        else:
            s = "f64" if isinstance(ty, ir.DoubleType) else "f32"
        fname = f"llvm.{name}.{s}"
        fn = self.module.globals.get(fname)
        if fn is None:
            fn = ir.Function(self.module, ir.FunctionType(ty, [ty] * len(args)), fname)
        return self.b.call(fn, args)

    def fma(self, a, b, c):
        return self.intr("fma", a, b, c)

    def abs(self, a):
        return self.intr("fabs", a)

    def sqrt(self, a):
        return self.intr("sqrt", a)

    def rint(self, a):
        return self.intr("rint", a)

    def floor(self, a):
        return self.intr("floor", a)

    def trunc(self, a):
        return self.intr("trunc", a)

    def copysign(self, a, b):
        return self.intr("copysign", a, b)

    def fmin(self, a, b):
        return self.intr("minnum", a, b)

    def fmax(self, a, b):
        return self.intr("maxnum", a, b)

    def clamp(self, a, lo, hi):
        """Clamp; a NaN becomes lo (never poison-producing when converted)."""
        return self.fmin(self.fmax(a, lo), hi)

    def poly(self, t, coeffs, horner=False):
        """sum(coeffs[i] * t**i) with fma, in Estrin's order: pairs c[2i] + c[2i+1]*t, then pairs
        of those with t**2, t**4, ... A Horner chain of n fmas is n fma latencies deep; this is
        about log2(n) (plus the squarings, which run beside it), so the out-of-order window of the
        CPU overlaps more loop iterations of a vectorized kernel. ``horner``: Horner's chain
        instead, without the squarings (fewer instructions and live registers: better where a
        kernel's loop is bound by instruction throughput and has other independent work)."""
        terms = [self.c(self.rnd(cf), t.type) for cf in coeffs]
        if horner:
            acc = terms[-1]
            for cf in terms[-2::-1]:
                acc = self.fma(acc, t, cf)
            return acc
        power = t
        while len(terms) > 1:
            nxt = [self.fma(terms[i + 1], power, terms[i]) for i in range(0, len(terms) - 1, 2)]
            if len(terms) % 2:
                nxt.append(terms[-1])
            terms = nxt
            if len(terms) > 1:
                power = self.mul(power, power)
        return terms[0]

    # -- comparisons and selects ----------------------------------------------
    def _cmp(self, op, a, b):
        return self.b.fcmp_ordered(op, self._v(a, b), self._v(b, a))

    def lt(self, a, b):
        return self._cmp("<", a, b)

    def le(self, a, b):
        return self._cmp("<=", a, b)

    def gt(self, a, b):
        return self._cmp(">", a, b)

    def ge(self, a, b):
        return self._cmp(">=", a, b)

    def eq(self, a, b):
        return self._cmp("==", a, b)

    def isnan(self, a):
        return self.b.fcmp_unordered("uno", a, a)

    def sel(self, c, a, b):
        like = a if not isinstance(a, (int, float)) else b
        return self.b.select(c, self._v(a, like), self._v(b, like))

    def and_(self, *xs):
        r = xs[0]
        for x in xs[1:]:
            r = self.b.and_(r, x)
        return r

    def or_(self, *xs):
        r = xs[0]
        for x in xs[1:]:
            r = self.b.or_(r, x)
        return r

    def not_(self, x):
        return self.b.not_(x)

    # -- integer views ----------------------------------------------------------
    def bits(self, a):
        return self.b.bitcast(a, self.ity)

    def from_bits(self, i):
        return self.b.bitcast(i, self.ty)

    def signbit(self, a):
        return self.b.icmp_signed("<", self.bits(a), self.ci(0))

    def to_int(self, a, ty=None):
        return self.b.fptosi(a, ty or self.ity)

    def to_float(self, i):
        return self.b.sitofp(i, self.ty)

    @property
    def magic(self):
        """1.5 * 2**M: adding it to |t| < 2**(M-1) rounds t to an integer kept in the low bits."""
        return 1.5 * 2.0 ** self.M

    def round_magic(self, t, offset: int = 0):
        """(k, n) for t + magic (a sum that already holds the magic number, e.g. from an fma):
        k = rint(t) as a float and n the same integer plus ``offset`` in the int type of the width
        (the offset costs nothing: it is part of the subtracted constant); no fptosi (a <4 x double>
        -> <4 x i64> conversion is scalar code on AVX2). Garbage for |t| >= 2**(M-1)."""
        k = self.sub(t, self.magic)
        n = self.b.sub(self.bits(t), self.ci(struct.unpack("<Q" if self.double else "<I", struct.pack(
            "<d" if self.double else "<f", self.magic))[0] - offset))
        return k, n

    def pow2i(self, n):
        """2**n for an integer vector n with 1-bias <= n <= bias (normal range)."""
        e = self.b.add(n, self.ci(self.bias))
        return self.from_bits(self.b.shl(e, self.ci(self.M)))

    def ldexp(self, y, k):
        """y * 2**k, k a float holding an integer; y in [0.5, 2).

        Correct for results that overflow (-> inf) or land in the subnormal
        range (one rounding, at the last multiply).
        """
        lo, hi = -(self.bias + self.M + 2), self.bias + 1
        n = self.round_magic(self.add(self.clamp(k, lo, hi), self.magic))[1]
        negn = self.b.icmp_signed("<", n, self.ci(0))
        n1 = self.b.select(negn, self.b.add(n, self.ci(self.M + 2)),
                           self.b.sub(n, self.ci(1)))
        n1 = self.b.select(self.b.icmp_signed("<", n1, self.ci(1 - self.bias)),
                           self.ci(1 - self.bias), n1)
        s1 = self.pow2i(n1)
        s2 = self.sel(negn, 2.0 ** -(self.M + 2), 2.0)
        return self.mul(self.mul(y, s1), s2)

    def scale2(self, y, n, plus_one=False, biased=False):
        """y * 2**n for an integer vector n in [2 - 2*bias, 2*bias], y normal: two exact power-of-two
        factors, so a result in the subnormal range is rounded once (at the last multiply) and one
        beyond the range becomes inf. ``plus_one``: (1 + y) * 2**n, the 1 added inside the first
        product's fma (the same rounding as adding it first: that factor is a power of two).
        ``biased``: n is given as n + 2*bias (see round_magic's offset); the two biased exponents
        are then u >> 1 and u - (u >> 1), two integer ops fewer than adding the bias to each."""
        if biased:
            e1 = self.b.ashr(n, self.ci(1))
            e2 = self.b.sub(n, e1)
            s1 = self.from_bits(self.b.shl(e1, self.ci(self.M)))
            s2 = self.from_bits(self.b.shl(e2, self.ci(self.M)))
        else:
            n1 = self.b.ashr(n, self.ci(1))
            s1 = self.pow2i(n1)
            s2 = self.pow2i(self.b.sub(n, n1))
        first = self.fma(y, s1, s1) if plus_one else self.mul(y, s1)
        return self.mul(first, s2)

    # -- double-word helpers -------------------------------------------------
    def two_sum(self, a, b):
        s = self.add(a, b)
        bb = self.sub(s, a)
        err = self.add(self.sub(a, self.sub(s, bb)), self.sub(b, bb))
        return s, err

    def fast_two_sum(self, a, b):
        """|a| >= |b| (or a == 0)."""
        s = self.add(a, b)
        return s, self.sub(b, self.sub(s, a))

    def two_prod(self, a, b):
        p = self.mul(a, b)
        return p, self.fma(a, b, self.neg(p))

    def dd_mul_const(self, h, l, name):
        """(h + l) * C for a named constant C, returned as (hi, lo)."""
        ch, cl = self.dd(name)
        p, e = self.two_prod(h, self.c(ch, h.type))
        e = self.add(e, self.fma(l, ch, self.mul(h, cl)))
        return self.fast_two_sum(p, e)
