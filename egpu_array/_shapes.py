"""Shape rules shared by every section: broadcasting and axis normalisation."""
from __future__ import annotations

__all__ = ["broadcast_shapes", "normalize_axis", "normalize_shape", "value_shape_for"]


def broadcast_shapes(*shapes, func: str = "broadcast_shapes") -> tuple:
    """The broadcast of ``shapes``; ValueError naming ``func`` when they do not broadcast."""
    if len(shapes) == 1:
        return tuple(shapes[0])
    if len(shapes) == 2:  # the common cases, without the loop: equal shapes, a scalar's ()
        a, b = shapes
        if a == b or not b:
            return tuple(a)
        if not a:
            return tuple(b)
    nd = max((len(s) for s in shapes), default=0)
    out = [1] * nd
    for s in shapes:
        lead = nd - len(s)
        for i, n in enumerate(s):
            cur = out[lead + i]
            if cur == n or n == 1:
                continue
            if cur == 1:
                out[lead + i] = n
            else:
                raise ValueError(f"{func}: shapes {', '.join(str(tuple(x)) for x in shapes)} "
                                 "cannot be broadcast together")
    return tuple(out)


def normalize_axis(axis: int, ndim: int, func: str) -> int:
    """``axis`` in ``[0, ndim)``; negative values count from the end."""
    if not isinstance(axis, int) or isinstance(axis, bool):
        raise TypeError(f"{func}: axis must be an int, got {type(axis).__name__}")
    if not -ndim <= axis < ndim:
        raise IndexError(f"{func}: axis {axis} is out of bounds for an array of {ndim} dimensions")
    return axis % ndim if ndim else 0


def normalize_shape(shape, func: str) -> tuple:
    """A shape argument (an int or a sequence of non-negative ints) as a tuple."""
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        shape = tuple(int(n.__index__()) for n in shape)
    except (TypeError, AttributeError):
        raise TypeError(f"{func}: shape must be an int or a sequence of ints, got {shape!r}") from None
    if any(n < 0 for n in shape):
        raise ValueError(f"{func}: negative dimensions are not allowed, got {shape}")
    return shape


def value_shape_for(shape: tuple, ndim: int) -> tuple:
    """An assigned value's ``shape`` without the leading unit axes beyond ``ndim`` dimensions
    (``x[:2] = ones((1, 1, 4))`` assigns a row, as in NumPy)."""
    lead = 0
    while len(shape) - lead > ndim and shape[lead] == 1:
        lead += 1
    return tuple(shape[lead:])
