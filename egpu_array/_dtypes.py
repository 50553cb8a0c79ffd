"""Data types of the standard, their categories and the type-promotion table, kept as data.

Every rule the standard states about dtypes lives in a table here; functions only look them up.
"""
from __future__ import annotations

import numpy as np

__all__ = [
    "DType", "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "complex64", "complex128", "ALL_DTYPES", "CATEGORIES",
    "promote_types", "result_type_of", "from_numpy", "dtype_of_scalar", "check_category",
]

_builtin_bool = bool


class DType:
    """One of the 13 dtypes of the standard. Hashable; equal only to itself."""

    __slots__ = ("name", "np", "kind", "itemsize", "bits")

    def __init__(self, name: str, kind: str):
        self.name = name
        self.np = np.dtype(name)
        #: one of "b" (bool), "i" (signed), "u" (unsigned), "f" (real float), "c" (complex)
        self.kind = kind
        self.itemsize = self.np.itemsize
        self.bits = 8 * self.itemsize

    def __repr__(self) -> str:
        return f"egpu_array.{self.name}"

    __str__ = __repr__

    # equality is identity and the hash is the object's (both C-level fast): there is exactly one
    # instance per dtype, which unpickling preserves through __reduce__

    def __reduce__(self):
        return (_by_name, (self.name,))

    @property
    def dtype(self) -> np.dtype:
        """The matching NumPy dtype. NumPy reads this attribute, so it accepts our dtypes wherever it
        takes one (``np.dtype(xp.float32)``, ``numpy_array.astype(x.dtype)``): code that mixes
        namespaces, as scikit-learn does with dispatch off, keeps working."""
        return self.np

    @property
    def is_float(self) -> _builtin_bool:
        return self.kind in "fc"

    @property
    def real_dtype(self) -> "DType":
        """float32 for complex64, float64 for complex128, itself otherwise."""
        return {"complex64": float32, "complex128": float64}.get(self.name, self)


bool = DType("bool", "b")
int8, int16, int32, int64 = (DType(f"int{b}", "i") for b in (8, 16, 32, 64))
uint8, uint16, uint32, uint64 = (DType(f"uint{b}", "u") for b in (8, 16, 32, 64))
float32, float64 = DType("float32", "f"), DType("float64", "f")
complex64, complex128 = DType("complex64", "c"), DType("complex128", "c")

ALL_DTYPES = (bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64,
              float32, float64, complex64, complex128)
_BY_NAME = {d.name: d for d in ALL_DTYPES}
#: integer dtype -> (smallest, largest) value, as Python ints
INT_RANGE = {d: (int(np.iinfo(d.np).min), int(np.iinfo(d.np).max)) for d in ALL_DTYPES if d.kind in "iu"}
_BY_NP = {d.np: d for d in ALL_DTYPES}


def _by_name(name: str) -> DType:
    return _BY_NAME[name]


# The standard's dtype categories, worded as the specification words them.
CATEGORIES: dict[str, frozenset] = {
    "bool": frozenset({bool}),
    "signed integer": frozenset({int8, int16, int32, int64}),
    "unsigned integer": frozenset({uint8, uint16, uint32, uint64}),
    "integer": frozenset({int8, int16, int32, int64, uint8, uint16, uint32, uint64}),
    "real floating-point": frozenset({float32, float64}),
    "complex floating-point": frozenset({complex64, complex128}),
    "floating-point": frozenset({float32, float64, complex64, complex128}),
    "numeric": frozenset(ALL_DTYPES) - {bool},
    "real numeric": frozenset(ALL_DTYPES) - {bool, complex64, complex128},
    "integer or boolean": frozenset({bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64}),
    "real-valued": frozenset(ALL_DTYPES) - {complex64, complex128},
    "any": frozenset(ALL_DTYPES),
}

# The promotion lattice of the standard: each row lists the pairs that promote to the right side.
_PROMOTION_ROWS = [
    # (a, b) -> result, for a <= b in the lattice; the table is made symmetric below.
    (("int8", "int16"), "int16"), (("int8", "int32"), "int32"), (("int8", "int64"), "int64"),
    (("int16", "int32"), "int32"), (("int16", "int64"), "int64"), (("int32", "int64"), "int64"),
    (("uint8", "uint16"), "uint16"), (("uint8", "uint32"), "uint32"), (("uint8", "uint64"), "uint64"),
    (("uint16", "uint32"), "uint32"), (("uint16", "uint64"), "uint64"), (("uint32", "uint64"), "uint64"),
    (("int8", "uint8"), "int16"), (("int8", "uint16"), "int32"), (("int8", "uint32"), "int64"),
    (("int16", "uint8"), "int16"), (("int16", "uint16"), "int32"), (("int16", "uint32"), "int64"),
    (("int32", "uint8"), "int32"), (("int32", "uint16"), "int32"), (("int32", "uint32"), "int64"),
    (("int64", "uint8"), "int64"), (("int64", "uint16"), "int64"), (("int64", "uint32"), "int64"),
    (("float32", "float64"), "float64"), (("float32", "complex64"), "complex64"),
    (("float32", "complex128"), "complex128"), (("float64", "complex64"), "complex128"),
    (("float64", "complex128"), "complex128"), (("complex64", "complex128"), "complex128"),
]
PROMOTION_TABLE: dict[tuple, DType] = {(d, d): d for d in ALL_DTYPES}
for (_a, _b), _r in _PROMOTION_ROWS:
    PROMOTION_TABLE[_BY_NAME[_a], _BY_NAME[_b]] = _BY_NAME[_r]
    PROMOTION_TABLE[_BY_NAME[_b], _BY_NAME[_a]] = _BY_NAME[_r]


def promote_types(a: DType, b: DType, func: str = "result_type") -> DType:
    """The standard's promotion of two dtypes; TypeError where the standard defines none."""
    try:
        return PROMOTION_TABLE[a, b]
    except KeyError:
        raise TypeError(f"{func}: {a} and {b} cannot be type promoted together "
                        "(the standard defines no promotion between these kinds)") from None


# Which Python scalar types may combine with an array of a given kind (the standard's scalar rules).
_SCALAR_KINDS = {
    "b": (_builtin_bool,),
    "i": (int,), "u": (int,),  # bool is a subclass of int; excluded explicitly in scalar_fits
    "f": (int, float, complex),  # a complex scalar makes a real float array complex
    "c": (int, float, complex),
}


def scalar_fits(value, dtype: DType) -> _builtin_bool:
    """Whether a Python scalar may be combined with an array of ``dtype`` (standard's rules)."""
    if isinstance(value, _builtin_bool):
        return dtype.kind == "b"
    if dtype.kind == "b":
        return False
    return isinstance(value, _SCALAR_KINDS[dtype.kind])


def dtype_of_scalar(value, default_float=None, default_int=None) -> DType:
    """The default dtype a lone Python scalar becomes."""
    if isinstance(value, _builtin_bool):
        return bool
    if isinstance(value, int):
        return default_int or int64
    if isinstance(value, float):
        return default_float or float64
    if isinstance(value, complex):
        return complex128 if (default_float or float64) is float64 else complex64
    raise TypeError(f"expected a Python bool, int, float or complex, got {type(value).__name__}")


def result_type_of(dtypes, scalars=(), func: str = "result_type") -> DType:
    """Promote dtypes, then fold in Python scalars by the standard's rules."""
    it = iter(dtypes)
    try:
        res = next(it)
    except StopIteration:
        raise ValueError(f"{func}: at least one array or dtype is required") from None
    for d in it:
        res = promote_types(res, d, func)
    for s in scalars:
        if not scalar_fits(s, res):
            raise TypeError(f"{func}: Python {type(s).__name__} {s!r} cannot be combined with an "
                            f"array of dtype {res}")
        if isinstance(s, complex) and res.kind == "f":
            res = complex64 if res is float32 else complex128
    return res


def from_numpy(npdtype) -> DType:
    """Our dtype for a NumPy dtype; TypeError for dtypes outside the standard."""
    try:
        return _BY_NP[np.dtype(npdtype)]
    except (KeyError, TypeError):
        raise TypeError(f"dtype {npdtype!r} is not one of the standard's 13 dtypes") from None


def check_category(func: str, category: str, *dtypes: DType) -> None:
    """Raise TypeError naming ``func`` when a dtype lies outside ``category``."""
    allowed = CATEGORIES[category]
    for d in dtypes:
        if d not in allowed:
            raise TypeError(f"{func}: only {category} dtypes are allowed, got {d}")
