"""scikit-learn with ``array_api_dispatch=True`` on egpu_array vs the same calls on NumPy arrays.

Workloads on a 100,000 x 100 float32 matrix: ``PCA(n_components=10).fit_transform`` (the
covariance path: one X.T @ X and a small eigh), ``Ridge(alpha=1, solver="svd").fit`` (the solver scikit-learn uses under dispatch) and
``pairwise_distances(X, C)`` against 256 centres. On cpu the two runs are interleaved in one
process (median of repeats). On ``sim`` (the emulated eGPU) each workload runs once: the table gives
the wall time of the emulation and the modeled (virtual-clock) seconds the link spent copying,
which is what a real USB3 or USB4 enclosure would add.

Run: ``python -m benchmarks sklearn [--rows N] [--repeats R] [--no-sim]``
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("SCIPY_ARRAY_API", "1")   # before scipy/sklearn are imported

import numpy as np  # noqa: E402

from benchmarks._harness import interleaved, progress  # noqa: E402


def _workloads(n_centres: int):
    from sklearn.decomposition import PCA
    from sklearn.linear_model import Ridge
    from sklearn.metrics import pairwise_distances
    return {
        "PCA(10).fit_transform": lambda X, y: PCA(n_components=10).fit_transform(X),
        "Ridge(svd).fit": lambda X, y: Ridge(alpha=1.0, solver="svd").fit(X, y).coef_,
        f"pairwise_distances(X, C[{n_centres}])": lambda X, y: pairwise_distances(X, X[:n_centres]),
    }


def _sync(v):
    """Compute ``v`` now (the lazy result) and wait for its device."""
    import egpu_array as xp
    if isinstance(v, xp.Array):
        xp.synchronize(v)
    return v


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks sklearn", description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=100)
    ap.add_argument("--centres", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-sim", action="store_true", help="skip the sim device")
    args = ap.parse_args(argv)

    import egpu_array as xp
    from sklearn import config_context

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.rows, args.features)).astype(np.float32)
    y = (X @ rng.standard_normal(args.features).astype(np.float32)).astype(np.float32)
    work = _workloads(args.centres)
    gbytes = X.nbytes / 1e9
    print(f"scikit-learn array-API dispatch, X {args.rows} x {args.features} float32 ({gbytes * 1e3:.0f} MB)")
    print(f"{'workload':36s} {'numpy ms':>9s} {'cpu ms':>9s} {'ratio':>6s}")
    Xc, yc = xp.asarray(X), xp.asarray(y)
    for name, f in work.items():
        progress(f"cpu: {name}")

        def ours(f=f):
            with config_context(array_api_dispatch=True):
                _sync(f(Xc, yc))
        res = interleaved({"numpy": lambda f=f: f(X, y), "ours": ours}, repeats=args.repeats)
        t_np, t_us = res["numpy"]["median"], res["ours"]["median"]
        print(f"{name:36s} {t_np * 1e3:9.1f} {t_us * 1e3:9.1f} {t_np / t_us:5.2f}x")

    if args.no_sim:
        return 0
    from egpu_array.backend.device import get_device
    sim = get_device("sim")
    print(f"\nsim (emulated eGPU, {sim.link_model.name}): one run each; link seconds are modeled")
    print(f"{'workload':36s} {'wall s':>8s} {'link s':>8s} {'to dev MB':>10s} {'from dev MB':>12s}")
    for name, f in work.items():
        progress(f"sim: {name}")
        s0 = sim.stats()
        t0 = time.perf_counter()
        with xp.profile() as prof:
            Xs, ys = xp.asarray(X, device="sim"), xp.asarray(y, device="sim")
            with config_context(array_api_dispatch=True):
                out = _sync(f(Xs, ys))
        wall = time.perf_counter() - t0
        s1 = sim.stats()
        link_s = (s1["h2d_seconds"] - s0["h2d_seconds"]) + (s1["d2h_seconds"] - s0["d2h_seconds"])
        assert out.device == "sim"
        print(f"{name:36s} {wall:8.2f} {link_s:8.3f} {prof.bytes_to_device / 1e6:10.1f} "
              f"{prof.bytes_from_device / 1e6:12.2f}")
    return 0
