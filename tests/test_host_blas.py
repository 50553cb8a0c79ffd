"""NumPy's OpenBLAS is held to one thread inside the blocked factorizations and restored after."""
import numpy as np
import pytest

import egpu_array as xp
from egpu_array import _host_blas


def _controls():
    controls = _host_blas._controls()
    if controls is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS found next to NumPy")
    return controls


def test_single_threaded_sets_one_thread_and_restores(monkeypatch):
    get, put = _controls()
    before = get()
    put(2)
    try:
        with _host_blas.single_threaded():
            assert get() == 1
            with _host_blas.single_threaded():          # nested: still one, restored only at the end
                assert get() == 1
            assert get() == 1
        assert get() == 2
    finally:
        put(before)


def test_blocked_factorizations_run_with_one_blas_thread(monkeypatch):
    """Inside a blocked factorization's host steps NumPy's BLAS sees one thread; the caller's
    setting is back afterwards, also after an error."""
    get, put = _controls()
    from egpu_array import _linalg_blocked as blocked
    seen = []
    panel = blocked._panel_lu

    def spy(p):
        seen.append(get())
        return panel(p)
    monkeypatch.setattr(blocked, "_panel_lu", spy)
    monkeypatch.setattr(blocked, "NB", 4)
    before = get()
    put(2)
    try:
        a = np.random.default_rng(0).standard_normal((9, 9))
        x = np.asarray(xp.linalg.solve(xp.asarray(a, device="sim"), xp.asarray(np.ones(9), device="sim")))
        assert np.abs(a @ x - 1).max() < 1e-10
        assert seen and set(seen) == {1}
        assert get() == 2
        with pytest.raises(np.linalg.LinAlgError):
            xp.linalg.cholesky(xp.asarray(-np.eye(9)))
        assert get() == 2
    finally:
        put(before)
