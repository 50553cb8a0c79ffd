"""Statistical functions of the standard (section "Statistical Functions").

Each reduction is a lazy ``"reduce"`` node over its (fused) elementwise source: the reduction of an
expression is one kernel, and ``var`` is two (the mean, then the sum of squared deviations, which
never materializes ``x - mean``). Dtype rules (2025.12) are tables below.
"""
from __future__ import annotations

import math

from . import _dtypes as dt
from ._array import Array
from ._elementwise import cast_node
from ._graph import LazyNode
from ._schedule import ReduceArg
from ._shapes import normalize_axis

__all__ = ["sum", "prod", "max", "min", "mean", "var", "std", "all", "any", "cumulative_sum",
           "cumulative_prod", "diff", "reduce_node", "normalize_axes"]

_builtin_sum, _builtin_all, _builtin_any = sum, all, any

# default result dtype of sum/prod/cumulative_*: by input kind (the standard's rule)
_SUM_DEFAULT = {"b": dt.int64, "i": dt.int64, "u": dt.uint64}
# accumulator dtype by result dtype
_ACC = {dt.float32: dt.float64, dt.complex64: dt.complex128}


def normalize_axes(axis, ndim: int, func: str) -> tuple:
    """``axis`` (None, an int or a tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is int and -ndim <= axis < ndim:  # one axis in range: the common case, in few steps
        return (axis % ndim,)  # (a reduction's call path is cold: every step costs microseconds)
    try:
        axes = (axis,) if isinstance(axis, int) else tuple(axis)
    except TypeError:
        raise TypeError(f"{func}: axis must be None, an int or a tuple of ints, got {type(axis).__name__}") from None
    out = tuple(sorted(normalize_axis(a, ndim, func) for a in axes))
    if len(set(out)) != len(out):
        raise ValueError(f"{func}: repeated axis in {axis}")
    return out


def _acc_of(dtype):
    if dtype.kind in "iub":
        return dt.uint64 if dtype.kind == "u" else dt.int64
    return _ACC.get(dtype, dtype)


def reduce_node(func: str, op: str, x: Array, axis, keepdims: bool, out_dtype, src=None,
                divisor=None, acc=None, axes=None) -> Array:
    """A lazy reduction of ``src`` (default: x's node) over ``axis`` (``axes``: the caller's
    normalize_axes of it)."""
    xn = x._node
    node = src if src is not None else xn
    xs = xn.shape
    if axes is None:
        axes = normalize_axes(axis, len(xs), func)
    if len(axes) == len(xs) and not keepdims:  # the whole array (no generator: this path is cold)
        shape = ()
    elif len(axes) == 1 and not keepdims:
        shape = xs[:axes[0]] + xs[axes[0] + 1:]
    elif keepdims:
        shape = tuple(1 if d in axes else n for d, n in enumerate(xs))
    else:
        shape = tuple(n for d, n in enumerate(xs) if d not in axes)
    if (op == "sum" and divisor is None and out_dtype.kind in "fc" and 0 in xs
            and _builtin_any(xs[a] == 0 for a in axes)):
        # an empty sum is +0 (NumPy's; the kernels start from -0.0 so that sums of -0.0 stay -0.0)
        from ._creation import zeros
        return zeros(shape, dtype=out_dtype, device=xn.device)
    arg = ReduceArg(op, axes, keepdims, acc or _acc_of(out_dtype), divisor)
    return Array._new(LazyNode("reduce", (node,), out_dtype, shape, arg, xn.device))


def _check(func: str, x, category: str):
    if not isinstance(x, Array):
        raise TypeError(f"{func}: expected an Array, got {type(x).__name__}")
    if x._node.dtype not in dt.CATEGORIES[category]:
        dt.check_category(func, category, x.dtype)  # its error


def _sum_like(func: str, op: str, x, axis, dtype, keepdims) -> Array:
    _check(func, x, "numeric")
    xdt = x._node.dtype
    if dtype is None:
        dtype = _SUM_DEFAULT.get(xdt.kind, xdt)
    elif not isinstance(dtype, dt.DType):
        raise TypeError(f"{func}: dtype must be an egpu_array dtype or None")
    src = cast_node(x._node, dtype) if dtype is not xdt else x._node
    return reduce_node(func, op, x, axis, keepdims, dtype, src=src)


def sum(x, /, *, axis=None, dtype=None, keepdims=False) -> Array:
    """Sum over ``axis`` (float32 accumulates in float64)."""
    return _sum_like("sum", "sum", x, axis, dtype, keepdims)


def prod(x, /, *, axis=None, dtype=None, keepdims=False) -> Array:
    """Product over ``axis``."""
    return _sum_like("prod", "prod", x, axis, dtype, keepdims)


def _minmax(func: str, x, axis, keepdims) -> Array:
    _check(func, x, "real numeric")
    xs = x._node.shape
    axes = normalize_axes(axis, len(xs), func)
    if 0 in xs and _builtin_any(xs[a] == 0 for a in axes):
        raise ValueError(f"{func}: zero-size reduction has no identity (axis {axis}, shape {x.shape})")
    return reduce_node(func, func, x, axis, keepdims, x.dtype, acc=x.dtype, axes=axes)


def max(x, /, *, axis=None, keepdims=False) -> Array:
    """Maximum over ``axis`` (NaN propagates)."""
    return _minmax("max", x, axis, keepdims)


def min(x, /, *, axis=None, keepdims=False) -> Array:
    """Minimum over ``axis`` (NaN propagates)."""
    return _minmax("min", x, axis, keepdims)


def _count(x, axis) -> int:
    return math.prod(x.shape[a] for a in normalize_axes(axis, x.ndim, "count"))


def mean(x, /, *, axis=None, keepdims=False) -> Array:
    """Arithmetic mean over ``axis`` (NaN for an empty reduction)."""
    _check("mean", x, "floating-point")
    xs = x._node.shape
    axes = normalize_axes(axis, len(xs), "mean")
    n = math.prod([xs[a] for a in axes])
    return reduce_node("mean", "sum", x, axis, keepdims, x.dtype, divisor=float(n) if n else 0.0, axes=axes)


def var(x, /, *, axis=None, correction=0.0, keepdims=False) -> Array:
    """Variance over ``axis`` with ``correction`` degrees of freedom removed (two kernels); NaN
    where ``N - correction <= 0``, as the standard says (never a negative or infinite variance)."""
    _check("var", x, "real floating-point")
    if not isinstance(correction, (int, float)) or isinstance(correction, bool):
        raise TypeError("var: correction must be a real number")
    n = _count(x, axis)
    m = mean(x, axis=axis, keepdims=True)
    m._realize()
    dev = x._node
    centered = LazyNode("subtract", (dev, m._node), x.dtype, x.shape, None, x.device)
    sq = LazyNode("multiply", (centered, centered), x.dtype, x.shape, None, x.device)
    return reduce_node("var", "sum", x, axis, keepdims, x.dtype, src=sq,
                       divisor=float(n - correction) if n - correction > 0 else math.nan)


def std(x, /, *, axis=None, correction=0.0, keepdims=False) -> Array:
    """Standard deviation: sqrt(var)."""
    from ._elementwise import sqrt
    _check("std", x, "real floating-point")
    return sqrt(var(x, axis=axis, correction=correction, keepdims=keepdims))


def all(x, /, *, axis=None, keepdims=False) -> Array:
    """True where every element along ``axis`` is nonzero."""
    if not isinstance(x, Array):
        raise TypeError(f"all: expected an Array, got {type(x).__name__}")
    return reduce_node("all", "all", x, axis, keepdims, dt.bool, src=cast_node(x._node, dt.bool), acc=dt.bool)


def any(x, /, *, axis=None, keepdims=False) -> Array:
    """True where any element along ``axis`` is nonzero."""
    if not isinstance(x, Array):
        raise TypeError(f"any: expected an Array, got {type(x).__name__}")
    return reduce_node("any", "any", x, axis, keepdims, dt.bool, src=cast_node(x._node, dt.bool), acc=dt.bool)


def _cumulative(func: str, op: str, x, axis, dtype, include_initial) -> Array:
    from ._graph import View, contiguous_strides
    _check(func, x, "numeric")
    if axis is None:
        if x.ndim > 1:
            raise ValueError(f"{func}: axis is required for arrays of more than one dimension")
        axis = 0
    if x.ndim == 0:
        raise ValueError(f"{func}: expected at least one dimension")
    ax = normalize_axis(axis, x.ndim, func)
    if dtype is None:
        dtype = _SUM_DEFAULT.get(x.dtype.kind, x.dtype)
    src = cast_node(x._node, dtype)
    shape = list(x.shape)
    if include_initial:
        shape[ax] += 1
    shape = tuple(shape)
    out_size = math.prod(shape)
    buf = x.device.allocator.alloc(out_size * dtype.itemsize)
    strides = contiguous_strides(shape)
    from ._schedule import realize_into
    scan = LazyNode("reduce", (src,), dtype, x.shape, ReduceArg(op, (ax,), True, _acc_of(dtype)), x.device)
    if include_initial:
        first = LazyNode("const", (), dtype, tuple(1 if d == ax else n for d, n in enumerate(shape)),
                         0 if op == "cumsum" else 1, x.device)
        realize_into(first, View(buf, strides, 0))
        realize_into(scan, View(buf, strides, strides[ax]))
    else:
        realize_into(scan, View(buf, strides, 0))
    return Array._new(LazyNode("buffer", (), dtype, shape, View(buf, strides, 0), x.device))


def cumulative_sum(x, /, *, axis=None, dtype=None, include_initial=False) -> Array:
    """Running sum along ``axis``."""
    return _cumulative("cumulative_sum", "cumsum", x, axis, dtype, include_initial)


def cumulative_prod(x, /, *, axis=None, dtype=None, include_initial=False) -> Array:
    """Running product along ``axis``."""
    return _cumulative("cumulative_prod", "cumprod", x, axis, dtype, include_initial)


def diff(x, /, n=1, axis=-1, *, prepend=None, append=None) -> Array:
    """The n-th discrete difference along ``axis``.

    ``n`` and ``axis`` are keywords in the standard; they may also come positionally, in NumPy's
    order (scikit-learn's roc_curve calls ``xp.diff(fps, 2)``)."""
    from ._elementwise import subtract
    from ._indexing import basic_view
    if not isinstance(x, Array):
        raise TypeError(f"diff: expected an Array, got {type(x).__name__}")
    if x.ndim == 0:
        raise ValueError("diff: expected at least one dimension")
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"diff: n must be a non-negative int, got {n!r}")
    ax = normalize_axis(axis, x.ndim, "diff")
    if prepend is not None or append is not None:
        from ._manipulation import concat
        parts = [p for p in (prepend, x, append) if p is not None]
        x = concat(parts, axis=ax)
    out = x
    for _ in range(n if n <= x.shape[ax] else x.shape[ax]):  # (past the axis' length: still empty)
        hi = tuple(slice(1, None) if d == ax else slice(None) for d in range(out.ndim))
        lo = tuple(slice(None, -1) if d == ax else slice(None) for d in range(out.ndim))
        out = subtract(basic_view(out, hi), basic_view(out, lo)) if out.dtype is not dt.bool else \
            basic_view(out, hi) != basic_view(out, lo)
    return out
