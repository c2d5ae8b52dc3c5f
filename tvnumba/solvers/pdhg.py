"""Preconditioned, over-relaxed primal–dual for β = 1 with a non-quadratic loss.

Minimises ``L(A u) + weight · TV₁(u)`` over the loss's domain (``u ≥ 0`` for the
Poisson loss) with both ``D`` and ``A`` dualised, ``K = [D; A]``:

* diagonal steps (Pock & Chambolle 2011) scaled by a positive intensity ``s`` of the
  unknown: ``τ_j = ρ s_j / Σ_i |K_ij|``, ``σ_i = 1 / (ρ Σ_j |K_ij| s_j)`` (one σ per
  pixel for the TV block, so that the isotropic ball stays a ball), which satisfy
  ``‖Σ^½ K T^½‖ ≤ 1`` for any ``s > 0``; with ``s`` following the image, one ratio
  :data:`RHO` suits every photon level;
* over-relaxation by :data:`OMEGA` (Condat 2013; any ``ω ∈ (0, 2)`` converges);
* the stopping quantity is a duality gap computed on a set ``C`` that provably contains
  a minimiser (:mod:`._kl_gap`), so ``info.gap`` bounds ``(P(u) − P*) / P*``.

The arrays are whole-array operations of the backend's module (NumPy or CuPy).
"""

from __future__ import annotations

import math

from . import _kl_gap
from ._common import Problem, SolveInfo

#: Primal/dual balance of the diagonal steps (dimensionless with the intensity scale).
RHO = 3.0
#: Over-relaxation of each iteration.
OMEGA = 1.9
#: Iterations between two evaluations of the gap (each costs about as much as ten
#: iterations: the dual repair and the support function of ``C``).
CHECK_EVERY = 50


def preconditioned(problem: Problem, check_every: int = CHECK_EVERY):
    """Primal–dual for ``problem`` (β = 1, no smoothing, a non-quadratic loss); returns
    ``(u5, info)``."""
    backend, data, plan, weight = problem.backend, problem.data, problem.plan, problem.weight
    xp = backend.xp
    loss = data.loss
    dtype = data.f.dtype
    T = dtype.type
    tvo = backend.tv_ops(plan, dtype)
    gap_of = _kl_gap.Certificate(data, backend.tv_ops(plan, xp.float64), weight)
    a64 = gap_of.a64
    u = _start(data, a64).astype(dtype)
    s = _intensity_scale(backend, data, u)
    tau = (RHO * s / (tvo.abs_colsum(u.shape) + a64)).astype(dtype)
    sig_d = tvo.abs_rowsum(s)
    sig_d = xp.where(sig_d > 0, 1.0 / (RHO * xp.where(sig_d > 0, sig_d, 1.0)), 0.0).astype(dtype)
    as_ = data.forward(s.astype(dtype)).astype(xp.float64)
    sig_a = (1.0 / (RHO * xp.maximum(as_, 1e-30 * float(xp.max(as_)) + 1e-300))).astype(dtype)

    p = [xp.zeros_like(u) for _ in tvo.axes]
    r = loss.dual_start(data)
    ktxi = tvo.div(p) + data.adjoint(loss.adjoint_input(r))
    om = T(OMEGA)
    it = 0
    best_u, best_p, best_d = u, math.inf, -math.inf
    gap = math.inf
    converged = False
    while it < problem.max_iter:
        it += 1
        ut = u - tau * ktxi
        if loss.nonnegative:
            xp.maximum(ut, 0, out=ut)
        ub = 2 * ut - u
        pt = tvo.project([q + sig_d * g for q, g in zip(p, tvo.grad(ub))], weight)
        rt = r.copy()
        loss.dual_prox(data, rt, data.forward(ub), sig_a)
        u += om * (ut - u)
        p = [q + om * (qt - q) for q, qt in zip(p, pt)]
        r += om * (rt - r)
        ktxi = tvo.div(p) + data.adjoint(loss.adjoint_input(r))
        if it % check_every == 0 or it == problem.max_iter:
            primal, cand = gap_of.primal(ut)
            if primal < best_p:
                best_p, best_u = primal, cand
            best_d = max(best_d, gap_of.dual(pt, rt, best_p))
            gap = (best_p - best_d) / best_d if best_d > 0 else (0.0 if best_p <= 0 else math.inf)
            converged = gap <= problem.eps
            if problem.call_back(it, best_u, best_p) or converged:
                break
    return best_u, SolveInfo(it, best_p, max(gap, 0.0), converged, "cp")


def _start(data, a64):
    """``max(f − b, 0)`` carried to the unknown's grid; where the term has no such map,
    the constant of the data's flux, ``Σ (f − b)₊ / Σ Aᵀ1``."""
    xp = data.xp
    excess = xp.maximum(data.f - data.background, 0)
    u = data.to_unknown_grid(excess)
    if u is None:
        level = float(xp.sum(excess.astype(xp.float64))) / max(float(xp.sum(a64)), 1e-300)
        u = xp.full(a64.shape, level)
    return xp.ascontiguousarray(u)


def _intensity_scale(backend, data, u):
    """A positive intensity on the unknown's grid (float64): the start smoothed by a
    Gaussian of 2 pixels, floored at 5 % of its mean."""
    xp = backend.xp
    u64 = u.astype(xp.float64)
    axes = tuple(range(2, u.ndim))
    sigma = [0.0, 0.0] + [2.0 if u.shape[ax] > 1 else 0.0 for ax in axes]
    s = backend.ndimage.gaussian_filter(u64, sigma, mode="nearest")
    floor = 0.05 * max(float(xp.mean(s)), 1e-3)
    return xp.maximum(s, floor)
