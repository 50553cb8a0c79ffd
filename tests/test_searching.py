"""Searching functions against NumPy: argmax/argmin (first occurrence, first NaN), count_nonzero,
nonzero (count read back once, noted in the profiler), searchsorted (sides, sorter, scalars),
isin (NaN never found, -0.0 == 0.0) and where."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import egpu_array as xp
from conftest import ALL, REAL, np_array, to_xp, viewed

SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple)


def _ties(draw, dtype, shape):
    n = int(np.prod(shape)) if shape else 1
    vals = np.array(draw(st.lists(st.integers(-2, 2), min_size=n, max_size=n))).reshape(shape)
    return (vals > 0) if dtype == "bool" else vals.astype(dtype)


@st.composite
def reduce_case(draw, dtypes, allow_empty=True):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(SHAPES)
    if not allow_empty:
        shape = tuple(max(1, n) for n in shape)
    if draw(st.booleans()):
        a = _ties(draw, dtype, shape)
        x = to_xp(xp, a)
    else:
        x, a = viewed(draw, xp, dtype, shape)
    axis = draw(st.none() | st.integers(-len(shape), len(shape) - 1)) if shape else None
    return x, a, axis, draw(st.booleans())


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@given(case=reduce_case(REAL, allow_empty=False))
def test_argmax_argmin(name, case):
    x, a, axis, keepdims = case
    got = np.asarray(getattr(xp, name)(x, axis=axis, keepdims=keepdims))
    want = getattr(np, name)(a, axis=axis, keepdims=keepdims)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)


def test_argmax_empty_raises_and_nan_first():
    with pytest.raises(ValueError):
        xp.argmax(xp.asarray(np.zeros((2, 0))), axis=1)
    a = np.array([1.0, np.nan, 5.0, np.nan])
    assert int(xp.argmax(xp.asarray(a))) == 1 and int(xp.argmin(xp.asarray(a))) == 1
    with pytest.raises(TypeError):
        xp.argmax(xp.asarray(np.ones(2, np.complex64)))


@given(case=reduce_case(ALL))
def test_count_nonzero(case):
    x, a, axis, keepdims = case
    got = np.asarray(xp.count_nonzero(x, axis=axis, keepdims=keepdims))
    want = np.count_nonzero(a, axis=axis, keepdims=keepdims)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    if x.ndim > 1:
        np.testing.assert_array_equal(np.asarray(xp.count_nonzero(x, axis=(0, -1))),
                                      np.count_nonzero(a, axis=(0, a.ndim - 1)))


@given(case=reduce_case(ALL))
def test_nonzero(case):
    x, a, _, _ = case
    if a.ndim == 0:
        with pytest.raises(ValueError):
            xp.nonzero(x)
        return
    got = xp.nonzero(x)
    want = np.nonzero(a)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == xp.int64
        np.testing.assert_array_equal(np.asarray(g), w)


def test_nonzero_reads_one_count_and_notes_it():
    x = xp.asarray(np.array([[0, 1, 2], [3, 0, 0]]))
    with xp.profile() as prof:
        r = xp.nonzero(x + 0)
    assert any("nonzero" in n and "read back" in n for n in prof.notes)
    assert prof.bytes_from_device <= 8 or prof.bytes_from_device == 0
    np.testing.assert_array_equal(np.asarray(r[1]), [1, 2, 0])


@st.composite
def search_case(draw):
    dtype = draw(st.sampled_from(REAL))
    n = draw(st.integers(0, 12))
    a = np_array(draw, dtype, (n,)) if draw(st.booleans()) else _ties(draw, dtype, (n,))
    v = np_array(draw, dtype, draw(SHAPES)) if draw(st.booleans()) else _ties(draw, dtype, draw(SHAPES))
    return a, v, draw(st.sampled_from(["left", "right"])), draw(st.booleans())


@given(search_case())
def test_searchsorted(case):
    a, v, side, use_sorter = case
    if use_sorter:
        sorter = np.argsort(a, kind="stable")
        got = xp.searchsorted(xp.asarray(a), to_xp(xp, v), side=side, sorter=xp.asarray(sorter))
        want = np.searchsorted(a, v, side=side, sorter=sorter)
    else:
        s = np.sort(a)
        got = xp.searchsorted(xp.asarray(s), to_xp(xp, v), side=side)
        want = np.searchsorted(s, v, side=side)
    assert got.dtype == xp.int64 and got.shape == np.shape(want)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_searchsorted_scalar_and_errors():
    s = xp.asarray(np.array([1.0, 2.0, 2.0, 3.0]))
    assert int(xp.searchsorted(s, 2.0)) == 1 and int(xp.searchsorted(s, 2, side="right")) == 3
    with pytest.raises(ValueError):
        xp.searchsorted(s, 1.0, side="middle")
    with pytest.raises(ValueError):
        xp.searchsorted(xp.asarray(np.ones((2, 2))), 1.0)


@given(st.sampled_from(ALL), SHAPES, st.integers(0, 6), st.booleans(), st.data())
def test_isin(dtype, shape, m, invert, data):
    a = _ties(data.draw, dtype, shape) if data.draw(st.booleans()) else np_array(data.draw, dtype, shape)
    b = _ties(data.draw, dtype, (m,)) if data.draw(st.booleans()) else np_array(data.draw, dtype, (m,))
    got = np.asarray(xp.isin(to_xp(xp, a), xp.asarray(b), invert=invert))
    np.testing.assert_array_equal(got, np.isin(a, b, invert=invert))


def test_isin_scalars_nan_zero():
    x = xp.asarray(np.array([0.0, -0.0, np.nan, 1.0]))
    np.testing.assert_array_equal(np.asarray(xp.isin(x, 0.0)), [True, True, False, False])
    np.testing.assert_array_equal(np.asarray(xp.isin(x, xp.asarray(np.array([np.nan])))), [False] * 4)
    assert bool(xp.isin(1, xp.asarray(np.array([1, 2]))))


def _isin_modes(fn):
    """The SearchSpec modes of the kernels ``fn()`` asks for, and its result as NumPy."""
    from egpu_array.kernels import cache
    modes = []
    cache.recorders.append(lambda dev, spec: modes.append(getattr(spec, "mode", None)))
    try:
        got = np.asarray(fn())
    finally:
        cache.recorders.pop()
    return {m for m in modes if m is not None}, got


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"])
def test_isin_by_table(dtype):
    """Integers whose set spans a small range are looked up in a byte table (kernels.search):
    values below, inside and above the range, negative ones, the dtype's extremes, a set with
    duplicates, a strided x1 and a mixed-dtype pair, both ``invert``s, against NumPy; a set over
    more than TABLE_MAX values falls back to the binary search."""
    from egpu_array._searching import TABLE_MAX, TABLE_MIN_N
    rng = np.random.default_rng(11)
    n = 3 * TABLE_MIN_N + 5
    if dtype == "bool":
        a, sets = rng.integers(0, 2, n).astype(bool), [np.array([True]), np.array([False, False]), np.array([1, 0], bool)]
    else:
        info = np.iinfo(dtype)
        lo = max(info.min, -300)
        a = rng.integers(lo, 300, n).astype(dtype)
        a[:5] = [info.min, info.max, lo, min(299, info.max), 0]
        sets = [rng.integers(lo + 5, 250, 40).astype(dtype),  # inside a's range: both sides are outside
                np.array([info.max, info.max - 1, info.max], dtype), np.array([info.min, 0], dtype)]
    for b in sets:
        for invert in (False, True):
            modes, got = _isin_modes(lambda: xp.isin(xp.asarray(a), xp.asarray(b), invert=invert))
            np.testing.assert_array_equal(got, np.isin(a, b, invert=invert), err_msg=f"{b} {invert}")
            tabled = int(b.max()) - int(b.min()) < TABLE_MAX  # ([min, 0] of a wide dtype: searched)
            assert ("notin_table" if invert else "in_table") in modes if tabled else ("notin" if invert else "in") in modes
    x = xp.asarray(np.stack([a, a]))[:, ::3]  # strided values: copied
    modes, got = _isin_modes(lambda: xp.isin(x, xp.asarray(sets[0])))
    np.testing.assert_array_equal(got, np.isin(np.stack([a, a])[:, ::3], sets[0]))
    assert "in_table" in modes
    if dtype not in ("bool", "int64", "uint64"):  # a wider common dtype (int64)
        wide = np.array([-(1 << 40), 7, 12], dtype=np.int64)
        modes, got = _isin_modes(lambda: xp.isin(xp.asarray(a), xp.asarray(wide)))
        np.testing.assert_array_equal(got, np.isin(a, wide))
        assert "in" in modes and "in_table" not in modes   # 2**40 values: searched
    if dtype in ("int32", "int64"):
        edge = np.array([0, TABLE_MAX - 1], dtype)  # exactly TABLE_MAX values: still a table
        modes, got = _isin_modes(lambda: xp.isin(xp.asarray(a), xp.asarray(edge)))
        np.testing.assert_array_equal(got, np.isin(a, edge))
        assert "in_table" in modes


def test_where_still_works():
    c = xp.asarray(np.array([True, False]))
    np.testing.assert_array_equal(np.asarray(xp.where(c, 1.0, xp.asarray(np.array([5.0, 6.0])))), [1.0, 6.0])


def _arg_cases(n, dtype, rng):
    """Arrays of n values where the first best sits in different places: random values, NaNs
    (the first one wins), all -inf / +inf (the first element), ties far apart, mixed zeros."""
    h = (rng.random(n) * 50).astype(dtype)
    cases = [h]
    if np.dtype(dtype).kind == "f":
        c = h.copy(); c[n // 2] = np.nan; c[n - 3] = np.nan; cases.append(c)
        cases += [np.full(n, -np.inf, dtype), np.full(n, np.inf, dtype)]
        c = np.full(n, -np.inf, dtype); c[n - 1] = 5; cases.append(c)
        c = np.zeros(n, dtype); c[: n // 2] = -0.0; cases.append(c)
    c = h.copy(); c[n // 3] = 100; c[n // 3 + n // 4] = 100; c[n // 5] = 0; c[n - 1] = 0; cases.append(c)
    return cases


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8"])
def test_argmax_argmin_long_rows_and_chunks(dtype):
    """Whole arrays long enough to be cut into chunks on the threads (each chunk's index, merged
    in chunk order by the finalize step), rows of a matrix (two vectorized passes: the best value,
    then its first position), forced chunk counts with empty chunks, and a fused expression."""
    from test_reduction_kernels import _chunked
    rng = np.random.default_rng(5)
    for n in (2 ** 18 + 5, 1_000_003):
        for c in _arg_cases(n, dtype, rng):
            x = xp.asarray(c)
            for name in ("argmax", "argmin"):
                assert int(getattr(xp, name)(x)) == int(getattr(np, name)(c)), (n, name)
    for c in _arg_cases(3000 * 7, dtype, rng):
        m = c.reshape(7, 3000)
        x = xp.asarray(m)
        for name in ("argmax", "argmin"):
            np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, axis=1)), getattr(np, name)(m, axis=1))
            for chunks in (3, 4000):  # (4000 chunks of 3000 elements: the last 1000 are empty)
                np.testing.assert_array_equal(_chunked(getattr(xp, name)(x, axis=1), chunks),
                                              getattr(np, name)(m, axis=1))
    if dtype.startswith("float"):
        h = rng.standard_normal(500_000).astype(dtype)
        assert int(xp.argmax(xp.asarray(h) * -2.0 + 1.0)) == int(np.argmax(h * -2.0 + 1.0))


@pytest.mark.parametrize("length", [2, 3, 8])
def test_argmax_argmin_short_rows(length):
    """Rows of a few elements (predicted classes; kernels.reduction_short) with NaN, -inf, ties
    and mixed zeros in some rows, against NumPy."""
    rng = np.random.default_rng(length)
    for dtype in ("float32", "float64", "int8"):
        h = rng.integers(0, 3, (6000, length)).astype(dtype)
        if dtype.startswith("float"):
            h[3, 1], h[7, length - 1] = np.nan, np.nan
            h[4, :] = np.nan
            h[5, :] = -np.inf
            h[6, :] = 0.0
            h[6, 0] = -0.0
        x = xp.asarray(h)
        for name in ("argmax", "argmin"):
            np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, axis=1)), getattr(np, name)(h, axis=1))


@pytest.mark.parametrize("n1", [0, 1, 2, 3, 8, 100, 1000])
def test_searchsorted_isin_lanes_and_sizes(n1):
    """The search kernel looks up SEARCH_LANES values side by side with a fixed number of halving
    steps (n1 only), then the rest one at a time: value counts around the lane count, sorted
    arrays of every small size, duplicates, NaN at the end, -0.0, a sorter, against NumPy."""
    from egpu_array.kernels.search import SEARCH_LANES
    rng = np.random.default_rng(n1)
    for nv in (1, SEARCH_LANES - 1, SEARCH_LANES, 3 * SEARCH_LANES + 5, 3000):
        for dtype in ("float32", "int32", "uint8"):
            a = np.sort(rng.integers(0, 20, n1).astype(dtype))
            v = rng.integers(0, 23, nv).astype(dtype)
            if dtype == "float32" and n1 and nv > 3:
                a[-1] = np.nan
                v[:3] = (np.nan, -0.0, np.inf)
            for side in ("left", "right"):
                np.testing.assert_array_equal(np.asarray(xp.searchsorted(xp.asarray(a), xp.asarray(v), side=side)),
                                              np.searchsorted(a, v, side=side))
            if n1:
                un = a[rng.permutation(n1)]
                sorter = np.argsort(un, kind="stable")
                np.testing.assert_array_equal(
                    np.asarray(xp.searchsorted(xp.asarray(un), xp.asarray(v), sorter=xp.asarray(sorter))),
                    np.searchsorted(un, v, sorter=sorter))
            for invert in (False, True):
                np.testing.assert_array_equal(np.asarray(xp.isin(xp.asarray(v), xp.asarray(a), invert=invert)),
                                              np.isin(v, a, invert=invert))


@pytest.mark.parametrize("dtype", ["bool", "float32", "int8", "uint16", "int64", "complex64"])
def test_nonzero_blocks_and_densities(dtype):
    """1-D nonzero fills blocks of MASK_BLOCK elements from a bit mask (a vector compare, then one
    store per set bit) and the chunk's last elements one at a time: lengths around the block and
    chunk sizes, empty to full densities, NaN and -0.0, against NumPy."""
    from egpu_array.kernels.compact_chunks import MASK_BLOCK
    rng = np.random.default_rng(len(dtype))
    for n in (1, MASK_BLOCK - 1, MASK_BLOCK, MASK_BLOCK + 1, 4097, 2 ** 18 + 17):
        for density in (0.0, 0.01, 0.5, 1.0):
            h = rng.random(n) < density
            if dtype != "bool":
                h = (h * rng.integers(1, 5, n)).astype(dtype)
                if dtype == "float32" and n > 10:
                    h[3], h[5] = np.nan, -0.0
            (got,) = xp.nonzero(xp.asarray(h))
            np.testing.assert_array_equal(np.asarray(got), np.nonzero(h)[0])


def _column_cases(rng, dtype, shape):
    """Small integers (many ties) with special columns: NaN first at a middle row, at the last
    row and twice, a column of -inf, one of +inf, mixed zeros, the best in the last row, and
    columns holding one NaN each, at every row."""
    h = rng.integers(-3, 4, shape).astype(dtype)
    if dtype.startswith("uint"):
        h = (h + 3).astype(dtype)
    col = h.reshape(shape[0], -1)  # (a view: rows of the reduced axis 0)
    rows = shape[0]
    if dtype.startswith("float"):
        col[rows // 2, 1] = np.nan
        col[rows - 1, 2] = np.nan
        col[[1, rows - 2], 3] = np.nan
        col[:, 4] = -np.inf
        col[:, 5] = np.inf
        col[:, 6] = 0.0
        col[rows // 3:, 6] = -0.0
        col[np.arange(rows), 9 + np.arange(rows)] = np.nan  # a lone NaN at every row position
    col[rows - 1, 7] = 100
    col[0, 8] = 100
    return h


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8"])
def test_argmax_argmin_column_order(dtype):
    """Reductions over a leading axis run in column order (kernels.reduction_outer_arg): tiles
    of columns, rows ROWS (4) at a time and then one by one, int32 rows within chunks merged in
    chunk order (forced chunk counts, with empty chunks), a batch of kept dimensions, and a
    fused expression; first occurrence on ties, first NaN, against NumPy. (A GPU target, the cuda
    device, runs them in row order: the same cases, other kernels.)"""
    from egpu_array._schedule_reduce import gpu_blocks
    from egpu_array.kernels import cache
    from test_reduction_kernels import _chunked
    rng = np.random.default_rng(7)
    for shape, axis in [((37, 4100), 0), ((3, 2050), 0), ((4, 30, 70), 0), ((3, 45, 33), 1)]:
        h = _column_cases(rng, dtype, shape if axis == 0 else (shape[1], shape[0], shape[2]))
        if axis == 1:
            h = np.ascontiguousarray(np.swapaxes(h, 0, 1))
        x = xp.asarray(h)
        for name in ("argmax", "argmin"):
            want = getattr(np, name)(h, axis=axis)
            np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, axis=axis)), want)
            for chunks in (2, 40):  # (40 chunks of 37 rows: chunks of one row, three empty)
                np.testing.assert_array_equal(_chunked(getattr(xp, name)(x, axis=axis), chunks), want)
        if dtype.startswith("float"):
            np.testing.assert_array_equal(np.asarray(xp.argmax(x * -2.0 + 1.0, axis=axis)),
                                          np.argmax(h * -2.0 + 1.0, axis=axis))
    if dtype.startswith("float"):  # a single NaN in turn at each row: found by the fast walk's check
        g = rng.integers(-3, 4, (11, 2050)).astype(dtype)
        for r in range(11):
            c = g.copy()
            c[r, 5] = np.nan
            for name in ("argmax", "argmin"):
                np.testing.assert_array_equal(np.asarray(getattr(xp, name)(xp.asarray(c), axis=0)),
                                              getattr(np, name)(c, axis=0))
    used = {(spec.op, spec.order, spec.chunked) for dev, spec in cache._memory
            if spec.kind == "reduce" and dev == x.device}
    order = "inner" if gpu_blocks(x.device) else "outer"  # (a GPU target reduces in row order only)
    assert {("argmax", order, False), ("argmin", order, True)} <= used


def test_column_order_arg_chunks_hold_int32_rows():
    """The column-order argmax kernel keeps rows relative to its chunk in int32: the scheduler
    cuts a reduction of more rows into chunks of at most ARG_CHUNK_ROWS (checked on the plan,
    without allocating 2**33 elements)."""
    from egpu_array import _dtypes as dt
    from egpu_array._schedule_reduce import _reduce_chunks
    from egpu_array.kernels.reduction_outer_arg import ARG_CHUNK_ROWS
    for n_red, threads, asked in ((4 * ARG_CHUNK_ROWS + 3, 1, None), (ARG_CHUNK_ROWS + 1, 2, 1)):
        chunks, items = _reduce_chunks("argmax", "outer", (10,), 10, n_red, threads, dt.float32, asked)
        assert -(-n_red // chunks) <= ARG_CHUNK_ROWS and items == chunks
    assert _reduce_chunks("argmax", "outer", (10,), 10, 1000, 1, dt.float32)[0] == 1
    assert _reduce_chunks("max", "outer", (10,), 10, 4 * ARG_CHUNK_ROWS, 1, dt.float32)[0] == 1


def test_numpy_forms_scikit_learn_relies_on():
    """``where(condition)`` is ``nonzero(condition)``, and the logical functions take numeric
    operands by their truth (nonzero, NaN included), as NumPy does: scikit-learn's roc_curve
    uses both (they raised TypeErrors). Half a where is still an error."""
    h = np.array([0.0, 1.5, np.nan, -0.0, 2.0])
    x = xp.asarray(h)
    (got,) = xp.where(x > 1)
    np.testing.assert_array_equal(np.asarray(got), np.where(h > 1)[0])
    for name in ("logical_and", "logical_or", "logical_xor"):
        np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, x[::-1])), getattr(np, name)(h, h[::-1]))
        np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, 1)), getattr(np, name)(h, 1))
    np.testing.assert_array_equal(np.asarray(xp.logical_not(xp.asarray([0, 3, -1]))), [True, False, False])
    with pytest.raises(TypeError, match="where"):
        xp.where(x > 1, x)


def test_count_nonzero_counts_in_blocks():
    """count_nonzero sums its bool values in blocks of 16-bit lanes (kernels.reduction_rows
    COUNT_BLOCK): runs of all-true values across block ends, rows of every length around a
    block's, every axis and keepdims, and a broadcast view of more than 2**31 elements (the
    int64 total is exact)."""
    from egpu_array.kernels.reduction_rows import COUNT_BLOCK
    rng = np.random.default_rng(11)
    for n in (COUNT_BLOCK - 1, COUNT_BLOCK, COUNT_BLOCK + 1, 3 * COUNT_BLOCK + 7):
        a = np.ones(n, dtype=bool)
        a[rng.integers(0, n, 5)] = False
        assert int(xp.count_nonzero(xp.asarray(a))) == np.count_nonzero(a)
        two = np.stack([a, ~a, np.ones(n, bool)])
        for axis in (None, 0, 1, (0, 1)):
            for keepdims in (False, True):
                np.testing.assert_array_equal(np.asarray(xp.count_nonzero(xp.asarray(two), axis=axis,
                                                                          keepdims=keepdims)),
                                              np.count_nonzero(two, axis=axis, keepdims=keepdims))
        f = rng.standard_normal(n).astype(np.float32)
        f[:3] = [np.nan, -0.0, 0.0]
        y = xp.asarray(f)
        assert int(xp.count_nonzero(y)) == np.count_nonzero(f)
        assert int(xp.count_nonzero(y > 0.5)) == np.count_nonzero(f > 0.5)
    row = rng.random(1 << 20) > 0.25
    big = xp.broadcast_to(xp.reshape(xp.asarray(row), (1, 1 << 20)), (2049, 1 << 20))  # 2**31 + 2**20
    assert int(xp.count_nonzero(big)) == 2049 * int(row.sum())
    assert int(xp.count_nonzero(big, axis=0)[5]) == 2049 * int(row[5])
