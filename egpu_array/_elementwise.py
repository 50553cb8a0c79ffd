"""Elementwise functions of the standard (section "Element-wise Functions").

Each function is one line in a table: its name, the dtype category it accepts and how its result
dtype follows. The helpers check categories and devices, promote dtypes (Python scalars by the
standard's rules), and return an Array over a new lazy node. Nothing is computed here.
"""
from __future__ import annotations

import math

from . import _dtypes as dt
from ._array import _OPERANDS, Array, numpy_operand, same_device
from ._graph import LazyNode
from ._shapes import broadcast_shapes
from .kernels.ops import OPS

_SCALARS = (bool, int, float, complex)


def _check_array(func: str, x) -> Array:
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an egpu_array.Array, got {type(x).__name__}")
    return x


def cast_node(node: LazyNode, dtype) -> LazyNode:
    """``node`` converted to ``dtype`` (itself when already of that dtype)."""
    if node.dtype is dtype:
        return node
    if node.op == "const":
        value = node.arg
        if dtype.kind == "b":
            value = bool(value)
        elif dtype.kind in "iu":
            value = int(value.real if isinstance(value, complex) else value)
        elif dtype.kind == "f":
            value = float(value.real if isinstance(value, complex) else value)
        else:
            value = complex(value)
        return LazyNode("const", (), dtype, node.shape, value, node.device)
    return LazyNode("cast", (node,), dtype, node.shape, None, node.device)


def const_node(value, dtype, device, shape=()) -> LazyNode:
    """A scalar broadcast to ``shape``."""
    return LazyNode("const", (), dtype, tuple(shape), value, device)


def _check_scalar_range(func: str, value, dtype) -> None:
    if dtype.kind in "iu" and not isinstance(value, bool):
        import numpy as np
        info = np.iinfo(dtype.np)
        if not info.min <= value <= info.max:
            raise OverflowError(f"{func}: Python int {value} is out of bounds for {dtype}")


def operands(func: str, *xs, category: str = "any"):
    """Promote arrays and Python scalars (NumPy scalars count as the Python scalars of their
    values, :func:`numpy_operand`) to one dtype; returns (nodes, dtype, shape, device)."""
    xs = tuple(x if isinstance(x, _OPERANDS) else numpy_operand(func, x) for x in xs)
    arrays = [x for x in xs if isinstance(x, Array)]
    if not arrays:
        raise TypeError(f"{func}: at least one argument must be an egpu_array.Array, got "
                        f"{', '.join(type(x).__name__ for x in xs)}")
    device = same_device(func, arrays)
    scalars = []
    for x in xs:
        if not isinstance(x, Array):
            if not isinstance(x, _SCALARS):
                raise TypeError(f"{func}: expected an Array or a Python scalar, got {type(x).__name__}")
            scalars.append(x)
    dtype = dt.result_type_of([a.dtype for a in arrays], scalars, func)
    dt.check_category(func, category, dtype)
    nodes = []
    for x in xs:
        if isinstance(x, Array):
            nodes.append(cast_node(x._node, dtype))
        else:
            _check_scalar_range(func, x, dtype)
            nodes.append(cast_node(const_node(x, dt.dtype_of_scalar(x), device), dtype))
    shape = broadcast_shapes(*(n.shape for n in nodes), func=func)
    return nodes, dtype, shape, device


def _result_dtype(op: str, dtype):
    rule = OPS[op].result
    if rule == "bool":
        return dt.bool
    if rule == "real":
        return dtype.real_dtype
    return dtype


def apply(op: str, *xs, category: str = "any", compute=None) -> Array:
    """``op`` over arrays/scalars ``xs`` as a new lazy Array; ``compute`` forces the compute dtype."""
    nodes, dtype, shape, device = operands(op, *xs, category=category)
    if compute is not None and compute is not dtype:
        nodes = [cast_node(n, compute) for n in nodes]
        dtype = compute
    return Array._new(LazyNode(op, tuple(nodes), _result_dtype(op, dtype), shape, None, device))


def _unary(name: str, category: str, doc: str):
    def f(x, /):
        _check_array(name, x)
        return apply(name, x, category=category)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{doc}\n\nAccepts {category} dtypes; computed lazily, fused with its neighbours."
    return f


def _binary(name: str, category: str, doc: str):
    def f(x1, x2, /):
        return apply(name, x1, x2, category=category)
    f.__name__ = f.__qualname__ = name
    f.__doc__ = f"{doc}\n\nAccepts {category} dtypes (and Python scalars); computed lazily."
    return f


abs = _unary("abs", "numeric", "Absolute value |x|; complex input gives its real dtype.")
acos = _unary("acos", "floating-point", "Inverse cosine.")
acosh = _unary("acosh", "floating-point", "Inverse hyperbolic cosine.")
asin = _unary("asin", "floating-point", "Inverse sine.")
asinh = _unary("asinh", "floating-point", "Inverse hyperbolic sine.")
atan = _unary("atan", "floating-point", "Inverse tangent.")
atanh = _unary("atanh", "floating-point", "Inverse hyperbolic tangent.")
bitwise_invert = _unary("bitwise_invert", "integer or boolean", "Bitwise NOT.")
ceil = _unary("ceil", "real numeric", "Round toward +infinity.")
conj = _unary("conj", "numeric", "Complex conjugate.")
cos = _unary("cos", "floating-point", "Cosine.")
cosh = _unary("cosh", "floating-point", "Hyperbolic cosine.")
exp = _unary("exp", "floating-point", "e**x.")
expm1 = _unary("expm1", "floating-point", "e**x - 1, accurate near 0.")
floor = _unary("floor", "real numeric", "Round toward -infinity.")
imag = _unary("imag", "complex floating-point", "Imaginary part.")
isfinite = _unary("isfinite", "numeric", "True where finite.")
isinf = _unary("isinf", "numeric", "True where infinite.")
isnan = _unary("isnan", "numeric", "True where NaN.")
log = _unary("log", "floating-point", "Natural logarithm.")
log1p = _unary("log1p", "floating-point", "log(1 + x), accurate near 0.")
log2 = _unary("log2", "floating-point", "Base-2 logarithm.")
log10 = _unary("log10", "floating-point", "Base-10 logarithm.")
negative = _unary("negative", "numeric", "-x.")
positive = _unary("positive", "numeric", "+x.")
real = _unary("real", "numeric", "Real part (the value itself for real dtypes).")
reciprocal = _unary("reciprocal", "floating-point", "1 / x.")
round = _unary("round", "numeric", "Round half to even.")
sign = _unary("sign", "numeric", "Sign: -1, 0, +1 (x/|x| for complex).")
signbit = _unary("signbit", "real floating-point", "True where the sign bit is set.")
sin = _unary("sin", "floating-point", "Sine.")
sinh = _unary("sinh", "floating-point", "Hyperbolic sine.")
sqrt = _unary("sqrt", "floating-point", "Square root.")
square = _unary("square", "numeric", "x * x.")
tan = _unary("tan", "floating-point", "Tangent.")
tanh = _unary("tanh", "floating-point", "Hyperbolic tangent.")
trunc = _unary("trunc", "real numeric", "Round toward zero.")

add = _binary("add", "numeric", "x1 + x2.")
atan2 = _binary("atan2", "real floating-point", "Quadrant-aware inverse tangent of x1/x2.")
bitwise_and = _binary("bitwise_and", "integer or boolean", "Bitwise AND.")
bitwise_left_shift = _binary("bitwise_left_shift", "integer", "x1 << x2.")
bitwise_or = _binary("bitwise_or", "integer or boolean", "Bitwise OR.")
bitwise_right_shift = _binary("bitwise_right_shift", "integer", "x1 >> x2.")
bitwise_xor = _binary("bitwise_xor", "integer or boolean", "Bitwise XOR.")
copysign = _binary("copysign", "real floating-point", "|x1| with the sign of x2.")
equal = _binary("equal", "any", "x1 == x2.")
floor_divide = _binary("floor_divide", "real numeric", "floor(x1 / x2).")
greater = _binary("greater", "real numeric", "x1 > x2.")
greater_equal = _binary("greater_equal", "real numeric", "x1 >= x2.")
hypot = _binary("hypot", "real floating-point", "sqrt(x1**2 + x2**2) without overflow.")
less = _binary("less", "real numeric", "x1 < x2.")
less_equal = _binary("less_equal", "real numeric", "x1 <= x2.")
logaddexp = _binary("logaddexp", "real floating-point", "log(exp(x1) + exp(x2)) without overflow.")


def _truth(func: str, x):
    """An operand of a logical function as bool: numeric arrays and Python numbers by their
    truth (nonzero, NaN included), as NumPy takes them (the standard asks for bool and leaves
    the rest open; scikit-learn's roc_curve calls ``logical_or`` on float arrays)."""
    if isinstance(x, Array) and x.dtype is not dt.bool:
        dt.check_category(func, "numeric", x.dtype)
        return Array._new(cast_node(x._node, dt.bool))
    if isinstance(x, (int, float, complex)) and not isinstance(x, bool):
        return bool(x)
    return x


def _logical(name: str, doc: str, arity: int):
    if arity == 1:
        def f(x, /):
            _check_array(name, x)
            return apply(name, _truth(name, x), category="bool")
    else:
        def f(x1, x2, /):
            return apply(name, _truth(name, x1), _truth(name, x2), category="bool")
    f.__name__ = f.__qualname__ = name
    f.__doc__ = (f"{doc}\n\nBool operands (numeric ones count by their truth, as in NumPy: nonzero, NaN "
                 "included); computed lazily.")
    return f


logical_and = _logical("logical_and", "Logical AND.", 2)
logical_or = _logical("logical_or", "Logical OR.", 2)
logical_xor = _logical("logical_xor", "Logical XOR.", 2)
logical_not = _logical("logical_not", "Logical NOT.", 1)
maximum = _binary("maximum", "real numeric", "Elementwise maximum (NaN propagates).")
minimum = _binary("minimum", "real numeric", "Elementwise minimum (NaN propagates).")
multiply = _binary("multiply", "numeric", "x1 * x2.")
nextafter = _binary("nextafter", "real floating-point", "The next float after x1 toward x2.")
not_equal = _binary("not_equal", "any", "x1 != x2.")


#: ``x ** c`` for a Python exponent ``c`` of these values, on a real floating-point array (1 and
#: 2: and integer arrays), as the cheaper op that gives pow's exact result, as NumPy's
#: fast_scalar_power does (the generic pow evaluates log and exp in double precision, 5-50x
#: slower). 0.5 is sqrt made to follow pow's special cases: pow(-0, 0.5) = +0, pow(-inf, 0.5) = +inf.
POW_BY_SCALAR = {2: "square", 1: "positive", -1: "reciprocal", 0.5: "sqrt"}


def pow(x1, x2, /) -> Array:
    """x1 ** x2.

    Accepts numeric dtypes (and Python scalars); computed lazily. A Python exponent of 2, 1, -1
    or 0.5 on a real floating-point array (2 and 1 on an integer array) becomes square, a copy,
    reciprocal or sqrt, with pow's exact results and special cases."""
    if type(x2) in (int, float) and x2 in POW_BY_SCALAR and type(x1) is Array:
        node = x1._node
        kind = node.dtype.kind
        if kind == "f" or (kind in "iu" and type(x2) is int and x2 > 0):
            return Array._new(_pow_by_scalar(node, POW_BY_SCALAR[x2]))
    return apply("pow", x1, x2, category="numeric")


def _pow_by_scalar(node: LazyNode, op: str) -> LazyNode:
    """``node ** c`` as ``op`` (a value of :data:`POW_BY_SCALAR`)."""
    dtype, shape, device = node.dtype, node.shape, node.device
    if op != "sqrt":
        return LazyNode(op, (node,), dtype, shape, None, device)
    plus_zero = LazyNode("add", (node, LazyNode("const", (), dtype, (), 0.0, device)), dtype, shape, None, device)
    root = LazyNode("sqrt", (plus_zero,), dtype, shape, None, device)  # (-0 + 0 = +0)
    minus_inf = LazyNode("equal", (node, LazyNode("const", (), dtype, (), -math.inf, device)), dt.bool, shape,
                         None, device)
    return LazyNode("where", (minus_inf, LazyNode("const", (), dtype, (), math.inf, device), root), dtype, shape,
                    None, device)


remainder = _binary("remainder", "real numeric", "x1 - floor_divide(x1, x2) * x2 (sign of x2).")
subtract = _binary("subtract", "numeric", "x1 - x2.")


def divide(x1, x2, /) -> Array:
    """x1 / x2. Integer inputs divide in the default float dtype (float64), as in NumPy."""
    nodes, dtype, shape, device = operands("divide", x1, x2, category="numeric")
    if not dtype.is_float:
        nodes = [cast_node(n, dt.float64) for n in nodes]
        dtype = dt.float64
    return Array._new(LazyNode("divide", tuple(nodes), dtype, shape, None, device))


def _within_range(node: LazyNode, dtype) -> LazyNode:
    """An integer bound of ``clip`` saturated to the range of the clipped array's integer
    ``dtype`` before the cast (which would wrap: an int16 bound of 300 clipping int8 is 127, not
    44); other bounds as they are."""
    if node.dtype.kind not in "iu" or dtype.kind not in "iu":
        return node
    (lo, hi), (blo, bhi) = dt.INT_RANGE[dtype], dt.INT_RANGE[node.dtype]
    for op, limit, needed in (("maximum", lo, blo < lo), ("minimum", hi, bhi > hi)):
        if needed:
            node = LazyNode(op, (node, const_node(limit, node.dtype, node.device)), node.dtype, node.shape,
                            None, node.device)
    return node


def clip(x, /, min=None, max=None) -> Array:
    """Clamp x to [min, max]; either bound may be None, a Python scalar or an array. The result
    has the broadcast shape of ``x`` and the array bounds, and the dtype of ``x``."""
    _check_array("clip", x)
    dt.check_category("clip", "real numeric", x.dtype)
    out = x
    for bound, op in ((min, "maximum"), (max, "minimum")):
        if bound is None:
            continue
        if isinstance(bound, Array):
            same_device("clip", (x, bound))
            dt.check_category("clip", "real numeric", bound.dtype)
            bnode = cast_node(_within_range(bound._node, x.dtype), x.dtype)
        else:
            if not isinstance(bound, (int, float)) or isinstance(bound, bool):
                raise TypeError(f"clip: bounds must be arrays or real Python scalars, got {type(bound).__name__}")
            if x.dtype.kind in "iu" and isinstance(bound, float):
                raise TypeError("clip: a float bound cannot clip an integer array")
            if x.dtype.kind in "iu":  # saturated: clip(uint8, -1, 300) changes nothing, as in NumPy
                lo, hi = dt.INT_RANGE[x.dtype]
                bound = lo if bound < lo else hi if bound > hi else bound
            bnode = const_node(bound, x.dtype, x.device)
        shape = broadcast_shapes(out.shape, bnode.shape, func="clip")  # (the bounds may broadcast x)
        out = Array._new(LazyNode(op, (out._node, bnode), x.dtype, shape, None, x.device))
    if out is x:
        return Array._new(LazyNode("positive", (x._node,), x.dtype, x.shape, None, x.device))
    return out
