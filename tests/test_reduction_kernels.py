"""Reduction kernel paths against NumPy: column order (axis-0 style) tiles and row chunks, forced
chunking of both orders, strided and permuted inputs, NaN, -0.0 and integer wrap-around."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array import _schedule
from egpu_array._array import Array
from egpu_array._graph import LazyNode, View, contiguous_strides
from egpu_array._schedule_reduce import gpu_blocks
from egpu_array.kernels import cache
from egpu_array.kernels.reduction_outer import outer_tile

OPS = ["sum", "prod", "max", "min", "mean", "all", "any"]
DTYPES = ["float32", "float64", "int8", "uint16", "int64", "complex64", "bool"]


def _reference(name, h, axis):
    kw = {}
    if name in ("sum", "prod"):
        kw["dtype"] = {"i": np.int64, "u": np.uint64, "b": np.int64}.get(h.dtype.kind, h.dtype)
    with np.errstate(all="ignore"):
        return getattr(np, name)(h, axis=axis, **kw)


def _check(got, ref):
    got = np.asarray(got)
    assert got.shape == ref.shape
    if ref.dtype.kind in "fc":
        tol = 2e-4 if ref.dtype in (np.float32, np.complex64) else 1e-10
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * (1 + float(np.max(np.abs(ref), initial=0))))
    else:
        np.testing.assert_array_equal(got, ref)


def _data(rng, dtype, shape):
    if dtype == "bool":
        return rng.random(shape) < 0.7
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -100), min(info.max, 100), shape, endpoint=True).astype(dtype)
    h = rng.standard_normal(shape) * 0.6 + 0.3
    if dtype.startswith("complex"):
        h = h + 0.5j * rng.standard_normal(shape)
    return h.astype(dtype)


def _chunked(arr: Array, chunks: int) -> np.ndarray:
    """Compute a lazy reduction with a forced number of row chunks (the two-phase path)."""
    node = arr._node
    buf = node.device.allocator.alloc(max(1, math.prod(node.shape)) * node.dtype.itemsize)
    view = View(buf, contiguous_strides(node.shape), 0)
    _schedule._realize_reduce(node, view, chunks=chunks)
    return np.asarray(Array._new(LazyNode("buffer", (), node.dtype, node.shape, view, node.device)))


def _orders_used(device=None):
    return {getattr(spec, "order", None) for dev, spec in cache._memory if device in (None, dev)}


def _assert_column_order_ran(device):
    """Column ("outer") order kernels ran on ``device``; a GPU target (the cuda device) reduces in
    row ("inner") order only (_schedule_reduce._realize_reduce: gpu_blocks)."""
    used = _orders_used(device)
    if gpu_blocks(device):
        assert "inner" in used and "outer" not in used
    else:
        assert "outer" in used


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.sampled_from(DTYPES), st.sampled_from(OPS), st.integers(1, 9),
       st.sampled_from([1, 2, 3, 7, 31, 255, 2047, 2049, 4100, 8200, 16400]), st.integers(0, 2**32 - 1))
def test_axis0_tiles_match_numpy(dtype, name, rows, cols, seed):
    """Odd column counts around the tile width, few and many rows, every accumulator kind."""
    h = _data(np.random.default_rng(seed), dtype, (rows, cols))
    if name == "prod" and dtype.startswith(("float", "complex")):
        h = (np.abs(h) * 0 + 1.01).astype(dtype)
    try:
        got = getattr(xp, name)(xp.asarray(h), axis=0)
    except TypeError:
        return
    _check(got, _reference(name, h, 0))


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "complex128", "bool"])
@pytest.mark.parametrize("chunks", [2, 3, 7])
def test_forced_chunks_both_orders(dtype, chunks):
    h = _data(np.random.default_rng(chunks), dtype, (37, 2050))
    x = xp.asarray(h)
    for name in ("sum", "max", "mean", "any"):
        for axis in (0, 1):
            try:
                arr = getattr(xp, name)(x, axis=axis)
            except TypeError:
                continue
            _check(_chunked(arr, chunks), _reference(name, h, axis))
    _assert_column_order_ran(x.device)


@settings(max_examples=20, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "int16", "float64"]), st.sampled_from(["sum", "max", "min"]),
       st.permutations([0, 1, 2]), st.integers(1, 3), st.sampled_from([(0,), (0, 1), (1, 2), (0, 2), (2,)]))
def test_strided_and_permuted_inputs(dtype, name, perm, step, axes):
    h = _data(np.random.default_rng(step), dtype, (6, 10, 9))
    hv = np.transpose(h, perm)[::step, :, ::-1]
    xv = xp.permute_dims(xp.asarray(h), tuple(perm))[::step, :, ::-1]
    _check(getattr(xp, name)(xv, axis=axes), _reference(name, hv, axes))


@pytest.mark.parametrize("chunks", [None, 1, 3])
@pytest.mark.parametrize("shape,axis", [((3, 50, 2100), 1), ((2, 20, 4200), 1), ((2, 3, 40, 70), (1, 2)), ((4, 30, 5, 9), (0, 2)),
                                        ((5, 7, 11), (0, 1)), ((6, 1, 9), 0)])
def test_batched_column_order(shape, axis, chunks):
    """Kept dimensions before the vectorized one are a batch (e.g. a sum over axis 1 of 3-D)."""
    h = _data(np.random.default_rng(len(shape)), "float64", shape)
    x = xp.asarray(h)
    for name in ("sum", "max", "mean"):
        arr = getattr(xp, name)(x * 2 - 1, axis=axis)
        got = _chunked(arr, chunks) if chunks else np.asarray(arr)
        _check(got, _reference(name, h * 2 - 1, axis))
    _assert_column_order_ran(x.device)


def test_small_columns_many_rows_split_across_threads():
    """(n_red large, n_out small) and (n_out large, n_red small), with a fused producer."""
    rng = np.random.default_rng(2)
    for shape in [(300_000, 3), (3, 300_000), (1, 500_000), (500_000, 1), (70_000, 17)]:
        h = rng.standard_normal(shape)
        x = xp.asarray(h)
        for axis in (0, 1, None):
            _check(xp.sum(x * 2 - 1, axis=axis), np.sum(h * 2 - 1, axis=axis))
            _check(xp.max(x, axis=axis), np.max(h, axis=axis))


def test_nan_zero_sign_and_wraparound_in_column_order():
    h = np.zeros((40, 8300), dtype=np.float64)   # two tiles of float64 accumulators
    h[:, 5] = -0.0
    h[17, 7] = np.nan
    h[3, 8299] = np.nan
    h[:, 9] = -np.inf
    x = xp.asarray(h)
    for name in ("sum", "max", "min"):
        got = np.asarray(getattr(xp, name)(x, axis=0))
        ref = getattr(np, name)(h, axis=0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_array_equal(got[~np.isnan(ref)], ref[~np.isnan(ref)])
    s = np.asarray(xp.sum(xp.asarray(np.full((8, 300), -0.0)), axis=0))
    assert np.all(s == 0) and np.all(np.signbit(s))        # a sum of -0.0 stays -0.0
    hi = np.full((10, 4100), 100, dtype=np.int8)
    got = np.asarray(xp.sum(xp.asarray(hi), axis=0, dtype=xp.int8))
    np.testing.assert_array_equal(got, np.sum(hi, axis=0, dtype=np.int8))   # wraps as NumPy does
    _assert_column_order_ran(x.device)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("chunks", [3, 5])
def test_column_order_chunks_merge_nan_and_zero_signs(dtype, chunks):
    """The chunked column-order finalize (partials as one row per chunk) keeps NaN from one
    chunk, the sign rule of zeros met in different chunks, and the chunk order of sums."""
    h = np.zeros((30, 8300), dtype=dtype)      # two tiles of accumulators; chunks of 6 to 10 rows
    h[:, 1] = -0.0                             # all -0.0: max/min/sum -0.0
    h[:15, 2], h[15:, 2] = -0.0, 0.0           # zeros of both signs in different chunks
    h[29, 3] = np.nan                          # NaN in the last chunk only
    h[0, 8298] = np.nan                        # NaN in the first chunk, second tile
    h[:, 6] = np.arange(30) + 1.0              # every chunk changes its sum
    x = xp.asarray(h)
    for name in ("max", "min", "sum"):
        got = _chunked(getattr(xp, name)(x, axis=0), chunks)
        ref = getattr(np, name)(h, axis=0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
        ok = ~np.isnan(ref)
        np.testing.assert_array_equal(got[ok], ref[ok], err_msg=name)
        sign2 = {"max": False, "min": True, "sum": False}[name]
        assert np.signbit(got[1]) and np.signbit(got[2]) == sign2, name
    _assert_column_order_ran(x.device)


def test_outer_tile_sizes():
    """The tile widths the shapes of the tests above straddle (8300 columns: two float64 tiles)."""
    assert outer_tile(xp.float64) == outer_tile(xp.int64) == 8192
    assert outer_tile(xp.complex128) == 4096 and outer_tile(xp.bool) == 65536
    assert outer_tile(xp.float64, "argmax") == 320 and outer_tile(xp.float32, "argmin") == 512


def test_empty_reduced_space_column_order():
    h = np.zeros((0, 3000), dtype=np.float32)
    for name in ("sum", "prod", "any", "all"):
        _check(getattr(xp, name)(xp.asarray(h), axis=0), _reference(name, h, 0))


def _minmax_rule(name, h, axis):
    """max/min with NaN propagation and -0.0 < +0.0 (the rule of llvm.maximum/minimum; NumPy's
    own sign of a zero result depends on the order of the elements)."""
    ref = np.asarray(getattr(np, name)(h, axis=axis))
    zero_sign = np.all(np.signbit(h), axis=axis) if name == "max" else np.any(np.signbit(h) & (h == 0), axis=axis)
    fixed = np.where(ref == 0, np.where(zero_sign, -0.0, 0.0).astype(h.dtype), ref)
    return np.where(np.isnan(ref), ref, fixed)


def _same_bits_or_nan(got, ref):
    got = np.asarray(got)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    keep = ~np.isnan(ref)
    np.testing.assert_array_equal(got[keep], ref[keep])
    np.testing.assert_array_equal(np.signbit(got[keep]), np.signbit(ref[keep]))


_SPECIAL = [np.nan, -0.0, 0.0, -np.inf, np.inf, 1.5, -2.0, 3e-39, -7.0]


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64"]), st.sampled_from(["max", "min"]),
       st.sampled_from([1, 2, 7, 33, 64, 100, 1000]), st.integers(1, 5),
       st.lists(st.sampled_from(_SPECIAL), min_size=1, max_size=6), st.sampled_from([None, 2, 5]),
       st.integers(0, 2**32 - 1))
def test_inner_minmax_nan_and_zero_sign(dtype, name, cols, rows, specials, chunks, seed):
    """Row-order max/min (vector extremum + NaN and zero-sign accumulators) against the rule:
    NaN anywhere, zeros of either sign among negative/positive data, chunked or not."""
    rng = np.random.default_rng(seed)
    base = -np.abs(rng.standard_normal((rows, cols))) if seed % 2 else np.abs(rng.standard_normal((rows, cols)))
    h = base.astype(dtype)
    flat = h.reshape(-1)
    for v in specials:
        flat[rng.integers(0, flat.size, rng.integers(1, 4))] = v
    if seed % 3 == 0:   # a whole row of one value: all zeros of one sign, or all NaN
        h[rng.integers(0, rows)] = specials[0]
    # zeros of random signs in data of the sign that makes a zero the extremum
    z = (-np.abs(rng.standard_normal((rows, cols))) if name == "max" else np.abs(rng.standard_normal((rows, cols))))
    zeros = rng.random((rows, cols)) < 0.3
    z[zeros] = np.where(rng.random((rows, cols)) < 0.5, -0.0, 0.0)[zeros]
    for h in (h, z.astype(dtype)):
        x = xp.asarray(h)
        for axis in (1, None):
            arr = getattr(xp, name)(x, axis=axis)
            got = _chunked(arr, chunks) if chunks and axis == 1 else np.asarray(arr)
            _same_bits_or_nan(got, _minmax_rule(name, h, axis))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inner_minmax_special_value_in_one_chunk(dtype):
    """A large array reduced in parallel chunks: one NaN, or the only +0.0 / -0.0, in one chunk."""
    n = 1_200_000
    for pos in (0, 333_333, n - 1):
        h = np.full(n, -1.0, dtype=dtype)
        h[pos] = np.nan
        assert np.isnan(float(xp.max(xp.asarray(h)))) and np.isnan(float(xp.min(xp.asarray(h))))
        h = np.full(n, -0.0, dtype=dtype)
        h[pos] = 0.0
        assert not np.signbit(float(xp.max(xp.asarray(h)))) and np.signbit(float(xp.min(xp.asarray(h))))
        h = np.full(n, 0.0, dtype=dtype)
        h[pos] = -0.0
        assert not np.signbit(float(xp.max(xp.asarray(h)))) and np.signbit(float(xp.min(xp.asarray(h))))
        h = -np.abs(np.random.default_rng(pos).standard_normal(n)).astype(dtype) - 1
        h[pos] = -0.0
        assert float(xp.max(xp.asarray(h))) == 0 and np.signbit(float(xp.max(xp.asarray(h))))
        assert float(xp.min(xp.asarray(h))) == float(h.min())


@pytest.mark.parametrize("rows", [7, 8, 12, 13, 15, 16, 17, 23])
@pytest.mark.parametrize("cols", [1023, 1024, 1500])
def test_column_order_wide_and_narrow_row_groups(rows, cols):
    """Wide tiles add 8 rows per accumulator update, then 4, then single rows; narrow tiles 4
    then 1: every split of the rows, with a NaN and -inf in rows that fall in each group."""
    from egpu_array.kernels.reduction_outer import WIDE_TILE, WIDE_UNROLL
    assert WIDE_UNROLL == 8 and 1023 < WIDE_TILE <= 1024
    h = _data(np.random.default_rng(rows * cols), "float64", (rows, cols))
    h[rows - 1, 3] = np.nan
    h[min(rows - 1, 9), 700] = -np.inf
    h[0, 1000] = np.nan
    x = xp.asarray(h)
    for name in ("sum", "max", "min", "mean"):
        got = np.asarray(getattr(xp, name)(x, axis=0))
        ref = _reference(name, h, 0)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        ok = ~np.isnan(ref)
        np.testing.assert_allclose(got[ok], ref[ok], rtol=1e-12)
    h32 = np.nan_to_num(h, nan=0.5, neginf=-3.0).astype(np.float32)
    _check(xp.sum(xp.asarray(h32), axis=0), np.sum(h32.astype(np.float64), axis=0).astype(np.float32))
    _assert_column_order_ran(x.device)


def _float32_error_ok(got, ref, numpy32):
    """``got`` (float32 results) within half an ulp of the float64 reference ``ref`` plus 5%
    of an ulp (the float32 blocks' own rounding), and never farther from it than NumPy's float32
    sum ``numpy32`` is (plus that half ulp)."""
    got, ref, numpy32 = (np.asarray(a, dtype=np.float64) for a in (got, ref, numpy32))
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    err = np.abs(got - ref)
    assert np.all(err <= 0.55 * ulp), np.max(err / ulp)
    assert np.all(err <= np.abs(numpy32 - ref) + 0.5 * ulp)


def test_float32_sums_large_mean_small_spread():
    """float32 sums (blocks added in float32, then in float64; column order: row groups in
    float32) on 1.2e7 values of mean 1000 and spread 1: as good as a float64 accumulation
    rounded once, whole array, along rows (threads split each row) and along columns."""
    h = (1000 + np.random.default_rng(7).standard_normal(12_000_000)).astype(np.float32)
    x = xp.asarray(h)
    _float32_error_ok(xp.sum(x), h.astype(np.float64).sum(), h.sum())
    _float32_error_ok(xp.mean(x), h.astype(np.float64).mean(), h.mean())
    for shape, axis in (((4, 3_000_000), 1), ((12_000, 1000), 0)):
        hh = h.reshape(shape)
        _float32_error_ok(xp.sum(xp.reshape(x, shape), axis=axis), hh.astype(np.float64).sum(axis=axis),
                          hh.sum(axis=axis))


@pytest.mark.parametrize("axis", [None, 0, 1])
def test_float32_sum_overflow_only_in_float32_and_inf(axis):
    """A float32 block or row group whose float32 total overflows (where float64 does not) is
    summed again in float64: the result is as with float64 accumulation; inf and inf - inf in
    the data still give inf and nan. The values are exact in any order of addition (powers of
    two; ones only in rows and columns where they cannot be absorbed differently)."""
    big = np.float32(2.0 ** 127)  # two of them overflow float32
    h = np.zeros((64, 3000), dtype=np.float32)
    if axis is None:
        h[5, 11:15] = big          # four in one block (float32 total inf), cancelled in another
        h[40, 2990:2994] = -big
        h[60, [3, 900, 1800, 2700]] = big     # in separate blocks, cancelled in one
        h[61, 100:104] = -big
    else:
        h[0::2, 0::3] = 1
        h[[11, 13, 15, 17], 100] = big        # column 100: 0, rows: big
        h[[19, 21, 23, 25], 100] = -big
        h[41, 40:136:32] = big                # row 41: 0 (the bigs in one vector lane); columns
        h[41, 136:232:32] = -big              # 72, 168: big + their 32 ones = big
        h[31, 7] = np.inf
        h[33, 8], h[35, 8] = np.inf, -np.inf  # column 8: nan
        h[43, 2000:2004] = big                # row 43: 2**129, inf in float32
    x = xp.asarray(h)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = np.asarray(np.sum(h.astype(np.float64), axis=axis).astype(np.float32))
    got = np.asarray(xp.sum(x, axis=axis))
    np.testing.assert_array_equal(got, ref)
    if axis is None:
        assert float(xp.sum(xp.asarray(np.concatenate([h.ravel(), h[5]])))) == np.inf
    for chunks in (2, 3):
        if axis is not None:
            np.testing.assert_array_equal(_chunked(xp.sum(x, axis=axis), chunks), ref)


@pytest.mark.parametrize("cols", [3, 16, 1024])
@pytest.mark.parametrize("extra", [0, 1001, 3001])
def test_column_order_packed_rows(extra, cols):
    """Narrow tiles whose rows follow one another in memory (at least PACK_MIN_ELEMS elements:
    the scheduler's packed kernel) walk runs of rows as one wide row (PACK_ELEMS) folded back at
    the end: runs in groups of 8 and 4, then single rows, for every dtype, with NaN and -inf in
    rows of different groups; a broadcast operand and a strided view take the unpacked path and
    agree too."""
    from egpu_array._schedule_reduce import PACK_MIN_ELEMS
    rows = -(-PACK_MIN_ELEMS // cols) + extra
    cache.clear_memory_cache()
    rng = np.random.default_rng(rows * 7 + cols)
    for dtype in ("float64", "float32", "int16", "complex64"):
        h = _data(rng, dtype, (rows, cols))
        if dtype.startswith("float"):
            h[rows - 1, cols - 1] = np.nan
            h[rows // 2, 0] = -np.inf
        x = xp.asarray(h)
        for name in ("sum", "prod", "max", "min", "mean"):
            if (dtype == "complex64" and name in ("max", "min")) or (dtype == "int16" and name == "mean"):
                continue
            hh, xx = h, x
            if name == "prod" and dtype != "int16":  # (factors near 1: no under/overflow)
                hh = (1 + 0.001 * rng.standard_normal((rows, cols))).astype(dtype)
                xx = xp.asarray(hh)
            ref = _reference(name, hh.astype(np.float64) if dtype == "float32" else hh, 0)
            got = np.asarray(getattr(xp, name)(xx, axis=0))
            if dtype.startswith(("float", "complex")):
                np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
                np.testing.assert_array_equal(got[np.isinf(ref)], ref[np.isinf(ref)])
                ok = np.isfinite(ref)
                scale = 1 + float(np.max(np.abs(ref[ok]), initial=0))
                np.testing.assert_allclose(got[ok], ref[ok], rtol=2e-4, atol=2e-4 * scale)
            else:
                _check(got, ref)
    h = _data(rng, "float64", (rows, cols))
    x = xp.asarray(h)
    row = xp.asarray(h[:1])
    _check(xp.sum((x - row) * 2.0, axis=0), np.sum((h - h[:1]) * 2.0, axis=0))
    _check(xp.max(x[::2], axis=0), np.max(h[::2], axis=0))
    _check(xp.sum(x + xp.asarray(h[:, :1]), axis=0), np.sum(h + h[:, :1], axis=0))
    _assert_column_order_ran(x.device)
    packed = any(getattr(spec, "packed", False) for _, spec in cache._memory)
    assert packed != gpu_blocks(x.device)  # (row order on a GPU target: nothing packed)


def test_column_order_packed_rows_chunked():
    """The packed walk in the two-phase path: each chunk folds its own runs."""
    h = _data(np.random.default_rng(3), "float64", (40_003, 5))
    h[20_000, 2] = np.nan
    x = xp.asarray(h)
    for chunks in (2, 7, 64):
        for name in ("sum", "max", "mean"):
            got = _chunked(getattr(xp, name)(x, axis=0), chunks)
            ref = _reference(name, h, 0)
            np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
            np.testing.assert_allclose(got[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=1e-12)


def _shorts_used(device=None):
    return {spec.short for dev, spec in cache._memory if getattr(spec, "short", 0) and device in (None, dev)}


@pytest.mark.parametrize("length", [2, 3, 5, 8])
def test_short_packed_rows(length):
    """Rows of 2..8 elements packed in memory (kernels.reduction_short: the row unrolled, one
    loop over the outputs) against NumPy for every op and dtype class, with NaN, inf and -0.0 in
    float rows; the kernel is the short one (its row length in the spec)."""
    rng = np.random.default_rng(length)
    shape = (5000, length)
    for dtype in ("float32", "float64", "int8", "uint16", "complex64", "bool"):
        h = _data(rng, dtype, shape)
        if dtype.startswith("float"):
            h[5, 1], h[9, 0] = np.nan, np.inf
            h[7, :] = -0.0
            h[8, :] = 0.0
            h[10, :] = 0.0
            h[10, 1] = -0.0  # mixed zeros: -0.0 < +0.0 for max/min (llvm.maximum), whatever the order
        x = xp.asarray(h)
        for name in OPS:
            if (name in ("max", "min") and dtype in ("complex64", "bool")) or (name == "mean" and dtype[0] in "iub") \
                    or (name in ("sum", "prod") and dtype == "bool"):
                continue
            got = np.asarray(getattr(xp, name)(x, axis=1))
            ref = _reference(name, h, 1)
            if dtype == "float32" and name in ("sum", "mean"):  # (ours accumulate in float64)
                ref = _reference(name, h.astype(np.float64), 1).astype(np.float32)
            assert got.dtype == ref.dtype, (dtype, name)
            if dtype.startswith("float"):
                np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
                ok = ~np.isnan(ref)
                tol = 2e-6 if dtype == "float32" else 1e-14  # (sums of values near 1 that cancel: atol)
                np.testing.assert_allclose(got[ok], ref[ok], rtol=tol, atol=10 * tol)
                if name in ("max", "min"):
                    ref[10] = -0.0 if name == "min" else 0.0
                    np.testing.assert_array_equal(np.signbit(got[ok]), np.signbit(ref[ok]))
            else:
                _check(got, ref)
    if gpu_blocks(x.device):  # a GPU target keeps its row kernels (_schedule_reduce._short_rows)
        assert not _shorts_used(x.device)
    else:
        assert length in _shorts_used(x.device)


def test_short_rows_expressions_and_other_layouts():
    """Fused expressions over short rows (squared norms, log-sum-exp, a constant operand) take the
    short kernel; rows that are not packed (a strided view, a transposed input, a row broadcast
    down the columns) and too few outputs take the general one, all against NumPy."""
    h = np.random.default_rng(1).standard_normal((6000, 3)).astype(np.float32)
    x = xp.asarray(h)
    h64 = h.astype(np.float64)
    cache.clear_memory_cache()
    for got, ref in ((xp.sum(x * x, axis=1), (h64 ** 2).sum(1)),
                     (xp.log(xp.sum(xp.exp(x - 1.0), axis=1)), np.log(np.exp(h64 - 1.0).sum(1))),
                     (xp.max(x * xp.asarray(np.float32(2.0)), axis=1), (h * 2).max(1))):
        np.testing.assert_allclose(np.asarray(got), ref.astype(np.float32), rtol=2e-6, atol=2e-6)
    assert _shorts_used() == (set() if gpu_blocks(x.device) else {3})  # (GPU target: no short kernel)
    cache.clear_memory_cache()
    for got, ref in ((xp.sum(x[::2], axis=1), h64[::2].sum(1)),
                     (xp.sum(xp.asarray(np.ascontiguousarray(h.T)).T, axis=1), h64.sum(1)),
                     (xp.sum(x + xp.asarray(h[:1]), axis=1), (h64 + h64[:1]).sum(1)),
                     (xp.sum(x[:4000], axis=1), h64[:4000].sum(1))):
        np.testing.assert_allclose(np.asarray(got), ref.astype(np.float32), rtol=2e-6, atol=2e-6)
    assert not _shorts_used()


@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "int64", "complex64", "bool"])
def test_any_all_lane_flags(dtype):
    """any/all of wider inputs keep a flag per vector lane (kernels.reduction_rows.flag_block):
    one true (any) or false (all) value at the first, a middle and the last position of long rows
    (the streamed walk, chunks of a whole array) and of short ones, NaN counting as true."""
    from egpu_array.kernels.reduction_rows import flag_lanes
    for shape in [(700_001,), (40, 3001), (6000, 7)]:
        n = shape[-1]
        for pos in (0, n // 2 + 1, n - 1):
            for name, base, odd in (("any", 0, 1), ("all", 1, 0)):
                h = np.full(shape, base).astype(dtype)
                h[..., pos] = odd
                if dtype.startswith("float") and name == "any" and pos == 0:
                    h[..., pos] = np.nan
                x = xp.asarray(h)
                for axis in (None, -1):
                    got = np.asarray(getattr(xp, name)(x, axis=axis))
                    np.testing.assert_array_equal(got, getattr(np, name)(h, axis=axis), err_msg=f"{shape} {pos} {name}")
                h[..., pos] = base  # none left: the other answer
                x = xp.asarray(h)
                np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, axis=-1)), getattr(np, name)(h, axis=-1))
    specs = [s for _, s in cache._memory if s.kind == "reduce" and s.op in ("any", "all") and s.in_dtypes == (dtype,)]
    assert specs and all((flag_lanes(s) is None) == (dtype == "bool") for s in specs)
