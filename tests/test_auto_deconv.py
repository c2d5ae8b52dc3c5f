"""``deconvolve_tv_beta(weight="auto")``: the noise estimate, the chosen weight
against a small sweep of numeric weights, determinism, and the errors (also of the
inverse functions that have no automatic weight)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve

from tvnumba import deconvolve_tv_beta, inpaint_tv_beta, solve_tv_beta

SIGMA = 0.02


def psnr(u, clean) -> float:
    return float(10 * np.log10(1.0 / np.mean((u - clean) ** 2)))


@pytest.fixture(scope="module")
def case():
    """A piecewise-constant 64² scene, blurred as a camera does (edge-extended
    scene, "valid" convolution by a 5×5 box), plus white noise σ = 0.02."""
    clean = np.full((64, 64), 0.2)
    clean[10:40, 12:30] = 0.9
    clean[30:56, 36:58] = 0.5
    clean[44:60, 6:24] = 0.7
    psf = np.ones((5, 5)) / 25
    blurred = fftconvolve(np.pad(clean, 2, mode="edge"), psf, mode="valid")
    f = blurred + SIGMA * np.random.default_rng(3).standard_normal(clean.shape)
    u, info = deconvolve_tv_beta(f, psf, weight="auto", return_info=True)
    return clean, psf, f, u, info


def test_auto_reports_weight_and_sigma(case):
    _, _, _, _, info = case
    assert info.weight > 0
    assert info.sigma == pytest.approx(SIGMA, rel=0.15)


def test_auto_close_to_best_of_a_sweep(case):
    clean, psf, f, u, _ = case
    sweep = {w: psnr(deconvolve_tv_beta(f, psf, weight=w), clean)
             for w in np.geomspace(5e-4, 2e-2, 9)}
    assert psnr(u, clean) >= max(sweep.values()) - 1.0
    # and better than the sweep's ends, too little and too much regularisation
    assert psnr(u, clean) > max(sweep[min(sweep)], sweep[max(sweep)])


def test_auto_is_the_numeric_solve_at_the_chosen_weight(case):
    _, psf, f, u, info = case
    assert info.weight == deconvolve_tv_beta(f, psf, "auto", return_info=True)[1].weight
    np.testing.assert_array_equal(u, deconvolve_tv_beta(f, psf, weight=info.weight))


def test_numeric_weight_is_reported(case):
    _, psf, f, _, _ = case
    _, info = deconvolve_tv_beta(f, psf, weight=0.003, return_info=True)
    assert info.weight == 0.003 and info.sigma is None


def test_auto_float32_and_periodic(case):
    _, psf, f, _, info = case
    u32, i32 = deconvolve_tv_beta(f.astype(np.float32), psf, "auto", return_info=True)
    assert u32.dtype == np.float32 and i32.weight > 0
    _, ip = deconvolve_tv_beta(f, psf, "auto", boundary="periodic", return_info=True)
    assert ip.weight > 0 and ip.sigma == pytest.approx(info.sigma)


def test_auto_noise_free_image_is_an_error():
    f = np.zeros((32, 32))
    f[8:24, 8:24] = 1.0
    with pytest.raises(ValueError, match="sigma=0.*numeric weight"):
        deconvolve_tv_beta(f, np.ones((3, 3)), weight="auto")


@pytest.mark.parametrize("weight", ["Auto", "sure", ""])
def test_other_strings_are_errors(weight):
    with pytest.raises(ValueError, match=r"weight must be a number >= 0 or 'auto'"):
        deconvolve_tv_beta(np.zeros((20, 20)), np.ones((3, 3)), weight=weight)


def test_auto_elsewhere_is_a_clear_error():
    f = np.zeros((20, 20))
    match = (r"weight='auto' is available only for denoise_tv_beta, deconvolve_tv_beta "
             r"and reconstruct_tv_beta")
    with pytest.raises(ValueError, match=match + ".*inpaint_tv_beta"):
        inpaint_tv_beta(f, np.eye(20, dtype=bool), weight="auto")
    with pytest.raises(ValueError, match=match + ".*solve_tv_beta"):
        solve_tv_beta(np.eye(400), f, weight="auto")
    # other strings keep their existing error
    with pytest.raises(TypeError, match="weight must be a real number"):
        inpaint_tv_beta(f, np.eye(20, dtype=bool), weight="sure")
