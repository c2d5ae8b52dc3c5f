"""``reconstruct_tv_beta(weight="auto")``: the sinogram's noise estimate, the chosen
weight against a small sweep of numeric weights, determinism."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from tvnumba import reconstruct_tv_beta
from tvnumba.operators import radon

ITERS = 200  # few iterations: a small, fast problem


def psnr(u, clean) -> float:
    return float(10 * np.log10(1.0 / np.mean((u - clean) ** 2)))


@pytest.fixture(scope="module")
def case():
    """Shepp-Logan 32², 12 angles, white noise of 5 % of the sinogram's maximum
    (at 1 % the phantom's edges dominate the sinogram's finest wavelet
    coefficients at this size, and σ̂ is twice σ)."""
    clean = resize(shepp_logan_phantom(), (32, 32))
    theta = np.linspace(0.0, 180.0, 12, endpoint=False)
    sino0 = radon(clean, theta)
    sigma = 0.05 * sino0.max()
    sino = sino0 + sigma * np.random.default_rng(1).standard_normal(sino0.shape)
    u, info = reconstruct_tv_beta(sino, theta, weight="auto", max_num_iter=ITERS,
                                  return_info=True)
    return clean, theta, sino, sigma, u, info


def test_auto_reports_weight_and_sigma(case):
    _, _, _, sigma, _, info = case
    assert info.weight > 0
    assert info.sigma == pytest.approx(sigma, rel=0.2)


def test_auto_close_to_best_of_a_sweep(case):
    clean, theta, sino, _, u, info = case
    sweep = {w: psnr(reconstruct_tv_beta(sino, theta, weight=w, max_num_iter=ITERS), clean)
             for w in info.weight * np.geomspace(0.125, 8, 7)}
    assert psnr(u, clean) >= max(sweep.values()) - 1.0


def test_auto_is_deterministic_and_the_numeric_solve(case):
    _, theta, sino, _, u, info = case
    u2, info2 = reconstruct_tv_beta(sino, theta, weight="auto", max_num_iter=ITERS,
                                    return_info=True)
    assert info2.weight == info.weight and info2.sigma == info.sigma
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(
        u, reconstruct_tv_beta(sino, theta, weight=info.weight, max_num_iter=ITERS))


def test_numeric_weight_is_reported(case):
    _, theta, sino, _, _, _ = case
    _, info = reconstruct_tv_beta(sino, theta, weight=0.02, max_num_iter=5, return_info=True)
    assert info.weight == 0.02 and info.sigma is None


@pytest.mark.parametrize("weight", ["Auto", "sure"])
def test_other_strings_are_errors(weight):
    with pytest.raises(ValueError, match=r"weight must be a number >= 0 or 'auto'"):
        reconstruct_tv_beta(np.zeros((16, 6)), weight=weight)
