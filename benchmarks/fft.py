"""FFT benchmark on the cpu device against numpy.fft (pocketfft), in one process, interleaved.

    python -m benchmarks fft [--repeats 5] [--cases c2c_1m,rfft_batch,fft2d,irfft_batch] [--json]

Cases: a 2^20-point complex64 ``fft``; a batch of 1024 rows of 1024-point float32 ``rfft``; a
2-D ``fftn`` of a 2048x2048 complex64 array; the ``irfft`` of the rfft batch's spectra. NumPy (>= 2) computes float32/complex64 in single
precision on one thread; ours uses the device's threads (EGPU_ARRAY_NUM_THREADS). Each timing
includes allocating the output and forcing the result (``synchronize``); the first call (compile,
tables) is an untimed warm-up. The error of ours against NumPy's complex128 result is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = "benchmarks"

import numpy as np  # noqa: E402

from benchmarks._harness import fmt_time, interleaved, machine_info  # noqa: E402

CASES = {
    "c2c_1m": "fft of 2^20 complex64",
    "rfft_batch": "rfft of 1024 x 1024 float32 (each row)",
    "fft2d": "fftn of 2048 x 2048 complex64",
    "irfft_batch": "irfft of 1024 x 513 complex64 (each row)",
}


def _inputs(name: str, rng):
    if name == "c2c_1m":
        n = 1 << 20
        return (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    if name == "rfft_batch":
        return rng.standard_normal((1024, 1024), dtype=np.float32)
    if name == "irfft_batch":
        return np.fft.rfft(rng.standard_normal((1024, 1024), dtype=np.float32)).astype(np.complex64)
    return (rng.standard_normal((2048, 2048)) + 1j * rng.standard_normal((2048, 2048))).astype(np.complex64)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks/fft.py", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import egpu_array as xp
    rng = np.random.default_rng(0)
    results = {}
    for name in args.cases.split(","):
        a = _inputs(name, rng)
        x = xp.asarray(a)
        xp.synchronize(x)
        ours, theirs, ref64 = {
            "c2c_1m": (lambda: xp.fft.fft(x), lambda: np.fft.fft(a), lambda: np.fft.fft(a.astype(np.complex128))),
            "rfft_batch": (lambda: xp.fft.rfft(x), lambda: np.fft.rfft(a),
                           lambda: np.fft.rfft(a.astype(np.float64))),
            "fft2d": (lambda: xp.fft.fftn(x), lambda: np.fft.fftn(a), lambda: np.fft.fftn(a.astype(np.complex128))),
            "irfft_batch": (lambda: xp.fft.irfft(x), lambda: np.fft.irfft(a),
                            lambda: np.fft.irfft(a.astype(np.complex128))),
        }[name]
        ref = ref64()
        scale = np.linalg.norm(ref)
        err_ours = float(np.linalg.norm(np.asarray(ours()) - ref) / scale)
        err_np = float(np.linalg.norm(theirs() - ref) / scale)
        r = interleaved({"ours": lambda: xp.synchronize(ours()), "numpy": theirs}, args.repeats)
        results[name] = {"what": CASES[name], "ours_s": r["ours"]["median"], "numpy_s": r["numpy"]["median"],
                         "ratio_numpy_over_ours": r["numpy"]["median"] / r["ours"]["median"],
                         "rel_error_ours": err_ours, "rel_error_numpy": err_np}
    dev = xp.__array_namespace_info__().default_device()
    info = {"threads": getattr(dev, "num_threads", None), "numpy": np.__version__,
            "machine": machine_info(), "results": results}
    if args.json:
        print(json.dumps(info, indent=1, default=str))
    else:
        for name, r in results.items():
            print(f"{r['what']:42s} ours {fmt_time(r['ours_s'])}  numpy {fmt_time(r['numpy_s'])}  "
                  f"NumPy/ours = {r['ratio_numpy_over_ours']:.2f}  (rel. error vs complex128: ours "
                  f"{r['rel_error_ours']:.1e}, numpy {r['rel_error_numpy']:.1e}; median of {args.repeats}, "
                  f"interleaved, threads={info['threads']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
