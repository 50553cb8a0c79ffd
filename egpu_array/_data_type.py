"""Data type functions of the standard: astype, can_cast, finfo, iinfo, isdtype, result_type."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _dtypes as dt
from ._array import Array

__all__ = ["astype", "can_cast", "finfo", "iinfo", "isdtype", "result_type", "finfo_object", "iinfo_object"]


def astype(x, dtype, /, *, copy=True, device=None) -> Array:
    """``x`` converted to ``dtype`` (and moved to ``device``). A complex-to-real cast is refused (the
    standard: say which component); complex to bool is ``x != 0`` (``0+0j`` False, all else True)."""
    from ._elementwise import cast_node
    from ._graph import LazyNode
    if not isinstance(x, Array):
        raise TypeError(f"astype: expected an Array, got {type(x).__name__}")
    if not isinstance(dtype, dt.DType):
        raise TypeError(f"astype: dtype must be an egpu_array dtype, got {dtype!r}")
    if x.dtype.kind == "c" and dtype.kind not in "cb":
        raise TypeError(f"astype: casting {x.dtype} to {dtype} would discard the imaginary part; "
                        "take real() or abs() first")
    if dtype is x.dtype:
        out = x if not copy else Array._new(LazyNode("positive", (x._node,), x.dtype, x.shape, None, x.device))
    else:
        out = Array._new(cast_node(x._node, dtype))
    if device is not None:
        out = out.to_device(device)
    return out


def _dtype_arg(func: str, v):
    if isinstance(v, Array):
        return v.dtype
    if isinstance(v, dt.DType):
        return v
    raise TypeError(f"{func}: expected an Array or an egpu_array dtype, got {v!r}")


def can_cast(from_, to, /) -> bool:
    """Whether ``from_`` may be cast to ``to`` under the standard's promotion rules."""
    src = _dtype_arg("can_cast", from_)
    if not isinstance(to, dt.DType):
        raise TypeError(f"can_cast: to must be an egpu_array dtype, got {to!r}")
    return dt.PROMOTION_TABLE.get((src, to)) is to


@dataclass(frozen=True)
class finfo_object:
    """Machine limits of a floating-point dtype (Python floats)."""
    bits: int
    eps: float
    max: float
    min: float
    smallest_normal: float
    dtype: dt.DType


@dataclass(frozen=True)
class iinfo_object:
    """Machine limits of an integer dtype (Python ints)."""
    bits: int
    max: int
    min: int
    dtype: dt.DType


def finfo(type, /) -> finfo_object:
    """Limits of a real or complex floating-point dtype (complex: of its real component)."""
    d = _dtype_arg("finfo", type)
    if d.kind not in "fc":
        raise TypeError(f"finfo: expected a floating-point dtype, got {d}")
    r = d.real_dtype
    f = np.finfo(r.np)
    return finfo_object(bits=r.bits, eps=float(f.eps), max=float(f.max), min=float(f.min),
                        smallest_normal=float(f.smallest_normal), dtype=r)


def iinfo(type, /) -> iinfo_object:
    """Limits of an integer dtype."""
    d = _dtype_arg("iinfo", type)
    if d.kind not in "iu":
        raise TypeError(f"iinfo: expected an integer dtype, got {d}")
    i = np.iinfo(d.np)
    return iinfo_object(bits=d.bits, max=int(i.max), min=int(i.min), dtype=d)


# isdtype's kind names -> the standard's categories
_KINDS = {
    "bool": "bool", "signed integer": "signed integer", "unsigned integer": "unsigned integer",
    "integral": "integer", "real floating": "real floating-point",
    "complex floating": "complex floating-point", "numeric": "numeric",
}


def isdtype(dtype, kind) -> bool:
    """Whether ``dtype`` is of ``kind``: a dtype, a kind name, or a tuple of them."""
    if not isinstance(dtype, dt.DType):
        raise TypeError(f"isdtype: expected an egpu_array dtype, got {dtype!r}")
    if isinstance(kind, tuple):
        return any(isdtype(dtype, k) for k in kind)
    if isinstance(kind, dt.DType):
        return dtype is kind
    if isinstance(kind, str):
        if kind not in _KINDS:
            raise ValueError(f"isdtype: unknown kind {kind!r}; expected one of {sorted(_KINDS)}")
        return dtype in dt.CATEGORIES[_KINDS[kind]]
    raise TypeError(f"isdtype: kind must be a dtype, a string or a tuple, got {kind!r}")


def result_type(*arrays_and_dtypes):
    """The dtype the standard's promotion gives for arrays, dtypes and Python scalars."""
    dtypes, scalars = [], []
    for v in arrays_and_dtypes:
        if isinstance(v, (bool, int, float, complex)):
            scalars.append(v)
        else:
            dtypes.append(_dtype_arg("result_type", v))
    if not dtypes:
        if not scalars:
            raise ValueError("result_type: at least one array or dtype is required")
        raise ValueError("result_type: at least one array or dtype is required besides Python scalars")
    return dt.result_type_of(dtypes, scalars, "result_type")
