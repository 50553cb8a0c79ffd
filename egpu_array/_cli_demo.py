"""Run realistic workloads on the default device, check each against NumPy and time both.

Every workload is one function written against the array API, run once with ``egpu_array`` and once
with NumPy on the same data. Our time includes building the lazy expression and computing it
(``synchronize``), never the copy back; each side gets a warm-up (ours compiles its kernel there), then
the median of ``--repeats`` runs, interleaved. Exit status 1 if any check fails.
"""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

#: (rtol, atol relative to the largest magnitude of the reference) per result dtype
TOLERANCES = {
    "float32": (2e-5, 2e-6), "complex64": (2e-5, 2e-6),
    "float64": (1e-12, 1e-14), "complex128": (1e-12, 1e-14),
}


@dataclass
class Workload:
    name: str
    make: Callable          # (rng, size) -> tuple of NumPy arrays
    fn: Callable            # (namespace, *arrays) -> array; the same code for egpu_array and NumPy
    needs: tuple = ()       # namespace functions it needs (skipped with a note when missing)
    size: Callable = lambda n: n
    check: Callable | None = None   # (ours, ref) -> (ok, max error); default: elementwise allclose


def _fused(m, a, b, c, d, e):
    return a * b + c * d - m.sin(e) * m.exp(-a)


def _poly_where_clip(m, x):
    p = ((0.5 * x - 1.25) * x + 3.0) * x - 0.75
    return m.clip(m.where(x > 0, p, 0.25 * x * x - m.abs(x)), -4.0, 4.0)


def _complex(m, z, w):
    return z * w + m.conj(z) * (0.5 - 0.25j) - m.exp(z * 0.1j) / (w * w + 2)


def _reduction(m, x, y):
    return m.sum(x * y + 0.5 * x)


def _matmul(m, a, b):
    return m.matmul(a, b)


def _normal(rng, n, dtype):
    if np.dtype(dtype).kind == "c":
        real = np.float32 if dtype == np.complex64 else np.float64
        return (rng.standard_normal(n, dtype=real) + 1j * rng.standard_normal(n, dtype=real)).astype(dtype)
    return rng.standard_normal(n, dtype=dtype)


def _sum_check(ours, ref, x, y):
    scale = float(np.sum(np.abs(x.astype(np.float64) * y + 0.5 * x)))
    err = abs(float(ours) - float(ref))
    return err <= 1e-6 * scale + 1e-30, err


def _matmul_n(size: int) -> int:
    return max(16, min(512, int(round((size / 40) ** 0.5))))


WORKLOADS = [
    Workload("a*b + c*d - sin(e)*exp(-a)  float32", lambda rng, n: tuple(_normal(rng, n, np.float32) for _ in range(5)),
             _fused, ("sin", "exp")),
    Workload("polynomial/where/clip  float64", lambda rng, n: (_normal(rng, n, np.float64) * 2,),
             _poly_where_clip, ("where", "clip", "abs")),
    Workload("z*w + conj(z)*c - exp(0.1j*z)/(w*w+2)  complex64",
             lambda rng, n: (_normal(rng, n, np.complex64), _normal(rng, n, np.complex64)),
             _complex, ("conj", "exp"), size=lambda n: max(1, n // 4)),
    Workload("sum(x*y + 0.5*x)  float64", lambda rng, n: (_normal(rng, n, np.float64), _normal(rng, n, np.float64)),
             _reduction, ("sum",)),
    Workload("matmul  float32", lambda rng, n: (_normal(rng, _matmul_n(n) ** 2, np.float32).reshape(_matmul_n(n), -1),
                                                _normal(rng, _matmul_n(n) ** 2, np.float32).reshape(_matmul_n(n), -1)),
             _matmul, ("matmul",), size=lambda n: _matmul_n(n) ** 2),
]


class Progress:
    """One status line on stderr (rewritten in place on a terminal)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.tty = enabled and sys.stderr.isatty()
        self.dirty = False

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            sys.stderr.write("\r\x1b[K" + msg)
            self.dirty = True
        else:
            sys.stderr.write(msg + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty and self.dirty:
            sys.stderr.write("\r\x1b[K")
            sys.stderr.flush()
            self.dirty = False


def add_arguments(parser) -> None:
    parser.add_argument("--size", type=int, default=10_000_000, help="elements of the largest workload")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per side (median reported)")
    parser.add_argument("--device", default=None, help="device to run on (default: the default device)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the data")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def _default_check(ours, ref):
    rtol, atol_rel = TOLERANCES.get(ref.dtype.name, (1e-12, 0.0))
    if ours.shape != ref.shape or ours.dtype != ref.dtype:
        return False, float("inf")
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(ours.astype(np.complex128 if ref.dtype.kind == "c" else np.float64) - ref)
        finite = np.isfinite(ref)
        same_nonfinite = bool(np.all((ours[~finite] == ref[~finite]) | (np.isnan(ours[~finite]) & np.isnan(ref[~finite]))))
        scale = float(np.max(np.abs(ref[finite]))) if finite.any() else 0.0
        d = diff[finite]
        ok = same_nonfinite and bool(np.all(d <= atol_rel * scale + rtol * np.abs(ref[finite])))
        return ok, float(np.max(d)) if d.size else 0.0


def _run_workload(xp, w: Workload, args, device, progress, index: int, total: int) -> dict:
    name = w.name
    missing = [f for f in w.needs if not hasattr(xp, f)]
    if missing:
        return {"name": name, "skipped": f"{', '.join('xp.' + f for f in missing)} not available yet"}
    n = w.size(args.size)
    tag = f"demo [{index}/{total}] {name.split('  ')[0]}"
    progress(f"{tag}: making {n:,} elements of data")
    rng = np.random.default_rng(args.seed + index)
    host = w.make(rng, args.size)
    dev_in = [xp.asarray(h, device=device) for h in host]
    xp.synchronize(*dev_in)

    def ours():
        r = w.fn(xp, *dev_in)
        xp.synchronize(r)
        return r

    progress(f"{tag}: first run (compiles its kernel unless cached)")
    t0 = time.perf_counter()
    with xp.profile() as prof_first:
        r = ours()
    first = time.perf_counter() - t0
    ref = w.fn(np, *host)  # NumPy warm-up
    t_ours, t_np = [], []
    with xp.profile() as prof:
        for k in range(args.repeats):
            progress(f"{tag}: timing run {k + 1}/{args.repeats}")
            t0 = time.perf_counter()
            r = ours()
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            ref = w.fn(np, *host)
            t_np.append(time.perf_counter() - t0)
    progress(f"{tag}: checking")
    ours_host = np.asarray(r)
    ref = np.asarray(ref)
    ok, err = (w.check(ours_host, ref, *host) if w.check else _default_check(ours_host, ref))
    t_o, t_n = statistics.median(t_ours), statistics.median(t_np)
    return {"name": name, "ok": ok, "max_error": err, "ours_s": t_o, "numpy_s": t_n,
            "first_s": first, "ratio": t_n / t_o if t_o > 0 else float("inf"),
            "launches": prof.launches / max(1, args.repeats), "compiles": prof_first.compiles,
            "elements": n}


def _fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s >= 1e-3 else f"{s * 1e6:.0f} us"


def _table(rows: list) -> str:
    head = ["workload", "check (max err)", "ours", "NumPy", "NumPy/ours", "kernels", "first run"]
    lines = []
    for r in rows:
        if "skipped" in r:
            lines.append([r["name"], "skipped: " + r["skipped"], "", "", "", "", ""])
        elif "error" in r:
            msg = r["error"] if len(r["error"]) <= 60 else r["error"][:57] + "..."
            lines.append([r["name"], "FAIL: " + msg, "", "", "", "", ""])
        else:
            check = f"{'ok' if r['ok'] else 'FAIL'} ({r['max_error']:.1e})"
            lines.append([r["name"], check, _fmt_time(r["ours_s"]), _fmt_time(r["numpy_s"]),
                          f"{r['ratio']:.2f}x", f"{r['launches']:g}",
                          _fmt_time(r["first_s"]) + (f" ({r['compiles']} compiles)" if r["compiles"] else "")])
    widths = [max(len(h), *(len(l[i]) for l in lines if l[2] or i == 0)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(wd) if i < 2 else h.rjust(wd) for i, (h, wd) in enumerate(zip(head, widths)))]
    out.append("  ".join("-" * wd for wd in widths))
    for l in lines:
        if l[2] == "":
            out.append("  ".join([l[0].ljust(widths[0]), l[1]]))
        else:
            out.append("  ".join(c.ljust(wd) if i < 2 else c.rjust(wd) for i, (c, wd) in enumerate(zip(l, widths))))
    return "\n".join(out)


def run(args) -> int:
    if args.size < 1 or args.repeats < 1:
        print("demo: --size and --repeats must be at least 1", file=sys.stderr)
        return 2
    import egpu_array as xp
    from egpu_array._info import config

    from .__main__ import resolve_device
    device = resolve_device(args.device, "demo")
    if device is None:
        return 2
    progress = Progress(not args.quiet)
    threads = getattr(device, "num_threads", None)
    print(f"egpu_array {xp.__version__} demo on device {device}"
          + (f" ({threads} threads)" if threads else "")
          + f", {args.size:,} elements, median of {args.repeats} runs"
          + f", kernel cache: {config().cache_dir or 'off'}")
    rows = []
    t_start = time.perf_counter()
    for i, w in enumerate(WORKLOADS, 1):
        try:
            rows.append(_run_workload(xp, w, args, device, progress, i, len(WORKLOADS)))
        except Exception as exc:  # a crash in one workload is a failed check, not a traceback
            rows.append({"name": w.name, "error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"})
    progress.done()
    print(_table(rows))
    failed = [r for r in rows if "error" in r or ("ok" in r and not r["ok"])]
    ran = [r for r in rows if "skipped" not in r]
    print(f"\n{len(ran) - len(failed)}/{len(ran)} checks passed, {len(rows) - len(ran)} skipped; "
          f"ratio > 1 means faster than NumPy; total {time.perf_counter() - t_start:.1f} s")
    for r in failed:
        print(f"FAILED: {r['name']}: " + (r.get("error") or f"max error {r['max_error']:.3g} over tolerance"))
    return 1 if failed else 0
