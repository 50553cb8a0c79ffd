"""Softmax over the rows of a 4096x4096 float32 array vs NumPy (ratio in one process, interleaved).

Ours: one fused kernel (egpu_array/_schedule_softmax.py, kernels/softmax_rows.py): per row, its
max, exp(x - max) stored while summed, then the division in place, the row still in cache. The
"parts" line times the three kernels the unfused forms take (max over rows; the sum of exp(x - max),
a reduction that absorbs the exp; exp(x - max) / s, elementwise) for comparison.
Run: ``python -m benchmarks softmax`` (EGPU_ARRAY_NUM_THREADS=1 for one thread).
"""
from __future__ import annotations

import time

import numpy as np

import egpu_array as xp


def softmax(ns, x):
    m = ns.max(x, axis=1, keepdims=True)
    e = ns.exp(x - m)
    return e / ns.sum(e, axis=1, keepdims=True)


def main(argv=None) -> int:
    from egpu_array._info import config

    from benchmarks._harness import bandwidth_limit, interleaved
    rng = np.random.default_rng(0)
    h = rng.standard_normal((4096, 4096)).astype(np.float32)
    x = xp.asarray(h)
    with xp.profile() as prof:
        got = np.asarray(softmax(xp, x))
    np.testing.assert_allclose(got, softmax(np, h), rtol=1e-5, atol=1e-9)

    def ours():
        xp.synchronize(softmax(xp, x))

    def numpy():
        softmax(np, h)

    t = interleaved({"ours": ours, "numpy": numpy}, 7)
    ours_s, numpy_s = t["ours"]["median"], t["numpy"]["median"]
    threads = config().num_threads
    # the memory floor: x read once and the result written once at the machine's bandwidth (what
    # the fused kernel moves; the unfused kernels read x three times)
    floor_s = 2 * h.nbytes / bandwidth_limit(threads)
    print(f"softmax 4096x4096 float32, {threads} thread(s): ours {ours_s * 1e3:.1f} ms, NumPy {numpy_s * 1e3:.1f} ms, "
          f"NumPy/ours = {numpy_s / ours_s:.2f}x ({prof.launches} kernel(s); goal >= 4x); memory floor "
          f"{floor_s * 1e3:.1f} ms ({floor_s / ours_s:.0%} of it reached)")
    if threads == 1:  # CPU time: steadier than wall time when other work shares the cores
        cpu = {"ours": [], "numpy": []}
        for k in range(7):
            for name, fn in (("ours", ours), ("numpy", numpy))[::1 if k % 2 == 0 else -1]:
                t0 = time.process_time()
                fn()
                cpu[name].append(time.process_time() - t0)
        o, n = (sorted(v)[3] for v in (cpu["ours"], cpu["numpy"]))
        print(f"  CPU time: ours {o * 1e3:.1f} ms, NumPy {n * 1e3:.1f} ms, NumPy/ours = {n / o:.2f}x")
    # the unfused forms' three kernels, each on its own
    m = xp.max(x, axis=1, keepdims=True)
    s = xp.sum(xp.exp(x - m), axis=1, keepdims=True)
    xp.synchronize(s)
    parts = {"max over rows": lambda: xp.synchronize(xp.max(x, axis=1, keepdims=True)),
             "sum of exp(x - max) (reduction)": lambda: xp.synchronize(xp.sum(xp.exp(x - m), axis=1, keepdims=True)),
             "exp(x - max) / sum (elementwise)": lambda: xp.synchronize(xp.exp(x - m) / s)}
    tp = interleaved(parts, 5)
    print("  " + "; ".join(f"{k} {v['median'] * 1e3:.1f} ms" for k, v in tp.items()))
    return 0
