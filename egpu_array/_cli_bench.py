"""Time the standard workloads on a device against NumPy: ratios and achieved bandwidth.

Workloads: fused elementwise chains, reductions (whole array and along an axis), sort, matmul and a
row softmax, on data already resident on ``--device`` (the copy there is not timed, nor the copy
back). Each is the same array-API code run with ``egpu_array`` and with NumPy, checked against
NumPy, then timed interleaved (median of ``--repeats``; the first run, which compiles, is separate).
GB/s counts the least traffic a workload needs (inputs read once, output written once); matmul
shows GFLOP/s. The machine may be shared: compare ratios measured in one run. Exit status 0 when
every check passed, 1 when one failed, 2 on bad arguments or an unknown ``--device``.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import replace

import numpy as np

from ._cli_demo import (WORKLOADS, Progress, Workload, _fused, _matmul, _normal, _poly_where_clip,
                        _reduction, _run_workload)

QUICK_SIZE = 200_000
FULL_SIZE = 10_000_000


def _rows(n: int) -> int:
    return max(1, n // 1000)


def _sum_axis0(m, x):
    return m.sum(x, axis=0)


def _max_axis1(m, x):
    return m.max(x, axis=1)


def _sort(m, x):
    return m.sort(x)


def _softmax(m, x):
    e = m.exp(x - m.max(x, axis=1, keepdims=True))
    return e / m.sum(e, axis=1, keepdims=True)


def _exact(ours, ref, *inputs):
    same = ours.shape == ref.shape and ours.dtype == ref.dtype and np.array_equal(ours, ref)
    return same, 0.0 if same else float("inf")


def _table_2d(rng, n, dtype=np.float32):
    return (_normal(rng, _rows(n) * 1000, dtype).reshape(_rows(n), 1000),)


_DEMO = {w.fn: w for w in WORKLOADS}   # the demo's workloads, by their function
#: (workload, measure): "GB/s" from the bytes of inputs and output, or "GFLOP/s" for matmul
BENCHMARKS = [
    (_DEMO[_fused], "GB/s"),
    (_DEMO[_poly_where_clip], "GB/s"),
    (_DEMO[_reduction], "GB/s"),
    (Workload("sum over axis 0  float32 (rows x 1000)", _table_2d, _sum_axis0, ("sum",)), "GB/s"),
    (Workload("max over axis 1  float32 (rows x 1000)", _table_2d, _max_axis1, ("max",)), "GB/s"),
    (Workload("sort  float32", lambda rng, n: (_normal(rng, max(1, n // 4), np.float32),), _sort,
              ("sort",), size=lambda n: max(1, n // 4), check=_exact), "GB/s"),
    (_DEMO[_matmul], "GFLOP/s"),
    (Workload("softmax over rows  float32 (rows x 1000)", _table_2d, _softmax, ("exp", "max", "sum")),
     "GB/s"),
]


def add_arguments(parser) -> None:
    parser.add_argument("--device", default=None, help="device to run on (default: the default device)")
    parser.add_argument("--quick", action="store_true",
                        help=f"small sizes ({QUICK_SIZE:,} elements) for a fast check")
    parser.add_argument("--size", type=int, default=None,
                        help=f"elements of the largest workload (default {FULL_SIZE:,}, with --quick "
                             f"{QUICK_SIZE:,})")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per side (median reported)")
    parser.add_argument("--only", nargs="+", metavar="WORD", default=None,
                        help="run only the workloads whose name contains one of these words")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--quiet", action="store_true", help="no progress bar on stderr")


class Bar:
    """A progress bar on stderr: ``bench [#####.....] 3/8 name: phase`` (one line per update when
    stderr is not a terminal)."""

    def __init__(self, total: int, enabled: bool, width: int = 20):
        self.total, self.width, self.done = total, width, 0
        self.out = Progress(enabled)

    def __call__(self, msg: str) -> None:
        msg = msg.split("] ", 1)[-1]   # the demo runner prefixes "demo [i/n] "
        filled = self.width * self.done // max(1, self.total)
        self.out(f"bench [{'#' * filled}{'.' * (self.width - filled)}] {self.done}/{self.total} {msg}")

    def finish(self) -> None:
        self.out.done()


def _measured(w: Workload, seen: dict) -> Workload:
    """``w`` with its data and NumPy result recorded in ``seen`` (for bytes and flops)."""
    def make(rng, n):
        seen["inputs"] = w.make(rng, n)
        return seen["inputs"]

    def fn(m, *arrays):
        out = w.fn(m, *arrays)
        if m is np:
            seen["output"] = np.asarray(out)
        return out
    return replace(w, make=make, fn=fn)


def _throughput(row: dict, measure: str, seen: dict) -> None:
    inputs, out = seen.get("inputs", ()), seen.get("output")
    nbytes = sum(a.nbytes for a in inputs) + (out.nbytes if out is not None else 0)
    row["bytes"] = int(nbytes)
    row["GBps"] = nbytes / row["ours_s"] / 1e9 if row["ours_s"] > 0 else None
    row["numpy_GBps"] = nbytes / row["numpy_s"] / 1e9 if row["numpy_s"] > 0 else None
    if measure == "GFLOP/s":
        (m, k), (_, n) = inputs[0].shape, inputs[1].shape
        row["flops"] = 2 * m * k * n
        row["GFLOPps"] = row["flops"] / row["ours_s"] / 1e9 if row["ours_s"] > 0 else None
    row["measure"] = measure


def _num(x: float) -> str:
    """A rate with two significant digits below 10 (0.031, 2.4), one decimal above."""
    return f"{x:.1f}" if x >= 10 else f"{x:.2g}"


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.2f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"


def table(rows: list) -> str:
    """The text table of :func:`run` (one line per workload)."""
    head = ["workload", "check", "ours", "NumPy", "NumPy/ours", "ours", "NumPy", "kernels"]
    lines = []
    for r in rows:
        if "ratio" not in r:
            lines.append([r["name"], "skipped: " + r["skipped"] if "skipped" in r else "FAIL: " + r["error"]])
            continue
        if r["measure"] == "GFLOP/s":
            ours = f"{_num(r['GFLOPps'])} GFLOP/s"
            theirs = f"{_num(r['flops'] / r['numpy_s'] / 1e9)} GFLOP/s"
        else:
            ours, theirs = f"{_num(r['GBps'])} GB/s", f"{_num(r['numpy_GBps'])} GB/s"
        lines.append([r["name"], "ok" if r["ok"] else f"FAIL ({r['max_error']:.1e})", _fmt_time(r["ours_s"]),
                      _fmt_time(r["numpy_s"]), f"{r['ratio']:.2f}x", ours, theirs, f"{r['launches']:g}"])
    widths = [max([len(h)] + [len(l[i]) for l in lines if len(l) == len(head)]) for i, h in enumerate(head)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    out = [fmt(head), "  ".join("-" * w for w in widths)]
    out += [fmt(l) if len(l) == len(head) else "  ".join([l[0].ljust(widths[0]), l[1]]) for l in lines]
    return "\n".join(out)


def run(args) -> int:
    size = args.size if args.size is not None else (QUICK_SIZE if args.quick else FULL_SIZE)
    if size < 1 or args.repeats < 1:
        print("bench: --size and --repeats must be at least 1", file=sys.stderr)
        return 2
    import egpu_array as xp

    from .__main__ import resolve_device
    chosen = [(w, m) for w, m in BENCHMARKS
              if not args.only or any(word.lower() in w.name.lower() for word in args.only)]
    if not chosen:
        names = "; ".join(w.name for w, _ in BENCHMARKS)
        print(f"bench: --only {' '.join(args.only)} matches no workload; they are: {names}", file=sys.stderr)
        return 2
    device = resolve_device(args.device, "bench")
    if device is None:
        return 2
    run_args = replace_args(args, size)
    bar = Bar(len(chosen), not args.quiet)
    if not args.json:
        print(f"egpu_array {xp.__version__} bench on device {device}, {size:,} elements, median of "
              f"{args.repeats} runs (NumPy {np.__version__}); ratio > 1: faster than NumPy")
    t_start = time.perf_counter()
    rows = []
    for i, (w, measure) in enumerate(chosen, 1):
        seen: dict = {}
        try:
            row = _run_workload(xp, _measured(w, seen), run_args, device, bar, i, len(chosen))
            if "ratio" in row:
                _throughput(row, measure, seen)
        except Exception as exc:  # one broken workload is a failed check, not a traceback
            text = str(exc).strip().splitlines()
            row = {"name": w.name, "error": f"{type(exc).__name__}: {text[0] if text else ''}"}
        rows.append(row)
        bar.done = i
    bar.finish()
    failed = [r for r in rows if "error" in r or ("ok" in r and not r["ok"])]
    if args.json:
        print(json.dumps({"version": xp.__version__, "device": str(device), "size": size,
                          "repeats": args.repeats, "numpy": np.__version__, "workloads": rows,
                          "failed": len(failed), "seconds": time.perf_counter() - t_start}))
    else:
        print(table(rows))
        print(f"\n{len(rows) - len(failed)}/{len(rows)} checks passed; "
              f"total {time.perf_counter() - t_start:.1f} s")
        for r in failed:
            print(f"FAILED: {r['name']}: " + (r.get("error") or f"max error {r['max_error']:.3g}"))
    return 1 if failed else 0


def replace_args(args, size: int):
    """The settings the demo's workload runner reads."""
    from argparse import Namespace
    return Namespace(size=size, repeats=args.repeats, seed=args.seed)
