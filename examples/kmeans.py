"""k-means clustering (Lloyd's algorithm) of points drawn around k centres.

Each iteration computes all point-centre squared distances by broadcasting ((n, 1, d) - (1, k, d)),
assigns each point to its nearest centre with ``argmin``, and recomputes the centres as per-cluster
means with a one-hot matrix: ``onehot.T @ points / counts``. An empty cluster keeps its centre.

    python examples/kmeans.py [--device cpu|sim] [--size N] [--steps ITERATIONS]

Checks: labels identical to NumPy's, centres and inertia equal to rounding, and the true centres
recovered.
"""
from __future__ import annotations

import sys

import _common

K, D = 4, 3
TRUE_CENTRES = [[0.0, 0.0, 0.0], [6.0, 0.0, 1.0], [0.0, 6.0, -1.0], [5.0, 5.0, 5.0]]


def make_points(xp, device, n: int, seed: int = 11):
    """n points: cluster i % K around TRUE_CENTRES[i % K], unit normal noise."""
    centres = xp.asarray(TRUE_CENTRES, dtype=xp.float64, device=device)
    which = xp.arange(n, device=device) % K
    noise = xp.reshape(_common.normal(xp, seed, 0, n * D, device), (n, D))
    return xp.take(centres, which, axis=0) + noise


def kmeans(xp, device, n: int, iterations: int):
    """(labels, centres, inertia) after ``iterations`` Lloyd steps from the first K points."""
    x = make_points(xp, device, n)
    centres = x[:K, :]
    ks = xp.arange(K, device=device)
    for _ in range(iterations):
        d2 = xp.sum((x[:, None, :] - centres[None, :, :]) ** 2, axis=-1)      # (n, K)
        labels = xp.argmin(d2, axis=1)
        onehot = xp.astype(labels[:, None] == ks[None, :], x.dtype)          # (n, K)
        counts = xp.sum(onehot, axis=0)                                      # (K,)
        sums = xp.matrix_transpose(onehot) @ x                               # (K, D)
        centres = xp.where(counts[:, None] > 0, sums / xp.maximum(counts, 1.0)[:, None], centres)
    d2 = xp.sum((x[:, None, :] - centres[None, :, :]) ** 2, axis=-1)
    labels = xp.argmin(d2, axis=1)
    inertia = xp.sum(xp.min(d2, axis=1))
    return labels, centres, float(inertia)


def main(argv=None) -> int:
    import numpy as np
    args = _common.parse_args(__doc__.splitlines()[0], size=20_000, steps=15, argv=argv)
    if args.size < K:
        sys.exit(f"error: --size must be at least {K}")
    ours, ref, seconds = _common.run_both(kmeans, args, args.size, args.steps)
    (labels, centres, inertia), (ref_labels, ref_centres, ref_inertia) = ours, ref
    mismatched = int(np.count_nonzero(labels != ref_labels))
    cdiff = float(np.max(np.abs(centres - ref_centres)))
    true = np.asarray(TRUE_CENTRES)
    miss = float(np.max(np.min(np.linalg.norm(true[:, None, :] - centres[None, :, :], axis=-1), axis=1)))
    checks = [
        ("same labels as NumPy", mismatched == 0, f"{mismatched} of {args.size} differ"),
        ("same centres as NumPy", cdiff <= 1e-9, f"max difference {cdiff:.1e}"),
        ("same inertia as NumPy", abs(inertia - ref_inertia) <= 1e-9 * abs(ref_inertia),
         f"{inertia:.6f} vs {ref_inertia:.6f}"),
    ]
    if args.size >= 1000 and args.steps >= 10:
        checks.append(("true centres recovered", miss < 0.2,
                       f"every true centre within {miss:.3f} of a found one"))
    results = {"points": f"{args.size} in {D}-D, k = {K}, {args.steps} iterations",
               "device": f"{args.namespace} {args.device}", "inertia": f"{inertia:.6f}",
               "cluster sizes": np.bincount(labels, minlength=K).tolist()}
    return _common.report("kmeans", results, checks, seconds)


if __name__ == "__main__":
    sys.exit(main())
