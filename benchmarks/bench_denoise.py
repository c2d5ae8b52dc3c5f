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
    python benchmarks/bench_denoise.py --betas    # β ≠ 1 (L-BFGS, MM, DCT) against SciPy

``--betas``: camera 512² and 2048² (σ = 0.1) for β ∈ {0.5, 0.8, 1.5, 2} with the demo's
weights.  There is no scikit-image solver for β ≠ 1; the baseline is what a SciPy user
would write: ``scipy.optimize.minimize(method="L-BFGS-B", jac=True)`` on the same
objective with tvnumba's fused value-and-gradient, timed until it first comes within
1e-6 (relative) of the objective tvnumba returned (its callback sees every iterate).  Reported: method,
iterations, stopping quantity, objective, relative distance to the same solver run to
eps=1e-7 (for β < 1 a local minimum: path dependent), PSNR, SSIM, times and ratio.
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


BETA_WEIGHTS = {0.5: 0.04, 0.8: 0.07, 1.5: 0.25, 2.0: 0.5}


def scipy_time_to(noisy, w, beta, smoothing, target, max_iter=20000, limit=300.0):
    """Seconds until SciPy's L-BFGS-B first reaches objective <= target; -limit if it
    has not after ``limit`` seconds, inf if it stops without reaching it."""
    from scipy.optimize import minimize

    shape = noisy.shape
    f = noisy.astype(np.float64)

    def fun(x):
        u = x.reshape(shape)
        v, g = tvnumba.tv_value_and_grad(u, beta, smoothing=smoothing)
        r = u - f
        return 0.5 * float(np.vdot(r, r)) + w * v, (r + w * g).ravel()

    hit = []
    t0 = time.perf_counter()

    def cb(intermediate_result):
        elapsed = time.perf_counter() - t0
        if intermediate_result.fun <= target or elapsed > limit:
            hit.append(elapsed if intermediate_result.fun <= target else -limit)
            raise StopIteration

    minimize(fun, f.ravel(), jac=True, method="L-BFGS-B", callback=cb,
             options=dict(maxiter=max_iter, maxfun=2 * max_iter, ftol=0, gtol=0))
    return hit[0] if hit else np.inf


def main_betas(args):
    rng = np.random.default_rng(0)
    cam = img_as_float(data.camera())
    sets = [("camera 512²", cam)]
    if not args.quick:
        sets.append(("camera 2048²", resize(cam, (2048, 2048), order=1)))
    for name, clean in sets:
        noisy = clean + 0.1 * rng.standard_normal(clean.shape)
        if args.float32:
            noisy = noisy.astype(np.float32)
        print(f"## {name}, σ = 0.1, {noisy.dtype}\n")
        print("| β | weight | method | iterations | gap | objective | rel. to eps=1e-7 run "
              "| PSNR | SSIM | tvnumba s | SciPy L-BFGS-B s | SciPy / tvnumba |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for beta, w in BETA_WEIGHTS.items():
            denoise_tv_beta(noisy[:16, :16], w, beta)  # compile
            t, (u, info) = timed(lambda: denoise_tv_beta(noisy, w, beta, return_info=True),
                                 1 if noisy.size > 1_000_000 else args.repeat)
            s = info.smoothing
            u_t, info_t = denoise_tv_beta(noisy, w, beta, eps=1e-7, max_num_iter=20000,
                                          return_info=True)
            rel = (info.objective - info_t.objective) / info_t.objective
            t_sp = scipy_time_to(noisy, w, beta, s, info.objective * (1 + 1e-6))
            psnr = peak_signal_noise_ratio(clean, np.asarray(u, float), data_range=1.0)
            ssim = structural_similarity(clean, np.asarray(u, float), data_range=1.0)
            sp = f"> {-t_sp:.0f} | > {-t_sp / t:.0f}×" if t_sp < 0 else \
                f"{t_sp:.3f} | {t_sp / t:.1f}×"
            print(f"| {beta:g} | {w:g} | {info.method} | {info.iterations} | {info.gap:.1e} "
                  f"| {info.objective:.6g} | {rel:.1e} | {psnr:.2f} | {ssim:.4f} | {t:.3f} "
                  f"| {sp} |", flush=True)
        print()
    return 0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--betas", action="store_true", help="β ≠ 1 solvers against SciPy")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--float32", action="store_true", help="run every method on float32")
    args = p.parse_args(argv)
    import numba

    print(f"# bench_denoise: {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, numba threads {numba.get_num_threads()}, "
          f"{'float32' if args.float32 else 'float64'}\n")
    if args.betas:
        return main_betas(args)
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
