"""linalg decompositions vs numpy.linalg (LAPACK on OpenBLAS), float64.

The blocked factorizations (cholesky, solve, inv, det, qr, and the SVD of tall matrices) factor
panels of 128 columns on the host and run every trailing update as a GEMM on the device; the
issue's goal is cholesky, solve, svd, eigh and eigvalsh of 1000 x 1000 float64 within 3x numpy.linalg.
eigh and eigvalsh reduce to tridiagonal form in panels (each column's product with the trailing matrix
and the trailing updates on the device) and solve the tridiagonal problem by divide and conquer. The
SVD of a square matrix reduces to bidiagonal form the same way and solves it through the
Golub-Kahan tridiagonal.

Each thread setting runs in its own worker process (``EGPU_ARRAY_NUM_THREADS`` and
``OPENBLAS_NUM_THREADS`` set before import); ours and NumPy are timed interleaved there, medians of
the repeats. Run: ``python -m benchmarks linalg [--threads 1 2] [--repeats N] [--n 1000]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ._harness import format_table, interleaved, machine_info, progress, run_worker

GOAL = 3.0  # ours / NumPy time, at most
GOAL_CASES = ("cholesky", "solve (1 rhs)", "svd (square)", "eigh", "eigvalsh")


def _cases(np, rng, n: int) -> list:
    """(name, shape, ours(xp, x), numpy(a), path) for the benchmark's matrices."""
    a = rng.standard_normal((n, n))
    spd = a @ a.T + n * np.eye(n)
    b = rng.standard_normal((n, 1))
    tall = rng.standard_normal((4 * n // 2, n // 2))
    sym = a + a.T
    return [
        ("cholesky", spd, lambda xp, x: xp.linalg.cholesky(x), np.linalg.cholesky, "blocked"),
        ("solve (1 rhs)", a, lambda xp, x: xp.linalg.solve(x, xp.asarray(b)), lambda h: np.linalg.solve(h, b),
         "blocked"),
        ("inv", a, lambda xp, x: xp.linalg.inv(x), np.linalg.inv, "blocked"),
        ("slogdet", a, lambda xp, x: xp.linalg.slogdet(x)[1], lambda h: np.linalg.slogdet(h)[1], "blocked"),
        ("qr", a, lambda xp, x: xp.linalg.qr(x)[1], lambda h: np.linalg.qr(h)[1], "blocked"),
        ("svd (square)", a, lambda xp, x: xp.linalg.svd(x, full_matrices=False)[1],
         lambda h: np.linalg.svd(h, full_matrices=False)[1], "blocked"),
        ("svd (tall 4:1)", tall, lambda xp, x: xp.linalg.svd(x, full_matrices=False)[1],
         lambda h: np.linalg.svd(h, full_matrices=False)[1], "blocked QR + host"),
        ("eigh", sym, lambda xp, x: _eigh_values(xp, x), lambda h: np.linalg.eigh(h)[0], "blocked"),
        ("eigvalsh", sym, lambda xp, x: xp.linalg.eigvalsh(x), np.linalg.eigvalsh, "blocked"),
    ]


def _eigh_values(xp, x):
    """eigh's eigenvalues, after its eigenvectors are computed too (they are timed)."""
    w, v = xp.linalg.eigh(x)
    xp.synchronize(v)
    return w


def worker(repeats: int, n: int, only=None) -> dict:
    import numpy as np

    import egpu_array as xp
    rng = np.random.default_rng(0)
    rows = []
    for name, host, ours_fn, numpy_fn, path in _cases(np, rng, n):
        if only and name not in only:
            continue
        x = xp.asarray(host)
        xp.synchronize(x)
        got, ref = np.asarray(ours_fn(xp, x)), numpy_fn(host)
        err = float(np.max(np.abs(got - ref)) / max(np.max(np.abs(ref)), 1e-300))
        t = interleaved({"ours": lambda: xp.synchronize(ours_fn(xp, x)), "numpy": lambda: numpy_fn(host)},
                        repeats, settle=0.2)
        rows.append({"case": name, "shape": list(host.shape), "path": path, "ours": t["ours"]["median"],
                     "numpy": t["numpy"]["median"], "rel_err": err})
        progress(f"  {name}: {t['ours']['median'] * 1e3:.1f} ms vs {t['numpy']['median'] * 1e3:.1f} ms")
    return {"rows": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--cases", nargs="+", help="only these cases (names as in the table)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.repeats, args.n, args.cases)))
        return 0
    info = machine_info()
    print(f"linalg vs numpy.linalg {info['numpy']} on {info.get('cpu', '?')}, {info['cores']} cores; "
          "the machine is shared with other jobs: figures move between runs")
    for threads in args.threads:
        progress(f"threads={threads} ...")
        os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
        extra = ["--cases", *args.cases] if args.cases else []
        res = run_worker("benchmarks.linalg", threads, ["--repeats", str(args.repeats), "--n", str(args.n)] + extra)
        head = ["case", "shape", "path", "ours", "NumPy", "ours/NumPy time", "goal", "max rel. diff"]
        table = [[r["case"], "x".join(map(str, r["shape"])), r["path"], f"{r['ours'] * 1e3:.1f} ms",
                  f"{r['numpy'] * 1e3:.1f} ms", f"{r['ours'] / r['numpy']:.2f}x",
                  f"<= {GOAL:g}x" if r["case"] in GOAL_CASES else "-",
                  f"{r['rel_err']:.1e}"] for r in res["rows"]]
        print(f"\nEGPU_ARRAY_NUM_THREADS={threads}, OPENBLAS_NUM_THREADS={threads}")
        print(format_table(head, table, left=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
