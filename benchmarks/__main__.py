"""``python -m benchmarks [SUITE] [options]``: run a benchmark suite (``elementwise``, ...).

Each suite is a module ``benchmarks/<suite>.py`` with ``main(argv) -> int``; options after the
suite name go to it (``python -m benchmarks elementwise --help``).
"""
from __future__ import annotations

import importlib
import sys

SUITES = {
    "elementwise": "fused elementwise kernels, per-op overhead and compile time vs NumPy",
    "sort": "sort of 1e7 float32 vs NumPy",
    "softmax": "softmax over the rows of 4096x4096 float32 vs NumPy",
    "reductions": "sum/max/mean of 1e7 elements, whole array and along each axis, vs NumPy",
    "searching": "argmax/argmin, nonzero, searchsorted, isin, unique, cumulative_sum of 1e7 elements vs NumPy",
    "matmul": "float32/float64 matmul of 1024/2048 squares and matmul+bias+relu vs NumPy/OpenBLAS (GFLOP/s)",
    "linalg": "float64 cholesky/solve/inv/slogdet/qr/svd/eigh of 1000x1000 (blocked on our GEMM) vs numpy.linalg",
    "tridiagonal": "divide-and-conquer symmetric tridiagonal eigensolver (n = 1000) vs numpy.linalg.eigh",
    "fft": "2^20-point complex64 fft, 1024 x 1024 rfft, 2048x2048 fftn vs numpy.fft",
    "sklearn": "scikit-learn PCA, Ridge, pairwise_distances on 100,000 x 100 float32: cpu vs NumPy, sim with link time",
    "indexing": "transposed copy of 4096x4096 float32, x[mask], take, x[idx] = v, concat, roll vs NumPy",
    "gpu": "cuda device: elementwise, reductions, fused chain, matmul, copies, launch overhead vs CuPy/PyTorch (needs a GPU)",
    "cliffs": "everyday calls that were far slower than NumPy (powers, complex abs, logs, transposes, ...) vs NumPy",
    "usb_link": "modeled (virtual-clock) time to move 1 GB over the USB3/USB4 bridge presets, with and without overlap",
}


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip() + "\n\nsuites:")
        for name, text in SUITES.items():
            print(f"  {name:14s} {text}")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUITES:
        print(f"python -m benchmarks: unknown suite {name!r}; suites: {', '.join(SUITES)}", file=sys.stderr)
        return 2
    return importlib.import_module(f"benchmarks.{name}").main(rest)


if __name__ == "__main__":
    sys.exit(main())
