"""Solvers of ``argmin_u ½‖A u − f‖² + weight · TV_β(u)``, generic over the data term.

:func:`solve` is the one entry: it takes a data term
(:mod:`tvnumba.solvers.data_terms`), a validated plan and a backend, picks the
solver from the registry (:mod:`tvnumba.solvers.registry`) and returns the
minimiser in the plan's canonical layout with a :class:`SolveInfo`.

==========  ================================================================
``cp``      primal-dual (Chambolle-Pock), β = 1 without smoothing (β ≥ 1 for counts)
``dct``     exact DCT-II solve, β = 2, data terms the DCT diagonalises
``lbfgs``   L-BFGS, smooth cases (β > 1, or β = 1 with smoothing)
``mm``      majorize-minimize with preconditioned CG, β ≤ 2 (β < 1 by default)
==========  ================================================================

``weight = 0`` leaves the data term alone (:mod:`tvnumba.solvers.unregularised`).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .._threads import for_solve
from .._validate import Plan, check_callback, check_choice, check_max_iter, check_positive
from ._common import Problem, SolveInfo, WarmStart
from .data_terms import DataTerm, Diagonal, Identity
from .mm import internal_smoothing, smoothing_for_range
from .registry import METHODS, SOLVERS, pick
from .unregularised import unregularised

__all__ = ["solve", "SolveInfo", "WarmStart", "DataTerm", "Identity", "Diagonal", "METHODS",
           "SOLVERS", "smoothing_for_range"]


def solve(data: DataTerm, weight: float, *, backend, plan: Plan, method: str = "auto",
          eps: float = 1e-3, max_num_iter: int | None = None, callback=None,
          warm=None):
    """Minimise ``data(u) + weight · TV_β(u)`` with ``TV_β`` as ``plan`` defines it.

    Parameters
    ----------
    data : DataTerm
        The data term; its arrays in ``plan``'s canonical layout.
    weight : float
        Weight ``>= 0`` of the TV term (already validated).
    backend : Backend
        Where the arrays live and which kernels run (:func:`tvnumba.backends.select`).
    plan : Plan
        β, smoothing, isotropy, spacing and the layout (:func:`tvnumba._validate.make_plan`).
    method : str
        ``"auto"`` or a name in :data:`SOLVERS`.
    eps, max_num_iter, callback
        As in :func:`tvnumba.denoise_tv_beta`; ``callback`` sees the iterate in
        the caller's layout.
    warm : WarmStart, optional
        Iterates of a neighbouring solve to start from; the solve leaves its own
        there.  Only the primal–dual solver of the Poisson loss takes it.

    Returns
    -------
    u5 : array
        The minimiser, canonical layout, ``plan.dtype``.
    info : SolveInfo
    """
    check_choice("method", method, METHODS)
    eps = check_positive("eps", eps)
    check_callback(callback)
    data.bind(backend)
    if weight == 0:  # no TV term: β, smoothing and the method play no part
        problem = Problem(backend=backend, plan=plan, data=data, weight=0.0, smoothing=0.0,
                          eps=eps, max_iter=0, callback=callback,
                          view=lambda u5: plan.from_canonical(backend.wrap(u5)))
        return unregularised(problem, None if max_num_iter is None
                             else check_max_iter(max_num_iter))
    solver = pick(method, plan.beta, plan.smoothing, data)
    max_iter = solver.cap(eps) if max_num_iter is None else check_max_iter(max_num_iter)
    problem = Problem(backend=backend, plan=plan, data=data, weight=weight,
                      smoothing=plan.smoothing, eps=eps, max_iter=max_iter, callback=callback,
                      view=lambda u5: plan.from_canonical(backend.wrap(u5)), warm=warm)
    if solver.needs_smoothing and plan.smoothing == 0:
        problem = replace(problem, smoothing=internal_smoothing(problem))
    with for_solve():  # fewer threads when other processes hold the cores
        u5, info = solver.run(problem)
    if not math.isfinite(info.objective):
        # Finite, validated input: only overflow gets here (e.g. β < 1 weights
        # weight·β·s^(β−2) beyond the dtype).  Never hand back a NaN image silently.
        raise ValueError(
            f"the {solver.name!r} solve overflowed {plan.dtype} with weight={weight!r} "
            f"(beta={plan.beta!r}, smoothing={problem.smoothing!r}); use a smaller weight"
            + (" or float64 input" if plan.dtype == np.float32 else ""))
    return u5, replace(info, smoothing=problem.smoothing)
