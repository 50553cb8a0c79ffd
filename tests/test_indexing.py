"""Basic indexing (``x[key]``, ``x[key] = value``) against NumPy, and view/mutation sequences.

Basic indices are zero-copy views: no kernel runs, and a write through a view is seen by its base
(and by other views), as in NumPy. Pending lazy expressions keep the values they had when built.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import egpu_array as xp

FAST = settings(max_examples=30, deadline=None, derandomize=True)


def to_xp(a: np.ndarray):
    """``xp.asarray`` that keeps 0-d arrays 0-d."""
    if a.ndim == 0:
        return xp.reshape(xp.asarray(a.reshape(1)), ())
    return xp.asarray(a)


def check(out, expected) -> None:
    expected = np.asarray(expected)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    np.testing.assert_array_equal(np.asarray(out), expected)


@st.composite
def keys(draw, shape):
    """A basic index for ``shape``: ints (negative too), slices (negative steps), None, ...,
    boolean scalars."""
    out = []
    dims = list(shape)
    used_ellipsis = False
    bools = False
    while dims or draw(st.booleans()):
        choice = draw(st.sampled_from(["int", "slice", "slice", "none", "ellipsis", "bool", "stop"]))
        if choice == "stop":
            break
        if choice == "none":
            out.append(None)
        elif choice == "bool":
            out.append(draw(st.booleans()))
            bools = True
        elif choice == "ellipsis":
            if not used_ellipsis:
                used_ellipsis = True
                out.append(Ellipsis)
                dims = []
        elif dims:
            n = dims.pop(0)
            if choice == "int" and n:
                out.append(draw(st.integers(-n, n - 1)))
            else:
                bound = st.none() | st.integers(-n - 2, n + 2)
                step = draw(st.none() | st.integers(-3, 3).filter(lambda s: s != 0))
                out.append(slice(draw(bound), draw(bound), step))
        if len(out) > 6:
            break
    if bools:  # a boolean scalar combines only with slices, None and ...; keep the first one
        first = next(i for i, k in enumerate(out) if isinstance(k, bool))
        out = [k for i, k in enumerate(out) if i == first or not isinstance(k, bool)]
        out = [slice(None) if isinstance(k, int) and not isinstance(k, bool) else k for k in out]
    if len(out) == 1 and draw(st.booleans()):
        return out[0]
    return tuple(out)


@FAST
@given(st.data())
def test_getitem_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5))
    dtype = data.draw(st.sampled_from(["bool", "int16", "uint32", "float32", "complex128"]))
    a = (np.arange(int(np.prod(shape))) % 5).astype(dtype).reshape(shape)
    x = to_xp(a)
    key = data.draw(keys(shape))
    with xp.profile() as prof:
        out = x[key]
    assert prof.launches == 0
    check(out, a[key])


@FAST
@given(st.data())
def test_setitem_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x = to_xp(a.copy())
    key = data.draw(keys(shape))
    target_shape = a[key].shape
    if data.draw(st.booleans()):
        value = data.draw(st.floats(-5, 5))
        a[key] = value
        x[key] = value
    else:
        vshape = target_shape[data.draw(st.integers(0, len(target_shape))):]
        v = -np.arange(int(np.prod(vshape)), dtype=np.float64).reshape(vshape) - 1
        a[key] = v
        x[key] = to_xp(v)
    check(x, a)


def test_boolean_scalar_index():
    a = np.arange(6).reshape(2, 3)
    x = xp.asarray(a)
    for key in [True, False, (True,), (False, ...), (..., True), (None, False, slice(1, None))]:
        check(x[key], a[key])
    for key in [(0, True), (True, False)]:   # NumPy's advanced-index placement: not supported
        with pytest.raises(IndexError, match="boolean scalar"):
            x[key]
    x[False] = 100
    check(x, a)
    x[True] = x[True] * 2
    check(x, a * 2)


def test_zero_d_integer_array_index():
    a = np.arange(12).reshape(3, 4)
    x = xp.asarray(a)
    i = xp.reshape(xp.asarray([2]), ())
    j = xp.reshape(xp.asarray([-1], dtype=xp.int8), ())
    check(x[i], a[2])
    check(x[i, j], a[2, -1])
    check(x[..., j], a[..., -1])
    x[i, j] = 50
    a[2, -1] = 50
    check(x, a)
    b = xp.reshape(xp.asarray([True]), ())
    check(x[b], a[True])
    with pytest.raises(IndexError):
        x[xp.reshape(xp.asarray([3]), ())]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.data())
def test_integer_array_and_mask_indexing_match_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    a = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    x = xp.asarray(a)
    n = shape[0]
    idx = data.draw(hnp.arrays(np.int64, data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=4)),
                               elements=st.integers(-n, n - 1)))
    check(x[xp.asarray(idx)], a[idx])
    if len(shape) >= 2:
        m = shape[1]
        j = data.draw(hnp.arrays(np.int64, idx.shape, elements=st.integers(-m, m - 1)))
        check(x[xp.asarray(idx), xp.asarray(j)], a[idx, j])
        check(x[..., xp.asarray(j % shape[-1])], a[..., j % shape[-1]])
        check(x[xp.asarray(idx), 0], a[idx, 0])
    mask = data.draw(hnp.arrays(np.bool_, shape[: data.draw(st.integers(1, len(shape)))]))
    check(x[xp.asarray(mask)], a[mask])
    b = a.copy()
    b[mask] = -7
    x[xp.asarray(mask)] = -7
    check(x, b)


def test_index_arrays_out_of_bounds_and_bad_dtypes_raise():
    x = xp.asarray(np.arange(6))
    with pytest.raises(IndexError):
        np.asarray(x[xp.asarray([0, 6])])
    with pytest.raises(IndexError):
        x[xp.asarray([1.0, 2.0])]
    x[xp.asarray([0, 2])] = 1  # a scatter kernel (tests/test_scatter.py)
    check(x, [1, 1, 1, 3, 4, 5])
    with pytest.raises(IndexError, match="not valid indices"):
        x[xp.reshape(xp.asarray([1.0]), ())]


def test_index_errors():
    x = xp.asarray(np.arange(6).reshape(2, 3))
    with pytest.raises(IndexError, match="out of bounds"):
        x[2]
    with pytest.raises(IndexError, match="out of bounds"):
        x[:, -4]
    with pytest.raises(IndexError, match="too many indices"):
        x[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        x[..., ...]
    with pytest.raises(IndexError):
        x[1.5]
    with pytest.raises(IndexError, match="out of bounds"):
        x[5] = 1


def test_keys_next_to_index_arrays_are_checked():
    """Python scalars next to index arrays: floats are refused (they were taken as ints), ints out
    of range raise even where the result is empty (found by a random key fuzz against NumPy)."""
    x = xp.asarray(np.arange(24.0).reshape(2, 3, 4))
    i = xp.asarray([0])
    for key in [(1.0, i), (i, 1.0), (i, "a")]:
        with pytest.raises(IndexError, match="valid indices"):
            x[key]
        with pytest.raises(IndexError, match="valid indices"):
            x[key] = 0.0
    for key in [(5, i, slice(0, 0)), (2**63, i), (i, Ellipsis, -5)]:
        with pytest.raises(IndexError, match="out of bounds"):
            x[key]
    check(x[np.int64(1), i, -4], np.arange(24.0).reshape(2, 3, 4)[1, [0], -4])


def test_ellipsis_between_advanced_indices_moves_them_to_the_front():
    """NumPy's rule, also where the ellipsis stands for no axis: x[0:1, i, ..., 0] of a 3-D x has
    the shape (len(i), 1), x[0:1, i, 0] the shape (1, len(i)) (found by tests/test_fuzz.py)."""
    a = np.arange(24.0).reshape(2, 3, 4)
    i = np.array([2, 0])
    for key in [(slice(0, 1), i, Ellipsis, 0), (slice(0, 1), i, 0), (None, np.array([1]), Ellipsis, None, 1)]:
        ours = tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key)
        check(xp.asarray(a)[ours], a[key])
        b, x = a.copy(), xp.asarray(a)
        value = np.arange(a[key].size, dtype=np.float64).reshape(a[key].shape)
        b[key], x[ours] = value, xp.asarray(value)
        check(x, b)


# ---- views, mutation and pending expressions ----------------------------------------------------
def test_views_launch_nothing():
    x = xp.asarray(np.arange(24.0).reshape(2, 3, 4))
    with xp.profile() as prof:
        x[1:]
        x[..., ::-2]
        x[0, None, :, 1]
        x.mT
        xp.permute_dims(x, (2, 1, 0))
        xp.expand_dims(x, axis=1)
        x[True]
    assert prof.launches == 0


def test_view_mutation_sequence():
    a = np.arange(6.0)
    x = xp.asarray(a.copy())
    y, ya = x[1:], a[1:]
    x[:2] = 5.0
    a[:2] = 5.0
    y += 1.0
    ya += 1.0
    check(x, a)
    check(y, ya)
    r, ra = x[::-1], a[::-1]
    r[::2] = r[1::2]          # overlapping read and write of the same buffer
    ra[::2] = ra[1::2].copy()
    check(x, a)
    x[1:] = x[:-1]            # overlapping shift
    a[1:] = a[:-1].copy()
    check(x, a)
    check(y, ya)


def test_pending_expressions_keep_their_values():
    x = xp.asarray(np.arange(4.0))
    z = x * 2
    x[0] = 7.0
    check(z, [0.0, 2.0, 4.0, 6.0])
    v = x[1:]
    w = v + 10            # pending reader of x's memory through a view
    u = xp.flip(x) * 1    # pending reader through a reversed view
    x[...] = -1.0
    check(w, [11.0, 12.0, 13.0])
    check(u, [3.0, 2.0, 1.0, 7.0])
    check(v, [-1.0, -1.0, -1.0])
    v += x[:3]            # in place through a view, reading an overlapping view
    check(x, [-1.0, -2.0, -2.0, -2.0])


def test_write_into_transpose_and_broadcast_value():
    a = np.zeros((3, 4))
    x = xp.asarray(a.copy())
    t = x.T
    t[1:3] = xp.asarray([1.0, 2.0, 3.0])
    a.T[1:3] = [1.0, 2.0, 3.0]
    check(x, a)


def test_setitem_shape_and_dtype_errors():
    x = xp.asarray(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="__setitem__"):
        x[0] = xp.asarray([1.0, 2.0, 3.0])
    i = xp.asarray(np.zeros(3, dtype=np.int32))
    with pytest.raises(TypeError, match="__setitem__"):
        i[0] = 1.5
    with pytest.raises(TypeError, match="__setitem__"):
        i[0] = "a"


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.data())
def test_masked_assignment_of_arrays_matches_numpy(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    a = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    x = xp.asarray(a)
    k = data.draw(st.integers(1, len(shape)))
    mask = data.draw(hnp.arrays(np.bool_, shape[:k]))
    rows = (int(mask.sum()),) + shape[k:]
    values = -np.arange(int(np.prod(rows)), dtype=np.float64).reshape(rows) - 1
    a[mask] = values
    x[xp.asarray(mask)] = xp.asarray(values)
    check(x, a)
    if shape[k:]:                         # one row broadcast to every selected element
        row = np.full(shape[k:], 9.0)
        a[mask] = row
        x[xp.asarray(mask)] = xp.asarray(row)
        check(x, a)
    with pytest.raises(ValueError):
        x[xp.asarray(mask)] = xp.asarray(np.zeros((rows[0] + 2,) + shape[k:]))
    # values that broadcast to x[mask]'s shape: unit axes anywhere, leading axes dropped or added
    vshape = [data.draw(st.sampled_from([n, 1]), label=f"axis {i}") for i, n in enumerate(rows)]
    vshape = [1] * data.draw(st.integers(0, 2)) + vshape[data.draw(st.integers(0, len(vshape))):]
    values = np.arange(1.0, 1.0 + int(np.prod(vshape))).reshape(vshape)
    if k == len(shape) and len(vshape) > 1:
        return  # (NumPy: a TypeError for a 2-D value through a mask over every axis)
    a[mask] = values
    x[xp.asarray(mask)] = xp.asarray(values)
    check(x, a)


# ---- the plain gather kernel (kernels/gather.py: take, x[idx] realized on their own) -------------
ALL_DTYPES = ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
              "float64", "complex64", "complex128"]
INDEX_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]


@contextlib.contextmanager
def _kinds():
    """The kinds of the kernels launched on the cpu device inside the block (a list)."""
    from egpu_array.backend.cpu import CPUDevice
    kinds, launch = [], CPUDevice.launch

    def spy(self, program, *args, **kw):
        kinds.append(program.spec.kind)
        return launch(self, program, *args, **kw)
    CPUDevice.launch = spy
    try:
        yield kinds
    finally:
        CPUDevice.launch = launch


@st.composite
def _source(draw):
    """(numpy array, xp array, contiguous): any dtype, 1-3 dimensions, given as a contiguous array,
    a view at an unaligned offset (``[1:]``), a reversed view or a transposed one."""
    dtype = draw(st.sampled_from(ALL_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=7))
    a = (np.arange(int(np.prod(shape)) + 1) * 37 % 251).astype(dtype)
    if dtype.startswith("complex"):
        a = a + 1j * a[::-1]
    layout = draw(st.sampled_from(["plain", "offset", "reversed", "transposed"]))
    base = a[1:].reshape(shape)
    x = xp.asarray(a)[1:]
    x = xp.reshape(x, shape)
    if layout == "reversed":
        base, x = base[::-1], xp.flip(x, axis=0)
    elif layout == "transposed":
        base, x = base.T, xp.permute_dims(x, tuple(reversed(range(len(shape)))))
    elif layout == "plain":
        base = np.ascontiguousarray(base)
        x = xp.asarray(base)
    return base, x, layout in ("plain", "offset")


@settings(max_examples=60, deadline=None, derandomize=True)
@given(_source(), st.data())
def test_gather_kernel_matches_numpy(src, data):
    a, x, contiguous = src
    ax = data.draw(st.integers(0, a.ndim - 1))
    n = a.shape[ax]
    idt = data.draw(st.sampled_from(INDEX_DTYPES))
    lo = -n if idt.startswith("int") else 0
    hi = min(n - 1, np.iinfo(idt).max)
    lo = max(lo, np.iinfo(idt).min)
    ishape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=6))
    idx = data.draw(hnp.arrays(idt, ishape, elements=st.integers(lo, hi)))
    ix = xp.asarray(idx)
    if data.draw(st.booleans()) and idx.shape[0] > 1:  # a strided or reversed index view
        idx, ix = idx[::-2], xp.flip(ix, axis=0)[::2]
    with _kinds() as kinds:
        flat, fx = (idx[-1], ix[-1]) if idx.ndim == 2 and idx.shape[0] else (idx.reshape(-1), xp.reshape(ix, (-1,)))
        got = xp.take(x, fx, axis=ax)
        check(got, np.take(a, flat, axis=ax))
    if got.size and (contiguous or a.ndim == 1) and x.device.kind == "cpu":  # (others: maybe fused)
        assert kinds.count("gather") == 1, kinds
    check(x[ix], a[idx]) if ax == 0 else check(x[(slice(None),) * ax + (ix,)], a[(slice(None),) * ax + (idx,)])


@pytest.mark.parametrize("dtype", ["int8", "float32", "complex128"])
@pytest.mark.parametrize("idx_dtype", ["int64", "int8", "uint16"])
def test_gather_of_few_columns_runs_in_column_order(dtype, idx_dtype):
    """``x[:, cols]`` with a few columns over many rows takes the column-order kernel (one
    strided walk per column; row order paid a division and a loop per row of a few elements:
    5.5x NumPy's time for 3 columns of 10000 rows), with negative indices, reversed rows and the
    out-of-range error as in row order."""
    from egpu_array.backend.cpu import CPUDevice
    rng = np.random.default_rng(3)
    h = (rng.random((600, 50)) * 100).astype(dtype)
    x = xp.asarray(h)
    signed = np.dtype(idx_dtype).kind == "i"
    cols = rng.integers(-50 if signed else 0, 50, 7).astype(idx_dtype)
    specs, launch = [], CPUDevice.launch

    def spy(self, program, *args, **kw):
        specs.append(program.spec)
        return launch(self, program, *args, **kw)
    CPUDevice.launch = spy
    try:
        check(x[:, xp.asarray(cols)], h[:, cols])
        check(x[::-2, xp.asarray(cols)], h[::-2, cols])
        check(xp.take(x, xp.asarray(cols), axis=1), np.take(h, cols, axis=1))
        with pytest.raises(IndexError, match="__getitem__"):
            x[:, xp.asarray(np.array([1, 50], dtype=idx_dtype))]
    finally:
        CPUDevice.launch = launch
    assert [getattr(s, "by_column", None) for s in specs if s.kind == "gather"] == [True] * 4


def test_gather_kernel_many_indices_and_into_a_view():
    rng = np.random.default_rng(5)
    for dtype in ("int8", "float32", "complex128"):
        h = rng.integers(0, 100, 300_001).astype(dtype)  # threads split the indices
        idx = rng.integers(-h.size, h.size, 400_003)
        x, ix = xp.asarray(h), xp.asarray(idx)
        check(xp.take(x, ix), h[idx])
        check(x[ix[::3]], h[idx[::3]])
    rows = rng.integers(0, 100, (2000, 301)).astype(np.int16)  # whole rows, chunks of 27 rows
    idx = rng.integers(-2000, 2000, 3001)
    check(xp.asarray(rows)[xp.asarray(idx)], rows[idx])
    check(xp.take(xp.asarray(rows), xp.asarray(idx[:999] % 301), axis=1), np.take(rows, idx[:999] % 301, axis=1))
    a = rng.random((50, 9))
    y, b = xp.zeros((9, 60)), np.zeros((9, 60))
    idx = np.array([3, -1, 0, 49, 7])
    y[:, 1:6] = xp.asarray(a)[xp.asarray(idx)].T
    b[:, 1:6] = a[idx].T
    check(y, b)


def test_gather_kernel_empty_and_zero_d_index():
    x = xp.asarray(np.arange(12.0).reshape(3, 4))
    check(x[xp.asarray(np.zeros((0,), np.int64))], np.zeros((0, 4)))
    check(xp.take(x, xp.asarray(np.zeros((0,), np.int32)), axis=1), np.zeros((3, 0)))
    check(x[xp.reshape(xp.asarray([2]), ())], np.arange(12.0).reshape(3, 4)[2])  # (a 1-D result, no index axis)
    check(x[:, xp.reshape(xp.asarray([-1]), ())], np.arange(12.0).reshape(3, 4)[:, -1])
    e = xp.asarray(np.zeros((0, 4)))
    check(e[xp.asarray(np.zeros((0,), np.int64))], np.zeros((0, 4)))
    with pytest.raises(IndexError, match="take"):
        xp.take(e, xp.asarray([0]), axis=0)


@pytest.mark.parametrize("idx", [[0, 5], [-6], [3, 2**31], [7, -7]])
@pytest.mark.parametrize("dtype", ["int32", "int64", "uint64"])
def test_gather_kernel_out_of_range_raises_naming_the_function(idx, dtype):
    x = xp.asarray(np.arange(5.0))
    if dtype == "uint64" and min(idx) < 0:
        idx = [np.uint64(2**64 - 1)]  # never wraps: it is far out of range
    elif dtype == "int32" and max(idx) >= 2**31:
        idx = [3, 2**31 - 1]
    ix = xp.asarray(np.array(idx, dtype=dtype))
    with pytest.raises(IndexError, match=r"take: .*out of bounds.*size 5"):
        np.asarray(xp.take(x, ix))
    with pytest.raises(IndexError, match=r"take_along_axis: .*out of bounds.*size 5"):
        np.asarray(xp.take_along_axis(x, ix, axis=0))
    with pytest.raises(IndexError, match=r"__getitem__: .*out of bounds"):
        x[ix]
    with pytest.raises(IndexError, match=r"__getitem__: .*out of bounds"):
        xp.reshape(xp.asarray(np.arange(10.0)), (5, 2))[ix]



@pytest.mark.parametrize("device", ["cpu", "sim"])
@pytest.mark.parametrize("bad", [2**63, 2**64 - 1])
def test_huge_uint64_indices_never_wrap(device, bad):
    """uint64 indices at or above 2**63 would become negative (valid) positions in an int64 cast:
    every gather path refuses them (take, x[idx], take_along_axis, a gather inside an expression)."""
    x = xp.asarray(np.arange(10.0), device=device)
    idx = xp.asarray(np.array([1, bad], dtype=np.uint64), device=device)
    cases = [lambda: x[idx], lambda: xp.take(x, idx), lambda: xp.take_along_axis(x, idx, axis=0),
             lambda: x[idx] * 2 + x[:2]]
    for case in cases:
        with pytest.raises(IndexError):
            np.asarray(case())
    good = xp.asarray(np.array([9, 0], dtype=np.uint64), device=device)
    np.testing.assert_array_equal(np.asarray(xp.take_along_axis(x, good, axis=0)), [9.0, 0.0])
    np.testing.assert_array_equal(np.asarray(x[good] * 2 + x[:2]), [18.0, 1.0])


@pytest.mark.parametrize("key", [slice(0, 2), (slice(None), 1), "index array", Ellipsis])
def test_assigned_values_may_have_leading_unit_axes(key):
    """``x[key] = v`` with ``v`` of more dimensions than ``x[key]``, the extra ones leading and
    of length 1, assigns as NumPy does (it was a ValueError); other extra axes stay an error."""
    a = np.zeros((3, 4))
    x = xp.asarray(a)
    k, hk = (xp.asarray([0, 2]), np.array([0, 2])) if key == "index array" else (key, key)
    target = a[hk].shape
    v = np.arange(1.0, 1.0 + int(np.prod(target))).reshape((1, 1) + target)
    a[hk] = v
    x[k] = xp.asarray(v)
    check(x, a)
    with pytest.raises(ValueError, match="__setitem__"):
        x[k] = xp.asarray(np.ones((2,) + target))


@pytest.mark.parametrize("func", ["take", "take_along_axis"])
def test_take_out_of_range_raises_at_the_call(func):
    """take and take_along_axis are computed at once, as x[idx] is: an index out of range
    raises at the call (it raised later, from every write to the source while the result lived,
    naming take; the write did not happen)."""
    x = xp.arange(5.0)
    with pytest.raises(IndexError, match=func):
        getattr(xp, func)(x, xp.asarray([0, 7]))
    y = getattr(xp, func)(x, xp.asarray([4, 0]))
    x += 1
    x[0] = 9.0
    check(x, np.array([9.0, 2, 3, 4, 5]))
    check(y, np.array([4.0, 0.0]))
