"""Nested Python sequences given to ``asarray``: the default dtype of the scalars in them, found
a sequence at a time, and the ones holding 0-d arrays (stacked on their device)."""
from __future__ import annotations

import numpy as np

from . import _dtypes as dt
from ._array import Array, same_device
from ._elementwise import cast_node
from .backend.device import get_device

__all__ = ["SCALAR_DEFAULTS", "MAX_NESTING", "scan_scalars", "from_nested_arrays"]


#: Python scalar types in promotion order (bool < int < float < complex), with the default dtype
#: of each; subclasses count (numpy.float64 is a float, numpy.complex128 a complex)
SCALAR_DEFAULTS = ((bool, dt.bool), (int, dt.int64), (float, dt.float64), (complex, dt.complex128))
_SCALAR_RANK = {t: rank for rank, (t, _) in enumerate(SCALAR_DEFAULTS)}
_NESTED_ERROR = "asarray: nested sequences may hold only Python scalars and 0-d arrays"


#: how deep sequences may nest (an array of more dimensions is refused; a list holding itself)
MAX_NESTING = 64


def _scan(seq, arrays: list, depth: int = 1) -> int:
    """The rank in :data:`SCALAR_DEFAULTS` of the widest Python scalar in the nested sequence
    ``seq`` (-1 when it holds none); the 0-d Arrays in it are appended to ``arrays``. The types
    are taken a sequence at a time (``set(map(type, seq))``), so a long list of floats costs no
    Python per element; TypeError for anything else inside."""
    rank = -1
    for t in set(map(type, seq)):
        r = _SCALAR_RANK.get(t)
        if r is None:  # sequences, 0-d Arrays, scalar subclasses: one element at a time
            r = max((scan_scalars(v, arrays, depth) for v in seq if type(v) is t), default=-1)
        rank = max(rank, r)
    return rank


def scan_scalars(v, arrays: list, depth: int = 0) -> int:
    """The rank in :data:`SCALAR_DEFAULTS` of the Python scalar ``v``, or of the widest one in
    the nested sequence ``v`` (-1 when it holds none: empty, or only 0-d Arrays, which are
    appended to ``arrays``); TypeError for anything else, ValueError past MAX_NESTING levels."""
    if isinstance(v, (list, tuple)):
        if depth >= MAX_NESTING:
            raise ValueError(f"asarray: sequences nested more than {MAX_NESTING} deep (or holding themselves)")
        return _scan(v, arrays, depth + 1)
    if isinstance(v, Array) and v.ndim == 0:
        arrays.append(v)
        return -1
    for rank, (t, _) in enumerate(SCALAR_DEFAULTS):
        if isinstance(v, t):
            return rank
    raise TypeError(_NESTED_ERROR)


def from_nested_arrays(obj, arrays: list, rank: int, dtype, device) -> Array:
    """``asarray`` of nested sequences holding 0-d Arrays (all on one device). Arrays only: they
    are stacked where they are, in their own promoted dtype (nothing crosses a link). Mixed with
    Python scalars: each array's value is read once (noted in the profiler) and taken as a scalar."""
    from ._creation import _refuse_complex_to_real, asarray
    home = same_device("asarray", arrays)
    dev = get_device(device, "asarray") if device is not None else home
    if rank < 0:
        from ._manipulation import stack
        if dtype is None:  # NumPy's promotion (it mixes kinds: int64 and float64 give float64)
            dtype = dt.from_numpy(np.result_type(*(a.dtype.np for a in arrays)))
        for a in arrays:
            _refuse_complex_to_real(a.dtype, dtype)

        def stacked(o):
            return Array._new(cast_node(o._node, dtype)) if isinstance(o, Array) else \
                stack([stacked(v) for v in o])
        try:
            out = stacked(obj)
        except ValueError as e:  # (ragged nesting)
            raise ValueError(f"asarray: nested sequences of arrays must be rectangular ({e})") from None
        return out if dev == home else out.to_device(dev)
    from . import profiler
    from ._transfer import internal
    with internal("asarray"):
        values = {id(a): a._to_numpy()[()].item() for a in arrays}
    if not home.host_memory:
        profiler.note(f"asarray: read the values of {len(arrays)} 0-d arrays inside a sequence")

    def plain(o):
        return values[id(o)] if isinstance(o, Array) else (
            [plain(v) for v in o] if isinstance(o, (list, tuple)) else o)
    return asarray(plain(obj), dtype=dtype, device=dev)
