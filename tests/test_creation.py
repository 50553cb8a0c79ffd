"""Creation functions with diagonal offsets (eye, tril, triu) against NumPy, huge offsets included."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

import egpu_array as xp
from test_elementwise import assert_matches

#: offsets far beyond any matrix (2**64 wrapped to 0 in the int64 kernel argument before)
HUGE = [2**64, -2**64, 2**63, -(2**63) - 1, 10**30]


@given(rows=st.integers(0, 6), cols=st.integers(0, 6), k=st.one_of(st.integers(-8, 8), st.sampled_from(HUGE)))
def test_eye_tril_triu(rows, cols, k):
    kk = max(-rows - 1, min(k, cols + 1))  # NumPy's own offset arithmetic overflows on the huge ones
    assert_matches(xp.eye(rows, cols, k=k), np.eye(rows, cols, k=kk))
    a = np.arange(2 * rows * cols, dtype=np.float32).reshape(2, rows, cols)
    assert_matches(xp.tril(xp.asarray(a), k=k), np.tril(a, k=kk))
    assert_matches(xp.triu(xp.asarray(a), k=k), np.triu(a, k=kk))


def test_diagonal_offset_must_be_an_integer():
    assert_matches(xp.eye(3, k=np.int64(1)), np.eye(3, k=1))
    for bad in (1.5, True, "1"):
        with pytest.raises(TypeError, match="eye: expected an integer k"):
            xp.eye(3, k=bad)
        with pytest.raises(TypeError, match="tril: expected an integer k"):
            xp.tril(xp.ones((2, 2)), k=bad)
