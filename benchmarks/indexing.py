"""Indexing and copying vs NumPy: transposed copy, boolean mask selection, take, scatter, concat.

Each case runs ours and NumPy's side by side in one process (interleaved, median of repeats);
the table gives both times, the ratio (NumPy time / ours: above 1 we are faster) and our achieved
GB/s (bytes read + written) next to the machine's memory limit. Run:
``python -m benchmarks indexing [--repeats N] [--n N]``.

Cases (float32 data): a copy of the transpose of a 4096x4096 array (tiled multi-copy kernel, streamed:
non-temporal stores), into a new array and into an existing one (no page faults of a fresh output);
the same copy of a 4095x4095 float32 array (rows not on cache lines: the grouped walk, ordinary
stores) and of a 4096x4096 uint8 one (1-byte elements: grouped);
a plain contiguous copy of the same array (NumPy's ``a.copy()``: the bandwidth reference, its GB/s
in the last column);
``x[mask]`` with a random half-True mask over ``n`` elements (scan + gather); ``take`` of 1e6
random indices from ``n`` elements (one plain gather kernel, kernels/gather.py); ``x[idx] = v``
with 1e6 random indices (one scatter kernel: bounds checked first, last duplicate wins); ``concat`` of ten 1e6-element arrays
(one multi-copy kernel); ``roll`` of ``n`` elements (one multi-copy kernel).
"""
from __future__ import annotations

import argparse
import os

import numpy as np

import egpu_array as xp

from ._harness import bandwidth_limit, fmt_time, format_table, interleaved


def _cases(n: int, rng) -> list:
    """(name, ours, numpy, bytes moved by one call, check) per case."""
    cases = []
    a = rng.random((4096, 4096), dtype=np.float32)
    x = xp.asarray(a)
    cases.append(("transposed copy 4096^2", lambda: xp.synchronize(xp.asarray(x.T, copy=True)),
                  lambda: np.ascontiguousarray(a.T), 2 * a.nbytes,
                  lambda: np.array_equal(np.asarray(xp.asarray(x.T, copy=True)), a.T)))
    cases.append(("contiguous copy 4096^2 (reference)", lambda: xp.synchronize(xp.asarray(x, copy=True)),
                  lambda: a.copy(), 2 * a.nbytes, lambda: np.array_equal(np.asarray(xp.asarray(x, copy=True)), a)))
    for shape, dtype, what in (((4095, 4095), np.float32, "rows off cache lines"), ((4096, 4096), np.uint8, "")):
        c = (rng.random(shape) * 100).astype(dtype)
        cx = xp.asarray(c)
        name = f"transposed copy {shape[0]}^2 {np.dtype(dtype).name}" + (f" ({what})" if what else "")
        cases.append((name, lambda cx=cx: xp.synchronize(xp.asarray(cx.T, copy=True)),
                      lambda c=c: np.ascontiguousarray(c.T), 2 * c.nbytes,
                      lambda c=c, cx=cx: np.array_equal(np.asarray(xp.asarray(cx.T, copy=True)), c.T)))
    b, y = np.empty_like(a), xp.asarray(np.empty_like(a))

    def into_ours():
        y[...] = x.T

    def into_ok():
        into_ours()
        return np.array_equal(np.asarray(y), a.T)
    cases.append(("y[...] = x.T 4096^2 (no alloc)", into_ours, lambda: np.copyto(b, a.T), 2 * a.nbytes, into_ok))
    h = rng.random(n, dtype=np.float32)
    v = xp.asarray(h)
    m = h > 0.5
    mx = xp.asarray(m)
    cases.append((f"x[mask] ({n:.0e}, half True)", lambda: xp.synchronize(v[mx]), lambda: h[m],
                  h.nbytes + m.nbytes + h[m].nbytes, lambda: np.array_equal(np.asarray(v[mx]), h[m])))
    idx = rng.integers(0, n, 1_000_000)
    ix = xp.asarray(idx)
    cases.append(("take 1e6 random", lambda: xp.synchronize(xp.take(v, ix)), lambda: np.take(h, idx),
                  idx.nbytes + 2 * idx.size * 4, lambda: np.array_equal(np.asarray(xp.take(v, ix)), h[idx])))
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
    cases.append(("x[idx] = v, 1e6 random", scatter_ours, scatter_np, idx.nbytes + 2 * vals.nbytes, scatter_ok))
    parts = [rng.random(1_000_000, dtype=np.float32) for _ in range(10)]
    px = [xp.asarray(p) for p in parts]
    cases.append(("concat 10 x 1e6", lambda: xp.synchronize(xp.concat(px)), lambda: np.concatenate(parts),
                  2 * sum(p.nbytes for p in parts),
                  lambda: np.array_equal(np.asarray(xp.concat(px)), np.concatenate(parts))))
    cases.append((f"roll {n:.0e}", lambda: xp.synchronize(xp.roll(v, 12345)), lambda: np.roll(h, 12345),
                  2 * h.nbytes, lambda: np.array_equal(np.asarray(xp.roll(v, 12345)), np.roll(h, 12345))))
    return cases


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--n", type=int, default=10_000_000)
    args = p.parse_args(argv)
    threads = int(os.environ.get("EGPU_ARRAY_NUM_THREADS") or 0) or os.cpu_count() or 1
    limit = bandwidth_limit(threads) / 1e9
    rng = np.random.default_rng(0)
    rows = []
    for name, ours, theirs, nbytes, ok in _cases(args.n, rng):
        t = interleaved({"ours": ours, "numpy": theirs}, args.repeats)
        o, q = t["ours"]["median"], t["numpy"]["median"]
        gbs = nbytes / o / 1e9
        rows.append([name, "ok" if ok() else "MISMATCH", fmt_time(o), fmt_time(q), f"{q / o:.2f}x",
                     f"{gbs:.1f}", f"{100 * gbs / limit:.0f}%", f"{nbytes / q / 1e9:.1f}"])
    print(f"indexing and copying, float32, threads={threads}, memory limit {limit:.0f} GB/s, "
          f"load average {os.getloadavg()[0]:.1f} (the machine is shared: other work can lower both columns)")
    print(format_table(["case", "check", "ours", "NumPy", "NumPy/ours", "GB/s", "% limit", "NumPy GB/s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
