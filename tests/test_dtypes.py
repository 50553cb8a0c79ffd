"""Data types and data type functions against the standard (2025.12), written out independently.

The promotion table below is transcribed from the standard's "Type Promotion Rules" page (not
derived from egpu_array._dtypes): integers promote within their lattice, mixed signed/unsigned
integers to the smallest signed type holding both (uint64 mixes with no signed type), floats and
complex floats within theirs, and bool, integer and floating kinds do not mix.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, strategies as st

import egpu_array as xp
from conftest import ALL, COMPLEX, INTEGER, REAL_FLOAT, elements, np_array, to_xp

# ---- the standard's table ---------------------------------------------------------------------
_I = {"i1": "int8", "i2": "int16", "i4": "int32", "i8": "int64",
      "u1": "uint8", "u2": "uint16", "u4": "uint32", "u8": "uint64",
      "f4": "float32", "f8": "float64", "c8": "complex64", "c16": "complex128", "b": "bool"}
_ROWS = """
     i1  i2  i4  i8  u1  u2  u4  u8  f4  f8  c8  c16 b
i1   i1  i2  i4  i8  i2  i4  i8  -   -   -   -   -   -
i2   i2  i2  i4  i8  i2  i4  i8  -   -   -   -   -   -
i4   i4  i4  i4  i8  i4  i4  i8  -   -   -   -   -   -
i8   i8  i8  i8  i8  i8  i8  i8  -   -   -   -   -   -
u1   i2  i2  i4  i8  u1  u2  u4  u8  -   -   -   -   -
u2   i4  i4  i4  i8  u2  u2  u4  u8  -   -   -   -   -
u4   i8  i8  i8  i8  u4  u4  u4  u8  -   -   -   -   -
u8   -   -   -   -   u8  u8  u8  u8  -   -   -   -   -
f4   -   -   -   -   -   -   -   -   f4  f8  c8  c16 -
f8   -   -   -   -   -   -   -   -   f8  f8  c16 c16 -
c8   -   -   -   -   -   -   -   -   c8  c16 c8  c16 -
c16  -   -   -   -   -   -   -   -   c16 c16 c16 c16 -
b    -   -   -   -   -   -   -   -   -   -   -   -   b
"""


def _table():
    lines = [ln.split() for ln in _ROWS.strip().splitlines()]
    cols = lines[0]
    table = {}
    for row in lines[1:]:
        for col, res in zip(cols, row[1:]):
            table[_I[row[0]], _I[col]] = None if res == "-" else _I[res]
    return table


STANDARD = _table()
PAIRS = sorted(STANDARD)


def D(name):
    return getattr(xp, name)


def test_table_is_symmetric_and_complete():
    assert len(STANDARD) == 13 * 13
    for (a, b), r in STANDARD.items():
        assert STANDARD[b, a] == r


@pytest.mark.parametrize("a,b", PAIRS)
def test_result_type_pairs(a, b):
    expected = STANDARD[a, b]
    if expected is None:
        # mixed kinds (and uint64 with signed ints) are not defined by the standard: we refuse them
        with pytest.raises(TypeError):
            xp.result_type(D(a), D(b))
        with pytest.raises(TypeError):
            xp.add(xp.zeros(1, dtype=D(a)) if a != "bool" else xp.asarray([True]),
                   xp.zeros(1, dtype=D(b)) if b != "bool" else xp.asarray([True]))
    else:
        assert xp.result_type(D(a), D(b)) == D(expected)
        x1 = xp.asarray(np.zeros(2, dtype=a))
        x2 = xp.asarray(np.zeros(2, dtype=b))
        assert xp.result_type(x1, x2) == D(expected)
        if "bool" not in (a, b):
            assert xp.add(x1, x2).dtype == D(expected)
            assert np.asarray(xp.add(x1, x2)).dtype == np.dtype(expected)
        assert xp.equal(x1, x2).dtype == xp.bool


@pytest.mark.parametrize("a,b,c", [("int8", "uint8", "int16"), ("float32", "float64", "complex64"),
                                   ("uint8", "uint16", "uint32"), ("int8", "int8", "int8")])
def test_result_type_many(a, b, c):
    ab = STANDARD[a, b]
    assert xp.result_type(D(a), D(b), D(c)) == D(STANDARD[ab, c])


def test_result_type_python_scalars():
    assert xp.result_type(xp.int8, 1) == xp.int8
    assert xp.result_type(xp.uint16, 7) == xp.uint16
    assert xp.result_type(xp.float32, 1) == xp.float32
    assert xp.result_type(xp.float32, 1.0) == xp.float32
    assert xp.result_type(xp.float32, 1j) == xp.complex64
    assert xp.result_type(xp.float64, 1j) == xp.complex128
    assert xp.result_type(xp.complex64, 1.0) == xp.complex64
    assert xp.result_type(xp.bool, True) == xp.bool
    assert xp.result_type(xp.int8, xp.int16, 3) == xp.int16
    for dtype, scalar in [(xp.bool, 1), (xp.bool, 1.0), (xp.int8, 1.5), (xp.int32, 1j),
                          (xp.int8, True), (xp.float32, True)]:
        with pytest.raises(TypeError):
            xp.result_type(dtype, scalar)
    with pytest.raises((TypeError, ValueError)):
        xp.result_type()


@pytest.mark.parametrize("a,b", PAIRS)
def test_can_cast(a, b):
    assert xp.can_cast(D(a), D(b)) == (STANDARD[a, b] == b)
    assert xp.can_cast(xp.asarray(np.zeros(1, dtype=a)), D(b)) == (STANDARD[a, b] == b)


@pytest.mark.parametrize("name", REAL_FLOAT + COMPLEX)
def test_finfo(name):
    f = xp.finfo(D(name))
    real = {"complex64": "float32", "complex128": "float64"}.get(name, name)
    ref = np.finfo(real)
    for attr in ("eps", "max", "min", "smallest_normal"):
        v = getattr(f, attr)
        assert type(v) is float, attr
        assert v == float(getattr(ref, attr)), attr
    assert type(f.bits) is int and f.bits == ref.bits
    assert f.dtype == D(real)
    assert xp.finfo(xp.asarray(np.zeros(1, dtype=name))).bits == ref.bits
    for bad in ("bool", "int32", "uint8"):
        with pytest.raises(TypeError):
            xp.finfo(D(bad))


@pytest.mark.parametrize("name", INTEGER)
def test_iinfo(name):
    i = xp.iinfo(D(name))
    ref = np.iinfo(name)
    for attr in ("bits", "max", "min"):
        v = getattr(i, attr)
        assert type(v) is int and v == int(getattr(ref, attr)), attr
    assert i.dtype == D(name)
    assert xp.iinfo(xp.asarray(np.zeros(1, dtype=name))).max == int(ref.max)
    for bad in ("bool", "float32", "complex64"):
        with pytest.raises(TypeError):
            xp.iinfo(D(bad))


_KIND_MEMBERS = {
    "bool": {"bool"},
    "signed integer": {"int8", "int16", "int32", "int64"},
    "unsigned integer": {"uint8", "uint16", "uint32", "uint64"},
    "integral": set(INTEGER),
    "real floating": {"float32", "float64"},
    "complex floating": {"complex64", "complex128"},
    "numeric": set(ALL) - {"bool"},
}


@pytest.mark.parametrize("kind", sorted(_KIND_MEMBERS))
def test_isdtype_kinds(kind):
    for name in ALL:
        assert xp.isdtype(D(name), kind) == (name in _KIND_MEMBERS[kind]), name


def test_isdtype_dtypes_and_tuples():
    for a, b in itertools.product(ALL, ALL):
        assert xp.isdtype(D(a), D(b)) == (a == b)
    kinds = ("bool", "real floating")
    for name in ALL:
        assert xp.isdtype(D(name), kinds) == (name in {"bool", "float32", "float64"})
        assert xp.isdtype(D(name), (xp.int8, "complex floating")) == (name in {"int8", "complex64", "complex128"})
    with pytest.raises(ValueError):
        xp.isdtype(xp.int8, "integer-ish")
    with pytest.raises(TypeError):
        xp.isdtype(xp.int8, 3)


def test_dtype_objects():
    for name in ALL:
        d = D(name)
        assert d == d and hash(d) == hash(D(name))
        assert all(d != D(o) for o in ALL if o != name)
    assert xp.asarray([1, 2]).dtype == xp.int64
    assert xp.asarray([1.0]).dtype == xp.float64
    assert xp.asarray([True]).dtype == xp.bool
    assert xp.asarray([1j]).dtype == xp.complex128


# ---- astype ---------------------------------------------------------------------------------------

#: complex to a real dtype is refused; complex to bool is defined (``0+0j`` False, all else True)
_CAST_PAIRS = [(a, b) for a in ALL for b in ALL if not (a in COMPLEX and b not in COMPLEX + ("bool",))]


def _cast_elements(src, dst):
    """Values whose conversion is defined: no nan/inf/out-of-range floats into integers."""
    if src in REAL_FLOAT + COMPLEX and dst in INTEGER:
        info = np.iinfo(dst)
        lo, hi = max(float(info.min), -1e6), min(float(info.max), 1e6)
        return {"min_value": lo, "max_value": hi} if src in REAL_FLOAT else {"finite": True}
    return {}


@pytest.mark.parametrize("src,dst", _CAST_PAIRS)
@given(data=st.data())
def test_astype_against_numpy(src, dst, data):
    shape = data.draw(st.sampled_from([(), (0,), (3,), (2, 3)]))
    kw = _cast_elements(src, dst)
    a = np_array(data.draw, src, shape, **kw)
    x = to_xp(xp, a)
    r = xp.astype(x, D(dst))
    assert r.dtype == D(dst) and r.shape == a.shape
    with np.errstate(all="ignore"):
        e = a.astype(dst)
    got = np.asarray(r)
    if dst in REAL_FLOAT + COMPLEX:
        assert np.array_equal(got, e, equal_nan=True)
    else:
        assert np.array_equal(got, e)


@pytest.mark.parametrize("src", COMPLEX)
@pytest.mark.parametrize("dst", [d for d in ALL if d not in COMPLEX + ("bool",)])
def test_astype_complex_to_real_raises(src, dst):
    with pytest.raises(TypeError):
        xp.astype(xp.asarray(np.zeros(2, dtype=src)), D(dst))


def test_astype_copy():
    x = xp.asarray(np.arange(4.0))
    y = xp.astype(x, xp.float64)  # copy=True by default: a new array
    y += 1
    assert np.array_equal(np.asarray(x), np.arange(4.0))
    z = xp.astype(x, xp.float64, copy=False)
    assert np.array_equal(np.asarray(z), np.arange(4.0))
    w = xp.astype(x, xp.float32, copy=False)  # a dtype change copies regardless
    assert w.dtype == xp.float32
    with pytest.raises(TypeError):
        xp.astype(x, "float32")


@given(data=st.data())
def test_astype_of_views(data):
    src, dst = data.draw(st.sampled_from([("int16", "float32"), ("float64", "int8"), ("bool", "uint8"),
                                          ("uint8", "complex64"), ("float32", "bool")]))
    a = np_array(data.draw, src, (4, 3), **_cast_elements(src, dst))
    x = xp.asarray(a)
    for xv, av in ((x[::2], a[::2]), (x[::-1], a[::-1]), (x.T, a.T)):
        with np.errstate(all="ignore"):
            assert np.array_equal(np.asarray(xp.astype(xv, D(dst))), av.astype(dst), equal_nan=True)


def test_elements_used_by_casts_are_in_range():
    # guard: the strategies above really stay inside the target range
    assert elements("float64", min_value=-5.0, max_value=5.0).example() <= 5.0
