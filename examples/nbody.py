"""Gravitational n-body simulation: all pairwise forces by broadcasting, Plummer softening, and
leapfrog (kick-drift-kick) time steps.

Units with G = 1. Bodies start in a uniform ball with small random velocities (from the portable
generator in ``_common.py``, so both namespaces start from identical states).

    python examples/nbody.py [--device cpu|sim] [--size BODIES] [--steps S]

Checks: positions and velocities agree with NumPy to a tolerance that allows for the few ulps of
summation-order differences growing over the steps; total momentum stays zero; total energy is
conserved to the accuracy of the integrator.
"""
from __future__ import annotations

import sys

import _common

SOFTENING = 0.05
DT = 1e-3


def initial_state(xp, device, n: int, seed: int = 3):
    """(positions, velocities, masses) of n bodies: a unit ball, zero total momentum."""
    u = xp.reshape(_common.uniform(xp, seed, 0, 3 * n, device), (n, 3))
    g = xp.reshape(_common.normal(xp, seed + 1, 0, 3 * n, device), (n, 3))
    # a point in the ball: a normal direction times radius u^(1/3)
    direction = g / xp.linalg.vector_norm(g, axis=1, keepdims=True)
    pos = direction * u[:, :1] ** (1.0 / 3.0)
    vel = 0.1 * xp.reshape(_common.normal(xp, seed + 2, 0, 3 * n, device), (n, 3))
    mass = 0.5 + _common.uniform(xp, seed + 3, 0, n, device)
    mass = mass / xp.sum(mass)
    vel = vel - xp.sum(mass[:, None] * vel, axis=0) / xp.sum(mass)  # centre-of-mass frame
    return pos, vel, mass


def accelerations(xp, pos, mass):
    """a_i = sum_j m_j (x_j - x_i) / (|x_j - x_i|^2 + eps^2)^(3/2)."""
    d = pos[None, :, :] - pos[:, None, :]                          # (n, n, 3): x_j - x_i
    r2 = xp.sum(d * d, axis=-1) + SOFTENING ** 2                   # (n, n)
    w = mass[None, :] * r2 ** -1.5                                 # (n, n); i == j gives d = 0
    return xp.sum(d * w[:, :, None], axis=1)


def energy(xp, pos, vel, mass):
    kinetic = 0.5 * xp.sum(mass * xp.sum(vel * vel, axis=1))
    d = pos[None, :, :] - pos[:, None, :]
    r = xp.sqrt(xp.sum(d * d, axis=-1) + SOFTENING ** 2)
    idx = xp.arange(pos.shape[0], device=pos.device)
    upper = idx[:, None] < idx[None, :]                            # each pair once
    potential = -xp.sum(xp.where(upper, mass[:, None] * mass[None, :] / r, 0.0))
    return float(kinetic + potential)


def nbody(xp, device, n: int, steps: int):
    pos, vel, mass = initial_state(xp, device, n)
    e0 = energy(xp, pos, vel, mass)
    acc = accelerations(xp, pos, mass)
    for _ in range(steps):
        vel = vel + (0.5 * DT) * acc
        pos = pos + DT * vel
        acc = accelerations(xp, pos, mass)
        vel = vel + (0.5 * DT) * acc
    e1 = energy(xp, pos, vel, mass)
    momentum = xp.sum(mass[:, None] * vel, axis=0)
    return pos, vel, momentum, e0, e1


def main(argv=None) -> int:
    import numpy as np
    args = _common.parse_args(__doc__.splitlines()[0], size=256, steps=100, argv=argv)
    if args.size < 2:
        sys.exit("error: --size must be at least 2")
    ours, ref, seconds = _common.run_both(nbody, args, args.size, args.steps)
    (pos, vel, mom, e0, e1), (rpos, rvel, _, re0, re1) = ours, ref
    dpos = float(np.max(np.abs(pos - rpos)))
    dvel = float(np.max(np.abs(vel - rvel)) / max(float(np.max(np.abs(rvel))), 1e-300))
    drift = abs(e1 - e0) / abs(e0)
    checks = [
        ("same positions as NumPy", dpos <= 1e-9, f"max difference {dpos:.1e}"),
        ("same velocities as NumPy", dvel <= 1e-9, f"max relative difference {dvel:.1e}"),
        ("same energies as NumPy", abs(e1 - re1) <= 1e-10 * abs(re1) and abs(e0 - re0) <= 1e-12 * abs(re0),
         f"{e1:.12f} vs {re1:.12f}"),
        ("momentum conserved", float(np.max(np.abs(mom))) <= 1e-12, f"|p| = {float(np.max(np.abs(mom))):.1e}"),
        ("energy conserved", drift <= 1e-3, f"relative drift {drift:.1e}"),
    ]
    results = {"bodies": f"{args.size}, {args.steps} leapfrog steps of {DT}",
               "device": f"{args.namespace} {args.device}",
               "energy": f"{e0:.9f} -> {e1:.9f}"}
    return _common.report("nbody", results, checks, seconds)


if __name__ == "__main__":
    sys.exit(main())
