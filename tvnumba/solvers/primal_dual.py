"""Primal–dual (Chambolle–Pock) for β = 1 without smoothing.

Minimises ``G(u) + weight · TV₁(u)`` with the TV term dualised
(``p ∈ {|p| ≤ weight}`` per pixel, or per difference when anisotropic).
The iterates live in the backend's state object (:meth:`Backend.cp_state`):
one Numba pass per iteration on the CPU (two for three spatial axes or another
data term), two CUDA kernels on the GPU,
whole-array operations otherwise.

* Identity data term (denoising): the accelerated algorithm for a strongly
  convex ``G`` (CP 2011, Algorithm 2, with γ = :data:`CP_GAMMA`), the
  proximal step fused into the primal pass, and a duality-gap stopping rule.
* Any other data term with a cheap proximal step: the same iteration with the data
  term's ``prox`` (a diagonal term's, a mask's, inside the primal pass), accelerated with
  ``γ = CP_GAMMA·μ`` when ``μ ≥`` :data:`MU_ACCELERATE`, else over-relaxed by
  :data:`OMEGA_PROX`; a diagonal term stops on the duality gap on per-pixel boxes that
  hold a minimiser (a bound, :mod:`._box`), others on the decrease of the objective over
  the last quarter of the run (:func:`._stopping.tail_estimate`).
* A data term without one, or a non-quadratic loss: ``A`` is dualised too
  (``K = [D; A]``), with diagonal steps (:mod:`.pdhg`); with the Poisson loss also β > 1.
"""

from __future__ import annotations

import math

import numpy as np

from ._box import pixel_box
from ._common import Problem, SolveInfo
from .data_terms import Diagonal
from ._stopping import predicted_check, spaced_check, tail_estimate

#: Convergence checks without a 1 % better gap after which the denoising solver
#: gives up -- counted only once the gap is within :data:`ROUNDING_FACTOR` of what
#: the dtype can certify, so it never stops far above rounding.
CP_STALL_CHECKS = 50

#: The gap's rounding level is ``eps_dtype · (P + ½‖f‖²) / D`` (the relative error
#: of the float64 sums of dtype-rounded iterates); a stall below this many times
#: that level is rounding, not slow progress.
ROUNDING_FACTOR = 1000.0

#: Acceleration of the strongly convex case (CP 2011, Algorithm 2): θ = 1/√(1 + 2γτ).
#: γ = 1 (the data term's modulus) is the largest the theory allows; a smaller γ keeps
#: τ from collapsing, which on natural images and volumes at weights 0.01-3 takes 2-3×
#: fewer iterations to any tolerance from 1e-3 to 1e-6.
CP_GAMMA = 0.3

#: Anisotropic float64 denoising still short of eps after this many iterations
#: tries the exact finish of :mod:`._polish` once the dual's bound set has not
#: changed over :data:`POLISH_EVERY` iterations (after a failed try, again after
#: a quarter of the iterations done); never reached by the common solves (tens
#: of iterations).
POLISH_START = 500
POLISH_EVERY = 100
#: ... and only for tolerances this tight: at 1e-4 and above CP alone is about as fast
#: as a try, which costs a flow solve.
POLISH_EPS = 1e-5

#: τ/σ balance of the initial steps (τσ‖K‖² = 1): insensitive in [3, 30] on
#: natural images; primal-heavy.
STEP_RATIO = 5.0
#: ... and of the over-relaxed iteration with a diagonal data term (a mask):
#: ``a · (range / weight)^b`` with ``range`` that of the known data, ``(a, b)`` this pair:
#: the dual lives in a ball of radius ``weight``, the primal spans the data's range.  On
#: 25 inpaintings (``camera`` and ``astronaut`` 256² and 512², noise 0.02, random 50 % /
#: 90 % and line masks, weights 3e-3 and 3e-2; a 64³ volume) 13769 → 6762 iterations to
#: the default gap against a fixed 3 (this rule's value at weight 0.01 on data in [0, 1]:
#: a larger ``a`` is faster at low weights but slower on a clean ``camera``), and 5-15×
#: fewer at weights 5e-4 and 0.1-0.3 (camera 256², 50 %: 1357 → 90, 1261 → 229, 4580 →
#: 424); clipped to :data:`MASK_RATIO_RANGE`.
MASK_RATIO = (0.05, 0.9)
MASK_RATIO_RANGE = (0.1, 1000.0)

#: Over-relaxation ``(u, p) ← (u, p) + ω((ũ, p̃) − (u, p))`` of the iteration with a data
#: term's proximal step that is not strongly convex (a mask; Condat 2013, any
#: ``ω ∈ (0, 2)`` converges): on camera 256² and 512² with random (50 %) and text-like
#: masks, 1.6–1.8× fewer iterations than ``ω = 1`` to the default gap and to a true
#: relative excess of 1e-3 or 1e-4.
OMEGA_PROX = 1.9
#: The masked gap takes the tighter dual point (the holes' residuals moved to known
#: neighbours: a check about 1.4× as long) once the last gap is within this factor of
#: ``eps``: on camera 256² and 512² at the default eps, 124 → 113 iterations with a random
#: (50 %) mask (the same time), 136 → 113 with a text-like one (11 % less time); taken at
#: every check it costs more than it saves.
TRANSFER_GAP = 4.0

#: The strong-convexity modulus ``μ`` of the data term from which the iteration is
#: accelerated instead: below it the steps shrink too slowly to pay (a periodic Gaussian
#: blur's ``μ = min |ĥ|²`` ≈ 0: 236 relaxed iterations to the default gap against 455;
#: camera 256² with half its pixels at weight ``m = 0.1``: 550 against 665), above it the
#: acceleration wins (``m = 0.3``, μ = 0.09: a true excess of 4.9e-4 after 200 iterations
#: against 2.5e-3).
MU_ACCELERATE = 0.05


def _d_norm(inv_spacing) -> float:
    """‖D‖ ≤ sqrt(4 Σ 1/h²) (forward differences, Neumann boundary)."""
    return math.sqrt(4.0 * sum(h * h for h in inv_spacing))


def primal_dual(problem: Problem, check_every: int = 5):
    """Chambolle–Pock for ``problem`` (β = 1, no smoothing; for a non-quadratic loss also
    β > 1, by :mod:`.pdhg`); returns ``(u5, info)``."""
    data = problem.data
    if data.identity and data.loss.quadratic:
        return _rof(problem, check_every)
    if data.has_prox and data.loss.quadratic:
        return _generic(problem, check_every)
    from .pdhg import preconditioned

    return preconditioned(problem)


def _rof(problem: Problem, check_every: int):
    """Denoising: accelerated CP with the duality gap ``P(u) − D(p)`` relative
    to ``D(p)``, which bounds ``(P(u) − P*) / P*``.  Gives up (not converged)
    only at rounding: when the gap is within :data:`ROUNDING_FACTOR` of the
    level the dtype can certify and the best gap has not improved by 1 % over
    :data:`CP_STALL_CHECKS` checks (float32 with eps ≲ 1e-6; never in float64
    above ~1e-12).

    Anisotropic float64 solves on the host to ``eps ≤`` :data:`POLISH_EPS` that take
    long try, from iteration :data:`POLISH_START` on, the explicit solution for the
    bound set that the dual iterate indicates (:func:`._polish.polish_anisotropic`),
    accepted only when its own duality gap is ≤ eps."""
    weight, eps, max_iter = problem.weight, problem.eps, problem.max_iter
    state = problem.backend.cp_state(problem.data.f, weight, problem.plan, identity=True)
    f2 = state.sumsq_f()
    fused = getattr(state, "step", None)  # dual then primal step in one call, where offered
    unit = float(np.finfo(state.T).eps)
    floor = 0.5 * f2 * unit
    lip = _d_norm(state.inv_spacing[-state.nd:])
    tau, sigma = STEP_RATIO / lip, 1.0 / (STEP_RATIO * lip)
    it = 0
    primal = gap = math.inf
    converged = False
    best, since_best = math.inf, 0
    # The host states offer the dual as NumPy arrays for the exact finish.
    fields = getattr(state, "dual_fields", None)
    last_pattern = None
    polish_at = math.inf
    if fields is not None and state.T is np.float64 and not state.iso and eps <= POLISH_EPS:
        polish_at = POLISH_START
    while it < max_iter and since_best < CP_STALL_CHECKS:
        it += 1
        theta = 1.0 / math.sqrt(1.0 + 2.0 * CP_GAMMA * tau)
        check = it % check_every == 0 or it == max_iter
        if fused is not None:
            residual = fused(sigma, tau, theta, check)
        else:
            state.dual_step(sigma)
            residual = state.primal_step(tau, theta, check)
        tau *= theta
        sigma /= theta
        if check:
            dual = 0.5 * f2 - 0.5 * residual
            fid, tv1 = state.primal_terms()
            primal = fid + weight * tv1
            # P* >= 0 can be 0 (a constant image): the gap is relative to the dual,
            # floored at the rounding level of the data term.
            scale = max(dual, floor, np.finfo(np.float64).tiny)
            gap = max(primal - dual, 0.0) / scale
            converged = gap <= eps
            rounding = unit * (abs(primal) + 0.5 * f2) / scale
            if gap < 0.99 * best:
                best, since_best = gap, 0
            elif gap <= ROUNDING_FACTOR * rounding:
                since_best += 1
            if not converged and it >= polish_at:
                from . import _polish

                # The finish costs a few hundred CP iterations (its flow solve):
                # attempted only once the bound set has not moved in POLISH_EVERY.
                pattern = _polish.bound_pattern(fields(), weight)
                polish_at = it + POLISH_EVERY
                if _polish.same_pattern(pattern, last_pattern):
                    polish_at = it + max(POLISH_EVERY, it // 4)
                    u_p, primal_p, gap_p = _polish.polish_anisotropic(
                        state.f, weight, fields(), floor, eps, primal + unit * scale)
                    if gap_p <= eps:
                        problem.call_back(it, u_p, primal_p)
                        return u_p, SolveInfo(it, primal_p, gap_p, True, "cp", bound=True)
                last_pattern = pattern
            if problem.call_back(it, state.u, primal) or converged:
                break
    return state.u, SolveInfo(it, primal, max(gap, 0.0), converged, "cp", bound=True)


def _generic(problem: Problem, check_every: int):
    """CP with the data term's proximal step (accelerated when the term is strongly
    convex).  Stops on the duality gap on per-pixel boxes that hold a minimiser where
    the term is diagonal (:mod:`._box`: a mask), a bound;
    else on the objective's :func:`._stopping.tail_estimate`, an estimate."""
    backend, data, weight, plan = problem.backend, problem.data, problem.weight, problem.plan
    xp = backend.xp
    diagonal = isinstance(data, Diagonal)  # its proximal step inside the primal pass
    box = None
    if diagonal:  # before the state: its temporaries are gone by then
        box = pixel_box(backend, data, weight, plan.canonical_spatial_axes[-plan.n_spatial:],
                        plan.inv_spacing)
    state = backend.cp_state(data.start(), weight, plan, identity=False)
    lip = _d_norm(state.inv_spacing[-state.nd:])
    mu = data.mu
    if mu < MU_ACCELERATE:  # relaxation or acceleration, not both
        mu, om = 0.0, OMEGA_PROX
    else:
        om = 1.0
    ratio = STEP_RATIO
    if box is not None and om != 1 and box.hi > box.lo:
        a, b = MASK_RATIO
        ratio = min(max(a * ((box.hi - box.lo) / weight) ** b, MASK_RATIO_RANGE[0]),
                    MASK_RATIO_RANGE[1])
    tau, sigma = ratio / lip, 1.0 / (ratio * lip)
    T = state.T
    if not diagonal:
        un = xp.empty_like(state.u)
        uf, unf = state.u.reshape(-1), un.reshape(-1)
    it = 0
    objective = gap = math.inf
    best = {}
    low = math.inf
    converged = False
    next_check = check_every
    checks = []
    while it < problem.max_iter:
        it += 1
        theta = 1.0 / math.sqrt(1.0 + 2.0 * CP_GAMMA * mu * tau) if mu > 0 else 1.0
        state.dual_step(sigma, om)
        if diagonal:
            state.diagonal_step(tau, theta, om, data.m, data.f)
        else:
            state.primal_step(tau, theta, False)  # ū ← u − τ Dᵀp
            data.prox(state.ub, tau, un)
            backend.ops.extrapolate(uf, unf, state.ub.reshape(-1), T(theta), T(om))
        tau *= theta
        sigma /= theta
        if it >= next_check or it == problem.max_iter:
            if box is not None:
                objective, gap = _box_gap(data, state, weight, box,
                                          gap <= TRANSFER_GAP * problem.eps)
                checks.append((it, gap))
                next_check = predicted_check(checks, check_every, problem.eps)
            else:
                next_check = spaced_check(it, check_every)
                objective = data.value(state.u) + weight * state.primal_terms()[1]
                low = min(low, objective)
                best[it] = low
                gap = tail_estimate(best, it, objective)
            converged = gap <= problem.eps
            if problem.call_back(it, state.u, objective) or converged:
                break
    return state.u, SolveInfo(it, objective, max(gap, 0.0), converged, "cp",
                              bound=box is not None)


def _box_gap(data, state, weight, box, transfer) -> tuple[float, float]:
    """``(P(u), (P(u) − D) / D)`` for a diagonal data term ``½‖m ⊙ u − f‖²``: ``D`` is the
    dual value on the per-pixel box that holds a minimiser (:mod:`._box`) at the TV dual
    ``P(p)`` (``P`` the projection onto the ball: the relaxed iterate may lie outside) and
    the data-side dual ``q`` that maximises it pixel by pixel,
    ``D = Σ_i −½q_i² − q_i f_i − max(−g_i L_i, −g_i H_i)``, ``g = Dᵀ P(p) + m q``; it is at
    most ``P*`` (weak duality on the box), and the gap is inf while ``D ≤ 0``.  With
    ``transfer`` (one channel) ``P(p)`` first moves each hole's part of ``Dᵀ P(p)`` to its
    known neighbours within the ball, which never lowers ``D``.  One fused pass on the
    CPU, ``TV₁(u)`` included."""
    qq, dual, tv1 = state.masked_gap_sums(data.m, data.f, box, transfer)
    objective = 0.5 * qq + weight * tv1
    return objective, ((objective - dual) / dual if dual > 0 else math.inf)
