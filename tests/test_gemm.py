"""The blocked GEMM kernels (kernels.gemm, _matmul) against NumPy, and the fused epilogue.

Errors are bounded by a small multiple of K * eps * (|a| @ |b|), the classic bound of a dot product
of K terms. Sizes straddle the register tile (6x16 float32, 6x8 float64) and the cache blocks.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp
from egpu_array import _matmul
from egpu_array.kernels.gemm import TILE

EDGE = [0, 1, 2, 5, 6, 7, 9, 15, 16, 17, 23, 33]
BATCHES = [(), (1,), (3,), (2, 1), (1, 3), (2, 3)]
#: every pair of operand layouts (contiguous, transposed, strided, reversed) once, dtypes alternating
#: (each layout pair is a kernel of its own: fewer compiles keep the test quick)
LAYOUT_PAIRS = [("float32" if (i + j) % 2 else "float64", la, lb)
                for i, la in enumerate(["n", "t", "step", "neg"]) for j, lb in enumerate(["n", "t", "step", "neg"])]


def _check(got, a, b, ref=None):
    """Compare with NumPy within c * K * eps * (|a| @ |b|)."""
    a = np.asarray(a, dtype=np.result_type(a.dtype, b.dtype))
    ref = np.matmul(a, b) if ref is None else ref
    got = np.asarray(got)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    k = a.shape[-1]
    bound = 4 * max(k, 1) * np.finfo(ref.dtype).eps * np.matmul(np.abs(a), np.abs(b)) + np.finfo(ref.dtype).tiny
    assert np.all(np.abs(got - ref) <= bound), np.max(np.abs(got - ref) - bound)


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.sampled_from(EDGE), st.sampled_from(EDGE), st.sampled_from(EDGE), st.sampled_from(BATCHES),
       st.sampled_from(BATCHES), st.sampled_from(["float32", "float64"]), st.integers(0, 3))
def test_matmul_shapes(m, n, k, batch1, batch2, dtype, vec):
    rng = np.random.default_rng(m * 1000 + n * 10 + k)
    s1 = (k,) if vec & 1 else batch1 + (m, k)
    s2 = (k,) if vec & 2 else batch2 + (k, n)
    a, b = _rand(rng, s1, dtype), _rand(rng, s2, dtype)
    _check(xp.asarray(a) @ xp.asarray(b), a, b)


@settings(max_examples=16, deadline=None, derandomize=True)
@given(st.sampled_from(LAYOUT_PAIRS), st.integers(1, 40), st.integers(1, 40), st.integers(1, 40))
def test_transposed_and_strided(pair, m, n, k):
    dtype, la, lb = pair
    rng = np.random.default_rng(m + 41 * n + 1681 * k)

    def make(rows, cols, how):
        if how == "t":
            h = _rand(rng, (cols, rows), dtype)
            return h.T, xp.asarray(h).mT
        if how == "step":
            h = _rand(rng, (2 * rows, 3 * cols), dtype)
            return h[::2, ::3], xp.asarray(h)[::2, ::3]
        if how == "neg":
            h = _rand(rng, (rows, cols), dtype)
            return h[::-1, ::-1], xp.asarray(h)[::-1, ::-1]
        h = _rand(rng, (rows, cols), dtype)
        return h, xp.asarray(h)
    a, xa = make(m, k, la)
    b, xb = make(k, n, lb)
    _check(xa @ xb, a, b)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("m,n,k", [(150, 40, 600), (20, 300, 50), (13, 37, 257), (600, 7, 90)])
def test_blocks_and_slices(dtype, m, n, k):
    """Several K slices (partial sums kept in the output), MC blocks, column/row splits."""
    rng = np.random.default_rng(k)
    a, b = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
    _check(xp.asarray(a) @ xp.asarray(b), a, b)
    bias = _rand(rng, (n,), dtype)
    got = xp.maximum(xp.asarray(a) @ xp.asarray(b) + xp.asarray(bias), 0)
    ref = np.maximum(a @ b + bias, 0)
    np.testing.assert_allclose(np.asarray(got), ref, atol=4 * k * np.finfo(dtype).eps * np.abs(a) .max()
                               * np.abs(b).max() * 4)


def test_plan_uses_every_thread():
    p, ws = _matmul.plan("float32", 1024, 1024, 1024, 1, 2)
    assert p["n_tasks"] == 2 and p["n_items"] == 2 and ws == 2 * p["slot_elems"]
    p, _ = _matmul.plan("float64", 5000, 16, 64, 1, 2)  # narrow: row groups instead
    assert p["n_igroups"] == 2 and p["MG"] % TILE["float64"][0] == 0
    p, _ = _matmul.plan("float32", 4, 4, 4, 100, 2)  # many small problems: one task each
    assert p["n_tasks"] == 100 and p["n_items"] == 2


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_relu_bias_epilogue_is_one_launch(dtype):
    rng = np.random.default_rng(3)
    x, w, bias = _rand(rng, (37, 300), dtype), _rand(rng, (300, 29), dtype), _rand(rng, (29,), dtype)
    xx, xw, xb = xp.asarray(x), xp.asarray(w), xp.asarray(bias)
    with xp.profile() as prof:
        got = xp.maximum(xx @ xw + xb, 0)
        xp.synchronize(got)
    assert prof.launches == 1
    ref = np.maximum(x @ w + bias, 0)
    np.testing.assert_allclose(np.asarray(got), ref, rtol=1e-4 if dtype == "float32" else 1e-12,
                               atol=1e-3 if dtype == "float32" else 1e-11)


EPILOGUE_OPS = [
    ("+ row", lambda m, p, o: p + o["row"]), ("- col", lambda m, p, o: p - o["col"]),
    ("* 2.5", lambda m, p, o: p * 2.5), ("/ full", lambda m, p, o: p / (m.abs(o["full"]) + 1)),
    ("+ full.T", lambda m, p, o: p + o["fullT"]), ("relu", lambda m, p, o: m.maximum(p, 0)),
    ("min", lambda m, p, o: m.minimum(p, o["row"])), ("where", lambda m, p, o: m.where(p > o["col"], p, -p)),
    ("tanh", lambda m, p, o: m.tanh(p)), ("exp-scale", lambda m, p, o: m.exp(p * 0.01)),
]


@settings(max_examples=10, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64"]), st.sampled_from([1, 5, 6, 13, 30]), st.sampled_from([2, 8, 16, 17, 40]),
       st.sampled_from([1, 7, 300]), st.lists(st.sampled_from(range(len(EPILOGUE_OPS))), min_size=1, max_size=3))
def test_random_epilogues_fuse(dtype, m, n, k, chain):
    """Chains of epilogue ops over p = x @ w (row/column/full operands, scalars, libm calls) are
    one launch and match NumPy, for edge and full tiles and with several K slices. (A single
    output column is a matrix-vector product, computed as row-wise dot products instead.)"""
    rng = np.random.default_rng(m * 7 + n * 11 + k)
    x, w = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
    others = {"row": _rand(rng, (n,), dtype), "col": _rand(rng, (m, 1), dtype), "full": _rand(rng, (m, n), dtype)}
    others["fullT"] = np.ascontiguousarray(_rand(rng, (n, m), dtype)).T
    ours = {key: xp.asarray(v) for key, v in others.items() if key != "fullT"}
    ours["fullT"] = xp.asarray(np.ascontiguousarray(others["fullT"].T)).mT
    xx, xw = xp.asarray(x), xp.asarray(w)
    with xp.profile() as prof:
        got = xx @ xw
        ref = x @ w
        for i in chain:
            got = EPILOGUE_OPS[i][1](xp, got, ours)
            ref = EPILOGUE_OPS[i][1](np, ref, others)
        got = np.asarray(got)
    assert prof.launches == 1, [EPILOGUE_OPS[i][0] for i in chain]
    tol = 50 * k * np.finfo(dtype).eps * max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)


def test_other_epilogues():
    rng = np.random.default_rng(4)
    x, w = _rand(rng, (2, 9, 20), "float32"), _rand(rng, (20, 17), "float32")
    col, s = _rand(rng, (9, 1), "float32"), 0.5
    xx, xw = xp.asarray(x), xp.asarray(w)
    cases = [
        (lambda m, a, b, c: m.tanh(a @ b * s - c), lambda: np.tanh(x @ w * s - col)),
        (lambda m, a, b, c: m.minimum(a @ b * s - c, 1.5), lambda: np.minimum(x @ w * s - col, 1.5)),
        (lambda m, a, b, c: (a @ b) / 3 + m.arange(17, dtype=m.float32),
         lambda: (x @ w) / 3 + np.arange(17, dtype=np.float32)),
        (lambda m, a, b, c: (lambda p: m.where(p > 0, p, 0.1 * p))(a @ b),
         lambda: np.where(x @ w > 0, x @ w, 0.1 * (x @ w))),
    ]
    for f, ref in cases:
        with xp.profile() as prof:
            got = np.asarray(f(xp, xx, xw, xp.asarray(col)))
        np.testing.assert_allclose(got, ref(), rtol=1e-4, atol=1e-4)
        assert prof.launches == 1


def test_epilogue_cases_that_do_not_fuse():
    rng = np.random.default_rng(5)
    x, w = _rand(rng, (8, 12), "float32"), _rand(rng, (12, 6), "float32")
    xx, xw = xp.asarray(x), xp.asarray(w)
    # a result of another dtype, a broadcast of the product: the product first, then the rest
    np.testing.assert_allclose(np.asarray(xp.astype(xx @ xw, xp.int32)), (x @ w).astype(np.int32), atol=1)
    big = _rand(rng, (3, 8, 6), "float32")
    np.testing.assert_allclose(np.asarray(xx @ xw + xp.asarray(big)), x @ w + big, rtol=1e-5, atol=1e-5)
    # a product used twice and by a reduction
    p = xx @ xw
    np.testing.assert_allclose(np.asarray(xp.sum(p * p, axis=1)), np.sum((x @ w) ** 2, axis=1), rtol=1e-4)
    # the product inside the epilogue and under a reduction in it (softmax-like)
    got = np.asarray(xp.exp(p - xp.max(p, axis=1, keepdims=True)))
    ref = np.exp(x @ w - np.max(x @ w, axis=1, keepdims=True))
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)
    # the product and a product over it in one expression
    q = xp.asarray(_rand(rng, (6, 6), "float32"))
    got = np.asarray(p + p @ q)
    np.testing.assert_allclose(got, x @ w + (x @ w) @ np.asarray(q), rtol=1e-4, atol=1e-4)
    # mixed dtypes promote (float32 @ float64 -> float64)
    _check(xx @ xp.asarray(w.astype(np.float64)), x, w.astype(np.float64))


def test_empty_k_and_writes_into_operands():
    x, w = np.zeros((4, 0), np.float32), np.zeros((0, 3), np.float32)
    b = np.arange(3, dtype=np.float32) - 1
    with xp.profile() as prof:
        got = np.asarray(xp.maximum(xp.asarray(x) @ xp.asarray(w) + xp.asarray(b), 0))
    np.testing.assert_array_equal(got, np.maximum(x @ w + b, 0))
    assert prof.launches == 1
    rng = np.random.default_rng(6)
    h = _rand(rng, (30, 30), "float64")
    a = xp.asarray(h)
    a @= a  # the output is also an operand
    np.testing.assert_allclose(np.asarray(a), h @ h, rtol=1e-12, atol=1e-12)
    c = xp.zeros((30, 60))
    c[:, ::2] = xp.asarray(h) @ xp.asarray(h) + 1  # a strided output
    np.testing.assert_allclose(np.asarray(c)[:, ::2], h @ h + 1, rtol=1e-12, atol=1e-12)
    assert not np.asarray(c)[:, 1::2].any()


def test_sim_device():
    rng = np.random.default_rng(7)
    x, w, b = _rand(rng, (20, 30), "float32"), _rand(rng, (30, 10), "float32"), _rand(rng, (10,), "float32")
    got = xp.maximum(xp.asarray(x, device="sim") @ xp.asarray(w, device="sim") + xp.asarray(b, device="sim"), 0)
    np.testing.assert_allclose(xp.asarray(got, device="cpu").__array__(), np.maximum(x @ w + b, 0),
                               rtol=1e-5, atol=1e-5)


def test_errors():
    a = xp.asarray(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="matmul"):
        a @ a
    with pytest.raises(ValueError, match="matmul"):
        xp.matmul(xp.asarray(np.float32(1)), a)
    with pytest.raises(ValueError, match="matmul"):
        xp.asarray(np.ones((2, 2, 3))) @ xp.asarray(np.ones((3, 3, 4)))
    with pytest.raises(TypeError, match="matmul"):
        xp.matmul(a, np.ones((3, 2)))
    with pytest.raises(TypeError):
        xp.matmul(xp.asarray(np.ones((2, 3), bool)), xp.asarray(np.ones((3, 2), bool)))


SMALL = [0, 1, 2, 3, 5, 8]


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.sampled_from(SMALL), st.sampled_from(SMALL), st.sampled_from(SMALL),
       st.sampled_from([(2,), (3, 1), (1, 2), (3, 2)]), st.sampled_from([(), (1,), (3, 1), (1, 2)]),
       st.sampled_from(["float32", "float64"]), st.integers(0, 2), st.sampled_from(["n", "t", "neg"]))
def test_batches_of_small_matrices(m, n, k, batch1, batch2, dtype, vec, layout):
    """Batches of matrices up to SMALL_DIM run on kernels.gemm_small: broadcast batches, the 1-D
    rules, transposed and reversed operands, and an epilogue over the product."""
    rng = np.random.default_rng(m * 100 + n * 10 + k)
    s1 = batch1 + (m, k)
    s2 = (k,) if vec == 2 else batch2 + (k, n)
    a, b = _rand(rng, s1, dtype), _rand(rng, s2, dtype)
    xa = xp.asarray(a)
    if layout == "t":
        xa = xp.asarray(np.ascontiguousarray(np.swapaxes(a, -1, -2))).mT
    elif layout == "neg":
        xa = xp.asarray(np.ascontiguousarray(a[..., ::-1, ::-1]))[..., ::-1, ::-1]
    _check(xa @ xp.asarray(b), a, b)
    if vec == 1:
        _check(xp.asarray(a) @ xp.asarray(b) + 1, a, b, np.matmul(a, b) + 1)


def test_small_batches_take_the_small_kernel(monkeypatch):
    calls = []
    launch = _matmul._launch_small
    monkeypatch.setattr(_matmul, "_launch_small", lambda *args: calls.append(1) or launch(*args))
    a = np.random.default_rng(0).standard_normal((500, 3, 3))
    x = xp.asarray(a)
    with xp.profile() as prof:
        y = np.asarray(x @ x)
    assert prof.launches == 1 and calls == [1]
    _check(y, a, a)
