"""The row softmax ``exp(x - max) / sum(exp(x - max))`` over the last axis runs as one fused kernel
(_schedule_softmax, kernels/softmax_rows) and matches NumPy; other forms take the general path."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import egpu_array as xp
from egpu_array._schedule_softmax import match_softmax_rows


def _softmax(ns, x, axis=-1):
    m = ns.max(x, axis=axis, keepdims=True)
    e = ns.exp(x - m)
    return e / ns.sum(e, axis=axis, keepdims=True)


def _check(got, ref, dtype):
    rtol = 2e-6 if dtype == np.float32 else 1e-14
    # (a subnormal result is compared in units of the smallest subnormal)
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=4 * np.finfo(dtype).smallest_subnormal)
    assert (np.isnan(got) == np.isnan(ref)).all()


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 40), min_size=1, max_size=3).map(tuple),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**16), scale=st.sampled_from([1.0, 30.0]))
def test_one_kernel_matches_numpy(shape, dtype, seed, scale):
    h = (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)
    x = xp.asarray(h)
    with xp.profile() as p:
        got = np.asarray(_softmax(xp, x))
    assert p.launches == 1
    with np.errstate(all="ignore"):
        _check(got, _softmax(np, h), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_special_values_rows(dtype):
    """A NaN or +inf in a row makes the row NaN (as unfused: max is NaN/inf, x - max gives NaN);
    -inf entries give 0, an all -inf row is NaN; large spreads underflow to 0."""
    h = np.random.default_rng(1).standard_normal((6, 50)).astype(dtype)
    h[0, 3] = np.nan
    h[1, 7] = np.inf
    h[2, :] = -np.inf
    h[3, ::3] = -np.inf
    h[4, 5] = 1e4
    h[5, 0] = -0.0
    got = np.asarray(_softmax(xp, xp.asarray(h)))
    with np.errstate(all="ignore"):
        _check(got, _softmax(np, h), dtype)


def test_large_rows_split_across_threads():
    h = np.random.default_rng(2).standard_normal((300, 1030)).astype(np.float32)
    with xp.profile() as p:
        got = np.asarray(_softmax(xp, xp.asarray(h)))
    assert p.launches == 1
    _check(got, _softmax(np, h), np.float32)


def test_other_forms_take_the_general_path():
    h = np.random.default_rng(3).standard_normal((20, 30))
    x = xp.asarray(h)
    for make, ref in ((lambda: _softmax(xp, x, axis=0), _softmax(np, h, axis=0)),   # another axis
                      (lambda: _softmax(xp, x.T), _softmax(np, h.T)),                 # rows not unit stride
                      (lambda: _softmax(xp, x * 2.0), _softmax(np, h * 2.0))):        # x not a buffer
        with xp.profile() as p:
            got = np.asarray(make())
        assert p.launches > 1
        _check(got, ref, np.float64)
    e = xp.exp(x - xp.max(x, axis=1, keepdims=True))
    other = e / xp.sum(xp.exp(x), axis=1, keepdims=True)  # the sum of another expression
    assert match_softmax_rows(other._node) is None
    he = np.exp(h - h.max(1, keepdims=True))
    _check(np.asarray(other), he / np.exp(h).sum(1, keepdims=True), np.float64)


def test_rows_of_a_view_and_on_sim():
    h = np.random.default_rng(4).standard_normal((8, 40)).astype(np.float32)
    x = xp.asarray(h)[2:7, 5:35]  # rows of unit stride, a row stride of 40, an offset
    with xp.profile() as p:
        got = np.asarray(_softmax(xp, x))
    assert p.launches == 1
    _check(got, _softmax(np, h[2:7, 5:35]), np.float32)
    s = xp.asarray(h, device="sim")
    _check(np.asarray(_softmax(xp, s)), _softmax(np, h), np.float32)
