"""Parallel compaction (nonzero, unique_*) against NumPy: inputs long enough for several chunks,
runs of equal values across chunk borders, NaN (each one distinct), -0.0 == 0.0, tiny inputs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array._searching import compact_chunks


def _unique_ref(h):
    """NumPy's unique_all with every NaN distinct (the standard's rule)."""
    flat = h.reshape(-1)
    order = np.argsort(flat, kind="stable")
    s = flat[order]
    start = np.ones(len(s), dtype=bool)
    if len(s):
        start[1:] = ~(s[1:] == s[:-1])
    ids = np.cumsum(start) - 1
    inverse = np.empty(len(s), dtype=np.int64)
    inverse[order] = ids
    firsts = np.flatnonzero(start)
    counts = np.diff(np.append(firsts, len(s)))
    return s[firsts], order[firsts], inverse.reshape(h.shape), counts


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64", "int16", "uint8", "bool"]),
       st.sampled_from([1, 2, 7, 5000]), st.sampled_from([(1,), (3,), (200_003,), (70, 3001), (5, 7, 4099)]),
       st.integers(0, 2**32 - 1))
def test_unique_all_matches_numpy(dtype, distinct, shape, seed):
    rng = np.random.default_rng(seed)
    h = rng.integers(0, distinct, shape)
    if dtype.startswith("float"):
        h = h.astype(dtype) - 0.5
        if h.size > 10:
            h.reshape(-1)[rng.integers(0, h.size, 3)] = np.nan
            h.reshape(-1)[rng.integers(0, h.size, 5)] = -0.0
            h.reshape(-1)[rng.integers(0, h.size, 5)] = 0.0
    h = h.astype(dtype)
    r = xp.unique_all(xp.asarray(h))
    values, indices, inverse, counts = _unique_ref(h)
    got = np.asarray(r.values)
    np.testing.assert_array_equal(got, values)
    np.testing.assert_array_equal(np.asarray(r.indices), indices)
    np.testing.assert_array_equal(np.asarray(r.inverse_indices), inverse)
    np.testing.assert_array_equal(np.asarray(r.counts), counts)
    c = xp.unique_counts(xp.asarray(h))
    np.testing.assert_array_equal(np.asarray(c.counts), counts)
    np.testing.assert_array_equal(np.asarray(xp.unique_values(xp.asarray(h))), values)


def test_long_runs_cross_chunk_borders():
    n = 400_000
    assert compact_chunks(n, xp.asarray([1]).device) >= 2 or xp.asarray([1]).device.num_threads == 1
    h = np.repeat(np.array([3.0, 1.0, 2.0, 1.0]), n // 4)
    r = xp.unique_all(xp.asarray(h))
    np.testing.assert_array_equal(np.asarray(r.values), [1.0, 2.0, 3.0])
    np.testing.assert_array_equal(np.asarray(r.counts), [n // 2, n // 4, n // 4])
    np.testing.assert_array_equal(np.asarray(r.indices), [n // 4, n // 2, 0])
    inv = np.asarray(xp.unique_inverse(xp.asarray(h)).inverse_indices)
    np.testing.assert_array_equal(inv, np.searchsorted([1.0, 2.0, 3.0], h))


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "int8", "bool", "complex64", "uint64"]),
       st.sampled_from([(5,), (1,), (300_001,), (60, 5000), (3, 17, 4111)]),
       st.sampled_from([0.0, 0.001, 0.5, 1.0]), st.integers(0, 2**32 - 1))
def test_nonzero_matches_numpy(dtype, shape, density, seed):
    rng = np.random.default_rng(seed)
    h = (rng.random(shape) < density) * rng.integers(1, 5, shape)
    h = h.astype(dtype)
    if dtype == "float32" and h.size > 10:
        h.reshape(-1)[:3] = [np.nan, -0.0, 0.0]   # NaN is nonzero, -0.0 is zero
    got = xp.nonzero(xp.asarray(h))
    want = np.nonzero(h)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(np.asarray(g), w)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_tiny_inputs(n):
    h = np.arange(n, dtype=np.float64)
    np.testing.assert_array_equal(np.asarray(xp.nonzero(xp.asarray(h))[0]), np.nonzero(h)[0])
    np.testing.assert_array_equal(np.asarray(xp.unique_counts(xp.asarray(h)).counts), np.ones(n, np.int64))


def test_unique_leaves_its_input_intact():
    h = np.random.default_rng(9).integers(0, 50, (300, 300)).astype(np.float32)
    x = xp.asarray(h)
    r = xp.unique_all(x)
    np.testing.assert_array_equal(np.asarray(r.values), np.unique(h))
    np.testing.assert_array_equal(np.asarray(x), h)


def _unique_ops(run) -> set:
    """The CompactSpec ops that ``run()`` requests (unique: sorted runs; unique_bins: counting)."""
    from egpu_array.kernels import cache
    seen = []
    cache.recorders.append(lambda device, spec: seen.append(spec))
    try:
        run()
    finally:
        cache.recorders.pop()
    return {s.op for s in seen if s.kind == "compact"}


def _sorts_only(device) -> bool:
    """Whether unique_* on ``device`` neither counts nor hashes, only sorts (the cuda device: a GPU's
    thousands of threads, not a chunk's bins or table per thread; _set._bins_possible, _hash_possible)."""
    from egpu_array._set import BINS_MIN_N, _bins_possible, _hash_possible
    return not (_bins_possible(xp.int64, BINS_MIN_N, device) or _hash_possible(xp.int64, BINS_MIN_N, device))


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int32", "uint32", "int64", "uint64", "bool"])
def test_unique_by_counting_matches_numpy(dtype):
    """Integers in a small range are counted (kernels.unique_bins): ranges of BINS_MAX values
    (counted) and one more (hashed: few distinct values), values at the dtype's ends (the bins' offset wraps in int64
    for uint64), 2-D, sliced and transposed inputs, which stay intact; every output as NumPy's."""
    from egpu_array._set import BINS_MAX
    rng = np.random.default_rng(11)
    info = np.iinfo(dtype) if dtype != "bool" else None
    cases = []
    if dtype == "bool":
        cases.append((rng.random((70, 3001)) < 0.2, True))
    elif np.dtype(dtype).itemsize == 1:
        cases.append((rng.integers(info.min, info.max, 9000, endpoint=True).astype(dtype), True))
    else:
        for span, counted in ((BINS_MAX, True), (BINS_MAX + 1, False)):
            low = rng.integers(0, 3, 100_000) * (span - 1) // 2  # (the two ends and the middle; 3 chunks)
            for base in (info.min, info.max - (span - 1)):
                h = (np.asarray(low + rng.integers(0, 2, 100_000), dtype=np.int64) % span).astype(dtype)
                h[:2] = [0, span - 1]
                cases.append(((h + np.array(base, dtype)).astype(dtype), counted))
    for h, counted in cases:
        x = xp.asarray(h)
        got = {}
        ops = _unique_ops(lambda: got.update(r=xp.unique_all(x)))
        if _sorts_only(x.device):
            assert ops == {"unique"}, (dtype, ops)
        else:
            assert ops == ({"unique_bins"} if counted else {"unique_hash"}), (dtype, ops)  # (few values: hashed)
        want = _unique_ref(h)
        for g, w in zip(got["r"], want):
            np.testing.assert_array_equal(np.asarray(g), w)
        np.testing.assert_array_equal(np.asarray(x), h)
    h = cases[0][0].reshape(-1)[:8000].reshape(80, 100)
    for view, ref in ((xp.asarray(h)[3:, ::2], h[3:, ::2]), (xp.permute_dims(xp.asarray(h), (1, 0)), h.T)):
        r = xp.unique_all(view)
        for g, w in zip(r, _unique_ref(np.ascontiguousarray(ref))):
            np.testing.assert_array_equal(np.asarray(g), w)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint64"])
def test_unique_by_hashing_matches_numpy(dtype):
    """Few distinct values are hashed (kernels.unique_hash) unless a chunk of the input holds more
    than LIMIT of them, a NaN or -0.0 (then sorted): a table of exactly LIMIT values and one of
    LIMIT + 1, values found in only some chunks (first indices and counts merged across chunks),
    the dtype's extremes, 2-D and strided inputs; every output as NumPy's."""
    from egpu_array.kernels.unique_hash import LIMIT
    rng = np.random.default_rng(12)
    n = 100_000  # three chunks of 33334
    if np.dtype(dtype).kind == "f":
        fi = np.finfo(dtype)
        special = np.array([np.inf, -np.inf, fi.max, -fi.max, fi.smallest_subnormal, 0.0, 1.5], dtype)
        pool = np.concatenate([special, (np.arange(3 * LIMIT) * 0.37 - 100).astype(dtype)])
    else:
        info = np.iinfo(dtype)
        special = np.array([info.min, info.max, 0, 1], dtype)
        pool = np.concatenate([special, (np.arange(3 * LIMIT, dtype=np.int64) * 99_991 + 7).astype(dtype)])
    pool = pool[np.sort(np.unique(pool, return_index=True)[1])]  # (distinct, in this order)
    cases = []
    for extra, hashed in ((0, True), (1, False)):
        h = rng.choice(pool[:40], n)  # every chunk: 40 values ...
        h[:LIMIT - 40 + extra] = pool[40:LIMIT + extra]  # ... chunk 0: LIMIT (+ extra) in all
        h[-500:] = pool[-500:]  # values of the last chunk only
        cases.append((h, hashed))
    if np.dtype(dtype).kind == "f":
        for bad in (np.nan, -0.0):
            h = rng.choice(pool[:40], n)
            h[77_777] = bad
            cases.append((h, False))
    for h, hashed in cases:
        x = xp.asarray(h)
        got = {}
        ops = _unique_ops(lambda: got.update(r=xp.unique_all(x)))
        if _sorts_only(x.device):
            assert ops == {"unique"}, (dtype, ops)
        else:
            assert ops == ({"unique_hash"} if hashed else {"unique_hash", "unique"}), (dtype, ops)
        want = _unique_ref(h)
        for g, w in zip(got["r"], want):
            np.testing.assert_array_equal(np.asarray(g), w)
        for fn, keys in ((xp.unique_counts, (0, 3)), (xp.unique_inverse, (0, 2)), (xp.unique_values, (0,))):
            r = fn(x)
            for g, k in zip(r if isinstance(r, tuple) else (r,), keys):
                np.testing.assert_array_equal(np.asarray(g), want[k])
    h = cases[0][0].reshape(500, 200)
    for view, ref in ((xp.asarray(h)[3:, ::2], h[3:, ::2]), (xp.permute_dims(xp.asarray(h), (1, 0)), h.T)):
        r = xp.unique_all(view)
        for g, w in zip(r, _unique_ref(np.ascontiguousarray(ref))):
            np.testing.assert_array_equal(np.asarray(g), w)


def test_counting_skips_values_outside_its_bins():
    """The counting kernels never write outside their bins: values outside ``[lo, lo + nbins)``
    (possible only if the data changed after its min and max were read) are left out."""
    from egpu_array._set import _unique_by_counting
    h = np.random.default_rng(4).integers(-50, 150, 20_000).astype(np.int32)
    x = xp.asarray(h)
    r = _unique_by_counting(x._node.arg.buffer, x, ("values", "counts", "indices"), 0, 100)
    inside = h[(h >= 0) & (h < 100)]
    values, counts = np.unique(inside, return_counts=True)
    np.testing.assert_array_equal(np.asarray(r["values"]), values)
    np.testing.assert_array_equal(np.asarray(r["counts"]), counts)
    np.testing.assert_array_equal(np.asarray(r["indices"]), [np.flatnonzero(h == v)[0] for v in values])
