"""Preconditioned, over-relaxed primal–dual with ``A`` dualised.

Minimises ``L(A u) + weight · TV₁(u)`` over the loss's domain (``u ≥ 0`` for the
Poisson loss; with it also ``weight · TV_β``, β > 1, whose conjugate's proximal step
replaces the ball's projection: :meth:`~tvnumba.backends.array.TVOps.pd_dual_power`)
with both ``D`` and ``A`` dualised, ``K = [D; A]``:

* diagonal steps (Pock & Chambolle 2011) scaled by a positive intensity ``s`` of the
  unknown: ``τ_j = ρ s_j / Σ_i |K_ij|``, ``σ_i = 1 / (ρ Σ_j |K_ij| s_j)`` (one σ per
  pixel for the TV block, so that the isotropic ball stays a ball), which satisfy
  ``‖Σ^½ K T^½‖ ≤ 1`` for any ``s > 0``.  The Poisson loss takes ``s`` from the image
  (one ratio :data:`RHO` then suits every photon level); least squares takes ``s = 1``
  and :data:`RHO_SQUARED`.  Where ``|A|``'s sums are unknown (a callable ``A``), scalar
  steps from ``‖D‖`` and ``‖A‖``;
* over-relaxation by :data:`OMEGA` / :data:`OMEGA_SQUARED` (Condat 2013; any
  ``ω ∈ (0, 2)`` converges);
* for the Poisson loss, ``ρ`` balanced on the way (:data:`BALANCE`; Goldstein, Li &
  Yuan 2015): the best value varies tenfold between 2-D and 3-D and with the weight (3-D
  blobs at 1000 photons take a tenth of the iterations at ``ρ = 30`` that they take at 3;
  2-D ``cell`` at 10 photons is fastest at 3).

The stopping quantity: for the Poisson loss a duality gap computed on a set ``C`` that
provably contains a minimiser (:mod:`._kl_gap`), so ``info.gap`` bounds
``(P(u) − P*) / P*``; for least squares the decrease of the objective over the last
quarter of the run (:func:`._stopping.tail_estimate`), an estimate of the relative error,
not a bound.

Each iteration is the backend's primal and TV dual steps (:meth:`~tvnumba.backends.array.
TVOps.pd_primal`, :meth:`~tvnumba.backends.array.TVOps.pd_dual`: fused Numba passes on
the CPU, whole-array operations on CuPy), ``A ū``, the loss's dual step and ``Aᵀ``.
"""

from __future__ import annotations

import math

from . import _kl_gap
from ._common import Problem, SolveInfo
from ._stopping import spaced_check, tail_estimate

#: Primal/dual balance of the diagonal steps for the Poisson loss (dimensionless with
#: the intensity scale).
RHO = 3.0
#: ... and for least squares (``s = 1``): the fewest iterations on CT and blurs.
RHO_SQUARED = 1.0
#: Over-relaxation of each iteration (Poisson loss) ...
OMEGA = 1.9
#: ... and for least squares (the fewest iterations to 1e-3 on sparse-angle CT).
OMEGA_SQUARED = 1.5
#: Iterations between two evaluations of the Poisson gap (each costs about as much as
#: twenty iterations: the dual polish and repair and the support function of ``C``).
CHECK_EVERY = 50
#: ... and of the least-squares objective (cheap: ``A u`` is tracked by linearity).
CHECK_EVERY_SQUARED = 5
#: The Poisson loss's step balance adapts (Goldstein et al. 2015): where the primal
#: residual exceeds the dual one by more than this ratio (in the norms of the steps), ``ρ``
#: doubles.  It is never halved: the ratio falls below 1 in the tail of every measured
#: solve, also at its fastest ``ρ`` ...
BALANCE = 1.5
#: ... at most this many times, so that the steps end fixed (and the iteration converges);
#: the checks end there or once the ratio is at most 1.
MAX_BALANCE_CHANGES = 6
#: Iterations between two balance checks.
BALANCE_EVERY = 50


def preconditioned(problem: Problem):
    """Primal–dual for ``problem`` (β = 1, no smoothing, ``A`` dualised); returns
    ``(u5, info)``."""
    backend, data, plan, weight = problem.backend, problem.data, problem.plan, problem.weight
    xp = backend.xp
    loss = data.loss
    dtype = data.f.dtype
    T = dtype.type
    tvo = backend.tv_ops(plan, dtype)
    poisson = not loss.quadratic
    beta = plan.beta  # β > 1 with the Poisson loss only (the registry checks)
    if poisson:
        gap_of = _kl_gap.Certificate(data, backend.tv_ops(plan, xp.float64), weight, beta)
        u = _start(data, gap_of.a64).astype(dtype)
        s = _intensity_scale(backend, data, u)
        tau, sig_d, sig_a = _diagonal_steps(xp, data, tvo, s, gap_of.a64,
                                            data.forward(s.astype(dtype)), RHO, dtype)
        check_every = CHECK_EVERY
    else:
        u = xp.ascontiguousarray(data.start(), dtype=dtype).copy()
        sums = data.abs_sums()
        if sums is not None:
            row, col = sums
            tau, sig_d, sig_a = _diagonal_steps(xp, data, tvo, xp.ones(u.shape), col, row,
                                                RHO_SQUARED, dtype)
        else:
            tau, sig_d, sig_a = _scalar_steps(data, tvo, RHO_SQUARED)
        check_every = CHECK_EVERY_SQUARED
        au = data.forward(u)  # tracked by linearity: A ũ = (A ū + A u) / 2

    # The backend's steps take per-pixel arrays (scalar steps broadcast once).
    tau = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(tau, dtype), u.shape))
    sig_d = xp.ascontiguousarray(xp.broadcast_to(xp.asarray(sig_d, dtype),
                                                 (u.shape[0], 1) + u.shape[2:]))
    warm = problem.warm if poisson else None
    p = tvo.field(u.shape)
    scale = 1.0  # ρ over its start
    if warm is not None and warm.u is not None and warm.u.shape == u.shape:
        # A neighbouring solve's iterates and step balance; p scaled with the weight (into
        # its ball, β = 1).
        u = warm.u.astype(dtype)
        p[...] = xp.asarray(warm.p) * T(weight / warm.weight if warm.weight > 0 else 0)
        r = warm.r.astype(dtype)
        scale = warm.scale
        tau, sig_d, sig_a = tau * T(scale), sig_d / T(scale), sig_a / T(scale)
    else:
        r = loss.dual_start(data)
    u = xp.ascontiguousarray(u)
    ut, ub, pt, rt = xp.empty_like(u), xp.empty_like(u), xp.empty_like(p), xp.empty_like(r)
    atr = data.adjoint(loss.adjoint_input(r))
    om = T(OMEGA if poisson else OMEGA_SQUARED)
    it = 0
    best_u, best_p, best_d = u, math.inf, -math.inf
    best = {}
    gap = math.inf
    converged = False
    next_check = check_every
    changes = 0
    next_balance = BALANCE_EVERY
    while it < problem.max_iter:
        it += 1
        balance = poisson and changes < MAX_BALANCE_CHANGES and it == next_balance
        if balance:
            before = (u.copy(), p.copy(), r.copy())
        # ũ, ū = 2ũ − u and the relaxed u in one pass; then p, r likewise.
        tvo.pd_primal(u, ut, ub, p, atr, tau, om, loss.nonnegative)
        if beta == 1:
            tvo.pd_dual(p, pt, ub, sig_d, weight, om)
        else:
            tvo.pd_dual_power(p, pt, ub, sig_d, weight, beta, om)
        aub = data.forward(ub)
        loss.dual_step(data, backend.ops, r, rt, aub, sig_a, om)
        atr = data.adjoint(loss.adjoint_input(r))
        check = it >= next_check or it == problem.max_iter
        if check:
            next_check = spaced_check(it, check_every) if poisson else it + check_every
        if not poisson:
            aut = T(0.5) * (aub + au)
            au += om * (aut - au)
        if balance:
            next_balance += BALANCE_EVERY
            ratio = _residual_ratio(data, tvo, before, (ut, pt, rt), tau, sig_d, sig_a)
            if ratio > BALANCE:
                tau, sig_d, sig_a = tau * T(2), sig_d / T(2), sig_a / T(2)
                scale *= 2.0
                changes += 1
            elif ratio <= 1:
                changes = MAX_BALANCE_CHANGES  # balanced: no more checks
        if not check:
            continue
        if poisson:
            primal, cand = gap_of.primal(ut)
            if primal < best_p:
                best_p, best_u = primal, cand
            best_d = max(best_d, gap_of.dual(pt, rt, best_p, cand))
            gap = (best_p - best_d) / best_d if best_d > 0 else (0.0 if best_p <= 0 else math.inf)
        else:
            primal = loss.value(data, aut) + weight * tvo.tv1(ut)
            if primal < best_p:
                best_p, best_u = primal, ut.copy()
            best[it] = best_p
            gap = tail_estimate(best, it, primal)
        converged = gap <= problem.eps
        if problem.call_back(it, best_u, best_p) or converged:
            break
    if warm is not None:
        warm.u, warm.p, warm.r, warm.weight, warm.scale = u, p, r, weight, scale
    return best_u, SolveInfo(it, best_p, max(gap, 0.0), converged, "cp", bound=poisson)


def _residual_ratio(data, tvo, before, after, tau, sig_d, sig_a) -> float:
    """``‖P‖_T / ‖D‖_Σ`` of one step ``(u, p, r) → (ũ, p̃, r̃)`` (Goldstein et al. 2015):
    the primal residual ``P = T⁻¹Δu − KᵀΔy`` and the dual one ``D = Σ⁻¹Δy − KΔu``
    (``Δ`` = before − after, ``K = [D; A]`` with the loss's sign on ``A``), each in the
    norm of its step (``‖x‖²_T = Σ τ x²``)."""
    xp, loss = data.xp, data.loss
    (u, p, r), (ut, pt, rt) = before, after
    du, dp = u - ut, p - pt
    # the loss's adjoint input is affine in r: its difference carries K_Aᵀ's sign
    ka_t = data.adjoint(loss.adjoint_input(r) - loss.adjoint_input(rt))
    prim = du / tau - tvo.div(dp) - ka_t
    sign = float(loss.adjoint_input(xp.ones(1))[0] - loss.adjoint_input(xp.zeros(1))[0])
    dual_a = (r - rt) / sig_a - sign * data.forward(du)
    pn = float(xp.sum(tau * prim * prim, dtype=xp.float64))
    dn = float(xp.sum(sig_a * dual_a * dual_a, dtype=xp.float64))
    positive = sig_d > 0  # σ_D is 0 on the last slice, where p stays 0
    safe = xp.where(positive, sig_d, 1)
    for q, g in zip(dp, tvo.grad(du)):
        e = q - sig_d * g  # σ D_p, so σ D_p² = e² / σ
        dn += float(xp.sum(xp.where(positive, e * e / safe, 0), dtype=xp.float64))
    return math.sqrt(pn / dn) if dn > 0 else 1.0


def _diagonal_steps(xp, data, tvo, s, col_a, a_s, rho, dtype):
    """``(τ, σ_D, σ_A)`` of the diagonal preconditioning with primal scale ``s``:
    ``col_a = |A|ᵀ1``, ``a_s = |A| s``."""
    tau = (rho * s / (tvo.abs_colsum(s.shape) + col_a)).astype(dtype)
    sig_d = tvo.abs_rowsum(s)
    sig_d = xp.where(sig_d > 0, 1.0 / (rho * xp.where(sig_d > 0, sig_d, 1.0)), 0.0).astype(dtype)
    a_s = xp.asarray(a_s).astype(xp.float64)
    floor = 1e-30 * float(xp.max(a_s)) + 1e-300
    sig_a = (1.0 / (rho * xp.maximum(a_s, floor))).astype(dtype)
    return tau, sig_d, sig_a


def _scalar_steps(data, tvo, rho):
    """Scalar steps for ``‖[D; A]‖`` from ``‖D‖ ≤ √(4 Σ 1/h²)`` and ``‖A‖`` (power
    iteration): ``τ (σ_D ‖D‖² + σ_A ‖A‖²) = 1`` with each block scaled to its own norm."""
    lip_d = math.sqrt(4.0 * sum(float(h) ** 2 for h in tvo.ih))
    lip_a = data.op_norm()
    T = data.f.dtype.type
    return T(rho / (lip_d + lip_a)), T(1.0 / (rho * lip_d)), T(1.0 / (rho * lip_a))


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
