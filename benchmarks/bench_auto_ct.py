"""``reconstruct_tv_beta(weight="auto")`` against the oracle weight (sparse-angle CT).

Cases (the construction of benchmarks/bench_ct.py): shepp_logan_phantom resized to
--size² (default 128²), sinograms from tvnumba's projector at 30 and 60 angles in
[0°, 180°) plus Gaussian noise of standard deviation 1 % of the sinogram's maximum
(``np.random.default_rng(0)``).  β = 1, method "cp", default ``eps=1e-3``.

Oracle: the best PSNR (``data_range=1``, not clipped, as bench_ct.py) over 7
log-spaced weights a factor 4 either side of the auto weight, refined by bounded
Brent (in log w, 4 evaluations) between the best point's neighbours; every solve at
the default ``eps``, as the final solve of ``weight="auto"`` is.

Columns: σ̂ / σ (the sinogram's noise estimate against the true one), weights (auto,
oracle, ratio), PSNR (auto, oracle, difference), times (warm, one run): ``weight="auto"``,
one solve at the auto weight, ratio.

    NUMBA_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_auto_ct.py            # 128²
    NUMBA_NUM_THREADS=2 PYTHONPATH=. python benchmarks/bench_auto_ct.py --size 256
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np
from skimage.data import shepp_logan_phantom
from skimage.metrics import peak_signal_noise_ratio
from skimage.transform import resize

from tvnumba import reconstruct_tv_beta
from tvnumba.operators import radon

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_common import oracle_weight


def psnr(ref, u) -> float:
    return float(peak_signal_noise_ratio(ref, u, data_range=1.0))


def case(n: int, n_angles: int):
    """Phantom, angles, noisy sinogram and the noise σ, as benchmarks/bench_ct.py."""
    image = resize(shepp_logan_phantom(), (n, n))
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    clean = radon(image, theta)
    sigma = 0.01 * clean.max()
    sino = clean + sigma * np.random.default_rng(0).standard_normal(clean.shape)
    return image, theta, sino, sigma


def oracle(sino, theta, image, center, points=7, factor=4.0):
    return oracle_weight(lambda w: psnr(image, reconstruct_tv_beta(sino, theta, weight=w)),
                         center, factor=factor, points=points, maxiter=4)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, nargs="+", default=[128])
    ap.add_argument("--angles", type=int, nargs="+", default=[30, 60])
    args = ap.parse_args()
    print(f"NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS', 'default')}")
    # Warm-up compile of the kernels and the solver path.
    small = resize(shepp_logan_phantom(), (32, 32))
    th = np.linspace(0.0, 180.0, 8, endpoint=False)
    reconstruct_tv_beta(radon(small, th) + 0.01, th, weight="auto", max_num_iter=10)

    print("\n| size | angles | σ̂/σ | w auto | w oracle | ratio | PSNR auto | PSNR oracle "
          "| Δ (dB) | t auto (s) | t solve (s) | ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    deltas = []
    for n in args.size:
        for na in args.angles:
            image, theta, sino, sigma = case(n, na)
            t0 = time.perf_counter()
            u, info = reconstruct_tv_beta(sino, theta, weight="auto", return_info=True)
            t_auto = time.perf_counter() - t0
            t0 = time.perf_counter()
            reconstruct_tv_beta(sino, theta, weight=info.weight)
            t_one = time.perf_counter() - t0
            p_auto = psnr(image, u)
            w_or, p_or = oracle(sino, theta, image, info.weight)
            p_or = max(p_or, p_auto)
            deltas.append(p_auto - p_or)
            print(f"| {n}² | {na} | {info.sigma / sigma:.3f} | {info.weight:.4g} | {w_or:.4g} | "
                  f"{info.weight / w_or:.2f} | {p_auto:.2f} | {p_or:.2f} | {p_auto - p_or:+.2f} | "
                  f"{t_auto:.1f} | {t_one:.2f} | {t_auto / t_one:.0f}× |", flush=True)
    print(f"\nΔ mean {np.mean(deltas):+.2f} dB, worst {min(deltas):+.2f} dB")


if __name__ == "__main__":
    main()
