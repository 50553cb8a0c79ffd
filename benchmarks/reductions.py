"""Reductions vs NumPy: sum, max, mean over 1e7 elements, whole array and along each axis of 2-D.

Ratios are measured side by side in one process (interleaved, median of repeats) with the achieved
GB/s next to the machine's memory limit. Run: ``python benchmarks/reductions.py [--repeats N]``.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import egpu_array as xp

LIMIT_GBS = {1: 22.0, 2: 29.0}  # measured limits of this 2-core machine (one core / both)


def _median_pair(f_ours, f_np, repeats):
    f_ours(), f_np()
    a, b = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        f_ours()
        a.append(time.perf_counter() - t)
        t = time.perf_counter()
        f_np()
        b.append(time.perf_counter() - t)
    return float(np.median(a)), float(np.median(b))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=10_000_000)
    args = p.parse_args(argv)
    threads = int(os.environ.get("EGPU_ARRAY_NUM_THREADS", "0") or os.cpu_count() or 1)
    limit = LIMIT_GBS.get(min(threads, 2), 29.0)
    rng = np.random.default_rng(0)
    print(f"reductions, {args.n:.0e} elements, EGPU_ARRAY_NUM_THREADS={threads}, limit {limit} GB/s")
    print(f"{'case':34s} {'ours':>9s} {'NumPy':>9s} {'NumPy/ours':>10s} {'GB/s':>6s} {'% limit':>8s}")
    for dtype in ("float32", "float64"):
        h = rng.random(args.n).astype(dtype)
        rows = 2500
        h2 = h.reshape(rows, -1)
        x, x2 = xp.asarray(h), xp.asarray(h2)
        for name in ("sum", "max", "mean"):
            for label, xa, ha, axis in (("all", x, h, None), ("axis 0", x2, h2, 0), ("axis 1", x2, h2, 1)):
                f = getattr(xp, name)
                g = getattr(np, name)
                ours, theirs = _median_pair(lambda: xp.synchronize(f(xa, axis=axis)), lambda: g(ha, axis=axis),
                                            args.repeats)
                got = np.asarray(f(xa, axis=axis))
                ref = g(ha, axis=axis)
                ok = np.allclose(got, ref, rtol=1e-5 if dtype == "float32" else 1e-12)
                gbs = h.nbytes / ours / 1e9
                print(f"{name:5s} {dtype:8s} {label:7s} {'' if ok else 'MISMATCH':10s} {ours * 1e3:7.2f}ms "
                      f"{theirs * 1e3:7.2f}ms {theirs / ours:9.2f}x {gbs:6.1f} {100 * gbs / limit:7.0f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
