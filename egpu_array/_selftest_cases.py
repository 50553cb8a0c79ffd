"""The cases of ``python -m egpu_array selftest``: one or more per namespace function, as data.

A :class:`Case` makes NumPy inputs, calls the same code on ``egpu_array`` (inputs on the chosen
device) and on ``array_api_compat.numpy`` (the oracle), and the runner compares the results. The
runner (:mod:`egpu_array._cli_selftest`) checks that every public function has a case here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: inputs of elementwise functions, by domain: (low, high) of uniform samples
DOMAINS = {"any": (-3.0, 3.0), "unit": (-0.95, 0.95), "ge1": (1.0, 10.0), "pos": (0.05, 10.0)}
#: values added to the "any" domain: the IEEE special cases every device must get right
SPECIALS = [np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0, -1.0]


@dataclass
class Case:
    """``call(ns, dk, *arrays)`` on both namespaces (``dk``: ``{"device": d}`` for ours, ``{}``
    for NumPy); ``make(rng)`` gives the NumPy inputs; ``check(ours, ref, inputs)`` replaces the
    default comparison (returns an error message or None); ``tol`` scales the tolerance."""
    name: str
    make: Callable
    call: Callable
    label: str = ""
    check: Callable | None = None
    tol: float = 1.0


def _fn(ns, qualname):
    for part in qualname.split("."):
        ns = getattr(ns, part)
    return ns


def _data(dtype, domain="any", n=64, specials=True, shape=None):
    def make(rng):
        lo, hi = DOMAINS[domain]
        dt = np.dtype(dtype)
        count = int(np.prod(shape)) if shape else n
        if dt.kind == "c":
            v = (rng.uniform(lo, hi, count) + 1j * rng.uniform(lo, hi, count)).astype(dt)
        elif dt.kind == "f":
            v = rng.uniform(lo, hi, count).astype(dt)
            if specials and domain == "any":
                v[:len(SPECIALS)] = SPECIALS
        elif dt.kind == "b":
            v = rng.random(count) < 0.5
        else:
            info = np.iinfo(dt)
            v = rng.integers(max(info.min, -100), min(info.max, 100), count, endpoint=True).astype(dt)
        return v.reshape(shape) if shape else v
    return make


def _inputs(*makers):
    return lambda rng: tuple(m(rng) for m in makers)


def elementwise(names, dtypes, domain="any", arity=1, second="any", specials=True):
    """One case per function and dtype; the second operand of a binary function has ``second``'s
    domain (``"nonzero"``: away from 0, ``"shift"``: 0..7)."""
    cases = []
    for name in names.split():
        for dt in dtypes:
            makers = [_data(dt, domain, specials=specials)]
            if arity == 2:
                makers.append(_second(dt, second))
            cases.append(Case(name, _inputs(*makers), lambda ns, dk, *a, _n=name: _fn(ns, _n)(*a),
                              label=np.dtype(dt).name))
    return cases


def _second(dtype, kind):
    def make(rng):
        dt = np.dtype(dtype)
        if kind == "shift":
            return rng.integers(0, 8, 64).astype(dt)
        if kind == "nonzero":
            mag = rng.integers(1, 9, 64) if dt.kind in "iu" else rng.uniform(0.5, 3.0, 64)
            sign = np.ones(64) if dt.kind == "u" else rng.choice([-1, 1], 64)
            return (mag * sign).astype(dt)
        return _data(dtype, kind, specials=False)(rng)
    return make


def case(name, make, call=None, label="", check=None, tol=1.0):
    """A single case; ``call`` defaults to the function applied to the inputs."""
    return Case(name, make, call or (lambda ns, dk, *a: _fn(ns, name)(*a)), label, check, tol)


def _m(*shape, dtype=np.float64, lo=-3.0, hi=3.0):
    return lambda rng: rng.uniform(lo, hi, shape).astype(dtype)


def _i(*shape, hi=10, dtype=np.int64):
    return lambda rng: rng.integers(0, hi, shape).astype(dtype)


def _spd(n):
    def make(rng):
        a = rng.standard_normal((n, n))
        return a @ a.T + n * np.eye(n)
    return make


def _sym(n):
    def make(rng):
        a = rng.standard_normal((n, n))
        return a + a.T
    return make


F = (np.float32, np.float64)
C = (np.complex64, np.complex128)
I = (np.int32, np.int64)
f32, f64, c128 = np.float32, np.float64, np.complex128

CASES = [
    # -- elementwise ------------------------------------------------------------------------
    *elementwise("abs ceil cos cosh exp expm1 floor negative positive round sign signbit sin sinh "
                 "square tan tanh trunc atan asinh isfinite isinf isnan reciprocal", F),
    *elementwise("acos asin atanh", F, "unit"),
    *elementwise("acosh", F, "ge1"),
    *elementwise("log log10 log1p log2 sqrt", F, "pos"),
    *elementwise("abs exp sqrt conj real imag sign isfinite", C),
    *elementwise("abs negative sign square bitwise_invert", I),
    *elementwise("add subtract multiply divide atan2 copysign hypot logaddexp maximum minimum "
                 "nextafter equal not_equal greater greater_equal less less_equal", F, arity=2),
    *elementwise("add multiply divide equal", C, arity=2),
    *elementwise("pow", F, "pos", arity=2),
    *elementwise("remainder", F, arity=2, second="nonzero"),
    # NumPy gives nan for inf // finite where the standard says +-inf: finite inputs only
    *elementwise("floor_divide", F, arity=2, second="nonzero", specials=False),
    *elementwise("remainder floor_divide", I, arity=2, second="nonzero"),
    *elementwise("add subtract multiply bitwise_and bitwise_or bitwise_xor maximum", I, arity=2),
    *elementwise("bitwise_left_shift bitwise_right_shift", I, arity=2, second="shift"),
    *elementwise("logical_and logical_or logical_xor", (np.bool_,), arity=2),
    *elementwise("logical_not", (np.bool_,)),
    case("clip", _inputs(_data(f64)), lambda ns, dk, x: ns.clip(x, -1.0, 1.5)),
    case("where", _inputs(_m(8, 8), _m(8, 8)), lambda ns, dk, x, y: ns.where(x > y, x, y * 2.0)),
    # -- utilities and inspection ----------------------------------------------------------
    case("synchronize", _inputs(_m(100)), lambda ns, dk, x: _synchronized(ns, ns.exp(x) * 2.0)),
    case("profile", _inputs(_m(100)), lambda ns, dk, x: _profiled(ns, lambda: ns.sin(x) + x)),
    case("__array_namespace_info__", lambda rng: (), lambda ns, dk: _info(ns, dk)),
    case("default_device", lambda rng: (), lambda ns, dk: _in_default_device(ns, dk)),
    # -- creation ---------------------------------------------------------------------------
    case("arange", lambda rng: (), lambda ns, dk: ns.arange(0, 10, 0.5, **dk), "float"),
    case("arange", lambda rng: (), lambda ns, dk: ns.arange(17, **dk), "int"),
    case("asarray", _inputs(_m(5, 7, dtype=f32)), lambda ns, dk, x: ns.asarray(np.asarray(x), **dk)),
    case("empty", lambda rng: (), lambda ns, dk: ns.empty((3, 4), dtype=ns.float32, **dk),
         check=lambda o, r, a: _same_layout(o, r)),
    case("empty_like", _inputs(_m(3, 4)), lambda ns, dk, x: ns.empty_like(x),
         check=lambda o, r, a: _same_layout(o, r)),
    case("eye", lambda rng: (), lambda ns, dk: ns.eye(4, 5, k=1, dtype=ns.float32, **dk)),
    case("from_dlpack", _inputs(_m(4, 3)), lambda ns, dk, x: ns.from_dlpack(x)),
    case("full", lambda rng: (), lambda ns, dk: ns.full((3, 4), 2.5, dtype=ns.float32, **dk)),
    case("full_like", _inputs(_m(3, 4)), lambda ns, dk, x: ns.full_like(x, 7.0)),
    case("linspace", lambda rng: (), lambda ns, dk: ns.linspace(-1.0, 2.0, 31, **dk)),
    case("meshgrid", _inputs(_m(4), _m(3)), lambda ns, dk, x, y: ns.meshgrid(x, y, indexing="ij")),
    case("ones", lambda rng: (), lambda ns, dk: ns.ones((2, 5), dtype=ns.int32, **dk)),
    case("ones_like", _inputs(_m(3, 4)), lambda ns, dk, x: ns.ones_like(x)),
    case("zeros", lambda rng: (), lambda ns, dk: ns.zeros((2, 5), **dk)),
    case("zeros_like", _inputs(_i(3, 4)), lambda ns, dk, x: ns.zeros_like(x)),
    case("tril", _inputs(_m(5, 6)), lambda ns, dk, x: ns.tril(x, k=-1)),
    case("triu", _inputs(_m(5, 6)), lambda ns, dk, x: ns.triu(x, k=1)),
    # -- data types -------------------------------------------------------------------------
    case("astype", _inputs(_m(20, lo=-99, hi=99)), lambda ns, dk, x: ns.astype(x, ns.int32)),
    case("can_cast", lambda rng: (), lambda ns, dk: tuple(ns.can_cast(a, b) for a, b in
         [(ns.int8, ns.int64), (ns.float64, ns.float32), (ns.uint8, ns.int16), (ns.int8, ns.uint8),
          (ns.float32, ns.complex128), (ns.int64, ns.uint64)])),
    case("finfo", lambda rng: (), lambda ns, dk: tuple(
        (f.bits, float(f.eps), float(f.max), float(f.min), float(f.smallest_normal))
        for f in (ns.finfo(ns.float32), ns.finfo(ns.float64), ns.finfo(ns.complex64)))),
    case("iinfo", lambda rng: (), lambda ns, dk: tuple((i.bits, i.max, i.min)
         for i in (ns.iinfo(ns.int8), ns.iinfo(ns.uint16), ns.iinfo(ns.int64)))),
    case("isdtype", lambda rng: (), lambda ns, dk: (
        ns.isdtype(ns.float32, "real floating"), ns.isdtype(ns.int8, "integral"),
        ns.isdtype(ns.complex64, ("real floating", "complex floating")),
        ns.isdtype(ns.uint8, "signed integer"), ns.isdtype(ns.bool, "numeric"))),
    case("result_type", _inputs(_m(3, dtype=f32)), lambda ns, dk, x: tuple(
        _dtype_name(d) for d in (ns.result_type(x, ns.float64), ns.result_type(ns.int8, ns.uint8),
                                 ns.result_type(ns.float32, ns.complex64)))),
    # -- manipulation -----------------------------------------------------------------------
    case("broadcast_arrays", _inputs(_m(3, 1), _m(1, 4)), lambda ns, dk, a, b: ns.broadcast_arrays(a, b)),
    case("broadcast_shapes", lambda rng: (), lambda ns, dk: ns.broadcast_shapes((3, 1), (1, 4), (4,))),
    case("broadcast_to", _inputs(_m(3, 1)), lambda ns, dk, a: ns.broadcast_to(a, (2, 3, 4))),
    case("concat", _inputs(_m(2, 3), _m(4, 3)), lambda ns, dk, a, b: ns.concat([a, b], axis=0)),
    case("expand_dims", _inputs(_m(3, 4)), lambda ns, dk, a: ns.expand_dims(a, axis=1)),
    case("flip", _inputs(_m(3, 4)), lambda ns, dk, a: ns.flip(a, axis=0)),
    case("moveaxis", _inputs(_m(2, 3, 4)), lambda ns, dk, a: ns.moveaxis(a, 0, -1)),
    case("permute_dims", _inputs(_m(2, 3, 4)), lambda ns, dk, a: ns.permute_dims(a, (2, 0, 1))),
    case("repeat", _inputs(_m(3, 4)), lambda ns, dk, a: ns.repeat(a, 2, axis=0)),
    case("reshape", _inputs(_m(3, 4)), lambda ns, dk, a: ns.reshape(a, (2, 6))),
    case("roll", _inputs(_m(3, 4)), lambda ns, dk, a: ns.roll(a, 1, axis=1)),
    case("squeeze", _inputs(_m(3, 1, 4)), lambda ns, dk, a: ns.squeeze(a, axis=1)),
    case("stack", _inputs(_m(3, 4), _m(3, 4)), lambda ns, dk, a, b: ns.stack([a, b], axis=1)),
    case("tile", _inputs(_m(2, 3)), lambda ns, dk, a: ns.tile(a, (2, 3))),
    case("unstack", _inputs(_m(3, 4)), lambda ns, dk, a: ns.unstack(a, axis=1)),
    # -- statistics and searching -----------------------------------------------------------
    case("all", _inputs(_m(5, 6)), lambda ns, dk, a: ns.all(a > -2.5, axis=0)),
    case("any", _inputs(_m(5, 6)), lambda ns, dk, a: ns.any(a > 2.0, axis=1)),
    case("cumulative_sum", _inputs(_m(5, 6)), lambda ns, dk, a: ns.cumulative_sum(a, axis=1)),
    case("cumulative_prod", _inputs(_m(5, 6, lo=0.5, hi=1.5)), lambda ns, dk, a: ns.cumulative_prod(a, axis=0)),
    case("diff", _inputs(_m(5, 6)), lambda ns, dk, a: ns.diff(a, axis=1, n=2)),
    case("max", _inputs(_m(5, 6)), lambda ns, dk, a: ns.max(a, axis=0)),
    case("min", _inputs(_m(5, 6, dtype=f32)), lambda ns, dk, a: ns.min(a)),
    case("mean", _inputs(_m(5, 6)), lambda ns, dk, a: ns.mean(a, axis=1)),
    case("prod", _inputs(_m(5, 6, lo=0.5, hi=1.5)), lambda ns, dk, a: ns.prod(a, axis=1)),
    case("std", _inputs(_m(50, 6)), lambda ns, dk, a: ns.std(a, axis=0, correction=1)),
    case("sum", _inputs(_m(500, dtype=f32)), lambda ns, dk, a: ns.sum(a), tol=10),
    case("sum", _inputs(_i(7, 9)), lambda ns, dk, a: ns.sum(a, axis=1), "int64"),
    case("var", _inputs(_m(50, 6)), lambda ns, dk, a: ns.var(a, axis=1)),
    case("argmax", _inputs(_m(5, 6)), lambda ns, dk, a: ns.argmax(a, axis=1)),
    case("argmin", _inputs(_m(5, 6)), lambda ns, dk, a: ns.argmin(a)),
    case("count_nonzero", _inputs(_i(5, 6, hi=3)), lambda ns, dk, a: ns.count_nonzero(a, axis=0)),
    case("isin", _inputs(_i(20), _i(5)), lambda ns, dk, a, b: ns.isin(a, b)),
    case("nonzero", _inputs(_m(5, 6)), lambda ns, dk, a: ns.nonzero(a > 1.0)),
    case("searchsorted", lambda rng: (np.sort(rng.uniform(0, 1, 30)), rng.uniform(-0.1, 1.1, 12)),
         lambda ns, dk, s, v: ns.searchsorted(s, v, side="right")),
    case("argsort", _inputs(_m(40)), lambda ns, dk, a: ns.argsort(a)),
    case("sort", _inputs(_m(6, 40, dtype=f32)), lambda ns, dk, a: ns.sort(a, axis=1, descending=True)),
    case("unique_all", _inputs(_i(40)), lambda ns, dk, a: ns.unique_all(a), check=lambda o, r, a: _unique(o, r, a)),
    case("unique_counts", _inputs(_i(40)), lambda ns, dk, a: ns.unique_counts(a), check=lambda o, r, a: _unique(o, r, a)),
    case("unique_inverse", _inputs(_i(40)), lambda ns, dk, a: ns.unique_inverse(a), check=lambda o, r, a: _unique(o, r, a)),
    case("unique_values", _inputs(_i(40)), lambda ns, dk, a: ns.unique_values(a), check=lambda o, r, a: _unique(o, r, a)),
    # -- linear algebra and indexing ----------------------------------------------------------
    case("matmul", _inputs(_m(8, 16, dtype=f32), _m(16, 5, dtype=f32)), tol=10),
    case("matrix_transpose", _inputs(_m(2, 3, 4))),
    case("tensordot", _inputs(_m(3, 4, 5), _m(4, 5, 2)), lambda ns, dk, a, b: ns.tensordot(a, b, axes=2)),
    case("vecdot", _inputs(_m(6, 4), _m(6, 4))),
    case("take", lambda rng: (rng.uniform(0, 1, (6, 4)), rng.integers(0, 6, 9)),
         lambda ns, dk, a, i: ns.take(a, i, axis=0)),
    case("take_along_axis", lambda rng: (rng.uniform(0, 1, (6, 4)), rng.integers(0, 4, (6, 3))),
         lambda ns, dk, a, i: ns.take_along_axis(a, i, axis=1)),
    # -- linalg extension -------------------------------------------------------------------
    case("linalg.cholesky", _inputs(_spd(5)), tol=100),
    case("linalg.cross", _inputs(_m(4, 3), _m(4, 3))),
    case("linalg.det", _inputs(_m(5, 5)), tol=100),
    case("linalg.diagonal", _inputs(_m(4, 5)), lambda ns, dk, a: ns.linalg.diagonal(a, offset=1)),
    case("linalg.eig", _inputs(_m(5, 5)), check=lambda o, r, a: _eig(o, a[0])),
    case("linalg.eigvals", _inputs(_m(5, 5)), check=lambda o, r, a: _sorted_close(o, r)),
    case("linalg.eigh", _inputs(_sym(5)), check=lambda o, r, a: _eigh(o, r, a[0])),
    case("linalg.eigvalsh", _inputs(_sym(5)), tol=100),
    case("linalg.inv", _inputs(_spd(5)), tol=100),
    case("linalg.matmul", _inputs(_m(4, 6), _m(6, 3))),
    case("linalg.matrix_norm", _inputs(_m(4, 5)), lambda ns, dk, a: ns.linalg.matrix_norm(a, ord="fro")),
    case("linalg.matrix_power", _inputs(_m(4, 4)), lambda ns, dk, a: ns.linalg.matrix_power(a, 3), tol=100),
    case("linalg.matrix_rank", _inputs(_m(6, 4)), lambda ns, dk, a: ns.linalg.matrix_rank(a @ a.mT)),
    case("linalg.matrix_transpose", _inputs(_m(2, 4, 3))),
    case("linalg.outer", _inputs(_m(4), _m(3))),
    case("linalg.pinv", _inputs(_m(6, 4)), tol=100),
    case("linalg.qr", _inputs(_m(6, 4)), check=lambda o, r, a: _qr(o, a[0])),
    case("linalg.slogdet", _inputs(_spd(5)), tol=100),
    case("linalg.solve", _inputs(_spd(5), _m(5, 2)), tol=100),
    case("linalg.svd", _inputs(_m(6, 4)), lambda ns, dk, a: ns.linalg.svd(a, full_matrices=False),
         check=lambda o, r, a: _svd(o, r, a[0])),
    case("linalg.svdvals", _inputs(_m(6, 4)), tol=100),
    case("linalg.tensordot", _inputs(_m(3, 4), _m(4, 2)), lambda ns, dk, a, b: ns.linalg.tensordot(a, b, axes=1)),
    case("linalg.trace", _inputs(_m(2, 4, 4)), lambda ns, dk, a: ns.linalg.trace(a, offset=-1)),
    case("linalg.vecdot", _inputs(_m(5, 3), _m(5, 3))),
    case("linalg.vector_norm", _inputs(_m(5, 3)), lambda ns, dk, a: ns.linalg.vector_norm(a, axis=1, ord=3)),
    # -- fft extension (checked when egpu_array.fft exists) ---------------------------------
    *[case(f"fft.{n}", _inputs(_data(c128, specials=False)), tol=100) for n in ("fft", "ifft")],
    *[case(f"fft.{n}", _inputs(_data(c128, specials=False, shape=(8, 8))), tol=100) for n in ("fftn", "ifftn")],
    case("fft.rfft", _inputs(_data(f64, specials=False)), tol=100),
    case("fft.irfft", _inputs(_data(c128, specials=False, n=33)), tol=100),
    case("fft.rfftn", _inputs(_data(f64, specials=False, shape=(8, 8))), tol=100),
    case("fft.irfftn", _inputs(_data(c128, specials=False, shape=(8, 5))), tol=100),
    case("fft.hfft", _inputs(_data(c128, specials=False, n=33)), tol=100),
    case("fft.ihfft", _inputs(_data(f64, specials=False)), tol=100),
    case("fft.fftfreq", lambda rng: (), lambda ns, dk: ns.fft.fftfreq(9, d=0.5, **dk)),
    case("fft.rfftfreq", lambda rng: (), lambda ns, dk: ns.fft.rfftfreq(9, d=0.5, **dk)),
    case("fft.fftshift", _inputs(_m(5, 4)), lambda ns, dk, a: ns.fft.fftshift(a)),
    case("fft.ifftshift", _inputs(_m(5, 4)), lambda ns, dk, a: ns.fft.ifftshift(a, axes=0)),
]


def _synchronized(ns, y):
    """``synchronize(y)`` returns None and ``y`` keeps its values (NumPy: just ``y``)."""
    if hasattr(ns, "synchronize") and ns.synchronize(y) is not None:
        raise AssertionError("synchronize returned a value")
    return y


def _profiled(ns, fn):
    """``fn()`` inside ``profile()``: its value and whether the profile saw a kernel launch."""
    if not hasattr(ns, "profile"):
        return fn(), True
    with ns.profile() as prof:
        y = fn()
        ns.synchronize(y)
    return y, prof.launches >= 1


def _in_default_device(ns, dk):
    """Inside ``with default_device(d)``, ``ones`` without ``device=`` lands on ``d``; outside it
    does not stay there (NumPy: just the values)."""
    if not dk or not hasattr(ns, "default_device"):
        return ns.ones(3), True
    dev = dk["device"]
    with ns.default_device(dev) as chosen:
        inside = ns.ones(3)
    before_default = ns.__array_namespace_info__().default_device()
    return inside, chosen == dev and ns.ones(1).device == before_default


def _info(ns, dk):
    """Default dtypes, dtype names and whether the device is listed, from the info object."""
    info = ns.__array_namespace_info__()
    defaults = {k: _dtype_name(v) for k, v in info.default_dtypes(**dk).items()}
    caps = info.capabilities(**dk)
    listed = dk["device"] in info.devices() if dk else True
    return (tuple(sorted(defaults.items())), tuple(info.dtypes(**dk)), listed,
            caps["max dimensions"] is None or caps["max dimensions"] >= 8)


def _dtype_name(d):
    return getattr(d, "name", None) or np.dtype(d).name


# -- checks for results that are not unique (a message, or None when fine) ----------------------
def _same_layout(ours, ref):
    if ours.shape != ref.shape or ours.dtype != ref.dtype:
        return f"got shape {ours.shape} {ours.dtype}, expected {ref.shape} {ref.dtype}"
    return None


def _unique(ours, ref, args):
    """Unique values in any order: match them up by value, then compare the other fields."""
    ours = ours if isinstance(ours, tuple) else (ours,)
    ref = ref if isinstance(ref, tuple) else (ref,)
    values, (x,) = ours[0], args
    if sorted(values.tolist()) != sorted(ref[0].tolist()):
        return f"values {values.tolist()} != {ref[0].tolist()}"
    fields = getattr(ref, "_fields", ("values",))
    for field, got in zip(fields, ours):
        if field == "indices" and not np.array_equal(x[got], values):
            return "x[indices] != values"
        if field == "inverse_indices" and not np.array_equal(values[got].reshape(x.shape), x):
            return "values[inverse_indices] != x"
        if field == "counts" and [int(np.sum(x == v)) for v in values] != got.tolist():
            return "counts do not count the values"
    return None


def _close(got, want, rtol=1e-8):
    scale = max(1.0, float(np.max(np.abs(want)))) if np.size(want) else 1.0
    return np.shape(got) == np.shape(want) and bool(np.all(np.abs(got - want) <= rtol * scale))


def _sorted_close(ours, ref):
    key = lambda v: np.sort_complex(np.asarray(v, dtype=complex))  # noqa: E731
    return None if _close(key(ours), key(ref)) else f"eigenvalues {ours} != {ref}"


def _eig(ours, a):
    w, v = ours
    return None if _close(a @ v, v * w) else "A @ v != v * w"


def _eigh(ours, ref, a):
    w, v = ours
    if not _close(w, ref[0]):
        return f"eigenvalues {w} != {ref[0]}"
    return None if _close(a @ v, v * w) and _close(v.T @ v, np.eye(len(w))) else "A @ v != v * w"


def _qr(ours, a):
    q, r = ours
    if not _close(q @ r, a) or not _close(q.T @ q, np.eye(q.shape[1])):
        return "Q @ R != A or Q not orthonormal"
    return None if np.allclose(np.tril(r, -1), 0) else "R is not upper triangular"


def _svd(ours, ref, a):
    u, s, vh = ours
    if not _close(s, ref[1]):
        return f"singular values {s} != {ref[1]}"
    return None if _close((u * s) @ vh, a) else "U @ diag(S) @ Vh != A"
