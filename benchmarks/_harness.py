"""Shared benchmark machinery: interleaved timing, subprocess workers per thread setting, tables.

The project rule: performance is a ratio measured side by side in one process (ours vs NumPy,
interleaved, median of repeats), with the achieved GB/s next to the machine's memory limit.
Settings that must be fixed before ``import egpu_array`` (``EGPU_ARRAY_NUM_THREADS``,
``EGPU_ARRAY_CACHE_DIR``) get one subprocess each.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: measured memory bandwidth of this machine (bytes/s): one core, all cores
BANDWIDTH_ONE_CORE = 22e9
BANDWIDTH_ALL_CORES = 29e9


def bandwidth_limit(threads: int) -> float:
    return BANDWIDTH_ONE_CORE if threads <= 1 else BANDWIDTH_ALL_CORES


def progress(msg: str) -> None:
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def interleaved(fns: dict, repeats: int, warmup: int = 1, settle: float = 0.0) -> dict:
    """Time each callable ``repeats`` times, interleaved (A B A B ...; the order alternates so
    neither side always runs on a cache warmed by the other), after ``warmup`` untimed calls.
    ``settle`` seconds of sleep before each timed call let the other side's idle worker threads go
    to sleep (OpenBLAS's spin for a while after a call and would steal cores from the next one).
    Returns name -> {"median": s, "min": s, "times": [...]}."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            fns[name]()
    times = {name: [] for name in names}
    for k in range(repeats):
        order = names if k % 2 == 0 else names[::-1]
        for name in order:
            if settle:
                time.sleep(settle)
            t0 = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: {"median": statistics.median(ts), "min": min(ts), "times": ts} for name, ts in times.items()}


def run_worker(module: str, threads: int | None, args: list, cache_dir: str | None = None,
               timeout: float = 600) -> dict:
    """Run ``python -m <module> --worker ARGS`` with the thread count fixed by the environment
    before egpu_array is imported; the worker prints one JSON object on its last stdout line."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if threads is None:
        env.pop("EGPU_ARRAY_NUM_THREADS", None)
    else:
        env["EGPU_ARRAY_NUM_THREADS"] = str(threads)
    with tempfile.TemporaryDirectory(prefix="egpu-bench-cache-") as tmp:
        env["EGPU_ARRAY_CACHE_DIR"] = cache_dir or tmp   # a fresh kernel cache per worker
        proc = subprocess.run([sys.executable, "-m", module, "--worker", *args], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout)
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark worker {module} (threads={threads}) failed with exit {proc.returncode}:\n"
                           + proc.stdout[-2000:])
    return json.loads(lines[-1])


def machine_info() -> dict:
    import platform

    import numpy as np
    info = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "bandwidth_one_core_GBps": BANDWIDTH_ONE_CORE / 1e9,
            "bandwidth_all_cores_GBps": BANDWIDTH_ALL_CORES / 1e9}
    try:
        import llvmlite
        info["llvmlite"] = llvmlite.__version__
    except ImportError:
        pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return info


def format_table(head: list, rows: list, left: int = 2) -> str:
    """Columns: the first ``left`` ones left-aligned, the rest right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([fmt(head), "  ".join("-" * w for w in widths)] + [fmt(r) for r in rows])


def fmt_time(s) -> str:
    if s is None:
        return "-"
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.1f} us"
