"""``denoise_tv_beta(weight="auto")`` against the oracle weight.

Cases: grayscale camera, astronaut, coins, moon, chelsea, coffee, retina (scikit-image's
bundled pictures, resized to 256²) plus Gaussian noise σ ∈ {0.05, 0.1, 0.2} (seed 0),
β = 1; then camera for β ∈ {0.5, 1.5, 2}.

Oracle: the best PSNR against the clean image over 12 log-spaced weights around the
auto weight's starting guess, refined by bounded Brent (in log w, 2 % tolerance)
between the best point's neighbours.  Every solve is at the default ``eps=1e-3``,
as the final solve of ``weight="auto"`` is.

Columns: σ̂ (estimate), weights (auto, oracle, ratio), PSNR (auto, oracle, difference),
and two zero-search alternatives measured for the choice of the rule: a constant
``w = 0.8 σ̂`` (β = 1 only) and the discrepancy principle ``‖u − f‖² = Nσ̂²``
(Morozov, τ = 1; geometric bisection).  Times (warm, one run): ``weight="auto"`` and
one solve at the oracle weight, and their ratio.

    NUMBA_NUM_THREADS=2 python benchmarks/bench_auto_weight.py
    NUMBA_NUM_THREADS=2 python benchmarks/bench_auto_weight.py --quick   # camera only
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from skimage import color, data, img_as_float
from skimage.transform import resize

from tvnumba.restoration import denoise_tv_beta
from tvnumba.restoration.auto_weight import estimate_noise_sigma, initial_guess

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import oracle_weight

NAMES = ["camera", "astronaut", "coins", "moon", "chelsea", "coffee", "retina"]
SIGMAS = [0.05, 0.1, 0.2]


def gray(name: str, n: int = 256) -> np.ndarray:
    im = img_as_float(getattr(data, name)())
    if im.ndim == 3:
        im = color.rgb2gray(im)
    return resize(im, (n, n), anti_aliasing=True)


def psnr(u, clean) -> float:
    return float(10 * np.log10(1.0 / np.mean((u - clean) ** 2)))


def oracle(f, clean, beta, guess):
    return oracle_weight(lambda w: psnr(denoise_tv_beta(f, w, beta), clean), guess, xatol=0.02)


def discrepancy(f, beta, sigma, tau=1.0):
    target = tau * f.size * sigma**2
    lo, hi = math.log(1e-4), math.log(1e2)
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        r = float(np.sum((denoise_tv_beta(f, math.exp(mid), beta) - f) ** 2))
        lo, hi = (mid, hi) if r < target else (lo, mid)
        if hi - lo < 0.01:
            break
    return math.exp(0.5 * (lo + hi))


def run(name, clean, sigma, beta, rows):
    f = clean + sigma * np.random.default_rng(0).standard_normal(clean.shape)
    t0 = time.perf_counter()
    u, info = denoise_tv_beta(f, "auto", beta, return_info=True)
    t_auto = time.perf_counter() - t0
    p_auto = psnr(u, clean)
    s_hat = estimate_noise_sigma(f)
    w_or, p_or = oracle(f, clean, beta, initial_guess(s_hat, beta, float(np.ptp(f))))
    t0 = time.perf_counter()
    denoise_tv_beta(f, w_or, beta)
    t_one = time.perf_counter() - t0
    p_const = psnr(denoise_tv_beta(f, 0.8 * s_hat, beta), clean) if beta == 1 else math.nan
    p_disc = psnr(denoise_tv_beta(f, discrepancy(f, beta, s_hat), beta), clean)
    row = (name, beta, sigma, info.sigma, info.weight, w_or, info.weight / w_or, p_auto, p_or,
           p_auto - p_or, p_const - p_or, p_disc - p_or, t_auto, t_one, t_auto / t_one)
    rows.append(row)
    print("| {} | {:g} | {:g} | {:.4f} | {:.4g} | {:.4g} | {:.2f} | {:.2f} | {:.2f} | {:+.2f} "
          "| {:+.2f} | {:+.2f} | {:.2f} | {:.3f} | {:.0f} |".format(*row), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="camera only")
    args = ap.parse_args()
    names = NAMES[:1] if args.quick else NAMES
    # Compile every solver first so that the times are warm.
    warm = gray("camera", 64)
    for beta in (0.5, 1.0, 1.5, 2.0):
        denoise_tv_beta(warm + 0.1 * np.random.default_rng(0).standard_normal(warm.shape),
                        "auto", beta)
    print("| image | β | σ | σ̂ | w auto | w oracle | ratio | PSNR auto | PSNR oracle | Δ auto "
          "| Δ 0.8σ̂ | Δ discr. τ=1 | t auto (s) | t one solve (s) | ×solve |")
    print("|" + "---|" * 15)
    rows = []
    for name in names:
        clean = gray(name)
        for sigma in SIGMAS:
            run(name, clean, sigma, 1.0, rows)
    beta1 = [r for r in rows if r[1] == 1.0]
    d = np.array([r[9] for r in beta1])
    print(f"\nβ = 1, {len(beta1)} cases: Δ auto mean {d.mean():+.3f} dB, worst {d.min():+.3f} dB; "
          f"Δ 0.8σ̂ mean {np.mean([r[10] for r in beta1]):+.3f}, worst "
          f"{np.min([r[10] for r in beta1]):+.3f}; Δ discrepancy mean "
          f"{np.mean([r[11] for r in beta1]):+.3f}, worst {np.min([r[11] for r in beta1]):+.3f}; "
          f"auto time median {np.median([r[14] for r in beta1]):.0f}× one solve\n")
    clean = gray("camera")
    for beta in (0.5, 1.5, 2.0):
        for sigma in SIGMAS:
            run("camera", clean, sigma, beta, rows)


if __name__ == "__main__":
    main()
