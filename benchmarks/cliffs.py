"""``python -m benchmarks cliffs``: the everyday calls that were far slower than NumPy (session 16's
hunt for performance cliffs), each timed against NumPy in one process (interleaved, medians).

A ratio (our time / NumPy's) well above the one printed in the issue notes means a cliff came
back. Cases: Python-scalar powers, complex abs, float32 logs, transposed inputs, tensordot,
Gram matrices (split-K), mid-size sorts, count_nonzero, asarray of lists, repeat with counts,
column selection.
"""
from __future__ import annotations

import argparse

import numpy as np

import egpu_array as xp

from ._harness import fmt_time, format_table, interleaved, machine_info


def _cases(rng) -> list:
    """(name, ours, NumPy's, bytes each moves or None)."""
    sync = xp.synchronize
    a = rng.random(10**6).astype(np.float32) + 0.1
    b = a[::-1].copy()
    A, B = xp.asarray(a), xp.asarray(b)
    c = rng.random(10**6) + 1j * rng.random(10**6)
    C = xp.asarray(c)
    m = rng.random((1000, 1000)).astype(np.float32)
    M = xp.asarray(m)
    d = rng.random((500, 500))
    D = xp.asarray(d)
    g = rng.random((100000, 64)).astype(np.float32)
    G = xp.asarray(g)
    s = rng.random(10**5).astype(np.float32)
    S = xp.asarray(s)
    bools = rng.random(10**6) > 0.5
    BOOLS = xp.asarray(bools)
    floats = [float(v) for v in rng.random(10**4)]
    counts, v = rng.integers(0, 4, 10**5), rng.random(10**5)
    COUNTS, V = xp.asarray(counts), xp.asarray(v)
    big = rng.random((10000, 1000)).astype(np.float32)
    BIG, cols = xp.asarray(big), np.array([3, 500, 900])
    COLS = xp.asarray(cols)
    return [
        ("x ** 2 (1e6 float32)", lambda: sync(A ** 2), lambda: a ** 2, 2 * a.nbytes),
        ("mean((x - y) ** 2)", lambda: sync(xp.mean((A - B) ** 2)), lambda: np.mean((a - b) ** 2), 2 * a.nbytes),
        ("abs (1e6 complex128)", lambda: sync(xp.abs(C)), lambda: np.abs(c), c.nbytes * 3 // 2),
        ("log (1e6 float32)", lambda: sync(xp.log(A)), lambda: np.log(a), 2 * a.nbytes),
        ("tanh (1e6 float32)", lambda: sync(xp.tanh(A)), lambda: np.tanh(a), 2 * a.nbytes),
        ("x.mT * 2 (1000^2 float32)", lambda: sync(M.mT * 2), lambda: m.T * 2, 2 * m.nbytes),
        ("exp(x.mT) (1000^2 float32)", lambda: sync(xp.exp(M.mT)), lambda: np.exp(m.T), 2 * m.nbytes),
        ("tensordot(M, M, 1) (500^2 f64)", lambda: sync(xp.tensordot(D, D, axes=1)),
         lambda: np.tensordot(d, d, axes=1), None),
        ("X.T @ X (100000 x 64 float32)", lambda: sync(G.mT @ G), lambda: g.T @ g, g.nbytes),
        ("sort (1e5 float32)", lambda: sync(xp.sort(S)), lambda: np.sort(s), None),
        ("count_nonzero (1e6 bool)", lambda: sync(xp.count_nonzero(BOOLS)), lambda: np.count_nonzero(bools),
         bools.nbytes),
        ("asarray(list of 1e4 floats)", lambda: xp.asarray(floats), lambda: np.array(floats), None),
        ("repeat(x, counts) (1e5)", lambda: sync(xp.repeat(V, COUNTS)), lambda: np.repeat(v, counts), None),
        ("x[:, 3 columns] (10000 x 1000)", lambda: sync(BIG[:, COLS]), lambda: big[:, cols], None),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks cliffs", description=__doc__)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args(argv)
    import os
    print(f"cliffs: ours vs NumPy, median of {args.repeats} interleaved; {machine_info().get('cpu', '')}, "
          f"load average {os.getloadavg()[0]:.1f}")
    rows = []
    for name, ours, numpy_call, nbytes in _cases(np.random.default_rng(0)):
        r = interleaved({"ours": ours, "numpy": numpy_call}, args.repeats)
        o, n = r["ours"]["median"], r["numpy"]["median"]
        rows.append([name, fmt_time(o), fmt_time(n), f"{o / n:.2f}", f"{nbytes / o / 1e9:.1f}" if nbytes else "-"])
    print(format_table(["case", "ours", "NumPy", "ours/NumPy", "GB/s"], rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
