"""Linear regression fitted by full-batch gradient descent on the mean squared error.

Data: y = X @ w_true + b_true + 0.1 * noise, with X standard normal (portable generator from
``_common.py``). Gradient of the loss L = mean((X @ w + b - y)^2): dL/dw = 2/n X^T r, dL/db = 2 mean(r).
The fit is compared with the closed-form least-squares solution from ``linalg.solve`` on the normal
equations (when the namespace has the linalg extension).

    python examples/linreg.py [--device cpu|sim] [--size SAMPLES] [--steps S]
"""
from __future__ import annotations

import sys

import _common

FEATURES = 8
LEARNING_RATE = 0.1


def make_data(xp, device, n: int, seed: int = 5):
    x = xp.reshape(_common.normal(xp, seed, 0, n * FEATURES, device), (n, FEATURES))
    w_true = xp.linspace(-2.0, 2.0, FEATURES, dtype=xp.float64, device=device)
    b_true = 0.5
    y = x @ w_true + b_true + 0.1 * _common.normal(xp, seed + 1, 0, n, device)
    return x, y, w_true, b_true


def linreg(xp, device, n: int, steps: int):
    """(w, b, final loss, closed-form w, closed-form b, w_true)."""
    x, y, w_true, b_true = make_data(xp, device, n)
    w = xp.zeros(FEATURES, dtype=xp.float64, device=device)
    b = xp.asarray(0.0, dtype=xp.float64, device=device)
    for _ in range(steps):
        r = x @ w + b - y                                  # residuals, (n,)
        w = w - LEARNING_RATE * (2.0 / n) * (r @ x)          # r @ x == X^T r
        b = b - LEARNING_RATE * 2.0 * xp.mean(r)
    loss = float(xp.mean((x @ w + b - y) ** 2))
    if hasattr(xp, "linalg"):                              # normal equations with an intercept column
        a = xp.concat([x, xp.ones((n, 1), dtype=x.dtype, device=device)], axis=1)
        coef = xp.linalg.solve(xp.matrix_transpose(a) @ a, xp.matrix_transpose(a) @ y)
        w_ls, b_ls = coef[:FEATURES], float(coef[FEATURES])
    else:
        w_ls, b_ls = w, float(b)
    return w, float(b), loss, w_ls, b_ls, w_true


def main(argv=None) -> int:
    import numpy as np
    args = _common.parse_args(__doc__.splitlines()[0], size=20_000, steps=200, argv=argv)
    if args.size <= FEATURES:
        sys.exit(f"error: --size must be more than {FEATURES}")
    ours, ref, seconds = _common.run_both(linreg, args, args.size, args.steps)
    (w, b, loss, w_ls, b_ls, w_true), (rw, rb, rloss, rw_ls, _, _) = ours, ref
    dw = float(np.max(np.abs(w - rw)))
    dls = float(np.max(np.abs(w_ls - rw_ls)))
    gap = float(np.max(np.abs(np.append(w - w_ls, b - b_ls))))
    checks = [
        ("same weights as NumPy", dw <= 1e-10 and abs(b - rb) <= 1e-10, f"max difference {max(dw, abs(b - rb)):.1e}"),
        ("same loss as NumPy", abs(loss - rloss) <= 1e-10 * rloss, f"{loss:.10f} vs {rloss:.10f}"),
        ("same least-squares solution as NumPy", dls <= 1e-10, f"max difference {dls:.1e}"),
    ]
    if args.steps >= 100 and args.size >= 1000:
        checks += [
            ("gradient descent converged", gap <= 1e-6, f"max |GD - least squares| = {gap:.1e}"),
            ("true weights recovered", float(np.max(np.abs(w - w_true))) <= 0.02 and abs(b - 0.5) <= 0.02,
             f"max |w - w_true| = {float(np.max(np.abs(w - w_true))):.1e}, b = {b:.4f}"),
        ]
    results = {"samples": f"{args.size} x {FEATURES} features, {args.steps} steps, lr {LEARNING_RATE}",
               "device": f"{args.namespace} {args.device}", "loss": f"{loss:.6f}",
               "w": np.round(w, 4).tolist(), "b": round(b, 4)}
    return _common.report("linreg", results, checks, seconds)


if __name__ == "__main__":
    sys.exit(main())
