"""``x[key] = value`` through integer index arrays (one scatter kernel) against NumPy, and
view/mutation sequences with pending lazy expressions around a scatter.

Repeated indices: the last write (C order of the broadcast index space) wins, as NumPy does in
practice. Out-of-range indices raise IndexError and leave the array unchanged.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import egpu_array as xp

FAST = settings(max_examples=40, deadline=None, derandomize=True)
DTYPES = ["bool", "int8", "uint8", "int32", "int64", "uint16", "float32", "float64", "complex64"]
INDEX_DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint32", "uint64"]


def check(out, expected) -> None:
    if isinstance(expected, np.ndarray):
        assert str(out.dtype).split(".")[-1] == expected.dtype.name
    expected = np.asarray(expected)
    assert out.shape == expected.shape, (out.shape, expected.shape)
    np.testing.assert_array_equal(np.asarray(out), expected)


def values_of(dtype):
    return hnp.from_dtype(np.dtype(dtype), allow_nan=False, allow_subnormal=False) \
        if np.dtype(dtype).kind in "fc" else hnp.from_dtype(np.dtype(dtype))


@st.composite
def scatter_case(draw):
    """An array, an index key with 1-2 integer arrays (possibly broadcast against each other,
    mixed with slices and ints, adjacent or separated) and a value broadcastable to x[key]."""
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5))
    a = draw(hnp.arrays(dtype, shape, elements=values_of(dtype)))
    ishape = draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=4))
    n_arrays = draw(st.integers(1, min(2, len(shape))))
    axes = sorted(draw(st.permutations(range(len(shape))))[:n_arrays])
    key = []
    for d, n in enumerate(shape):
        if d in axes:
            idt = draw(st.sampled_from(INDEX_DTYPES))
            lo = -n if np.dtype(idt).kind == "i" else 0
            sub = ishape[draw(st.integers(0, len(ishape))):]  # broadcast against the others
            key.append(draw(hnp.arrays(idt, sub, elements=st.integers(lo, n - 1))))
        else:
            kind = draw(st.sampled_from(["all", "slice", "int"]))
            if kind == "int":
                key.append(draw(st.integers(-n, n - 1)))
            elif kind == "slice":
                key.append(slice(draw(st.integers(-n, n)), None, draw(st.sampled_from([1, 2, -1]))))
            else:
                key.append(slice(None))
    # drop trailing full slices sometimes (x[idx] = v on a 2-D array)
    while key and isinstance(key[-1], slice) and key[-1] == slice(None) and draw(st.booleans()):
        key.pop()
    target = a[tuple(key)]
    vshape = target.shape[draw(st.integers(0, target.ndim)):]
    vshape = tuple(1 if draw(st.integers(0, 3)) == 0 else s for s in vshape)
    if draw(st.booleans()):
        value = draw(values_of(dtype))
        value = value.item() if hasattr(value, "item") else value
    else:
        value = draw(hnp.arrays(dtype, vshape, elements=values_of(dtype)))
    return a, tuple(key), value


def to_key(key):
    return tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key)


@FAST
@given(scatter_case())
def test_setitem_index_arrays_matches_numpy(case):
    a, key, value = case
    x = xp.asarray(a)
    b = a.copy()
    b[key] = value
    x[to_key(key)] = xp.asarray(value) if isinstance(value, np.ndarray) else value
    check(x, b)


@FAST
@given(st.data())
def test_out_of_bounds_raises_and_writes_nothing(data):
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, min_side=1, max_side=6))
    a = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    n = shape[0]
    good = data.draw(hnp.arrays(np.int64, data.draw(st.integers(1, 8)), elements=st.integers(-n, n - 1)))
    bad = data.draw(st.integers(n, n + 5) | st.integers(-n - 5, -n - 1))
    idx = good.copy()
    idx[data.draw(st.integers(0, idx.size - 1))] = bad
    x = xp.asarray(a)
    with pytest.raises(IndexError, match="__setitem__"):
        x[xp.asarray(idx)] = 9.0
    with pytest.raises(IndexError):
        x[xp.asarray(idx)] = xp.asarray(np.ones(idx.shape + shape[1:], dtype=np.float32))
    check(x, a)


def test_duplicates_last_write_wins():
    x = xp.zeros(4, dtype=xp.int64)
    x[xp.asarray([1, 3, 1, -3])] = xp.asarray([10, 20, 30, 40])
    check(x, [0, 40, 0, 20])
    y = xp.zeros((3, 2))
    y[xp.asarray([[0, 0], [2, 0]])] = xp.reshape(xp.arange(8, dtype=xp.float64), (2, 2, 2))
    check(y, [[6.0, 7.0], [0, 0], [4.0, 5.0]])


def test_unsigned_and_extreme_indices():
    x = xp.asarray(np.arange(5))
    with pytest.raises(IndexError):
        x[xp.asarray(np.array([2**64 - 1], dtype=np.uint64))] = 0  # never wraps to -1
    x[xp.asarray(np.array([255], dtype=np.uint8)) - xp.asarray(np.array([251], dtype=np.uint8))] = 7
    check(x, [0, 1, 2, 3, 7])
    with pytest.raises(IndexError):
        x[xp.asarray(np.array([-(2**63)]))] = 0
    check(x, [0, 1, 2, 3, 7])


@pytest.mark.parametrize("idt", INDEX_DTYPES)
def test_bounds_check_edges_for_every_index_dtype(idt):
    """The bounds check (one unsigned comparison of ``i + n`` against ``2n``) at its edges: -n and
    n - 1 pass, -n - 1, n and the dtype's extremes raise and write nothing, on a long index array
    (the vectorized check loop) with the bad value last."""
    info = np.iinfo(idt)
    for n in (1, 5, 100):
        a = np.arange(n, dtype=np.float32)
        edges = [v for v in (-n, -1, 0, n - 1) if info.min <= v <= info.max]
        idx = np.resize(np.array(edges, dtype=idt), 1000)
        x = xp.asarray(a)
        x[xp.asarray(idx)] = xp.asarray(np.arange(1000, dtype=np.float32))
        expected = a.copy()
        expected[idx] = np.arange(1000, dtype=np.float32)
        check(x, expected)
        for bad in {-n - 1, n, info.min, info.max, -(2**31), 2**31 - 1}:
            if not info.min <= bad <= info.max or -n <= bad < n:
                continue
            worse = idx.copy()
            worse[-1] = bad
            with pytest.raises(IndexError, match="nothing was assigned"):
                x[xp.asarray(worse)] = 9.0
            check(x, expected)


def test_empty_and_zero_size_cases():
    x = xp.asarray(np.arange(6.0).reshape(2, 3))
    x[xp.asarray(np.zeros(0, dtype=np.int64))] = 5.0  # nothing selected
    check(x, np.arange(6.0).reshape(2, 3))
    z = xp.zeros((3, 0))
    z[xp.asarray([0, 2])] = 1.0  # nothing to write, the indices are still checked
    with pytest.raises(IndexError):
        z[xp.asarray([0, 3])] = 1.0
    e = xp.zeros((0, 2))
    with pytest.raises(IndexError):
        e[xp.asarray([0])] = 1.0


def test_value_promotion_rules():
    x = xp.zeros(4, dtype=xp.float32)
    with pytest.raises(TypeError):
        x[xp.asarray([0])] = xp.asarray([1.0])  # float64 into float32: a lossy cast
    with pytest.raises(TypeError):
        x[xp.asarray([0])] = xp.asarray([1])  # int64 into a float array: no cross-kind promotion
    with pytest.raises(TypeError):
        x[xp.asarray([0])] = 1j
    i = xp.zeros(3, dtype=xp.int32)
    i[xp.asarray([2, 0])] = xp.asarray(np.array([-5, 7], dtype=np.int8))  # int8 -> int32: promotes
    check(i, np.array([7, 0, -5], dtype=np.int32))
    with pytest.raises(TypeError):
        i[xp.asarray([0])] = 1.5
    with pytest.raises(OverflowError):
        xp.zeros(3, dtype=xp.int8)[xp.asarray([0])] = 300
    c = xp.zeros(2, dtype=xp.complex128)
    c[xp.asarray([1])] = xp.asarray(np.array([2.5], dtype=np.float32))
    check(c, np.array([0, 2.5], dtype=np.complex128))
    with pytest.raises(ValueError):
        x[xp.asarray([0, 1])] = xp.ones(3, dtype=xp.float32)  # does not broadcast to (2,)


def test_masks_mixed_with_other_indices():
    a = np.arange(24.0).reshape(2, 3, 4)
    x = xp.asarray(a)
    m = np.array([True, False, True])
    for key, value in [((slice(None), m), -1.0), ((1, m), -2.0), ((np.array([False, True]), slice(1, 3)), -3.0),
                       ((0, m, np.array([1, 3])), np.array([7.0, 8.0])),
                       ((Ellipsis, np.array([True, False, False, True])), np.array([5.0, 6.0]))]:
        a[tuple(key)] = value
        x[tuple(xp.asarray(k) if isinstance(k, np.ndarray) else k for k in key)] = \
            xp.asarray(value) if isinstance(value, np.ndarray) else value
        check(x, a)


def test_pending_readers_keep_their_values():
    a = np.arange(6.0)
    x = xp.asarray(a)
    y = x + 1          # pending, reads x
    v = x[1:]          # a view: sees the write
    s = xp.sum(x * 2)  # pending reduction over x
    x[xp.asarray([0, 4])] = 5.0
    check(y, a + 1)
    check(s, np.sum(a * 2))
    check(v, [1, 2, 3, 5, 5])
    check(x, [5, 1, 2, 3, 5, 5])


def test_scatter_through_a_view_is_seen_by_other_views():
    a = np.arange(12).reshape(3, 4)
    x = xp.asarray(a)
    col = x[:, 1]
    every_other = x[:, ::2]
    every_other[xp.asarray([0, 2]), xp.asarray([1, 0])] = xp.asarray([-1, -2])
    a[:, ::2][[0, 2], [1, 0]] = [-1, -2]
    check(x, a)
    check(col, a[:, 1])
    t = x.T
    t[xp.asarray([1])] = 100  # row 1 of the transpose: column 1 of x
    a.T[[1]] = 100
    check(x, a)
    check(col, a[:, 1])


def test_value_and_indices_that_read_the_target():
    a = np.arange(6)
    x = xp.asarray(a)
    x[xp.asarray([1, 2, 3])] = x[0:3]  # the value is a view of the written memory: copied first
    a[[1, 2, 3]] = a[0:3].copy()
    check(x, a)
    x[x[0:2]] = x[4:6] * 10  # indices that view the target, a pending value
    a[a[0:2].copy()] = a[4:6] * 10
    check(x, a)
    x[xp.asarray([5, 0])] += 1  # read, modify, write
    a[[5, 0]] += 1
    check(x, a)


def test_chained_lazy_sequence():
    a = np.linspace(0, 1, 10, dtype=np.float32)
    x = xp.asarray(a)
    y = x * 2
    x[xp.asarray([0, 9])] = y[xp.asarray([1, 2])]
    z = x - y
    x[xp.asarray([3])] = 0.0
    a2 = a.copy()
    ya = a * 2
    a2[[0, 9]] = ya[[1, 2]]
    za = a2 - ya
    a2[[3]] = 0
    check(z, za)
    check(x, a2)
    check(y, ya)


def test_one_kernel_and_no_hidden_transfers():
    x = xp.asarray(np.zeros((100, 8)))
    idx = xp.asarray([3, 50, -1])
    v = xp.asarray(np.ones((3, 8)))
    with xp.profile() as p:
        x[idx] = v
    assert p.launches == 1
    assert not p.internal_transfers
    assert p.bytes_to_device == 0 and p.bytes_from_device == 0  # (on sim: nothing crossed the link)
    check(x[xp.asarray([3, 50, 99, 0])], np.array([[1.0] * 8] * 3 + [[0.0] * 8]))


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.data())
def test_mask_selection_across_chunks(data):
    """``x[mask]`` (the compress kernel) with masks long enough for several chunks, rows of
    several elements, strided inputs and pending masks."""
    n = data.draw(st.sampled_from([1, 7, 65535, 65536, 65537, 200_003]))
    row = data.draw(st.sampled_from([(), (3,), (2, 5)]))
    dtype = data.draw(st.sampled_from(["bool", "int16", "float32", "complex128"]))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    a = (rng.random((n,) + row) * 100).astype(dtype)
    p = data.draw(st.sampled_from([0.0, 0.01, 0.5, 1.0]))
    m = rng.random(n) < p
    x = xp.asarray(a)
    if data.draw(st.booleans()) and row:
        x = xp.asarray(np.concatenate([a, a], axis=-1))[..., : row[-1]]  # not contiguous
    check(x[xp.asarray(m)], a[m])
    h = rng.random(n)
    check(x[xp.asarray(h) < p], a[h < p])  # a pending mask


def test_mask_selection_counts_are_the_only_read():
    x = xp.asarray(np.arange(10.0))
    m = xp.asarray(np.arange(10) % 3 == 0)
    with xp.profile() as p:
        y = x[m]
    assert p.launches == 2
    assert all(t["internal"] for t in p.transfer_log)
    check(y, [0.0, 3.0, 6.0, 9.0])


@pytest.mark.parametrize("threads", [1, 4, 5])
def test_long_scatter_split_by_target_range_keeps_last_write(threads, monkeypatch):
    """Many indices into one outer position: work items own ranges of the target and each scans
    every index in order, so with heavy duplication the last write still wins."""
    rng = np.random.default_rng(threads)
    a = np.zeros((997, 3), dtype=np.float32)
    x = xp.asarray(a)
    monkeypatch.setattr(x.device, "num_threads", threads, raising=False)
    i = rng.integers(-997, 997, 40_000)
    j = rng.integers(0, 3, 40_000)
    v = np.arange(40_000, dtype=np.float32)
    x[xp.asarray(i), xp.asarray(j)] = xp.asarray(v)
    a[i, j] = v
    check(x, a)
    flat = xp.asarray(np.zeros(500, dtype=np.int32))
    k = rng.integers(0, 500, 50_000)
    flat[xp.asarray(k)] = xp.asarray(np.arange(50_000, dtype=np.int32))
    ref = np.zeros(500, dtype=np.int32)
    ref[k] = np.arange(50_000, dtype=np.int32)
    check(flat, ref)
    with pytest.raises(IndexError):
        flat[xp.asarray(np.append(k, 500))] = 1
    check(flat, ref)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.data())
def test_random_view_and_mutation_sequences(data):
    """Random programs over one base array: views (slices, transposes), pending expressions,
    scatters, masked and basic assignments, in-place operators. Every handle must match NumPy
    running the same program at the end (views see every write, pending expressions keep the
    values they had when built)."""
    shape = data.draw(st.sampled_from([(12,), (4, 5), (3, 2, 4)]))
    base = np.arange(np.prod(shape), dtype=np.int64).reshape(shape)
    pool = [(base, xp.asarray(base), True)]  # (numpy, ours, is a view of the base)
    for _ in range(data.draw(st.integers(1, 10))):
        k = data.draw(st.integers(0, len(pool) - 1))
        a, x, is_view = pool[k]
        op = data.draw(st.sampled_from(["view", "transpose", "lazy", "scatter", "set", "iadd", "mask"]))
        if op == "view" and a.ndim and a.shape[0] > 1:
            start = data.draw(st.integers(0, a.shape[0] - 1))
            step = data.draw(st.sampled_from([1, 2, -1]))
            pool.append((a[start::step], x[start::step], is_view))
        elif op == "transpose" and a.ndim >= 2:
            pool.append((np.swapaxes(a, 0, -1), xp.moveaxis(xp.moveaxis(x, 0, -1), -2, 0), is_view))
        elif op == "lazy":
            pool.append((a * 2 + 1, x * 2 + 1, False))
        elif op == "scatter" and a.ndim and a.shape[0]:
            idx = np.array(data.draw(st.lists(st.integers(-a.shape[0], a.shape[0] - 1), min_size=1, max_size=4)))
            value = data.draw(st.integers(-50, 50))
            a[idx] = value
            x[xp.asarray(idx)] = value
        elif op == "set" and a.ndim and a.shape[-1] > 1:
            a[..., :2] = -1
            x[..., :2] = -1
        elif op == "iadd":
            a += 3
            x += 3
        elif op == "mask":
            a[a % 3 == 0] = 100
            x[x % 3 == 0] = 100
    for a, x, _ in pool:
        check(x, a)
