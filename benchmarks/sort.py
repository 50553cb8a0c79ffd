"""Sort benchmark: ``sort`` of 1e7 float32 (standard normal) on the cpu device against NumPy.

    python benchmarks/sort.py [--n 10000000] [--repeats 5] [--argsort] [--rows] [--dtype float64] [--json]

Both run in this one process, interleaved (A B B A ...), after a warm-up call (the compile), and
the medians are compared. NumPy's ``np.sort`` (SIMD quicksort/introsort, one thread, not stable) is
the reference; ours is a stable LSD radix sort over the device's threads (EGPU_ARRAY_NUM_THREADS). The
time includes the copy of the input into the sort buffer (the sort is out of place, like
``np.sort``) and the result is forced (``synchronize``).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import numpy as np  # noqa: E402

from benchmarks._harness import fmt_time, interleaved, machine_info  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/sort.py", description=__doc__.splitlines()[0])
    p.add_argument("--n", type=float, default=1e7)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--argsort", action="store_true", help="also time argsort (NumPy: kind='stable')")
    p.add_argument("--compaction", action="store_true",
                   help="also time nonzero (10%% nonzero), the unique_* functions (about 1800 distinct values) "
                        "and the sort (with --argsort: and argsort) of that input (all by counting: "
                        "kernels/unique_hash.py)")
    p.add_argument("--rows", action="store_true",
                   help="also time sort (and with --argsort: argsort) of the same values as 2-D arrays: "
                        "along the last axis of (n/10000, 10000), (n/1000, 1000), (n/100, 100) and along "
                        "axis 0 of (n/1000, 1000) (a row per work item: rows up to 1024 by bitonic networks, "
                        "kernels/sort_network.py; longer ones by radix, kernels/sort_radix.py 'rows')")
    p.add_argument("--dtype", default="float32", help="the values' dtype (standard normal values cast to it)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import egpu_array as xp
    n = int(args.n)
    a = np.random.default_rng(0).standard_normal(n).astype(args.dtype)
    x = xp.asarray(a)
    xp.synchronize(x)
    got = np.asarray(xp.sort(x))
    assert np.array_equal(got, np.sort(a)), "sort result differs from NumPy"
    cases = {"sort": {"ours": lambda: xp.synchronize(xp.sort(x)), "numpy": lambda: np.sort(a)}}
    if args.argsort:
        cases["argsort"] = {"ours": lambda: xp.synchronize(xp.argsort(x)),
                            "numpy": lambda: np.argsort(a, kind="stable")}
    if args.compaction:
        m = np.where(a > 1.2816, a, 0).astype(a.dtype)   # about 10% nonzero
        xm = xp.asarray(m)
        u = np.floor(a * 200).astype(a.dtype)           # about 1800 distinct values
        xu = xp.asarray(u)
        xp.synchronize(xm, xu)
        cases["nonzero"] = {"ours": lambda: xp.synchronize(*xp.nonzero(xm)), "numpy": lambda: np.nonzero(m)}
        cases["sort (u)"] = {"ours": lambda: xp.synchronize(xp.sort(xu)), "numpy": lambda: np.sort(u)}
        if args.argsort:
            cases["argsort (u)"] = {"ours": lambda: xp.synchronize(xp.argsort(xu)),
                                    "numpy": lambda: np.argsort(u, kind="stable")}
        cases["unique_values"] = {"ours": lambda: xp.synchronize(xp.unique_values(xu)),
                                  "numpy": lambda: np.unique(u)}
        cases["unique_counts"] = {"ours": lambda: xp.synchronize(*xp.unique_counts(xu)),
                                  "numpy": lambda: np.unique(u, return_counts=True)}
        cases["unique_inverse"] = {"ours": lambda: xp.synchronize(*xp.unique_inverse(xu)),
                                   "numpy": lambda: np.unique(u, return_inverse=True)}
        cases["unique_all"] = {"ours": lambda: xp.synchronize(*xp.unique_all(xu)),
                               "numpy": lambda: np.unique(u, return_index=True, return_inverse=True,
                                                          return_counts=True)}
    if args.rows:
        for shape, axis in (((n // 10000, 10000), -1), ((n // 1000, 1000), -1), ((n // 100, 100), -1),
                            ((n // 1000, 1000), 0)):
            a2 = a[:shape[0] * shape[1]].reshape(shape)
            x2 = xp.reshape(x[:a2.size], shape)
            assert np.array_equal(np.asarray(xp.sort(x2, axis=axis)), np.sort(a2, axis=axis))
            label = f"{shape} axis {axis}"
            cases[f"sort {label}"] = {"ours": lambda x2=x2, axis=axis: xp.synchronize(xp.sort(x2, axis=axis)),
                                      "numpy": lambda a2=a2, axis=axis: np.sort(a2, axis=axis)}
            if args.argsort:
                cases[f"argsort {label}"] = {
                    "ours": lambda x2=x2, axis=axis: xp.synchronize(xp.argsort(x2, axis=axis)),
                    "numpy": lambda a2=a2, axis=axis: np.argsort(a2, axis=axis, kind="stable")}
    results = {}
    for name, fns in cases.items():
        r = interleaved(fns, args.repeats)
        results[name] = {"ours_s": r["ours"]["median"], "numpy_s": r["numpy"]["median"],
                         "ratio_numpy_over_ours": r["numpy"]["median"] / r["ours"]["median"]}
    info = {"n": n, "dtype": args.dtype, "threads": xp.__array_namespace_info__().default_device().num_threads
            if hasattr(xp.__array_namespace_info__().default_device(), "num_threads") else None,
            "machine": machine_info(), "results": results}
    if args.json:
        print(json.dumps(info, indent=1, default=str))
    else:
        for name, r in results.items():
            extra = ""
            if name.startswith("unique") and "sort (u)" in results:  # unique vs the sort of the same input
                extra = f"  ours/our sort = {r['ours_s'] / results['sort (u)']['ours_s']:.2f}"
            print(f"{name:32s} n={n:.0e} {args.dtype}  ours {fmt_time(r['ours_s'])}  numpy {fmt_time(r['numpy_s'])}  "
                  f"NumPy/ours = {r['ratio_numpy_over_ours']:.2f} (median of {args.repeats}, interleaved){extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
