"""Manipulation functions of the 2025.12 standard against NumPy.

Hypothesis draws shapes (0-d, empty, up to 4-D), dtypes, negative axes and strided / reversed /
transposed input views. Views must be zero-copy (no launch, mutation visible through the base, as in
NumPy); copies must be independent of their input.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import egpu_array as xp

FAST = settings(max_examples=30, deadline=None, derandomize=True)
DTYPES = ("bool", "int8", "uint16", "int32", "int64", "float32", "float64", "complex64", "complex128")


def to_xp(a: np.ndarray):
    """``xp.asarray`` that keeps 0-d arrays 0-d."""
    if a.ndim == 0:
        return xp.reshape(xp.asarray(a.reshape(1)), ())
    return xp.asarray(a)


def check(out, expected: np.ndarray) -> None:
    assert isinstance(out, xp.Array)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    assert out.dtype == getattr(xp, expected.dtype.name), (out.dtype, expected.dtype)
    np.testing.assert_array_equal(np.asarray(out), expected)


@st.composite
def arrays(draw, min_dims=0, max_dims=4, dtype=None, max_side=4):
    """(egpu array, equal numpy array): a plain array or a strided/reversed/transposed view."""
    dtype = dtype or draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=0, max_side=max_side))
    kind = draw(st.sampled_from(["plain", "reverse", "step2", "transpose"] if shape else ["plain"]))
    base_shape = {"step2": (2 * shape[0],) + shape[1:] if shape else shape,
                  "transpose": shape[::-1]}.get(kind, shape)
    n = int(np.prod(base_shape))
    base = (np.arange(n) % 7 - 2).astype(dtype).reshape(base_shape)
    x = to_xp(base)
    if kind == "reverse":
        x, base = x[::-1], base[::-1]
    elif kind == "step2":
        x, base = x[::2], base[::2]
    elif kind == "transpose":
        x, base = xp.permute_dims(x, tuple(range(len(shape)))[::-1]), base.transpose()
    assert x.shape == base.shape == shape
    return x, base


def axis_of(ndim):
    return st.integers(-ndim, ndim - 1)


# ---- views ------------------------------------------------------------------------------------
@FAST
@given(arrays(), st.data())
def test_broadcast_to(xa, data):
    x, a = xa
    extra = data.draw(st.lists(st.integers(0, 3), max_size=2))
    shape = tuple(extra) + tuple(data.draw(st.sampled_from([n, 3])) if n == 1 else n for n in a.shape)
    check(xp.broadcast_to(x, shape), np.broadcast_to(a, shape))


@pytest.mark.parametrize("write", [
    lambda b: b.__iadd__(1), lambda b: b.__imul__(2), lambda b: b.__setitem__(Ellipsis, 5.0),
    lambda b: b.__setitem__((slice(None), 0), xp.asarray([1.0, 2.0, 3.0])),
    lambda b: b.__setitem__(xp.ones((3, 4), dtype=xp.bool), 1.0),
    lambda b: b.__setitem__((xp.asarray([0, 2]),), 7.0), lambda b: b.__imatmul__(xp.eye(4))],
    ids=["iadd", "imul", "setitem", "column", "mask", "index-array", "imatmul"])
def test_broadcast_views_refuse_writes(write):
    """A write through a view that repeats elements would update each element once per repetition
    (``b += 1`` added 3 to a row broadcast 3 times): refused, as NumPy's read-only broadcast views
    do, leaving the source unchanged; so is a write through any view taken from a broadcast (a
    row of it wrote every row), as in NumPy. Arrays that broadcast_arrays did not broadcast come
    back themselves, writable."""
    x = xp.asarray([0.0, 1.0, 2.0, 3.0])
    b = xp.broadcast_to(x, (3, 4))
    with pytest.raises(ValueError, match="broadcast view"):
        write(b)
    np.testing.assert_array_equal(np.asarray(x), [0.0, 1.0, 2.0, 3.0])
    bx, _ = xp.broadcast_arrays(x, xp.ones((5, 1)))
    with pytest.raises(ValueError, match="broadcast view"):
        write(bx[:3])
    for view in (b[1], b[1:2], b.mT[:, 0], xp.reshape(b[0], (2, 2)), xp.broadcast_to(x, (1, 4)),
                 xp.broadcast_to(x, (0, 4))):
        for write_view in (lambda v: v.__iadd__(1), lambda v: v.__setitem__(Ellipsis, 5.0)):
            with pytest.raises(ValueError, match="broadcast view"):
                write_view(view)
    np.testing.assert_array_equal(np.asarray(x), [0.0, 1.0, 2.0, 3.0])
    exported = np.from_dlpack(b)  # (a copy: the consumer's writes cannot reach x)
    if exported.flags.writeable:
        exported[0, 0] = 99.0
    np.testing.assert_array_equal(np.asarray(x), [0.0, 1.0, 2.0, 3.0])
    same, _ = xp.broadcast_arrays(x, xp.ones(1))
    assert same is x


def test_broadcast_errors():
    x = xp.ones((2, 3))
    with pytest.raises(ValueError, match="broadcast_to"):
        xp.broadcast_to(x, (3, 3))
    with pytest.raises(ValueError, match="broadcast_to"):
        xp.broadcast_to(x, (3,))
    with pytest.raises(TypeError, match="broadcast_to"):
        xp.broadcast_to(np.ones(3), (3,))
    with pytest.raises(ValueError, match="broadcast_shapes"):
        xp.broadcast_shapes((2, 3), (4,))
    with pytest.raises(ValueError, match="broadcast_arrays"):
        xp.broadcast_arrays(x, xp.ones(4))


def test_broadcast_shapes_and_arrays():
    assert xp.broadcast_shapes() == ()
    assert xp.broadcast_shapes((2, 1), (3,), ()) == (2, 3)
    assert xp.broadcast_shapes((0, 1), (1, 5)) == (0, 5)
    a, b = xp.broadcast_arrays(xp.asarray([[1], [2]]), xp.asarray([1.0, 2.0, 3.0]))
    assert isinstance(xp.broadcast_arrays(a), tuple)
    check(a, np.array([[1, 1, 1], [2, 2, 2]]))
    check(b, np.array([[1.0, 2.0, 3.0]] * 2))


@FAST
@given(arrays(max_dims=3), st.data())
def test_expand_dims(xa, data):
    x, a = xa
    m = a.ndim + 1
    axis = data.draw(st.integers(-m, m - 1) | st.lists(st.integers(-(a.ndim + 2), a.ndim + 1),
                                                        min_size=1, max_size=2, unique=True).map(tuple))
    n_axes = (axis,) if isinstance(axis, int) else axis
    out_nd = a.ndim + len(n_axes)
    norm = [ax % out_nd for ax in n_axes if -out_nd <= ax < out_nd]
    if len(norm) != len(n_axes) or len(set(norm)) != len(norm):
        with pytest.raises((IndexError, ValueError)):
            xp.expand_dims(x, axis=axis)
        return
    check(xp.expand_dims(x, axis=axis), np.expand_dims(a, axis))


def test_expand_dims_errors():
    x = xp.ones((2, 3))
    with pytest.raises(IndexError, match="expand_dims"):
        xp.expand_dims(x, axis=3)
    with pytest.raises(IndexError, match="expand_dims"):
        xp.expand_dims(x, axis=-4)
    with pytest.raises(ValueError, match="expand_dims"):
        xp.expand_dims(x, axis=(0, -4))


@FAST
@given(arrays(min_dims=1), st.data())
def test_squeeze(xa, data):
    x, a = xa
    ones = [d for d, n in enumerate(a.shape) if n == 1]
    if ones and data.draw(st.booleans()):
        axis = tuple(data.draw(st.lists(st.sampled_from(ones), min_size=1, unique=True)))
        axis = tuple(ax - a.ndim if data.draw(st.booleans()) else ax for ax in axis)
        if len(axis) == 1 and data.draw(st.booleans()):
            axis = axis[0]
        check(xp.squeeze(x, axis), np.squeeze(a, axis))
    else:
        others = [d for d, n in enumerate(a.shape) if n != 1]
        if not others:
            return
        with pytest.raises(ValueError, match="squeeze"):
            xp.squeeze(x, data.draw(st.sampled_from(others)))


def test_squeeze_errors():
    x = xp.ones((1, 3))
    with pytest.raises(IndexError, match="squeeze"):
        xp.squeeze(x, 2)
    with pytest.raises(ValueError, match="squeeze"):
        xp.squeeze(x, (0, -2))
    with pytest.raises(ValueError, match="squeeze"):
        xp.squeeze(x, 1)


@FAST
@given(arrays(), st.data())
def test_permute_dims(xa, data):
    x, a = xa
    perm = data.draw(st.permutations(range(a.ndim)))
    perm = tuple(p - a.ndim if data.draw(st.booleans()) else p for p in perm)
    check(xp.permute_dims(x, perm), np.transpose(a, perm))


def test_permute_dims_errors():
    x = xp.ones((2, 3))
    with pytest.raises(ValueError, match="permute_dims"):
        xp.permute_dims(x, (0,))
    with pytest.raises(ValueError, match="permute_dims"):
        xp.permute_dims(x, (0, -2))
    with pytest.raises(IndexError, match="permute_dims"):
        xp.permute_dims(x, (0, 2))


@FAST
@given(arrays(min_dims=1), st.data())
def test_moveaxis(xa, data):
    x, a = xa
    k = data.draw(st.integers(1, a.ndim))
    src = tuple(data.draw(st.lists(axis_of(a.ndim), min_size=k, max_size=k,
                                   unique_by=lambda i: i % a.ndim)))
    dst = tuple(data.draw(st.lists(axis_of(a.ndim), min_size=k, max_size=k,
                                   unique_by=lambda i: i % a.ndim)))
    if k == 1 and data.draw(st.booleans()):
        src, dst = src[0], dst[0]
    check(xp.moveaxis(x, src, dst), np.moveaxis(a, src, dst))


@FAST
@given(arrays(), st.data())
def test_flip(xa, data):
    x, a = xa
    if a.ndim:
        axis = data.draw(st.none() | axis_of(a.ndim) | st.lists(axis_of(a.ndim), min_size=1,
                                                                unique_by=lambda i: i % a.ndim).map(tuple))
    else:
        axis = None
    check(xp.flip(x, axis=axis), np.flip(a, axis))


@FAST
@given(arrays(min_dims=1), st.data())
def test_unstack(xa, data):
    x, a = xa
    axis = data.draw(axis_of(a.ndim))
    out = xp.unstack(x, axis=axis)
    assert isinstance(out, tuple) and len(out) == a.shape[axis]
    for o, e in zip(out, np.moveaxis(a, axis, 0)):
        check(o, e)


# ---- reshape ----------------------------------------------------------------------------------
@FAST
@given(arrays(), st.data())
def test_reshape(xa, data):
    x, a = xa
    n = a.size
    divisors = [d for d in range(1, n + 1) if n % d == 0] or [0]
    d = data.draw(st.sampled_from(divisors))
    shape = data.draw(st.sampled_from([(n,), (d, -1) if n else (0, 3), (-1,), (1, n, 1),
                                       (d, n // d if d else 5, 1), ()]))
    if shape == () and n != 1:
        shape = (n,)
    copy = data.draw(st.sampled_from([None, True, False]))
    expected = a.reshape(shape)
    viewable = np.shares_memory(expected, a) or a.size <= 1
    if copy is False and not viewable:
        with pytest.raises(ValueError, match="reshape"):
            xp.reshape(x, shape, copy=False)
        return
    out = xp.reshape(x, shape, copy=copy)
    check(out, expected)
    # a view shares memory with x, a copy does not
    if out.size and x.size:
        before = np.asarray(x).copy()
        out[...] = xp.zeros_like(out) if x.dtype != xp.bool else xp.zeros(out.shape, dtype=xp.bool)
        shared = not np.array_equal(np.asarray(x), before) or not before.any()
        if copy is True:
            np.testing.assert_array_equal(np.asarray(x), before)
        elif viewable and before.any():
            assert shared


def test_reshape_views_and_errors():
    x = xp.asarray(np.arange(12.0).reshape(3, 4))
    with xp.profile() as prof:
        y = xp.reshape(x, (2, 6))
        z = xp.reshape(x.T, (-1,), copy=None)   # needs a copy: one kernel
    assert prof.launches == 1
    np.testing.assert_array_equal(np.asarray(z), np.arange(12.0).reshape(3, 4).T.reshape(-1))
    y[0, 0] = -1.0
    assert float(x[0, 0]) == -1.0
    with pytest.raises(ValueError, match="reshape"):
        xp.reshape(x.T, (12,), copy=False)
    with pytest.raises(ValueError, match="reshape"):
        xp.reshape(x, (5, -1))
    with pytest.raises(ValueError, match="reshape"):
        xp.reshape(x, (-1, -1))
    with pytest.raises(ValueError, match="reshape"):
        xp.reshape(x, (13,))
    with pytest.raises(TypeError, match="reshape"):
        xp.reshape([1, 2], (2,))


def test_reshape_of_lazy_input():
    x = xp.asarray(np.arange(6.0))
    z = x * 2
    y = xp.reshape(z, (2, 3))
    np.testing.assert_array_equal(np.asarray(y), (np.arange(6.0) * 2).reshape(2, 3))
    c = xp.reshape(x + 1, (3, 2), copy=True)
    np.testing.assert_array_equal(np.asarray(c), (np.arange(6.0) + 1).reshape(3, 2))


# ---- copies -----------------------------------------------------------------------------------
@FAST
@given(st.data())
def test_concat(data):
    nd = data.draw(st.integers(1, 3))
    base = data.draw(hnp.array_shapes(min_dims=nd, max_dims=nd, min_side=0, max_side=3))
    axis = data.draw(st.none() | axis_of(nd))
    group = data.draw(st.sampled_from([["int8", "int16", "int32"], ["float32", "float64"], ["bool"]]))
    dtypes = data.draw(st.lists(st.sampled_from(group), min_size=1, max_size=3))
    xs, arrs = [], []
    for dtype in dtypes:
        shape = list(base)
        if axis is not None:
            shape[axis] = data.draw(st.integers(0, 3))
        x, a = _make(tuple(shape), dtype, data)
        xs.append(x)
        arrs.append(a)
    check(xp.concat(xs, axis=axis), np.concatenate(arrs, axis=axis))


def _make(shape, dtype, data):
    kind = data.draw(st.sampled_from(["plain", "reverse", "lazy"]))
    a = (np.arange(int(np.prod(shape))) % 5 + 1).astype(dtype).reshape(shape)
    x = to_xp(a)
    if kind == "reverse" and a.ndim:
        return x[::-1], a[::-1]
    if kind == "lazy":  # a pending expression, not yet computed
        return (xp.logical_not(xp.logical_not(x)) if dtype == "bool" else x * 1), a
    return x, a


@FAST
@given(st.data())
def test_stack(data):
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    group = data.draw(st.sampled_from([["uint8", "uint16"], ["float32", "complex64", "complex128"],
                                       ["bool"]]))
    dtypes = data.draw(st.lists(st.sampled_from(group), min_size=1, max_size=3))
    pairs = [_make(shape, d, data) for d in dtypes]
    expected = np.stack([p[1] for p in pairs], axis=axis)
    check(xp.stack([p[0] for p in pairs], axis=axis), expected)


def test_concat_stack_errors():
    a, b = xp.ones((2, 3)), xp.ones((2, 4))
    with pytest.raises(ValueError, match="concat"):
        xp.concat([a, b], axis=0)
    with pytest.raises(ValueError, match="concat"):
        xp.concat([a, xp.ones(3)])
    with pytest.raises(ValueError, match="concat"):
        xp.concat([])
    with pytest.raises(TypeError, match="concat"):
        xp.concat(a)
    with pytest.raises(IndexError, match="concat"):
        xp.concat([a, a], axis=2)
    with pytest.raises(ValueError, match="stack"):
        xp.stack([a, b])
    with pytest.raises(IndexError, match="stack"):
        xp.stack([a, a], axis=3)
    with pytest.raises(TypeError, match="stack"):
        xp.stack([a, np.ones((2, 3))])
    with pytest.raises(TypeError, match="concat"):   # no int/float promotion in the standard
        xp.concat([xp.asarray([1, 2]), xp.asarray([3.0])])
    check(xp.concat([xp.asarray([1, 2], dtype=xp.int8), xp.asarray([3], dtype=xp.int16)]),
          np.array([1, 2, 3], dtype=np.int16))


@FAST
@given(arrays(max_dims=3), st.lists(st.integers(0, 3), max_size=4))
def test_tile(xa, reps):
    x, a = xa
    with xp.profile() as prof:
        out = xp.tile(x, tuple(reps))
    assert prof.launches <= 1
    check(out, np.tile(a, tuple(reps)))


@FAST
@given(arrays(max_dims=3), st.data())
def test_repeat(xa, data):
    x, a = xa
    axis = data.draw(st.none() | axis_of(a.ndim)) if a.ndim else None
    size = a.size if axis is None else a.shape[axis]
    kind = data.draw(st.sampled_from(["int", "one", "array"]))
    if kind == "int":
        reps = data.draw(st.integers(0, 3))
        expected = np.repeat(a, reps, axis)
        out = xp.repeat(x, reps, axis=axis)
    else:
        n = 1 if kind == "one" else size
        counts = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        expected = np.repeat(a, np.array(counts, dtype=np.int64), axis)
        out = xp.repeat(x, xp.asarray(np.array(counts, dtype=np.int64)), axis=axis)
    check(out, expected)


@pytest.mark.parametrize("device", ["cpu", "sim"])
@pytest.mark.parametrize("count_dtype", ["uint8", "int32", "uint64"])
def test_repeat_by_counts_of_any_integer_dtype(device, count_dtype):
    """Unequal counts of every integer dtype, on the cpu (positions laid out by NumPy) and on a
    device with its own memory (found by searching the running sums there): only the min, max
    and total cross the link, not the counts (they were 13 us of Python per element)."""
    rng = np.random.default_rng(7)
    a = rng.random((5, 300)).astype(np.float32)
    counts = rng.integers(0, 4, 300).astype(count_dtype)
    x = xp.asarray(a, device=device)
    c = xp.asarray(counts, device=device)
    with xp.profile() as prof:
        out = xp.repeat(x, c, axis=1)
        xp.synchronize(out)
    assert prof.bytes_from_device <= 3 * 8 and prof.bytes_to_device == 0
    check(out, np.repeat(a, counts.astype(np.int64), axis=1))
    check(xp.repeat(x[0], c), np.repeat(a[0], counts.astype(np.int64)))


def test_repeat_errors():
    x = xp.ones((2, 3))
    with pytest.raises(ValueError, match="repeat"):
        xp.repeat(x, -1)
    with pytest.raises(ValueError, match="repeat"):
        xp.repeat(x, xp.asarray([1, 2]), axis=1)
    with pytest.raises(TypeError, match="repeat"):
        xp.repeat(x, xp.asarray([1.0]))
    with pytest.raises(IndexError, match="repeat"):
        xp.repeat(x, 2, axis=2)


@FAST
@given(arrays(), st.data())
def test_roll(xa, data):
    x, a = xa
    if a.ndim and data.draw(st.booleans()):
        axis = tuple(data.draw(st.lists(axis_of(a.ndim), min_size=1, max_size=3)))
        if data.draw(st.booleans()):
            shift = tuple(data.draw(st.lists(st.integers(-6, 6), min_size=len(axis), max_size=len(axis))))
        else:
            shift = data.draw(st.integers(-6, 6))
        if len(axis) == 1 and data.draw(st.booleans()):
            axis = axis[0]
            shift = shift[0] if isinstance(shift, tuple) else shift
    else:
        axis, shift = None, data.draw(st.integers(-6, 6))
    check(xp.roll(x, shift, axis=axis), np.roll(a, shift, axis))


def test_roll_errors():
    x = xp.ones((2, 3))
    with pytest.raises(ValueError, match="roll"):
        xp.roll(x, (1, 2), axis=0)
    with pytest.raises(IndexError, match="roll"):
        xp.roll(x, 1, axis=2)


# ---- views vs copies --------------------------------------------------------------------------
def test_views_launch_nothing():
    x = xp.asarray(np.arange(24.0).reshape(2, 3, 4))
    with xp.profile() as prof:
        xp.broadcast_to(x[:, :1], (5, 2, 3, 4))
        xp.expand_dims(x, axis=(0, -1))
        xp.permute_dims(x, (2, 0, 1))
        xp.moveaxis(x, 0, -1)
        xp.squeeze(x[:, :1], 1)
        xp.flip(x, axis=(0, 2))
        xp.reshape(x, (6, 4))
        xp.unstack(x, axis=1)
        xp.broadcast_arrays(x, x[0])
    assert prof.launches == 0


def test_mutation_through_views_is_seen_by_the_base():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = xp.asarray(a.copy())
    xp.flip(x, axis=2)[0, 0, 0] = -1.0          # x[0, 0, 3]
    xp.permute_dims(x, (2, 1, 0))[1, 2, 1] = -2.0  # x[1, 2, 1]
    xp.expand_dims(x, axis=0)[0, 1, 0] = -3.0    # x[1, 0, :]
    xp.reshape(x, (6, 4))[5, 0] = -4.0          # x[1, 2, 0]
    xp.unstack(x, axis=2)[2][0, 1] = -5.0       # x[0, 1, 2]
    a[0, 0, 3], a[1, 2, 1], a[1, 0, :], a[1, 2, 0], a[0, 1, 2] = -1, -2, -3, -4, -5
    np.testing.assert_array_equal(np.asarray(x), a)


def test_copies_are_independent():
    a = np.arange(6.0).reshape(2, 3)
    x = xp.asarray(a.copy())
    outs = [xp.concat([x, x]), xp.stack([x]), xp.tile(x, (1,)), xp.repeat(x, 1, axis=0),
            xp.roll(x, 1, axis=1), xp.reshape(x, (6,), copy=True)]
    snap = [np.asarray(o).copy() for o in outs]
    x[...] = 0.0
    for o, s in zip(outs, snap):
        np.testing.assert_array_equal(np.asarray(o), s)


def test_lazy_inputs_and_pending_readers():
    x = xp.asarray(np.arange(4.0))
    z = x * 2
    s = xp.stack([z, x])          # computed from the pending expression
    v = xp.flip(x)                # realizes x's memory (already realized) as a view
    w = v + 1                     # pending reader of x's buffer
    x[0] = 7.0
    np.testing.assert_array_equal(np.asarray(z), [0.0, 2.0, 4.0, 6.0])
    np.testing.assert_array_equal(np.asarray(w), [4.0, 3.0, 2.0, 1.0])
    np.testing.assert_array_equal(np.asarray(v), [3.0, 2.0, 1.0, 7.0])
    np.testing.assert_array_equal(np.asarray(s), [[0.0, 2.0, 4.0, 6.0], [0.0, 1.0, 2.0, 3.0]])


def test_type_errors_name_the_function():
    for name, args in [("expand_dims", ()), ("flip", ()), ("squeeze", (0,)), ("moveaxis", (0, 0)),
                       ("permute_dims", ((0,),)), ("roll", (1,)), ("tile", ((1,),)), ("unstack", ()),
                       ("repeat", (1,)), ("reshape", ((1,),)), ("broadcast_to", ((1,),))]:
        with pytest.raises(TypeError, match=name):
            getattr(xp, name)([1.0], *args)
