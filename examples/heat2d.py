"""2-D heat equation u_t = alpha * (u_xx + u_yy) on the unit square, explicit finite differences.

Dirichlet boundaries (u = 0), initial condition u0 = sin(pi x) sin(pi y), whose exact solution is
u = exp(-2 pi^2 alpha t) u0. The 5-point stencil is written with slices of the grid (no loops over
points), and the interior is updated in place with ``u[1:-1, 1:-1] = ...``.

    python examples/heat2d.py [--device cpu|sim] [--size N] [--steps S]

Runs the solver on egpu_array and on NumPy (through array-api-compat) and checks that both agree
to rounding (and that both approximate the exact solution).
"""
from __future__ import annotations

import math
import sys

import _common


def heat2d(xp, device, n: int, steps: int, alpha: float = 1.0):
    """Solve on an n x n grid (boundary included) for ``steps`` explicit Euler steps.

    Returns (final grid, final time)."""
    h = 1.0 / (n - 1)
    dt = 0.2 * h * h / alpha           # stable: the explicit scheme needs dt <= h^2 / (4 alpha)
    r = alpha * dt / (h * h)
    x = xp.linspace(0.0, 1.0, n, dtype=xp.float64, device=device)
    u = xp.sin(math.pi * x)[:, None] * xp.sin(math.pi * x)[None, :]
    # exact zeros on the boundary (sin(pi * 1.0) is 1.2e-16, not 0)
    u[0, :] = 0.0
    u[-1, :] = 0.0
    u[:, 0] = 0.0
    u[:, -1] = 0.0
    for _ in range(steps):
        c = u[1:-1, 1:-1]
        lap = u[2:, 1:-1] + u[:-2, 1:-1] + u[1:-1, 2:] + u[1:-1, :-2] - 4.0 * c
        u[1:-1, 1:-1] = c + r * lap
    return u, steps * dt


def main(argv=None) -> int:
    args = _common.parse_args(__doc__.splitlines()[0], size=128, steps=300, argv=argv)
    if args.size < 3:
        sys.exit("error: --size must be at least 3")
    (u, t), (ref, _), seconds = _common.run_both(heat2d, args, args.size, args.steps)

    import numpy as np
    x = np.linspace(0.0, 1.0, args.size)
    exact = math.exp(-2 * math.pi ** 2 * t) * np.sin(math.pi * x)[:, None] * np.sin(math.pi * x)[None, :]
    diff = float(np.max(np.abs(u - ref)))
    scale = float(np.max(np.abs(ref)))
    err = float(np.max(np.abs(u - exact)))
    h = 1.0 / (args.size - 1)
    checks = [
        ("same grid as NumPy", diff <= 1e-12 * max(scale, 1e-300), f"max |ours - NumPy| = {diff:.2e}"),
        ("boundary stays zero", bool(np.all(u[0] == 0) and np.all(u[:, -1] == 0)), "u = 0 on the edges"),
        ("close to the exact solution", err <= 2.0 * h * h + 1e-12, f"max error {err:.2e} (h^2 = {h * h:.2e})"),
    ]
    results = {"grid": f"{args.size} x {args.size}, {args.steps} steps, t = {t:.3e}",
               "device": f"{args.namespace} {args.device}", "max u": f"{float(u.max()):.6f}",
               "exact max u": f"{float(exact.max()):.6f}"}
    return _common.report("heat2d", results, checks, seconds)


if __name__ == "__main__":
    sys.exit(main())
