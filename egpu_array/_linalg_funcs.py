"""Linear algebra functions of the main namespace: matmul, tensordot, vecdot, matrix_transpose.

``matmul`` of float32/float64 is a lazy ``"matmul"`` node computed by the blocked GEMM kernels of
``kernels.gemm`` (see ``_matmul``), which also absorb an elementwise epilogue. The other products,
matmul of integer and complex dtypes and matrix @ vector (one output column) are lazy reductions
over a broadcast product: ``matmul`` multiplies a (.., M, 1, K) view of x1 by a (.., 1, N, K) view
of x2 (x2's transpose, copied once so K is contiguous) and sums over K in one generated reduction
kernel; every numeric dtype, batching and the 1-D rules come for free. vector @ matrix is a
column-order reduction over the matrix's rows (read once, in place). ``tensordot`` is one ``matmul``
of its operands with the free and contracted axes each flattened to one (a view where the strides
allow it, else one copy), so float products run on the GEMM and integer ones stay exact.
"""
from __future__ import annotations

import math

from . import _dtypes as dt
from ._array import Array, same_device
from ._elementwise import cast_node
from ._graph import LazyNode, View
from ._matmul import gemm_dtype, matmul_node
from ._schedule import materialize
from ._statistical import reduce_node
from ._shapes import broadcast_shapes, normalize_axis

__all__ = ["matmul", "tensordot", "vecdot", "matrix_transpose"]


def _pair(func: str, x1, x2):
    for x in (x1, x2):
        if not isinstance(x, Array):
            raise TypeError(f"{func}: expected Arrays, got {type(x).__name__}")
    same_device(func, (x1, x2))
    dtype = dt.promote_types(x1.dtype, x2.dtype, func)
    dt.check_category(func, "numeric", dtype)
    return dtype


def _view(node: LazyNode, shape: tuple, strides: tuple) -> LazyNode:
    leaf = materialize(node)
    v = leaf.arg
    return LazyNode("buffer", (), leaf.dtype, shape, View(v.buffer, strides, v.offset), leaf.device)


def _contract(func: str, a: LazyNode, b: LazyNode, shape: tuple, n_contract: int, dtype, device) -> Array:
    """sum over the last ``n_contract`` axes of a*b (both already broadcastable to ``shape``)."""
    prod = LazyNode("multiply", (cast_node(a, dtype), cast_node(b, dtype)), dtype, shape, None, device)
    nd = len(shape)
    axes = tuple(range(nd - n_contract, nd))
    # (reduce_node: an empty contraction is +0, as every empty sum)
    return reduce_node(func, "sum", Array._new(prod), None, False, dtype, acc=dtype, axes=axes)


def matmul(x1, x2, /) -> Array:
    """Matrix product with the standard's 1-D and batch-broadcasting rules."""
    dtype = _pair("matmul", x1, x2)
    if x1.ndim == 0 or x2.ndim == 0:
        raise ValueError("matmul: 0-dimensional arrays are not allowed")
    s1 = x1.shape if x1.ndim > 1 else (1,) + x1.shape
    s2 = x2.shape if x2.ndim > 1 else x2.shape + (1,)
    if s1[-1] != s2[-2]:
        raise ValueError(f"matmul: shapes {x1.shape} and {x2.shape} are not aligned "
                         f"({s1[-1]} != {s2[-2]})")
    batch = broadcast_shapes(s1[:-2], s2[:-2], func="matmul")
    m, k, n = s1[-2], s1[-1], s2[-1]
    # float32/float64: a lazy product on the blocked GEMM kernels; a single column (matrix @ vector)
    # stays a row-wise dot product, which reads x1 once instead of packing it for 16-wide tiles
    if x1.ndim == 1 and x2.ndim == 2 and n > 1:
        return _vecmat(x1, x2, dtype)
    if n > 1 and gemm_dtype(dtype, x1.device):
        shape = batch + ((m,) if x1.ndim > 1 else ()) + ((n,) if x2.ndim > 1 else ())
        node = matmul_node(cast_node(x1._node, dtype), cast_node(x2._node, dtype), dtype, shape,
                           x1.ndim == 1, x2.ndim == 1, x1.device)
        return Array._new(node)
    a = materialize(x1._node)
    av = a.arg
    ast = av.strides if x1.ndim > 1 else (0,) + av.strides
    a_node = LazyNode("buffer", (), a.dtype, s1[:-2] + (m, 1, k),
                      View(av.buffer, ast[:-2] + (ast[-2], 0, ast[-1]), av.offset), a.device)
    # x2 transposed and copied once, so the contracted axis is contiguous
    bt = Array._new(LazyNode("positive", (_transposed(x2._node, x2.ndim),), x2.dtype,
                             s2[:-2] + (n, k), None, x2.device))
    bv = bt._realize()
    b_node = LazyNode("buffer", (), x2.dtype, s2[:-2] + (1, n, k),
                      View(bv.buffer, bv.strides[:-2] + (0,) + bv.strides[-2:], bv.offset), x2.device)
    out = _contract("matmul", a_node, b_node, batch + (m, n, k), 1, dtype, x1.device)
    if x1.ndim == 1 or x2.ndim == 1:
        from ._manipulation import squeeze
        axes = ((-2,) if x1.ndim == 1 else ()) + ((-1,) if x2.ndim == 1 else ())
        out = squeeze(out, axis=tuple(a % out.ndim for a in axes))
    return out


def _vecmat(x1, x2, dtype) -> Array:
    """vector @ matrix as a column-order reduction: the sum over rows k of x1[k] * x2[k, :]
    reads x2 once, along its rows (no transposed copy, no packing)."""
    a = materialize(x1._node)
    k, n = x2.shape
    col = LazyNode("buffer", (), a.dtype, (k, 1), View(a.arg.buffer, (a.arg.strides[0], 0), a.arg.offset),
                   a.device)
    prod = LazyNode("multiply", (cast_node(col, dtype), cast_node(x2._node, dtype)), dtype, (k, n), None,
                    x1.device)
    return reduce_node("matmul", "sum", Array._new(prod), None, False, dtype, acc=dtype, axes=(0,))


def _transposed(node: LazyNode, ndim: int) -> LazyNode:
    """A view of ``node`` with its last two axes swapped (a 1-D x2 is a (K, 1) column)."""
    leaf = materialize(node)
    v = leaf.arg
    if ndim == 1:
        return LazyNode("buffer", (), leaf.dtype, (1,) + leaf.shape, View(v.buffer, (0,) + v.strides, v.offset),
                        leaf.device)
    shape = leaf.shape[:-2] + (leaf.shape[-1], leaf.shape[-2])
    strides = v.strides[:-2] + (v.strides[-1], v.strides[-2])
    return LazyNode("buffer", (), leaf.dtype, shape, View(v.buffer, strides, v.offset), leaf.device)


def matrix_transpose(x, /) -> Array:
    """Swap the last two axes (a view)."""
    if not isinstance(x, Array):
        raise TypeError(f"matrix_transpose: expected an Array, got {type(x).__name__}")
    if x.ndim < 2:
        raise ValueError(f"matrix_transpose: expected at least 2 dimensions, got {x.ndim}")
    return x.mT


def tensordot(x1, x2, /, *, axes=2) -> Array:
    """Sum of products over ``axes`` (an int: the last/first ``axes`` axes; or two sequences)."""
    from ._manipulation import reshape
    dtype = _pair("tensordot", x1, x2)
    if isinstance(axes, int):
        if axes < 0 or axes > min(x1.ndim, x2.ndim):
            raise ValueError(f"tensordot: axes={axes} is out of range for shapes {x1.shape}, {x2.shape}")
        a1 = list(range(x1.ndim - axes, x1.ndim))
        a2 = list(range(axes))
    else:
        a1 = [normalize_axis(a, x1.ndim, "tensordot") for a in axes[0]]
        a2 = [normalize_axis(a, x2.ndim, "tensordot") for a in axes[1]]
        if len(a1) != len(a2):
            raise ValueError("tensordot: the two axis sequences must have the same length")
    for i, j in zip(a1, a2):  # equal sizes: the standard says contracted axes are not broadcast
        if x1.shape[i] != x2.shape[j]:
            raise ValueError(f"tensordot: axis {i} of x1 ({x1.shape[i]}) does not match axis {j} "
                             f"of x2 ({x2.shape[j]}); contracted axes must have equal sizes")
    f1 = [d for d in range(x1.ndim) if d not in a1]
    f2 = [d for d in range(x2.ndim) if d not in a2]
    s1 = tuple(x1.shape[d] for d in f1)
    s2 = tuple(x2.shape[d] for d in f2)
    if not a1:
        return _outer(x1, x2, s2, dtype)
    # free axes first in x1, last in x2, each side flattened to one axis (a view where the strides
    # allow it, else one copy): one matmul (the GEMM for floats, exact reductions for integers);
    # a side without free axes is a 1-D operand (vector @ matrix and matrix @ vector are cheaper)
    size = math.prod(x1.shape[i] for i in a1)
    p1 = _arranged(x1, f1 + a1, ((math.prod(s1),) if s1 else ()) + (size,))
    p2 = _arranged(x2, a2 + f2, (size,) + ((math.prod(s2),) if s2 else ()))
    out = matmul(p1, p2)
    return out if out.shape == s1 + s2 else reshape(out, s1 + s2)


def _arranged(x, perm: list, shape: tuple) -> Array:
    """``x`` with its axes in order ``perm``, reshaped to ``shape``; either step is skipped where it
    changes nothing (so a lazy operand stays lazy: the GEMM may compute it while packing)."""
    from ._manipulation import permute_dims, reshape
    if perm != list(range(x.ndim)):
        x = permute_dims(x, tuple(perm))
    return x if x.shape == shape else reshape(x, shape)


def _outer(x1, x2, s2: tuple, dtype) -> Array:
    """tensordot without contracted axes: ``x1`` (unit axes appended for ``x2``'s shape ``s2``)
    times ``x2``, a broadcast multiply in ``dtype``."""
    from ._manipulation import reshape
    a = reshape(x1, x1.shape + (1,) * len(s2))
    return Array._new(LazyNode("multiply", (cast_node(a._node, dtype), cast_node(x2._node, dtype)), dtype,
                               x1.shape + s2, None, x1.device))


def vecdot(x1, x2, /, *, axis=-1) -> Array:
    """Dot product of vectors along ``axis`` (the first argument conjugated), broadcasting."""
    from ._elementwise import conj
    dtype = _pair("vecdot", x1, x2)
    shape = broadcast_shapes(x1.shape, x2.shape, func="vecdot")
    if not shape:
        raise ValueError("vecdot: expected arrays of at least one dimension")
    ax = normalize_axis(axis, len(shape), "vecdot")
    pad1 = (1,) * (len(shape) - x1.ndim) + x1.shape
    pad2 = (1,) * (len(shape) - x2.ndim) + x2.shape
    n1, n2 = pad1[ax], pad2[ax]
    if n1 != n2:
        raise ValueError(f"vecdot: the contracted axis differs in length ({n1} != {n2})")
    a = conj(x1) if dtype.kind == "c" else x1
    prod = a * x2 if a.dtype == x2.dtype else Array._new(
        LazyNode("multiply", (cast_node(a._node, dtype), cast_node(x2._node, dtype)), dtype, shape, None, x1.device))
    from ._statistical import sum as _sum
    return _sum(prod, axis=ax - len(shape), dtype=dtype)
