"""The divide-and-conquer tridiagonal eigensolver (egpu_array/_tridiagonal.py) against numpy.linalg.

Checks: eigenvalues against eigvalsh of the dense T (``|w - w_ref| <= c n eps ||T||``), the
residual ``||T Z - Z diag(w)|| / (||T|| n eps)`` and orthogonality ``||Z^T Z - I|| / (n eps)``.
The leaf size is patched down in most tests so that matrices of tens of rows already merge over
several levels and take the deflation paths (tiny z components, close eigenvalues rotated).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import egpu_array as xp
from egpu_array import _tridiagonal as tri
from egpu_array import _tridiagonal_secular as sec
from egpu_array._tridiagonal import tridiagonal_eigh

#: bounds on the scaled errors (measured values are below 1.5; see the module docstring)
C_VALUES, C_RESIDUAL, C_ORTHO = 5.0, 10.0, 10.0


@pytest.fixture
def small_leaves(monkeypatch):
    """Leaves of 4 rows; merges of 16 rows and more build their vectors on the device."""
    monkeypatch.setattr(tri, "LEAF", 4)
    monkeypatch.setattr(tri, "DEVICE_MIN", 16)


def _like(dtype="float64", device="cpu"):
    return xp.asarray(np.zeros(1, dtype=dtype), device=device)


def _dense(d, e):
    d, e = np.asarray(d, np.float64), np.asarray(e, np.float64)
    return np.diag(d) + np.diag(e, 1) + np.diag(e, -1)


def _check(d, e, like=None, eps=None):
    """Run both modes; assert the bounds; return the scaled errors."""
    like = _like() if like is None else like
    n = len(d)
    t = _dense(d, e)
    eps = eps or np.finfo(np.float64).eps
    nrm = max(np.abs(t).max(initial=0), np.finfo(np.float64).tiny)
    scale = max(n, 1) * eps * nrm
    w, z = tridiagonal_eigh(d, e, like=like)
    w_only, none = tridiagonal_eigh(d, e, like=like, vectors=False)
    assert none is None
    assert w.dtype == np.asarray(d).dtype and w.shape == (n,)
    assert isinstance(z, xp.Array) and z.shape == (n, n) and z.device == like.device
    assert z.dtype == like.dtype.real_dtype
    zh = np.asarray(z).astype(np.float64)
    ref = np.linalg.eigvalsh(t)
    assert (np.diff(w) >= 0).all() and (np.diff(w_only) >= 0).all()
    errs = {
        "values": np.abs(w - ref).max(initial=0) / scale,
        "values_only": np.abs(w_only - ref).max(initial=0) / scale,
        "residual": np.abs(t @ zh - zh * w.astype(np.float64)).max(initial=0) / scale,
        "ortho": np.abs(zh.T @ zh - np.eye(n)).max(initial=0) / (max(n, 1) * eps),
    }
    assert errs["values"] <= C_VALUES and errs["values_only"] <= C_VALUES, errs
    assert errs["residual"] <= C_RESIDUAL and errs["ortho"] <= C_ORTHO, errs
    return errs


def _wilkinson(m):
    return np.abs(np.arange(-m, m + 1)).astype(np.float64), np.ones(2 * m)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 300), st.integers(0, 2**32 - 1), st.sampled_from([4, 7, 25]), st.sampled_from([8, 128]))
def test_random(n, seed, leaf, device_min):
    rng = np.random.default_rng(seed)
    d, e = rng.standard_normal(n), rng.standard_normal(max(n - 1, 0))
    old = tri.LEAF, tri.DEVICE_MIN
    tri.LEAF, tri.DEVICE_MIN = leaf, device_min
    try:
        _check(d, e)
    finally:
        tri.LEAF, tri.DEVICE_MIN = old


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 120), st.integers(0, 2**32 - 1), st.sampled_from([0.0, 1e-300, 1e-12, 1e-8]))
def test_splits_and_tiny_couplings(n, seed, tiny):
    """Exact zeros and negligible entries in e split T; tiny but not negligible ones deflate."""
    rng = np.random.default_rng(seed)
    d, e = rng.standard_normal(n), rng.standard_normal(max(n - 1, 0))
    e[rng.random(e.size) < 0.3] = tiny
    old = tri.LEAF, tri.DEVICE_MIN
    tri.LEAF, tri.DEVICE_MIN = 5, 12
    try:
        _check(d, e)
    finally:
        tri.LEAF, tri.DEVICE_MIN = old


def _hard(kind, n, rng):
    """Families that once broke the secular solver (see test_hard_families)."""
    if kind == "glued":                       # copies of W_{2m+1} glued by random small couplings
        m = int(rng.integers(2, 15))
        w = np.abs(np.arange(-m, m + 1)).astype(np.float64)
        d = np.tile(w, -(-n // w.size))[:n]
        e = np.ones(n - 1)
        e[w.size - 1::w.size] = 10.0 ** rng.uniform(-16, -1)
        return d, e
    if kind == "twins":                       # zero diagonal, couplings 1 (1 + 1e-12 noise): merges of
        return np.zeros(n), 1 + 1e-12 * rng.standard_normal(n - 1)    # near-equal halves
    if kind == "clusters":
        d = np.repeat(rng.standard_normal(n // 10 + 1), 10)[:n]
        return d, rng.standard_normal(n - 1) * 1e-6
    return rng.standard_normal(n), rng.standard_normal(n - 1)


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["glued", "twins", "clusters", "random"]), st.integers(2, 200),
       st.integers(0, 2**32 - 1), st.sampled_from([2, 3, 8, 25]))
def test_hard_families(kind, n, seed, leaf):
    """Roots next to the middle of their interval (decided by the rounded middle point), poles with
    tiny weights next to the root (the model's step jumps to the far pole), and near-equal halves."""
    d, e = _hard(kind, n, np.random.default_rng(seed))
    old = tri.LEAF, tri.DEVICE_MIN
    tri.LEAF, tri.DEVICE_MIN = leaf, 64
    try:
        _check(d, e)
    finally:
        tri.LEAF, tri.DEVICE_MIN = old


@pytest.mark.parametrize("m", [10, 25, 60])
def test_wilkinson(small_leaves, m):
    """W_{2m+1}: pairs of eigenvalues equal to many digits (close-eigenvalue deflation)."""
    _check(*_wilkinson(m))


@pytest.mark.parametrize("glue", [1e-14, 1e-10, 1e-5])
def test_glued_wilkinson(small_leaves, glue):
    """Copies of W21 glued by small couplings: clusters of near-equal eigenvalues."""
    d0, _ = _wilkinson(10)
    d = np.tile(d0, 6)
    e = np.ones(d.size - 1)
    e[20::21] = glue
    _check(d, e)


@pytest.mark.parametrize("diag", [0.0, 1.0, -3.0])
def test_constant_matrices(small_leaves, diag):
    """All-equal d with e = 1 (eigenvalues diag + 2 cos(k pi/(n+1))), and an all-equal diagonal
    without couplings (a multiple of the identity)."""
    _check(np.full(70, diag), np.ones(69))
    w, z = tridiagonal_eigh(np.full(9, diag), np.zeros(8), like=_like())
    assert (w == diag).all()
    np.testing.assert_array_equal(np.asarray(z) @ np.asarray(z).T, np.eye(9))


def test_graded(small_leaves):
    n = 30
    d = 10.0 ** np.arange(n) / 1e15
    e = np.sqrt(d[:-1] * d[1:]) * 0.5
    _check(d, e)
    _check(d[::-1].copy(), e[::-1].copy())


@pytest.mark.parametrize("size", [1e300, 1e-300, 1e150])
def test_extreme_scales(small_leaves, size):
    rng = np.random.default_rng(3)
    d, e = rng.standard_normal(40) * size, rng.standard_normal(39) * size
    _check(d, e)


def test_float32(small_leaves):
    rng = np.random.default_rng(4)
    d, e = rng.standard_normal(90).astype(np.float32), rng.standard_normal(89).astype(np.float32)
    errs = _check(d, e, like=_like("float32"), eps=np.finfo(np.float32).eps)
    assert errs["values"] <= 1.0
    w, z = tridiagonal_eigh(d, e, like=_like("float64"))       # float32 values, float64 vectors
    assert w.dtype == np.float32 and z.dtype == xp.float64


def test_complex_like_gives_real_vectors(small_leaves):
    rng = np.random.default_rng(5)
    d, e = rng.standard_normal(12), rng.standard_normal(11)
    w, z = tridiagonal_eigh(d, e, like=xp.asarray(np.zeros(1, np.complex64)))
    assert z.dtype == xp.float32


def test_tiny_sizes():
    like = _like()
    w, z = tridiagonal_eigh(np.empty(0), np.empty(0), like=like)
    assert w.shape == (0,) and z.shape == (0, 0)
    w, z = tridiagonal_eigh(np.array([2.5]), np.empty(0), like=like)
    assert w.tolist() == [2.5] and np.asarray(z).tolist() == [[1.0]]
    w, z = tridiagonal_eigh(np.zeros(3), np.zeros(2), like=like)
    assert (w == 0).all() and np.asarray(z).tolist() == np.eye(3).tolist()


def test_deflation_paths_are_taken(small_leaves, monkeypatch):
    """Both deflation kinds occur on W21 and on a matrix with many tiny z, and the merges there
    still produce correct results (checked by _check)."""
    seen = {"unit": 0, "rotated": 0, "merges": 0}
    real = sec.merge_plans

    def spy(*args, **kwargs):
        plans = real(*args, **kwargs)
        for plan in plans:
            seen["merges"] += 1
            seen["unit"] += plan.unit.size
            seen["rotated"] += plan.rotated
        return plans
    monkeypatch.setattr(tri, "merge_plans", spy)
    _check(*_wilkinson(40))
    rng = np.random.default_rng(9)
    d = np.sort(rng.standard_normal(64))
    _check(d, np.full(63, 1e-9))              # tiny couplings: most z components deflate
    assert seen["merges"] >= 30 and seen["unit"] > 0 and seen["rotated"] > 0, seen


def test_on_sim_device(monkeypatch):
    """On a device with its own memory the eigenvectors are built there; the only copies are the
    library's own uploads (leaf vectors, merge matrices, gather indices), nothing comes back."""
    monkeypatch.setattr(tri, "LEAF", 6)
    monkeypatch.setattr(tri, "DEVICE_MIN", 20)
    rng = np.random.default_rng(6)
    d, e = rng.standard_normal(60), rng.standard_normal(59)
    like = _like(device="sim")
    with xp.profile() as prof:
        w, z = tridiagonal_eigh(d, e, like=like)
        xp.synchronize(z)
    assert prof.transfer_log and all(t["internal"] == "linalg.tridiagonal_eigh" for t in prof.transfer_log)
    assert prof.bytes_from_device == 0
    _check(d, e, like=like)


def test_cpu_device_copies_nothing_back():
    rng = np.random.default_rng(7)
    d, e = rng.standard_normal(130), rng.standard_normal(129)
    with xp.profile() as prof:
        w, z = tridiagonal_eigh(d, e, like=_like())
        xp.synchronize(z)
    assert prof.bytes_to_device == prof.bytes_from_device == 0


def test_bad_input():
    like = _like()
    with pytest.raises(ValueError, match="tridiagonal_eigh"):
        tridiagonal_eigh(np.ones(3), np.ones(3), like=like)
    with pytest.raises(ValueError, match="finite"):
        tridiagonal_eigh(np.array([1.0, np.nan]), np.ones(1), like=like)
    with pytest.raises(TypeError, match="like"):
        tridiagonal_eigh(np.ones(2), np.ones(1), like=np.zeros(1))
    with pytest.raises(TypeError, match="real"):
        tridiagonal_eigh(np.ones(2, complex), np.ones(1), like=like)


def test_secular_solver_on_hard_poles():
    """Roots squeezed against poles (z components of 1e-7) keep residual and orthogonality."""
    rng = np.random.default_rng(8)
    k = 150
    d = np.sort(rng.standard_normal(k))
    z = rng.standard_normal(k)
    z[::3] *= 1e-7
    z /= np.linalg.norm(z)
    lam, u = sec.secular_vectors(d, z, 0.9)
    a = np.diag(d) + 0.9 * np.outer(z, z)
    eps = np.finfo(np.float64).eps
    assert np.abs(lam - np.linalg.eigvalsh(a)).max() <= 10 * k * eps * 3
    assert np.abs(a @ u - u * lam).max() <= 10 * k * eps * 3
    assert np.abs(u.T @ u - np.eye(k)).max() <= 10 * k * eps


def test_secular_sums_kernel_against_numpy():
    """The generated kernel's four pole sums, for a subset of rows of two padded problems."""
    rng = np.random.default_rng(10)
    k = 37
    dd = rng.standard_normal((2 * k, k))
    z2 = rng.random((2, k))
    rows_b = np.repeat(np.arange(2), k)
    act = np.array([0, 5, 36, 40, 73])
    tau = rng.standard_normal(act.size) * 1e-3
    delta, tot, dtot, psi, dpsi = sec._full_sums(dd, z2, rows_b)(act, tau)
    ref = dd[act] - tau[:, None]
    t = z2[rows_b[act]] / ref
    np.testing.assert_allclose(tot, t.sum(axis=1), rtol=1e-12, atol=1e-12 * np.abs(t).sum(axis=1).max())
    np.testing.assert_allclose(dtot, (t / ref).sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(psi, np.where(ref < 0, t, 0).sum(axis=1), rtol=1e-12, atol=1e-12 * np.abs(t).max())
    np.testing.assert_allclose(dpsi, np.where(ref < 0, t / ref, 0).sum(axis=1), rtol=1e-12)
    cols = np.array([1, 2, 3, 4, 5])
    np.testing.assert_array_equal(delta[np.arange(5), cols], ref[np.arange(5), cols])


def _scalar_rotations(ds, zs, keep, tol):
    """The deflation's pair scan one pair at a time (the definition the screened scan keeps)."""
    import math
    dl, zl = ds.tolist(), zs.tolist()
    out, pj = [], -1
    for j in keep.tolist():
        if pj >= 0:
            r = math.hypot(zl[pj], zl[j])
            c, s = zl[j] / r, zl[pj] / r
            if abs((dl[j] - dl[pj]) * c * s) <= tol:
                dp, dq = dl[pj], dl[j]
                dl[pj], dl[j] = c * c * dp + s * s * dq, s * s * dp + c * c * dq
                zl[pj], zl[j] = 0.0, r
                out.append((pj, j, c, s))
        pj = j
    return out, dl, zl


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 25), st.integers(1, 25), st.sampled_from(["random", "close", "rounded", "zero"]),
       st.integers(0, 2**32 - 1))
def test_deflation_screen_matches_the_scalar_scan(m, k, kind, seed):
    rng = np.random.default_rng(seed)
    w1, w2 = np.sort(rng.standard_normal(m)), np.sort(rng.standard_normal(k))
    if kind == "close":
        w2 = np.sort(np.resize(w1, k) + rng.standard_normal(k) * 1e-15)
    elif kind == "rounded":
        w1, w2 = np.round(w1, 1), np.round(w2, 1)
    elif kind == "zero":
        w1, w2 = np.zeros(m), 1e-17 * np.arange(k)
    z = rng.standard_normal(m + k)
    rho = float(abs(rng.standard_normal())) + 0.1
    x = sec._deflate(w1, w2, z, rho, m)
    nz = np.linalg.norm(z)
    zs = (z / nz)[x.perm]
    tol = 8 * sec.EPS * max(np.abs(x.ds).max(), rho * nz * nz)
    keep = np.flatnonzero(~(rho * nz * nz * np.abs(zs) <= tol))
    rots, dl, zl = _scalar_rotations(x.ds, zs, keep, tol)
    assert x.rots == rots and x.cdf == [r[0] for r in rots]
    assert np.array_equal(x.d, dl) and np.array_equal(x.z, zl)


@pytest.mark.parametrize("split", [False, True])
def test_keep_only_the_largest_eigenvectors(small_leaves, split):
    """``keep``: Z holds the eigenvectors of the keep(w) largest eigenvalues, ascending, as the
    full solve gives them; an unreduced T makes only those in its last merge (device and host
    merges), a reducible one (``split``) selects them from the full result."""
    rng = np.random.default_rng(21)
    n = 41
    d, e = rng.standard_normal(n), rng.standard_normal(n - 1)
    if split:
        e[17] = 0.0
    like = xp.asarray(np.zeros(1))
    w, z = tridiagonal_eigh(d, e, like=like)
    seen = []
    for count in (n, n // 2, 3, 0):
        def keep(values):
            seen.append(values.size)
            return count
        wk, zk = tridiagonal_eigh(d, e, like=like, keep=keep)
        np.testing.assert_array_equal(wk, w)
        zk, zf = np.asarray(zk), np.asarray(z)[:, n - count:]
        assert zk.shape == (n, count)
        signs = np.where(np.sum(zk * zf, axis=0) < 0, -1.0, 1.0)
        np.testing.assert_allclose(zk * signs, zf, atol=1e-12)
    assert seen and all(s == n for s in seen)
