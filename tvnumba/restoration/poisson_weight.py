"""``weight="auto"`` for photon counts: the weight that minimises a Poisson unbiased
risk estimate (PURE).

For counts ``y ~ Poisson(μ)``, ``μ = A x + b``, the identity
``E[μ_i g(y)] = E[y_i g(y − e_i)]`` estimates ``⟨v(y), μ⟩`` for any ``v`` on the data
grid: to first order in ``v(y − e_i) ≈ v(y) − ∂_i v_i``,

    R(v) = ⟨v, A u⟩ − 2⟨v, y − b⟩ + 2 Σ_i y_i ∂_i v_i

has the expectation of ``⟨v, A u⟩ − 2⟨v, A x⟩``.  With ``v = A u`` that is
``E‖A(u − x)‖²`` less a constant: the risk of the predicted intensity (PURE proper; with
``A = I`` the risk of ``u`` itself).  After a blur that risk weighs the error at each
frequency by the blur's power ``|ĥ|²`` and favours too small a weight (by 1.7-4× on blurred
volumes).  Where ``A`` is a convolution by a symmetric PSF with a non-negative spectrum,
``v = T ⊙ W u`` (the unknown on the data grid, tapered to 0 over the PSF's width at the
edges, where the crop ``W`` and the blur do not commute) estimates
``E⟨T ⊙ W(u − x), A(u − x)⟩``: the error weighed by ``ĥ`` rather than ``ĥ²``, as close to
the intensity's own risk as the counts allow without inverting the blur.

The divergence is estimated with :data:`PROBES` fixed ±1 probes ``δ`` on the pixels with
``y > 0`` (``⟨y ⊙ δ, v(y + δ) − v(y)⟩``, averaged: unit steps, the size of the Poisson
identity's); each weight costs ``1 + PROBES`` solves.
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
#: The count scale of the starting weight's β-dependence (:func:`starting_weight`), fitted
#: to the best weights of β = 1.5 and 2 on a blurred blob volume at 10 and 100 photons.
BETA_SCALE = 17.0
#: Weights evaluated at most (``1 +`` :data:`PROBES` solves each).
MAX_EVALS = 9
#: Brent's tolerance in ``log(weight)``: the PSNR is flat within ±20 % of the best weight
#: (within 0.05 dB on the photon-count benchmark), so finer steps cost solves for nothing.
XTOL = 0.2
#: ±1 probes averaged in the divergence (one solve per weight each): with one, the
#: Monte-Carlo error of the unblurred ``v`` moved the choice by up to 2 dB on 20³-32³ volumes.
PROBES = 2
#: Solves kept to start the next weight's from (those of the lowest risks).
KEEP_STARTS = 3


def choose_poisson_weight(make_term, f5, plan, u_plan, backend, *,
                          max_num_iter: int | None, view=None,
                          seed: int = PROBE_SEED) -> tuple[float, WarmStart]:
    """The risk-minimising weight for counts ``f5`` (canonical, on ``backend``), and the
    search's iterates at that weight (a start for the final solve).

    ``make_term(g)`` builds the Poisson data term of counts ``g`` (float64); ``u_plan`` is
    the plan of the unknown (the extended grid of a deconvolution).  ``view(u)``: the
    (tapered) unknown on the data grid, where the term's operator is a symmetric positive
    semi-definite blur (the risk of ``u`` weighed by the blur); ``None``: the risk of the
    predicted counts ``A u``.
    """
    xp = backend.xp
    y = f5.astype(xp.float64)
    rng = np.random.default_rng(seed)
    probes = [xp.where(y > 0, xp.asarray(rng.choice((-1.0, 1.0), size=y.shape)), 0.0)
              for _ in range(PROBES)]
    term = make_term(y).bind(backend)
    b = term.background
    solve_at = _search_solver(make_term, replace(u_plan, dtype=np.dtype(np.float64)), backend,
                              method="cp", max_num_iter=max_num_iter)
    look = term.forward if view is None else view
    n = y.size
    kept: dict = {}  # log weight → (risk, warm starts of y and of each y + δ)

    def risk_at(w: float) -> float:
        # Each solve starts from its own data's iterates at the nearest weight evaluated
        # so far: all chains are treated alike, so their stopping errors do not bias the
        # differences.
        t = math.log(w)
        near = min(kept, key=lambda s: abs(s - t)) if kept else None
        # replace(): a shallow copy that the solve overwrites, not the kept start
        warm = [replace(s) for s in kept[near][1]] if near is not None \
            else [WarmStart() for _ in range(PROBES + 1)]
        u = solve_at(w, y, warm[0])
        au = term.forward(u)
        v = au if view is None else view(u)
        div = sum(float(xp.sum(y * d * (look(solve_at(w, y + d, start)) - v)))
                  for d, start in zip(probes, warm[1:])) / PROBES
        risk = (float(xp.sum(v * au)) - 2.0 * float(xp.sum(v * (y - b))) + 2.0 * div) / n
        kept[t] = (risk, warm)
        for s in sorted(kept, key=lambda s: kept[s][0])[KEEP_STARTS:]:
            del kept[s]  # memory: the iterates of the best few weights only
        return risk

    level = float(xp.mean(y)) - float(xp.mean(xp.asarray(b)))
    weight, _, _ = minimise_log(risk_at, starting_weight(level, u_plan.beta),
                                max_evals=MAX_EVALS, xtol=XTOL)
    chosen = kept.get(math.log(weight))
    return weight, (replace(chosen[1][0]) if chosen is not None else WarmStart())


def edge_taper(xp, shape, widths, dtype=np.float64):
    """A window over the trailing axes of ``shape`` (one width per axis): 1 inside, falling
    as ``sin²`` to 0 over ``widths`` pixels towards each edge."""
    window = xp.ones((1,) * (len(shape) - len(widths)) + tuple(shape[-len(widths):]), dtype)
    for k, (n, w) in enumerate(zip(shape[-len(widths):], widths)):
        i = np.arange(n, dtype=np.float64)
        ramp = np.sin(0.5 * np.pi * np.minimum(1.0, np.minimum(i + 0.5, n - 0.5 - i) / max(w, 1)))
        axis = [1] * window.ndim
        axis[window.ndim - len(widths) + k] = n
        window = window * xp.asarray((ramp ** 2).reshape(axis), dtype=dtype)
    return window


def starting_weight(mean_excess: float, beta: float = 1.0) -> float:
    """``GUESS / √m · (BETA_SCALE · m)^(1 − β)``, ``m = mean(y) − b``: a weight on the
    counts' scale (``TV_β`` grows as the counts to the power β, the loss as the counts) within
    a factor of about 2 of the best for natural images at 5-100 photons with β = 1, and for
    smooth volumes at 10-100 photons with β = 1.5-2 (the start of the search)."""
    m = mean_excess if mean_excess > 0 else 1.0
    return GUESS / math.sqrt(m) * (BETA_SCALE * m) ** (1.0 - beta)

