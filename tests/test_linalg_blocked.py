"""The blocked factorizations (egpu_array/_linalg_blocked.py) against numpy.linalg.

The panel width NB is patched down so that small matrices take the multi-panel paths (the panel
LU kernel, the row exchanges between panels, the compact-WY updates); one test runs the shipped
width on a 300 x 300 matrix.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import egpu_array as xp
from egpu_array import _linalg_blocked as blocked
from egpu_array import _linalg_panels as panels

DTYPES = ["float32", "float64", "complex64", "complex128"]


@pytest.fixture(autouse=True)
def small_panels(monkeypatch):
    monkeypatch.setattr(blocked, "NB", 4)


def _rand(rng, shape, dtype):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _hpd(rng, n, batch, dtype):
    a = _rand(rng, batch + (n, n), dtype)
    return (a @ np.conj(np.swapaxes(a, -1, -2)) + n * np.eye(n)).astype(dtype)


def _tol(dtype, n):
    return 50 * n * np.finfo(dtype).eps


cases = st.tuples(st.integers(5, 13), st.sampled_from([(), (2,), (1, 3)]), st.sampled_from(DTYPES),
                  st.integers(0, 2**32 - 1))


@settings(max_examples=12, deadline=None)
@given(cases)
def test_cholesky(case):
    n, batch, dtype, seed = case
    a = _hpd(np.random.default_rng(seed), n, batch, dtype)
    a_upper_garbage = a + np.triu(np.full(a.shape, 7, dtype=dtype), 1)   # only the lower triangle is read
    ref = np.linalg.cholesky(a)
    scale = np.abs(ref).max()
    low = np.asarray(xp.linalg.cholesky(xp.asarray(a_upper_garbage)))
    assert low.dtype == ref.dtype and low.shape == ref.shape
    assert np.abs(low - ref).max() <= _tol(dtype, n) * scale
    up = np.asarray(xp.linalg.cholesky(xp.asarray(a), upper=True))
    assert np.abs(up - np.conj(np.swapaxes(ref, -1, -2))).max() <= _tol(dtype, n) * scale


def test_cholesky_of_an_indefinite_matrix_raises():
    a = np.eye(10)
    a[7, 7] = -1.0
    with pytest.raises(np.linalg.LinAlgError):
        xp.linalg.cholesky(xp.asarray(a))


@settings(max_examples=12, deadline=None)
@given(cases, st.sampled_from([0, 1, 3]))
def test_solve_inv_det_slogdet(case, nrhs):
    n, batch, dtype, seed = case
    rng = np.random.default_rng(seed)
    a = _rand(rng, batch + (n, n), dtype) + 2 * np.eye(n, dtype=dtype)
    b = _rand(rng, (n,) if nrhs == 0 else batch + (n, nrhs), dtype)
    x = xp.asarray(a)
    cond = np.linalg.cond(a.astype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)).max()
    tol = _tol(dtype, n) * cond
    ref = np.linalg.solve(a, b[..., None])[..., 0] if nrhs == 0 and batch else np.linalg.solve(a, b)
    got = np.asarray(xp.linalg.solve(x, xp.asarray(b)))
    assert got.shape == ref.shape and got.dtype == ref.dtype
    assert np.abs(got - ref).max() <= tol * max(np.abs(ref).max(), 1)
    inv = np.asarray(xp.linalg.inv(x))
    assert np.abs(inv - np.linalg.inv(a)).max() <= tol * np.abs(np.linalg.inv(a)).max()
    det, ref_det = np.asarray(xp.linalg.det(x)), np.linalg.det(a)
    assert np.all(np.abs(det - ref_det) <= tol * np.abs(ref_det))
    sign, logabs = (np.asarray(v) for v in xp.linalg.slogdet(x))
    rsign, rlog = np.linalg.slogdet(a)
    assert np.abs(sign - rsign).max() <= tol and np.abs(logabs - rlog).max() <= tol * max(np.abs(rlog).max(), 1)


def test_panel_pivots_are_lapacks():
    """The panel kernel and the blocked driver pick LAPACK getrf's pivots (scipy's lu_factor)."""
    scipy_linalg = pytest.importorskip("scipy.linalg")
    a = np.random.default_rng(3).standard_normal((23, 23))
    f = blocked.lu(xp.asarray(a))
    lu, piv = scipy_linalg.lu_factor(a)
    perm = np.arange(23)
    for i, p in enumerate(piv):
        perm[[i, p]] = perm[[p, i]]
    np.testing.assert_array_equal(f.perm, perm)
    np.testing.assert_allclose(np.asarray(f.a), lu, rtol=1e-12, atol=1e-12)


def test_singular_matrices():
    a = np.random.default_rng(1).standard_normal((2, 9, 9))
    a[1, :, 5] = 0                                   # an exactly zero pivot in the second panel
    x = xp.asarray(a)
    with pytest.raises(np.linalg.LinAlgError):
        xp.linalg.solve(x, xp.asarray(np.ones((2, 9, 1))))
    with pytest.raises(np.linalg.LinAlgError):
        xp.linalg.inv(x)
    det = np.asarray(xp.linalg.det(x))
    assert det[1] == 0 and abs(det[0] - np.linalg.det(a[0])) <= 1e-12 * abs(np.linalg.det(a[0]))
    sign, logabs = (np.asarray(v) for v in xp.linalg.slogdet(x))
    assert sign[1] == 0 and logabs[1] == -np.inf


@pytest.mark.parametrize("dtype", DTYPES)
def test_det_of_graded_pivots(dtype):
    """Pivots whose running product leaves the dtype's range on the way (det = 1 exactly): the
    determinant comes from the summed logs, as NumPy's does (it was inf or 0)."""
    big = 1e30 if np.dtype(dtype) in (np.float64, np.complex128) else 1e4
    d = np.r_[np.full(12, big), np.full(12, 1 / big)]
    for diag in (d, d[::-1]):
        a = np.diag(diag).astype(dtype)
        a[0, 1] = 0.5  # not triangular by accident only
        det = np.asarray(xp.linalg.det(xp.asarray(a)))
        assert det.dtype == np.dtype(dtype) and abs(det - 1) <= _tol(dtype, 24), det


@settings(max_examples=12, deadline=None)
@given(st.integers(5, 19), st.integers(5, 19), st.sampled_from([(), (2,)]), st.sampled_from(DTYPES),
       st.sampled_from(["reduced", "complete"]), st.integers(0, 2**32 - 1))
def test_qr(m, n, batch, dtype, mode, seed):
    a = _rand(np.random.default_rng(seed), batch + (m, n), dtype)
    q, r = (np.asarray(v) for v in xp.linalg.qr(xp.asarray(a), mode=mode))
    rq, rr = np.linalg.qr(a, mode=mode)
    assert q.shape == rq.shape and r.shape == rr.shape and q.dtype == rq.dtype
    tol = _tol(dtype, max(m, n))
    assert np.abs(q @ r - a).max() <= tol * np.abs(a).max()
    qh = np.conj(np.swapaxes(q, -1, -2))
    assert np.abs(qh @ q - np.eye(q.shape[-1])).max() <= tol
    assert np.all(np.tril(r, -1) == 0)
    # Householder QR is unique up to the signs LAPACK picks; the same reflectors give the same R
    assert np.abs(r - rr).max() <= tol * np.abs(rr).max()


@settings(max_examples=15, deadline=None)
@given(st.integers(5, 9), st.sampled_from([2, 3]), st.booleans(), st.sampled_from(["float64", "complex64"]),
       st.booleans(), st.integers(0, 2**32 - 1))
def test_svd_of_tall_and_wide_matrices(n, ratio, wide, dtype, full, seed):
    shape = (n, ratio * n) if wide else (ratio * n, n)
    a = _rand(np.random.default_rng(seed), (2,) + shape, dtype)
    u, s, vh = (np.asarray(v) for v in xp.linalg.svd(xp.asarray(a), full_matrices=full))
    ru, rs, rvh = np.linalg.svd(a, full_matrices=full)
    assert u.shape == ru.shape and s.shape == rs.shape and vh.shape == rvh.shape
    tol = _tol(dtype, ratio * n)
    assert np.abs(s - rs).max() <= tol * rs.max()
    k = s.shape[-1]
    assert np.abs((u[..., :k] * s[..., None, :]) @ vh[..., :k, :] - a).max() <= tol * rs.max()
    for m in (u, np.conj(np.swapaxes(vh, -1, -2))):
        assert np.abs(np.conj(np.swapaxes(m, -1, -2)) @ m - np.eye(m.shape[-1])).max() <= tol
    np.testing.assert_allclose(np.asarray(xp.linalg.svdvals(xp.asarray(a))), rs, rtol=tol, atol=tol * rs.max())


def test_shipped_panel_width(monkeypatch):
    monkeypatch.setattr(blocked, "NB", 128)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 300))
    spd = a @ a.T + 300 * np.eye(300)
    with xp.profile() as prof:
        low = np.asarray(xp.linalg.cholesky(xp.asarray(spd)))
        sol = np.asarray(xp.linalg.solve(xp.asarray(a), xp.asarray(np.ones(300))))
    assert np.abs(low - np.linalg.cholesky(spd)).max() <= 1e-12 * np.abs(low).max()
    assert np.abs(a @ sol - 1).max() <= 1e-9
    assert any("blocked, 3 panel(s)" in n for n in prof.notes)
    assert prof.bytes_to_device == prof.bytes_from_device == 0     # the cpu device copies nothing


def test_on_sim_only_panels_cross_the_link():
    """On a device with its own memory, the blocked steps move panels (and the small triangular
    inverses), never the whole matrix at once, and every copy is the library's own."""
    n = 16
    a = np.random.default_rng(2).standard_normal((n, n)) + n * np.eye(n)
    x, ones = xp.asarray(a, device="sim"), xp.asarray(np.ones((n, 1)), device="sim")
    with xp.profile() as prof:
        sol = xp.linalg.solve(x, ones)
        xp.synchronize(sol)
    assert sol.device == x.device
    assert prof.transfer_log and all(t["internal"] == "linalg.solve" for t in prof.transfer_log)
    assert max(t["bytes"] for t in prof.transfer_log) <= n * blocked.NB * 8
    np.testing.assert_allclose(a @ np.asarray(sol), 1, atol=1e-10)


def test_ill_conditioned_and_rank_deficient():
    """Hilbert matrices (condition ~1e17 at n = 13): LU with partial pivoting is backward stable,
    so the residual stays near eps even though the solution is inaccurate; QR of a rank-deficient
    matrix still reconstructs it."""
    n = 13
    i = np.arange(n)
    hilbert = 1.0 / (i[:, None] + i[None, :] + 1)
    b = np.ones((n, 1))
    x = np.asarray(xp.linalg.solve(xp.asarray(hilbert), xp.asarray(b)))
    backward = np.abs(hilbert @ x - b).max() / (np.abs(hilbert).sum(axis=1).max() * np.abs(x).max())
    assert backward <= 10 * n * np.finfo(np.float64).eps
    low_rank = np.random.default_rng(4).standard_normal((11, 3)) @ np.random.default_rng(5).standard_normal((3, 9))
    q, r = (np.asarray(v) for v in xp.linalg.qr(xp.asarray(low_rank)))
    assert np.abs(q @ r - low_rank).max() <= 100 * np.finfo(np.float64).eps * np.abs(low_rank).max()
    assert int(xp.linalg.matrix_rank(xp.asarray(low_rank))) == 3


def test_empty_matrices():
    for shape in [(0, 0), (2, 0, 0), (0, 9, 9)]:
        a = np.zeros(shape)
        assert np.asarray(xp.linalg.cholesky(xp.asarray(a))).shape == shape
        assert np.asarray(xp.linalg.inv(xp.asarray(a))).shape == shape
        np.testing.assert_array_equal(np.asarray(xp.linalg.det(xp.asarray(a))), np.linalg.det(a))
    q, r = xp.linalg.qr(xp.asarray(np.zeros((0, 9, 6))))
    assert q.shape == (0, 9, 6) and r.shape == (0, 6, 6)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40).flatmap(lambda m: st.permutations(list(range(m)))))
def test_swap_sequence_reorders_rows(order):
    """The row swaps (LAPACK's ipiv form) that realize a gather order, applied in sequence."""
    order = np.array(order, dtype=np.int64)
    rows = np.arange(order.shape[0])
    swaps = blocked.swap_sequence(order)
    for i, j in swaps:
        assert i < j
        rows[[i, j]] = rows[[j, i]]
    np.testing.assert_array_equal(rows, order)
    assert swaps.shape[0] <= max(0, int((order != np.arange(order.shape[0])).sum()) - 1)


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "float32", "float64", "complex128"])
@pytest.mark.parametrize("k", [0, 3])
def test_row_swap_kernel_moves_rows_of_every_dtype(dtype, k):
    rng = np.random.default_rng(7)
    a = rng.integers(-100, 100, (37, 1100)).astype(dtype)   # wider than one work item of columns
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.integers(-100, 100, a.shape)
    x = blocked._work_copy(xp.asarray(a))
    order = rng.permutation(37 - k)
    blocked._permute_rows("test", x, k, order)
    ref = a.copy()
    ref[k:] = a[k:][order]
    np.testing.assert_array_equal(np.asarray(x), ref)


def test_triangular_inverse():
    rng = np.random.default_rng(8)
    for n in (1, 5, 16, 17, 40, 128):
        low = np.tril(rng.standard_normal((2, n, n))) + 4 * np.eye(n)
        for t, lower in ((low, True), (np.swapaxes(low, -1, -2), False)):
            inv = blocked.tri_inv(t, lower)
            assert np.abs(inv - np.linalg.inv(t)).max() <= 1e-13 * np.abs(inv).max() * n
            assert np.all((np.tril(inv, -1) if not lower else np.triu(inv, 1)) == 0)


@pytest.mark.parametrize("device", ["cpu", "sim"])
@pytest.mark.parametrize("nrhs", [1, blocked.TRSV_MAX_RHS, blocked.TRSV_MAX_RHS + 1])
def test_solve_by_rows_and_blockwise_agree(device, nrhs):
    """Few right-hand sides substitute row by row (kernels.trsv), more go blockwise; both match
    NumPy, batched with a broadcast right-hand side."""
    rng = np.random.default_rng(nrhs)
    a = rng.standard_normal((3, 23, 23)) + 5 * np.eye(23)
    b = rng.standard_normal((23, nrhs))
    got = np.asarray(xp.linalg.solve(xp.asarray(a, device=device), xp.asarray(b, device=device)))
    ref = np.linalg.solve(a, b)
    assert np.abs(got - ref).max() <= 1e-12 * np.abs(ref).max()
    a32 = a[0].astype(np.float32)
    got32 = np.asarray(xp.linalg.solve(xp.asarray(a32, device=device), xp.asarray(b.astype(np.float32),
                                                                                    device=device)))
    assert got32.dtype == np.float32
    assert np.abs(got32 - ref[0]).max() <= 1e-4 * np.abs(ref[0]).max()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_panel_kernel_blocks_match_column_by_column(dtype):
    """The panel kernel (factored in blocks of kernels.lu_panel.BLOCK columns with delayed updates)
    gives the pivots and factors of the column-by-column reference (``_lu_cols``) for widths on
    both sides of the block edges, batched; its row exchanges (``pairs``) reproduce its order; a
    zero column leaves the rest factored as the reference does."""
    from egpu_array.kernels.lu_panel import BLOCK
    rng = np.random.default_rng(11)
    tol = 200 * np.finfo(dtype).eps
    for w in (1, BLOCK - 1, BLOCK, BLOCK + 1, 2 * BLOCK + 3, 41):
        for bsz in (1, 3):
            p = rng.standard_normal((bsz, w + 29, w)).astype(dtype)
            if w > BLOCK + 1:
                p[-1, :, BLOCK + 1] = 0                      # a zero pivot after the first block
            ref = np.swapaxes(p, -1, -2).copy()
            order_ref, swaps_ref = panels._lu_cols(ref)
            got = p.copy()
            order, swaps, pairs = panels._panel_lu(got)
            np.testing.assert_array_equal(order, order_ref)
            np.testing.assert_array_equal(swaps, swaps_ref)
            np.testing.assert_allclose(got, np.swapaxes(ref, -1, -2), rtol=tol, atol=tol * w)
            if bsz == 1:
                rows = np.arange(w + 29)
                for i, j in pairs:
                    rows[[i, j]] = rows[[j, i]]
                np.testing.assert_array_equal(rows, order[0])
            else:
                assert pairs is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("batch", [(), (2,)])
def test_lu_in_place_panels_reconstruct(monkeypatch, dtype, batch):
    """Panels wider than the kernel's block and not a multiple of it, factored in place on the
    cpu device (whole rows exchanged by the kernel) and as host copies on sim: P A = L U."""
    monkeypatch.setattr(blocked, "NB", 20)
    rng = np.random.default_rng(12)
    n = 61
    a = rng.standard_normal(batch + (n, n)).astype(dtype)
    for device in ("cpu", "sim"):
        f = blocked.lu(xp.asarray(a, device=device))
        lu = np.asarray(f.a).reshape(-1, n, n).astype(np.float64)
        perm = np.asarray(f.perm).reshape(-1, n)
        for t in range(lu.shape[0]):
            low = np.tril(lu[t], -1) + np.eye(n)
            rec = low @ np.triu(lu[t])
            ref = a.reshape(-1, n, n)[t][perm[t]].astype(np.float64)
            assert np.abs(rec - ref).max() <= 50 * n * np.finfo(dtype).eps * np.abs(ref).max()
            assert np.abs(np.tril(lu[t], -1)).max() <= 1 + 1e-6          # partial pivoting: |L| <= 1


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_in_place_triangular_solve(dtype):
    """kernels.trsm: ``A[k:e, e:] := L11^-1 A[k:e, e:]`` in the matrix's own buffer, for block
    heights on both sides of its row group and widths not a multiple of its column chunk; the
    rest of the matrix is untouched."""
    rng = np.random.default_rng(13)
    for n, k, e in ((40, 3, 4), (40, 0, 7), (75, 10, 35), (2 * panels.TRSM_CHUNK + 9, 5, 14)):
        a = rng.standard_normal((2, n, n))
        a[:, k:e, k:e] /= np.sqrt(e - k)                 # a well-conditioned unit lower triangle
        a = a.astype(dtype)
        x = xp.asarray(a)
        panels._trsm_in_place(x, k, e)
        got = np.asarray(x)
        low = np.tril(a[:, k:e, k:e], -1) + np.eye(e - k, dtype=dtype)
        ref = a.copy()
        ref[:, k:e, e:] = np.linalg.solve(low.astype(np.float64), a[:, k:e, e:].astype(np.float64))
        tol = 100 * (e - k) * np.finfo(dtype).eps * max(1.0, np.abs(ref).max())
        assert np.abs(got - ref).max() <= tol
        outside = np.ones((n, n), dtype=bool)
        outside[k:e, e:] = False
        np.testing.assert_array_equal(got[:, outside], a[:, outside])
