"""Vectorizable transcendental functions emitted as LLVM IR with llvmlite.

``emit_math(builder, name, args)`` emits straight-line IR (range reduction +
polynomial, ``select`` instead of branches) computing ``name(*args)`` for
``float``/``double`` scalars or vectors of them.  The only calls emitted are
to the LLVM intrinsics ``llvm.{fabs,sqrt,fma,floor,ceil,trunc,rint,copysign,
minnum,maxnum}``, which x86 and NVPTX both select natively, so the code
vectorizes on CPUs and compiles for GPUs.  sin/cos/tan keep a constant
global table of 2/pi bits (Payne-Hanek reduction of huge arguments).

Special values follow C99 Annex F / the Array API standard.  Accuracy
bounds (max ULP error, measured) are listed in ``docs/accuracy.rst``.

The implementation is split over ``math_core`` (emission helpers),
``math_explog`` (exp/log/pow/hyperbolic/hypot/logaddexp/cbrt),
``math_trig`` (sin/cos/tan/atan2 family), ``math_f32`` (binary32 versions of
the log family, tanh, asin/acos and the inverse hyperbolic functions in plain
single precision) and ``math_coeffs`` (fitted polynomial coefficients and the
script that regenerates them).
"""

from llvmlite import ir

from . import math_explog as _el
from . import math_f32 as _f32
from . import math_trig as _tr
from .math_core import ALLOWED_INTRINSICS, Ctx

__all__ = ["MATH_FUNCS", "MATH_ULP_BOUNDS", "ALLOWED_INTRINSICS", "emit_math"]

_EMITTERS = {
    "exp": _el.emit_exp,
    "expm1": _el.emit_expm1,
    "exp2": _el.emit_exp2,
    "log": _el.emit_log,
    "log1p": _el.emit_log1p,
    "log2": _el.emit_log2,
    "log10": _el.emit_log10,
    "sin": _tr.emit_sin,
    "cos": _tr.emit_cos,
    "tan": _tr.emit_tan,
    "asin": _tr.emit_asin,
    "acos": _tr.emit_acos,
    "atan": _tr.emit_atan,
    "atan2": _tr.emit_atan2,
    "sinh": _el.emit_sinh,
    "cosh": _el.emit_cosh,
    "tanh": _el.emit_tanh,
    "asinh": _el.emit_asinh,
    "acosh": _el.emit_acosh,
    "atanh": _el.emit_atanh,
    "pow": _el.emit_pow,
    "hypot": _el.emit_hypot,
    "logaddexp": _el.emit_logaddexp,
    "cbrt": _el.emit_cbrt,
}

#: name -> arity of every function :func:`emit_math` knows.
MATH_FUNCS = {name: (2 if name in ("atan2", "pow", "hypot", "logaddexp") else 1)
              for name in _EMITTERS}

#: documented max error in ULP (same for float32 and float64), checked by the tests.
MATH_ULP_BOUNDS = {name: 4.0 for name in _EMITTERS}
MATH_ULP_BOUNDS.update({name: 2.0 for name in (
    "exp", "expm1", "exp2", "log", "log1p", "log2", "log10", "sin", "cos", "tanh")})


def _float_kind(ty):
    t = ty.element if isinstance(ty, ir.VectorType) else ty
    return isinstance(t, (ir.FloatType, ir.DoubleType))


def emit_math(builder: ir.IRBuilder, name: str, args: list, guards: list | None = None) -> ir.Value:
    """Emit IR computing name(*args); args share one float/double scalar or vector type.

    With a ``guards`` list, sin/cos/tan skip the (slow) Payne-Hanek reduction and append an i1
    value that is true where an argument needed it: the caller must then recompute without guards.
    """
    try:
        emit = _EMITTERS[name]
    except KeyError:
        raise ValueError(f"unknown math function {name!r}") from None
    args = list(args)
    if len(args) != MATH_FUNCS[name]:
        raise TypeError(f"{name} takes {MATH_FUNCS[name]} argument(s), got {len(args)}")
    ty = args[0].type
    if not _float_kind(ty) or any(a.type != ty for a in args):
        raise TypeError(f"{name}: arguments must share one float/double (vector) type")
    cx = Ctx(builder, ty, guards)
    if not cx.double:
        emit = _f32.F32_EMITTERS.get(name, emit)
    return emit(cx, *args)
