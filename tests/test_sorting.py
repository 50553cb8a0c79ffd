"""sort and argsort against NumPy: every dtype, 1-3-D shapes incl. empty, every axis, both
directions, NaN/inf/-0.0 and ties. Ascending results must equal NumPy's stable argsort exactly;
descending ones the stable descending order (equal elements keep their relative order; NaNs,
the greatest values of the order, come first)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import egpu_array as xp
from conftest import ALL, viewed


def _equivalent_adjacent(s: np.ndarray) -> np.ndarray:
    """For sorted ``s`` (1-D), whether s[k] and s[k-1] are equivalent in the order (NaN ~ NaN)."""
    def same(a, b):
        if a.dtype.kind == "f":
            return (a == b) | (np.isnan(a) & np.isnan(b))
        return a == b
    if s.dtype.kind == "c":
        return same(s.real[1:], s.real[:-1]) & same(s.imag[1:], s.imag[:-1])
    return same(s[1:], s[:-1])


def ref_argsort(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    asc = np.argsort(a, axis=axis, kind="stable")
    if not descending:
        return asc
    moved_a, moved_i = np.moveaxis(a, axis, -1), np.moveaxis(asc, axis, -1)
    out = np.empty_like(moved_i)
    for r in np.ndindex(moved_a.shape[:-1]):
        row, order = moved_a[r], moved_i[r]
        s = row[order]
        rank = np.zeros(len(row), np.int64)
        if len(row) > 1:
            rank[order[1:]] = np.cumsum(~_equivalent_adjacent(s))
        out[r] = np.argsort(-rank, kind="stable")
    return np.moveaxis(out, -1, axis)


@st.composite
def sort_case(draw, dtypes=ALL):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3).map(tuple))
    if draw(st.booleans()):  # many ties
        small = draw(st.lists(st.integers(-2, 2), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))))
        base = np.array(small).reshape(shape)
        base = (base > 0) if dtype == "bool" else base.astype(dtype)
        x = xp.asarray(base)
    else:
        x, base = viewed(draw, xp, dtype, shape)
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return x, base, axis, draw(st.booleans())


@given(sort_case())
def test_sort_and_argsort(case):
    x, a, axis, desc = case
    idx = ref_argsort(a, axis, desc)
    got_i = np.asarray(xp.argsort(x, axis=axis, descending=desc))
    assert got_i.dtype == np.int64 and got_i.shape == a.shape
    np.testing.assert_array_equal(got_i, idx)
    got = np.asarray(xp.sort(x, axis=axis, descending=desc))
    assert got.dtype == a.dtype and got.shape == a.shape
    np.testing.assert_array_equal(got, np.take_along_axis(a, idx, axis=axis))


def test_nan_zero_order_and_stability():
    a = np.array([0.0, np.nan, -0.0, 1.0, -np.inf, np.nan, 0.0, -1.0], np.float32)
    x = xp.asarray(a)
    np.testing.assert_array_equal(np.asarray(xp.argsort(x)), np.argsort(a, kind="stable"))
    assert list(np.asarray(xp.argsort(x, descending=True))) == [1, 5, 3, 0, 2, 6, 7, 4]
    got = np.asarray(xp.sort(x))
    assert np.signbit(got[2:5]).tolist() == [False, True, False]  # stable among equal zeros


def test_complex_numpy_order():
    a = np.array([complex(1, np.nan), 2 + 0j, complex(np.nan, 1), complex(np.nan, np.nan), 1 + 1j,
                  complex(np.nan, 0), 1 - 1j])
    np.testing.assert_array_equal(np.asarray(xp.argsort(xp.asarray(a))), np.argsort(a, kind="stable"))


@pytest.mark.parametrize("n", [1 << 15, (1 << 16) + 12345])
def test_long_row_parallel_segments(n):
    rng = np.random.default_rng(n)
    a = rng.integers(0, 1000, n).astype(np.float64)
    x = xp.asarray(a)
    np.testing.assert_array_equal(np.asarray(xp.argsort(x)), np.argsort(a, kind="stable"))
    np.testing.assert_array_equal(np.asarray(xp.argsort(x, descending=True)), ref_argsort(a, 0, True))
    two = xp.asarray(np.stack([a, -a]))
    np.testing.assert_array_equal(np.asarray(xp.sort(two, axis=1)), np.sort(np.stack([a, -a]), axis=1))


def test_lazy_input_and_errors():
    a = np.arange(12.0).reshape(3, 4)
    x = xp.asarray(a)
    np.testing.assert_array_equal(np.asarray(xp.sort(-x, axis=0)), np.sort(-a, axis=0))
    with pytest.raises(IndexError):
        xp.sort(x, axis=2)
    with pytest.raises(TypeError):
        xp.argsort(a)
    with pytest.raises(ValueError):
        xp.sort(xp.asarray(np.ones(1))[0])


@pytest.mark.parametrize("dtype", ["bool", "int8", "uint16", "int32", "uint64", "float32", "float64"])
def test_radix_path_long_rows(dtype):
    """Rows of >= RADIX_MIN elements take the radix sort (sort of few distinct integers: counted,
    see the next test): same order, stability, NaN/-0.0 rules."""
    from egpu_array._sorting import RADIX_MIN
    rng = np.random.default_rng(7)
    n = RADIX_MIN + 999
    if dtype == "bool":
        a = rng.random(n) > 0.5
    elif dtype.startswith("float"):
        a = rng.choice(np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1.5, -2.0, 1e-310], dtype), n)
        a[::7] = rng.standard_normal(len(a[::7]))
    else:
        info = np.iinfo(dtype)
        a = rng.choice(np.array([info.min, info.max, 0, 1, 3], dtype), n)
    x = xp.asarray(a)
    for desc in (False, True):
        idx = ref_argsort(a, 0, desc)
        np.testing.assert_array_equal(np.asarray(xp.argsort(x, descending=desc)), idx)
        got = np.asarray(xp.sort(x, descending=desc))
        np.testing.assert_array_equal(got, a[idx])
        if dtype.startswith("float"):
            np.testing.assert_array_equal(np.signbit(got), np.signbit(a[idx]))  # zeros keep their order


@pytest.mark.parametrize("dtype", ["uint8", "int32", "int64", "float32", "float64"])
def test_sort_by_counting(dtype):
    """sort and argsort of a long row of few distinct values count them (kernels.unique_hash:
    sort's phase ``expand`` writes each value as often as it occurs, chunks of the output in
    parallel; argsort's ``place`` puts each position at its rank's next offset, stable), in both
    directions, with runs that cross the chunks' bounds (one value is 90% of the data); a chunk
    with more than LIMIT distinct values, or a NaN, takes the radix sort (as every sort does on
    devices whose memory is not the host's: the sim run of this module)."""
    from egpu_array._sorting import RADIX_MIN
    from egpu_array.kernels import cache
    from egpu_array.kernels.unique_hash import LIMIT
    rng = np.random.default_rng(8)
    n = 3 * RADIX_MIN + 5
    if dtype.startswith("float"):
        pool = np.concatenate([[np.inf, -np.inf, np.finfo(dtype).max, 0.0], np.arange(2 * LIMIT) * 0.37 - 9])
    else:
        info = np.iinfo(dtype)
        pool = np.concatenate([[info.min, info.max], np.arange(2 * LIMIT) % (int(info.max) - 1) + 1])
    pool = np.unique(pool.astype(dtype))
    cases = []
    for distinct, counted in ((min(len(pool), 300), True), (len(pool), dtype == "uint8")):
        a = rng.choice(pool[:distinct], n)
        a[rng.random(n) < 0.9] = pool[distinct // 2]
        a[:distinct] = pool[:distinct]  # (all of them in the first chunk)
        cases.append((a, counted))
    if dtype.startswith("float"):
        a = cases[0][0].copy()
        a[n // 2] = np.nan
        cases.append((a, False))
    for a, counted in cases:
        x = xp.asarray(a)
        counted = counted and getattr(x.device, "host_memory", False)  # (sim: the radix sort)
        for desc, func, phase in ((False, xp.sort, "expand"), (True, xp.sort, "expand"),
                                  (False, xp.argsort, "place"), (True, xp.argsort, "place")):
            seen = []
            cache.recorders.append(lambda device, spec: seen.append(spec))
            try:
                got = np.asarray(func(x, descending=desc))
            finally:
                cache.recorders.pop()
            assert any(getattr(sp, "phase", None) == phase for sp in seen) == counted, (dtype, len(np.unique(a)), desc)
            idx = ref_argsort(a, 0, desc)
            np.testing.assert_array_equal(got, idx if func is xp.argsort else a[idx])


@pytest.mark.parametrize("dtype", ["int32", "uint32", "int64", "float32", "float64"])
@pytest.mark.parametrize("spread", ["full", "small", "constant"])
def test_one_long_row_on_one_thread(dtype, spread):
    """One row of RADIX_MIN values or more but shorter than ROW_CHUNKS_MIN takes the radix kernel
    of a row per work item on host targets, not the chunks in parallel; from WIDE_DIGITS_MIN on with
    11-bit digits (``rows11``: float32 in 3 passes, an odd number, so the row is copied back; small
    spreads skip the constant digits; one row of them is counted instead, test_sort_by_counting):
    NumPy's stable order both ways, NaNs last, zeros of both signs in their order, the input
    unchanged; several such rows (never counted) too."""
    from egpu_array._sorting import RADIX_MIN, ROW_CHUNKS_MIN, WIDE_DIGITS_MIN, row_radix_applies
    from egpu_array.kernels import cache
    rng = np.random.default_rng(13)
    n = RADIX_MIN + 4097
    assert WIDE_DIGITS_MIN <= n < ROW_CHUNKS_MIN
    if spread == "constant":
        a = np.full(n, 3, dtype)
    elif dtype.startswith("float"):
        a = (rng.standard_normal(n) * (1e3 if spread == "full" else 1)).astype(dtype)
        a = np.round(a) if spread == "small" else a
        a[rng.integers(0, n, 40)] = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf] * 8, dtype)
    else:
        info = np.iinfo(dtype)
        a = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True) if spread == "full" \
            else rng.integers(0, 3000, n).astype(dtype)
    x = xp.asarray(a)
    before = a.copy()
    for desc in (False, True):
        seen = []
        cache.recorders.append(lambda device, spec: seen.append(getattr(spec, "phase", None)))
        try:
            idx = np.asarray(xp.argsort(x, descending=desc))
            got = np.asarray(xp.sort(x, descending=desc))
        finally:
            cache.recorders.pop()
        if row_radix_applies(x.dtype, n, x.device) and spread == "full":  # (others: counted, see below)
            assert "rows11" in seen and "scatter" not in seen
        want = ref_argsort(a, 0, desc)
        np.testing.assert_array_equal(idx, want)
        np.testing.assert_array_equal(got, a[want])
        np.testing.assert_array_equal(np.signbit(got), np.signbit(a[want]))
    np.testing.assert_array_equal(np.asarray(x), before)
    three = np.stack([a, a[::-1], before[rng.permutation(n)]])
    np.testing.assert_array_equal(np.asarray(xp.argsort(xp.asarray(three), axis=1)), np.argsort(three, axis=1,
                                                                                                kind="stable"))
