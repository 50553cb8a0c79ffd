"""Monte Carlo estimates of pi and of the integral of exp(-x^2) over [0, 1], with a random number
generator written against the Array API standard itself.

The generator (splitmix64, in ``_common.py``) mixes a uint64 counter with wrapping multiplies,
shifts and xors: every conforming namespace on every device draws exactly the same numbers, so the
hit count must agree with NumPy's to the last sample, and the integral to rounding. Samples are
drawn in blocks (the counter says where each block starts), so memory stays bounded.

    python examples/montecarlo.py [--device cpu|sim] [--size N]
"""
from __future__ import annotations

import math
import sys

import _common

BLOCK = 1 << 18


def montecarlo(xp, device, n: int, seed: int = 2025):
    """(hits inside the quarter disc, sum of exp(-u^2)) over ``n`` samples."""
    hits = 0
    total = 0.0
    for start in range(0, n, BLOCK):
        m = min(BLOCK, n - start)
        x = _common.uniform(xp, seed, start, m, device)
        y = _common.uniform(xp, seed + 1, start, m, device)
        inside = x * x + y * y <= 1.0
        hits += int(xp.count_nonzero(inside))
        total += float(xp.sum(xp.exp(-(x * x))))
    return hits, total


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], size=2_000_000, argv=argv)
    n = args.size
    (hits, total), (ref_hits, ref_total), seconds = _common.run_both(montecarlo, args, n)
    pi_est = 4.0 * hits / n
    integral = total / n
    exact = math.sqrt(math.pi) / 2 * math.erf(1.0)
    sigma_pi = 4.0 * math.sqrt((math.pi / 4) * (1 - math.pi / 4) / n)
    sigma_int = 0.2 / math.sqrt(n)  # std of exp(-u^2), u ~ U(0, 1), is about 0.2
    checks = [
        ("same hit count as NumPy", hits == ref_hits, f"{hits} vs {ref_hits}"),
        ("same integral as NumPy", abs(total - ref_total) <= 1e-12 * abs(ref_total),
         f"relative difference {abs(total - ref_total) / abs(ref_total):.1e}"),
        ("pi within 5 sigma", abs(pi_est - math.pi) <= 5 * sigma_pi,
         f"|{pi_est:.6f} - pi| = {abs(pi_est - math.pi):.1e}, sigma {sigma_pi:.1e}"),
        ("integral within 5 sigma", abs(integral - exact) <= 5 * sigma_int,
         f"|{integral:.6f} - {exact:.6f}| = {abs(integral - exact):.1e}, sigma {sigma_int:.1e}"),
    ]
    results = {"samples": n, "device": f"{args.namespace} {args.device}",
               "pi estimate": f"{pi_est:.6f}", "integral of exp(-x^2) on [0,1]": f"{integral:.6f}"}
    return _common.report("montecarlo", results, checks, seconds)


if __name__ == "__main__":
    sys.exit(main())
