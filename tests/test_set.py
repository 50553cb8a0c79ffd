"""unique_all/counts/inverse/values against NumPy (equal_nan=False: each NaN distinct; -0.0 == 0.0;
inverse_indices has x's shape, 2025.12), for every dtype, shapes incl. 0-d and empty."""
from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

import egpu_array as xp
from conftest import ALL, np_array, to_xp

SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=3).map(tuple)


@st.composite
def case(draw):
    dtype = draw(st.sampled_from(ALL))
    shape = draw(SHAPES)
    if draw(st.booleans()):
        n = int(np.prod(shape)) if shape else 1
        v = np.array(draw(st.lists(st.sampled_from([0.0, -0.0, 1.0, 2.0, np.nan]), min_size=n, max_size=n)))
        a = v.reshape(shape)
        a = a.astype(dtype) if dtype.startswith(("float", "complex")) else np.nan_to_num(a).astype(dtype)
    else:
        a = np_array(draw, dtype, shape)
    return a


def _assert_inverse(got, want, a):
    """inverse_indices against NumPy's: equal where x is not NaN; the NaNs (each distinct) map one
    to one onto the NaN values, in any order (NumPy's own order there follows its unstable
    quicksort when no indices are asked for; ours is the order of appearance)."""
    got, want = np.asarray(got), want.reshape(a.shape)
    nan = np.isnan(a) if a.dtype.kind in "fc" else np.zeros(a.shape, bool)
    np.testing.assert_array_equal(got[~nan], want[~nan])
    assert sorted(got[nan].tolist()) == sorted(want[nan].tolist())


@given(case())
def test_unique_all(a):
    r = xp.unique_all(to_xp(xp, a))
    assert r._fields == ("values", "indices", "inverse_indices", "counts")
    vals, idx, inv, cnt = np.unique(a.ravel(), return_index=True, return_inverse=True, return_counts=True,
                                    equal_nan=False)
    np.testing.assert_array_equal(np.asarray(r.values), vals)
    np.testing.assert_array_equal(np.asarray(r.indices), idx)
    np.testing.assert_array_equal(np.asarray(r.counts), cnt)
    assert r.inverse_indices.shape == a.shape and r.indices.dtype == xp.int64
    _assert_inverse(r.inverse_indices, inv, a)
    assert r.values.dtype == to_xp(xp, a).dtype


@given(case())
def test_unique_counts_inverse_values(a):
    x = to_xp(xp, a)
    vals, inv, cnt = np.unique(a.ravel(), return_inverse=True, return_counts=True, equal_nan=False)
    c = xp.unique_counts(x)
    assert c._fields == ("values", "counts")
    np.testing.assert_array_equal(np.asarray(c.values), vals)
    np.testing.assert_array_equal(np.asarray(c.counts), cnt)
    i = xp.unique_inverse(x)
    assert i._fields == ("values", "inverse_indices")
    _assert_inverse(i.inverse_indices, inv, a)
    np.testing.assert_array_equal(np.asarray(xp.unique_values(x)), vals)


def test_unique_reads_one_count():
    x = xp.asarray(np.array([3, 1, 3, 2]))
    with xp.profile() as prof:
        v = xp.unique_values(x * 2)
    assert any("unique" in n and "read back" in n for n in prof.notes)
    np.testing.assert_array_equal(np.asarray(v), [2, 4, 6])


def test_hashing_is_tried_where_a_sample_repeats():
    """unique_* and sort / argsort try hashing (kernels.unique_hash) only where a sample of the
    data repeats values (_set._hash_promising, host-memory devices): distinct values go straight to
    the sort, few distinct ones (also periodic ones, which evenly spaced samples could alias) are
    hashed; the results match NumPy either way (elsewhere, as on sim, unique_* always try hashing
    and sort never counts: only the results are checked there)."""
    from egpu_array.kernels import cache
    rng = np.random.default_rng(12)
    n = 100_003
    distinct = rng.standard_normal(n).astype(np.float32)
    few = np.floor(distinct * 200)
    periodic = (np.arange(n) % 4000).astype(np.int64) * 1_000_003  # (a wide range: not binned)
    for a, hashed in ((distinct, False), (few, True), (periodic, True)):
        x = xp.asarray(a)
        host = getattr(x.device, "host_memory", False)
        for func, want in ((xp.unique_values, np.unique(a)), (xp.sort, np.sort(a)),
                           (xp.argsort, np.argsort(a, kind="stable"))):
            seen = []
            cache.recorders.append(lambda device, spec: seen.append(spec))
            try:
                got = np.asarray(func(x))
            finally:
                cache.recorders.pop()
            if host:
                assert any(getattr(s, "op", None) == "unique_hash" for s in seen) == hashed, (a.dtype, func)
            np.testing.assert_array_equal(got, want)
