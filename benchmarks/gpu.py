"""GPU benchmarks of the cuda device against CuPy and PyTorch in the same process.

Every figure is device time between two CUDA events (after ``--warmup`` untimed runs, median of
``--repeats``) on random data (never zeros), except the host->device copy of a NumPy array, which
is host time (the copy ends when the data is on the device). Measures, with the goals of issue 7:

* ``d2d``: device-to-device copy bandwidth (the reference for elementwise and reductions, >= 85%);
* ``axpy``: ``a * b + c`` float32 and ``sum`` float32 in GB/s;
* ``chain``: ``a*b + c*d - sin(e)*exp(-a)`` fused (ours) vs CuPy's unfused ops (goal: 3x faster);
* ``reduce``: ``sum``, ``max`` and ``mean`` of 2^26 float32 and float64 elements over the whole
  array and over axis 0 and axis 1 of a (8192, 8192) array, in GB/s and as a share of d2d;
* ``sort``: ``sort`` and ``argsort`` of 2^24 random float32;
* ``matmul``: float32 at 4096 and 8192 vs PyTorch with TF32 off (cuBLAS; goal 50%);
* ``h2d``: a 1 GB NumPy array to the device vs the pinned-memory copy bandwidth (goal 80%);
* ``launch``: host time per launch of a one-element kernel (goal < 10 us): the whole eager op
  ``x + 1`` and the device layer's launch of an already compiled kernel;
* ``sweep``: ``a * b + c`` and ``sum`` under other launch shapes (work items per thread, threads
  per block, blocks per SM): the figures behind the defaults in backend/cuda.py;
* ``rsweep``: reductions down columns under other thread counts of the "spread" walk
  (``_schedule_reduce.GPU_THREADS_PER_UNIT``; the chunk count only, no new kernel);
* ``rvariants``: the reduce cases under other code-generation settings of the GPU reductions
  (``kernels.reduction.SPREAD_UNROLL``, ``kernels.ptx_reduce.UNROLL_BYTES``), interleaved in
  rounds, each variant with its own kernels (run with ``EGPU_ARRAY_CACHE_DIR=off``: the disk
  cache does not know these settings).

Run ``python -m benchmarks.gpu [--device cuda:0] [--repeats 20] [--only d2d,chain]``. Without a cuda
device it says why and exits with status 2.
"""
from __future__ import annotations

import argparse
import ctypes
import statistics
import sys
import time

import numpy as np

ALL = ("d2d", "axpy", "chain", "reduce", "sort", "matmul", "h2d", "launch", "sweep", "rsweep", "rvariants")


def _optional(name):
    try:
        return __import__(name)
    except Exception:  # not installed, or installed without a usable GPU build
        return None


class Bench:
    """Timing helpers around one cuda device (and CuPy / PyTorch when importable)."""

    def __init__(self, xp, dev, repeats: int, warmup: int):
        from egpu_array.backend.cuda import EventTimer
        self.xp, self.dev, self.repeats, self.warmup = xp, dev, repeats, warmup
        self.timer = EventTimer(dev)
        self.rng = np.random.default_rng(12345)
        self.cupy = _optional("cupy")
        self.torch = _optional("torch")
        if self.torch is not None and not self.torch.cuda.is_available():
            self.torch = None
        self.rows = []

    def rand(self, shape, dtype="float32"):
        return self.rng.standard_normal(shape, dtype=np.float64).astype(dtype) + 0.5

    def ours(self, fn) -> float:
        """Median device seconds of ``fn()`` (returns an Array, computed here)."""
        def once():
            self.timer.start()
            out = fn()
            if out is not None:
                out._realize()
            return self.timer.stop()
        for _ in range(self.warmup):
            once()
        return statistics.median(once() for _ in range(self.repeats))

    def cupy_time(self, fn) -> float | None:
        if self.cupy is None:
            return None
        cp = self.cupy
        return self._event_time(fn, cp.cuda.Event, lambda a, b: cp.cuda.get_elapsed_time(a, b) / 1e3)

    def torch_time(self, fn) -> float | None:
        if self.torch is None:
            return None
        return self._event_time(fn, lambda: self.torch.cuda.Event(enable_timing=True),
                                lambda a, b: a.elapsed_time(b) / 1e3)

    def _event_time(self, fn, make_event, seconds) -> float:
        """Median seconds of ``fn`` between two device events of another library, after warm-up."""
        start, end = make_event(), make_event()
        for _ in range(self.warmup):
            fn()
        ts = []
        for _ in range(self.repeats):
            start.record()
            fn()
            end.record()
            end.synchronize()
            ts.append(seconds(start, end))
        return statistics.median(ts)

    HEADER = (f"{'benchmark':34s} {'ours ms':>9s} {'GB/s':>8s} {'GFLOP/s':>8s} {'cupy ms':>9s} "
              f"{'torch ms':>9s}  note")

    def row(self, name, ours, nbytes=None, flops=None, cupy=None, torch=None, note=""):
        """Record a result and print it at once (a run stopped at its time box keeps its rows)."""
        self.rows.append((name, ours, nbytes, flops, cupy, torch, note))
        print("row:", self._line(self.rows[-1]), flush=True)

    @staticmethod
    def _line(row) -> str:
        name, t, nb, fl, c, tt, note = row

        def ms(s):
            return f"{s * 1e3:9.3f}" if s else "        -"
        gbs = f"{nb / t / 1e9:8.1f}" if nb and t else "       -"
        gfl = f"{fl / t / 1e9:8.1f}" if fl and t else "       -"
        return f"{name:34s} {ms(t)} {gbs} {gfl} {ms(c)} {ms(tt)}  {note}"

    def table(self) -> str:
        return "\n".join([self.HEADER] + [self._line(r) for r in self.rows])


def bench_d2d(b: Bench) -> float:
    n = 1 << 30
    src, dst = b.dev.allocator.alloc(n), b.dev.allocator.alloc(n)
    h = b.rng.integers(1, 255, n, dtype=np.uint8)
    b.dev.copy_in(src, 0, h)
    t = b.ours(lambda: b.dev.copy_device(dst, 0, src, 0, n))
    b.row("d2d copy 1 GiB", t, 2 * n, note="reference bandwidth")
    return 2 * n / t


def bench_axpy(b: Bench, ref: float | None) -> None:
    xp, n = b.xp, 1 << 26
    a, c, d = (xp.asarray(b.rand(n), device=b.dev) for _ in range(3))
    t = b.ours(lambda: a * c + d)
    nb = 4 * 4 * n
    share = f"{nb / t / ref:.0%} of d2d (goal 85%)" if ref else ""
    b.row("a*b+c float32 2^26", t, nb, cupy=_cupy_fn(b, lambda x, y, z: x * y + z, n, 3),
          torch=_torch_fn(b, lambda x, y, z: x * y + z, n, 3), note=share)
    big = xp.asarray(b.rand(1 << 28), device=b.dev)
    t = b.ours(lambda: xp.sum(big))
    nb = 4 << 28
    share = f"{nb / t / ref:.0%} of d2d (goal 85%)" if ref else ""
    b.row("sum float32 2^28", t, nb, cupy=_cupy_fn(b, lambda x: x.sum(), 1 << 28, 1),
          torch=_torch_fn(b, lambda x: x.sum(), 1 << 28, 1), note=share)


def _cupy_fn(b, f, n, k):
    if b.cupy is None:
        return None
    args = [b.cupy.asarray(b.rand(n)) for _ in range(k)]
    return b.cupy_time(lambda: f(*args))


def _torch_fn(b, f, n, k):
    if b.torch is None:
        return None
    args = [b.torch.from_numpy(b.rand(n)).cuda() for _ in range(k)]
    return b.torch_time(lambda: f(*args))


def bench_chain(b: Bench) -> None:
    xp, n = b.xp, 1 << 26
    hs = [b.rand(n) for _ in range(5)]
    a, c, d, e, g = (xp.asarray(h, device=b.dev) for h in hs)
    t = b.ours(lambda: a * c + d * e - xp.sin(g) * xp.exp(-a))

    def chain(x, y, z, w, v, lib):
        return x * y + z * w - lib.sin(v) * lib.exp(-x)
    tc = b.cupy_time((lambda xs: lambda: chain(*xs, b.cupy))([b.cupy.asarray(h) for h in hs])) \
        if b.cupy is not None else None
    tt = b.torch_time((lambda xs: lambda: chain(*xs, b.torch))([b.torch.from_numpy(h).cuda() for h in hs])) \
        if b.torch is not None else None
    note = f"{tc / t:.2f}x CuPy unfused (goal 3x)" if tc else ""
    b.row("a*b+c*d-sin(e)*exp(-a) f32 2^26", t, 6 * 4 * n, cupy=tc, torch=tt, note=note)


def bench_reduce(b: Bench, ref: float | None) -> None:
    """sum / max / mean (and argmax) over the whole array, axis 0 and axis 1 (issue 4's cases,
    GPU-sized)."""
    xp = b.xp
    for dtype in ("float32", "float64"):
        h = b.rand((8192, 8192), dtype)
        a = xp.asarray(h, device=b.dev)
        ca = b.cupy.asarray(h) if b.cupy is not None else None
        ta = b.torch.from_numpy(h).cuda() if b.torch is not None else None
        for name in ("sum", "max", "mean"):
            for axis in (None, 0, 1):
                t = b.ours(lambda: getattr(xp, name)(a, axis=axis))
                tc = b.cupy_time(lambda: getattr(ca, name)(axis=axis)) if ca is not None else None
                if ta is not None:
                    tf = {"sum": b.torch.sum, "mean": b.torch.mean,
                          "max": lambda x, dim=None: b.torch.amax(x) if dim is None else b.torch.amax(x, dim=dim)}[name]
                    tt = b.torch_time(lambda: tf(ta) if axis is None else tf(ta, dim=axis))
                else:
                    tt = None
                share = f"{h.nbytes / t / ref:.0%} of d2d (goal 85%)" if ref else ""
                where = "whole" if axis is None else f"axis {axis}"
                b.row(f"{name} {dtype} 8192^2 {where}", t, h.nbytes, cupy=tc, torch=tt, note=share)
        for axis in (None, 0, 1):  # argmax: (value, index) pairs; columns are a thread per output
            t = b.ours(lambda: xp.argmax(a, axis=axis))
            tc = b.cupy_time(lambda: ca.argmax(axis=axis)) if ca is not None else None
            tt = b.torch_time(lambda: b.torch.argmax(ta) if axis is None else b.torch.argmax(ta, dim=axis)) \
                if ta is not None else None
            where = "whole" if axis is None else f"axis {axis}"
            share = f"{h.nbytes / t / ref:.0%} of d2d" if ref else ""
            b.row(f"argmax {dtype} 8192^2 {where}", t, h.nbytes, cupy=tc, torch=tt, note=share)


def bench_sort(b: Bench) -> None:
    xp, n = b.xp, 1 << 24
    h = b.rand(n)
    a = xp.asarray(h, device=b.dev)
    for name, ours, theirs in (("sort", xp.sort, "sort"), ("argsort", xp.argsort, "argsort")):
        t = b.ours(lambda: ours(a))
        tc = b.cupy_time((lambda x: lambda: getattr(b.cupy, theirs)(x))(b.cupy.asarray(h))) \
            if b.cupy is not None else None
        tt = None
        if b.torch is not None:
            ta = b.torch.from_numpy(h).cuda()
            tt = b.torch_time(lambda: b.torch.sort(ta, stable=True) if name == "sort"
                              else b.torch.argsort(ta, stable=True))
        b.row(f"{name} float32 2^24", t, 2 * h.nbytes, cupy=tc, torch=tt, note="random; GB/s of one read + one write")


def bench_matmul(b: Bench) -> None:
    xp = b.xp
    if b.torch is not None:
        b.torch.backends.cuda.matmul.allow_tf32 = False
    for n in (4096, 8192):
        ha, hb = b.rand((n, n)), b.rand((n, n))
        a, c = xp.asarray(ha, device=b.dev), xp.asarray(hb, device=b.dev)
        t = b.ours(lambda: a @ c)
        tt = None
        if b.torch is not None:
            ta, tb = b.torch.from_numpy(ha).cuda(), b.torch.from_numpy(hb).cuda()
            tt = b.torch_time(lambda: ta @ tb)
        note = f"{tt / t:.0%} of cuBLAS (TF32 off; goal 50%)" if tt else ""
        b.row(f"matmul float32 {n}", t, flops=2 * n ** 3, torch=tt, note=note)


def bench_h2d(b: Bench) -> None:
    from egpu_array.backend.cuda import EventTimer
    dev, n = b.dev, 1 << 30
    h = b.rng.integers(1, 255, n, dtype=np.uint8)
    # pinned reference: one 256 MiB pinned buffer copied with cuMemcpyHtoDAsync
    m = 256 << 20
    pinned = dev.drv.out_ptr("cuMemHostAlloc", m, 0)
    ctypes.memmove(pinned, h.ctypes.data, m)
    dst = dev.allocator.alloc(n)
    timer = EventTimer(dev)
    ts = []
    for _ in range(b.warmup + b.repeats):
        timer.start()
        dev.drv.call("cuMemcpyHtoDAsync_v2", dst.ptr, pinned, m, dev.compute)
        ts.append(timer.stop())
    t_pinned = statistics.median(ts[b.warmup:])
    b.row("h2d pinned 256 MiB", t_pinned, m, note="reference")
    dev.drv.call("cuMemFreeHost", pinned)
    del dst
    ts = []
    for _ in range(max(3, b.repeats // 4)):
        t0 = time.perf_counter()
        x = b.xp.asarray(h, device=dev)
        dev.synchronize()
        ts.append(time.perf_counter() - t0)
        del x
    t = statistics.median(ts)
    b.row("h2d numpy 1 GiB (host time)", t, n, note=f"{(n / t) / (m / t_pinned):.0%} of pinned (goal 80%)")


def bench_launch(b: Bench) -> None:
    xp = b.xp
    x = xp.asarray(b.rand(1), device=b.dev)
    k = 1000
    for _ in range(10):
        (x + 1.0)._realize()
    b.dev.synchronize()
    t0 = time.perf_counter()
    for _ in range(k):
        (x + 1.0)._realize()
    b.dev.synchronize()
    t = (time.perf_counter() - t0) / k
    b.row("launch: x + 1 on one element", t, note=f"{t * 1e6:.1f} us host time per op (goal < 10 us)")
    # the device layer alone: the kernel of x + 1, compiled, its argument block ready (captured
    # from one launch; y keeps the output buffer alive while the launches rewrite it)
    seen = []
    launch = b.dev.launch
    b.dev.launch = lambda program, args, n, *rest, **kw: (seen.append((program, args)), launch(program, args, n, *rest, **kw))
    try:
        y = x + 1.0
        y._realize()
    finally:
        del b.dev.launch
    program, args = seen[-1]
    for _ in range(10):
        b.dev.launch(program, args, 1)
    b.dev.synchronize()
    t0 = time.perf_counter()
    for _ in range(k):
        b.dev.launch(program, args, 1)
    b.dev.synchronize()
    t = (time.perf_counter() - t0) / k
    b.row("launch: device.launch, compiled", t, note=f"{t * 1e6:.1f} us host time per kernel (goal < 10 us)")


def bench_sweep(b: Bench, ref: float | None) -> None:
    """Launch shapes for the grid-stride elementwise kernel and the block reduction."""
    from egpu_array.backend import cuda
    xp, n, dev = b.xp, 1 << 26, b.dev
    a, c, d = (xp.asarray(b.rand(n), device=dev) for _ in range(3))
    big = xp.asarray(b.rand(1 << 28), device=dev)
    saved = (dict(cuda.PER_CALL), cuda.BLOCK, dev.max_grid)
    try:
        for per in (1, 2, 4, 8):
            for block in (128, 256, 512):
                for per_sm in (16, 32, 64):
                    cuda.PER_CALL["elementwise"], cuda.BLOCK = per, block
                    dev.max_grid = dev.multiprocessors * per_sm
                    t = b.ours(lambda: a * c + d)
                    share = f"{16 * n / t / ref:.0%} of d2d" if ref else ""
                    b.row(f"sweep a*b+c per={per} block={block} grid={per_sm}/SM", t, 16 * n, note=share)
        cuda.PER_CALL.clear()
        cuda.PER_CALL.update(saved[0])
        for block in (128, 256, 512):
            cuda.BLOCK = block
            t = b.ours(lambda: xp.sum(big))
            share = f"{(4 << 28) / t / ref:.0%} of d2d" if ref else ""
            b.row(f"sweep sum f32 2^28 block={block}", t, 4 << 28, note=share)
    finally:
        cuda.PER_CALL.clear()
        cuda.PER_CALL.update(saved[0])
        cuda.BLOCK, dev.max_grid = saved[1], saved[2]


def bench_rsweep(b: Bench, ref: float | None) -> None:
    """Column reductions (walk "spread") under other thread counts."""
    from egpu_array import _schedule_reduce as sr
    xp = b.xp
    saved, saved_chunks = sr.GPU_THREADS_PER_UNIT, sr.CHUNKS_PER_THREAD
    cases = [(np.dtype(dt), shape) for dt in ("float32", "float64") for shape in ((8192, 8192), (1 << 20, 16))]
    arrays = {(dt, shape): xp.asarray(b.rand(shape, dt.name), device=b.dev) for dt, shape in cases}
    try:
        for per_unit in (128, 256, 512, 1024, 2048, 4096):
            sr.GPU_THREADS_PER_UNIT = per_unit
            sr._PLANS.clear()  # (plans keep their chunk counts)
            for (dt, shape), a in arrays.items():
                for name in ("sum", "max"):
                    t = b.ours(lambda: getattr(xp, name)(a, axis=0))
                    nb = dt.itemsize * shape[0] * shape[1]
                    share = f"{nb / t / ref:.0%} of d2d" if ref else ""
                    b.row(f"rsweep {name} {dt.name} {shape} ax0 x{per_unit}", t, nb, note=share)
        sr.GPU_THREADS_PER_UNIT = saved
        # whole-array reductions: chunks of the block kernel
        for per_thread in (1, 2, 4, 8, 32):
            sr.CHUNKS_PER_THREAD = per_thread
            sr._PLANS.clear()
            for (dt, shape), a in arrays.items():
                if shape[1] != 8192:
                    continue
                for name in ("sum", "max"):
                    t = b.ours(lambda: getattr(xp, name)(a))
                    nb = dt.itemsize * shape[0] * shape[1]
                    share = f"{nb / t / ref:.0%} of d2d" if ref else ""
                    b.row(f"rsweep {name} {dt.name} whole chunks/thread {per_thread}", t, nb, note=share)
    finally:
        sr.GPU_THREADS_PER_UNIT, sr.CHUNKS_PER_THREAD = saved, saved_chunks
        sr._PLANS.clear()


#: (name, kernels.reduction.SPREAD_UNROLL, kernels.ptx_reduce.UNROLL_BYTES) of bench_rvariants
RVARIANTS = (("host rows, 16 B", 0, 16), ("spread x8, 16 B", 8, 16), ("spread x8, 32 B", 8, 32))


def bench_rvariants(b: Bench, ref: float | None, rounds: int = 3) -> None:
    """The reduce cases under each of RVARIANTS, interleaved: median over rounds of each
    round's median."""
    from egpu_array import _schedule_reduce as sr
    from egpu_array.kernels import cache, ptx_reduce, reduction
    if cache.cache_dir() is not None:
        raise RuntimeError("rvariants: run with EGPU_ARRAY_CACHE_DIR=off (the disk cache does not key these settings)")
    xp = b.xp
    arrays = {dt: xp.asarray(b.rand((8192, 8192), dt), device=b.dev) for dt in ("float32", "float64")}
    saved = (reduction.SPREAD_UNROLL, ptx_reduce.UNROLL_BYTES, cache._memory, sr._PLANS)
    state = {name: ({}, {}) for name, *_ in RVARIANTS}
    times: dict = {}
    try:
        for _ in range(rounds):
            for name, spread, nbytes in RVARIANTS:
                reduction.SPREAD_UNROLL, ptx_reduce.UNROLL_BYTES = spread, nbytes
                cache._memory, sr._PLANS = state[name]
                for dt, a in arrays.items():
                    for op in ("sum", "max", "mean"):
                        for axis in (None, 0, 1):
                            t = b.ours(lambda: getattr(xp, op)(a, axis=axis))
                            times.setdefault((name, dt, op, axis), []).append(t)
    finally:
        reduction.SPREAD_UNROLL, ptx_reduce.UNROLL_BYTES, cache._memory, sr._PLANS = saved
    for (name, dt, op, axis), ts in times.items():
        t = statistics.median(ts)
        nb = arrays[dt].size * np.dtype(dt).itemsize
        where = "whole" if axis is None else f"axis {axis}"
        share = f"{nb / t / ref:.0%} of d2d" if ref else ""
        b.row(f"rvar {op} {dt} {where} [{name}]", t, nb, note=share)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda:0")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--only", default=",".join(ALL), help=f"comma-separated subset of {','.join(ALL)}")
    args = p.parse_args(argv)
    import egpu_array as xp
    from egpu_array.backend import cuda, cuda_driver
    if args.device not in cuda.list_devices():
        try:
            cuda_driver.driver()
            why = f"the driver sees {cuda_driver.device_count()} CUDA device(s)"
        except xp.DeviceError as e:
            why = str(e)
        print(f"benchmarks.gpu: no cuda device {args.device!r} ({why}); these benchmarks need an NVIDIA GPU",
              file=sys.stderr)
        return 2
    dev = xp.asarray(0.0, device=args.device).device
    b = Bench(xp, dev, args.repeats, args.warmup)
    info = dev.info()
    print(f"{info['name']} sm_{''.join(map(str, info['compute_capability']))}, {info['multiprocessors']} SMs, "
          f"{info['total_memory'] / 2**30:.1f} GiB; cupy {'yes' if b.cupy else 'no'}, "
          f"torch {'yes' if b.torch else 'no'}; median of {args.repeats} after {args.warmup} warm-up runs")
    only = set(args.only.split(","))
    ref = None
    steps = [("d2d", lambda: bench_d2d(b)), ("axpy", lambda: bench_axpy(b, ref)), ("chain", lambda: bench_chain(b)),
             ("reduce", lambda: bench_reduce(b, ref)), ("sort", lambda: bench_sort(b)),
             ("matmul", lambda: bench_matmul(b)), ("h2d", lambda: bench_h2d(b)), ("launch", lambda: bench_launch(b)),
             ("sweep", lambda: bench_sweep(b, ref)), ("rsweep", lambda: bench_rsweep(b, ref)),
             ("rvariants", lambda: bench_rvariants(b, ref))]
    failed = 0
    for name, run in steps:
        if name not in only:
            continue
        try:
            got = run()
            if name == "d2d":
                ref = got
        except Exception:  # report it, keep the other figures
            import traceback
            traceback.print_exc()
            failed += 1
            b.row(f"{name}: FAILED (traceback above)", None)
    print(b.table())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
