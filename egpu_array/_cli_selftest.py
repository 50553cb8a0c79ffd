"""Check every function of the namespace on a device against NumPy: one line per function.

For a user checking a new GPU, enclosure or driver: each public function of ``egpu_array`` (and of
its ``linalg`` and ``fft`` extensions) runs on small inputs placed on ``--device`` (IEEE special
values included) and is compared with ``array_api_compat.numpy``; each dtype, constant and type of the
namespace is checked too. A public function without a case counts as a failure, so the list cannot
drift from the namespace. Exit status 0 when everything passed, 1 on any failure, 2 on a bad
``--device``.
"""
from __future__ import annotations

import faulthandler
import importlib
import sys
import time
import types

import numpy as np

#: extension namespaces whose functions are checked as ``<ext>.<name>`` (when they import)
EXTENSIONS = ("linalg", "fft")
#: relative tolerance per result dtype (scaled by a case's ``tol``); absolute: that times max |ref|
RTOL = {"float32": 2e-6, "complex64": 2e-6, "float64": 1e-12, "complex128": 1e-12}


def add_arguments(parser) -> None:
    parser.add_argument("--device", default=None, help="device to check (default: the default device)")
    parser.add_argument("--only", nargs="+", metavar="NAME", default=None,
                        help="check only these functions (e.g. sin linalg.inv)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the inputs")
    parser.add_argument("--failures-only", action="store_true", help="print only the failed functions")
    parser.add_argument("--quiet", action="store_true", help="no progress line on stderr")


def public_names(xp) -> dict:
    """Qualified public name -> kind: function, dtype, constant, type, or internal (a module or
    ``__future__`` feature that leaked into ``__all__``; reported, not checked)."""
    from ._dtypes import DType
    kinds = {}
    for name in xp.__all__:
        obj = getattr(xp, name)
        if name in EXTENSIONS:
            continue
        if name == "__array_namespace_info__":
            kinds[name] = "function"
        elif isinstance(obj, type):
            kinds[name] = "type"
        elif isinstance(obj, DType):
            kinds[name] = "dtype"
        elif obj is None or isinstance(obj, float):
            kinds[name] = "constant"
        elif isinstance(obj, types.ModuleType) or type(obj).__name__ == "_Feature":
            kinds[name] = "internal"
        elif callable(obj):
            kinds[name] = "function"
        else:
            kinds[name] = "unknown"
    for ext in EXTENSIONS:
        try:
            module = importlib.import_module(f"{xp.__name__}.{ext}")
        except ImportError:
            continue
        names = getattr(module, "__all__", None) or [n for n in dir(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name)
            if callable(obj) and not isinstance(obj, type) and getattr(obj, "__module__", "").startswith(xp.__name__):
                kinds[f"{ext}.{name}"] = "function"
    return kinds


# -- running one case ---------------------------------------------------------------------------
def _host(obj, dev):
    """Our result with every Array copied to the host (an Array on another device is an error)."""
    import egpu_array as xp
    if isinstance(obj, xp.Array):
        if obj.device != dev:
            raise AssertionError(f"result is on device {obj.device}, expected {dev}")
        return np.asarray(obj)
    if isinstance(obj, (tuple, list)):
        return tuple(_host(o, dev) for o in obj)
    return obj


def _compare(got, want, tol: float, where: str = "") -> str | None:
    """None when ``got`` matches NumPy's ``want``, else what differs."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, tuple) or len(got) != len(want):
            return f"{where}expected {len(want)} results, got {type(got).__name__}"
        for i, (g, w) in enumerate(zip(got, want)):
            msg = _compare(g, w, tol, f"{where}[{i}] ")
            if msg:
                return msg
        return None
    if isinstance(want, (np.ndarray, np.generic)):
        if not isinstance(got, np.ndarray):
            return f"{where}expected an array, got {type(got).__name__} {got!r}"
        want = np.asarray(want)
        if got.shape != want.shape or got.dtype != want.dtype:
            return f"{where}got shape {got.shape} {got.dtype}, expected {want.shape} {want.dtype}"
        return _compare_values(got, want, tol, where)
    if isinstance(want, float) and isinstance(got, float) and np.isnan(want) and np.isnan(got):
        return None
    return None if got == want and type(got) is type(want) else f"{where}got {got!r}, expected {want!r}"


def _compare_values(got, want, tol, where):
    if want.dtype.kind not in "fc":
        bad = np.flatnonzero(got != want)
        return None if bad.size == 0 else f"{where}{bad.size} elements differ, first at {bad[0]}: " \
                                           f"{got.flat[bad[0]]!r} != {want.flat[bad[0]]!r}"
    finite = np.isfinite(want)
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    if not np.all(same[~finite]):
        i = np.flatnonzero(~finite & ~same)[0]
        return f"{where}element {i}: got {got.flat[i]!r}, expected {want.flat[i]!r}"
    if not finite.any():
        return None
    rtol = RTOL.get(want.dtype.name, 1e-12) * tol
    scale = float(np.max(np.abs(want[finite])))
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite, np.abs(got - want), 0)
        bad = ~(err <= rtol * (np.abs(want) + scale))
    bad &= finite
    if not bad.any():
        return None
    i = int(np.argmax(np.where(bad, err, -1)))
    return (f"{where}{int(bad.sum())} elements off, worst at {i}: got {got.flat[i]!r}, expected "
            f"{want.flat[i]!r} (relative tolerance {rtol:.0e})")


def run_case(xp, ref, dev, case, seed: int) -> str | None:
    """Run one case on ``dev`` and on NumPy; None when it passed, else the failure."""
    inputs = case.make(np.random.default_rng(seed))
    ours_in = [xp.asarray(h, device=dev) for h in inputs]
    ref_in = [ref.asarray(h) for h in inputs]
    with np.errstate(all="ignore"):
        want = case.call(ref, {}, *ref_in)
    got = _host(case.call(xp, {"device": dev}, *ours_in), dev)
    if case.check is not None:
        return case.check(got, want, inputs)
    return _compare(got, want, case.tol)


def _error(exc) -> str:
    """One line: the exception, and where it was raised when it has no message."""
    text = str(exc).strip().splitlines()
    if text:
        return f"{type(exc).__name__}: {text[0]}"
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = f" (raised at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno})" if tb is not None else ""
    return f"{type(exc).__name__}{where}"


# -- checks of the names that are not functions ---------------------------------------------
def check_other(xp, ref, dev, name: str, kind: str) -> str | None:
    obj = getattr(xp, name)
    if kind == "dtype":
        npt = np.dtype(obj.name)
        h = (np.arange(12) % 2 == 0) if npt.kind == "b" else np.arange(12).astype(npt)
        a = xp.asarray(h, device=dev)
        if a.dtype != obj:
            return f"asarray made {a.dtype}"
        twice = xp.logical_or(a, a) if npt.kind == "b" else a + a
        return _compare(_host(twice, dev), (h | h) if npt.kind == "b" else h + h, 1.0)
    if kind == "constant":
        want = getattr(ref, name)
        return _compare(obj, want, 1.0)
    if kind == "type":
        if name == "Array":
            return None if isinstance(xp.ones(2, device=dev), xp.Array) else "ones() did not give an Array"
        if name == "Device":
            return None if isinstance(dev, xp.Device) else f"{dev!r} is not an egpu_array.Device"
        return None if issubclass(obj, xp.DeviceError) else f"{name} does not derive from DeviceError"
    return f"no selftest check for a public name of kind {kind}"


def run(args) -> int:
    import array_api_compat.numpy as ref

    import egpu_array as xp

    from .__main__ import resolve_device
    from ._cli_demo import Progress
    from ._selftest_cases import CASES

    dev = resolve_device(args.device, "selftest")
    if dev is None:
        return 2
    faulthandler.enable()   # a crash in a kernel or driver still names the function (on stderr)
    progress = Progress(not args.quiet)
    kinds = public_names(xp)
    if args.only:
        unknown = [n for n in args.only if n not in kinds]
        if unknown:
            print(f"selftest: --only: not a public name: {', '.join(unknown)} "
                  f"(functions look like sin, linalg.inv, fft.fft)", file=sys.stderr)
            return 2
        kinds = {n: k for n, k in kinds.items() if n in args.only}
    by_name: dict = {}
    for c in CASES:
        by_name.setdefault(c.name, []).append(c)
    print(f"egpu_array {xp.__version__} selftest on device {dev}, against NumPy {np.__version__}")
    t0 = time.perf_counter()
    results = {}   # name -> (kind, failure message or None)
    for i, (name, kind) in enumerate(kinds.items(), 1):
        if kind == "internal":
            continue
        progress(f"selftest [{i}/{len(kinds)}] {name}")
        if kind == "function":
            cases = by_name.get(name)
            if not cases:
                results[name] = (kind, "no selftest case (add one to egpu_array/_selftest_cases.py)")
            else:
                msg = None
                for i, c in enumerate(cases):
                    try:
                        err = run_case(xp, ref, dev, c, args.seed + i)
                    except Exception as exc:
                        err = _error(exc)
                    if err:
                        msg = f"{c.label + ': ' if c.label else ''}{err}"
                        break
                results[name] = (kind, msg)
        else:
            try:
                results[name] = (kind, check_other(xp, ref, dev, name, kind))
            except Exception as exc:
                results[name] = (kind, _error(exc))
        _, msg = results[name]
        progress.done()
        if msg or not args.failures_only:
            print(f"  {'ok  ' if msg is None else 'FAIL'}  {name}{'' if msg is None else ': ' + msg}")
            sys.stdout.flush()
    failed = [n for n, (_, m) in results.items() if m]
    funcs = [n for n, (k, _) in results.items() if k == "function"]
    others = len(results) - len(funcs)
    skipped = sorted(n for n, k in kinds.items() if k == "internal")
    print(f"\nselftest on {dev}: {sum(1 for n in funcs if n not in failed)}/{len(funcs)} functions "
          f"passed, {others - sum(1 for n in failed if n not in funcs)}/{others} dtypes, constants "
          f"and types passed; {len(failed)} failed; {time.perf_counter() - t0:.1f} s")
    if skipped:
        print(f"not checked (modules, not namespace functions): {', '.join(skipped)}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0
