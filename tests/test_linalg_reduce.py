"""The blocked tridiagonal reduction and eigh (egpu_array/_linalg_reduce.py), and the blocked
bidiagonal reduction and square SVD (egpu_array/_linalg_svd.py), against numpy.linalg.

The panel width NB, the host tail TAIL and the width of the blocks that apply Q are patched down
(and the blocked factorizations' NB, which decides when ``linalg.eigh`` leaves the single host
LAPACK call), so matrices of 5-40 rows run several device panels: per-column products with the
trailing matrix, the rank-2k trailing GEMMs, the compact-WY application of Q.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import egpu_array as xp
from egpu_array import _linalg_blocked as blocked
from egpu_array import _linalg_route as route
from egpu_array import _linalg_reduce as reduce
from egpu_array import _linalg_svd as svd

DTYPES = ["float32", "float64", "complex64", "complex128"]


@pytest.fixture(autouse=True)
def small_panels(monkeypatch):
    monkeypatch.setattr(reduce, "NB", 4)
    monkeypatch.setattr(reduce, "TAIL", 4)
    monkeypatch.setattr(reduce, "APPLY_WIDTH", 8)                 # Q applied in blocks of two panels
    monkeypatch.setattr(blocked, "NB", 4)
    monkeypatch.setattr(route, "SPECTRAL_HOST_BELOW", 0)          # the cpu device's cut-over to LAPACK


def _rand(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _hermitian(rng, shape, dtype):
    a = _rand(rng, shape, dtype)
    return (a + np.conj(np.swapaxes(a, -1, -2))).astype(dtype)


def _hn(a):
    return np.conj(np.swapaxes(a, -1, -2))


def _scaled(err, a, n, dtype):
    """``err`` in units of ``||A|| n eps``."""
    return float(err) / (max(float(np.linalg.norm(a, axis=(-2, -1)).max()), 1e-300) * max(n, 1) * float(np.finfo(dtype).eps))


@settings(max_examples=20, deadline=None)
@given(st.integers(1, 30), st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_tridiagonalize_reconstructs_the_lower_triangle(n, dtype, seed):
    rng = np.random.default_rng(seed)
    a = _rand(rng, (n, n), dtype)
    a[np.diag_indices(n)] += 3j if a.dtype.kind == "c" else 0     # an imaginary diagonal is ignored
    h = np.tril(a) + _hn(np.tril(a, -1))                          # the upper triangle is never read
    h[np.diag_indices(n)] = h.diagonal().real
    d, e, refl = reduce.tridiagonalize(xp.asarray(a))
    real = np.finfo(dtype).dtype
    assert d.dtype == real and e.dtype == real and d.shape == (n,) and e.shape == (max(n - 1, 0),)
    q = np.asarray(reduce.apply_q(refl, xp.asarray(np.eye(n, dtype=dtype))))
    t = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    assert _scaled(np.linalg.norm(q @ t @ _hn(q) - h), h, n, dtype) <= 4
    assert np.linalg.norm(_hn(q) @ q - np.eye(n)) / (max(n, 1) * np.finfo(dtype).eps) <= 4
    z = _rand(rng, (n, 3), dtype)                                  # Q applied to a few columns
    qz = np.asarray(reduce.apply_q(refl, xp.asarray(z)))
    assert np.abs(qz - q @ z).max() <= 10 * n * np.finfo(dtype).eps * max(np.abs(z).max(), 1)


def test_apply_q_checks_rows():
    _, _, refl = reduce.tridiagonalize(xp.asarray(np.eye(9)))
    with pytest.raises(ValueError, match="apply_q expected 9 rows"):
        reduce.apply_q(refl, xp.asarray(np.eye(8)))


def _check_eigh(a, w, v, dtype, c=8):
    n = a.shape[-1]
    ref = np.linalg.eigvalsh(a)
    assert w.dtype == ref.dtype and w.shape == ref.shape
    assert _scaled(np.abs(w - ref).max(), a, n, dtype) <= c
    if v is not None:
        assert v.dtype == a.dtype and v.shape == a.shape
        assert _scaled(np.linalg.norm(a @ v - v * w[..., None, :], axis=(-2, -1)).max(), a, n, dtype) <= c
        assert np.linalg.norm(_hn(v) @ v - np.eye(n), axis=(-2, -1)).max() / (n * np.finfo(dtype).eps) <= c


@settings(max_examples=20, deadline=None)
@given(st.integers(5, 40), st.sampled_from([(), (2,)]), st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_eigh_and_eigvalsh(n, batch, dtype, seed):
    a = _hermitian(np.random.default_rng(seed), batch + (n, n), dtype)
    with xp.profile() as prof:
        w, v = (np.asarray(r) for r in xp.linalg.eigh(xp.asarray(a)))
    assert any("blocked tridiagonal reduction" in note for note in prof.notes)
    _check_eigh(a, w, v, dtype)
    _check_eigh(a, np.asarray(xp.linalg.eigvalsh(xp.asarray(a))), None, dtype)


@pytest.mark.parametrize("dtype", ["float64", "complex64"])
def test_eigh_of_order_100(dtype):
    """Large enough for the tridiagonal solver's divide-and-conquer merges (not only its leaves)."""
    a = _hermitian(np.random.default_rng(5), (100, 100), dtype)
    w, v = (np.asarray(r) for r in xp.linalg.eigh(xp.asarray(a)))
    _check_eigh(a, w, v, dtype)


@pytest.mark.parametrize("dtype", ["float64", "complex64"])
def test_degenerate_spectra(dtype):
    """The identity (every reflector is the identity), a zero matrix, repeated eigenvalues and a
    matrix that is already tridiagonal."""
    n = 21
    rng = np.random.default_rng(7)
    q, _ = np.linalg.qr(_rand(rng, (n, n), dtype))
    repeated = (q * np.repeat([-2.0, 1.0, 3.0], 7)) @ _hn(q)
    tri = np.diag(np.arange(n, dtype=float)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)
    for a in (np.eye(n), np.zeros((n, n)), repeated, tri):
        a = a.astype(dtype)
        w, v = (np.asarray(r) for r in xp.linalg.eigh(xp.asarray(a)))
        _check_eigh(a, w, v, dtype)
    w = np.asarray(xp.linalg.eigvalsh(xp.asarray(repeated.astype(dtype))))
    assert np.abs(w - np.repeat([-2.0, 1.0, 3.0], 7)).max() <= 50 * n * np.finfo(dtype).eps


def test_small_and_empty():
    """eigh_blocked itself on 1 x 1, 2 x 2 and an empty batch; linalg.eigh of empty matrices."""
    for a in (np.array([[2.5]]), np.array([[1.0, 2 - 1j], [2 + 1j, -3.0]]), np.zeros((0, 6, 6))):
        w, v = reduce.eigh_blocked(xp.asarray(a), True)
        rw, rv = np.linalg.eigh(a)
        np.testing.assert_allclose(np.asarray(w), rw, atol=1e-14 * max(np.abs(a).max(initial=1), 1))
        assert np.asarray(v).shape == rv.shape and np.asarray(v).dtype == rv.dtype
    for shape in [(0, 0), (2, 0, 0), (0, 9, 9)]:
        w, v = xp.linalg.eigh(xp.asarray(np.zeros(shape)))
        assert w.shape == shape[:-1] and v.shape == shape
        assert xp.linalg.eigvalsh(xp.asarray(np.zeros(shape))).shape == shape[:-1]


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_entries_raise_like_numpy(bad):
    a = _hermitian(np.random.default_rng(1), (12, 12), "float64")
    a[5, 3] = bad
    for f in (np.linalg.eigvalsh, xp.linalg.eigvalsh, xp.linalg.eigh):
        with pytest.raises(np.linalg.LinAlgError):
            f(a if f is np.linalg.eigvalsh else xp.asarray(a))


def test_on_sim_only_panels_and_vectors_cross_the_link():
    """On a device with its own memory the reduction reads panels (n x NB), the host tail and one
    vector per column back, never the whole matrix; every copy is the library's own."""
    n = 24
    a = _hermitian(np.random.default_rng(3), (n, n), "float64")
    x = xp.asarray(a, device="sim")
    with xp.profile() as prof:
        w, v = xp.linalg.eigh(x)
        xp.synchronize(v)
    assert w.device == x.device and v.device == x.device
    assert prof.transfer_log and all(t["internal"] for t in prof.transfer_log)
    down = [t["bytes"] for t in prof.transfer_log if t["direction"] == "from_device"]
    assert down and max(down) <= n * max(reduce.NB, reduce.TAIL) * 8
    _check_eigh(a, np.asarray(w), np.asarray(v), "float64")


# ---- bidiagonal reduction and the (unwired) square SVD of egpu_array/_linalg_svd.py -------------

@settings(max_examples=12, deadline=None)
@given(st.integers(1, 30), st.sampled_from(DTYPES), st.integers(0, 2**32 - 1))
def test_bidiagonalize(n, dtype, seed):
    a = _rand(np.random.default_rng(seed), (n, n), dtype)
    d, e, q, p = svd.bidiagonalize(xp.asarray(a))
    real = np.finfo(dtype).dtype
    assert d.dtype == real and e.dtype == real and d.shape == (n,) and e.shape == (max(n - 1, 0),)
    eye = xp.asarray(np.eye(n, dtype=dtype))
    qm, pm = (np.asarray(reduce.apply_q(r, eye)) for r in (q, p))
    b = np.diag(d) + np.diag(e, 1)
    assert _scaled(np.linalg.norm(qm @ b @ _hn(pm) - a), a, n, dtype) <= 4
    for m in (qm, pm):
        assert np.linalg.norm(_hn(m) @ m - np.eye(n)) / (n * np.finfo(dtype).eps) <= 4


def _singular(rng, n, s, dtype):
    q1, _ = np.linalg.qr(_rand(rng, (n, n), dtype))
    q2, _ = np.linalg.qr(_rand(rng, (n, n), dtype))
    return ((q1 * s) @ _hn(q2)).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_svd_blocked(dtype):
    """Random, rank-deficient, graded, clustered spectra, and a cluster that straddles the
    threshold of the host subspace step."""
    n, rng = 24, np.random.default_rng(11)
    cases = [_rand(rng, (n, n), dtype), _rand(rng, (2, 9, 9), dtype), np.eye(n, dtype=dtype),
             np.zeros((n, n), dtype=dtype), _rand(rng, (n, 3), dtype) @ _rand(rng, (3, n), dtype)]
    for s in (np.logspace(0, -15, n), np.repeat([1.0, 1e-9, 0.0], 8),
              np.r_[np.ones(12), np.full(12, svd.SMALL) * (1 + 1e-9 * np.arange(12))],
              np.r_[np.ones(12), np.full(12, svd.SMALL) * (1 + 1e-3 * np.arange(12))]):
        cases.append(_singular(rng, n, s, dtype))
    for a in cases:
        m = a.shape[-1]
        u, s, vh = (np.asarray(r) for r in svd.svd_blocked(xp.asarray(a), True))
        ref = np.linalg.svd(a, compute_uv=False)
        assert s.dtype == ref.dtype and u.dtype == vh.dtype == a.dtype and u.shape == vh.shape == a.shape
        assert _scaled(np.abs(s - ref).max(), a, m, dtype) <= 4
        assert _scaled(np.linalg.norm((u * s[..., None, :]) @ vh - a, axis=(-2, -1)).max(), a, m, dtype) <= 8
        for q in (u, _hn(vh)):
            assert np.linalg.norm(_hn(q) @ q - np.eye(m), axis=(-2, -1)).max() / (m * np.finfo(dtype).eps) <= 16
        values = np.asarray(svd.svd_blocked(xp.asarray(a), False)[1])
        assert _scaled(np.abs(values - ref).max(), a, m, dtype) <= 4


@pytest.mark.parametrize("split", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gemv_products_match_numpy(dtype, split, monkeypatch):
    """The prepared matrix-vector kernels (kernels.gemv) behind the per-column products, at
    several corners, as one work item and split into many (over threads when there are two)."""
    from egpu_array._linalg_reduce import _Gemv
    monkeypatch.setattr(reduce, "GEMV_SPLIT_BYTES", 0 if split else 1 << 40)
    rng = np.random.default_rng(11)
    a = rng.standard_normal((700, 650)).astype(dtype)
    x = blocked._work_copy(xp.asarray(a))
    gemv = _Gemv(x)
    tol = 1e-4 if dtype == "float32" else 1e-12
    for i, j in ((0, 0), (3, 17), (699, 640), (700, 650)):
        block = a[i:, j:].astype(np.float64)
        v = rng.standard_normal(block.shape[0]).astype(dtype)
        u = rng.standard_normal(block.shape[1]).astype(dtype)
        got_t, got_n = gemv(i, j, v, True), gemv(i, j, u, False)
        assert got_t.shape == (block.shape[1],) and got_n.shape == (block.shape[0],)
        np.testing.assert_allclose(got_t, v @ block, rtol=tol, atol=tol * 30)
        np.testing.assert_allclose(got_n, block @ u, rtol=tol, atol=tol * 30)
    with pytest.raises(ValueError, match="vector of shape"):
        gemv(0, 0, np.zeros(3, dtype=dtype), True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_symmetric_products_read_the_lower_triangle(dtype, monkeypatch):
    """kernels.symv behind the tridiagonal reduction's products: ``A[i:, i:] @ v`` of a symmetric
    A from its lower triangle alone (the upper one holds garbage here), at several corners; blocks
    past GEMV_SPLIT_BYTES take the full product."""
    from egpu_array._linalg_reduce import _Gemv
    rng = np.random.default_rng(12)
    n = 301
    low = np.tril(rng.standard_normal((n, n))).astype(dtype)
    sym = (low + np.tril(low, -1).T).astype(np.float64)
    junk = low + np.triu(np.full((n, n), 1e6, dtype=dtype), 1)
    gemv = _Gemv(blocked._work_copy(xp.asarray(junk)))
    tol = 1e-4 if dtype == "float32" else 1e-12
    for i in (0, 1, 7, 150, n - 1, n):
        v = rng.standard_normal(n - i).astype(dtype)
        got = gemv.symmetric(i, v)
        assert got.shape == (n - i,)
        np.testing.assert_allclose(got, sym[i:, i:] @ v, rtol=tol, atol=tol * 30)
    monkeypatch.setattr(reduce, "GEMV_SPLIT_BYTES", 0)
    full = _Gemv(blocked._work_copy(xp.asarray(sym.astype(dtype))))
    v = rng.standard_normal(n - 5).astype(dtype)
    np.testing.assert_allclose(full.symmetric(5, v), sym[5:, 5:] @ v, rtol=tol, atol=tol * 30)
    with pytest.raises(ValueError, match="vector of shape"):
        gemv.symmetric(0, np.zeros(3, dtype=dtype))


@pytest.mark.parametrize("dtype", ["float64", "complex64"])
def test_linalg_svd_of_square_matrices_is_blocked(dtype):
    """linalg.svd/svdvals of square matrices wider than one panel take the blocked path (the
    profiler says so) and match NumPy; a batch and full_matrices=False give the same factors."""
    rng = np.random.default_rng(12)
    a = _rand(rng, (2, 13, 13), dtype)
    with xp.profile() as prof:
        u, s, vh = (np.asarray(r) for r in xp.linalg.svd(xp.asarray(a)))
        values = np.asarray(xp.linalg.svdvals(xp.asarray(a)))
    assert any("blocked bidiagonalization" in note for note in prof.notes)
    ref = np.linalg.svd(a, compute_uv=False)
    assert _scaled(np.abs(s - ref).max(), a, 13, dtype) <= 4
    assert _scaled(np.abs(values - ref).max(), a, 13, dtype) <= 4
    assert _scaled(np.linalg.norm((u * s[..., None, :]) @ vh - a, axis=(-2, -1)).max(), a, 13, dtype) <= 8
    u2, s2, vh2 = (np.asarray(r) for r in xp.linalg.svd(xp.asarray(a), full_matrices=False))
    assert u2.shape == u.shape and np.abs(s2 - s).max() <= _scaled(0, a, 13, dtype) + 4 * np.finfo(dtype).eps * np.abs(s).max()


def test_spectral_cut_over_on_the_cpu_device(monkeypatch):
    """On the cpu device eigh and the square svd below SPECTRAL_HOST_BELOW are one host LAPACK
    step; from it on (and on sim beyond one panel) they are blocked; the profiler says which."""
    monkeypatch.setattr(route, "SPECTRAL_HOST_BELOW", 10)
    a = np.random.default_rng(13).standard_normal((9, 9))
    s = a + a.T
    for n, device, blocked_path in ((9, "cpu", False), (9, "sim", True)):
        with xp.profile() as prof:
            w = np.asarray(xp.linalg.eigvalsh(xp.asarray(s[:n, :n], device=device)))
            sv = np.asarray(xp.linalg.svdvals(xp.asarray(a[:n, :n], device=device)))
        notes = " ".join(prof.notes)
        assert ("tridiagonal reduction" in notes) is blocked_path and ("bidiagonalization" in notes) is blocked_path
        np.testing.assert_allclose(w, np.linalg.eigvalsh(s[:n, :n]), atol=1e-12 * 9)
        np.testing.assert_allclose(sv, np.linalg.svd(a[:n, :n], compute_uv=False), atol=1e-12 * 9)


@pytest.mark.parametrize("dtype", ["float32", "float64", "complex64", "complex128"])
@pytest.mark.parametrize("scale", [1.0, 1e-30, 1e30, 1e-200, 1e200, 0.0])
def test_larfg_reflects_onto_beta(dtype, scale):
    """The reflector of larfg (its float fast path and the rescaling path: tiny, huge, zero
    vectors) maps ``[alpha; x]`` to ``[beta; 0]`` with ``|beta| = ||[alpha; x]||``."""
    rng = np.random.default_rng(7)
    t = np.dtype(dtype)
    x = rng.standard_normal(9) + (1j * rng.standard_normal(9) if t.kind == "c" else 0)
    with np.errstate(over="ignore", under="ignore"):
        x = (x * scale).astype(t)
    if not np.isfinite(x).all():
        return
    alpha = x[0]
    beta, tau, v = reduce._larfg(alpha, x[1:].copy())
    u = np.concatenate([[1], v]).astype(np.complex256 if t.kind == "c" else np.longdouble)
    xs = x.astype(u.dtype)
    hx = xs - np.conj(tau) * u * np.vdot(u, xs)        # H^H [alpha; x] with H = I - tau u u^H
    norm = float(np.sqrt(np.sum(np.abs(xs) ** 2)))
    tol = 8 * np.finfo(t).eps * max(norm, np.finfo(t).tiny)
    assert abs(float(beta)) == pytest.approx(norm, rel=8 * float(np.finfo(t).eps), abs=float(np.finfo(t).tiny))
    assert abs(complex(hx[0]) - float(beta)) <= tol
    assert np.abs(hx[1:]).max() <= tol


@pytest.mark.parametrize("dtype", ["float64", "complex128"])
def test_larft_is_the_product_of_the_reflectors(dtype):
    """apply_q's compact WY factor: ``I - V T V^H`` equals ``H_0 H_1 ... H_{k-1}`` (a zero tau,
    the identity, included)."""
    rng = np.random.default_rng(3)
    m, k = 11, 6
    v = np.tril(rng.standard_normal((m, k)) + (1j * rng.standard_normal((m, k)) if dtype[0] == "c" else 0), -1)
    v = v.astype(dtype)
    v[np.arange(k), np.arange(k)] = 1
    tau = (rng.uniform(0.5, 1.5, k) + (0.3j if dtype[0] == "c" else 0)).astype(dtype)
    tau[2] = 0
    prod = np.eye(m, dtype=dtype)
    for i in range(k):
        prod = prod @ (np.eye(m, dtype=dtype) - tau[i] * np.outer(v[:, i], np.conj(v[:, i])))
    t = reduce._larft(v, tau)
    np.testing.assert_allclose(np.eye(m) - v @ t @ np.conj(v.T), prod, atol=1e-13)
    assert np.array_equal(t, np.triu(t))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [13, 22, 30])
def test_host_tail_in_several_panels(monkeypatch, n, dtype):
    """A host tail wider than a panel (TAIL 13, NB 4) is reduced in host panels with host trailing
    updates between them: the reduction and its Q still reconstruct the matrix."""
    monkeypatch.setattr(reduce, "TAIL", 13)
    rng = np.random.default_rng(n)
    a = _rand(rng, (n, n), dtype)
    h = np.tril(a) + _hn(np.tril(a, -1))
    h[np.diag_indices(n)] = h.diagonal().real
    d, e, refl = reduce.tridiagonalize(xp.asarray(a))
    q = np.asarray(reduce.apply_q(refl, xp.asarray(np.eye(n, dtype=dtype))))
    t = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    assert _scaled(np.linalg.norm(q @ t @ _hn(q) - h), h, n, dtype) <= 4
    assert np.linalg.norm(_hn(q) @ q - np.eye(n)) / (n * np.finfo(dtype).eps) <= 4
    d2, e2, none = reduce.tridiagonalize(xp.asarray(a), keep_q=False)
    assert none is None and np.array_equal(d2, d) and np.array_equal(e2, e)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [13, 22, 30])
def test_bidiagonal_host_tail_in_several_panels(monkeypatch, n, dtype):
    """The bidiagonal reduction's host tail wider than a panel (TAIL 13, NB 4): host panels with
    host trailing updates; ``Q B P^H`` reconstructs the matrix and svdvals match NumPy."""
    monkeypatch.setattr(reduce, "TAIL", 13)
    a = _rand(np.random.default_rng(n + 1), (n, n), dtype)
    d, e, q, p = svd.bidiagonalize(xp.asarray(a))
    eye = xp.asarray(np.eye(n, dtype=dtype))
    qm, pm = (np.asarray(reduce.apply_q(r, eye)) for r in (q, p))
    assert _scaled(np.linalg.norm(qm @ (np.diag(d) + np.diag(e, 1)) @ _hn(pm) - a), a, n, dtype) <= 4
    for m in (qm, pm):
        assert np.linalg.norm(_hn(m) @ m - np.eye(n)) / (n * np.finfo(dtype).eps) <= 4
    s = np.asarray(xp.linalg.svdvals(xp.asarray(a)))
    assert _scaled(np.abs(s - np.linalg.svd(a, compute_uv=False)).max(), a, n, dtype) <= 4


@pytest.mark.parametrize("shape", [(13, 9), (9, 13), (2, 12, 7)])
@pytest.mark.parametrize("full", [True, False])
def test_linalg_svd_of_rectangular_matrices_is_blocked(shape, full):
    """Taller (or wider) than square but less than twice: blocked QR, then the blocked square
    SVD of R; the factors have NumPy's shapes, reconstruct A and are orthonormal."""
    a = _rand(np.random.default_rng(14), shape, "float64")
    with xp.profile() as prof:
        u, s, vh = (np.asarray(r) for r in xp.linalg.svd(xp.asarray(a), full_matrices=full))
        values = np.asarray(xp.linalg.svdvals(xp.asarray(a)))
    assert any("blocked bidiagonalization" in note for note in prof.notes)
    ru, rs, rvh = np.linalg.svd(a, full_matrices=full)
    k = min(shape[-2:])
    assert u.shape == ru.shape and vh.shape == rvh.shape
    assert _scaled(np.abs(s - rs).max(), a, k, "float64") <= 4 and _scaled(np.abs(values - rs).max(), a, k, "float64") <= 4
    assert _scaled(np.abs((u[..., :k] * s[..., None, :]) @ vh[..., :k, :] - a).max(), a, k, "float64") <= 8
    for q in (u, _hn(vh)):
        assert np.abs(_hn(q) @ q - np.eye(q.shape[-1])).max() <= 16 * q.shape[-1] * np.finfo(float).eps
