"""matmul, tensordot, vecdot, matrix_transpose against NumPy."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import egpu_array as xp

SHAPES = [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)), ((2, 1, 3, 4), (5, 4, 2)),
          ((7, 3, 4), (4, 6)), ((0, 4), (4, 3)), ((3, 0), (0, 2))]


@pytest.mark.parametrize("s1,s2", SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8", "complex64"])
def test_matmul(s1, s2, dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal(s1) * 4).astype(dtype)
    b = (rng.standard_normal(s2) * 4).astype(dtype)
    got = np.asarray(xp.asarray(a) @ xp.asarray(b))
    ref = a @ b
    assert got.shape == ref.shape and got.dtype == ref.dtype
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)


def test_matmul_errors_and_strided_inputs():
    with pytest.raises(ValueError):
        xp.asarray(np.ones((2, 3))) @ xp.asarray(np.ones((2, 3)))
    with pytest.raises(ValueError):
        xp.matmul(xp.asarray(1.0), xp.asarray(np.ones(2)))
    a = np.arange(30.0).reshape(5, 6)
    np.testing.assert_allclose(np.asarray(xp.asarray(a)[::2, ::-1] @ xp.asarray(a).T[::-1]),
                               a[::2, ::-1] @ a.T[::-1])


@settings(max_examples=30, deadline=None, derandomize=True)
@given(st.integers(0, 2), st.integers(1, 3), st.integers(1, 3))
def test_tensordot(n, extra1, extra2):
    rng = np.random.default_rng(n)
    common = (3, 2)[:n]
    a = rng.standard_normal((extra1, 2) + common)
    b = rng.standard_normal(common + (extra2,))
    np.testing.assert_allclose(np.asarray(xp.tensordot(xp.asarray(a), xp.asarray(b), axes=n)),
                               np.tensordot(a, b, axes=n))
    A = rng.standard_normal((2, 3, 4))
    B = rng.standard_normal((3, 4, 5))
    np.testing.assert_allclose(np.asarray(xp.tensordot(xp.asarray(A), xp.asarray(B), axes=([1, 2], [0, 1]))),
                               np.tensordot(A, B, axes=([1, 2], [0, 1])))


TENSORDOT_CASES = [((5, 6), (6, 7), 1), ((2, 3, 4), (3, 4, 5), 2), ((2, 3, 4), (4, 3, 5), ([1, 2], [1, 0])),
                   ((3, 4), (5, 4), ([1], [1])), ((4, 3), (4, 5), ([0], [0])), ((2, 3, 4), (4, 2), ([-1, 0], [0, 1])),
                   ((4,), (4, 3), 1), ((3, 4), (4,), 1), ((4,), (4,), 1), ((3, 2), (2, 3), 0), ((), (3,), 0),
                   ((3, 0), (0, 2), 1), ((0, 3), (3, 2), 1), ((2, 3), (3, 0), 1), ((2, 3, 4), (2, 3, 4), 3),
                   ((2, 1, 3), (1, 3, 2), 2)]


@pytest.mark.parametrize("s1,s2,axes", TENSORDOT_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int16", "uint8", "int64", "complex128"])
def test_tensordot_is_a_matmul(s1, s2, axes, dtype):
    """tensordot as one matmul of the flattened free and contracted axes (integers exact, with
    NumPy's wrap-around; permuted operands copied once), in every dtype and for empty axes."""
    rng = np.random.default_rng(len(s1) * 10 + len(s2))
    a = (rng.standard_normal(s1) * 40).astype(dtype)
    b = (rng.standard_normal(s2) * 40).astype(dtype)
    if dtype == "int64":
        a, b = a * (1 << 40), b * (1 << 30)  # products wrap around
    got = np.asarray(xp.tensordot(xp.asarray(a), xp.asarray(b), axes=axes))
    with np.errstate(over="ignore"):
        ref = np.tensordot(a, b, axes=axes)
    assert got.shape == ref.shape and got.dtype == ref.dtype
    if np.dtype(dtype).kind in "iu":
        np.testing.assert_array_equal(got, ref)
    else:
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-3)


def test_tensordot_runs_the_gemm(monkeypatch):
    """Contiguous float operands: tensordot(M, M, axes=1) is M @ M, one GEMM launch, no copies;
    mixed dtypes promote as matmul does; special values reach the result."""
    from egpu_array import _matmul
    rng = np.random.default_rng(2)
    m = rng.standard_normal((40, 40))
    xm = xp.asarray(m)
    plans, real = [], _matmul.plan
    monkeypatch.setattr(_matmul, "plan", lambda *a, **kw: plans.append(a) or real(*a, **kw))
    with xp.profile() as prof:
        got = np.asarray(xp.tensordot(xm, xm, axes=1))
    assert prof.launches == 1 and plans and plans[-1][1:4] == (40, 40, 40)
    np.testing.assert_allclose(got, m @ m, rtol=1e-12, atol=1e-12)
    with xp.profile() as prof:  # a lazy operand and an epilogue: still one launch
        got = np.asarray(xp.maximum(xp.tensordot(2 * xm, xm, axes=1) + 1, 0))
    assert prof.launches == 1
    np.testing.assert_allclose(got, np.maximum(2 * m @ m + 1, 0), rtol=1e-12, atol=1e-12)
    a32 = rng.standard_normal((3, 4)).astype(np.float32)
    got = xp.tensordot(xp.asarray(a32), xm[:4, :5], axes=1)
    assert got.dtype == xp.float64
    np.testing.assert_allclose(np.asarray(got), np.tensordot(a32, m[:4, :5], axes=1), rtol=1e-12)
    m[3, 2], m[5, 1] = np.nan, np.inf
    with np.errstate(invalid="ignore"):
        ref = np.tensordot(m, m, axes=([0], [1]))
    got = np.asarray(xp.tensordot(xp.asarray(m), xp.asarray(m), axes=([0], [1])))
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_allclose(got[np.isfinite(ref)], ref[np.isfinite(ref)], rtol=1e-12, atol=1e-12)


def test_tensordot_contracted_axes_are_not_broadcast():
    """The standard: contracted axes must have equal sizes (they are not broadcast); a length-1
    axis against a longer one is a ValueError, as in NumPy (it was summed as if broadcast)."""
    with pytest.raises(ValueError, match="tensordot: axis 1 of x1"):
        xp.tensordot(xp.ones((2, 1)), xp.ones((3, 2)), axes=1)
    with pytest.raises(ValueError, match="tensordot: axis 0 of x1"):
        xp.tensordot(xp.ones((3, 4)), xp.ones((1, 5)), axes=([0], [0]))
    np.testing.assert_allclose(np.asarray(xp.tensordot(xp.ones((2, 1)), xp.ones((1, 3)), axes=1)), np.ones((2, 3)))


def test_vecdot_and_matrix_transpose():
    rng = np.random.default_rng(1)
    c = rng.standard_normal((3, 4)) + 1j * rng.standard_normal((3, 4))
    d = rng.standard_normal((4,)) + 0j
    np.testing.assert_allclose(np.asarray(xp.vecdot(xp.asarray(c), xp.asarray(d))), np.sum(c.conj() * d, axis=-1))
    np.testing.assert_allclose(np.asarray(xp.vecdot(xp.asarray(c), xp.asarray(c), axis=0)),
                               np.sum(c.conj() * c, axis=0))
    np.testing.assert_array_equal(np.asarray(xp.matrix_transpose(xp.asarray(c))), c.T)


@pytest.mark.parametrize("contract", [lambda a, b: xp.matmul(a, b[:, 0]), lambda a, b: xp.matmul(a[0], b[:, 0]),
                                      lambda a, b: xp.matmul(a[0], b), lambda a, b: xp.tensordot(a, b, axes=1),
                                      lambda a, b: xp.vecdot(a[0], a[1])])
def test_empty_contractions_are_positive_zero(contract):
    """A contraction over an empty axis is +0, as every empty sum (the vector paths of matmul and
    tensordot gave -0.0: 1/x was -inf)."""
    a, b = xp.ones((3, 0)), xp.ones((0, 2))
    got = np.asarray(contract(a, b))
    assert (got == 0).all() and not np.signbit(got).any()
