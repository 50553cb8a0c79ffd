"""The linalg extension against numpy.linalg, with reconstruction checks."""
import numpy as np
import pytest

import egpu_array as xp

RNG = np.random.default_rng(0)


def _spd(n, batch=()):
    a = RNG.standard_normal(batch + (n, n))
    return a @ np.swapaxes(a, -1, -2) + n * np.eye(n)


def test_norms_trace_diagonal_outer_cross():
    a = RNG.standard_normal((2, 4, 5))
    x = xp.asarray(a)
    for ord in (2, 1, np.inf, -np.inf, 0, 3):
        np.testing.assert_allclose(np.asarray(xp.linalg.vector_norm(x, axis=-1, ord=ord)),
                                   np.linalg.norm(a, ord=ord, axis=-1))
    for ord in ("fro", 1, -1, np.inf, -np.inf, 2, -2, "nuc"):
        np.testing.assert_allclose(np.asarray(xp.linalg.matrix_norm(x, ord=ord)),
                                   np.linalg.norm(a, ord=ord, axis=(-2, -1)), rtol=1e-10)
    for k in (-2, 0, 1, 7):
        np.testing.assert_array_equal(np.asarray(xp.linalg.diagonal(x, offset=k)),
                                      np.diagonal(a, offset=k, axis1=-2, axis2=-1))
        np.testing.assert_allclose(np.asarray(xp.linalg.trace(x, offset=k)), np.trace(a, offset=k, axis1=-2, axis2=-1))
    u, v = RNG.standard_normal(3), RNG.standard_normal(4)
    np.testing.assert_allclose(np.asarray(xp.linalg.outer(xp.asarray(u), xp.asarray(v))), np.outer(u, v))
    p, q = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 3))
    np.testing.assert_allclose(np.asarray(xp.linalg.cross(xp.asarray(p), xp.asarray(q))), np.cross(p, q))


@pytest.mark.parametrize("shape", [(1, 0), (0, 1), (0, 0), (2, 0, 3)])
@pytest.mark.parametrize("ord", ["fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf])
def test_matrix_norm_of_empty_matrices(shape, ord):
    """As NumPy: the largest-type norms (1, 2, inf, fro, nuc) of empty matrices are 0 (ord 1 and
    2 raised on some shapes), the smallest-type ones raise where there is nothing to take the
    smallest of."""
    a = np.zeros(shape, np.float32)
    try:
        expected = np.linalg.matrix_norm(a, ord=ord)
    except ValueError:
        with pytest.raises(ValueError):
            xp.linalg.matrix_norm(xp.asarray(a), ord=ord)
        return
    for keepdims in (False, True):
        got = xp.linalg.matrix_norm(xp.asarray(a), ord=ord, keepdims=keepdims)
        assert got.dtype == xp.float32
        np.testing.assert_array_equal(np.asarray(got), np.linalg.matrix_norm(a, ord=ord, keepdims=keepdims))


def test_matrix_power():
    a = RNG.standard_normal((2, 3, 3))
    for n in (0, 1, 2, 5, -2):
        np.testing.assert_allclose(np.asarray(xp.linalg.matrix_power(xp.asarray(a), n)),
                                   np.linalg.matrix_power(a, n), rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_decompositions_reconstruct(dtype):
    eps = np.finfo(dtype).eps
    a = RNG.standard_normal((3, 6, 4)).astype(dtype)
    x = xp.asarray(a)
    q, r = xp.linalg.qr(x)
    assert np.linalg.norm(np.asarray(q @ r) - a) / np.linalg.norm(a) < 50 * eps * 6
    u, s, vh = xp.linalg.svd(x, full_matrices=False)
    rec = np.asarray(u) * np.asarray(s)[..., None, :] @ np.asarray(vh)
    assert np.linalg.norm(rec - a) / np.linalg.norm(a) < 50 * eps * 6
    spd = _spd(5, (2,)).astype(dtype)
    l = np.asarray(xp.linalg.cholesky(xp.asarray(spd)))
    assert np.linalg.norm(l @ np.swapaxes(l, -1, -2) - spd) / np.linalg.norm(spd) < 50 * eps * 5
    w, v = xp.linalg.eigh(xp.asarray(spd))
    rec = np.asarray(v) * np.asarray(w)[..., None, :] @ np.swapaxes(np.asarray(v), -1, -2)
    assert np.linalg.norm(rec - spd) / np.linalg.norm(spd) < 100 * eps * 5
    b = RNG.standard_normal((2, 5, 2)).astype(dtype)
    sol = np.asarray(xp.linalg.solve(xp.asarray(spd), xp.asarray(b)))
    np.testing.assert_allclose(spd @ sol, b, rtol=1e-3 if dtype == "float32" else 1e-9,
                               atol=1e-3 if dtype == "float32" else 1e-9)
    np.testing.assert_allclose(np.asarray(xp.linalg.det(xp.asarray(spd))), np.linalg.det(spd), rtol=1e-4)
    sign, logdet = xp.linalg.slogdet(xp.asarray(spd))
    np.testing.assert_allclose(np.asarray(logdet), np.linalg.slogdet(spd)[1], rtol=1e-4)
    np.testing.assert_allclose(np.asarray(xp.linalg.inv(xp.asarray(spd))) @ spd, np.broadcast_to(np.eye(5), spd.shape),
                               atol=1e-3 if dtype == "float32" else 1e-10)
    assert int(xp.linalg.matrix_rank(xp.asarray(np.outer(np.arange(4.0), np.arange(3.0)).astype(dtype)))) == 1


def test_singular_inputs_raise():
    with pytest.raises(np.linalg.LinAlgError):
        xp.linalg.inv(xp.asarray(np.zeros((3, 3))))
    with pytest.raises(ValueError):
        xp.linalg.det(xp.asarray(np.zeros((2, 3))))
    with pytest.raises(TypeError):
        xp.linalg.cholesky(xp.asarray(np.eye(2, dtype=np.int64)))


def test_eig_and_eigvals():
    a = RNG.standard_normal((2, 4, 4)).astype(np.float32)
    w, v = xp.linalg.eig(xp.asarray(a))
    assert w.dtype == xp.complex64 and v.dtype == xp.complex64 and w.shape == (2, 4)
    wn, vn = np.asarray(w), np.asarray(v)
    np.testing.assert_allclose(a @ vn, vn * wn[..., None, :], rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(np.sort_complex(np.asarray(xp.linalg.eigvals(xp.asarray(a))).ravel()),
                               np.sort_complex(wn.ravel()), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", ["cpu", "sim"])
@pytest.mark.parametrize("n", [3, 300])
def test_solve_shape_errors_name_linalg_solve(device, n):
    """Mismatched right-hand sides are refused before anything runs, with our message at every
    size (below 300 it was NumPy's gufunc message, after copying both operands to the host)."""
    a = xp.asarray(np.eye(n), device=device)
    for shape in ((n + 1,), (n + 1, 2), (5, n, 1), ()):
        with xp.profile() as prof, pytest.raises(ValueError, match="linalg.solve"):
            xp.linalg.solve(a if shape[:1] != (5,) else xp.stack([a, a]), xp.ones(shape, device=device))
        assert prof.bytes_from_device == 0
