"""The scheduler's memoized plans for ops over leaves (egpu_array._schedule_plans): a repeated op
reuses its kernel, and gives the general path's results (NumPy as the oracle), whatever leaves
share a slot (the same view twice, equal scalars, signed zeros, NaN) and across in-place writes."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array import _schedule_plans as plans
from egpu_array.kernels import cache


def _same(got, want):
    got = np.asarray(got)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)
    if want.dtype.kind == "f":  # signed zeros too
        assert np.array_equal(np.signbit(got), np.signbit(want))


def test_a_repeated_op_takes_its_plan_and_matches_numpy():
    h = np.arange(-3.0, 4.0)
    x = xp.asarray(h)
    _same(x + 1.5, h + 1.5)
    n = len(plans._PLANS)
    assert any(k[0] == "add" for k in plans._PLANS)
    for v in (2.5, -7.0, 1e300):
        _same(x + v, h + v)
    assert len(plans._PLANS) == n  # new scalar values: the same plan


def test_shared_leaves_get_their_own_plans():
    """x + x (one input), x + y (two), and y + x over equal data but other buffers."""
    hx, hy = np.array([1.0, -2.0, 3.0]), np.array([10.0, 20.0, -30.0])
    x, y = xp.asarray(hx), xp.asarray(hy)
    for _ in range(2):
        _same(x + x, hx + hx)
        _same(x + y, hx + hy)
        _same(y - x, hy - hx)
        _same(x[...] * x, hx * hx)  # another node over the same view: one input, as the general path


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_signed_zeros_and_nan_scalars_are_not_mixed_up():
    h = np.array([1.0, -1.0, 0.0, -0.0, np.inf])
    x = xp.asarray(h)
    hc = h > 0
    c = xp.asarray(hc)  # a leaf: where(c, scalar, x) is an op over leaves
    for _ in range(2):
        _same(x * 0.0, h * 0.0)
        _same(x * -0.0, h * -0.0)
        _same(xp.where(c, 0.0, x), np.where(hc, 0.0, h))
        _same(xp.where(c, -0.0, x), np.where(hc, -0.0, h))
        _same(x + math.nan, h + math.nan)
        _same(xp.clip(x, 2.0, 2.0), np.clip(h, 2.0, 2.0))  # equal scalars: one slot
        _same(xp.clip(x, -0.5, 0.5), np.clip(h, -0.5, 0.5))


@pytest.mark.parametrize("dtype", ["int8", "uint16", "int64", "float32", "complex64", "bool"])
def test_dtypes_and_scalar_types(dtype):
    h = np.array([0, 1, 2, 3], dtype=dtype) if dtype != "bool" else np.array([True, False, True, False])
    x = xp.asarray(h)
    for _ in range(2):
        if dtype == "bool":
            _same(x & True, h & True)
            _same(x | x, h | h)
        else:
            _same(x + 1, h + np.asarray(1, dtype=dtype))
            _same(x * x, h * h)
            _same(x == 2, h == 2)


def test_an_in_place_write_after_a_pending_op_over_the_old_values():
    h = np.arange(5.0)
    x = xp.asarray(h)
    for _ in range(3):
        y = x + 1.0  # pending: must read x before the write below
        x += 10.0
        _same(y, h + 1.0)
        h = h + 10.0
        _same(x, h)


def test_views_and_broadcasts_take_the_general_path():
    h = np.arange(12.0).reshape(3, 4)
    x = xp.asarray(h)
    for _ in range(2):
        _same(x.T + 1.0, h.T + 1.0)
        _same(x[:, 1:] * 2.0, h[:, 1:] * 2.0)
        _same(x + xp.asarray(h[0]), h + h[0])
        _same(x[::-1] - x, h[::-1] - h)
    z = xp.asarray(np.zeros((0, 3)))
    _same(z + 1.0, np.zeros((0, 3)) + 1.0)
    s = xp.asarray(np.array(2.0))  # 0-d
    _same(s * 3.0, np.array(2.0) * 3.0)


def test_clearing_the_kernel_cache_clears_the_plans():
    x = xp.asarray(np.ones(3))
    _same(x - 1.0, np.zeros(3))
    assert plans._PLANS and plans._SPECS
    cache.clear_memory_cache()
    assert not plans._PLANS and not plans._SPECS
    _same(x - 1.0, np.zeros(3))


def test_recorders_still_hear_every_spec():
    x = xp.asarray(np.ones(3))
    _same(x * 3.0, np.full(3, 3.0))
    heard = []
    cache.recorders.append(lambda dev, spec: heard.append(spec))
    try:
        _same(x * 3.0, np.full(3, 3.0))
        _same((x * 3.0) + x, np.full(3, 4.0))
    finally:
        cache.recorders.pop()
    assert len(heard) == 2 and heard[0].kind == "elementwise"


_OPS = {"add": np.add, "subtract": np.subtract, "multiply": np.multiply, "maximum": np.maximum}


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(sorted(_OPS)), st.integers(0, 2), st.integers(0, 2),
                          st.sampled_from([0.0, -0.0, 1.5, math.nan, math.inf])), min_size=1, max_size=8),
       st.sampled_from(["float32", "float64"]))
def test_random_repeated_ops_match_numpy(steps, dtype):
    """Random ops between three arrays and scalars, repeated, each computed at once."""
    hs = [np.array([1.5, -0.0, np.nan, 4.0], dtype=dtype), np.array([0.0, 2.0, -3.0, np.inf], dtype=dtype),
          np.array([-1.0, 1.0, 0.5, -2.5], dtype=dtype)]
    arrs = [xp.asarray(h) for h in hs]
    for _ in range(2):
        for op, i, j, c in steps:
            f = getattr(xp, op)
            _same(f(arrs[i], arrs[j]), _OPS[op](hs[i], hs[j]))
            _same(f(arrs[i], c), _OPS[op](hs[i], np.asarray(c, dtype=dtype)))
            _same(f(c, arrs[j]), _OPS[op](np.asarray(c, dtype=dtype), hs[j]))


# ---- whole expressions over contiguous leaves (plans._EXPRESSIONS) ------------------------------
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_expressions_take_their_plan_and_match_numpy():
    """Fused expressions over contiguous leaves of the result's shape: the first one of a
    structure goes the general path, the later ones take its plan (0 compiles) with new data,
    new scalars, shared subexpressions and repeated leaves, each as NumPy computes it."""
    rng = np.random.default_rng(3)
    for dtype in ("float32", "float64"):
        for shape in [(7,), (25, 40), (3, 1, 5), (300_001,)]:
            ha, hb = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
            a, b = xp.asarray(ha), xp.asarray(hb)
            exprs = [
                (lambda m, x, y, c: x * y + y, None),
                (lambda m, x, y, c: m.exp(x) - c, None),
                (lambda m, x, y, c: (x - c) * (x - c) / y, None),          # a shared-looking pair
                (lambda m, x, y, c: m.where(x > y, x * c, y - x), None),
                (lambda m, x, y, c: x * (y + y), None),                      # another structure
            ]
            for c in (1.5, -0.0, 2.0):
                for f, _ in exprs:
                    want = f(np, ha, hb, np.asarray(c, dtype=dtype))
                    got = np.asarray(f(xp, a, b, c))
                    assert got.dtype == dtype and got.shape == shape
                    # (exp's last bits and contracted multiply-adds may differ from NumPy's)
                    f32 = dtype == "float32"  # (absolute: exp(x) - 1.5 cancels)
                    np.testing.assert_allclose(got, want.astype(dtype), rtol=4e-6 if f32 else 1e-14,
                                               atol=2e-5 if f32 else 1e-13)
    n = len(plans._EXPRESSIONS)
    assert n >= 5
    h = np.arange(12.0).reshape(3, 4)
    x = xp.asarray(h)
    t = x * 2.0
    _same(t + t * x, h * 2 + h * 2 * h)  # one node used twice: the lowering shares it
    _same((x * 2.0) + (x * 2.0) * x, h * 2 + h * 2 * h)  # the same values from distinct nodes
    with xp.profile() as prof:  # the same structures again: their plans, nothing compiled
        _same(t + t * x, h * 2 + h * 2 * h)
        _same((x * 2.0) + (x * 2.0) * x, h * 2 + h * 2 * h)
    assert prof.compiles == 0 and len(plans._EXPRESSIONS) >= n


def test_expressions_over_views_or_broadcasts_take_the_general_path():
    h = np.arange(12.0).reshape(3, 4)
    x = xp.asarray(h)
    n = len(plans._EXPRESSIONS)
    _same(x.T * x.T + 1.0, h.T * h.T + 1.0)             # transposed leaves
    _same(x * x[0] + 1.0, h * h[0] + 1.0)               # a broadcast leaf
    _same(x[:, ::2] * 2.0 - x[:, ::2], h[:, ::2] * 2.0 - h[:, ::2])  # strided leaves
    assert len(plans._EXPRESSIONS) == n


def test_tiled_kernels_are_never_plans_and_alternate_with_them():
    """Ops and expressions over transposed leaves big enough for the tiled kernel, alternating
    with the same ops over C-contiguous leaves (which take plans), across shapes: each gets its
    own kernel (the spec's ``tiled`` field), none is remembered as a plan."""
    for shape in [(70, 90), (64, 64), (33, 129)]:
        h = np.arange(math.prod(shape), dtype=np.float32).reshape(shape) - 1000.5
        x = xp.asarray(h)
        n, m = len(plans._PLANS), len(plans._EXPRESSIONS)
        for _ in range(2):
            _same(x.T * 2.0, h.T * 2.0)
            _same(x.T * x.T + 1.0, h.T * h.T + 1.0)
            _same(xp.asarray(h.T.copy()) * 2.0, h.T * 2.0)
            _same(x.T + xp.asarray(h.T.copy()), h.T + h.T)
        assert len(plans._PLANS) <= n + 1 and len(plans._EXPRESSIONS) == m
        assert not any(p.spec.tiled for p in plans._PLANS.values())


def test_clearing_the_kernel_cache_clears_the_expression_plans():
    x = xp.asarray(np.ones(3))
    _same(x * x - 1.0, np.zeros(3))
    assert plans._EXPRESSIONS
    cache.clear_memory_cache()
    assert not plans._EXPRESSIONS
    _same(x * x - 1.0, np.zeros(3))
