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
