"""Searching functions of the standard (``where`` so far)."""
from __future__ import annotations

from . import _dtypes as dt
from ._array import Array
from ._elementwise import cast_node, operands
from ._graph import LazyNode
from ._shapes import broadcast_shapes

__all__ = ["where"]


def where(condition, x1, x2, /) -> Array:
    """Elements of ``x1`` where ``condition`` is True, else of ``x2`` (Python scalars allowed)."""
    if not isinstance(condition, Array):
        raise TypeError(f"where: condition must be an Array, got {type(condition).__name__}")
    if condition.dtype is not dt.bool:
        raise TypeError(f"where: condition must have dtype bool, got {condition.dtype}")
    nodes, dtype, shape, device = operands("where", x1, x2)
    if condition.device != device:
        raise ValueError("where: condition and values must be on the same device")
    shape = broadcast_shapes(condition.shape, shape, func="where")
    return Array._new(LazyNode("where", (condition._node, *nodes), dtype, shape, None, device))
