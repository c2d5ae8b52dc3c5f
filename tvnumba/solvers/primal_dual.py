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
* Any other data term with a cheap proximal step: the same iteration with
  the data term's ``prox`` (accelerated with ``γ = CP_GAMMA·μ`` when ``μ > 0``).
* A data term without one: ``A`` is dualised too (``K = [D; A]``), and only
  ``A``/``Aᵀ`` are needed.

Without the identity data term no cheap dual objective exists (``G*`` is
infinite off the range of ``Aᵀ``), so the stopping quantity is the relative
primal step ``‖u_k − u_{k−1}‖ / ‖u_k‖``, a documented residual.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Problem, SolveInfo

#: Convergence checks without a 1 % better gap after which the denoising solver
#: gives up -- counted only once the gap is within :data:`ROUNDING_FACTOR` of what
#: the dtype can certify, so it never stops far above rounding.
CP_STALL_CHECKS = 50

#: The gap's rounding level is ``eps_dtype · (P + ½‖f‖²) / D`` (the relative error
#: of the float64 sums of dtype-rounded iterates); a stall below this many times
#: that level is rounding, not slow progress.
ROUNDING_FACTOR = 1000.0

#: Acceleration of the strongly convex case (CP 2011, Algorithm 2): θ = 1/√(1 + 2γτ).
#: γ = 1 (the data term's modulus) is the largest the theory allows; a smaller γ
#: keeps τ from collapsing and, measured on camera crops, 512² camera and a 32³
#: volume for weights 0.01-3, iso and aniso, needs 2-3× fewer iterations in total
#: at every tolerance 1e-3 ... 1e-6 (benchmarks/RESULTS.md, "Chambolle-Pock").
CP_GAMMA = 0.3

#: Anisotropic float64 denoising still short of eps after this many iterations
#: tries the exact finish of :mod:`._polish` once the dual's bound set has not
#: changed over :data:`POLISH_EVERY` iterations (after a failed try, again after
#: a quarter of the iterations done); never reached by the common solves (tens
#: of iterations).
POLISH_START = 500
POLISH_EVERY = 100
#: ... and only for tolerances this tight: at 1e-4 and above CP alone is about as fast
#: (a failed try costs a flow solve; benchmarks/RESULTS.md, "exact finish").
POLISH_EPS = 1e-5
#: Isotropic float64 denoising to ``eps ≤`` :data:`POLISH_ISO_EPS` still short of
#: it after :data:`POLISH_ISO_START` iterations, and not on course to reach it within
#: ``max_num_iter`` (the gap's decay since half the iterations, extrapolated), tries
#: the Newton finish of :func:`._polish.polish_isotropic` (again after twice the
#: iterations when it fails or was not needed yet).  The course check keeps the
#: finish from slowing a case CP converges on in time (the 96×80 crop at weight 0.3
#: went from 0.2 to 3 s without it: two failed tries before CP's 6 765th iteration).
#: A try costs 30-40 sparse factorisations (about 1 s for 96×80, 10 s for 256²)
#: against CP's tens of thousands of iterations at these tolerances (the heavy
#: cases of the eps = 1e-8 sweep need 10 000-60 000); at 1e-6 CP alone converges
#: within a few thousand.  With the default cap (``50/√eps``) CP is on course in
#: every case of the sweep, so the finish serves a smaller ``max_num_iter``.
POLISH_ISO_START = 2000
POLISH_ISO_EPS = 1e-7
#: ... and only up to this many values (pixels × channels × batch): a sparse
#: factorisation per Newton step took 0.3-1 s at 256² (65 536) on a busy 2-core
#: machine, and at weight 3 the continuation did not certify 1e-8 in 120 steps.
POLISH_ISO_MAX_SIZE = 20000

#: τ/σ balance of the initial steps (τσ‖K‖² = 1): insensitive in [3, 30] on
#: natural images; primal-heavy.
STEP_RATIO = 5.0


def _d_norm(inv_spacing) -> float:
    """‖D‖ ≤ sqrt(4 Σ 1/h²) (forward differences, Neumann boundary)."""
    return math.sqrt(4.0 * sum(h * h for h in inv_spacing))


def _projected_iterations(gaps, it, gap, eps) -> float:
    """The iterations CP needs to reach ``eps`` if the gap keeps falling as it did
    since half the iterations (``gap ∝ k^−a``); inf when it did not fall."""
    half = max((k for k in gaps if k <= it // 2), default=None)
    if half is None or gaps[half] <= gap or gap <= 0:
        return math.inf
    a = math.log(gaps[half] / gap) / math.log(it / half)
    return it * (gap / eps) ** (1.0 / a) if gap > eps else it


def primal_dual(problem: Problem, check_every: int = 5):
    """Chambolle–Pock for ``problem`` (β = 1, no smoothing); returns ``(u5, info)``."""
    data = problem.data
    if problem.weight == 0:
        u = data.start().copy()
        return u, SolveInfo(0, data.value(u), 0.0, True, "cp")
    if data.identity:
        return _rof(problem, check_every)
    return _generic(problem, check_every)


def _rof(problem: Problem, check_every: int):
    """Denoising: accelerated CP with the duality gap ``P(u) − D(p)`` relative
    to ``D(p)``, which bounds ``(P(u) − P*) / P*``.  Gives up (not converged)
    only at rounding: when the gap is within :data:`ROUNDING_FACTOR` of the
    level the dtype can certify and the best gap has not improved by 1 % over
    :data:`CP_STALL_CHECKS` checks (float32 with eps ≲ 1e-6; never in float64
    above ~1e-12).

    Anisotropic float64 solves to ``eps ≤`` :data:`POLISH_EPS` that take long try, from iteration
    :data:`POLISH_START` on, the explicit solution for the bound set that the
    dual iterate indicates (:func:`._polish.polish_anisotropic`), accepted only
    when its own duality gap is ≤ eps: the heavy cases of the sweep converge in
    a few hundred to a few thousand iterations instead of up to 20 000 or
    more.  Isotropic float64 solves to ``eps ≤`` :data:`POLISH_ISO_EPS` try
    the primal–dual Newton finish :func:`._polish.polish_isotropic` from
    iteration :data:`POLISH_ISO_START` on, accepted on the same terms."""
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
    fields = getattr(state, "dual_fields", None)
    last_pattern = None
    polish_at = math.inf
    gaps = {}  # iteration -> gap at the checks, for the isotropic finish's trigger
    if fields is not None and state.T is np.float64 and isinstance(state.u, np.ndarray):
        if not state.iso and eps <= POLISH_EPS:
            polish_at = POLISH_START
        elif state.iso and eps <= POLISH_ISO_EPS and state.f.size <= POLISH_ISO_MAX_SIZE:
            polish_at = POLISH_ISO_START
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
            if state.iso and polish_at < math.inf:
                gaps[it] = gap
            if not converged and it >= polish_at and state.iso:
                polish_at = 2 * it
                # on course: CP gets there itself within max_num_iter
                if _projected_iterations(gaps, it, gap, eps) > max_iter:
                    from . import _polish

                    u_p, primal_p, gap_p = _polish.polish_isotropic(
                        state.f, weight, fields(), floor, eps, state.u)
                    if gap_p <= eps:
                        problem.call_back(it, u_p, primal_p)
                        return u_p, SolveInfo(it, primal_p, gap_p, True, "cp")
            elif not converged and it >= polish_at:
                from . import _polish

                # The finish costs a few hundred CP iterations (its flow solve):
                # tried only once the bound set has not moved in POLISH_EVERY.
                pattern = _polish.bound_pattern(fields(), weight)
                polish_at = it + POLISH_EVERY
                if _polish.same_pattern(pattern, last_pattern):
                    polish_at = it + max(POLISH_EVERY, it // 4)
                    u_p, primal_p, gap_p = _polish.polish_anisotropic(
                        state.f, weight, fields(), floor, eps, primal + unit * scale)
                    if gap_p <= eps:
                        problem.call_back(it, u_p, primal_p)
                        return u_p, SolveInfo(it, primal_p, gap_p, True, "cp")
                last_pattern = pattern
            if problem.call_back(it, state.u, primal) or converged:
                break
    return state.u, SolveInfo(it, primal, max(gap, 0.0), converged, "cp")


def _generic(problem: Problem, check_every: int):
    """CP with the data term's proximal step, or with ``A`` dualised."""
    backend, data, weight = problem.backend, problem.data, problem.weight
    xp, ops = backend.xp, backend.ops
    state = backend.cp_state(data.start(), weight, problem.plan, identity=False)
    lip = _d_norm(state.inv_spacing[-state.nd:])
    dual_data = not data.has_prox
    mu = 0.0
    tau, sigma = STEP_RATIO / lip, 1.0 / (STEP_RATIO * lip)
    if dual_data:
        # One dual step per block, each scaled to its own operator norm
        # (τ (σ_D ‖D‖² + σ_A ‖A‖²) = 1): with one σ for K = [D; A] a large ‖A‖
        # (a projector: ‖A‖² ~ 200 against ‖D‖² ≤ 8) starved the TV block.
        lip_a = data.op_norm()
        tau = STEP_RATIO / (lip + lip_a)
        sigma_a = 1.0 / (STEP_RATIO * lip_a)
        q = xp.zeros_like(data.f)
    else:
        mu = data.mu
    T = state.T
    un = xp.empty_like(state.u)
    uf, unf = state.u.reshape(-1), un.reshape(-1)
    it = 0
    objective = step = math.inf
    converged = False
    while it < problem.max_iter:
        it += 1
        theta = 1.0 / math.sqrt(1.0 + 2.0 * CP_GAMMA * mu * tau) if mu > 0 else 1.0
        if dual_data:  # q ← prox_{σG*}(q + σ A ū): (q + σ(Aū − f)) / (1 + σ)
            q += T(sigma_a) * (data.forward(state.ub) - data.f)
            q *= T(1.0 / (1.0 + sigma_a))
        state.dual_step(sigma)
        state.primal_step(tau, theta, False)  # ū ← u − τ Dᵀp
        if dual_data:
            xp.subtract(state.ub, T(tau) * data.adjoint(q), out=un)
        else:
            data.prox(state.ub, tau, un)
        check = it % check_every == 0 or it == problem.max_iter
        if check:
            change = ops.sumsq_diff(unf, uf)
            size = ops.dot(unf, unf)
        ops.extrapolate(uf, unf, state.ub.reshape(-1), T(theta))
        tau *= theta
        sigma /= theta
        if check:
            step = math.sqrt(change / size) if size > 0 else (0.0 if change == 0 else math.inf)
            _, tv1 = state.primal_terms()
            objective = data.value(state.u) + weight * tv1
            converged = step <= problem.eps
            if problem.call_back(it, state.u, objective) or converged:
                break
    return state.u, SolveInfo(it, objective, step, converged, "cp")
