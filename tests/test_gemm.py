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


def test_plan_splits_k_for_small_outputs():
    """A small output over a long K: one K range per thread (whole K slices), not one task."""
    kc = _matmul.BLOCKING["float32"][1]
    p, ws = _matmul.plan("float32", 8, 8, 100_000, 1, 2)
    assert p["n_ksplit"] == 2 and p["n_tasks"] == p["n_items"] == 2 and p["n_igroups"] == 1
    assert p["KS"] % kc == 0 and p["KS"] < 100_000 <= 2 * p["KS"] and ws == 2 * p["slot_elems"]
    assert _matmul.plan("float32", 8, 8, 100_000, 1, 2, split=False)[0]["n_ksplit"] == 1
    p, _ = _matmul.plan("float64", 3, 3, 1_000_000, 1, 16)
    assert p["n_ksplit"] == 16 and p["n_items"] == 16
    p, _ = _matmul.plan("float64", 1000, 1000, 16_000, 1, 16)  # scratch capped: row groups too
    assert p["n_ksplit"] * p["n_igroups"] == p["n_tasks"] == 16 and p["n_ksplit"] <= 4
    for args in [("float32", 2048, 2048, 2048, 1, 2), ("float32", 1000, 256, 256, 1, 2),
                 ("float32", 8, 8, 100_000, 2, 2), ("float64", 64, 64, 500, 1, 2)]:
        assert _matmul.plan(*args)[0]["n_ksplit"] == 1, args


def _gram_case(rng, dtype, k, n, scale=1.0):
    h = _rand(rng, (k, n), dtype) * scale
    return h, xp.asarray(h)


@pytest.mark.parametrize("threads", [2, 3, 8])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_split_k_products(dtype, threads, monkeypatch):
    """Split-K (a plane of partial sums per K range, summed after) matches NumPy: X.T @ X, plain
    and transposed operands, a last range shorter than the others, 1-D x1 over a batch, producers,
    fused epilogues (applied once, after the sum) and an output that is also read."""
    rng = np.random.default_rng(threads)
    monkeypatch.setattr(xp.asarray(1.0).device, "num_threads", threads, raising=False)
    for k, n in [(100_000, 8), (20_000 + 37, 5), (9_000, 40)]:
        h, x = _gram_case(rng, dtype, k, n)
        with xp.profile() as prof:
            got = np.asarray(x.mT @ x)
        assert prof.launches == 2  # the split GEMM, then the sum of its planes
        _check(got, h.T, h)
    h, x = _gram_case(rng, dtype, 30_001, 7)
    w, xw = _gram_case(rng, dtype, 30_001, 9)
    _check(x.mT @ xw, h.T, w)
    _check(xp.asarray(np.ascontiguousarray(h.T)) @ xw, h.T, w)  # A contiguous along K
    _check(xp.exp(x * 0.01).mT @ (xw + 1), np.exp(h * 0.01).T, w + 1)  # producers
    bias = _rand(rng, (9,), dtype)
    got = xp.maximum(x.mT @ xw + xp.asarray(bias), 0)
    ref = np.maximum(h.T.astype(np.float64) @ w + bias, 0)
    bound = 4 * 30_001 * np.finfo(dtype).eps * (np.abs(h.T) @ np.abs(w))
    assert np.all(np.abs(np.asarray(got) - ref) <= bound)
    v = _rand(rng, (30_001,), dtype)
    wb = _rand(rng, (2, 30_001, 3), dtype)
    _check(xp.asarray(v) @ xp.asarray(wb), v, wb)  # 1-D x1 over a batch (M = 1)
    c = xp.zeros((7, 18), dtype=getattr(xp, dtype))
    c[:, ::2] = x.mT @ xw + 1  # a strided output
    _check(np.asarray(c)[:, ::2] - 1, h.T, w)
    assert not np.asarray(c)[:, 1::2].any()
    c = xp.asarray(np.ones((7, 9), dtype))
    c -= x.mT @ xw  # the output is read by the epilogue
    np.testing.assert_allclose(np.asarray(c), 1 - h.T.astype(np.float64) @ w,
                               atol=4 * 30_001 * np.finfo(dtype).eps * np.max(np.abs(h.T) @ np.abs(w)))


def test_split_k_special_values_and_accuracy():
    """A nan or inf in one K range reaches the sum; float32 over 1e6 terms is as accurate as NumPy."""
    rng = np.random.default_rng(21)
    h = _rand(rng, (200_000, 4), "float32")
    h[150_000, 1] = np.nan
    h[20, 2] = np.inf
    got = np.asarray(xp.asarray(h).mT @ xp.asarray(h))
    with np.errstate(invalid="ignore"):
        ref = h.T @ h
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    h = rng.random((1_000_000, 3)).astype(np.float32)  # positive terms: errors do not cancel
    exact = h.T.astype(np.float64) @ h.astype(np.float64)
    err = np.max(np.abs(np.asarray(xp.asarray(h).mT @ xp.asarray(h)) - exact) / exact)
    assert err <= max(np.max(np.abs(h.T @ h - exact) / exact), 4 * np.finfo(np.float32).eps)


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


# ---- producers of the operands, computed while the GEMM packs them (kernels.gemm_pack) ----------

def _as(ns, x, dtype):
    return x.astype(dtype) if ns is np else xp.astype(x, getattr(xp, dtype))


#: name -> f(ns, x, extras, dtype): an elementwise producer of an operand x (rows x cols, maybe batched);
#: extras: "row" (cols,), "col" (rows, 1), "wide" (x in the other float dtype), "int" (int32 values)
PRODUCERS = [
    ("none", lambda ns, x, e, dt: x),
    ("2*x", lambda ns, x, e, dt: 2 * x),
    ("exp", lambda ns, x, e, dt: ns.exp(x * 0.25)),
    ("(x-row)/2", lambda ns, x, e, dt: (x - e["row"]) / 2),
    ("x*col", lambda ns, x, e, dt: x * e["col"]),
    ("cast float", lambda ns, x, e, dt: _as(ns, e["wide"], dt)),
    ("cast int", lambda ns, x, e, dt: _as(ns, e["int"], dt) - x),
    ("where", lambda ns, x, e, dt: ns.where(x > 0, x, 0.5 * x)),
]
OTHER = {"float32": "float64", "float64": "float32"}


def _operand_case(rng, shape, dtype, how):
    """An operand of ``shape`` (NumPy value, our array) laid out contiguous, transposed or strided,
    and its extras (see PRODUCERS), contiguous."""
    rows, cols = shape[-2], shape[-1]
    if how == "t":
        h = _rand(rng, shape[:-2] + (cols, rows), dtype)
        x, ours = np.swapaxes(h, -1, -2), xp.asarray(h).mT
    elif how == "step":
        h = _rand(rng, shape[:-2] + (2 * rows, 3 * cols), dtype)
        x, ours = h[..., ::2, ::3], xp.asarray(h)[..., ::2, ::3]
    else:
        x = _rand(rng, shape, dtype)
        ours = xp.asarray(x)
    extras = {"row": _rand(rng, (cols,), dtype), "col": _rand(rng, (rows, 1), dtype),
              "wide": _rand(rng, shape, OTHER[dtype]), "int": rng.integers(-3, 4, shape).astype(np.int32)}
    return x, ours, extras, {k: xp.asarray(v) for k, v in extras.items()}


def _producer_case(dtype, m, n, k, pa, pb, la, lb, batch, b_batched, epilogue):
    """Producers ``pa`` of A and ``pb`` of B (PRODUCERS) against NumPy, and the launch count."""
    rng = np.random.default_rng(m * 131 + n * 17 + k + pa * 7 + pb)
    x, xx, ex, xex = _operand_case(rng, batch + (m, k), dtype, la)
    w, xw, ew, xew = _operand_case(rng, (batch if b_batched else ()) + (k, n), dtype, lb)
    fa, fb = PRODUCERS[pa][1], PRODUCERS[pb][1]
    a_ref, b_ref = fa(np, x, ex, dtype), fb(np, w, ew, dtype)
    bias = _rand(rng, (n,), dtype)
    with xp.profile() as prof:
        got = fa(xp, xx, xex, dtype) @ fb(xp, xw, xew, dtype)
        if epilogue:
            got = xp.maximum(got + xp.asarray(bias), 0)
        got = np.asarray(got)
    if batch and max(m, n, k) <= _matmul.SMALL_DIM:  # kernels.gemm_small: producers and epilogue apart
        launches = 1 + (pa != 0) + (pb != 0) + epilogue
    else:  # a producer calling math functions of a B broadcast over A's batch is computed once, first
        launches = 1 + (bool(batch) and not b_batched and PRODUCERS[pb][0] == "exp")
    assert prof.launches == launches, (PRODUCERS[pa][0], PRODUCERS[pb][0])
    if epilogue:
        ref = np.maximum(np.matmul(a_ref, b_ref) + bias, 0)
        tol = 8 * k * np.finfo(dtype).eps * (np.matmul(np.abs(a_ref), np.abs(b_ref)) + np.abs(bias))
        assert np.all(np.abs(got - ref) <= tol + np.finfo(dtype).tiny)
    else:
        _check(got, a_ref, b_ref)


LAYOUTS = ["n", "t", "step"]
#: every producer on A and on B once (pairs of different producers): layouts, dtypes, batches and
#: epilogues taking turns; K of two slices (300 > KC) where the batch is small
EVERY_PRODUCER = [("float32" if i % 2 else "float64", i, (i + 2) % (len(PRODUCERS) - 1) + 1, LAYOUTS[i % 3],
                   LAYOUTS[(i + 1) % 3], i % 3 == 0) for i in range(1, len(PRODUCERS))]


@pytest.mark.parametrize("dtype,pa,pb,la,lb,batched", EVERY_PRODUCER)
def test_every_producer_fuses_into_packing(dtype, pa, pb, la, lb, batched):
    """Each producer of PRODUCERS (scalars, broadcast rows/columns, a libm call, casts from the
    other float dtype and from int32, where) over contiguous, transposed and strided leaves, as A
    and as B, batched or with two K slices: one launch, NumPy's values within the GEMM's bound."""
    batch = (2,) if batched else ()
    _producer_case(dtype, 13, 19, 40 if batched else 300, pa, pb, la, lb, batch, True, pa % 2 == 1)


@settings(max_examples=6, deadline=None, derandomize=True)
@given(st.sampled_from(["float32", "float64"]), st.sampled_from([1, 7, 13, 40]), st.sampled_from([2, 9, 17, 33]),
       st.sampled_from([1, 6, 20, 300]), st.sampled_from(range(len(PRODUCERS))), st.sampled_from(range(len(PRODUCERS))),
       st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS), st.sampled_from([(), (2,), (2, 3)]), st.booleans(),
       st.booleans())
def test_random_producer_pairs(dtype, m, n, k, pa, pb, la, lb, batch, b_batched, epilogue):
    """Random pairs of producers of A and B, shapes straddling the tiles, batches (B batched too,
    or broadcast: then its producer is computed first), epilogues."""
    _producer_case(dtype, m, n, k, pa, pb, la, lb, batch, b_batched, epilogue)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_producer_cases_of_the_issue(dtype):
    """``(2*a) @ b``, ``relu(exp(x) @ w + b)``, ``(x - mu) / sd @ w``, casts: one GEMM launch each
    (mu and sd are reductions: computed first); a second shape of the same structure compiles nothing."""
    rng = np.random.default_rng(11)
    for m, k, n in ((50, 70, 30), (37, 300, 45)):
        a, w = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
        bias = _rand(rng, (n,), dtype)
        xa, xw, xb = xp.asarray(a), xp.asarray(w), xp.asarray(bias)
        with xp.profile() as prof:
            got = np.asarray((2 * xa) @ xw)
        assert prof.launches == 1
        _check(got, 2 * a, w)
        with xp.profile() as prof:
            got = np.asarray(xp.maximum(xp.exp(xa * 0.1) @ xw + xb, 0))
        assert prof.launches == 1 and (m == 50 or prof.compiles == 0)
        np.testing.assert_allclose(got, np.maximum(np.exp(a * 0.1) @ w + bias, 0),
                                   rtol=50 * k * np.finfo(dtype).eps, atol=50 * k * np.finfo(dtype).eps * 10)
        mu, sd = xp.mean(xa, axis=0), xp.std(xa, axis=0)
        xp.synchronize(mu, sd)
        with xp.profile() as prof:
            got = np.asarray((xa - mu) / sd @ xw)
        assert prof.launches == 1
        _check(got, (a - np.asarray(mu)) / np.asarray(sd), w)
        wide = a.astype(OTHER[dtype])
        with xp.profile() as prof:
            got = np.asarray(xp.astype(xp.asarray(wide), getattr(xp, dtype)) @ xw)
        assert prof.launches == 1
        _check(got, wide.astype(dtype), w)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_long_producer_runs(dtype):
    """Producers are evaluated in chunks of gemm_pack.CHUNK along the packing's inner axis: runs of
    K (kc = 256) and of B's columns (up to NC) longer than a chunk, ending inside a panel."""
    from egpu_array.kernels.gemm_pack import CHUNK
    rng = np.random.default_rng(16)
    m, k, n = 20, 300, 2 * CHUNK + 21
    a, w = _rand(rng, (m, k), dtype), _rand(rng, (k, n), dtype)
    wt = np.ascontiguousarray(w.T)
    for xw in (xp.asarray(w), xp.asarray(wt).mT):  # B along its rows (columns run), B transposed (K runs)
        with xp.profile() as prof:
            got = np.asarray((xp.asarray(a) * 2) @ xp.exp(xw * 0.1))
        assert prof.launches == 1
        _check(got, a * 2, np.exp(w * 0.1))


def test_producer_leaf_kinds_and_special_values():
    """Leaves of other kinds (complex through real(), bool and uint8 through casts), producers
    without leaves (scalars only), and NaN/inf made by the producer: as NumPy, one launch each."""
    rng = np.random.default_rng(17)
    w = _rand(rng, (30, 20), "float32")
    xw = xp.asarray(w)
    z = (rng.standard_normal((10, 30)) + 1j * rng.standard_normal((10, 30))).astype(np.complex64)
    mask = rng.standard_normal((10, 30)) > 0
    u = rng.integers(0, 255, (10, 30)).astype(np.uint8)
    x = _rand(rng, (10, 30), "float32")
    x[2, 3], x[5, :], x[7, 8] = -1, 100, np.inf
    cases = [(lambda: xp.real(xp.asarray(z)), z.real), (lambda: xp.astype(xp.asarray(mask), xp.float32), mask * 1.0),
             (lambda: xp.astype(xp.asarray(u), xp.float32), u * 1.0), (lambda: xp.zeros((10, 30)) + 3, np.full((10, 30), 3.0)),
             (lambda: xp.log(xp.asarray(x)), None), (lambda: xp.exp(xp.asarray(x)), None)]
    for make, a_ref in cases:
        with xp.profile() as prof:
            got = np.asarray(make() @ xw)
        assert prof.launches == 1
        if a_ref is None:  # NaN and inf where NumPy has them (log(-1), exp(100) * w, inf - inf)
            with np.errstate(all="ignore"):
                a_ref = np.asarray(make())
                ref = a_ref @ w
            assert np.array_equal(np.isnan(got), np.isnan(ref)) and np.array_equal(np.isinf(got), np.isinf(ref))
            fin = np.isfinite(ref)
            assert fin.any() and (~fin).any()
            assert np.allclose(got[fin], ref[fin], rtol=1e-4, atol=1e-4)
        else:
            _check(got, a_ref.astype(got.dtype), w.astype(got.dtype))  # (zeros are float64: w is cast too)


def test_producer_one_dimensional_and_batched_operands():
    """A 1-D A (a row broadcast over B's batch) and broadcast batches: cheap producers fuse (each
    batch entry reads the leaves as it would read a temporary); a producer calling math functions
    that every batch entry would compute again is computed once, first."""
    rng = np.random.default_rng(12)
    v, b3 = _rand(rng, (20,), "float64"), _rand(rng, (3, 20, 17), "float64")
    a3, w = _rand(rng, (3, 9, 20), "float64"), _rand(rng, (20, 17), "float64")
    xv, xb3, xa3, xw = (xp.asarray(t) for t in (v, b3, a3, w))
    with xp.profile() as prof:
        got = np.asarray((xv * 3) @ (xb3 - 1))
    assert prof.launches == 1
    _check(got, v * 3, b3 - 1)
    with xp.profile() as prof:
        got = np.asarray(xp.exp(xv) @ (xb3 - 1))
    assert prof.launches == 2  # exp(v) first (broadcast over the batch), b3 - 1 fused
    _check(got, np.exp(v), b3 - 1)
    with xp.profile() as prof:
        got = np.asarray(xp.sqrt(xp.abs(xa3)) @ (xw / 4))
    assert prof.launches == 1
    _check(got, np.sqrt(np.abs(a3)), w / 4)
    with xp.profile() as prof:
        got = np.asarray(xp.sqrt(xp.abs(xa3)) @ xp.tanh(xw))
    assert prof.launches == 2  # tanh(w) first (broadcast over the batch)
    _check(got, np.sqrt(np.abs(a3)), np.tanh(w))
    with xp.profile() as prof:
        got = np.asarray(xp.sqrt(xp.abs(xa3)) @ (xb3 / 4))
    assert prof.launches == 1
    _check(got, np.sqrt(np.abs(a3)), b3 / 4)


def test_producers_that_are_computed_first():
    """Operands a GEMM cannot compute while packing: gathers, index leaves (eye, arange), a
    reduction, another product, a producer of many leaves; and batches of small matrices."""
    rng = np.random.default_rng(13)
    x, w = _rand(rng, (30, 20), "float32"), _rand(rng, (20, 25), "float32")
    xx, xw = xp.asarray(x), xp.asarray(w)
    idx = np.array([3, 0, 29, 7, 7, 12])
    cases = [
        (lambda m, a, b: (a[idx] * 2) @ b if m is np else (a[xp.asarray(idx)] * 2) @ b, 2),
        (lambda m, a, b: (m.eye(30, 20, dtype=m.float32) + a) @ b, 2),
        (lambda m, a, b: (m.reshape(m.arange(600, dtype=m.float32), (30, 20)) / 600 + a) @ b, 2),
        (lambda m, a, b: m.sum(m.stack([a, a]), axis=0) @ b, 3),
        (lambda m, a, b: (a @ b[:, :20]) @ b, 2),
        (lambda m, a, b: (a + a[::-1] + a[:, ::-1] + a[::-1, ::-1] + a[1:].mT.mT[0] + a[:, 1:2] + a[2] + a[:, 3:4]) @ b,
         2),  # more leaves than PRODUCER_INPUTS
    ]
    for f, launches in cases:
        with xp.profile() as prof:
            got = np.asarray(f(xp, xx, xw))
        ref_a = f(np, x, np.eye(20, 25, dtype=np.float32))
        np.testing.assert_allclose(got, f(np, x, w), rtol=2e-5, atol=2e-4 * max(1, np.abs(ref_a).max()))
        if launches is not None:
            assert prof.launches == launches, cases.index((f, launches))
    s = _rand(rng, (4, 3, 3), "float64")  # small matrices: kernels.gemm_small reads memory
    xs = xp.asarray(s)
    _check(np.asarray((xs * 2) @ xp.exp(xs)), s * 2, np.exp(s))


def test_producer_leaves_that_alias_the_output():
    """C = f(C) @ B written into C: the GEMM stores partial sums (K > KC) or other column blocks
    early, so the result goes through a temporary; a producer reading a disjoint block of the
    output's buffer (a blocked update) runs straight into it."""
    rng = np.random.default_rng(14)
    for k in (40, 600):
        h, b = _rand(rng, (k, k), "float64"), _rand(rng, (k, k), "float64")
        c = xp.asarray(h)
        c[...] = (2 * c - 1) @ xp.asarray(b)
        np.testing.assert_allclose(np.asarray(c), (2 * h - 1) @ b, rtol=1e-12, atol=1e-11 * k)
        c = xp.asarray(h)
        c[...] = xp.asarray(b) @ xp.exp(c * 0.01)
        np.testing.assert_allclose(np.asarray(c), b @ np.exp(h * 0.01), rtol=1e-12, atol=1e-11 * k)
    # straight into the memory a producer reads (no in-place write's copy first): the GEMM's own check
    from egpu_array import _schedule
    h, b = _rand(rng, (600, 600), "float64"), _rand(rng, (600, 600), "float64")
    c = xp.asarray(h)
    for node in (((2 * c - 1) @ xp.asarray(b))._node, (xp.asarray(b) @ xp.exp(c * 0.01))._node):
        _schedule.realize_into(node, c._realize())
    ref = b @ np.exp(((2 * h - 1) @ b) * 0.01)
    np.testing.assert_allclose(np.asarray(c), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())
    h = _rand(rng, (50, 100), "float64")
    b = _rand(rng, (50, 50), "float64")
    c = xp.asarray(h)
    with xp.profile() as prof:
        c[:, :50] = (c[:, 50:] * 2) @ xp.asarray(b)
    assert prof.launches == 1
    ref = h.copy()
    ref[:, :50] = (h[:, 50:] * 2) @ b
    np.testing.assert_allclose(np.asarray(c), ref, rtol=1e-12, atol=1e-11)


def test_producers_on_sim_and_the_tiled_path(monkeypatch):
    """The sim device fuses as the cpu device does; a tiled (GPU) GEMM computes producers first,
    and its generator refuses a spec with producers."""
    from egpu_array.kernels import gemm_pack, ptx_gemm
    rng = np.random.default_rng(15)
    x, w = _rand(rng, (20, 30), "float32"), _rand(rng, (30, 10), "float32")
    got = xp.exp(xp.asarray(x, device="sim") * 0.5) @ (xp.asarray(w, device="sim") + 1)
    _check(xp.asarray(got, device="cpu").__array__(), np.exp(x * 0.5), w + 1)
    sides = []
    real = _matmul.side
    monkeypatch.setattr(_matmul, "tiled", lambda device: True)
    monkeypatch.setattr(_matmul, "side", lambda *a: sides.append(a[-1]) or real(*a))
    monkeypatch.setattr(_matmul, "get_program", lambda device, spec: sides.append(spec) or 0)
    monkeypatch.setattr(type(xp.asarray(x).device), "launch", lambda *a, **kw: None)
    np.asarray((2 * xp.asarray(x)) @ xp.asarray(w))
    assert sides[:2] == [False, False] and isinstance(sides[2], ptx_gemm.PtxGemmSpec)
    monkeypatch.undo()
    prod = gemm_pack.Producer(expr=(("in", 0),), in_dtypes=("float32",), arg_dtypes=(), classes=("c",))
    spec = ptx_gemm.PtxGemmSpec(dtype="float32", a_layout="k", b_layout="x", n_batch=0, expr=(("in", 0),),
                                in_dtypes=("float32",), arg_dtypes=(), n_idx=0, out_dtype="float32", acc_input=0,
                                classes=("c", "c"), a_prod=prod)
    from egpu_array.kernels.targets import NVPTXTarget
    with pytest.raises(ValueError, match="producers"):
        ptx_gemm.generate(spec, NVPTXTarget().new_module("m"), "k")


def test_operand_views_are_checked_before_launch():
    """A view reaching outside its buffer (not made by the namespace, which validates views) is
    refused with a ValueError naming matmul before any kernel reads through it, as a plain operand
    and as a producer's leaf."""
    from egpu_array._array import Array
    from egpu_array._graph import LazyNode, View
    a = xp.asarray(np.ones((4, 5), np.float32))
    w = xp.asarray(np.ones((5, 20), np.float32))
    leaf = a._node
    bad = Array._new(LazyNode("buffer", (), leaf.dtype, (4, 5), View(leaf.arg.buffer, (1000, 1), 0), leaf.device))
    for operand in (bad, bad * 2):
        with xp.profile() as prof:
            with pytest.raises(ValueError, match="matmul: an operand view"):
                np.asarray(operand @ w)
        assert prof.launches == 0
