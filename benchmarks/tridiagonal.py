"""Divide-and-conquer tridiagonal eigensolver (egpu_array/_tridiagonal.py) vs LAPACK through NumPy.

The issue's goal: for n = 1000 float64 on the cpu device, ``tridiagonal_eigh`` with vectors takes
well under ``numpy.linalg.eigh`` of a dense 1000 x 1000 matrix (the step it replaces inside a blocked
``eigh``); without vectors, a few ms to tens of ms. NumPy's ``eigh``/``eigvalsh`` of the dense
tridiagonal T itself are listed too (LAPACK's syevd reduces T again before its own dstedc).

Each thread setting runs in its own worker process (``EGPU_ARRAY_NUM_THREADS`` and
``OPENBLAS_NUM_THREADS`` set before import); ours and NumPy are timed interleaved there, medians of
the repeats. Run: ``python -m benchmarks.tridiagonal [--threads 1 2] [--repeats N] [--n 1000]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ._harness import format_table, interleaved, machine_info, progress, run_worker


def _matrices(np, n: int) -> dict:
    """name -> (d, e): random entries (much deflation in the merges), and the tridiagonal of a
    random dense symmetric matrix (what a blocked eigh hands over; little deflation), from
    SciPy's Hessenberg reduction when SciPy is installed."""
    rng = np.random.default_rng(0)
    out = {"random d, e": (rng.standard_normal(n), rng.standard_normal(n - 1))}
    try:
        from scipy.linalg import hessenberg
    except ImportError:
        return out
    a = rng.standard_normal((n, n))
    h = hessenberg(a + a.T)
    out["T of a random dense A"] = (np.diag(h).copy(), np.diag(h, 1).copy())
    return out


def worker(repeats: int, n: int) -> dict:
    import numpy as np

    import egpu_array as xp
    rng = np.random.default_rng(1)
    a = rng.standard_normal((n, n))
    a = a + a.T
    like = xp.asarray(np.zeros(1))
    rows, acc = {}, {}
    for name, (d, e) in _matrices(np, n).items():
        times, acc[name] = _case(np, xp, d, e, a, like, repeats)
        rows.update({f"{name}: {k}": v for k, v in times.items()})
    return {"times": rows, "accuracy": acc, "load": os.getloadavg()[0]}


def _case(np, xp, d, e, a, like, repeats):
    from egpu_array._tridiagonal import tridiagonal_eigh
    n = d.size
    t = np.diag(d) + np.diag(e, 1) + np.diag(e, -1)
    w, z = tridiagonal_eigh(d, e, like=like)
    zh = np.asarray(z)
    eps, nrm = np.finfo(np.float64).eps, np.abs(t).max()
    acc = {"values": float(np.abs(w - np.linalg.eigvalsh(t)).max() / (n * eps * nrm)),
           "residual": float(np.abs(t @ zh - zh * w).max() / (n * eps * nrm)),
           "ortho": float(np.abs(zh.T @ zh - np.eye(n)).max() / (n * eps))}
    fns = {
        "ours: vectors": lambda: xp.synchronize(tridiagonal_eigh(d, e, like=like)[1]),
        "ours: values only": lambda: tridiagonal_eigh(d, e, like=like, vectors=False),
        "numpy eigh (dense n x n)": lambda: np.linalg.eigh(a),
        "numpy eigh (T)": lambda: np.linalg.eigh(t),
        "numpy eigvalsh (T)": lambda: np.linalg.eigvalsh(t),
    }
    times = interleaved(fns, repeats, settle=0.2)
    for name, v in times.items():
        progress(f"  {name}: {v['median'] * 1e3:.1f} ms")
    return {k: v["median"] for k, v in times.items()}, acc


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.repeats, args.n)))
        return 0
    info = machine_info()
    print(f"tridiagonal eigensolver, n = {args.n} float64, vs numpy.linalg {info['numpy']} on "
          f"{info.get('cpu', '?')}, {info['cores']} cores; the machine is shared with other jobs")
    for threads in args.threads:
        progress(f"threads={threads} ...")
        os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
        res = run_worker("benchmarks.tridiagonal", threads, ["--repeats", str(args.repeats), "--n", str(args.n)])
        table = []
        for name, t in res["times"].items():
            base = res["times"][name.split(":")[0] + ": numpy eigh (dense n x n)"]
            table.append([name, f"{t * 1e3:.1f} ms", f"{t / base:.2f}x"])
        print(f"\nEGPU_ARRAY_NUM_THREADS={threads}, OPENBLAS_NUM_THREADS={threads}, "
              f"load average {res['load']:.1f}")
        print(format_table(["case", "median", "vs dense eigh"], table, left=2))
        for name, acc in res["accuracy"].items():
            print(f"  ours on {name}, scaled errors: values {acc['values']:.2f}, residual {acc['residual']:.2f}, "
                  f"orthogonality {acc['ortho']:.2f} (units of n eps ||T||, n eps)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
