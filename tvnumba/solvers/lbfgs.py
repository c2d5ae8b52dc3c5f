"""L-BFGS for smooth problems: β > 1, or β = 1 with smoothing.

Runs in float64 on the canonical layout, with the backend's fused TV
value-and-gradient kernel and its vector operations (fused Numba kernels on
the CPU, CuPy on the GPU), so a GPU solve never copies an array to the host
and no BLAS thread pool runs beside Numba's.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._common import Problem, SolveInfo, certificate

#: Stored (s, y) pairs.
MEMORY = 8


def lbfgs(problem: Problem, memory: int = MEMORY):
    """L-BFGS on ``F = G + weight·TV_β``; returns ``(u5, info)`` (``u5`` in the
    plan's compute dtype).

    Two-loop recursion with ``memory`` pairs, Armijo backtracking from the
    unit step (pairs with ``sᵀy ≤ 0`` are skipped).  Stops when
    ``½‖∇F‖²/μ ≤ eps · (F − ½‖∇F‖²/μ)``: for convex TV (β ≥ 1) and a
    μ-strongly convex data term (μ = 1 for denoising),
    ``F − F* ≤ ½‖∇F‖²/μ``, so the relative objective error is at most ``eps``.
    """
    backend, plan, weight = problem.backend, problem.plan, problem.weight
    xp, ops = backend.xp, backend.ops
    data = problem.data.astype(np.float64)
    start = xp.ascontiguousarray(data.start(), dtype=xp.float64)
    shape = start.shape
    n = start.size
    gtv = xp.empty(shape, xp.float64)
    tv_plan = dataclasses.replace(plan, reduction="sum")

    def evaluate(u, g):
        """F(u), writing ∇F into g; returns (F, ‖∇F‖²)."""
        value = float(np.sum(backend.tv5(u.reshape(shape), gtv, tv_plan)))
        fid, gg = data.objective_grad(u, gtv.reshape(-1), weight, g)
        return fid + weight * value, gg

    S_ = xp.empty((memory, n))
    Y_ = xp.empty((memory, n))
    rho = np.zeros(memory)
    alpha = np.zeros(memory)
    u = start.reshape(-1).copy()
    g = xp.empty(n)
    u_new = xp.empty(n)
    g_new = xp.empty(n)
    d = xp.empty(n)
    F, gg = evaluate(u, g)
    gap = certificate(F, gg, data.mu)
    pairs: list[int] = []
    gamma = 1.0
    it = 0
    nxt = 0
    while gap > problem.eps and it < problem.max_iter:
        it += 1
        order = np.asarray(pairs, dtype=np.int64)
        gd = ops.lbfgs_direction(g, S_, Y_, rho, order, gamma, d, alpha)
        if not gd < 0:  # not a descent direction: restart from -g
            pairs.clear()
            gd = ops.lbfgs_direction(g, S_, Y_, rho, order[:0], 1.0, d, alpha)
        t = 1.0
        for _ in range(40):
            ops.axpy_to(u_new, u, t, d)
            F_new, gg_new = evaluate(u_new, g_new)
            if F_new <= F + 1e-4 * t * gd:
                break
            t *= 0.5
        else:
            break  # no decrease possible at this precision
        sy, yy = ops.lbfgs_pair(S_[nxt], Y_[nxt], u_new, u, g_new, g)
        if sy > 1e-12 * yy and yy > 0:
            rho[nxt] = 1.0 / sy
            gamma = sy / yy
            if nxt in pairs:
                pairs.remove(nxt)
            pairs.append(nxt)
            nxt = (nxt + 1) % memory
        elif nxt in pairs:  # its storage was overwritten by the rejected pair
            pairs.remove(nxt)
        u, u_new = u_new, u
        g, g_new = g_new, g
        F, gg = F_new, gg_new
        gap = certificate(F, gg, data.mu)
        if problem.call_back(it, u.reshape(shape), F):
            break
    u5 = u.reshape(shape).astype(plan.dtype, copy=False)
    return u5, SolveInfo(it, F, gap, gap <= problem.eps, "lbfgs")
