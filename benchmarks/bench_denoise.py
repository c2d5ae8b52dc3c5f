"""β = 1 TV denoising: tvnumba.denoise_tv_beta against scikit-image.

Cases: camera 512² (σ = 0.1, weight 0.1), astronaut RGB (channel_axis=-1), a 2048²
upsampled camera, a 128³ binary_blobs volume + noise.  Compared: scikit-image's
denoise_tv_chambolle at its defaults and run to convergence (eps=1e-8), its
denoise_tv_bregman (weight = 1 / (2·weight), its scale), and tvnumba at its default
(eps=1e-3, a certified ≤ 0.1 % objective gap).  The reference optimum F* is tvnumba
run to eps=1e-7 (the duality gap bounds F(u) − F* from above).

Reported per method: objective ½‖u − f‖² + weight·TV₁(u) (coupled-channel TV for RGB;
scikit-image treats channels independently, so its numbers there are for a slightly
different problem), relative gap to F*, PSNR, SSIM against the clean image, time
(warm: Numba compiled beforehand; best of --repeat), and the time ratio to tvnumba.

    python benchmarks/bench_denoise.py            # all cases (~ minutes on 2 cores)
    python benchmarks/bench_denoise.py --quick    # camera and astronaut only, no
                                                  # converged scikit-image run on big cases
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from skimage.restoration import denoise_tv_bregman, denoise_tv_chambolle
from skimage.transform import resize

import tvnumba
from tvnumba.restoration import denoise_tv_beta


def cases(quick):
    rng = np.random.default_rng(0)
    cam = img_as_float(data.camera())
    yield "camera 512²", cam, cam + 0.1 * rng.standard_normal(cam.shape), 0.1, None
    ast = img_as_float(data.astronaut())
    yield ("astronaut 512²×3", ast, ast + 0.1 * rng.standard_normal(ast.shape), 0.1, -1)
    if quick:
        return
    big = resize(cam, (2048, 2048), order=1)
    yield "camera 2048²", big, big + 0.1 * rng.standard_normal(big.shape), 0.1, None
    vol = data.binary_blobs(length=128, n_dim=3, rng=1).astype(float)
    yield "blobs 128³", vol, vol + 0.3 * rng.standard_normal(vol.shape), 0.15, None


def objective(u, f, w, channel_axis):
    r = u - f
    return 0.5 * float(np.vdot(r, r)) + w * tvnumba.tv(u, channel_axis=channel_axis)


def timed(fn, repeat):
    best, out = np.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--float32", action="store_true", help="run every method on float32")
    args = p.parse_args(argv)
    import numba

    print(f"# bench_denoise: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}, "
          f"{'float32' if args.float32 else 'float64'}\n")
    for name, clean, noisy, w, cax in cases(args.quick):
        if args.float32:
            noisy = noisy.astype(np.float32)
        big = noisy.size > 1_000_000
        rep = 1 if big else args.repeat
        denoise_tv_beta(noisy[(slice(0, 16),) * noisy.ndim], w, channel_axis=cax)  # compile
        t_star, (u_star, info_star) = timed(
            lambda: denoise_tv_beta(noisy, w, eps=1e-7, max_num_iter=100000, channel_axis=cax,
                                    return_info=True), 1)
        F_star = objective(u_star, noisy, w, cax)
        rows = []
        runs = [
            ("tvnumba (eps=1e-3)", lambda: denoise_tv_beta(noisy, w, channel_axis=cax), rep),
            ("tvnumba (eps=1e-5)", lambda: denoise_tv_beta(noisy, w, eps=1e-5,
                                                           channel_axis=cax), rep),
            ("skimage chambolle default", lambda: denoise_tv_chambolle(
                noisy, weight=w, channel_axis=cax), rep),
            ("skimage bregman default", lambda: denoise_tv_bregman(
                noisy, weight=1.0 / (2 * w), channel_axis=cax), rep),
        ]
        if not (args.quick and big):
            runs.append(("skimage chambolle eps=1e-8", lambda: denoise_tv_chambolle(
                noisy, weight=w, eps=1e-8, max_num_iter=20000, channel_axis=cax), 1))
        for label, fn, r in runs:
            t, u = timed(fn, r)
            F = objective(u, noisy, w, cax)
            kw = dict(channel_axis=cax) if cax is not None else {}
            rows.append((label, F, (F - F_star) / F_star,
                         peak_signal_noise_ratio(clean, np.asarray(u, float), data_range=1.0),
                         structural_similarity(clean, np.asarray(u, float), data_range=1.0,
                                               **kw), t))
        t_ref = rows[0][5]
        print(f"## {name}, weight {w}  (F* = {F_star:.6g}: tvnumba eps=1e-7, "
              f"{info_star.iterations} iterations, {t_star:.2f} s)\n")
        print("| method | objective | rel. gap to F* | PSNR | SSIM | time s | time / tvnumba |")
        print("|---|---|---|---|---|---|---|")
        for label, F, gap, psnr, ssim, t in rows:
            print(f"| {label} | {F:.6g} | {gap:.2e} | {psnr:.2f} | {ssim:.4f} | {t:.3f} | "
                  f"{t / t_ref:.2f} |")
        print(flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
