"""Shared plumbing for the examples: the command line, the namespace switch, a portable random
number generator and the comparison with NumPy.

Nothing here is specific to egpu_array: every function takes an array namespace ``xp`` (any library
that follows the Python Array API standard) and a device of that namespace.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def parse_args(description: str, size: int, steps: int | None = None, argv=None):
    """``--device``, ``--size`` (and ``--steps`` when the example iterates) with the given defaults."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--device", default="cpu", help="egpu_array device to run on (cpu, sim, ...)")
    p.add_argument("--size", type=int, default=size, help="problem size")
    if steps is not None:
        p.add_argument("--steps", type=int, default=steps, help="number of iterations")
    p.add_argument("--namespace", default="egpu_array", choices=["egpu_array", "numpy"],
                   help="namespace under test (the reference is always NumPy)")
    args = p.parse_args(argv)
    if args.size < 1 or (steps is not None and args.steps < 0):
        p.error("--size must be positive and --steps non-negative")
    return args


def namespace(name: str, device: str):
    """(xp, device object) for the namespace under test."""
    if name == "numpy":
        import array_api_compat.numpy as xp
        return xp, "cpu"
    try:
        import egpu_array as xp
    except ImportError:  # running from a source checkout that is not installed
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import egpu_array as xp
    for dev in xp.__array_namespace_info__().devices():
        if str(dev) == device:
            return xp, dev
    sys.exit(f"error: egpu_array has no device {device!r}")


def reference():
    """NumPy, seen through array-api-compat, on its only device."""
    import array_api_compat.numpy as np_xp
    return np_xp, "cpu"


def to_numpy(x):
    """A NumPy copy of an array of any namespace (copies device data to the host)."""
    import numpy as np
    return np.asarray(x.to_device("cpu") if hasattr(x, "to_device") else x)


# --- a counter-based random number generator written against the standard ------------------------
# splitmix64 (Steele, Lea & Flood 2014): a bijective mix of a 64-bit counter. Pure integer
# arithmetic on uint64 arrays (wrapping multiply, shifts, xor), so every conforming namespace makes
# exactly the same numbers; the counter makes any block of the stream computable independently.

_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def splitmix64(xp, counter):
    """Mixed 64-bit words for a uint64 array of counters."""
    z = counter * _GOLDEN  # distinct counters -> well spread states
    z = (z ^ (z >> 30)) * _MIX1
    z = (z ^ (z >> 27)) * _MIX2
    return z ^ (z >> 31)


def _mix_int(seed: int) -> int:
    """splitmix64 of one Python int (the stream's key), computed on the host."""
    m = (1 << 64) - 1
    z = (seed * _GOLDEN) & m
    z = ((z ^ (z >> 30)) * _MIX1) & m
    z = ((z ^ (z >> 27)) * _MIX2) & m
    return z ^ (z >> 31)


def uniform(xp, seed: int, start: int, n: int, device, dtype=None):
    """``n`` floats uniform in [0, 1): numbers ``start .. start+n-1`` of stream ``seed``."""
    dtype = xp.float64 if dtype is None else dtype
    counter = xp.arange(start, start + n, dtype=xp.uint64, device=device)
    bits = splitmix64(xp, counter ^ _mix_int(seed))
    return xp.astype(bits >> 11, dtype) * (2.0 ** -53)  # 53 random bits: exact in float64


def normal(xp, seed: int, start: int, n: int, device):
    """``n`` standard normal float64 numbers (Box-Muller on two uniform streams)."""
    u1 = uniform(xp, seed, start, n, device)
    u2 = uniform(xp, seed + 1_000_003, start, n, device)
    r = xp.sqrt(-2.0 * xp.log1p(-u1))  # log1p(-u): u = 0 is fine, 1 - u > 0
    return r * xp.cos((2.0 * xp.pi) * u2)


# --- comparing with NumPy ----------------------------------------------------------------------

def report(name: str, results: dict, checks: list[tuple[str, bool, str]], seconds: dict) -> int:
    """Print the results and checks; 0 when every check passed, else 1."""
    for key, value in results.items():
        print(f"{key}: {value}")
    ok = True
    for label, passed, detail in checks:
        print(f"  [{'ok' if passed else 'FAIL'}] {label}: {detail}")
        ok &= bool(passed)
    times = ", ".join(f"{k} {v:.2f}s" for k, v in seconds.items())
    if ok:
        print(f"{name}: matches NumPy ({times})")
        return 0
    print(f"{name}: MISMATCH with NumPy ({times})")
    return 1


def run_both(fn, args, *params):
    """Run ``fn(xp, device, *params)`` on the namespace under test and on NumPy.

    ``fn`` returns a tuple of arrays and Python numbers. Returns (ours, reference, seconds): the
    arrays as NumPy arrays, and each run's wall time including the copy of its results to the host
    (lazy libraries compute only then)."""
    xp, dev = namespace(args.namespace, args.device)
    out = {}
    seconds = {}
    for label, (ns, d) in (("ours", (xp, dev)), ("NumPy", reference())):
        t = time.perf_counter()
        res = fn(ns, d, *params)
        out[label] = tuple(to_numpy(r) if hasattr(r, "shape") else r for r in res)
        seconds[label] = time.perf_counter() - t
    return out["ours"], out["NumPy"], seconds
