"""L-BFGS for smooth problems: β > 1, or β = 1 with smoothing.

Runs on the canonical layout with the backend's fused TV value-and-gradient
kernel and its vector operations (fused Numba kernels on the CPU, CuPy on the
GPU), so a GPU solve never copies an array to the host and no BLAS thread pool
runs beside Numba's.

Precision and memory.  The iterate is float64: a float32 iterate cannot
resolve the minimiser finely enough for the certificate where the TV Hessian
is large (β near 1 without smoothing: the gap stalls near 1e-5, where a float64
iterate goes on converging).  Every value and gradient is computed in float64 from it, and
the certificate is formed before any rounding.  What only steers the search
is stored more compactly: the gradients and the direction in the input's
dtype, the (s, y) pairs in float32.  Float32 rounds to a relative 6e-8, and
s = t·d and y = g_new − g are formed in float64 before it, so the pairs stay
accurate differences however small the steps get.  ρ = 1/(s·y) is
computed from the stored (rounded) vectors, so the implicit inverse Hessian
stays positive definite, which is all the convergence theory needs.  The
trial point is the iterate itself, moved in place along the direction (no
second iterate), and the TV gradient is written where the total gradient
goes (no separate buffer).  With the pairs that fit in :data:`BUDGET` this
holds the solver's peak memory under 12× the input in both dtypes (7 pairs
for float64 input, 3 for float32).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ._common import Problem, SolveInfo
from ._fenchel import StoppingRule

#: Stored (s, y) pairs at most (the budget allows 7 for float64 input, 3 for float32).
MEMORY = 8
#: Input-sized arrays the solver's work arrays may take (one below the 12× peak
#: target, for the result and the caller's copies); :func:`pairs_for` fits the pairs in.
BUDGET = 11
#: Fewest pairs whatever the budget: fewer degrade L-BFGS towards gradient descent.
MIN_MEMORY = 3


def pairs_for(itemsize: int, memory: int = MEMORY, budget: float = BUDGET) -> int:
    """How many (s, y) pairs L-BFGS keeps for input of ``itemsize`` bytes: per
    element it holds the float64 iterate (8 bytes), the gradient, the trial
    gradient and the direction (``itemsize`` each) and two float32 per pair."""
    fit = int((budget * itemsize - 8 - 3 * itemsize) // 8)
    return max(MIN_MEMORY, min(memory, fit))


def lbfgs(problem: Problem, memory: int | None = None):
    """L-BFGS on ``F = G + weight·TV_β``; returns ``(u5, info)`` (``u5`` in the
    plan's compute dtype).

    Two-loop recursion with ``memory`` pairs (default: :func:`pairs_for` the
    input's dtype), Armijo backtracking from the unit step (pairs with
    ``sᵀy ≤ 0`` are skipped).  Stops when the quantity of
    :class:`~tvnumba.solvers._fenchel.StoppingRule` is at most ``eps``: for
    convex TV (β ≥ 1) a bound on the relative objective error -- ``½‖∇F‖²/μ /
    (F − ½‖∇F‖²/μ)`` for a μ-strongly convex data term (μ = 1 for denoising,
    since then ``F − F* ≤ ½‖∇F‖²/μ``), the duality gap otherwise (``AᵀA``
    singular or ill-conditioned); for β < 1 the same ratio, a relative
    stationarity measure (``μ`` taken as 1 where it is 0).
    """
    backend, plan, weight = problem.backend, problem.plan, problem.weight
    xp, ops = backend.xp, backend.ops
    data = problem.data.at_float64()
    gdt = np.dtype(plan.dtype)  # gradients and direction
    if memory is None:
        memory = pairs_for(gdt.itemsize)
    # A copy in any case: the solver moves it in place, and inputs are never modified.
    u = xp.array(data.start(), dtype=xp.float64, order="C")
    shape = u.shape
    n = u.size
    u = u.reshape(-1)
    tv_plan = dataclasses.replace(plan, reduction="sum")

    def evaluate(g):
        """F(u), writing ∇F into g; returns (F, ‖∇F‖²)."""
        value = float(np.sum(backend.tv5(u.reshape(shape), g.reshape(shape), tv_plan)))
        fid, gg = data.objective_grad(u, g, weight, g)
        return fid + weight * value, gg

    S_ = xp.empty((memory, n), xp.float32)
    Y_ = xp.empty((memory, n), xp.float32)
    rho = np.zeros(memory)
    alpha = np.zeros(memory)
    g = xp.empty(n, gdt)
    g_new = xp.empty(n, gdt)
    d = xp.empty(n, gdt)
    F, gg = evaluate(g)
    rule = StoppingRule(problem, data, problem.smoothing,
                        mu_stationary=data.mu if data.mu > 0 else 1.0)
    gap = rule(F, gg, u, 0)
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
        moved = 0.0  # u is the last iterate + moved·d
        for _ in range(40):
            ops.axpy(u, t - moved, d)
            moved = t
            F_new, gg_new = evaluate(g_new)
            if F_new <= F + 1e-4 * t * gd:
                break
            t *= 0.5
        else:
            # No decrease possible at this precision: back to the last iterate
            # (to within rounding), whose F and gap are reported.
            ops.axpy(u, -moved, d)
            break
        sy, yy = ops.lbfgs_pair(S_[nxt], Y_[nxt], d, t, g_new, g)
        if sy > 1e-12 * yy and yy > 0:
            rho[nxt] = 1.0 / sy
            gamma = sy / yy
            if nxt in pairs:
                pairs.remove(nxt)
            pairs.append(nxt)
            nxt = (nxt + 1) % memory
        elif nxt in pairs:  # its storage was overwritten by the rejected pair
            pairs.remove(nxt)
        g, g_new = g_new, g
        F, gg = F_new, gg_new
        gap = rule(F, gg, u, it)
        if problem.call_back(it, u.reshape(shape), F):
            break
    del S_, Y_, g, g_new, d  # before the result's copy (float32 input): a lower peak
    gap = rule.final(F, gap, u, it)
    u5 = u.reshape(shape).astype(plan.dtype, copy=False)
    return u5, SolveInfo(it, F, gap, gap <= problem.eps, "lbfgs",
                           bound=problem.plan.beta >= 1)
