"""What every solver shares: the problem it is handed and the result it returns."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .._validate import Plan


@dataclass(frozen=True)
class SolveInfo:
    """What a TV solver did: the result type of every ``return_info=True``.

    Returned next to the solution by :func:`~tvnumba.denoise_tv_beta`,
    :func:`~tvnumba.deconvolve_tv_beta`, :func:`~tvnumba.inpaint_tv_beta`,
    :func:`~tvnumba.reconstruct_tv_beta` and :func:`~tvnumba.solve_tv_beta`.
    A frozen dataclass.

    Attributes
    ----------
    iterations : int
        Iterations of the solver (outer majorize-minimize steps for ``"mm"``;
        0 when the input was already optimal, 1 for the direct ``"dct"``); with
        ``weight="auto"``, those of the final solve at the chosen weight (for
        counts it starts from the weight search's iterates at that weight).
    objective : float
        The data term (``½‖Au − f‖²``, or the Kullback–Leibler divergence of
        counts) ``+ weight · TV_β(u)`` at the returned ``u`` (float64 sums),
        with the smoothing actually used (for deconvolution: of the extended
        problem; for CT: with the ``1/n_angles`` factor).
    gap : float
        The stopping quantity, compared with ``eps``; :attr:`bound` says whether it
        bounds the relative objective error ``(F(u) − F*) / F*`` from above.
        Bounds: the duality gap ``(F − D)/D`` (``"cp"`` on denoising, on masks
        with the box of the maximum principle, and on the Poisson loss; ``"lbfgs"``,
        ``"mm"`` and ``"dct"`` with β ≥ 1, or ``½‖∇F‖²/μ / (F − ½‖∇F‖²/μ)`` where
        the data term is strongly convex).  Estimates: the objective's decrease
        over the second half of the run (``"admm"``) or over its last quarter
        scaled to a linear tail, ``(F_j − F_k)/F_k · j/(k − j)``, ``j = 3k/4``
        (``"cp"`` with a general operator and the least-squares loss), which
        exceeds the error under the power-law or linear tails these methods
        show but is not a bound; a stationarity ratio (β < 1); the relative
        normal-equation residual ``‖Aᵀ(Au − f)‖ / ‖Aᵀ(Au₀ − f)‖`` (``"cgls"``).
    converged : bool
        ``gap <= eps`` was reached within ``max_num_iter``.  A solve also
        stops, not converged, where the dtype's rounding stands in the way
        (the gap no longer improves at the dtype's precision).
    method : str
        The solver used: ``"cp"`` (primal–dual), ``"admm"``, ``"lbfgs"``,
        ``"mm"``, ``"dct"``, or for ``weight = 0`` ``"exact"`` (a closed form)
        or ``"cgls"`` (conjugate gradients on the normal equations, from the
        start: the least-squares solution nearest it).
    bound : bool
        ``gap`` is an upper bound on ``(F(u) − F*) / F*`` (False: an estimate).
    smoothing : float
        The smoothing ``s`` the objective was minimised with (an internal
        value for β < 1 with ``smoothing=0``).
    weight : float or None
        The weight the objective was minimised with (the chosen one for
        ``weight="auto"``) from the functions that offer ``"auto"``; ``None``
        from :func:`~tvnumba.inpaint_tv_beta` and :func:`~tvnumba.solve_tv_beta`.
    sigma : float or None
        The estimated noise standard deviation with ``weight="auto"`` (for
        CT: per detector bin, unscaled); ``None`` otherwise.

    See Also
    --------
    tvnumba.denoise_tv_beta
    """

    iterations: int
    objective: float
    gap: float
    converged: bool
    method: str
    smoothing: float = 0.0
    weight: float | None = None
    sigma: float | None = None
    bound: bool = False


@dataclass(frozen=True)
class Problem:
    """A validated TV-regularised problem, as the solver entry hands it to a solver.

    ``data`` is bound to ``backend``; arrays are in ``plan``'s canonical layout;
    ``view`` turns a canonical iterate into the caller's layout for ``callback``.
    """

    backend: Any
    plan: Plan
    data: Any
    weight: float
    #: The smoothing the solver uses: the plan's, or an internal one (``needs_smoothing``).
    smoothing: float
    eps: float
    max_iter: int
    callback: Callable | None = None
    view: Callable = lambda u: u
    #: Iterates to start from and to leave behind (:class:`WarmStart`); solvers that
    #: take none ignore it.
    warm: Any = None

    def call_back(self, it, u, objective) -> bool:
        """Run the user's callback; True asks the solver to stop."""
        if self.callback is None:
            return False
        return bool(self.callback(it, self.view(u), objective))


@dataclass
class WarmStart:
    """The last iterates of a primal–dual solve at ``weight``, to start the next solve of
    a neighbouring problem from (same shapes and dtype): the primal ``u``, the TV dual
    ``p`` (one array per axis, ``|p| ≤ weight``), the data dual ``r`` and the step
    balance ``scale`` reached (``ρ`` over its start)."""

    u: Any = None
    p: Any = None
    r: Any = None
    weight: float = 0.0
    scale: float = 1.0


def certificate(F, gg, mu=1.0):
    """``½‖∇F‖²/μ / (F − ½‖∇F‖²/μ)``: bounds ``(F − F*)/F*`` when F is
    μ-strongly convex; a relative stationarity measure otherwise (``μ = 0``
    is taken as 1 then).  Where F is convex but not strongly,
    :class:`tvnumba.solvers._fenchel.StoppingRule` gives a bound instead."""
    half = 0.5 * gg / (mu if mu > 0 else 1.0)
    lower = F - half
    return half / lower if lower > 0 else (0.0 if gg == 0 else math.inf)
