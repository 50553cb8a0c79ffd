"""Random-input fuzzing against NumPy and against crashes (seeded: the same calls every run).

- Every namespace function (and linalg / fft) called with random mixes of arrays, scalars, None,
  strings, huge ints and tuples must return or raise one of the clean error types; anything else
  (an AttributeError, an assertion, a crash of the process) is a defect.
- Indexing keys mixing ints, slices, None, Ellipsis, integer and boolean arrays, floats and huge
  ints, read and written, against NumPy: equal results where both accept; where NumPy refuses,
  ours refuses too, or (index arrays out of range that select nothing: unspecified by the
  standard) returns an empty result.

``EGPU_FUZZ_N`` multiplies the number of calls (bug hunting; CI runs the default). This suite
found: a float scalar taken as an int next to index arrays, Python ints next to index arrays
unchecked where the result is empty.
"""
from __future__ import annotations

import os
import random
import warnings

import numpy as np
import pytest

import egpu_array as xp

SCALE = int(os.environ.get("EGPU_FUZZ_N", "1"))
ARRAY = type(xp.asarray(0))
#: what bad input may raise
CLEAN = (TypeError, ValueError, IndexError, OverflowError, ZeroDivisionError, BufferError, xp.DeviceError,
         np.linalg.LinAlgError)
KWARGS = ["axis", "keepdims", "dtype", "copy", "k", "n", "norm", "side", "sorter", "descending", "correction",
          "include_initial", "device", "ord", "shape", "append", "prepend", "axes", "offset", "upper",
          "full_matrices", "rtol", "stable", "max", "min", "fill_value", "endpoint", "num", "step",
          "indexing", "s"]


def _pool():
    arrays = [np.array(3.5), np.zeros((0,), np.int32), np.arange(6, dtype=np.int64).reshape(2, 3),
              np.array([True, False]), np.array([1 + 2j, 3j], np.complex64),
              np.arange(24, dtype=np.float32).reshape(2, 3, 4), np.array([np.nan, -0.0, np.inf]),
              np.arange(5, dtype=np.uint8), np.eye(3)]
    return [xp.asarray(a) for a in arrays] + [
        0, 1, -1, 2, -7, 2**63, 2**64, -2**70, 1.5, float("nan"), True, None, "x", (0, 1), (1, 1), (), [1, 2],
        (-1,), (0, 5), 1j, slice(None), xp.float32, xp.int8, xp.bool, "cpu"]


def _materialize(r) -> None:
    for v in (r if isinstance(r, tuple) else (r,)):
        if isinstance(v, ARRAY):
            np.asarray(v)


@pytest.mark.parametrize("seed", range(4))
def test_functions_reject_garbage_cleanly(seed):
    rnd = random.Random(seed)
    pool = _pool()
    funcs = [getattr(xp, n) for n in xp.__all__ if callable(getattr(xp, n)) and n not in ("set_printoptions",)]
    funcs += [getattr(xp.linalg, n) for n in xp.linalg.__all__] + [getattr(xp.fft, n) for n in xp.fft.__all__]
    bad = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(1500 * SCALE):
            f = rnd.choice(funcs)
            args = [rnd.choice(pool) for _ in range(rnd.randint(0, 3))]
            kw = {k: rnd.choice(pool) for k in rnd.sample(KWARGS, rnd.randint(0, 2))}
            try:
                _materialize(f(*args, **kw))
            except CLEAN:
                pass
            except Exception as e:  # noqa: BLE001 (the point: nothing else may escape)
                bad.append(f"{f.__name__}({args!r:.80}, {kw!r:.60}): {type(e).__name__}: {e}")
    assert not bad, bad[:5]


def _key_atom(rnd):
    r = rnd.random()
    if r < 0.25:
        return rnd.randint(-5, 5)
    if r < 0.5:
        return slice(rnd.choice([None, -5, -1, 0, 1, 2, 9]), rnd.choice([None, -5, -1, 0, 2, 9]),
                     rnd.choice([None, -2, -1, 1, 2, 3]))
    if r < 0.6:
        return None
    if r < 0.65:
        return Ellipsis
    if r < 0.8:
        return np.array(rnd.sample(range(-4, 4), rnd.randint(0, 3)), dtype=np.int64)
    if r < 0.9:
        return np.array([rnd.random() < 0.5 for _ in range(rnd.choice([2, 3, 4]))])
    return rnd.choice([2**63, -2**63 - 1, 1.0, True])


def _ours(key):
    wrap = lambda k: xp.asarray(k) if isinstance(k, np.ndarray) else k  # noqa: E731
    return tuple(wrap(k) for k in key) if isinstance(key, tuple) else wrap(key)


def _attempt(fn):
    try:
        return True, fn()
    except Exception as e:  # noqa: BLE001
        return False, e


@pytest.mark.parametrize("seed", range(3))
def test_index_keys_against_numpy(seed):
    rnd = random.Random(seed)
    base = np.arange(24, dtype=np.float64).reshape(2, 3, 4)
    problems = []
    for _ in range(600 * SCALE):
        key = tuple(_key_atom(rnd) for _ in range(rnd.randint(1, 4)))
        key = key[0] if rnd.random() < 0.2 else key
        np_ok, want = _attempt(lambda: base[key])
        ok, got = _attempt(lambda: np.asarray(xp.asarray(base)[_ours(key)]))
        if not ok and not isinstance(got, CLEAN):
            problems.append((key, "get raised", repr(got)))
        elif ok and np_ok and (got.shape != want.shape or not np.array_equal(got, want)):
            problems.append((key, "get differs", got.shape, want.shape))
        elif ok and not np_ok and got.size:
            problems.append((key, "get accepted what NumPy refused", repr(want)))
        a, x = base.copy(), xp.asarray(base)

        def assign():
            a[key] = -1.0
        np_ok, _ = _attempt(assign)

        def assign_ours():
            x[_ours(key)] = -1.0
        ok, err = _attempt(assign_ours)
        if not ok and not isinstance(err, CLEAN):
            problems.append((key, "set raised", repr(err)))
        elif ok and np_ok and not np.array_equal(np.asarray(x), a):
            problems.append((key, "set differs"))
    assert not problems, problems[:5]


def _values(rng, dtype: str, shape):
    """Random values of ``dtype``: few distinct ones or the full range, floats with NaN, +-0, +-inf."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype[0] in "iu":
        if rng.random() < 0.3:
            return rng.integers(0, 5, shape).astype(dtype)
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if dtype.startswith("complex"):
        return (rng.integers(-3, 3, shape) + 1j * rng.integers(-3, 3, shape)).astype(dtype)
    a = rng.standard_normal(shape).astype(dtype) if rng.random() < 0.6 else rng.integers(-5, 5, shape).astype(dtype)
    if a.size and rng.random() < 0.4:
        at = rng.integers(0, a.size, max(1, a.size // 50))
        a.flat[at] = rng.choice(np.array([np.nan, -0.0, 0.0, np.inf, -np.inf], dtype=dtype), at.size)
    return a


def _shape(rng, max_log10: float):
    nd = int(rng.integers(1, 4))
    total = 10 ** rng.uniform(0, max_log10)
    return tuple(max(1, int(round(total ** w))) for w in rng.dirichlet(np.ones(nd)))


SORT_DTYPES = ["float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "bool",
               "complex64"]
#: row lengths next to the sorting networks' sizes and the radix sort's thresholds
ROW_LENGTHS = [7, 8, 9, 63, 64, 65, 127, 128, 129, 255, 256, 511, 512, 513, 1023, 1024, 1025, 4095, 4096, 8193]


@pytest.mark.parametrize("seed", range(3))
def test_sorting_against_numpy(seed):
    """sort / argsort (stable, both directions) along a random axis of random views, unique_values
    and nonzero, with row lengths across the networks' and the radix sorts' thresholds."""
    rng = np.random.default_rng(seed)
    problems = []
    for it in range(40 * SCALE):
        dtype = str(rng.choice(SORT_DTYPES))
        shape = (int(rng.integers(1, 300)), int(rng.choice(ROW_LENGTHS))) if rng.random() < 0.3 else _shape(rng, 5.5)
        a = _values(rng, dtype, shape)
        x = xp.asarray(a)
        if a.ndim > 1 and rng.random() < 0.3:  # a transposed view
            a, x = a.T, xp.permute_dims(x, tuple(range(a.ndim))[::-1])
        axis, desc = int(rng.integers(-a.ndim, a.ndim)), bool(rng.random() < 0.4)
        asc = np.argsort(a, axis=axis, kind="stable")
        # stable descending: the stable ascending order of the reversed axis, reversed back
        rev = np.flip(a.shape[axis] - 1 - np.argsort(np.flip(a, axis=axis), axis=axis, kind="stable"), axis=axis)
        want_idx = rev if desc else asc
        got_idx = np.asarray(xp.argsort(x, axis=axis, descending=desc))
        got = np.asarray(xp.sort(x, axis=axis, descending=desc))
        want = np.take_along_axis(a, want_idx, axis=axis)
        if not np.array_equal(got_idx, want_idx):
            problems.append((it, "argsort", dtype, shape, axis, desc))
        if not np.array_equal(got, want, equal_nan=dtype[0] in "fc"):
            problems.append((it, "sort", dtype, shape, axis, desc))
        uniq = np.sort(np.asarray(xp.unique_values(x)))
        if not np.array_equal(uniq, np.unique(a, equal_nan=False), equal_nan=dtype[0] in "fc") \
                and not (dtype[0] in "fc" and np.isnan(a).any()):  # (NaNs: each is distinct)
            problems.append((it, "unique_values", dtype, shape))
        if not all(np.array_equal(np.asarray(g), w) for g, w in zip(xp.nonzero(x), np.nonzero(a))):
            problems.append((it, "nonzero", dtype, shape))
    assert not problems, problems[:5]


REDUCTIONS = ["sum", "max", "min", "mean", "var", "std", "prod", "all", "any", "argmax", "argmin", "count_nonzero",
              "cumulative_sum"]


def _reduce_case(rng, op: str, dtype: str, a, x):
    """(ours, NumPy's) for ``op`` over a random axis choice, or None when the case is not one."""
    nd = a.ndim
    k = int(rng.integers(0, nd + 1))
    axis = None if k == 0 else tuple(sorted(rng.choice(nd, k, replace=False).tolist()))
    keep = bool(rng.random() < 0.3)
    reduced = a.size if axis is None else int(np.prod([a.shape[d] for d in axis]))
    if op in ("argmax", "argmin", "cumulative_sum"):
        if axis is not None and len(axis) != 1 or (op == "cumulative_sum" and axis is None and nd > 1):
            return None
        ax = axis[0] if axis else None
        if op == "cumulative_sum":
            acc = {"int32": np.int64, "uint8": np.uint64, "bool": None}.get(dtype)
            return xp.cumulative_sum(x, axis=ax), np.cumulative_sum(a, axis=ax, dtype=acc)
        if reduced == 0:
            return None
        return getattr(xp, op)(x, axis=ax, keepdims=keep), getattr(np, op)(a, axis=ax, keepdims=keep)
    if op in ("max", "min") and reduced == 0:
        return None
    if op == "prod" and reduced > 20:  # (products of more overflow)
        return None
    got = getattr(xp, op)(x, axis=axis, keepdims=keep)
    kw = {"dtype": np.asarray(got).dtype} if op in ("sum", "prod") else {}
    return got, getattr(np, op)(a, axis=axis, keepdims=keep, **kw)


@pytest.mark.parametrize("seed", range(3))
def test_reductions_against_numpy(seed):
    """Reductions over random axis sets of random views (transposed, strided, reversed) of
    random sizes up to ~1e5 (the row, column, chunked and packed kernels)."""
    rng = np.random.default_rng(100 + seed)
    problems = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for it in range(150 * SCALE):
            dtype = str(rng.choice(["float32", "float64", "int32", "int64", "uint8", "bool", "complex64"]))
            op = str(rng.choice(REDUCTIONS))
            if dtype == "bool" and op not in ("all", "any", "count_nonzero") \
                    or dtype == "complex64" and op in ("max", "min", "argmax", "argmin", "var", "std") \
                    or dtype[0] not in "fc" and op in ("mean", "var", "std"):
                continue
            base = _values(rng, dtype, _shape(rng, 5.0))
            a, x = base, xp.asarray(base)
            if a.ndim > 1 and rng.random() < 0.4:
                perm = tuple(rng.permutation(a.ndim).tolist())
                a, x = np.transpose(a, perm), xp.permute_dims(x, perm)
            if rng.random() < 0.5:
                key = tuple(slice(None, None, int(rng.choice([1, 2, -1, 3]))) for _ in range(a.ndim))
                a, x = a[key], x[key]
            case = _reduce_case(rng, op, dtype, a, x)
            if case is None:
                continue
            got, want = np.asarray(case[0]), np.asarray(case[1])
            if got.shape != want.shape:
                problems.append((it, op, dtype, a.shape, "shape", got.shape, want.shape))
            elif got.dtype.kind in "fc":
                finite = a[np.isfinite(a)] if a.size else a
                scale = float(np.abs(finite).max()) if finite.size else 1.0
                tol = (1e-4 if got.dtype in (np.float32, np.complex64) else 1e-9) * max(1.0, scale) * np.sqrt(max(1, a.size))
                if not np.allclose(got, want, rtol=1e-3 if op == "prod" else 1e-4, atol=tol, equal_nan=True):
                    problems.append((it, op, dtype, a.shape, "values"))
            elif not np.array_equal(got, want):
                problems.append((it, op, dtype, a.shape, "values"))
    assert not problems, problems[:5]
