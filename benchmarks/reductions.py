"""Reductions vs NumPy: sum, max, mean over 1e7 elements, whole array and along each axis of 2-D.

Ratios are measured side by side in one process (interleaved, median of repeats) with the achieved
GB/s next to the machine's memory limit; "best GB/s" is from the fastest repeat (on a machine that
other jobs load, the medians move with them). ``--shapes`` adds tall/wide matrices (few outputs
and long reductions, and the reverse) to check that every shape splits across the threads.
``--breakdown`` adds, per case, where our time goes (medians of extra repeats under the profiler):
the launch (kernel on the threads, thread hand-off and the chunks' finalize step) and the Python
time around it (building the lazy node, the schedule, argument packing).
``--threads 1,2`` runs every case on a cpu device of each thread count (one process: the
rows of both counts are measured under the same load); default: the default device
(``EGPU_ARRAY_NUM_THREADS``).
"plain GB/s" is a plain vectorized read of a buffer of the same size on the same threads
(benchmarks._read_ref), interleaved with the case: what this machine's memory gave at that moment;
"ours/plain" sets our GB/s against it.
Run: ``python -m benchmarks reductions [--repeats N] [--shapes] [--ops sum,max] [--breakdown] [--threads 1,2]``.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import egpu_array as xp
from benchmarks._harness import interleaved
from benchmarks._read_ref import PlainRead

LIMIT_GBS = {1: 22.0, 2: 29.0}  # measured limits of this 2-core machine (one core / both)


def _cases(n: int, extra: bool):
    rows = 2500
    cases = [("all", None, None), ("axis 0", (rows, n // rows), 0), ("axis 1", (rows, n // rows), 1)]
    if extra:
        cases += [("axis 0", (n // 16, 16), 0), ("axis 1", (16, n // 16), 1), ("axis 0", (n // 3, 3), 0),
                  ("axis 1", (n // 3, 3), 1), ("axis 0", (10, n // 10), 0), ("axis 1", (n // 1000, 1000), 1)]
    return cases


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--shapes", action="store_true", help="also tall/wide matrices")
    p.add_argument("--ops", default="sum,max,mean")
    p.add_argument("--dtypes", default="float32,float64")
    p.add_argument("--breakdown", action="store_true", help="also the launch and Python time of ours")
    p.add_argument("--threads", default="", help="comma-separated thread counts (cpu devices of their own)")
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    counts = [int(t) for t in args.threads.split(",") if t] or [None]
    for count in counts:
        if count is None:
            device = None
            from egpu_array._info import config
            threads = config().num_threads
        else:
            from egpu_array.backend.cpu import CPUDevice
            device, threads = CPUDevice(num_threads=count), count
        _run(args, rng, device, threads)
    return 0


def _run(args, rng, device, threads: int) -> None:
    limit = LIMIT_GBS.get(min(threads, 2), 29.0)
    print(f"reductions, {args.n:.0e} elements, {threads} thread(s), limit {limit} GB/s, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':38s} {'ours':>9s} {'NumPy':>9s} {'NumPy/ours':>10s} {'GB/s':>6s} {'% limit':>8s} "
          f"{'best GB/s':>9s} {'plain GB/s':>10s} {'ours/plain':>10s}")
    for dtype in args.dtypes.split(","):
        h = rng.random(args.n).astype(dtype)
        x = xp.asarray(h, device=device)
        plain = PlainRead(x.device, h.nbytes)
        for name in args.ops.split(","):
            f, g = getattr(xp, name), getattr(np, name)
            for label, shape, axis in _cases(args.n, args.shapes):
                ha = h if shape is None else h[:int(np.prod(shape))].reshape(shape)
                xa = x if shape is None else xp.reshape(x[:int(np.prod(shape))], shape)
                xp.synchronize(xa)
                r = interleaved({"ours": lambda: xp.synchronize(f(xa, axis=axis)), "numpy": lambda: g(ha, axis=axis),
                                 "plain": plain}, args.repeats)
                ours, theirs = r["ours"]["median"], r["numpy"]["median"]
                # checked against a float64 reference (NumPy's float32 column sums accumulate in
                # float32 and can be off by more than 1e-5 over a million rows; ours use float64)
                ok = np.allclose(np.asarray(f(xa, axis=axis)), g(ha.astype(np.float64), axis=axis),
                                 rtol=1e-5 if dtype == "float32" else 1e-12)
                gbs, best = ha.nbytes / ours / 1e9, ha.nbytes / r["ours"]["min"] / 1e9
                plain_gbs = plain.nbytes / r["plain"]["median"] / 1e9
                where = label if shape is None else f"{label} {shape}"
                print(f"{name:5s} {dtype:8s} {where:23s} {'' if ok else 'MISMATCH'} {ours * 1e3:7.2f}ms "
                      f"{theirs * 1e3:7.2f}ms {theirs / ours:9.2f}x {gbs:6.1f} {100 * gbs / limit:7.0f}% {best:9.1f} "
                      f"{plain_gbs:10.1f} {100 * gbs / plain_gbs:9.0f}%", flush=True)
                if args.breakdown:
                    launch, python = _breakdown(lambda: xp.synchronize(f(xa, axis=axis)),
                                                lambda: g(ha, axis=axis), args.repeats)
                    print(f"{'':38s} launch {launch * 1e3:6.2f}ms ({ha.nbytes / launch / 1e9:.1f} GB/s), "
                          f"Python around it {python * 1e6:4.0f}us", flush=True)
    return 0


def _breakdown(ours, numpy_call, repeats: int) -> tuple:
    """Medians of (launch seconds, call minus launch seconds) of ``ours`` over ``repeats`` calls,
    each after a NumPy call (as in the interleaved timing: the caches hold NumPy's data)."""
    import statistics
    import time

    from egpu_array import profiler
    launches, rest = [], []
    for _ in range(repeats):
        numpy_call()
        with profiler.profile() as prof:
            t0 = time.perf_counter()
            ours()
            total = time.perf_counter() - t0
        launch = sum(k[1] for k in prof.kernels.values())
        launches.append(launch)
        rest.append(total - launch)
    return statistics.median(launches), statistics.median(rest)


if __name__ == "__main__":
    raise SystemExit(main())
