"""Majorize–minimize (iteratively reweighted least squares) for β ≤ 2.

The solver of the non-convex family 0 < β < 1, and of any β ≤ 2 with
smoothing.  The weights and the operator ``c0·I + Dᵀ diag(a) D`` come from the
backend (:meth:`Backend.mm_state`: Numba kernels on the CPU, whole-array
operations otherwise), with the identity data term's ``AᵀA = I`` fused in
(``c0 = 1``); any other data term adds its own normal operator.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Problem, SolveInfo
from ._fenchel import StoppingRule

#: Consecutive steps without a decrease beyond rounding after which the
#: solver gives up (not converged).
MM_STALL = 10

#: Internal smoothing used with ``smoothing=0``, relative to the data's
#: largest possible difference ``(max f − min f) / min(h)``: the majorizer of
#: ``t^(β/2)`` needs finite slopes at ``t = 0``.
INTERNAL_SMOOTHING = 1e-3


def smoothing_for_range(value_range, inv_spacing):
    """The internal smoothing of data whose values span ``value_range`` (a number, or
    any array-like scalar such as a lazy Dask one) on a grid of ``1/h = inv_spacing``."""
    return INTERNAL_SMOOTHING * max(value_range, 1e-12) * max(inv_spacing)


def internal_smoothing(problem: Problem) -> float:
    return float(smoothing_for_range(problem.data.range_hint(), problem.plan.inv_spacing))


def mm(problem: Problem, cg_iter: int = 10, cg_tol: float = 1e-2, extrapolate: bool = True):
    """Majorize–minimize for ``F(u) = G(u) + weight Σ (m + s²)^(β/2)`` (β ≤ 2).

    ``t ↦ (t + s²)^(β/2)`` is concave for β ≤ 2, so its tangent at the squared
    magnitudes of a point ``y`` majorizes it: the quadratic
    ``Q_y(u) = G(u) + Σ a_y |Du|²/2`` (``a_y = weight·β (m_y + s²)^(β/2 − 1)``)
    lies above F and touches it at ``y``.  Each outer step decreases ``Q_y``
    by Jacobi-preconditioned CG on ``(AᵀA + Dᵀ diag(a_y) D) u = Aᵀf``
    started at ``y``, so ``F(u⁺) ≤ Q_y(u⁺) ≤ Q_y(y) = F(y)``.

    ``y`` is the current iterate, or -- with ``extrapolate`` -- the
    extrapolated point ``u + (u − u_prev)`` when that already has a lower
    objective by more than rounding (checked, so F never increases); this
    momentum roughly halves the outer steps on images.

    Stops when the quantity of :class:`~tvnumba.solvers._fenchel.StoppingRule`
    is at most ``eps`` (``∇F(u) = A_u u − Aᵀf`` with the weights at u): for
    β ≥ 1 a bound on the relative objective error, ``½‖∇F‖²/μ /
    (F − ½‖∇F‖²/μ)`` when the data term is μ-strongly convex and the duality
    gap otherwise; for β < 1, where the limit is a local minimiser, that
    ratio with ``μ = 1``, a relative stationarity measure.  Gives up
    (``converged=False``) after :data:`MM_STALL` steps that lower F by no
    more than rounding.
    """
    backend, data = problem.backend, problem.data
    xp, ops = backend.xp, backend.ops
    smoothing = problem.smoothing
    state = backend.mm_state(data.f if data.identity else data.start(), problem.weight,
                             problem.plan.beta, smoothing, problem.plan,
                             c0=1.0 if data.identity else 0.0)
    b = data.rhs()
    u = xp.ascontiguousarray(data.start()).copy()
    if data.identity:
        apply = state.apply
    else:
        tmp = xp.empty_like(u)

        def apply(x, out) -> float:
            state.apply(x, out)
            data.normal(x, tmp)
            out += tmp
            return ops.dot(x.reshape(-1), out.reshape(-1))

    def weights_and_value(x) -> float:
        tv = state.weights_and_tv(x)
        return data.value(x) + problem.weight * tv

    def inverse_diag():
        diag = state.diag()
        if not data.identity:
            extra = data.normal_diag()
            diag += 1 if extra is None else extra
        return 1.0 / diag

    u_prev = None
    ap = xp.empty_like(u)
    r = xp.empty_like(u)
    bf, rf, apf = b.reshape(-1), r.reshape(-1), ap.reshape(-1)

    # β < 1: non-convex, the ratio is a stationarity measure, never a bound;
    # dividing by a tiny μ (an ill-conditioned blur) would only make it unreachable.
    rule = StoppingRule(problem, data, smoothing, mu_stationary=1.0)

    def stationarity(x, Fx, it):
        """The stopping quantity at x, whose weights must be current
        (A_x x − Aᵀf = ∇F(x))."""
        apply(x, ap)
        xp.subtract(bf, apf, out=rf)
        return rule(Fx, ops.dot(rf, rf), x, it)

    F = weights_and_value(u)
    gap = stationarity(u, F, 0)
    it = 0
    # A stiff problem (tiny smoothing) in float32 can stall above eps: stop when
    # F has not decreased beyond rounding for MM_STALL consecutive steps.
    rounding = 8 * float(np.finfo(u.dtype).eps)
    stalled = 0
    while gap > problem.eps and it < problem.max_iter and stalled < MM_STALL:
        it += 1
        base = u
        if extrapolate and u_prev is not None:
            y = u + (u - u_prev)
            # Accepted only when clearly lower: near a minimiser F(y) and F tie within
            # rounding, where the order of the sums (a Dask array's chunks, say) would
            # decide -- and a gain at rounding level is no gain.
            if weights_and_value(y) <= F - rounding * abs(F):
                base = y
            else:
                weights_and_value(u)
        u_prev = u
        u = _pcg(apply, b, base, inverse_diag(), cg_iter, cg_tol, xp, ops)
        F_new = weights_and_value(u)
        stalled = stalled + 1 if F - F_new <= rounding * abs(F_new) else 0
        F = F_new
        gap = stationarity(u, F, it)
        if problem.call_back(it, u, F):
            break
    gap = rule.final(F, gap, u, it)
    return u, SolveInfo(it, F, gap, gap <= problem.eps, "mm", bound=problem.plan.beta >= 1)


def _pcg(apply, b, x, minv, max_iter, tol, xp, ops):
    """Preconditioned CG on A x = b from ``x`` (A symmetric positive definite;
    ``apply(v, out)`` writes Av and returns v·Av).

    Each CG iterate minimises the quadratic over a growing affine subspace
    through ``x``, so the quadratic never increases.
    """
    T = x.dtype.type
    x = x.copy()
    ap = xp.empty_like(x)
    r = xp.empty_like(x)
    p = xp.zeros_like(x)
    xf, rf, pf, apf = (a.reshape(-1) for a in (x, r, p, ap))
    bf, mf = b.reshape(-1), minv.reshape(-1)
    apply(x, ap)
    rr, rz = ops.residual_init(bf, apf, mf, rf)
    r0 = math.sqrt(rr)
    if r0 == 0:
        return x
    ops.pcg_direction(pf, rf, mf, T(0))
    for _ in range(max_iter):
        pap = apply(p, ap)
        if pap <= 0:
            break
        alpha = rz / pap
        rr, rz_new = ops.pcg_step(xf, rf, pf, apf, mf, T(alpha))
        if math.sqrt(rr) <= tol * r0:
            break
        ops.pcg_direction(pf, rf, mf, T(rz_new / rz))
        rz = rz_new
    return x
