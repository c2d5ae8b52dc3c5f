"""pytest-benchmark: ``denoise_tv_beta`` on camera 512² (σ = 0.1, seed 0, float64).

One group: tvnumba at its default ``eps=1e-3`` for β = 0.5, 1, 1.5, 2 (weights 0.04,
0.1, 0.25, 0.5, as ``bench_denoise.py --betas``) and the baseline
``skimage.restoration.denoise_tv_chambolle(weight=0.1)`` (β = 1, its defaults).

``extra_info``: PSNR against the clean image, the solver's method and iterations, the
certificate ``info.gap`` and the objective ``½‖u − f‖² + weight · TV_β(u)``
(``info.objective``; for scikit-image computed the same way with ``tvnumba.tv``).
"""

from __future__ import annotations

import numpy as np
import pytest
from bench_common import DENOISE_BETA_WEIGHTS, record
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import denoise_tv_chambolle

import tvnumba

GROUP = "denoise camera 512² σ=0.1 float64"


@pytest.fixture(scope="module")
def camera():
    clean = img_as_float(data.camera())
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    return clean, noisy


def psnr(clean, u):
    return round(float(peak_signal_noise_ratio(clean, np.asarray(u, float), data_range=1.0)), 3)


@pytest.mark.parametrize("beta", list(DENOISE_BETA_WEIGHTS), ids=lambda b: f"beta{b:g}")
def test_denoise_tvnumba(benchmark, camera, beta):
    clean, noisy = camera
    weight = DENOISE_BETA_WEIGHTS[beta]
    benchmark.group = GROUP
    u, info = benchmark(tvnumba.denoise_tv_beta, noisy, weight, beta, return_info=True)
    record(benchmark, label=f"tvnumba β={beta:g} weight={weight:g}", baseline=False,
           PSNR=psnr(clean, u), method=info.method, iterations=int(info.iterations),
           gap=float(f"{info.gap:.3g}"), objective=round(float(info.objective), 4))


def test_denoise_skimage_chambolle(benchmark, camera):
    clean, noisy = camera
    weight = 0.1
    benchmark.group = GROUP
    u = benchmark(denoise_tv_chambolle, noisy, weight=weight)
    r = u - noisy
    objective = 0.5 * float(np.vdot(r, r)) + weight * tvnumba.tv(u)
    record(benchmark, label="skimage chambolle β=1 weight=0.1", baseline=True,
           PSNR=psnr(clean, u), method="chambolle", iterations=None, gap=None,
           objective=round(objective, 4))
