"""Array: the user's handle on a lazy expression or on realized device memory.

An Array wraps a LazyNode. Operations build new nodes; the data is computed (``_realize``) only when
something needs it: a copy to the host, a view, an in-place write, or the graph-size limit. Operators
are forwarded to the namespace functions through one table (``_OPERATORS``).
"""
from __future__ import annotations

import weakref

import numpy as np

from . import _dtypes as dt
from ._graph import LazyNode, View, check_valid
from ._inplace import _flush, _keep_reading, _overlaps_differently, _prune, check_writable
from ._info import config
from ._schedule import compute_new, realize_into

__all__ = ["Array"]


_CONSTS: dict = {}  # (type, value, dtype, id(device)) -> shared scalar leaf of the operator fast path
#: ints the operator fast path converts to a float array's dtype itself (exact in float64; beyond
#: them the full path rounds, or raises for ints no float holds)
_FLOAT_EXACT = 2 ** 53

#: pending ops in one expression before it is computed (EGPU_ARRAY_GRAPH_LIMIT, read at import)
_GRAPH_LIMIT = config().graph_limit


class Array:
    """An n-dimensional array on a device (see the module docstring). Never a numpy subclass."""

    __slots__ = ("_node", "__weakref__")
    __array_priority__ = 1000  # NumPy defers to our reflected operators

    def __init__(self, *args, **kwargs):
        raise TypeError("egpu_array.Array cannot be constructed directly; use egpu_array.asarray "
                        "or another creation function")

    @classmethod
    def _new(cls, node: LazyNode) -> "Array":
        self = object.__new__(cls)
        self._node = node
        if node.srcs:
            if node.size > _GRAPH_LIMIT:
                self._realize()
            else:
                ref = weakref.ref(self)
                for buf in node.buffers:
                    readers = buf.readers
                    readers.append(ref)
                    if buf.readers is not readers:  # a write in another thread took the list meanwhile
                        _keep_reading(buf, [ref])
                    n = len(readers)
                    if n >= 64 and not n & (n - 1):  # at powers of two: drop dead or computed readers
                        _prune(readers)
        return self

    # ---- realization ------------------------------------------------------------------------
    def _realize(self) -> View:
        """Compute the pending expression (if any); returns the View of the data."""
        node = self._node
        if node.op == "buffer":
            if not node.arg.buffer.valid:
                check_valid(node)
            return node.arg
        done = compute_new(node)  # (realize_into checks that the inputs hold valid data)
        if self._node is node:  # (else another thread's write computed it first, before its write:
            self._node = done   # that result holds the values this array was created with)
        return self._node.arg

    def _write(self, node: LazyNode, func: str = "__setitem__") -> None:
        """Compute ``node`` into this array's memory (in place): pending readers go first. ``func``
        names the operation in the error for a broadcast view (:func:`check_writable`)."""
        view = self._realize()
        check_writable(view, self._node.shape, func)
        values = _flush(view.buffer, self, node)  # arrays whose expression is the value written
        try:
            if node.buffers and view.buffer in node.buffers and _overlaps_differently(node, view):
                tmp = Array._new(node)
                tmp._realize()
                node = tmp._node
            realize_into(node, view)
        except BaseException:
            _keep_reading(view.buffer, [weakref.ref(v) for v in values])  # still pending
            raise
        if values:
            # The value arrays still name an expression of the memory just overwritten: they become
            # a pending copy of what was written (computed only if they are used, or before the
            # next write to this memory), never a view that later writes would change.
            written = LazyNode("buffer", (), node.dtype, node.shape, view, node.device)
            for value in values:
                value._node = LazyNode("positive", (written,), node.dtype, node.shape, None, node.device)
            _keep_reading(view.buffer, [weakref.ref(v) for v in values])

    # ---- copying and pickling -----------------------------------------------------------------
    def __copy__(self) -> "Array":
        """``copy.copy``: a new array of the same values on the same device (a device-side copy;
        nothing crosses the link)."""
        return Array._new(LazyNode("positive", (self._node,), self.dtype, self.shape, None, self.device))

    def __deepcopy__(self, memo) -> "Array":
        """``copy.deepcopy`` (scikit-learn's ``clone``, model copies): as :meth:`__copy__`."""
        return self.__copy__()

    def __reduce__(self):
        """Pickling (joblib, saved models): the values come to the host (a copy the profiler lists
        as the caller's) with the device's name; :func:`_unpickle` puts them back on a device."""
        return _unpickle, (self._to_numpy(), self.device.name)  # (pickle copies the values itself)

    # ---- attributes ---------------------------------------------------------------------------
    @property
    def dtype(self):
        return self._node.dtype

    @property
    def device(self):
        return self._node.device

    @property
    def shape(self) -> tuple:
        return self._node.shape

    @property
    def ndim(self) -> int:
        return len(self._node.shape)

    @property
    def size(self) -> int:
        n = 1
        for s in self._node.shape:
            n *= s
        return n

    @property
    def T(self) -> "Array":
        if self.ndim != 2:
            raise ValueError(f"Array.T: only 2-D arrays may be transposed with .T, got {self.ndim}-D; "
                             "use matrix_transpose or permute_dims")
        from ._views import permute_view
        return permute_view(self, (1, 0))

    @property
    def mT(self) -> "Array":
        if self.ndim < 2:
            raise ValueError(f"Array.mT: expected at least 2 dimensions, got {self.ndim}")
        from ._views import permute_view
        axes = tuple(range(self.ndim - 2)) + (self.ndim - 1, self.ndim - 2)
        return permute_view(self, axes)

    def __array_namespace__(self, *, api_version=None):
        if api_version is not None and api_version not in ("2021.12", "2022.12", "2023.12",
                                                           "2024.12", "2025.12"):
            raise ValueError(f"__array_namespace__: unsupported api_version {api_version!r}")
        import egpu_array
        return egpu_array

    # ---- host conversion ----------------------------------------------------------------------
    def _to_numpy(self, writable_copy: bool = False) -> np.ndarray:
        """The values as a NumPy array (a read-only view on the cpu device unless a copy is asked)."""
        return _transfer.to_host(self, copy=writable_copy)

    def __array__(self, dtype=None, copy=None):
        if copy is False and not self.device.host_memory:
            raise ValueError(f"__array__: the data is on {self.device}; a copy to the host is required")
        if copy is False and dtype is not None and np.dtype(dtype) != self.dtype.np:
            raise ValueError(f"__array__: copy=False, but converting {self.dtype} to {np.dtype(dtype)} needs a copy")
        a = self._to_numpy(writable_copy=bool(copy))
        if dtype is not None:
            a = a.astype(dtype, copy=False)
        return a

    def _scalar(self, func: str, kinds: str):
        if self.ndim != 0:
            raise TypeError(f"{func}: only 0-dimensional arrays can be converted to Python "
                            f"scalars, got shape {self.shape}")
        if self.dtype.kind not in kinds:
            raise TypeError(f"{func}: not allowed for an array of dtype {self.dtype}")
        return _transfer.read_scalar(self)

    def __bool__(self) -> bool:
        return bool(self._scalar("__bool__", "biufc"))

    def __int__(self) -> int:
        v = self._scalar("__int__", "biuf")
        if isinstance(v, float) and (v != v or v in (float("inf"), float("-inf"))):
            raise (ValueError if v != v else OverflowError)(f"__int__: cannot convert {v} to int")
        return int(v)

    def __float__(self) -> float:
        return float(self._scalar("__float__", "biuf"))

    def __format__(self, spec: str) -> str:
        """``f"{loss:.3f}"``: a 0-d array formats as the Python scalar of its value (a copy to the
        host, as ``float(x)``); other arrays take only the empty spec (their ``str``)."""
        if not spec:
            return str(self)
        return format(self._scalar("__format__", "biufc"), spec)

    def __complex__(self) -> complex:
        return complex(self._scalar("__complex__", "biufc"))

    def __index__(self) -> int:
        return int(self._scalar("__index__", "iu"))

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-dimensional array")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-dimensional array")
        for i in range(self.shape[0]):
            yield self[i]

    def to_device(self, device, /, *, stream=None) -> "Array":
        """This array on ``device`` (a copy over the link when the device differs)."""
        from ._transfer import to_device
        return to_device(self, device, stream)

    def __dlpack_device__(self):
        from ._dlpack import dlpack_device
        return dlpack_device(self)

    def __dlpack__(self, *, stream=None, max_version=None, dl_device=None, copy=None):
        from ._dlpack import export_dlpack
        return export_dlpack(self, stream=stream, max_version=max_version, dl_device=dl_device, copy=copy)

    def __getitem__(self, key):
        return _indexing.getitem(self, key)

    def __setitem__(self, key, value):
        _indexing.setitem(self, key, value)

    def __repr__(self) -> str:
        host, threshold = _transfer.printed(self)
        body = np.array2string(host, separator=", ", prefix="Array(", threshold=threshold)
        return f"Array({body}, dtype={self.dtype.name}, device={self.device.name!r})"

    __str__ = __repr__

    __hash__ = None  # unhashable, like NumPy arrays (== is elementwise)
    #: above NumPy's: ``numpy_scalar * x`` and ``ndarray == x`` call our reflected operators (which
    #: take NumPy scalars as Python scalars and refuse NumPy arrays) instead of converting ``x``
    #: with ``__array__`` and returning a NumPy result (a silent copy off the device)
    __array_priority__ = 100


def _unpickle(host: np.ndarray, device_name: str) -> Array:
    """A pickled Array, recreated on: the device of an active ``default_device`` block (it plays
    the part of PyTorch's ``map_location``); else the device it was pickled on; else, where this
    process has no such device (a model saved on ``cuda:0``, loaded on a laptop), the default
    device, with a warning naming both."""
    from ._errors import DeviceError
    from ._info import scoped_default_device
    from ._transfer import from_host
    from .backend.device import get_device
    device = scoped_default_device()
    if device is None:
        try:
            device = get_device(device_name, "unpickle")
        except (ValueError, DeviceError):
            import warnings
            device = get_device(None)
            warnings.warn(f"egpu_array: an array pickled on {device_name}, which this process does not "
                          f"have, is loaded onto {device}", RuntimeWarning, stacklevel=2)
    return from_host(host, dt.from_numpy(host.dtype), device)


_OPERANDS = (Array, bool, int, float, complex)


def numpy_operand(func: str, other):
    """A NumPy scalar (``np.float32(2)``, ``np.unique(y)[0]``) as the Python scalar of its value,
    so it combines as a Python scalar does; a NumPy array is a TypeError naming ``func`` (nothing
    is converted implicitly: on an eGPU that would be a copy over the link, and ``==`` would
    otherwise fall back to identity and return a plain False); anything else as it is."""
    if isinstance(other, np.generic) and other.dtype.kind in "biufc":
        return other.item()
    if isinstance(other, np.ndarray):
        raise TypeError(f"{func}: a NumPy array is not converted implicitly; convert it with "
                        "asarray(..., device=x.device) first")
    return other


def operand(func: str, other):
    """``other`` as an operand of an operator: an Array or Python scalar as it is, a NumPy scalar
    as its Python scalar (:func:`numpy_operand`); None where the operator should return
    NotImplemented (a NumPy array raises)."""
    if isinstance(other, _OPERANDS):
        return other
    other = numpy_operand(func, other)
    return other if isinstance(other, _OPERANDS) else None


def same_device(func: str, arrays) -> object:
    """The one device of ``arrays`` (a non-empty sequence of Arrays): arrays on different devices
    are a ValueError naming ``func`` (the standard: nothing moves between devices implicitly)."""
    device = arrays[0].device
    for a in arrays[1:]:
        if a.device != device:
            raise ValueError(f"{func}: arrays on different devices ({device} and {a.device}); "
                             "move one with to_device first")
    return device


# ---- operators: one table, forwarded to the namespace functions ------------------------------
_BINARY_OPERATORS = {
    "add": "add", "sub": "subtract", "mul": "multiply", "truediv": "divide",
    "floordiv": "floor_divide", "mod": "remainder", "pow": "pow", "and": "bitwise_and",
    "or": "bitwise_or", "xor": "bitwise_xor", "lshift": "bitwise_left_shift",
    "rshift": "bitwise_right_shift",
}
_COMPARISONS = {"eq": "equal", "ne": "not_equal", "lt": "less", "le": "less_equal",
                "gt": "greater", "ge": "greater_equal"}
# dtype kinds for which an operator may skip promotion when both operands share the dtype
_FAST_KINDS = {"add": "fciu", "subtract": "fciu", "multiply": "fciu", "truediv": "", "divide": "fc",
               "pow": "fc", "equal": "fciu", "not_equal": "fciu", "less": "fiu", "less_equal": "fiu",
               "greater": "fiu", "greater_equal": "fiu"}
_UNARY_OPERATORS = {"neg": "negative", "pos": "positive", "abs": "abs", "invert": "bitwise_invert"}


def _install_operators() -> None:
    from . import _elementwise as ew

    def binary(fname):
        f = getattr(ew, fname)
        fast_kinds = _FAST_KINDS.get(fname, "")
        bool_dtype = dt.bool if fname in _COMPARISONS.values() else None
        consts = _CONSTS
        new = Array._new

        def scalar_leaf(node, other):
            """The shared const leaf of a Python float (float/complex arrays) or int (any
            array of the fast kinds, the int in its range) in the array's dtype, or None: the
            full promotion path decides (and raises)."""
            dtype = node.dtype
            t, kind = type(other), dtype.kind
            if t is float and kind in "fc":
                value = other
            elif t is int and kind in "fc" and -_FLOAT_EXACT <= other <= _FLOAT_EXACT:
                value = float(other)
            elif t is int and kind in "iu" and dt.INT_RANGE[dtype][0] <= other <= dt.INT_RANGE[dtype][1]:
                value = other
            else:
                return None
            ckey = (t, other, dtype, id(node.device))
            c = consts.get(ckey) if other else None  # (0.0 == -0.0: zeros are not shared)
            if c is None:
                if len(consts) > 1024:
                    consts.clear()
                c = consts[ckey] = LazyNode("const", (), dtype, (), value, node.device)
            return c

        def op(self, other):
            # fast path: same-dtype operands of the common kinds need no promotion or checks
            node = self._node
            dtype = node.dtype
            if dtype.kind in fast_kinds:
                if type(other) is Array:
                    onode = other._node
                    if onode.dtype is dtype and onode.shape == node.shape and onode.device is node.device:
                        return new(LazyNode(fname, (node, onode), bool_dtype or dtype, node.shape, None,
                                            node.device))
                else:
                    c = scalar_leaf(node, other)
                    if c is not None:
                        return new(LazyNode(fname, (node, c), bool_dtype or dtype, node.shape, None, node.device))
            other = operand(fname, other)
            if other is None:
                return NotImplemented
            return f(self, other)

        if fname == "pow":  # x ** 2 and the like: the namespace's pow makes them cheaper exact ops
            from ._elementwise import POW_BY_SCALAR
            generic = op

            def op(self, other):
                if type(other) in (int, float) and other in POW_BY_SCALAR:
                    return f(self, other)
                return generic(self, other)

        def rop(self, other):
            node = self._node
            if node.dtype.kind in fast_kinds and type(other) is not Array:
                c = scalar_leaf(node, other)
                if c is not None:
                    return new(LazyNode(fname, (c, node), bool_dtype or node.dtype, node.shape, None, node.device))
            other = operand(fname, other)
            if other is None:
                return NotImplemented
            return f(other, self)

        def iop(self, other):
            other = operand(fname, other)
            if other is None:
                return NotImplemented
            res = f(self, other)
            if res.dtype != self.dtype:
                raise TypeError(f"{fname} (in place): the result dtype {res.dtype} differs from the "
                                f"array's dtype {self.dtype}")
            if res.shape != self.shape:
                raise ValueError(f"{fname} (in place): the result shape {res.shape} differs from the "
                                 f"array's shape {self.shape}")
            self._write(res._node, f"{fname} (in place)")
            return self
        return op, rop, iop

    for dunder, fname in _BINARY_OPERATORS.items():
        op, rop, iop = binary(fname)
        setattr(Array, f"__{dunder}__", op)
        setattr(Array, f"__r{dunder}__", rop)
        setattr(Array, f"__i{dunder}__", iop)
    for dunder, fname in _COMPARISONS.items():
        setattr(Array, f"__{dunder}__", binary(fname)[0])
    from ._linalg_funcs import matmul

    def _matmul(self, other):
        numpy_operand("matmul", other)  # (a NumPy array is refused by name, not converted)
        return matmul(self, other) if isinstance(other, Array) else NotImplemented

    def _rmatmul(self, other):
        numpy_operand("matmul", other)
        return matmul(other, self) if isinstance(other, Array) else NotImplemented

    def _imatmul(self, other):
        numpy_operand("matmul", other)
        if not isinstance(other, Array):
            return NotImplemented
        res = matmul(self, other)
        if res.shape != self.shape or res.dtype != self.dtype:
            raise ValueError(f"matmul (in place): result shape {res.shape} / dtype {res.dtype} differs "
                             f"from the array's {self.shape} / {self.dtype}")
        self._write(res._node, "matmul (in place)")
        return self
    Array.__matmul__, Array.__rmatmul__, Array.__imatmul__ = _matmul, _rmatmul, _imatmul
    for dunder, fname in _UNARY_OPERATORS.items():
        setattr(Array, f"__{dunder}__", (lambda f: lambda self: f(self))(getattr(ew, fname)))


# modules that import Array themselves, bound once Array exists (hot paths avoid per-call imports)
from . import _indexing, _transfer  # noqa: E402
