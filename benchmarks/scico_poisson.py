"""SCICO's ADMM on the Poisson-TV objective, in a process of its own.

Run by ``test_bench_poisson.py::test_poisson_same_objective`` as
``python scico_poisson.py CASE.npz``: ``CASE.npz`` holds the counts ``y``, the ``psf``,
the ``weight``, the ``background`` and the ``target`` objective.  The script compiles (two
ADMM steps on a first solver), prints ``ready``, reads a time limit in seconds from its
standard input, then runs a fresh solver until its objective at ``max(u, 0)`` reaches the
target or the limit has passed, printing ``step N F`` after each step; at the end it
writes the iterate to ``CASE.npz.out.npy`` and prints one JSON line
``{"n": steps, "reached": bool, "objective": F}``.
Its own process keeps JAX's thread pool away from Numba's, and lets the caller stop a
step that does not return.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from scipy.signal import fftconvolve


def objective(y, psf, weight, background):
    """``F(u)`` at ``max(u, 0)``: ``KL(h ∗ u + b; y) + weight · TV(u)`` on the extended
    grid (isotropic, Neumann), as tvnumba reports it."""
    pos = y > 0
    ushape = tuple(n + m - 1 for n, m in zip(y.shape, psf.shape))

    def F(u):
        u = np.maximum(np.asarray(u, np.float64).reshape(ushape), 0)
        z = fftconvolve(u, psf, mode="valid") + background
        kl = np.sum(z - y) + np.sum(np.where(pos, y * np.log(np.where(pos, y, 1) / z), 0))
        grads = [np.diff(u, axis=a, append=np.take(u, [-1], axis=a)) for a in range(u.ndim)]
        return float(kl + weight * np.sum(np.sqrt(sum(g * g for g in grads))))

    return F


def main(path: str) -> None:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from scico import functional, linop, loss, operator
    from scico.optimize.admm import ADMM, GenericSubproblemSolver

    case = np.load(path)
    y, psf = case["y"], case["psf"]
    w, b, target = float(case["weight"]), float(case["background"]), float(case["target"])
    F = objective(y, psf, w, b)
    ushape = tuple(n + m - 1 for n, m in zip(y.shape, psf.shape))
    pads = [(m // 2, (m - 1) // 2) for m in psf.shape]

    def make():
        conv = linop.Convolve(h=jnp.asarray(psf), input_shape=ushape, mode="valid")
        A = operator.Operator(input_shape=ushape, eval_fn=lambda v: conv(v) + b)
        return ADMM(
            f=loss.PoissonLoss(y=jnp.asarray(y, jnp.float64), A=A, scale=1.0),
            g_list=[w * functional.L21Norm(), functional.NonNegativeIndicator()],
            C_list=[linop.FiniteDifference(input_shape=ushape, append=0),
                    linop.Identity(ushape)],
            rho_list=[0.03, 0.03],
            x0=jnp.asarray(np.pad(np.maximum(y - b, 0.5), pads, mode="edge")),
            maxiter=100000,
            subproblem_solver=GenericSubproblemSolver(
                minimize_kwargs={"options": {"maxiter": 20}}))

    warm = make()
    for _ in range(2):
        warm.step()
    print("ready", flush=True)
    limit = float(sys.stdin.readline())
    t0 = time.perf_counter()
    solver = make()
    n, reached, x = 0, False, None
    while time.perf_counter() - t0 < limit:
        solver.step()
        n += 1
        x = np.asarray(solver.x)
        value = F(x)
        print(f"step {n} {value!r}", flush=True)
        if value <= target:
            reached = True
            break
    np.save(path + ".out.npy", x)
    print(json.dumps({"n": n, "reached": reached, "objective": F(x)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
