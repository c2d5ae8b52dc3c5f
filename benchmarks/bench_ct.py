"""Sparse-angle CT: tvnumba.reconstruct_tv_beta (β = 1) against scikit-image's
filtered back projection and SART, and the Radon projector against
skimage.transform.radon.

Case: shepp_logan_phantom resized to --size² (default 256²), parallel-beam
sinograms from tvnumba's projector (bit-identical to skimage.transform.radon) at
30 and 60 angles in [0°, 180°), plus Gaussian noise of standard deviation 1 % of
the sinogram's maximum (np.random.default_rng(0), one draw per angle set).

Compared, PSNR against the phantom (data_range=1, images not clipped):

* FBP: ``iradon`` with each filter ("ramp", "shepp-logan", "cosine", "hamming",
  "hann"), the best reported;
* SART: ``iradon_sart`` run 1-10 iterations (each from the previous one), the
  best iteration count reported, with the cumulative time to it;
* TV: ``reconstruct_tv_beta`` (β = 1, default method "cp", eps=1e-3) for each
  weight of --weights, the best reported (all printed).

Times are warm (Numba compiled beforehand), one run each; the projector times are
the best of 5.  ``--png PATH`` writes phantom | FBP | SART | TV at 60 angles as
a uint8 PNG panel.

    NUMBA_NUM_THREADS=2 python benchmarks/bench_ct.py --png docs/_static/ct.png
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import iradon, iradon_sart, resize
from skimage.transform import radon as sk_radon

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from tvnumba import reconstruct_tv_beta  # noqa: E402  (this checkout's tvnumba)
from tvnumba.operators import radon, radon_adjoint  # noqa: E402

from bench_common import best_of  # noqa: E402  (benchmarks/ is the script's folder)

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def psnr(ref, u):
    return peak_signal_noise_ratio(ref, u, data_range=1.0)


def fbp(sino, theta, image):
    best = None
    for name in FILTERS:
        t0 = time.perf_counter()
        u = iradon(sino, theta, filter_name=name)
        dt = time.perf_counter() - t0
        cand = (psnr(image, u), dt, name, u)
        best = cand if best is None or cand[0] > best[0] else best
    return best


def sart(sino, theta, image, max_iter=10):
    best = None
    u = None
    total = 0.0
    for it in range(1, max_iter + 1):
        t0 = time.perf_counter()
        u = iradon_sart(sino, theta, image=u)
        total += time.perf_counter() - t0
        cand = (psnr(image, u), total, it, u)
        best = cand if best is None or cand[0] > best[0] else best
    return best


def tv(sino, theta, image, weights):
    best = None
    rows = []
    for w in weights:
        t0 = time.perf_counter()
        u, info = reconstruct_tv_beta(sino, theta, weight=w, return_info=True)
        dt = time.perf_counter() - t0
        p = psnr(image, u)
        rows.append((w, p, dt, info.iterations, info.converged))
        cand = (p, dt, w, u)
        best = cand if best is None or cand[0] > best[0] else best
    return best, rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--angles", type=int, nargs="+", default=[30, 60])
    ap.add_argument("--weights", type=float, nargs="+", default=[0.03, 0.06, 0.12])
    ap.add_argument("--png", default=None)
    args = ap.parse_args()

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    n = args.size
    image = resize(shepp_logan_phantom(), (n, n))

    # Warm-up compile of every kernel and solver path on a small problem.
    small = resize(shepp_logan_phantom(), (32, 32))
    th = np.linspace(0.0, 180.0, 8, endpoint=False)
    reconstruct_tv_beta(radon(small, th), th, max_num_iter=10)

    print(f"\n### Projector, {n}² (circle=True), seconds (best of 5)\n")
    print("| angles | skimage radon | tvnumba radon | tvnumba radon_adjoint | speed-up (forward) |")
    print("|---|---|---|---|---|")
    for na in (30, 60, 180):
        theta = np.linspace(0.0, 180.0, na, endpoint=False)
        s = radon(image, theta)
        t_sk = best_of(lambda: sk_radon(image, theta))
        t_f = best_of(lambda: radon(image, theta))
        t_a = best_of(lambda: radon_adjoint(s, theta))
        print(f"| {na} | {t_sk:.4f} | {t_f:.4f} | {t_a:.4f} | {t_sk / t_f:.1f}× |")

    panel = None
    summary = []
    for na in args.angles:
        theta = np.linspace(0.0, 180.0, na, endpoint=False)
        clean = radon(image, theta)
        rng = np.random.default_rng(0)
        sino = clean + 0.01 * clean.max() * rng.standard_normal(clean.shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fb = fbp(sino, theta, image)
            sa = sart(sino, theta, image)
        (tvb, rows) = tv(sino, theta, image, args.weights)
        print(f"\n#### {na} angles: TV weight sweep (β = 1)\n")
        print("| weight | PSNR (dB) | time (s) | iterations | converged |")
        print("|---|---|---|---|---|")
        for w, p, dt, it, conv in rows:
            print(f"| {w:g} | {p:.2f} | {dt:.2f} | {it} | {conv} |")
        summary.append((na, fb, sa, tvb))
        if na == 60:
            panel = [image, fb[3], sa[3], tvb[3]]

    print(f"\n### Shepp-Logan {n}², 1 % noise: best of each method\n")
    print("| angles | FBP best (filter) | FBP time (s) | SART best (iters) | SART time (s) "
          "| TV β=1 best (weight) | TV time (s) | TV − best other (dB) |")
    print("|---|---|---|---|---|---|---|---|")
    for na, fb, sa, tvb in summary:
        other = max(fb[0], sa[0])
        print(f"| {na} | {fb[0]:.2f} ({fb[2]}) | {fb[1]:.2f} | {sa[0]:.2f} ({sa[2]}) | "
              f"{sa[1]:.2f} | {tvb[0]:.2f} ({tvb[2]:g}) | {tvb[1]:.2f} | {tvb[0] - other:+.2f} |")

    if args.png and panel is not None:
        import imageio.v3 as iio

        tiles = [np.clip(a, 0.0, 1.0) for a in panel]
        sep = np.ones((n, 4))
        row = np.concatenate([x for t in tiles for x in (t, sep)][:-1], axis=1)
        iio.imwrite(args.png, np.round(255 * row).astype(np.uint8))
        print(f"\nwrote {args.png} (phantom | FBP | SART | TV, 60 angles)")


if __name__ == "__main__":
    main()
