"""Indexing and copying vs NumPy: transposed copies, boolean mask selection, take, scatter, concat.

Each case runs ours and NumPy's side by side in one process (interleaved, median of repeats);
the table gives both times, the ratio (NumPy time / ours: above 1 we are faster) and our achieved
GB/s (bytes read + written) next to the machine's memory limit. Each thread setting runs in its
own process. Run: ``python -m benchmarks indexing [--threads 1,all] [--repeats N] [--n N]``.

Transposed copies (the tiled multi-copy kernel, kernels/copies.py) of 4096x4096 float32 into a new
array and into an existing one (``y[...] = x.T``: no allocation); of 4096x4096 uint16 and 2048x2048
float64 (streamed: non-temporal stores, like the float32 one); of 4095x4095 float32 (rows off cache
lines: the grouped walk, ordinary stores) and of 4096x4096 uint8 (1-byte elements: grouped). Each
is timed interleaved with our contiguous copy of the same array, and the ``vs copy`` column gives
its GB/s as a share of that copy's: the machine is shared, and this share moves much less with
other tenants' load than the GB/s do. ``others`` is the CPU time other processes took during the
case, in cores (0 to 2 on this machine): figures taken with others near 1 or more are not the
machine's. Then a plain contiguous copy (the bandwidth reference; NumPy's ``a.copy()`` GB/s in the
last column); ``x[mask]`` with a random half-True mask over ``n`` elements (scan + gather);
``take`` of 1e6 random indices from ``n`` elements (one gather kernel, kernels/gather.py);
``x[idx] = v`` with 1e6 random indices (one scatter kernel: bounds checked first, last duplicate
wins); ``concat`` of ten 1e6-element arrays and ``roll`` of ``n`` elements (one multi-copy kernel
each).
"""
from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np

from ._harness import bandwidth_limit, fmt_time, format_table, interleaved, progress, run_worker


def _busy() -> tuple:
    """(seconds of CPU the whole machine was busy, seconds this process used) so far."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    hz = os.sysconf("SC_CLK_TCK")
    t = os.times()
    return (sum(ticks) - ticks[3] - ticks[4]) / hz, t.user + t.system


def _transposed(xp, name, a):
    """A transposed-copy case: (name, ours, numpy, bytes, check, our contiguous copy of ``a``)."""
    x = xp.asarray(a)
    return (name, lambda: xp.synchronize(xp.asarray(x.T, copy=True)), lambda: np.ascontiguousarray(a.T),
            2 * a.nbytes, lambda: np.array_equal(np.asarray(xp.asarray(x.T, copy=True)), a.T),
            lambda: xp.synchronize(xp.asarray(x, copy=True)))


def _cases(xp, n: int, rng) -> list:
    """(name, ours, numpy, bytes moved by one call, check, our contiguous copy or None) per case."""
    a = rng.random((4096, 4096), dtype=np.float32)
    x = xp.asarray(a)
    cases = [_transposed(xp, "transposed copy 4096^2 float32", a)]
    b, y = np.empty_like(a), xp.asarray(np.empty_like(a))

    def into_ours():
        y[...] = x.T

    def into_ok():
        into_ours()
        return np.array_equal(np.asarray(y), a.T)
    cases.append(("y[...] = x.T 4096^2 float32 (no alloc)", into_ours, lambda: np.copyto(b, a.T), 2 * a.nbytes,
                  into_ok, cases[0][5]))
    for shape, dtype, what in (((4096, 4096), np.uint16, ""), ((2048, 2048), np.float64, ""),
                               ((4095, 4095), np.float32, "rows off cache lines"), ((4096, 4096), np.uint8, "")):
        c = (rng.random(shape) * 100).astype(dtype)
        name = f"transposed copy {shape[0]}^2 {np.dtype(dtype).name}" + (f" ({what})" if what else "")
        cases.append(_transposed(xp, name, c))
    cases.append(("contiguous copy 4096^2 (reference)", lambda: xp.synchronize(xp.asarray(x, copy=True)),
                  lambda: a.copy(), 2 * a.nbytes, lambda: np.array_equal(np.asarray(xp.asarray(x, copy=True)), a),
                  None))
    h = rng.random(n, dtype=np.float32)
    v = xp.asarray(h)
    m = h > 0.5
    mx = xp.asarray(m)
    cases.append((f"x[mask] ({n:.0e}, half True)", lambda: xp.synchronize(v[mx]), lambda: h[m],
                  h.nbytes + m.nbytes + h[m].nbytes, lambda: np.array_equal(np.asarray(v[mx]), h[m]), None))
    idx = rng.integers(0, n, 1_000_000)
    ix = xp.asarray(idx)
    cases.append(("take 1e6 random", lambda: xp.synchronize(xp.take(v, ix)), lambda: np.take(h, idx),
                  idx.nbytes + 2 * idx.size * 4, lambda: np.array_equal(np.asarray(xp.take(v, ix)), h[idx]), None))
    vals = rng.random(idx.size, dtype=np.float32)
    vx = xp.asarray(vals)
    target_np = h.copy()
    target = xp.asarray(h)

    def scatter_ours():
        target[ix] = vx

    def scatter_np():
        target_np[idx] = vals

    def scatter_ok():
        scatter_ours()
        scatter_np()
        return np.array_equal(np.asarray(target), target_np)
    cases.append(("x[idx] = v, 1e6 random", scatter_ours, scatter_np, idx.nbytes + 2 * vals.nbytes, scatter_ok, None))
    parts = [rng.random(1_000_000, dtype=np.float32) for _ in range(10)]
    px = [xp.asarray(p) for p in parts]
    cases.append(("concat 10 x 1e6", lambda: xp.synchronize(xp.concat(px)), lambda: np.concatenate(parts),
                  2 * sum(p.nbytes for p in parts),
                  lambda: np.array_equal(np.asarray(xp.concat(px)), np.concatenate(parts)), None))
    cases.append((f"roll {n:.0e}", lambda: xp.synchronize(xp.roll(v, 12345)), lambda: np.roll(h, 12345),
                  2 * h.nbytes, lambda: np.array_equal(np.asarray(xp.roll(v, 12345)), np.roll(h, 12345)), None))
    return cases


def worker(args) -> dict:
    """Every case at this process's thread setting (EGPU_ARRAY_NUM_THREADS, set before import)."""
    import egpu_array as xp
    from egpu_array._info import config
    threads = config().num_threads
    rng = np.random.default_rng(0)
    results = []
    for name, ours, theirs, nbytes, ok, copy in _cases(xp, args.n, rng):
        fns = {"ours": ours, "numpy": theirs} | ({"copy": copy} if copy is not None else {})
        busy0, own0, t0 = *_busy(), time.perf_counter()
        t = interleaved(fns, args.repeats)
        busy1, own1, t1 = *_busy(), time.perf_counter()
        r = {"name": name, "threads": threads, "ok": bool(ok()), "ours_s": t["ours"]["median"],
             "numpy_s": t["numpy"]["median"], "bytes": nbytes,
             "others": max(0.0, (busy1 - busy0) - (own1 - own0)) / (t1 - t0)}
        if copy is not None:
            r["copy_s"] = t["copy"]["median"]
        results.append(r)
    return {"threads": threads, "load": os.getloadavg()[0], "results": results}


def _row(r) -> list:
    o, q = r["ours_s"], r["numpy_s"]
    gbs = r["bytes"] / o / 1e9
    vs = f"{100 * r['copy_s'] / o:.0f}%" if "copy_s" in r else "-"
    return [r["name"], str(r["threads"]), "ok" if r["ok"] else "MISMATCH", fmt_time(o), fmt_time(q), f"{q / o:.2f}x",
            f"{gbs:.1f}", f"{100 * gbs / (bandwidth_limit(r['threads']) / 1e9):.0f}%", vs, f"{r['others']:.1f}",
            f"{r['bytes'] / q / 1e9:.1f}"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks indexing", description=__doc__.splitlines()[0])
    p.add_argument("--threads", default="all",
                   help="comma-separated thread settings, each in its own process ('all' = every core)")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=10_000_000)
    p.add_argument("--json", action="store_true", help="print the results as JSON (no table)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args)))
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    settings = []
    for tok in filter(None, (t.strip() for t in args.threads.split(","))):
        n = cores if tok == "all" else int(tok)
        if n not in settings:
            settings.append(n)
    load0 = os.getloadavg()[0]
    runs = []
    for n in settings:
        progress(f"indexing benchmarks, EGPU_ARRAY_NUM_THREADS={n} (own process)")
        runs.append(run_worker("benchmarks.indexing", n, ["--repeats", str(args.repeats), "--n", str(args.n)],
                               cache_dir=os.environ.get("EGPU_ARRAY_CACHE_DIR")))
    results = [r for run in runs for r in run["results"]]
    if args.json:
        print(json.dumps({"suite": "indexing", "load_before": load0, "runs": runs}, indent=1))
    else:
        print(f"indexing and copying vs NumPy, median of {args.repeats} interleaved; memory limit "
              f"{bandwidth_limit(1) / 1e9:.0f} GB/s one core, {bandwidth_limit(2) / 1e9:.0f} GB/s all; load average "
              f"{load0:.1f} before, {os.getloadavg()[0]:.1f} after (the machine is shared: see 'others')")
        head = ["case", "threads", "check", "ours", "NumPy", "NumPy/ours", "GB/s", "% limit", "vs copy", "others",
                "NumPy GB/s"]
        print(format_table(head, [_row(r) for r in results]))
    return 0 if all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
