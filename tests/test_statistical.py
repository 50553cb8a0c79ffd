"""Statistical functions against NumPy: axes, keepdims, dtypes, empty arrays, special values."""
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import egpu_array as xp

FLOATS = ["float32", "float64"]
NUMERIC = ["int8", "uint8", "int32", "uint32", "int64", "float32", "float64", "complex64", "complex128"]


def _axes(ndim):
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1) if ndim else st.none(),
                     st.lists(st.integers(0, max(ndim - 1, 0)), unique=True, max_size=ndim).map(tuple))


@st.composite
def arrays_and_axes(draw, dtypes):
    dtype = draw(st.sampled_from(dtypes))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6))
    elements = None
    if dtype.startswith("float"):
        elements = st.floats(-1e3, 1e3, width=32 if dtype == "float32" else 64)
    h = draw(hnp.arrays(dtype, shape, elements=elements))
    axis = draw(_axes(len(shape)))
    view = draw(st.booleans()) and h.ndim >= 1 and h.shape[0] > 1
    return h, axis, view, draw(st.booleans())


def _xp_and_np(h, view):
    if view:
        return xp.asarray(h)[::-1], h[::-1]
    return xp.asarray(h), h


def _close(got, ref, dtype):
    if dtype.kind in "fc":
        tol = 1e-4 if dtype.itemsize * (2 if dtype.kind == "f" else 1) <= 8 else 1e-10
        np.testing.assert_allclose(got, ref, rtol=tol, atol=tol * (1 + float(np.max(np.abs(ref), initial=0))))
    else:
        np.testing.assert_array_equal(got, ref)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(arrays_and_axes(NUMERIC), st.sampled_from(["sum", "prod"]))
def test_sum_prod(case, name):
    h, axis, view, keepdims = case
    x, h = _xp_and_np(h, view)
    if name == "prod" and h.dtype.kind in "fc":
        h = np.clip(h.real, -2, 2).astype(h.dtype)
        x = xp.asarray(h)
    got = np.asarray(getattr(xp, name)(x, axis=axis, keepdims=keepdims))
    kind = h.dtype.kind
    dt = {"i": np.int64, "u": np.uint64}.get(kind, h.dtype)
    ref = getattr(np, name)(h, axis=axis, keepdims=keepdims, dtype=dt)
    assert got.dtype == ref.dtype and got.shape == ref.shape
    _close(got, ref, ref.dtype)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(arrays_and_axes(["int8", "uint16", "int64", "float32", "float64"]), st.sampled_from(["max", "min"]))
def test_max_min(case, name):
    h, axis, view, keepdims = case
    x, h = _xp_and_np(h, view)
    axes = range(h.ndim) if axis is None else ([axis] if isinstance(axis, int) else axis)
    if any(h.shape[a] == 0 for a in axes):
        with pytest.raises(ValueError):
            getattr(xp, name)(x, axis=axis, keepdims=keepdims)
        return
    got = np.asarray(getattr(xp, name)(x, axis=axis, keepdims=keepdims))
    np.testing.assert_array_equal(got, getattr(np, name)(h, axis=axis, keepdims=keepdims))


@settings(max_examples=40, deadline=None, derandomize=True)
@given(arrays_and_axes(FLOATS), st.sampled_from(["mean", "var", "std"]), st.sampled_from([0, 1, 2.5, 7]))
def test_mean_var_std(case, name, correction):
    """``correction`` up to past N: the standard makes the variance NaN where N - correction <= 0
    (NumPy divides by max(N - ddof, 0): inf or nan there)."""
    h, axis, view, keepdims = case
    x, h = _xp_and_np(h, view)
    kw = {} if name == "mean" else {"correction": correction}
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ref = getattr(np, name)(h, axis=axis, keepdims=keepdims, **({} if name == "mean" else {"ddof": correction}))
    n = math.prod(h.shape[a] for a in (range(h.ndim) if axis is None else np.atleast_1d(axis)))
    if name != "mean" and n - correction <= 0:
        ref = np.full_like(ref, np.nan)
    got = np.asarray(getattr(xp, name)(x, axis=axis, keepdims=keepdims, **kw))
    assert got.shape == np.shape(ref) and got.dtype == h.dtype
    np.testing.assert_allclose(got, ref, rtol=2e-4 if h.dtype == np.float32 else 1e-10, atol=1e-3, equal_nan=True)


@settings(max_examples=40, deadline=None, derandomize=True)
@given(arrays_and_axes(["bool", "int8", "float64"]), st.sampled_from(["all", "any"]))
def test_all_any(case, name):
    h, axis, view, keepdims = case
    x, h = _xp_and_np(h, view)
    np.testing.assert_array_equal(np.asarray(getattr(xp, name)(x, axis=axis, keepdims=keepdims)),
                                  getattr(np, name)(h, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("name", ["cumulative_sum", "cumulative_prod"])
@pytest.mark.parametrize("include_initial", [False, True])
def test_cumulative(name, include_initial):
    rng = np.random.default_rng(0)
    h = rng.integers(-3, 4, size=(4, 5)).astype(np.int32)
    for axis in (0, 1, -1):
        got = np.asarray(getattr(xp, name)(xp.asarray(h), axis=axis, include_initial=include_initial))
        ref = (np.cumsum if name == "cumulative_sum" else np.cumprod)(h, axis=axis, dtype=np.int64)
        if include_initial:
            shape = list(h.shape)
            shape[axis] = 1
            ref = np.concatenate([np.full(shape, 0 if name == "cumulative_sum" else 1), ref], axis=axis)
        np.testing.assert_array_equal(got, ref)


def test_diff():
    h = np.array([[1, 4, 9, 16], [2, 3, 5, 7]], dtype=np.int64)
    for n in (0, 1, 2):
        for axis in (0, 1):
            np.testing.assert_array_equal(np.asarray(xp.diff(xp.asarray(h), axis=axis, n=n)),
                                          np.diff(h, axis=axis, n=n))


def test_diff_of_a_huge_order_is_empty_at_once():
    """n past the axis' length gives the empty difference at once (it looped n times: diff(x,
    2**63) never returned, and hung the fuzz test that passes it positionally)."""
    h = np.arange(24.0).reshape(2, 3, 4)
    assert xp.diff(xp.asarray(h), 2**63).shape == np.diff(h, 10).shape == (2, 3, 0)
    for n in range(7):
        np.testing.assert_array_equal(np.asarray(xp.diff(xp.asarray(h), n)), np.diff(h, n))


def test_diff_takes_n_and_axis_positionally_as_numpy():
    """``diff(x, 2)`` and ``diff(x, 1, 0)`` as NumPy reads them (scikit-learn's roc_curve calls
    ``xp.diff(fps, 2)``: it raised a TypeError, which GridSearchCV turned into NaN scores)."""
    h = np.array([[1, 4, 9, 16], [2, 3, 5, 7]], dtype=np.int64)
    x = xp.asarray(h)
    np.testing.assert_array_equal(np.asarray(xp.diff(x, 2)), np.diff(h, 2))
    np.testing.assert_array_equal(np.asarray(xp.diff(x, 1, 0)), np.diff(h, 1, 0))
    sklearn = pytest.importorskip("sklearn")
    from sklearn.metrics import roc_curve
    y, score = np.array([0, 0, 1, 1, 0, 1, 1, 0]), np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9, 0.7, 0.3])
    want = roc_curve(y, score)
    with sklearn.config_context(array_api_dispatch=True):
        got = roc_curve(xp.asarray(y), xp.asarray(score))
    for g, w in zip(got, want):
        np.testing.assert_allclose(np.asarray(g), w)


def test_special_values():
    h = np.array([1.0, np.nan, -np.inf, 3.0])
    assert np.isnan(float(xp.max(xp.asarray(h)))) and np.isnan(float(xp.sum(xp.asarray(h))))
    assert float(xp.min(xp.asarray([np.inf, -np.inf]))) == -np.inf
    s = float(xp.sum(xp.asarray([-0.0, -0.0])))
    assert s == 0 and np.signbit(s)           # the identity of a float sum is -0.0
    assert float(xp.sum(xp.asarray(np.zeros(0)))) == 0.0
    for shape, axis in (((0,), None), ((0, 3), 0), ((2, 0, 3), (0, 1)), ((3, 0), -1)):
        for dtype in ("float32", "complex128"):
            got = np.asarray(xp.sum(xp.asarray(np.zeros(shape, dtype)), axis=axis))
            ref = np.sum(np.zeros(shape, dtype), axis=axis)
            assert got.shape == ref.shape and got.dtype == ref.dtype
            assert not np.signbit(got.real).any() and not np.signbit(got.imag).any()   # an empty sum is +0
    assert np.isnan(float(xp.mean(xp.asarray(np.zeros(0)))))
    assert int(xp.sum(xp.asarray(np.array([127, 1], dtype=np.int8)), dtype=xp.int8)) == -128  # wraps


def test_float32_sum_accuracy_beats_pairwise():
    rng = np.random.default_rng(3)
    h = rng.random(20_000_000, dtype=np.float32)
    ref = h.astype(np.float64).sum()
    ours = float(xp.sum(xp.asarray(h)))
    theirs = float(h.sum())
    assert abs(ours - ref) <= abs(theirs - ref) + abs(ref) * 1e-7


def test_var_of_expression_is_two_kernels_without_a_full_temporary():
    h = np.random.default_rng(0).standard_normal(2_000_000)
    x = xp.asarray(h)
    with xp.profile() as prof:
        v = float(xp.var(xp.exp(x) * 2 - x))
    assert prof.launches <= 2
    assert prof.bytes_allocated < h.nbytes // 4   # never the expression's full result
    np.testing.assert_allclose(v, np.var(np.exp(h) * 2 - h), rtol=1e-9)


def test_reduction_absorbs_its_producers():
    h = np.random.default_rng(1).random((300, 400))
    x = xp.asarray(h)
    with xp.profile() as prof:
        got = np.asarray(xp.sum(xp.sin(x) * x + 1, axis=0))
    assert prof.launches == 1
    np.testing.assert_allclose(got, np.sum(np.sin(h) * h + 1, axis=0), rtol=1e-12)


@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "uint8", "complex64", "bool"])
def test_column_order_reductions_match_numpy(dtype):
    from egpu_array.kernels import cache
    rng = np.random.default_rng(5)
    h = (rng.standard_normal((300, 700)) * (0.5 if dtype != "int32" else 50)).astype(dtype)
    x = xp.asarray(h)
    for name in ("sum", "prod", "max", "min", "mean", "all", "any"):
        f = getattr(xp, name)
        try:
            got = np.asarray(f(x, axis=0))
        except TypeError:
            continue
        kw = {"dtype": {"i": np.int64, "u": np.uint64, "b": np.int64}.get(h.dtype.kind, h.dtype)} \
            if name in ("sum", "prod") else {}
        ref = getattr(np, name)(h, axis=0, **kw)
        np.testing.assert_allclose(got, ref, rtol=2e-4, atol=1e-4)
    if x.device.kind != "cuda":  # host devices read columns in "outer" order (a GPU: inner, coalesced)
        assert any(getattr(spec, "order", "") == "outer" for _, spec in cache._memory)
    h3 = rng.standard_normal((4, 50, 60)).astype("float32")
    np.testing.assert_allclose(np.asarray(xp.sum(xp.asarray(h3) * 2 + 1, axis=(0, 1))),
                               (h3 * 2 + 1).sum(axis=(0, 1)), rtol=1e-4)


@pytest.mark.parametrize("first", [complex("inf") + 1j, complex("nan") + 0j, 1 - 0j, complex(0, float("inf")), complex(-0.0, -0.0)])
@pytest.mark.parametrize("dtype", ["complex64", "complex128"])
def test_complex_products_start_with_the_first_element(first, dtype):
    """The product of one complex element is that element, and a cumulative product starts with
    it: multiplying by the identity 1+0j turned inf+1j into inf+nanj and 1-0j into 1+0j."""
    h = np.array([first, 2 + 0j], dtype=dtype)
    x = xp.asarray(h)
    for got in (np.asarray(xp.cumulative_prod(x))[0], np.asarray(xp.prod(x[:1]))):
        np.testing.assert_array_equal(got, h[0])
        assert np.signbit(got.real) == np.signbit(h[0].real) and np.signbit(got.imag) == np.signbit(h[0].imag)
