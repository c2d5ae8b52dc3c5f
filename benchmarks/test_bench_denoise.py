"""Denoising: ``tvnumba.denoise_tv_beta`` against scikit-image, SciPy and installed peers.

Data: ``skimage.data.camera()`` in [0, 1] (resized: small 256², full 512²; "large" small
512², full 2048²) plus Gaussian noise σ = 0.1 (seed 0), weight 0.1; a ``binary_blobs``
volume (small 48³, full 128³) plus noise σ = 0.3, weight 0.15.  Quality columns: ``PSNR``
against the clean image, ``objective`` = ½‖u − f‖² + weight · TV_β(u) (float64, every
method's answer scored the same way) and ``excess`` = (objective − F_ref) / F_ref with
F_ref tvnumba's objective at eps = 1e-6 (a certified duality gap ≤ 1e-6 for β = 1, so
excesses below ~1e-6 are not resolved), ``iterations``, tvnumba's stopping quantity ``gap``.

Groups:

* β = 1 at each library's defaults: tvnumba (eps = 1e-3, a certified gap) against
  ``skimage.restoration.denoise_tv_chambolle`` (baseline) and ``denoise_tv_bregman``
  (weight 1 / (2·0.1), its scale; isotropic);
* β = 1 at equal objective: scikit-image's Chambolle run for the fewest iterations whose
  objective is at most tvnumba's default one (found before timing; ``eps=0``), and
  pyproximal's ``TV`` proximal operator (FGP, ``rtol=0``) likewise, when installed;
* β ≠ 1 (no scikit-image solver): ``scipy.optimize.minimize(method="L-BFGS-B")`` on the same
  objective (same smoothing, tvnumba's fused value and gradient), timed until its objective
  first comes within 1e-6 (relative) of tvnumba's (a callback sees every iterate), stopped
  after a limit (small 10 s, full 60 s: then the time is a lower bound);
* ``weight="auto"`` (noise σ by wavelet MAD, weight by Monte-Carlo SURE) against one solve
  at the oracle weight (the best PSNR, found before timing) and scikit-image's own
  automatic choice, ``calibrate_denoiser`` (J-invariant loss over 12 weights) around
  ``denoise_tv_chambolle``; ``ΔPSNR`` = PSNR − the oracle's.
"""

from __future__ import annotations

import hashlib
import math
import time

import numpy as np
import pytest
from benchlib import blobs, camera, measure, noisy, objective, pick, psnr, record
from skimage.restoration import denoise_tv_bregman, denoise_tv_chambolle

import tvnumba

pytestmark = pytest.mark.denoise

_CACHE: dict = {}


def case(name: str, dtype=np.float64):
    """(label, clean, noisy, weight) of a β = 1 case, made once."""
    key = (name, np.dtype(dtype).name)
    if key not in _CACHE:
        if name == "blobs":
            n = pick(48, 128)
            clean, f = blobs(n, 0.3)
            label, w = f"blobs {n}³", 0.15
        else:
            n = pick(256, 512) if name == "camera" else pick(512, 2048)
            clean = camera(n)
            f = noisy(clean, 0.1)
            label, w = f"camera {n}²", 0.1
        _CACHE[key] = (label, clean, f.astype(dtype), w)
    return _CACHE[key]


def reference(f, weight, beta=1.0):
    """tvnumba's objective at eps=1e-6 (F_ref), made once per input."""
    key = ("ref", hashlib.sha1(np.ascontiguousarray(f).view(np.uint8)).hexdigest(), weight,
           beta)
    if key not in _CACHE:
        _, info = tvnumba.denoise_tv_beta(f, weight, beta, eps=1e-6, return_info=True)
        _CACHE[key] = info.objective
    return _CACHE[key]


def quality(clean, f, u, weight, beta=1.0, smoothing=0.0):
    F = objective(u, np.asarray(f, np.float64), weight, beta, smoothing=smoothing)
    F_ref = reference(f, weight, beta)
    return dict(PSNR=psnr(clean, u), objective=F, excess=(F - F_ref) / F_ref)


# --------------------------------------------------------------------------- β = 1
DEFAULT_CASES = [("camera", "float32"), ("camera", "float64"), ("large", "float64"),
                 ("blobs", "float64")]


@pytest.mark.parametrize("method", ["tvnumba", "chambolle", "bregman"])
@pytest.mark.parametrize("name,dtype", DEFAULT_CASES, ids=lambda v: v)
def test_beta1_defaults(benchmark, name, dtype, method):
    label, clean, f, w = case(name, dtype)
    sigma = 0.3 if name == "blobs" else 0.1
    benchmark.group = f"denoise β=1 at the defaults: {label} σ={sigma} {dtype}"
    if method == "tvnumba":
        u, info = measure(benchmark, lambda: tvnumba.denoise_tv_beta(f, w, return_info=True))
        record(benchmark, "tvnumba (eps=1e-3)", **quality(clean, f, u, w),
               iterations=info.iterations, gap=info.gap)
    elif method == "chambolle":
        u = measure(benchmark, lambda: denoise_tv_chambolle(f, weight=w))
        record(benchmark, "skimage denoise_tv_chambolle", role="baseline",
               **quality(clean, f, u, w))
    else:
        u = measure(benchmark, lambda: denoise_tv_bregman(f, weight=1.0 / (2 * w)))
        record(benchmark, "skimage denoise_tv_bregman", role="other", **quality(clean, f, u, w))


def fewest_iterations(objective_at, target: float, n_max: int) -> int:
    """The fewest iterations ``n`` with ``objective_at(n) <= target`` (doubling, then
    bisection; assumes the objective decreases with ``n``); ``n_max`` if none."""
    lo, hi = 0, 8
    while objective_at(hi) > target:
        lo, hi = hi, 2 * hi
        if hi >= n_max:
            return n_max
    while hi - lo > max(1, lo // 50):  # 2 %
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if objective_at(mid) > target else (lo, mid)
    return hi


@pytest.mark.parametrize("method", ["tvnumba", "chambolle",
                                    pytest.param("pyproximal", marks=pytest.mark.peer)])
def test_beta1_equal_objective(benchmark, method):
    label, clean, f, w = case("camera")
    benchmark.group = f"denoise β=1 to tvnumba's objective at eps=1e-3: {label} σ=0.1 float64"
    _, info = tvnumba.denoise_tv_beta(f, w, return_info=True)
    target = info.objective
    if method == "tvnumba":
        u, info = measure(benchmark, lambda: tvnumba.denoise_tv_beta(f, w, return_info=True))
        record(benchmark, "tvnumba (eps=1e-3)", **quality(clean, f, u, w),
               iterations=info.iterations, gap=info.gap)
    elif method == "chambolle":
        def run(n):
            return denoise_tv_chambolle(f, weight=w, eps=0.0, max_num_iter=n)

        n = fewest_iterations(lambda n: objective(run(n), f, w), target, 20000)
        u = measure(benchmark, lambda: run(n))
        record(benchmark, "skimage denoise_tv_chambolle (eps=0)", role="baseline",
               **quality(clean, f, u, w), iterations=n)
    else:
        pyproximal = pytest.importorskip("pyproximal")

        def run(n):
            return pyproximal.TV(dims=f.shape, sigma=w, niter=n, rtol=0.0).prox(
                f.ravel(), 1.0).reshape(f.shape)

        n = fewest_iterations(lambda n: objective(run(n), f, w), target, 5000)
        u = measure(benchmark, lambda: run(n))
        record(benchmark, f"pyproximal TV prox (FGP) {pyproximal.__version__}", role="other",
               **quality(clean, f, u, w), iterations=n)


# --------------------------------------------------------------------------- β ≠ 1
BETA_WEIGHTS = {0.5: 0.04, 0.8: 0.07, 1.5: 0.25, 2.0: 0.5}


def scipy_to_target(f, w, beta, smoothing, target, limit):
    """L-BFGS-B on the same objective until it is <= target or ``limit`` seconds
    passed: returns (u, iterations, reached)."""
    from scipy.optimize import minimize

    shape = f.shape

    def fun(x):
        u = x.reshape(shape)
        v, g = tvnumba.tv_value_and_grad(u, beta, smoothing=smoothing)
        r = u - f
        return 0.5 * float(np.vdot(r, r)) + w * v, (r + w * g).ravel()

    state = {"n": 0, "x": f.ravel(), "reached": False}
    t0 = time.perf_counter()

    def callback(intermediate_result):
        state["n"] += 1
        state["x"] = intermediate_result.x
        if intermediate_result.fun <= target:
            state["reached"] = True
            raise StopIteration
        if time.perf_counter() - t0 > limit:
            raise StopIteration

    minimize(fun, f.ravel(), jac=True, method="L-BFGS-B", callback=callback,
             options=dict(maxiter=10**6, maxfun=10**6, ftol=0, gtol=0))
    return state["x"].reshape(shape), state["n"], state["reached"]


@pytest.mark.parametrize("method", ["tvnumba", "scipy"])
@pytest.mark.parametrize("beta", list(BETA_WEIGHTS), ids=lambda b: f"beta{b:g}")
def test_beta_not_1(benchmark, beta, method):
    n = pick(128, 512)
    clean = camera(n)
    f = noisy(clean, 0.1)
    w = BETA_WEIGHTS[beta]
    benchmark.group = f"denoise β={beta:g} weight {w:g}: camera {n}² σ=0.1 float64"
    _, info = tvnumba.denoise_tv_beta(f, w, beta, return_info=True)
    s = info.smoothing
    if method == "tvnumba":
        u, info = measure(benchmark,
                          lambda: tvnumba.denoise_tv_beta(f, w, beta, return_info=True))
        record(benchmark, "tvnumba (eps=1e-3)", **quality(clean, f, u, w, beta, s),
               method=info.method, iterations=info.iterations, gap=info.gap)
    else:
        limit = pick(10.0, 60.0)
        target = info.objective * (1 + 1e-6)
        small = f[:32, :32]
        u, it, reached = measure(
            benchmark, lambda: scipy_to_target(f, w, beta, s, target, limit),
            warm=lambda: scipy_to_target(small, w, beta, s, 0.0, 0.05), rounds=1)
        record(benchmark, "SciPy L-BFGS-B to the same objective", role="baseline",
               **quality(clean, f, u, w, beta, s), method="L-BFGS-B", iterations=it,
               reached=reached, lower_bound=not reached)


# --------------------------------------------------------------------------- auto
def oracle_weight(psnr_at, center: float) -> tuple[float, float]:
    """The weight of best PSNR: 12 log-spaced weights from center/8 to 8·center, then
    bounded Brent in log w (2 % tolerance) between the best one's neighbours."""
    from scipy.optimize import minimize_scalar

    score: dict = {}

    def neg(t):
        if t not in score:
            score[t] = psnr_at(math.exp(t))
        return -score[t]

    ts = list(np.log(center * np.geomspace(1 / 8, 8, 12)))
    i = int(np.argmin([neg(t) for t in ts]))
    minimize_scalar(neg, bounds=(ts[max(i - 1, 0)], ts[min(i + 1, len(ts) - 1)]),
                    method="bounded", options={"xatol": 0.02})
    t = max(score, key=score.get)
    return math.exp(t), score[t]


AUTO_CASES = [(1.0, "auto"), (1.0, "oracle"), (1.0, "calibrate"), (1.5, "auto"),
              (1.5, "oracle")]  # scikit-image has no β ≠ 1 denoiser to calibrate


@pytest.mark.parametrize("beta,method", AUTO_CASES,
                         ids=[f"beta{b:g}-{m}" for b, m in AUTO_CASES])
def test_auto_weight(benchmark, beta, method):
    n = pick(256, 512)
    clean = camera(n)
    f = noisy(clean, 0.1)
    benchmark.group = f"denoise weight=\"auto\" β={beta:g}: camera {n}² σ=0.1 float64"
    key = ("oracle", n, beta)
    if key not in _CACHE:
        _, info = tvnumba.denoise_tv_beta(f, "auto", beta, return_info=True)
        _CACHE[key] = oracle_weight(
            lambda w: psnr(clean, tvnumba.denoise_tv_beta(f, w, beta)), info.weight)
    w_or, p_or = _CACHE[key]
    if method == "auto":
        u, info = measure(benchmark,
                          lambda: tvnumba.denoise_tv_beta(f, "auto", beta, return_info=True))
        p = psnr(clean, u)
        record(benchmark, "tvnumba weight=\"auto\"", weight=info.weight, PSNR=p,
               ΔPSNR=p - p_or, sigma_hat=info.sigma)
    elif method == "oracle":
        u = measure(benchmark, lambda: tvnumba.denoise_tv_beta(f, w_or, beta))
        record(benchmark, "tvnumba, one solve at the oracle weight", role="baseline",
               weight=w_or, PSNR=psnr(clean, u), ΔPSNR=0.0)
    else:
        from skimage.restoration import calibrate_denoiser

        grid = {"weight": list(np.geomspace(0.02, 0.5, 12))}

        def run():
            denoiser, (params, losses) = calibrate_denoiser(
                f, denoise_tv_chambolle, denoise_parameters=grid, extra_output=True)
            return denoiser(f), params[int(np.argmin(losses))]["weight"]

        u, chosen = measure(benchmark, run, rounds=pick(None, 1))
        p = psnr(clean, u)
        record(benchmark, "skimage calibrate_denoiser + denoise_tv_chambolle", role="other",
               weight=chosen, PSNR=p, ΔPSNR=p - p_or)
