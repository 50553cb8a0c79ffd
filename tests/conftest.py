"""Shared hypothesis settings and strategies for the namespace tests (NumPy is the oracle)."""
from __future__ import annotations

import os

# scikit-learn's array-API dispatch and SciPy's array-API paths need this before scipy is imported
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, Phase, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

# No "explain" phase: its tracing makes a failing example take minutes. EGPU_HYPOTHESIS_PROFILE=quick
# also skips shrinking (for a fast first look at failures).
settings.register_profile(
    "egpu", max_examples=25, derandomize=True, deadline=None, print_blob=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                           HealthCheck.filter_too_much])
settings.register_profile("quick", parent=settings.get_profile("egpu"),
                          phases=[Phase.explicit, Phase.generate])
# EGPU_HYPOTHESIS_PROFILE=deep: 400 examples from a random seed each run (bug hunting, not CI)
settings.register_profile("deep", parent=settings.get_profile("egpu"), max_examples=400, derandomize=False)
settings.load_profile(os.environ.get("EGPU_HYPOTHESIS_PROFILE", "egpu"))

BOOL = ("bool",)
SIGNED = ("int8", "int16", "int32", "int64")
UNSIGNED = ("uint8", "uint16", "uint32", "uint64")
INTEGER = SIGNED + UNSIGNED
REAL_FLOAT = ("float32", "float64")
COMPLEX = ("complex64", "complex128")
FLOAT = REAL_FLOAT + COMPLEX
REAL = INTEGER + REAL_FLOAT
NUMERIC = REAL + COMPLEX
ALL = BOOL + NUMERIC


def _float_specials(width: int):
    tiny = float(np.finfo(np.float32 if width == 32 else np.float64).smallest_subnormal)
    big = float(np.finfo(np.float32 if width == 32 else np.float64).max)
    return st.sampled_from([0.0, -0.0, np.inf, -np.inf, np.nan, tiny, -tiny, big, -big, 1.0, -1.0, 0.5])


def elements(dtype: str, finite: bool = False, min_value=None, max_value=None, nonzero=False):
    """Scalar values of ``dtype`` with its special values (nan, +-inf, -0.0, subnormals, min/max)."""
    if nonzero:
        return elements(dtype, finite, min_value, max_value).filter(lambda v: v != 0)
    if dtype == "bool":
        return st.booleans()
    if dtype in INTEGER:
        info = np.iinfo(dtype)
        lo = info.min if min_value is None else max(info.min, min_value)
        hi = info.max if max_value is None else min(info.max, max_value)
        return st.one_of(st.sampled_from([lo, hi, 0]), st.integers(lo, hi), st.integers(max(lo, -20), min(hi, 20)))
    if dtype in REAL_FLOAT:
        width = 32 if dtype == "float32" else 64
        bounded = min_value is not None or max_value is not None
        fl = st.floats(width=width, allow_nan=not (finite or bounded),
                       allow_infinity=not (finite or bounded), min_value=min_value, max_value=max_value)
        if bounded:
            return fl
        small = st.floats(-10, 10, width=width)
        if finite:
            return st.one_of(fl, small)
        return st.one_of(fl, small, _float_specials(width))
    width = 64 if dtype == "complex64" else 128
    fw = 32 if width == 64 else 64
    if min_value is not None:
        part = st.floats(min_value, max_value, width=fw)
        return st.builds(complex, part, part)
    if finite:
        # moderate finite parts: products stay finite, so results do not hinge on how a library
        # recovers infinities from inf - inf (where NumPy and C99 Annex G differ)
        part = st.one_of(st.floats(-2.0 ** 50, 2.0 ** 50, width=fw), st.floats(-4, 4, width=fw),
                         st.sampled_from([0.0, -0.0]))
        return st.builds(complex, part, part)
    part = elements("float32" if width == 64 else "float64")
    return st.one_of(st.complex_numbers(width=width, allow_nan=True, allow_infinity=True),
                     st.builds(complex, part, part))


def np_array(draw, dtype: str, shape, **kw) -> np.ndarray:
    n = int(np.prod(shape)) if shape else 1
    vals = draw(st.lists(elements(dtype, **kw), min_size=n, max_size=n))
    return np.array(vals, dtype=dtype).reshape(shape)


def to_xp(xp, a: np.ndarray):
    """``xp.asarray(a)``; 0-d arrays go through a 1-element array while asarray makes them 1-D
    (np.ascontiguousarray in _transfer.from_host; see test_asarray_keeps_zero_dim)."""
    if a.ndim == 0:
        return xp.asarray(a.reshape(1))[0]
    return xp.asarray(a)


def viewed(draw, xp, dtype: str, shape, **kw):
    """(egpu array, equal numpy array) of ``shape``, often a strided/reversed/transposed view."""
    shape = tuple(shape)
    kinds = ["plain", "reverse", "step2"]
    if len(shape) >= 2:
        kinds.append("mT")
    if len(shape) == 2:
        kinds.append("T")
    if not shape:
        kinds = ["plain"]
    kind = draw(st.sampled_from(kinds))
    if kind == "step2":
        base_shape = (2 * shape[0],) + shape[1:]
    elif kind in ("mT", "T"):
        base_shape = shape[:-2] + (shape[-1], shape[-2])
    else:
        base_shape = shape
    base = np_array(draw, dtype, base_shape, **kw)
    x = to_xp(xp, base)
    if kind == "step2":
        x, base = x[::2], base[::2]
    elif kind == "reverse":
        x, base = x[::-1], base[::-1]
    elif kind == "mT":
        x, base = x.mT, np.swapaxes(base, -1, -2)
    elif kind == "T":
        x, base = x.T, base.T
    assert x.shape == base.shape == shape
    return x, base


@pytest.fixture
def set_config_env(monkeypatch):
    """``set_config_env(NAME, value)``: set an EGPU_ARRAY_* variable for this test and re-read the
    configuration (``config()`` reads the environment once per process); restored afterwards."""
    from egpu_array._info import config

    def set_env(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        config.cache_clear()
    yield set_env
    monkeypatch.undo()
    config.cache_clear()
