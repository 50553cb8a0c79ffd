"""matmul vs NumPy/OpenBLAS: float32/float64 squares of 1024 and 2048, and matmul + bias + relu.

Each thread setting runs in its own worker process with ``EGPU_ARRAY_NUM_THREADS`` and
``OPENBLAS_NUM_THREADS`` set before anything is imported (threadpoolctl, when installed, confirms
the OpenBLAS thread count). Ours and NumPy are timed interleaved in that process; times and
GFLOP/s (2*M*N*K) are medians of the repeats, "best/best" the ratio of the fastest runs (on a shared
machine the least disturbed ones); single-threaded, the "CPU-time ratio" compares the calling
thread's CPU time (both sides compute on it), which discounts time other jobs hold the core.
The epilogue case is ``maximum(x @ w + b, 0)``: one GEMM launch
for us, three passes for NumPy. The producer case is ``(x * s) @ w`` (s a scale per column of x; w square, and 64 columns wide):
ours fused (the scaling computed while A is packed: one launch), ours unfused (``x * s`` computed
into a temporary first, as before producer fusion: two launches) and NumPy (a temporary too).
Run: ``python -m benchmarks matmul [--threads 1 2] [--repeats N]``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from ._harness import format_table, interleaved, machine_info, progress, run_worker

CASES = [("float32", 1024), ("float32", 2048), ("float64", 1024), ("float64", 2048)]
EPILOGUE = [("float32", 1024), ("float32", 2048)]
#: (dtype, n, columns of w): x is n x n; a narrow w makes the GEMM cheap next to the pass it saves
PRODUCER = [("float32", 2048, 2048), ("float32", 2048, 64)]
GOALS = {"float32": 0.7, "float64": 0.6, "epilogue": 0.9, "producer": 0.9}


def _blas_threads():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [i.get("num_threads") for i in threadpool_info() if i.get("user_api") == "blas"]


def cpu_times(fns: dict, repeats: int) -> dict:
    """Median CPU time of this thread per call, interleaved: with one thread every flop of both
    sides runs on the calling thread, so this discounts the time other jobs hold the core."""
    import time
    times = {name: [] for name in fns}
    for k in range(repeats):
        for name in (list(fns) if k % 2 == 0 else list(fns)[::-1]):
            t0 = time.thread_time()
            fns[name]()
            times[name].append(time.thread_time() - t0)
    return {name: sorted(ts)[len(ts) // 2] for name, ts in times.items()}


def worker(repeats: int, kinds=("matmul", "epilogue", "producer")) -> dict:
    import numpy as np

    import egpu_array as xp
    rng = np.random.default_rng(0)
    rows = []
    for kind, cases in (("matmul", CASES), ("epilogue", EPILOGUE), ("producer", PRODUCER)):
        if kind not in kinds:
            continue
        for dtype, n, *more in cases:
            cols = more[0] if more else n
            a = rng.standard_normal((n, n)).astype(dtype)
            w = rng.standard_normal((n, cols)).astype(dtype)
            bias = rng.standard_normal(n).astype(dtype)  # (the producer's scale s is along K = n)
            xa, xw, xb = xp.asarray(a), xp.asarray(w), xp.asarray(bias)
            prof = None
            fns = {}
            if kind == "producer":
                def ours():
                    return xp.synchronize((xa * xb) @ xw)

                def unfused():  # the temporary first: what the product did before producer fusion
                    t = xa * xb
                    xp.synchronize(t)
                    return xp.synchronize(t @ xw)

                def theirs():
                    return (a * bias) @ w
                with xp.profile() as prof:
                    got = np.asarray((xa * xb) @ xw)
                ref = theirs()
                fns["unfused"] = unfused
            elif kind == "matmul":
                def ours():
                    return xp.synchronize(xa @ xw)

                def theirs():
                    return a @ w
                got, ref = np.asarray(xa @ xw), a @ w
            else:
                def ours():
                    return xp.synchronize(xp.maximum(xa @ xw + xb, 0))

                def theirs():
                    return np.maximum(a @ w + bias, 0)
                with xp.profile() as prof:
                    got = np.asarray(xp.maximum(xa @ xw + xb, 0))
                ref = theirs()
            eps = np.finfo(dtype).eps
            err = float(np.max(np.abs(got - ref)) / (np.max(np.abs(ref)) * n * eps))
            t = interleaved({"ours": ours, "numpy": theirs, **fns}, repeats, settle=0.2)
            single = os.environ.get("EGPU_ARRAY_NUM_THREADS") == "1" == os.environ.get("OPENBLAS_NUM_THREADS")
            cpu = cpu_times({"ours": ours, "numpy": theirs, **fns}, repeats) if single else None
            flops = 2.0 * n * n * cols
            rows.append({"kind": kind, "dtype": dtype, "n": n if cols == n else f"{n}x{cols}", "flops": flops,
                         "ours": t["ours"]["median"],
                         "numpy": t["numpy"]["median"], "ours_min": t["ours"]["min"], "numpy_min": t["numpy"]["min"],
                         "cpu_ratio": cpu["numpy"] / cpu["ours"] if cpu else None,
                         "gflops_cpu": flops / cpu["ours"] / 1e9 if cpu else None,
                         "gflops_ours": flops / t["ours"]["median"] / 1e9,
                         "gflops_numpy": flops / t["numpy"]["median"] / 1e9, "err_over_n_eps": err,
                         "launches": prof.launches if prof is not None else None,
                         "unfused": t["unfused"]["median"] if "unfused" in t else None,
                         "cpu_unfused_ratio": cpu["unfused"] / cpu["ours"] if cpu and "unfused" in cpu else None})
            progress(f"  {kind} {dtype} {rows[-1]['n']}: {rows[-1]['gflops_ours']:.1f} vs {rows[-1]['gflops_numpy']:.1f} GFLOP/s"
                     + (f" (unfused {flops / t['unfused']['median'] / 1e9:.1f})" if "unfused" in t else ""))
    return {"rows": rows, "blas_threads": _blas_threads()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--kinds", nargs="+", default=["matmul", "epilogue", "producer"],
                   choices=["matmul", "epilogue", "producer"], help="which cases to run")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.repeats, args.kinds)))
        return 0
    info = machine_info()
    print(f"matmul vs NumPy {info['numpy']} (OpenBLAS) on {info.get('cpu', '?')}, {info['cores']} cores; "
          "the machine is shared with other jobs: figures move between runs")
    for threads in args.threads:
        progress(f"threads={threads} ...")
        os.environ["OPENBLAS_NUM_THREADS"] = str(threads)
        res = run_worker("benchmarks.matmul", threads, ["--repeats", str(args.repeats), "--kinds", *args.kinds])
        head = ["case", "dtype", "n", "ours", "NumPy", "ours GFLOP/s", "NumPy GFLOP/s", "ours/NumPy", "best/best",
                "CPU-time ratio", "goal",
                "err/(n*eps)", "launches"]
        table = []
        for r in res["rows"]:
            ratio = r["numpy"] / r["ours"]
            goal = GOALS[r["kind"] if r["kind"] != "matmul" else r["dtype"]]
            label = {"matmul": "matmul", "epilogue": "relu(x@w+b)", "producer": "(x*s)@w"}[r["kind"]]
            table.append([label, r["dtype"], r["n"],
                          f"{r['ours'] * 1e3:.1f} ms", f"{r['numpy'] * 1e3:.1f} ms", f"{r['gflops_ours']:.1f}",
                          f"{r['gflops_numpy']:.1f}", f"{ratio:.2f}x", f"{r['numpy_min'] / r['ours_min']:.2f}x",
                          "-" if r["cpu_ratio"] is None else f"{r['cpu_ratio']:.2f}x ({r['gflops_cpu']:.0f} GF/s)",
                          f"{goal}x", f"{r['err_over_n_eps']:.3f}",
                          "-" if r["launches"] is None else r["launches"]])
        print(f"\nEGPU_ARRAY_NUM_THREADS={threads}, OPENBLAS_NUM_THREADS={threads} "
              f"(threadpoolctl reports BLAS threads: {res['blas_threads']})")
        print(format_table(head, table, left=2))
        fused = [r for r in res["rows"] if r["unfused"] is not None]
        if fused:
            print("\n  producer fusion: ours fused vs ours unfused (x*s computed into a temporary first)")
            print(format_table(["case", "dtype", "n", "fused", "unfused", "fused GFLOP/s", "unfused GFLOP/s",
                                "NumPy GFLOP/s", "unfused/fused", "CPU time unfused/fused"],
                               [["(x*s)@w", r["dtype"], r["n"], f"{r['ours'] * 1e3:.1f} ms",
                                 f"{r['unfused'] * 1e3:.1f} ms", f"{r['gflops_ours']:.1f}",
                                 f"{r['flops'] / r['unfused'] / 1e9:.1f}", f"{r['gflops_numpy']:.1f}",
                                 f"{r['unfused'] / r['ours']:.2f}x",
                                 "-" if r["cpu_unfused_ratio"] is None else f"{r['cpu_unfused_ratio']:.2f}x"]
                                for r in fused], left=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
