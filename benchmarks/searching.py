"""Searching, sets and scans vs NumPy: argmax/argmin, nonzero, count_nonzero, searchsorted, isin,
unique_values/unique_counts, cumulative_sum, on 1e7 elements (``--n``).

Each case is checked against NumPy first (the same indices, values, counts: MISMATCH otherwise,
and exit status 1), then both sides are timed interleaved in one process (median of
``--repeats``), on data already on the device.
Run: ``python -m benchmarks searching [--repeats N] [--n N] [--only WORD]``.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import egpu_array as xp
from benchmarks._harness import interleaved


def _sync(r):
    for a in (r if isinstance(r, tuple) else (r,)):
        xp.synchronize(a)
    return r


def _cases(n: int, rng):
    h = rng.standard_normal(n).astype(np.float32)
    x = xp.asarray(h)
    m = h.reshape(2500, -1) if n % 2500 == 0 else h.reshape(1, -1)
    xm = xp.asarray(m)
    p = rng.random((n // 3, 3)).astype(np.float32)  # predicted probabilities of 3 classes
    xpp = xp.asarray(p)
    ints = rng.integers(0, 1000, n).astype(np.int32)
    xi = xp.asarray(ints)
    floats = (ints * 0.5).astype(np.float32)
    xf = xp.asarray(floats)
    keys = np.arange(0, 1000, 7, dtype=np.int32)
    table = np.sort(h[:100_000])
    mask = h > 1
    xmask = xp.asarray(mask)
    return [
        ("argmax float32 whole array", lambda: xp.argmax(x), lambda: np.argmax(h)),
        (f"argmax float32 axis 1 {m.shape}", lambda: xp.argmax(xm, axis=1), lambda: np.argmax(m, axis=1)),
        (f"argmin float32 axis 0 {m.shape}", lambda: xp.argmin(xm, axis=0), lambda: np.argmin(m, axis=0)),
        (f"argmax float32 axis 1 {p.shape}", lambda: xp.argmax(xpp, axis=1), lambda: np.argmax(p, axis=1)),
        ("nonzero of a bool mask (16% set)", lambda: xp.nonzero(xmask), lambda: np.nonzero(mask)),
        ("count_nonzero of x > 0", lambda: xp.count_nonzero(x > 0), lambda: np.count_nonzero(h > 0)),
        ("searchsorted in 1e5 sorted float32", lambda: xp.searchsorted(xp.asarray(table), x),
         lambda: np.searchsorted(table, h)),
        # (a set of integers in a small range: a byte table; floats: sorted set, binary search)
        ("isin int32 in 143 keys", lambda: xp.isin(xi, xp.asarray(keys)), lambda: np.isin(ints, keys)),
        ("isin float32 in 143 keys", lambda: xp.isin(xf, xp.asarray(keys * 0.5)), lambda: np.isin(floats, keys * 0.5)),
        # (integers in a small range are counted, kernels/unique_bins.py; floats are sorted)
        ("unique_values int32 (1000 distinct)", lambda: xp.unique_values(xi), lambda: np.unique(ints)),
        ("unique_counts int32 (1000 distinct)", lambda: xp.unique_counts(xi),
         lambda: np.unique(ints, return_counts=True)),
        ("unique_inverse int32 (1000 distinct)", lambda: xp.unique_inverse(xi),
         lambda: np.unique(ints, return_inverse=True)),
        ("unique_counts float32 (1000 distinct)", lambda: xp.unique_counts(xf),
         lambda: np.unique(floats, return_counts=True)),
        # (checked against a float64 running sum: ours accumulates in float64, NumPy's float32
        # cumsum in float32, which drifts by more than the check's tolerance over 1e7 values)
        ("cumulative_sum float32", lambda: xp.cumulative_sum(x), lambda: np.cumsum(h),
         lambda: np.cumsum(h, dtype=np.float64).astype(np.float32)),
    ]


def _same(ours, theirs) -> bool:
    ours = ours if isinstance(ours, tuple) else (ours,)
    theirs = theirs if isinstance(theirs, tuple) else (theirs,)
    if len(ours) != len(theirs):
        return False
    for a, t in zip(ours, theirs):
        a = np.asarray(a)
        if a.dtype.kind == "f":
            if not np.allclose(a, t, rtol=1e-3, atol=1e-2):
                return False
        elif not np.array_equal(a, t):
            return False
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--only", default="", help="run the cases whose name contains this word")
    args = p.parse_args(argv)
    from egpu_array._info import config
    print(f"searching, {args.n:.0e} elements, {config().num_threads} thread(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':42s} {'ours':>10s} {'NumPy':>10s} {'NumPy/ours':>10s}")
    failed = 0
    for name, ours, theirs, *reference in _cases(args.n, np.random.default_rng(0)):
        if args.only and args.only not in name:
            continue
        ok = _same(_sync(ours()), (reference[0] if reference else theirs)())
        failed += not ok
        r = interleaved({"ours": lambda: _sync(ours()), "numpy": theirs}, args.repeats)
        o, t = r["ours"]["median"], r["numpy"]["median"]
        print(f"{name:42s} {o * 1e3:8.2f}ms {t * 1e3:8.2f}ms {t / o:9.2f}x {'' if ok else 'MISMATCH'}",
              flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
