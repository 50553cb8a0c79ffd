"""Creation functions with diagonal offsets (eye, tril, triu) against NumPy, huge offsets included;
full/full_like with fill values at and beyond their dtype's range."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import egpu_array as xp
from test_elementwise import assert_matches

#: offsets far beyond any matrix (2**64 wrapped to 0 in the int64 kernel argument before)
HUGE = [2**64, -2**64, 2**63, -(2**63) - 1, 10**30]


@given(rows=st.integers(0, 6), cols=st.integers(0, 6), k=st.one_of(st.integers(-8, 8), st.sampled_from(HUGE)))
def test_eye_tril_triu(rows, cols, k):
    kk = max(-rows - 1, min(k, cols + 1))  # NumPy's own offset arithmetic overflows on the huge ones
    assert_matches(xp.eye(rows, cols, k=k), np.eye(rows, cols, k=kk))
    a = np.arange(2 * rows * cols, dtype=np.float32).reshape(2, rows, cols)
    assert_matches(xp.tril(xp.asarray(a), k=k), np.tril(a, k=kk))
    assert_matches(xp.triu(xp.asarray(a), k=k), np.triu(a, k=kk))


def test_diagonal_offset_must_be_an_integer():
    assert_matches(xp.eye(3, k=np.int64(1)), np.eye(3, k=1))
    for bad in (1.5, True, "1"):
        with pytest.raises(TypeError, match="eye: expected an integer k"):
            xp.eye(3, k=bad)
        with pytest.raises(TypeError, match="tril: expected an integer k"):
            xp.tril(xp.ones((2, 2)), k=bad)


@pytest.mark.parametrize("dtype", ["int8", "uint8", "int32", "uint32", "int64", "uint64"])
def test_full_integer_range(dtype):
    """The ends of an integer dtype's range fill exactly; one past them raises OverflowError (as
    ``asarray`` does) instead of a wrapped value (``full((2,), 300, dtype=int8)`` gave 44)."""
    info = np.iinfo(dtype)
    d = getattr(xp, dtype)
    for v in (int(info.min), int(info.max)):
        assert_matches(xp.full((2,), v, dtype=d), np.full((2,), v, dtype=dtype))
        assert_matches(xp.full_like(xp.zeros(3, dtype=d), v), np.full((3,), v, dtype=dtype))
    for v in (int(info.min) - 1, int(info.max) + 1, 2 ** 70):
        with pytest.raises(OverflowError, match="full: fill value"):
            xp.full((2,), v, dtype=d)
        with pytest.raises(OverflowError, match="full_like: fill value"):
            xp.full_like(xp.zeros(3, dtype=d), v)


def test_full_default_dtypes_and_kinds():
    """Without a dtype a Python int is int64 (2**63 does not fit); a complex value cannot fill a
    real dtype; ints beyond int64 fill float dtypes exactly as a cast would round them."""
    with pytest.raises(OverflowError, match="full: fill value"):
        xp.full((2,), 2 ** 63)
    with pytest.raises(TypeError, match="full: a complex fill value"):
        xp.full((2,), 1 + 2j, dtype=xp.float64)
    assert_matches(xp.full((2,), 2 ** 70, dtype=xp.float64), np.full((2,), 2.0 ** 70))
    assert_matches(xp.full((2,), 3, dtype=xp.complex64), np.full((2,), 3, dtype=np.complex64))


@pytest.mark.parametrize("obj", [[1.0, 2.5], [1, 2.5], [True, 2], [[1, 2], (3, 4)], [1 + 2j, 3], [], [[], []],
                                 [np.float64(1.5), 2], [2**62, -1], [[[True]]], list(np.arange(3000.0))])
def test_nested_sequences_match_numpy_with_the_standards_default_dtypes(obj):
    """Nested Python scalars: the widest kind's default dtype (bool, int64, float64, complex128;
    float64 when empty), the values NumPy reads. (The scan was pure Python per element: 70x
    NumPy's time for 1e4 floats.)"""
    want = np.array(obj)
    got = xp.asarray(obj)
    assert got.dtype == {"b": xp.bool, "i": xp.int64, "f": xp.float64, "c": xp.complex128}[want.dtype.kind]
    np.testing.assert_array_equal(np.asarray(got), want)


@pytest.mark.parametrize("obj, error", [([1, "a"], TypeError), ([None], TypeError), ([1, [2]], ValueError),
                                        ([[1.0], [2.0, 3.0]], ValueError), ([2**63], OverflowError)])
def test_bad_nested_sequences_raise_naming_asarray(obj, error):
    with pytest.raises(error, match="asarray"):
        xp.asarray(obj)


def test_sequences_of_0d_arrays_stay_on_their_device():
    """0-d arrays inside a sequence: all on one device (else ValueError); arrays only are stacked
    there in their promoted dtype, with nothing crossing the link (it read each value three
    times and made a cpu array of the default dtype); mixed with scalars, each is read once."""
    s0, s1 = xp.asarray(1.5, device="sim"), xp.asarray(2.5, device="sim")
    with xp.profile() as prof:
        r = xp.asarray([[s0], [s1]])
        xp.synchronize(r)
    assert r.device == "sim" and r.shape == (2, 1) and prof.bytes_from_device == 0
    np.testing.assert_array_equal(np.asarray(r), [[1.5], [2.5]])
    assert xp.asarray([xp.asarray(np.int8(3)), xp.asarray(np.int8(4))]).dtype == xp.int8
    with xp.profile() as prof:
        r = xp.asarray([s0, 1], dtype=xp.float32)
    assert r.device == "sim" and r.dtype == xp.float32 and prof.bytes_from_device == 8
    np.testing.assert_array_equal(np.asarray(r), [1.5, 1.0])
    assert xp.asarray([s0, s1], device="cpu").device == "cpu"
    with pytest.raises(ValueError, match="asarray: arrays on different devices"):
        xp.asarray([s0, xp.asarray(1.0)])


def test_full_from_a_0d_array_stays_on_its_device():
    """full/full_like with a 0-d array as the value fill on the device where it is, in its dtype,
    with nothing read back (full read it to the host and made a cpu array; a value on another
    device went along silently; full_like raised a TypeError with the wrong reason)."""
    s0 = xp.asarray(1.5, device="sim")
    with xp.profile() as prof:
        r = xp.full((2, 3), s0)
        xp.synchronize(r)
    assert r.device == "sim" and r.dtype == xp.float64 and prof.bytes_from_device == 0
    np.testing.assert_array_equal(np.asarray(r), np.full((2, 3), 1.5))
    i0 = xp.asarray(np.int8(3))
    assert xp.full(2, i0).dtype == xp.int8 and xp.full(2, i0, dtype=xp.float32).dtype == xp.float32
    np.testing.assert_array_equal(np.asarray(xp.full_like(xp.ones(3, device="sim"), s0)), [1.5] * 3)
    for bad, error in ((lambda: xp.full(2, s0, device="cpu"), ValueError),
                       (lambda: xp.full_like(xp.ones(3), s0), ValueError),
                       (lambda: xp.full(2, xp.asarray([1.0])), TypeError),
                       (lambda: xp.full(2, xp.asarray(1j), dtype=xp.float64), TypeError)):
        with pytest.raises(error, match="full"):
            bad()


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_outputs_are_new_arrays(indexing):
    """meshgrid's results behave as NumPy's copies: writing one changes neither the inputs nor
    its other repetitions (X[0] = 0 zeroed every row and the input), later writes to the inputs
    do not reach them; an expression of them still reads only the inputs (one fused kernel)."""
    ha, hb = np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0])
    a, b = xp.asarray(ha), xp.asarray(hb)
    X, Y = xp.meshgrid(a, b, indexing=indexing)
    HX, HY = np.meshgrid(ha, hb, indexing=indexing)
    with xp.profile() as prof:
        total = float(xp.sum(X * Y))
    assert total == float(np.sum(HX * HY)) and prof.launches == 1
    a += 100.0
    X[0] = 0.0
    HX[0] = 0.0
    Y[Y > 15] = -1.0
    HY[HY > 15] = -1.0
    np.testing.assert_array_equal(np.asarray(X), HX)
    np.testing.assert_array_equal(np.asarray(Y), HY)
    np.testing.assert_array_equal(np.asarray(b), hb)


def test_nested_0d_arrays_of_mixed_kinds_promote_as_numpy():
    """0-d arrays of different kinds inside a sequence promote as NumPy promotes them (the
    standard's array promotion refused int64 with float64: a TypeError from stack); dtype= casts
    each; ragged nesting is an asarray error."""
    assert xp.asarray([xp.asarray(1), xp.asarray(2.5)]).dtype == xp.float64
    assert xp.asarray([xp.asarray(1), xp.asarray(2, dtype=xp.uint64)]).dtype == xp.float64
    r = xp.asarray([xp.asarray(True), xp.asarray(2)], dtype=xp.float32)
    assert r.dtype == xp.float32 and np.asarray(r).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="asarray"):
        xp.asarray([[xp.asarray(1.0)], []])


def test_linspace_takes_numpy_scalars_and_0d_arrays_where_they_are():
    """NumPy scalars are numbers (they were refused); 0-d arrays (``linspace(min(x), max(x), n)``)
    are read on their device: the result is made there with nothing copied to the host."""
    np.testing.assert_array_equal(np.asarray(xp.linspace(np.float32(0), np.int64(1), 3)), [0.0, 0.5, 1.0])
    x = xp.asarray([1.0, 5.0], device="sim")
    with xp.profile() as prof:
        r = xp.linspace(xp.min(x), xp.max(x), 5)
        xp.synchronize(r)
    assert r.device == "sim" and prof.bytes_from_device == 0
    np.testing.assert_array_equal(np.asarray(r), np.linspace(1.0, 5.0, 5))
    np.testing.assert_array_equal(np.asarray(xp.linspace(xp.asarray(0.3), 7.1, 100, endpoint=False)),
                                  np.asarray(xp.linspace(0.3, 7.1, 100, endpoint=False)))
    for bad, error in ((lambda: xp.linspace(xp.asarray([1.0]), 2, 3), TypeError),
                       (lambda: xp.linspace(x[0], 2, 3, device="cpu"), ValueError)):
        with pytest.raises(error, match="linspace"):
            bad()


def test_sequences_holding_themselves_or_nested_too_deep():
    """A list holding itself, or nested past 64 levels, is a ValueError naming asarray (a
    RecursionError before); 64 levels make a 64-d array, as in NumPy."""
    loop: list = []
    loop.append(loop)
    deep = 1.0
    for _ in range(64):
        deep = [deep]
    assert xp.asarray(deep).ndim == 64
    for bad in (loop, [deep]):
        with pytest.raises(ValueError, match="asarray"):
            xp.asarray(bad)
