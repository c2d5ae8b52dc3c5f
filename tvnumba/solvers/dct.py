"""β = 2 in closed form: the problem is quadratic, ``(I + 2·weight·DᵀD) u = f``,
and ``DᵀD`` with Neumann boundaries is diagonal in the DCT-II basis, so one
forward and one inverse transform give the exact minimiser (data terms whose
``AᵀA`` the DCT diagonalises; today the identity)."""

from __future__ import annotations

import dataclasses

import numpy as np

from ._common import Problem, SolveInfo
from ._fenchel import StoppingRule


def dct(problem: Problem):
    """Exact minimiser of ``½‖u − f‖² + weight Σ |Du|²``, and its stopping quantity
    (one fused TV pass in float64; :class:`~tvnumba.solvers._fenchel.StoppingRule`):
    converged when rounding kept it within eps."""
    backend, plan, f = problem.backend, problem.plan, problem.data.f
    xp = backend.xp
    axes = plan.canonical_spatial_axes[-plan.n_spatial:]  # not the length-1 padding
    fft = backend.fft
    F = fft.dctn(f, type=2, norm="ortho", axes=axes)
    denom = None
    for ax, ih in zip(axes, plan.inv_spacing):
        n = f.shape[ax]
        k = xp.arange(n, dtype=xp.float64)
        # (2/h · sin)²: an overflow to inf for huge 1/h is the right limit (those
        # modes vanish), while (4/h²)·sin² would give inf·0 = NaN for the mean.
        with np.errstate(over="ignore"):
            lam = (2.0 * problem.weight) * (2.0 * ih * xp.sin(np.pi * k / (2 * n))) ** 2
        shape = [1] * f.ndim
        shape[ax] = n
        # 1-D factors in float64, the one full-size array in f's dtype.
        lam = lam.reshape(shape).astype(f.dtype)
        denom = lam + f.dtype.type(1) if denom is None else denom + lam
    F /= denom
    del denom
    u = fft.idctn(F, type=2, norm="ortho", axes=axes, overwrite_x=True).astype(
        f.dtype, copy=False)
    del F

    # The certificate in float64, of the returned (rounded) u.
    data = problem.data.at_float64()
    u64 = xp.ascontiguousarray(u, dtype=xp.float64)
    g = xp.empty_like(u64)  # ∇TV, then ∇F in place
    value = float(np.sum(backend.tv5(u64, g, dataclasses.replace(plan, reduction="sum"))))
    fid, gg = data.objective_grad(u64.reshape(-1), g.reshape(-1), problem.weight,
                                  g.reshape(-1))
    objective = fid + problem.weight * value
    # ½‖∇F‖²/μ-based for the identity (μ = 1); the duality gap for a data term
    # whose AᵀA is singular or ill-conditioned.
    gap = StoppingRule(problem, data, problem.smoothing)(objective, gg, u64, 0)
    # Exact in exact arithmetic; the certificate says whether rounding (float32,
    # huge weights) kept it within eps.
    return u, SolveInfo(1, objective, gap, gap <= problem.eps, "dct", bound=True)
