"""Plans of reductions over buffer leaves (_schedule_reduce._PLANS): a repeated ``sum(x)`` of the
same layout refills the pointers, the divisor and the partials of the slots the general path
built; results must be those of the general path for new data, offsets and devices."""
import numpy as np
import pytest

import egpu_array as xp
from egpu_array import _schedule_reduce
from egpu_array.kernels import cache


@pytest.mark.parametrize("name", ["sum", "max", "min", "mean", "prod", "cumulative_sum"])
@pytest.mark.parametrize("shape,axis", [((300000,), None), ((700, 500), 0), ((700, 500), 1), ((6, 5), 1)])
def test_plan_reuse_new_data_and_offsets(name, shape, axis):
    """The same layout again with other data, and views at other offsets, as NumPy says."""
    if name == "cumulative_sum" and axis is None:
        axis = 0
    rng = np.random.default_rng(len(shape))
    f, g = getattr(xp, name), getattr(np, "cumsum" if name == "cumulative_sum" else name)
    for k in range(3):
        h = rng.random((shape[0] + 2,) + shape[1:]) + 0.5
        if name == "prod":  # (no overflow over 300000 values)
            h = 1 + (h - 1) * 1e-3
        base = xp.asarray(h)
        for off in (0, 1, 2):  # views at three offsets: one plan, three input pointers
            x, hx = base[off:off + shape[0]], h[off:off + shape[0]]
            np.testing.assert_allclose(np.asarray(f(x, axis=axis)), g(hx, axis=axis), rtol=1e-9)


def test_plan_is_taken_and_cleared(monkeypatch):
    """The second call takes the plan (no kernel lookup; the recorders still hear of the spec),
    and clearing the kernel cache's memory forgets it."""
    h = np.arange(3000, dtype=np.float32).reshape(30, 100)
    x = xp.asarray(h)
    np.testing.assert_allclose(np.asarray(xp.mean(x, axis=1)), h.mean(axis=1), rtol=1e-6)
    assert _schedule_reduce._PLANS
    seen = []

    def no_lookup(device, spec):
        raise AssertionError("the planned reduction looked its kernel up again")
    monkeypatch.setattr(_schedule_reduce, "get_program", no_lookup)
    cache.recorders.append(lambda d, s: seen.append(s))
    try:
        np.testing.assert_allclose(np.asarray(xp.mean(x, axis=1)), h.mean(axis=1), rtol=1e-6)
    finally:
        cache.recorders.pop()
    assert len(seen) == 1 and seen[0].kind == "reduce"
    monkeypatch.undo()
    cache.clear_memory_cache()
    assert not _schedule_reduce._PLANS


def test_plan_keys_differ_by_divisor_and_keepdims():
    """mean and sum, keepdims or not, of the same leaf: different plans, right results."""
    h = np.random.default_rng(1).random((50, 40))
    x = xp.asarray(h)
    for _ in range(2):
        np.testing.assert_allclose(np.asarray(xp.sum(x, axis=0)), h.sum(axis=0), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(xp.mean(x, axis=0)), h.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(np.asarray(xp.mean(x, axis=0, keepdims=True)), h.mean(axis=0, keepdims=True),
                                   rtol=1e-12)
        np.testing.assert_allclose(np.asarray(xp.var(x, axis=0, correction=1)), h.var(axis=0, ddof=1), rtol=1e-10)


def test_axis_forms_shapes_and_errors():
    """The short paths of the axis and shape handling (one int axis, the whole array) give
    NumPy's shapes and values for every axis form; bad axes get errors naming the function."""
    h = np.random.default_rng(5).random((3, 4, 5))
    x = xp.asarray(h)
    for name in ("sum", "max", "mean"):
        f, g = getattr(xp, name), getattr(np, name)
        for axis in (None, 0, 1, 2, -1, -3, (0, 2), (2, 0), (0, 1, 2), ()):
            for keepdims in (False, True):
                got, ref = np.asarray(f(x, axis=axis, keepdims=keepdims)), g(h, axis=axis, keepdims=keepdims)
                assert got.shape == ref.shape, (name, axis, keepdims)
                np.testing.assert_allclose(got, ref, rtol=1e-12)
        for axis, err in ((3, IndexError), (-4, IndexError), (True, TypeError), (1.0, TypeError),
                          ((0, 0), ValueError)):
            with pytest.raises(err, match=f"^{name}: "):
                f(x, axis=axis)
    s = xp.asarray(np.float64(2.5))
    assert np.asarray(xp.max(s, axis=())).shape == () and float(np.asarray(xp.mean(s))) == 2.5


def test_plan_partials_reused_across_threads():
    """Chunked whole-array sums of one layout (one plan, its partials buffer kept for the next
    call) from two Python threads at once, on different data: every result is its own."""
    import threading
    rng = np.random.default_rng(9)
    hs = [rng.random(1_500_000) for _ in range(4)]
    xs = [xp.asarray(h) for h in hs]
    refs = [np.sum(h) for h in hs]
    errors = []

    def work(k):
        for i in range(40):
            j = (k + i) % 4
            got = float(np.asarray(xp.sum(xs[j])))
            if abs(got - refs[j]) > 1e-9 * abs(refs[j]):
                errors.append((k, i, got, refs[j]))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    key = next(k for k in _schedule_reduce._PLANS if k[7] == (1_500_000,) and k[0] == "sum")
    spares = _schedule_reduce._PLANS[key].spares
    assert spares is None or spares  # (cpu devices) the partials went back to the plan


def test_plan_partials_held_by_a_call_are_not_shared():
    """While one call holds the plan's partials buffer (taken from ``spares``), another call of
    the plan gets a buffer of its own, and the buffers return to the plan afterwards."""
    rng = np.random.default_rng(10)
    h1, h2 = rng.random(400_000), rng.random(400_000)
    x1, x2 = xp.asarray(h1), xp.asarray(h2)
    for _ in range(2):  # the first call makes the plan, the second leaves its partials there
        np.testing.assert_allclose(float(np.asarray(xp.sum(x1))), np.sum(h1), rtol=1e-12)
    key = next(k for k in _schedule_reduce._PLANS if k[7] == (400_000,) and k[0] == "sum")
    plan = _schedule_reduce._PLANS[key]
    if plan.spares is None:
        pytest.skip("partials stay with their plan on cpu devices only")
    held = plan.spares.pop()              # as a call in flight on another thread would
    np.testing.assert_allclose(float(np.asarray(xp.sum(x2))), np.sum(h2), rtol=1e-12)
    assert len(plan.spares) == 1 and plan.spares[0] is not held
    plan.spares.append(held)
    np.testing.assert_allclose(float(np.asarray(xp.mean(x1))), np.mean(h1), rtol=1e-12)
