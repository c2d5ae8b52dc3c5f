"""``weight = 0``: the data term alone.

Least squares ``½‖A u − f‖²`` has many minimisers where ``A`` has a null space (a
mask, a blur whose spectrum vanishes, fewer data than unknowns); the one returned is
the minimiser **nearest the starting point** ``u₀`` (the term's ``start()``): the exact
closed form where the term offers one (:meth:`~tvnumba.solvers.data_terms.DataTerm.least_squares`:
the identity, masks, periodic convolutions), else conjugate gradients on the normal
equations (CGLS) from ``u₀``, whose iterates stay in ``u₀ + range(Aᵀ)``.  Its stopping
quantity is the relative normal-equation residual ``‖Aᵀ(Au − f)‖ / ‖Aᵀ(Au₀ − f)‖``.

The Poisson loss at ``weight = 0`` is solved in closed form where ``A`` is diagonal
(``u = max((y − b)/m, 0)``); a general ``A`` is Richardson–Lucy's problem, refused with
a pointer to it.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import Problem, SolveInfo

#: The iteration cap of CGLS when ``max_num_iter`` is not given.
CGLS_MAX_ITER = 10000


def unregularised(problem: Problem, max_num_iter: int | None):
    """Minimise the data term of ``problem`` alone; returns ``(u5, info)``."""
    data = problem.data
    u0 = data.start()
    if not data.loss.quadratic:
        u = data.poisson_exact(u0)
        if u is None:
            raise ValueError(
                "weight=0 with noise='poisson' and a non-diagonal operator is the "
                "unregularised Poisson deconvolution that Richardson-Lucy iterates solve "
                "(skimage.restoration.richardson_lucy, stopped early); pass weight > 0")
        return u, SolveInfo(0, data.value(u), 0.0, True, "exact", bound=True)
    u = data.least_squares(u0)
    if u is not None:
        r0 = _normal_residual(data, u0)
        gap = _normal_residual(data, u) / r0 if r0 > 0 else 0.0
        return u, SolveInfo(0, data.value(u), gap, gap <= problem.eps, "exact",
                              bound=gap == 0)
    cap = CGLS_MAX_ITER if max_num_iter is None else max_num_iter
    return _cgls(problem, u0, cap)


def _norm(xp, a) -> float:
    a = a.astype(xp.float64, copy=False).ravel()
    return math.sqrt(float(xp.vdot(a, a)))


def _normal_residual(data, u) -> float:
    return _norm(data.xp, data.adjoint(data.forward(u) - data.f))


def _cgls(problem: Problem, u0, cap: int):
    """CGLS (Hestenes–Stiefel on ``AᵀA u = Aᵀf``) from ``u0``."""
    data = problem.data
    xp = data.xp
    u = u0.astype(data.f.dtype, copy=True)
    r = data.f - data.forward(u)
    s = data.adjoint(r)
    gamma = _norm(xp, s) ** 2
    gamma0 = gamma
    if gamma0 == 0:
        return u, SolveInfo(0, data.value(u), 0.0, True, "cgls", bound=True)
    p = s.copy()
    gap, it = 1.0, 0
    T = u.dtype.type
    while it < cap:
        it += 1
        q = data.forward(p)
        qq = _norm(xp, q) ** 2
        if qq == 0:
            break
        alpha = T(gamma / qq)
        u += alpha * p
        r -= alpha * q
        s = data.adjoint(r)
        gamma_new = _norm(xp, s) ** 2
        gap = math.sqrt(gamma_new / gamma0)
        if gap <= problem.eps or problem.call_back(it, u, 0.5 * _norm(xp, r) ** 2):
            break
        p *= T(gamma_new / gamma)
        p += s
        gamma = gamma_new
    return u, SolveInfo(it, data.value(u), gap, gap <= problem.eps, "cgls")


def nearest_pinv(xp, U0, H, F):
    """Spectral least squares nearest ``U0``: ``U0 + H̄(F − H U0)/|H|²`` where ``|H|`` is
    above rounding (the pseudo-inverse's tolerance, ``max|H| · n · ε``), ``U0`` elsewhere."""
    mag = xp.abs(H)
    tol = float(xp.max(mag)) * max(H.shape) * np.finfo(np.float64).eps
    keep = mag > tol
    safe = xp.where(keep, H, 1)
    return xp.where(keep, U0 + (F - H * U0) / safe, U0)
