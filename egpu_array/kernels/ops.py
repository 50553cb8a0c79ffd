"""Scalar lowering of every elementwise op: the op table.

``OPS[name]`` is an :class:`Op`: its arity, how its result dtype follows from its (already
promoted) input dtype, and ``lower(b, dtype, *values)``, which emits the IR for one element.
Complex values travel as ``(re, im)`` pairs. Integer ops never emit undefined behaviour (division
by zero, overflowing shifts): the results are NumPy's. Transcendentals use ``kernels.math`` when it
provides the function, else LLVM intrinsics / libm (host target only).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from llvmlite import ir

from . import complex_ops as C
from .irb import I1, const, extern, intrinsic, select
from .math import MATH_FUNCS, emit_math

__all__ = ["Op", "OPS", "LIBM_UNARY"]


@dataclass(frozen=True)
class Op:
    """One elementwise op: arity, result rule ("same", "bool", "real") and its lowering."""
    arity: int
    result: str
    lower: Callable


def _is_signed(dt) -> bool:
    return dt.kind == "i"


def _fcmp_or_icmp(pred_f: str, pred_s: str, pred_u: str):
    def lower(b, dt, x, y):
        if dt.kind == "c":
            if pred_f == "==":
                return b.and_(b.fcmp_ordered("==", x[0], y[0]), b.fcmp_ordered("==", x[1], y[1]))
            return b.or_(b.fcmp_unordered("!=", x[0], y[0]), b.fcmp_unordered("!=", x[1], y[1]))
        if dt.kind == "f":
            return (b.fcmp_unordered if pred_f == "!=" else b.fcmp_ordered)(pred_f, x, y)
        if dt.kind == "i":
            return b.icmp_signed(pred_s, x, y)
        return b.icmp_unsigned(pred_u, x, y)
    return lower


def _arith(int_op: str, float_op: str, complex_fn=None):
    def lower(b, dt, x, y):
        if dt.kind == "c":
            return complex_fn(b, x, y)
        if dt.kind == "f":
            return getattr(b, float_op)(x, y)
        return getattr(b, int_op)(x, y)
    return lower


def _bitwise(op: str):
    return lambda b, dt, x, y: getattr(b, op)(x, y)


# ---- integer division and remainder with NumPy's results (0 for division by zero) ----------

def _int_divmod(b, dt, x, y):
    """Floor quotient and remainder (sign of the divisor) of integers, never trapping."""
    ty = x.type
    zero, one = const(ty, 0), const(ty, 1)
    ybad = b.icmp_signed("==", y, zero)
    if _is_signed(dt):
        ovf = b.and_(b.icmp_signed("==", x, const(ty, -(1 << (ty.width - 1)))),
                     b.icmp_signed("==", y, const(ty, -1)))
        ysafe = b.select(b.or_(ybad, ovf), one, y)
        q = b.sdiv(x, ysafe)
        r = b.srem(x, ysafe)
        adjust = b.and_(b.icmp_signed("!=", r, zero),
                        b.icmp_signed("!=", b.icmp_signed("<", r, zero), b.icmp_signed("<", y, zero)))
        q = b.select(adjust, b.sub(q, one), q)
        r = b.select(adjust, b.add(r, y), r)
        r = b.select(ovf, zero, r)  # INT_MIN % -1 == 0; INT_MIN // -1 wraps to INT_MIN as in NumPy
    else:
        ysafe = b.select(ybad, one, y)
        q, r = b.udiv(x, ysafe), b.urem(x, ysafe)
    return b.select(ybad, zero, q), b.select(ybad, zero, r)


def _float_divmod(b, x, y):
    """NumPy's npy_divmod for floats: (floor quotient, remainder with the divisor's sign)."""
    ty = x.type
    zero = const(ty, 0.0)
    mod = b.frem(x, y)
    div = b.fdiv(b.fsub(x, mod), y)
    fix = b.and_(b.fcmp_unordered("!=", mod, zero),
                 b.icmp_unsigned("!=", b.fcmp_ordered("<", y, zero), b.fcmp_ordered("<", mod, zero)))
    mod = b.select(fix, b.fadd(mod, y), b.select(b.fcmp_ordered("==", mod, zero),
                                                 intrinsic(b, "llvm.copysign", ty, zero, y), mod))
    div = b.select(fix, b.fsub(div, const(ty, 1.0)), div)
    fl = intrinsic(b, "llvm.floor", ty, div)
    fl = b.select(b.fcmp_ordered(">", b.fsub(div, fl), const(ty, 0.5)), b.fadd(fl, const(ty, 1.0)), fl)
    quot = b.select(b.fcmp_ordered("==", div, zero), intrinsic(b, "llvm.copysign", ty, zero, b.fdiv(x, y)), fl)
    yzero = b.fcmp_ordered("==", y, zero)
    quot = b.select(yzero, b.fdiv(x, y), quot)
    # x/inf-style cases: a finite x with an infinite y keeps NumPy's answer from fmod; an infinite x -> nan
    return quot, mod


def _floor_divide(b, dt, x, y):
    if dt.kind == "f":
        # NumPy's divmod, except where an operand is infinite: the standard's floor(x1 / x2)
        # (inf // 2 -> inf, 1 // -inf -> -0) where NumPy pairs // with % (nan, -1).
        q = _float_divmod(b, x, y)[0]
        either_inf = b.or_(_isinf(b, x), _isinf(b, y))
        return b.select(either_inf, intrinsic(b, "llvm.floor", x.type, b.fdiv(x, y)), q)
    return _int_divmod(b, dt, x, y)[0]


def _remainder(b, dt, x, y):
    if dt.kind == "f":
        return _float_divmod(b, x, y)[1]
    return _int_divmod(b, dt, x, y)[1]


def _shift(left: bool):
    def lower(b, dt, x, y):
        ty = x.type
        width = const(ty, ty.width)
        big = b.icmp_unsigned(">=", y, width)  # also negative counts (huge as unsigned)
        ysafe = b.select(big, const(ty, 0), y)
        if left:
            return b.select(big, const(ty, 0), b.shl(x, ysafe))
        if _is_signed(dt):
            fill = b.select(b.icmp_signed("<", x, const(ty, 0)), const(ty, -1), const(ty, 0))
            return b.select(big, fill, b.ashr(x, ysafe))
        return b.select(big, const(ty, 0), b.lshr(x, ysafe))
    return lower


def _int_pow(b, dt, x, e):
    """x**e for integers by square-and-multiply in a small loop (wraps like NumPy; e < 0 -> 0/1/-1).

    A loop rather than straight-line code: 64 unrolled steps made LLVM's vectorizer take seconds
    per kernel, and integer powers are never the hot part of a fused chain.
    """
    ty = x.type
    one, zero = const(ty, 1), const(ty, 0)
    pre = b.block
    head = b.append_basic_block("ipow.head")
    body = b.append_basic_block("ipow.body")
    done = b.append_basic_block("ipow.done")
    b.branch(head)
    b.position_at_end(head)
    result = b.phi(ty, name="ipow.r")
    base = b.phi(ty, name="ipow.b")
    exp = b.phi(ty, name="ipow.e")
    result.add_incoming(one, pre)
    base.add_incoming(x, pre)
    exp.add_incoming(e, pre)
    b.cbranch(b.icmp_unsigned("!=", exp, zero), body, done)
    b.position_at_end(body)
    bit = b.trunc(exp, I1)
    nres = b.select(bit, b.mul(result, base), result)
    nbase = b.mul(base, base)
    nexp = b.lshr(exp, one)
    result.add_incoming(nres, body)
    base.add_incoming(nbase, body)
    exp.add_incoming(nexp, body)
    b.branch(head)
    b.position_at_end(done)
    out = result
    if _is_signed(dt):
        neg = b.icmp_signed("<", e, zero)
        odd = b.trunc(e, I1)
        minus_one = b.icmp_signed("==", x, const(ty, -1))
        neg_val = b.select(b.icmp_signed("==", x, one), one,
                           b.select(minus_one, b.select(odd, const(ty, -1), one), zero))
        out = b.select(neg, neg_val, out)
    return out


def _pow(b, dt, x, y):
    if dt.kind == "c":
        return C.cpow(b, x, y)
    if dt.kind == "f":
        return real_math(b, "pow", x, y)
    return _int_pow(b, dt, x, y)


# ---- unary -------------------------------------------------------------------------------

def _abs(b, dt, x):
    if dt.kind == "c":
        return C.cabs(b, x)
    if dt.kind == "f":
        return intrinsic(b, "llvm.fabs", x.type, x)
    if dt.kind == "u" or dt.kind == "b":
        return x
    return b.select(b.icmp_signed("<", x, const(x.type, 0)), b.neg(x), x)


def _negative(b, dt, x):
    if dt.kind == "c":
        return (b.fneg(x[0]), b.fneg(x[1]))
    return b.fneg(x) if dt.kind == "f" else b.neg(x)


def _sign(b, dt, x):
    if dt.kind == "c":
        return C.csign(b, x)
    ty = x.type
    if dt.kind == "f":
        one, zero = const(ty, 1.0), const(ty, 0.0)
        pos = b.fcmp_ordered(">", x, zero)
        neg = b.fcmp_ordered("<", x, zero)
        return b.select(pos, one, b.select(neg, b.fneg(one), b.select(b.fcmp_ordered("==", x, zero), zero, x)))
    if dt.kind == "u":
        return b.zext(b.icmp_unsigned("!=", x, const(ty, 0)), ty)
    return b.sub(b.zext(b.icmp_signed(">", x, const(ty, 0)), ty), b.zext(b.icmp_signed("<", x, const(ty, 0)), ty))


def _rounding(intr: str):
    def lower(b, dt, x):
        if dt.kind == "c":
            return (intrinsic(b, intr, x[0].type, x[0]), intrinsic(b, intr, x[1].type, x[1]))
        if dt.kind == "f":
            return intrinsic(b, intr, x.type, x)
        return x
    return lower


def _float_pred(real_fn, complex_fn, int_value: bool):
    def lower(b, dt, x):
        if dt.kind == "c":
            return complex_fn(b, real_fn(b, x[0]), real_fn(b, x[1]))
        if dt.kind == "f":
            return real_fn(b, x)
        return ir.Constant(I1, int(int_value))
    return lower


def _isnan(b, x):
    return b.fcmp_unordered("uno", x, x)


def _isinf(b, x):
    return b.fcmp_ordered("==", intrinsic(b, "llvm.fabs", x.type, x), const(x.type, float("inf")))


def _isfinite(b, x):
    return b.fcmp_ordered("<", intrinsic(b, "llvm.fabs", x.type, x), const(x.type, float("inf")))


def _signbit(b, dt, x):
    ity = ir.IntType(32 if x.type == ir.FloatType() else 64)
    bits = b.bitcast(x, ity)
    return b.icmp_signed("<", bits, const(ity, 0))


# libm / intrinsic names of real transcendental functions on the host: name -> (intrinsic or None, libm)
LIBM_UNARY = {
    "exp": ("llvm.exp", "exp"), "log": ("llvm.log", "log"), "log2": ("llvm.log2", "log2"),
    "log10": ("llvm.log10", "log10"), "sin": ("llvm.sin", "sin"), "cos": ("llvm.cos", "cos"),
    "sqrt": ("llvm.sqrt", "sqrt"), "tan": (None, "tan"), "expm1": (None, "expm1"),
    "log1p": (None, "log1p"), "asin": (None, "asin"), "acos": (None, "acos"), "atan": (None, "atan"),
    "sinh": (None, "sinh"), "cosh": (None, "cosh"), "tanh": (None, "tanh"), "asinh": (None, "asinh"),
    "acosh": (None, "acosh"), "atanh": (None, "atanh"),
}


def real_math(b, name: str, *args):
    """A real transcendental function of float/double values.

    Functions of ``kernels.math`` are emitted inline as branch-free IR (so fused loops vectorize,
    and NVPTX never sees a libm call); ``sqrt`` is the native intrinsic; anything else calls libm.
    """
    ty = args[0].type
    if name in MATH_FUNCS and name != "sqrt":
        # a generator that can retry sets ``b.trig_guards`` (a list) to get the fast trig variant
        return emit_math(b, name, list(args), getattr(b, "trig_guards", None))
    if len(args) == 1:
        intr, libm = LIBM_UNARY[name]
        if intr is not None:
            return intrinsic(b, intr, ty, *args)
    else:
        libm = name
    suffix = "f" if ty == ir.FloatType() else ""
    return extern(b, libm + suffix, ty, [ty] * len(args), *args)


def _transcendental(name: str):
    def lower(b, dt, x):
        if dt.kind == "c":
            return C.cmath(b, name, x)
        return real_math(b, name, x)
    return lower


def _binary_math(name: str):
    return lambda b, dt, x, y: real_math(b, name, x, y)


def _logaddexp(b, dt, x, y):
    return emit_math(b, "logaddexp", [x, y])


def _minmax(intr: str, pred: str):
    def lower(b, dt, x, y):
        if dt.kind == "f":
            # NumPy's rule: x1 if x1 is NaN or x1 > x2 (< for minimum), else x2. NaNs propagate and
            # equal zeros give x2, as NumPy does (llvm.maximum would order -0 < +0 instead).
            keep = b.or_(_isnan(b, x), b.fcmp_ordered(pred, x, y))
            return b.select(keep, x, y)
        cmp = b.icmp_signed if dt.kind == "i" else b.icmp_unsigned
        return b.select(cmp(pred, x, y), x, y)
    return lower


def _square(b, dt, x):
    if dt.kind == "c":
        return C.cmul(b, x, x)
    return b.fmul(x, x) if dt.kind == "f" else b.mul(x, x)


def _reciprocal(b, dt, x):
    if dt.kind == "c":
        return C.creciprocal(b, x)
    return b.fdiv(const(x.type, 1.0), x)


def _copysign(b, dt, x, y):
    return intrinsic(b, "llvm.copysign", x.type, x, y)


def _nextafter(b, dt, x, y):
    return real_math(b, "nextafter", x, y)


OPS: dict[str, Op] = {
    # arithmetic
    "add": Op(2, "same", _arith("add", "fadd", C.cadd)),
    "subtract": Op(2, "same", _arith("sub", "fsub", C.csub)),
    "multiply": Op(2, "same", _arith("mul", "fmul", C.cmul)),
    "divide": Op(2, "same", _arith("sdiv", "fdiv", C.cdiv)),
    "floor_divide": Op(2, "same", _floor_divide),
    "remainder": Op(2, "same", _remainder),
    "pow": Op(2, "same", _pow),
    "negative": Op(1, "same", _negative),
    "positive": Op(1, "same", lambda b, dt, x: x),
    "abs": Op(1, "real", _abs),
    "sign": Op(1, "same", _sign),
    "square": Op(1, "same", _square),
    "reciprocal": Op(1, "same", _reciprocal),
    "maximum": Op(2, "same", _minmax("llvm.maximum", ">")),
    "minimum": Op(2, "same", _minmax("llvm.minimum", "<")),
    "copysign": Op(2, "same", _copysign),
    "nextafter": Op(2, "same", _nextafter),
    "hypot": Op(2, "same", _binary_math("hypot")),
    "atan2": Op(2, "same", _binary_math("atan2")),
    "logaddexp": Op(2, "same", _logaddexp),
    # comparisons
    "equal": Op(2, "bool", _fcmp_or_icmp("==", "==", "==")),
    "not_equal": Op(2, "bool", _fcmp_or_icmp("!=", "!=", "!=")),
    "less": Op(2, "bool", _fcmp_or_icmp("<", "<", "<")),
    "less_equal": Op(2, "bool", _fcmp_or_icmp("<=", "<=", "<=")),
    "greater": Op(2, "bool", _fcmp_or_icmp(">", ">", ">")),
    "greater_equal": Op(2, "bool", _fcmp_or_icmp(">=", ">=", ">=")),
    # logical and bitwise
    "logical_and": Op(2, "same", _bitwise("and_")),
    "logical_or": Op(2, "same", _bitwise("or_")),
    "logical_xor": Op(2, "same", _bitwise("xor")),
    "logical_not": Op(1, "same", lambda b, dt, x: b.not_(x)),
    "bitwise_and": Op(2, "same", _bitwise("and_")),
    "bitwise_or": Op(2, "same", _bitwise("or_")),
    "bitwise_xor": Op(2, "same", _bitwise("xor")),
    "bitwise_invert": Op(1, "same", lambda b, dt, x: b.not_(x)),
    "bitwise_left_shift": Op(2, "same", _shift(True)),
    "bitwise_right_shift": Op(2, "same", _shift(False)),
    # rounding
    "ceil": Op(1, "same", _rounding("llvm.ceil")),
    "floor": Op(1, "same", _rounding("llvm.floor")),
    "trunc": Op(1, "same", _rounding("llvm.trunc")),
    "round": Op(1, "same", _rounding("llvm.roundeven")),
    # classification
    "isnan": Op(1, "bool", _float_pred(_isnan, lambda b, r, i: b.or_(r, i), False)),
    "isinf": Op(1, "bool", _float_pred(_isinf, lambda b, r, i: b.or_(r, i), False)),
    "isfinite": Op(1, "bool", _float_pred(_isfinite, lambda b, r, i: b.and_(r, i), True)),
    "signbit": Op(1, "bool", _signbit),
    # complex parts
    "real": Op(1, "real", lambda b, dt, x: x[0] if dt.kind == "c" else x),
    "imag": Op(1, "real", lambda b, dt, x: x[1] if dt.kind == "c" else const(x.type, 0.0)),
    "conj": Op(1, "same", lambda b, dt, x: (x[0], b.fneg(x[1])) if dt.kind == "c" else x),
    # selection
    "where": Op(3, "same", lambda b, dt, c, x, y: select(b, c, x, y)),
}
OPS.update({name: Op(1, "same", _transcendental(name)) for name in LIBM_UNARY})


# ---- casts ---------------------------------------------------------------------------------

def cast(b: ir.IRBuilder, src, dst, x):
    """Convert one value of dtype ``src`` to dtype ``dst`` (NumPy's conversions; float->int saturates)."""
    from .irb import reg_type
    if src is dst:
        return x
    if src.kind == "c":
        if dst.kind == "c":
            return tuple(cast(b, src.real_dtype, dst.real_dtype, v) for v in x)
        if dst.kind == "b":
            return b.or_(cast(b, src.real_dtype, dst, x[0]), cast(b, src.real_dtype, dst, x[1]))
        return cast(b, src.real_dtype, dst, x[0])
    if dst.kind == "c":
        re = cast(b, src, dst.real_dtype, x)
        return (re, const(re.type, 0.0))
    to = reg_type(dst)
    if dst.kind == "b":
        if src.kind == "f":
            return b.fcmp_unordered("!=", x, const(x.type, 0.0))
        return b.icmp_unsigned("!=", x, const(x.type, 0))
    if src.kind == "b":
        return b.uitofp(x, to) if dst.kind == "f" else b.zext(x, to)
    if src.kind == "f":
        if dst.kind == "f":
            return b.fpext(x, to) if dst.bits > src.bits else b.fptrunc(x, to)
        # llvm.fpto[su]i.sat.<int>.<float>: no undefined behaviour for nan/inf/out-of-range values
        # (llvmlite's declare_intrinsic does not know these, so they are declared by their mangled name)
        sat = "llvm.fptosi.sat" if dst.kind == "i" else "llvm.fptoui.sat"
        name = f"{sat}.i{to.width}.{'f32' if x.type == ir.FloatType() else 'f64'}"
        return extern(b, name, to, [x.type], x)
    # integer source
    if dst.kind == "f":
        return b.sitofp(x, to) if src.kind == "i" else b.uitofp(x, to)
    if dst.bits < src.bits:
        return b.trunc(x, to)
    if dst.bits > src.bits:
        return b.sext(x, to) if src.kind == "i" else b.zext(x, to)
    return x
