"""``weight="auto"`` for photon counts: the weight that minimises the Poisson unbiased
risk estimate (PURE) of the predicted intensity.

For counts ``y ~ Poisson(μ)`` and an estimate ``μ̂(y) = A u(y) + b`` of ``μ``, the
identity ``E[μ_i g(y)] = E[y_i g(y − e_i)]`` makes

    PURE = ‖μ̂ − y‖² − Σ y + 2 Σ_i y_i ∂_i μ̂_i

an unbiased estimate of ``E‖μ̂ − μ‖²`` to first order in ``μ̂(y − e_i) ≈ μ̂(y) − ∂_i μ̂_i``;
the divergence term is estimated with one fixed ±1 probe ``δ`` on the pixels with
``y > 0`` (``⟨y ⊙ δ, μ̂(y + δ) − μ̂(y)⟩``: unit steps, the size of the Poisson identity's),
so each weight costs two solves.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..solvers import WarmStart
from .auto_weight import PROBE_SEED, _search_solver, minimise_log

#: The starting weight times ``√(mean(y) − b)``: the best weights of natural images at
#: 5-100 photons lie within a factor 2 of it; the search walks further where needed.
GUESS = 0.35
#: Weights evaluated at most (two solves each).
MAX_EVALS = 9
#: Brent's tolerance in ``log(weight)``: the PSNR is flat within ±20 % of the best weight
#: (within 0.05 dB on the photon-count benchmark), so finer steps cost solves for nothing.
XTOL = 0.2
#: Solves kept to start the next weight's from (those of the lowest risks).
KEEP_STARTS = 3


def choose_poisson_weight(make_term, f5, plan, u_plan, backend, *,
                          max_num_iter: int | None,
                          seed: int = PROBE_SEED) -> tuple[float, WarmStart]:
    """The PURE-minimising weight for counts ``f5`` (canonical, on ``backend``), and the
    search's iterates at that weight (a start for the final solve).

    ``make_term(g)`` builds the Poisson data term of counts ``g`` (float64); ``u_plan`` is
    the plan of the unknown (the extended grid of a deconvolution).
    """
    xp = backend.xp
    y = f5.astype(xp.float64)
    rng = np.random.default_rng(seed)
    probe = xp.asarray(rng.choice((-1.0, 1.0), size=y.shape))
    probe = xp.where(y > 0, probe, 0.0)
    yp = y + probe
    term = make_term(y).bind(backend)
    b = term.background
    solve_at = _search_solver(make_term, replace(u_plan, dtype=np.dtype(np.float64)), backend,
                              method="cp", max_num_iter=max_num_iter)
    n = y.size
    total = float(xp.sum(y))
    kept: dict = {}  # log weight → (risk, warm start of y, of y + δ)

    def pure(w: float) -> float:
        # Each of the two solves starts from its own data's iterates at the nearest
        # weight evaluated so far: both chains are treated alike, so their stopping
        # errors do not bias the difference.
        t = math.log(w)
        near = min(kept, key=lambda s: abs(s - t)) if kept else None
        # replace(): a shallow copy that the solve overwrites, not the kept start
        warm_y, warm_p = (replace(kept[near][1]), replace(kept[near][2])) if near is not None \
            else (WarmStart(), WarmStart())
        mu = term.forward(solve_at(w, y, warm_y)) + b
        mu_p = term.forward(solve_at(w, yp, warm_p)) + b
        div = float(xp.sum(y * probe * (mu_p - mu)))
        risk = (float(xp.sum((mu - y) ** 2)) - total + 2.0 * div) / n
        kept[t] = (risk, warm_y, warm_p)
        for s in sorted(kept, key=lambda s: kept[s][0])[KEEP_STARTS:]:
            del kept[s]  # memory: the iterates of the best few weights only
        return risk

    level = float(xp.mean(y)) - float(xp.mean(xp.asarray(b)))
    weight, _, _ = minimise_log(pure, starting_weight(level), max_evals=MAX_EVALS, xtol=XTOL)
    chosen = kept.get(math.log(weight))
    return weight, (replace(chosen[1]) if chosen is not None else WarmStart())


def starting_weight(mean_excess: float) -> float:
    """``GUESS / √(mean(y) − b)``: a weight on the counts' scale within a factor of about 2
    of the best for natural images at 5-100 photons (the start of the PURE search)."""
    return GUESS / math.sqrt(mean_excess) if mean_excess > 0 else GUESS

