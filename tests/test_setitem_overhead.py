"""The short paths of ``x[key] = value`` (keys of ints and slices, the whole array, float scalars)
give NumPy's results and errors, and keep the lazy semantics of the general path.

Behaviour only: the speed of these paths is measured by benchmarks, never here.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array._indexing import _normalize_key, _simple_keys

FAST = settings(max_examples=40, deadline=None, derandomize=True)


@st.composite
def simple_keys(draw):
    """A shape and a key of ints, slices (any bounds/steps) and at most one ellipsis; sometimes a
    bare int/slice/ellipsis, sometimes with too many entries or out-of-range ints."""
    shape = tuple(draw(st.lists(st.integers(0, 4), min_size=0, max_size=3)))
    parts = []
    for _ in range(draw(st.integers(0, len(shape) + 1))):
        kind = draw(st.sampled_from(["int", "slice", "slice", "ellipsis"]))
        if kind == "int":
            parts.append(draw(st.integers(-6, 6)))
        elif kind == "slice":
            b = st.none() | st.integers(-6, 6)
            parts.append(slice(draw(b), draw(b), draw(st.none() | st.sampled_from([-2, -1, 1, 3]))))
        else:
            parts.append(Ellipsis)
    key = tuple(parts)
    if len(key) == 1 and draw(st.booleans()):
        key = key[0]
    return shape, key


def _numpy_outcome(a: np.ndarray, key, value):
    try:
        a[key] = value
    except IndexError:
        return IndexError
    return a


@given(simple_keys(), st.integers(0, 2))
@FAST
def test_int_slice_keys_match_numpy(case, vkind):
    shape, key = case
    base = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    try:
        view_shape = base[key].shape
    except IndexError:
        view_shape = None
    if vkind == 0 or view_shape is None:
        value = -1.5
    else:  # an array of the view's shape, or one broadcast along its leading axes
        vshape = view_shape if vkind == 1 else view_shape[1:]
        value = -np.arange(1, int(np.prod(vshape)) + 1, dtype=np.float64).reshape(vshape)
    expected = _numpy_outcome(base.copy(), key, value)
    x = xp.asarray(base)
    xv = xp.asarray(value) if isinstance(value, np.ndarray) else value
    if expected is IndexError:
        with pytest.raises(IndexError):
            x[key] = xv
        np.testing.assert_array_equal(np.asarray(x), base)  # nothing written
    else:
        x[key] = xv
        np.testing.assert_array_equal(np.asarray(x), expected)


@given(simple_keys())
@FAST
def test_simple_keys_agree_with_the_general_normalization(case):
    shape, key = case
    fast = _simple_keys(key, len(shape))
    if fast is None:
        return
    assert fast == _normalize_key(key, len(shape), "t")


def test_other_keys_take_the_general_path():
    assert _simple_keys(True, 1) is None
    assert _simple_keys(np.int64(1), 1) is None
    assert _simple_keys((None, 0), 2) is None
    assert _simple_keys((..., ...), 2) is None
    assert _simple_keys((0, 0, 0), 2) is None  # too many: the general path raises
    assert _simple_keys(0, 0) is None
    x = xp.zeros((2, 3))
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0] = 1.0
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...] = 1.0
    x[np.int64(1), ...] = 2.0
    x[True] = x + 1.0
    a = np.zeros((2, 3))
    a[np.int64(1), ...] = 2.0
    a[True] = a + 1.0
    np.testing.assert_array_equal(np.asarray(x), a)


@pytest.mark.parametrize("key", [Ellipsis, ()])
@pytest.mark.parametrize("shape", [(), (4,), (2, 3)])
def test_whole_array_assignment(key, shape):
    a = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    x = xp.asarray(a)
    x[key] = 7.0
    np.testing.assert_array_equal(np.asarray(x), np.full(shape, 7.0, np.float32))
    src = xp.asarray(a + 1)
    x[key] = src
    np.testing.assert_array_equal(np.asarray(x), a + 1)
    src[key] = 0.0  # a copy was written, not a view of src
    np.testing.assert_array_equal(np.asarray(x), a + 1)


def test_whole_array_assignment_with_pending_expressions():
    a = xp.asarray(np.arange(6.0).reshape(2, 3))
    y = a + 1.0  # pending
    y[...] = y * 2.0  # the value reads y's value before the write
    np.testing.assert_array_equal(np.asarray(y), (np.arange(6.0).reshape(2, 3) + 1) * 2)
    b = xp.asarray(np.ones((2, 3)))
    old = b * 3.0  # pending reader of b: keeps b's old values
    b[...] = a.T.T
    np.testing.assert_array_equal(np.asarray(old), np.full((2, 3), 3.0))
    np.testing.assert_array_equal(np.asarray(b), np.arange(6.0).reshape(2, 3))
    c = xp.asarray(np.arange(4.0))
    c[...] = xp.flip(c)  # reads the memory it overwrites in another order
    np.testing.assert_array_equal(np.asarray(c), np.arange(4.0)[::-1])


def test_transposed_and_column_writes():
    rng = np.random.default_rng(1)
    a = rng.random((8, 8)).astype(np.float32)
    y = xp.zeros((8, 8), dtype=xp.float32)
    y[...] = xp.asarray(a).T
    np.testing.assert_array_equal(np.asarray(y), a.T)
    y[:, 0] = xp.asarray(np.arange(8, dtype=np.float32))
    ref = a.T.copy()
    ref[:, 0] = np.arange(8)
    np.testing.assert_array_equal(np.asarray(y), ref)
    x = xp.asarray(np.arange(10.0) ** 2)
    z = xp.zeros(10)
    z[1:-1] = x[2:] - x[:-2]
    ref = np.zeros(10)
    ref[1:-1] = (np.arange(10.0) ** 2)[2:] - (np.arange(10.0) ** 2)[:-2]
    np.testing.assert_array_equal(np.asarray(z), ref)


@pytest.mark.parametrize("dtype,value,ok", [
    (xp.float32, 0.1, True), (xp.float64, -0.0, True), (xp.float32, float("nan"), True),
    (xp.float32, 3, True), (xp.complex64, 1.5, True), (xp.int32, 1.5, False),
    (xp.bool, 1.0, False), (xp.int8, 300, False), (xp.float64, 1j, False)])
def test_scalar_values(dtype, value, ok):
    x = xp.zeros(3, dtype=dtype)
    if not ok:
        with pytest.raises((TypeError, OverflowError)):
            x[1] = value
        np.testing.assert_array_equal(np.asarray(x), np.zeros(3, dtype=np.dtype(dtype.name)))
        return
    x[1] = value
    ref = np.zeros(3, dtype=np.dtype(dtype.name))
    ref[1] = value
    np.testing.assert_array_equal(np.asarray(x), ref)
    if value == 0:
        assert np.signbit(np.asarray(x)[1]) == np.signbit(value)


def test_value_dtype_and_device_errors():
    x = xp.zeros(3, dtype=xp.float32)
    with pytest.raises(TypeError, match="lossy"):
        x[...] = xp.ones(3, dtype=xp.float64)
    with pytest.raises(TypeError, match="promoted"):  # no promotion across kinds (2025.12)
        x[...] = xp.ones(3, dtype=xp.int8)
    y = xp.zeros((2, 3), dtype=xp.int32)
    y[:, 1:] = xp.asarray(np.array([-128, 127], dtype=np.int8))  # cast on the way, broadcast
    np.testing.assert_array_equal(np.asarray(y), [[0, -128, 127], [0, -128, 127]])
    with pytest.raises(ValueError, match="broadcast"):
        x[...] = xp.ones(4, dtype=xp.float32)
    with pytest.raises(TypeError, match="Python scalar"):
        x[0] = "a"
