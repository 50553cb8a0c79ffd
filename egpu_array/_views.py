"""Zero-copy views: new shape/strides/offset over the same buffer, never a kernel."""
from __future__ import annotations

from ._array import Array
from ._graph import LazyNode, View

__all__ = ["make_view", "permute_view"]


def make_view(x: Array, shape: tuple, strides: tuple, offset: int, readonly: str = "") -> Array:
    """A view of ``x``'s (realized) memory; ``strides``/``offset`` in elements, absolute. It is
    read-only when ``readonly`` says why (``View.readonly``) or when ``x`` is."""
    v = x._realize()
    return Array._new(LazyNode("buffer", (), x.dtype, tuple(shape),
                               View(v.buffer, tuple(strides), offset, readonly or v.readonly), x.device))


def permute_view(x: Array, axes: tuple) -> Array:
    """``x`` with its axes permuted (no copy)."""
    v = x._realize()
    return make_view(x, tuple(x.shape[a] for a in axes), tuple(v.strides[a] for a in axes), v.offset)
