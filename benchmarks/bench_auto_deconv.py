"""``deconvolve_tv_beta(weight="auto")`` against the oracle weight.

Cases (the construction of benchmarks/bench_inverse.py): camera and astronaut (grey, [0, 1])
blurred by a Gaussian PSF (σ = 2, 15×15) or a horizontal motion PSF (length 9) as a camera
does (reflect-padded scene, "valid" convolution), plus Gaussian noise σ = 0.01 (seed 0);
then camera/Gaussian with σ ∈ {0.005, 0.02}.  β = 1, boundary="extend".

Oracle: the best PSNR (clipped result against the clean image, full frame) over 12
log-spaced weights, a factor 8 either side of the auto weight's starting guess, refined
by bounded Brent (in log w, 2 % tolerance) between the best point's neighbours.  Every
solve is at the default ``eps=1e-3``, as the final solve of ``weight="auto"`` is.

Columns: σ̂ (estimate), weights (auto, oracle, ratio), PSNR (auto, oracle, difference),
the discrepancy principle ``‖A u − f‖² = N σ̂²`` (τ = 1, geometric bisection) for
comparison, the ratio ``‖A u − f‖² / N σ̂²`` at the oracle weight (what τ would have to
be), times (warm, one run): ``weight="auto"``, one solve at the oracle weight, ratio.

    NUMBA_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_auto_deconv.py           # 512²
    NUMBA_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_auto_deconv.py --size 256
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
from scipy.signal import fftconvolve
from skimage import color, data, img_as_float
from skimage.transform import resize

from tvnumba.restoration import deconvolve_tv_beta
from tvnumba.restoration.auto_weight import (
    DECONV_GUESS_SCALE,
    estimate_noise_sigma,
    initial_guess,
)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import oracle_weight
from bench_inverse import blur, gaussian_psf, motion_psf

CASES = [("camera", "Gaussian", 0.01), ("camera", "motion", 0.01),
         ("astronaut", "Gaussian", 0.01), ("astronaut", "motion", 0.01),
         ("camera", "Gaussian", 0.005), ("camera", "Gaussian", 0.02)]
PSFS = {"Gaussian": gaussian_psf, "motion": motion_psf}


def gray(name: str, n: int) -> np.ndarray:
    im = img_as_float(getattr(data, name)())
    if im.ndim == 3:
        im = color.rgb2gray(im)
    return im if im.shape == (n, n) else resize(im, (n, n), anti_aliasing=True)


def psnr(u, clean) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.clip(u, 0, 1) - clean) ** 2)))


def oracle(f, psf, clean, guess):
    return oracle_weight(lambda w: psnr(deconvolve_tv_beta(f, psf, w), clean), guess,
                         xatol=0.02)


def residual_ratio(f, psf, w, sigma):
    """``‖A u − f‖² / N σ²`` at weight ``w``: A u is the "valid" blur of the extended
    solution, which deconvolve_tv_beta crops, so the callback keeps its last iterate."""
    last = {}
    deconvolve_tv_beta(f, psf, w, callback=lambda it, u, obj: last.__setitem__("u", np.array(u)))
    r = fftconvolve(last["u"], psf / psf.sum(), mode="valid") - f
    return float(np.sum(r * r)) / (f.size * sigma**2)


def discrepancy(f, psf, sigma, guess, tau=1.0):
    lo, hi = math.log(guess / 32), math.log(guess * 32)
    while hi - lo > 0.05:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if residual_ratio(f, psf, math.exp(mid), sigma) < tau else (lo, mid)
    return math.exp(0.5 * (lo + hi))


def run(n, name, psf_name, sigma, rows, with_discrepancy):
    clean = gray(name, n)
    psf = PSFS[psf_name]()
    f = blur(clean, psf) + sigma * np.random.default_rng(0).standard_normal(clean.shape)
    t0 = time.perf_counter()
    u, info = deconvolve_tv_beta(f, psf, "auto", return_info=True)
    t_auto = time.perf_counter() - t0
    p_auto = psnr(u, clean)
    s_hat = estimate_noise_sigma(f)
    guess = DECONV_GUESS_SCALE * initial_guess(s_hat, 1.0, float(np.ptp(f)))
    w_or, p_or = oracle(f, psf, clean, guess)
    t0 = time.perf_counter()
    deconvolve_tv_beta(f, psf, w_or)
    t_one = time.perf_counter() - t0
    ratio_or = residual_ratio(f, psf, w_or, s_hat)
    d_disc = math.nan
    if with_discrepancy:
        d_disc = psnr(deconvolve_tv_beta(f, psf, discrepancy(f, psf, s_hat, guess)), clean) - p_or
    row = (name, psf_name, sigma, info.sigma, info.weight, w_or, info.weight / w_or, p_auto,
           p_or, p_auto - p_or, d_disc, ratio_or, t_auto, t_one, t_auto / t_one)
    rows.append(row)
    print("| {} | {} | {:g} | {:.4f} | {:.3g} | {:.3g} | {:.2f} | {:.2f} | {:.2f} | {:+.2f} "
          "| {:+.2f} | {:.2f} | {:.2f} | {:.2f} | {:.0f} |".format(*row), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=512, help="image side (default 512)")
    ap.add_argument("--no-discrepancy", action="store_true",
                    help="skip the discrepancy-principle column (about 10 solves a case)")
    args = ap.parse_args()
    # Compile first so that the times are warm.
    warm = gray("camera", 64)
    deconvolve_tv_beta(warm + 0.01 * np.random.default_rng(0).standard_normal(warm.shape),
                       gaussian_psf(), "auto")
    print(f"\n{args.size}², β = 1, eps = 1e-3\n")
    print("| image | PSF | σ | σ̂ | w auto | w oracle | ratio | PSNR auto | PSNR oracle "
          "| Δ auto | Δ discr. τ=1 | ‖Au−f‖²/Nσ̂² at oracle | t auto (s) | t one solve (s) "
          "| ×solve |")
    print("|" + "---|" * 15)
    rows = []
    for name, psf_name, sigma in CASES:
        run(args.size, name, psf_name, sigma, rows, not args.no_discrepancy)
    d = np.array([r[9] for r in rows])
    dd = np.array([r[10] for r in rows])
    print(f"\n{len(rows)} cases: Δ auto mean {d.mean():+.3f} dB, worst {d.min():+.3f} dB; "
          f"Δ discrepancy τ=1 mean {np.mean(dd):+.3f}, worst {np.min(dd):+.3f}; "
          f"auto time median {np.median([r[14] for r in rows]):.0f}× one solve")


if __name__ == "__main__":
    main()
