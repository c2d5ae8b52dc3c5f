"""Automatic choice of the weight: noise level and weight rules.

Used by :func:`tvnumba.restoration.denoise_tv_beta`,
:func:`tvnumba.restoration.deconvolve_tv_beta` and
:func:`tvnumba.restoration.reconstruct_tv_beta` with ``weight="auto"``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = ["estimate_noise_sigma"]


def estimate_noise_sigma(image, channel_axis: int | None = None) -> float:
    """Standard deviation of additive Gaussian noise, by wavelet MAD.

    :func:`skimage.restoration.estimate_sigma` (median absolute finest-scale
    db2 diagonal coefficient over 0.6745, Donoho and Johnstone [1]_),
    channels estimated separately and averaged.

    Parameters
    ----------
    image : ndarray
        Noisy data (NumPy), any number of spatial axes.
    channel_axis : int, optional
        Axis of the channels, or ``None`` for grayscale.

    Returns
    -------
    sigma : float

    References
    ----------
    .. [1] D. L. Donoho and I. M. Johnstone, "Ideal spatial adaptation by
       wavelet shrinkage", Biometrika 81 (1994), 425-455.

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.restoration.auto_weight import estimate_noise_sigma
    >>> rng = np.random.default_rng(0)
    >>> noisy = 0.5 + 0.1 * rng.standard_normal((128, 128))
    >>> round(estimate_noise_sigma(noisy), 2)
    0.1
    """
    from skimage.restoration import estimate_sigma

    return float(estimate_sigma(np.asarray(image, dtype=np.float64), channel_axis=channel_axis,
                                average_sigmas=True))


def _canonical_sigma(f5, plan, backend) -> float:
    """:func:`estimate_noise_sigma` of every (batch item, channel) of a canonical
    array, averaged (the wavelet transform sees only the real spatial axes)."""
    a = backend.to_host(f5)
    return float(np.mean([estimate_noise_sigma(a[b, c].reshape(plan.spatial_shape))
                          for b in range(a.shape[0]) for c in range(a.shape[1])]))


#: Seed of the Monte-Carlo probe.  Fixed so that ``weight="auto"`` is
#: deterministic, and large so that it does not coincide with the small seeds
#: users draw their noise with (a probe equal to the noise biases SURE).
PROBE_SEED = 0x7B5E_ED5A_17C3_D9E1

#: Tolerance on the solver's gap during the search: f and f + δb take the same
#: solver path, so most of the solver error cancels in their difference.
SEARCH_EPS = 1e-3

#: Starting point of the search, ``(c, p)`` per β: ``weight ≈ c R^(2−β) (σ/R)^p``
#: with ``R`` the data range.  Fitted to the oracle (best-PSNR) weights on
#: camera 256² (range 1) for σ ∈ {0.05, 0.1, 0.2}.  Scaling image and noise by
#: ``k`` scales the optimal weight by ``k^(2−β)`` exactly (both terms of the
#: objective then scale by ``k²``); at a fixed image scale the optimal weight
#: grows like ``σ^p``, not ``σ^(2−β)``: the image, not only the noise, sets it.
GUESS = {0.5: (1.92, 1.64), 1.0: (1.52, 1.28), 1.5: (3.24, 1.19), 2.0: (16.6, 1.52)}


def initial_guess(sigma: float, beta: float, value_range: float = 1.0) -> float:
    """Scale-aware starting weight (see :data:`GUESS`; interpolated in β)."""
    betas = sorted(GUESS)
    c = float(np.interp(beta, betas, [GUESS[b][0] for b in betas]))
    p = float(np.interp(beta, betas, [GUESS[b][1] for b in betas]))
    r = value_range if value_range > 0 else sigma
    return c * r ** (2.0 - beta) * (sigma / r) ** p


def sure_search(solve_at: Callable, f, sigma: float, guess: float, *, xp=np,
                predict: Callable | None = None, seed: int = PROBE_SEED,
                step: float = math.log(2.0), xtol: float = 0.05,
                max_evals: int = 8, gcv: bool = False) -> tuple[float, int, list]:
    """Minimise Monte-Carlo SURE over ``log(weight)``.

    ``solve_at(w, g)`` returns the solution for data ``g`` and weight ``w``
    (arrays of ``xp``, float64), and ``predict`` maps a solution to the data
    space: ``D_w = predict ∘ solve_at(w, ·)`` (``predict`` ``None``: the
    identity, denoising; the forward operator ``A``: the predicted-risk SURE,
    an estimate of ``E‖A(u − x)‖²``).  SURE(w) = ‖D_w(f) − f‖² − Nσ²
    + 2σ² div D_w(f), the divergence estimated with one Gaussian probe
    ``b``: ``bᵀ(D_w(f + δb) − D_w(f)) / δ``, ``δ = 0.01 σ``.  A 3-point grid
    ``guess · 2^{-1, 0, 1}`` is walked downhill until it brackets a minimum,
    then refined by bounded Brent in ``log w`` to ``xtol``.

    ``gcv=True`` minimises generalised cross-validation instead,
    ``(‖D_w(f) − f‖² / N) / (1 − div D_w(f) / N)²`` with the same divergence
    estimate: it does not use σ (only for the probe's step), so a biased σ
    estimate does not bias the weight.

    Returns the weight, the number of SURE evaluations (2 solves each) and
    the ``(weight, SURE / N)`` pairs evaluated (GCV with ``gcv=True``).
    """
    rng = np.random.default_rng(seed)
    b = xp.asarray(rng.standard_normal(f.shape))
    delta = 0.01 * sigma
    fp = f + delta * b
    n = f.size

    def sure(w: float) -> float:
        u = solve_at(w, f)
        up = solve_at(w, fp)
        if predict is not None:
            u, up = predict(u), predict(up)
        div = float(xp.sum(b * (up - u))) / delta
        if gcv:
            return float(xp.sum((u - f) ** 2)) / n / (1.0 - div / n) ** 2
        return (float(xp.sum((u - f) ** 2)) - n * sigma**2 + 2 * sigma**2 * div) / n

    return minimise_log(sure, guess, step=step, xtol=xtol, max_evals=max_evals)


def minimise_log(risk: Callable, guess: float, *, step: float = math.log(2.0),
                 xtol: float = 0.05, max_evals: int = 8) -> tuple[float, int, list]:
    """The weight that minimises ``risk(weight)`` over ``log(weight)``: a 3-point grid
    ``guess · e^{-step, 0, step}`` walked downhill until it brackets a minimum, then
    bounded Brent to ``xtol`` in ``log w``, within ``max_evals`` evaluations.  Returns
    the weight, the number of evaluations and the ``(weight, risk)`` pairs."""
    from scipy.optimize import minimize_scalar

    cache: dict[float, float] = {}

    def at(t: float) -> float:
        t = float(t)
        if t not in cache:
            cache[t] = risk(math.exp(t))
        return cache[t]

    t0 = math.log(guess)
    ts = [t0 - step, t0, t0 + step]
    vals = [at(t) for t in ts]
    # Walk downhill until the middle point is the lowest, within the evaluation
    # budget (the starting guess is usually within a factor 2 of the optimum).
    while len(cache) < max_evals - 2:
        if vals[0] < vals[1] and vals[0] <= vals[2]:
            ts = [ts[0] - step] + ts[:2]
        elif vals[2] < vals[1]:
            ts = ts[1:] + [ts[2] + step]
        else:
            break
        vals = [at(t) for t in ts]
    if vals[1] <= min(vals[0], vals[2]):
        budget = max(max_evals - len(cache), 1)
        minimize_scalar(at, bounds=(ts[0], ts[2]), method="bounded",
                        options={"xatol": xtol, "maxiter": budget})
    # Brent's last point need not be its best one: keep the lowest risk seen.
    t_best = min(cache, key=cache.get)
    history = sorted((math.exp(t), v) for t, v in cache.items())
    return math.exp(t_best), len(cache), history


def _search_solver(make_term, plan64, backend, *, method, max_num_iter) -> Callable:
    """``solve_at(w, g, warm=None)``: the float64 solution for the data term
    ``make_term(g)`` at weight ``w`` and :data:`SEARCH_EPS` (from the iterates in
    ``warm``, a :class:`~tvnumba.solvers.WarmStart`, where the solver takes them)."""
    from dataclasses import replace

    from ..solvers import solve

    state = {"plan": plan64}

    def solve_at(w, g, warm=None):
        u, info = solve(make_term(g), w, backend=backend, plan=state["plan"], method=method,
                        eps=SEARCH_EPS, max_num_iter=max_num_iter, warm=warm)
        if state["plan"].smoothing == 0 and info.smoothing > 0:
            # β < 1: the internal smoothing depends on the data's range; freeze
            # the one of f so that f and f + δb see the same objective.
            state["plan"] = replace(state["plan"], smoothing=info.smoothing)
        return u

    return solve_at


def _checked_sigma(f5, plan, backend) -> float:
    sigma = _canonical_sigma(f5, plan, backend)
    # The wavelet filters leave rounding (~1e-17 of the values) on a clean image.
    if not sigma > 1e-10 * float(backend.xp.max(backend.xp.abs(f5))):
        raise ValueError(
            "weight='auto' estimated the noise level of image as sigma=0 (an image with no "
            "detectable noise: constant, or piecewise constant on a coarse grid); there is "
            "nothing to denoise, or pass a numeric weight, e.g. weight=0.1"
        )
    return sigma


def choose_weight(f5, plan, backend, *, method: str, max_num_iter: int | None,
                  seed: int = PROBE_SEED) -> tuple[float, float, int]:
    """``weight="auto"`` for :func:`~tvnumba.restoration.denoise_tv_beta`.

    ``f5`` is the image in ``plan``'s canonical layout on ``backend``.
    Returns ``(weight, sigma, number of solves)``.
    """
    from dataclasses import replace

    from ..solvers import Identity

    sigma = _checked_sigma(f5, plan, backend)
    # The search runs in float64: the divergence is a difference of two
    # solutions 0.01 σ apart, which float32 would resolve poorly.
    f64 = f5.astype(np.float64)
    solve_at = _search_solver(Identity, replace(plan, dtype=np.dtype(np.float64)), backend,
                              method=method, max_num_iter=max_num_iter)
    xp = backend.xp
    guess = initial_guess(sigma, plan.beta, float(xp.max(f64) - xp.min(f64)))
    weight, evals, _ = sure_search(solve_at, f64, sigma, guess, xp=backend.xp, seed=seed)
    return weight, sigma, 2 * evals


#: Deconvolution's starting weight relative to denoising's (:func:`initial_guess` at
#: the same σ and β), fitted to the best weights of natural images under Gaussian and
#: motion blur (≈ 0.001 for σ = 0.01 on [0, 1]); the downhill walk absorbs the spread.
DECONV_GUESS_SCALE = 0.2


def choose_inverse_weight(make_term, f5, plan, u_plan, backend, *, method: str,
                          max_num_iter: int | None, guess_scale: float = DECONV_GUESS_SCALE,
                          data_scale: float = 1.0, value_range: float | None = None,
                          gcv: bool = False,
                          seed: int = PROBE_SEED) -> tuple[float, float, int]:
    """``weight="auto"`` for an inverse problem ``f = A x + n``: predicted-risk SURE.

    Serves :func:`~tvnumba.restoration.deconvolve_tv_beta` (the defaults) and
    :func:`~tvnumba.restoration.reconstruct_tv_beta`.  ``make_term(g)`` builds
    the float64 data term of data ``g`` (``f5``'s canonical layout, ``plan``,
    from which σ is estimated); the unknown has ``u_plan``'s layout.  The
    search's ``predict`` is the term's operator.  ``data_scale`` is the factor
    ``s`` the term applies to its operator and data (``½‖s(Au − g)‖²``):
    SURE then runs on the data the term compares, ``s·f`` with noise ``s·σ``.
    The starting weight is ``guess_scale`` times :func:`initial_guess` at that
    noise level and ``value_range`` (``None``: the range of ``f5``).
    ``gcv``: minimise GCV rather than SURE (see :func:`sure_search`).
    Returns ``(weight, sigma of f5, number of solves)``.
    """
    from dataclasses import replace

    sigma = _checked_sigma(f5, plan, backend)
    f64 = f5.astype(np.float64)
    solve_at = _search_solver(make_term, replace(u_plan, dtype=np.dtype(np.float64)), backend,
                              method=method, max_num_iter=max_num_iter)
    forward = make_term(f64).bind(backend).forward
    xp = backend.xp
    if value_range is None:
        value_range = float(xp.max(f64) - xp.min(f64))
    f_search, sigma_search, solve_search = f64, sigma, solve_at
    if data_scale != 1.0:
        # make_term takes unscaled data and scales it; the search works on scaled data.
        f_search, sigma_search = f64 * data_scale, sigma * data_scale

        def solve_search(w, g):
            return solve_at(w, g / data_scale)
    guess = guess_scale * initial_guess(sigma_search, plan.beta, value_range)
    weight, evals, _ = sure_search(solve_search, f_search, sigma_search, guess, xp=xp,
                                   predict=forward, seed=seed, gcv=gcv)
    return weight, sigma, 2 * evals
