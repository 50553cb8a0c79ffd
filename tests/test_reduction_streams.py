"""Row-order reductions walked as several streams side by side (kernels.reduction_streams):
rows long enough for the streamed form, item counts that leave streams empty, chunked and
unchunked, NaN/inf/-0.0 and float32 overflow placed in one stream's rows only, against NumPy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array.kernels.reduction_streams import STREAM_MIN
from test_reduction_kernels import DTYPES, OPS, _check, _chunked, _data, _reference


@settings(max_examples=40, deadline=None, derandomize=True)
@given(st.sampled_from(DTYPES), st.sampled_from(OPS), st.integers(1, 11),
       st.sampled_from([STREAM_MIN, STREAM_MIN + 1, 513, 1000, 2049]), st.integers(0, 2**32 - 1))
def test_streamed_rows_match_numpy(dtype, name, rows, cols, seed):
    """Every op and accumulator kind over rows of the streamed lengths, 1 to 11 rows."""
    h = _data(np.random.default_rng(seed), dtype, (rows, cols))
    if name == "prod" and dtype.startswith(("float", "complex")):
        h = (np.abs(h) * 0 + 1.001).astype(dtype)
    try:
        got = getattr(xp, name)(xp.asarray(h), axis=1)
    except TypeError:
        return
    _check(got, _reference(name, h, 1))


@pytest.mark.parametrize("chunks", [2, 5, 8, 9])
@pytest.mark.parametrize("name", ["sum", "max", "min", "mean", "prod"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_streamed_chunks(dtype, name, chunks):
    """One output cut into chunks (the items side by side are chunks of the same row)."""
    h = _data(np.random.default_rng(chunks), dtype, (20011,))
    if name == "prod":
        h = np.ones_like(h)
        h[::997] = 2 if dtype == "int64" else 1.0001
    if name == "mean" and dtype == "int64":
        return
    _check(_chunked(getattr(xp, name)(xp.asarray(h)), chunks), _reference(name, h, None))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [3, 4, 7, 13])
def test_streamed_special_values_in_one_row(dtype, rows):
    """NaN, +-inf and signed zeros in single rows (one stream's item), for max/min/sum."""
    n = 3 * STREAM_MIN + 5
    h = np.random.default_rng(rows).standard_normal((rows, n)).astype(dtype)
    h[rows - 1, 700] = np.nan           # the last item: the last stream, or a lone one
    h[rows // 2, n - 1] = np.inf        # the final element of a visit's tail
    h[0, :] = -0.0                      # all -0.0: max/min/sum are -0.0
    if rows > 1:
        h[1, :] = 0.0
        h[1, 3] = -0.0                  # zeros of both signs: max +0.0, min -0.0
    x = xp.asarray(h)
    for name in ("max", "min", "sum"):
        got, ref = np.asarray(getattr(xp, name)(x, axis=1)), getattr(np, name)(h, axis=1)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref), err_msg=name)
        # the sign rule is -0.0 < +0.0 (NumPy's max/min may return either zero)
        want = {"max": [True, False], "min": [True, True], "sum": [True, False]}[name][:min(rows, 2)]
        np.testing.assert_array_equal(np.signbit(got[:2]), want, err_msg=name)
        got, ref = got[2:], ref[2:]
        if name != "sum":
            np.testing.assert_array_equal(got, ref, err_msg=name)
        else:
            np.testing.assert_allclose(got, ref, rtol=1e-4 if dtype == "float32" else 1e-12, atol=1e-3)


def test_streamed_float32_overflow_block():
    """A float32 block that overflows only in float32 is summed again in float64 (one row)."""
    h = np.full((6, 3000), 0.25, np.float32)
    h[4] = 0.0
    h[4, 510:514] = 3e38                # two blocks whose float32 totals overflow (6e38)
    h[4, 2000:2004] = -3e38             # one block of -1.2e39
    got = np.asarray(xp.sum(xp.asarray(h), axis=1))
    ref = h.astype(np.float64).sum(axis=1).astype(np.float32)
    assert got[4] == 0.0
    np.testing.assert_array_equal(got, ref)


@settings(max_examples=25, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64"]), st.sampled_from(["sum", "max", "min", "mean", "var"]),
       st.sampled_from(["plain", "transposed", "strided", "expr"]), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_streamed_views_and_expressions(dtype, name, layout, rows, seed):
    """Streamed rows read through views (transposed, every other element) and fused producers."""
    cols = 3 * STREAM_MIN + 7
    rng = np.random.default_rng(seed)
    if layout == "transposed":
        h = rng.standard_normal((cols, rows)).astype(dtype)
        x, hx = xp.asarray(h).T, h.T
    elif layout == "strided":
        h = rng.standard_normal((rows, 2 * cols)).astype(dtype)
        x, hx = xp.asarray(h)[:, ::2], h[:, ::2]
    else:
        h = rng.standard_normal((rows, cols)).astype(dtype)
        x, hx = xp.asarray(h), h
    if layout == "expr":
        x, hx = (x - 0.25) * x, (hx.astype(np.float64) - 0.25) * hx.astype(np.float64)
    got = np.asarray(getattr(xp, name)(x, axis=1))
    ref = getattr(np, name)(hx.astype(np.float64), axis=1)
    tol = 1e-4 if dtype == "float32" else 1e-11
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
