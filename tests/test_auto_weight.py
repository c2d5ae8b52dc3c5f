"""weight="auto" (tvnumba.restoration.auto_weight) for denoise_tv_beta, deconvolve_tv_beta
and reconstruct_tv_beta: the noise estimate, the chosen weight, its record and its errors.

The chosen weight is scored against sweeps of numeric weights; the functions without an
automatic weight refuse it with a clear error."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import fftconvolve
from skimage import data, img_as_float
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from tvnumba import deconvolve_tv_beta, inpaint_tv_beta, reconstruct_tv_beta, solve_tv_beta
from tvnumba.operators import radon
from tvnumba.restoration import denoise_tv_beta
from tvnumba.restoration.auto_weight import estimate_noise_sigma
from tvnumba.solvers import SolveInfo


def psnr(u, clean) -> float:
    """PSNR with the clean image's range as the peak."""
    return float(10 * np.log10(np.ptp(clean) ** 2 / np.mean((u - clean) ** 2)))


def psnr1(u, clean) -> float:
    """PSNR with 1 as the peak."""
    return float(10 * np.log10(1.0 / np.mean((u - clean) ** 2)))


def camera(n: int = 96) -> np.ndarray:
    return resize(img_as_float(data.camera()), (n, n), anti_aliasing=True)


def noisy(clean, sigma, seed=0):
    return clean + sigma * np.random.default_rng(seed).standard_normal(clean.shape)


# --- the noise estimate -------------------------------------------------------------
@pytest.mark.parametrize("sigma", [0.02, 0.1, 0.3])
def test_sigma_of_pure_noise(sigma):
    f = noisy(np.full((128, 128), 0.5), sigma)
    assert estimate_noise_sigma(f) == pytest.approx(sigma, rel=0.05)


def test_sigma_per_channel_averaged():
    # Different σ per channel: the estimate is their mean.
    sigmas = np.array([0.05, 0.1, 0.15])
    f = 0.5 + sigmas * np.random.default_rng(1).standard_normal((128, 128, 3))
    assert estimate_noise_sigma(f, channel_axis=-1) == pytest.approx(sigmas.mean(), rel=0.05)
    moved = np.moveaxis(f, -1, 0)
    assert estimate_noise_sigma(moved, channel_axis=0) == estimate_noise_sigma(f, -1)


def test_sigma_on_an_image_and_a_volume():
    assert estimate_noise_sigma(noisy(camera(128), 0.1)) == pytest.approx(0.1, rel=0.1)
    # Large blobs: with many edges per voxel (the default fraction 0.1 at 32³)
    # the finest wavelet band holds signal too and both this estimate and
    # scikit-image's come out ~35 % high.
    vol = data.binary_blobs(length=32, n_dim=3, rng=1, blob_size_fraction=0.3).astype(float)
    assert estimate_noise_sigma(noisy(vol, 0.2)) == pytest.approx(0.2, rel=0.1)


def test_sigma_matches_scikit_image():
    pytest.importorskip("pywt")
    from skimage.restoration import estimate_sigma

    rng = np.random.default_rng(2)
    for f, axis in [(noisy(camera(128), 0.1), None),
                    (img_as_float(data.astronaut()[:96, :96]) + 0.05 * rng.standard_normal((96, 96, 3)), -1)]:
        ref = estimate_sigma(f, channel_axis=axis, average_sigmas=True)
        assert estimate_noise_sigma(f, channel_axis=axis) == pytest.approx(ref, rel=0.02)


# --- denoising: the chosen weight against the oracle ---------------------------------
def _astronaut():
    return img_as_float(data.astronaut()[100:164, 180:244])


CASES = {
    # name: (clean, sigma, beta, channel_axis)
    "camera β=1": (lambda: camera(96), 0.1, 1.0, None),
    "astronaut RGB β=1": (_astronaut, 0.1, 1.0, -1),
    "camera β=2": (lambda: camera(96), 0.1, 2.0, None),
    "camera β=1.5": (lambda: camera(64), 0.2, 1.5, None),
    "blobs 3-D β=1": (lambda: data.binary_blobs(length=32, n_dim=3, rng=1).astype(float),
                      0.3, 1.0, None),
}


@pytest.mark.parametrize("case", list(CASES))
def test_auto_near_the_oracle(case):
    make, sigma, beta, axis = CASES[case]
    clean = make()
    f = noisy(clean, sigma)
    u, info = denoise_tv_beta(f, "auto", beta, channel_axis=axis, return_info=True)
    # The oracle: best PSNR over a log sweep wide enough to bracket it.
    ws = info.weight * np.geomspace(1 / 4, 4, 13)
    scores = [psnr(denoise_tv_beta(f, w, beta, channel_axis=axis), clean) for w in ws]
    best = int(np.argmax(scores))
    assert 0 < best < len(ws) - 1, "sweep does not bracket the oracle"
    assert 0.5 <= info.weight / ws[best] <= 2.0
    assert psnr(u, clean) >= scores[best] - 1.0
    assert psnr(u, clean) > psnr(f, clean) + 3  # and it denoises


def test_auto_nonconvex_beta_half_denoises():
    # β < 1: a local minimiser, SURE is rough; ask for a clear gain only.
    clean = camera(64)
    f = noisy(clean, 0.1)
    u, info = denoise_tv_beta(f, "auto", 0.5, return_info=True)
    assert info.method == "mm" and info.weight > 0
    assert psnr(u, clean) > psnr(f, clean) + 3


def test_auto_scales_with_the_image():
    # Scaling image and noise by k scales the best weight by k^(2-β).
    f = noisy(camera(64), 0.1)
    for beta in (1.0, 1.5):
        _, a = denoise_tv_beta(f, "auto", beta, return_info=True)
        _, b = denoise_tv_beta(255 * f, "auto", beta, return_info=True)
        assert b.sigma == pytest.approx(255 * a.sigma, rel=1e-9)
        assert b.weight == pytest.approx(255 ** (2 - beta) * a.weight, rel=0.05)


def test_auto_is_deterministic_and_keeps_float32():
    f = noisy(camera(64), 0.1).astype(np.float32)
    u, a = denoise_tv_beta(f, "auto", return_info=True)
    _, b = denoise_tv_beta(f, "auto", return_info=True)
    assert u.dtype == np.float32
    assert a.weight == b.weight and a.sigma == b.sigma
    assert isinstance(a.weight, float) and isinstance(a.sigma, float)


# --- denoising: numeric weights ------------------------------------------------------
def test_numeric_weight_reported_and_solved_as_given():
    from tvnumba.backends import select
    from tvnumba._validate import make_plan
    from tvnumba.solvers import Identity, solve

    f = noisy(camera(64), 0.1)
    u, info = denoise_tv_beta(f, 0.1, return_info=True)
    assert info.weight == 0.1 and info.sigma is None
    assert np.array_equal(denoise_tv_beta(f, 0.1), u)
    # The solver entry point, called directly, gives the same image and record.
    plan = make_plan(f, 1.0, name="image")
    backend = select(f, None, solver=True).for_plan(plan)
    u5, ref = solve(Identity(backend.canonical(f, plan)), 0.1, backend=backend, plan=plan)
    assert np.array_equal(plan.from_canonical(u5), u)
    assert (ref.iterations, ref.objective, ref.gap) == (info.iterations, info.objective, info.gap)
    assert SolveInfo(1, 0.0, 0.0, True, "cp").weight is None


# --- denoising: errors --------------------------------------------------------------
@pytest.mark.parametrize("weight", ["Auto", "", "0.1", "sure"])
def test_other_strings_rejected(weight):
    with pytest.raises(ValueError, match="weight") as err:
        denoise_tv_beta(np.zeros((8, 8)), weight)
    assert repr(weight) in str(err.value)


@pytest.mark.parametrize("weight", [None, [0.1], True])
def test_non_numbers_rejected(weight):
    with pytest.raises(TypeError, match="weight"):
        denoise_tv_beta(np.zeros((8, 8)), weight)


@pytest.mark.parametrize("image", [np.full((32, 32), 0.3),
                                   np.kron(np.eye(4), np.ones((16, 16)))])
def test_clean_image_needs_a_numeric_weight(image):
    with pytest.raises(ValueError, match="sigma=0.*numeric weight"):
        denoise_tv_beta(image, "auto")


# --- deconvolution -------------------------------------------------------------------
DECONV_SIGMA = 0.02


@pytest.fixture(scope="module")
def deconvolve_case():
    """A piecewise-constant 64² scene, blurred as a camera does (edge-extended
    scene, "valid" convolution by a 5×5 box), plus white noise σ = 0.02."""
    clean = np.full((64, 64), 0.2)
    clean[10:40, 12:30] = 0.9
    clean[30:56, 36:58] = 0.5
    clean[44:60, 6:24] = 0.7
    psf = np.ones((5, 5)) / 25
    blurred = fftconvolve(np.pad(clean, 2, mode="edge"), psf, mode="valid")
    f = blurred + DECONV_SIGMA * np.random.default_rng(3).standard_normal(clean.shape)
    u, info = deconvolve_tv_beta(f, psf, weight="auto", return_info=True)
    return clean, psf, f, u, info


def test_deconvolve_auto_reports_weight_and_sigma(deconvolve_case):
    _, _, _, _, info = deconvolve_case
    assert info.weight > 0
    assert info.sigma == pytest.approx(DECONV_SIGMA, rel=0.15)


def test_deconvolve_auto_close_to_best_of_a_sweep(deconvolve_case):
    clean, psf, f, u, _ = deconvolve_case
    sweep = {w: psnr1(deconvolve_tv_beta(f, psf, weight=w), clean)
             for w in np.geomspace(5e-4, 2e-2, 9)}
    assert psnr1(u, clean) >= max(sweep.values()) - 1.0
    # and better than the sweep's ends, too little and too much regularisation
    assert psnr1(u, clean) > max(sweep[min(sweep)], sweep[max(sweep)])


def test_deconvolve_auto_is_the_numeric_solve_at_the_chosen_weight(deconvolve_case):
    _, psf, f, u, info = deconvolve_case
    assert info.weight == deconvolve_tv_beta(f, psf, "auto", return_info=True)[1].weight
    np.testing.assert_array_equal(u, deconvolve_tv_beta(f, psf, weight=info.weight))


def test_deconvolve_numeric_weight_is_reported(deconvolve_case):
    _, psf, f, _, _ = deconvolve_case
    _, info = deconvolve_tv_beta(f, psf, weight=0.003, return_info=True)
    assert info.weight == 0.003 and info.sigma is None


def test_deconvolve_auto_float32_and_periodic(deconvolve_case):
    _, psf, f, _, info = deconvolve_case
    u32, i32 = deconvolve_tv_beta(f.astype(np.float32), psf, "auto", return_info=True)
    assert u32.dtype == np.float32 and i32.weight > 0
    _, ip = deconvolve_tv_beta(f, psf, "auto", boundary="periodic", return_info=True)
    assert ip.weight > 0 and ip.sigma == pytest.approx(info.sigma)


def test_deconvolve_auto_noise_free_image_is_an_error():
    f = np.zeros((32, 32))
    f[8:24, 8:24] = 1.0
    with pytest.raises(ValueError, match="sigma=0.*numeric weight"):
        deconvolve_tv_beta(f, np.ones((3, 3)), weight="auto")


@pytest.mark.parametrize("weight", ["Auto", "sure", ""])
def test_deconvolve_other_strings_are_errors(weight):
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
    # other strings give the function's own weight error
    with pytest.raises(TypeError, match="weight must be a real number"):
        inpaint_tv_beta(f, np.eye(20, dtype=bool), weight="sure")


# --- tomography ----------------------------------------------------------------------
CT_ITERS = 200  # few iterations: a small, fast problem


@pytest.fixture(scope="module")
def reconstruct_case():
    """Shepp-Logan 32², 12 angles, white noise of 5 % of the sinogram's maximum
    (at 1 % the phantom's edges dominate the sinogram's finest wavelet
    coefficients at this size, and σ̂ is twice σ)."""
    clean = resize(shepp_logan_phantom(), (32, 32))
    theta = np.linspace(0.0, 180.0, 12, endpoint=False)
    sino0 = radon(clean, theta)
    sigma = 0.05 * sino0.max()
    sino = sino0 + sigma * np.random.default_rng(1).standard_normal(sino0.shape)
    u, info = reconstruct_tv_beta(sino, theta, weight="auto", max_num_iter=CT_ITERS,
                                  return_info=True)
    return clean, theta, sino, sigma, u, info


def test_reconstruct_auto_reports_weight_and_sigma(reconstruct_case):
    _, _, _, sigma, _, info = reconstruct_case
    assert info.weight > 0
    assert info.sigma == pytest.approx(sigma, rel=0.2)


def test_reconstruct_auto_close_to_best_of_a_sweep(reconstruct_case):
    clean, theta, sino, _, u, info = reconstruct_case
    sweep = {w: psnr1(reconstruct_tv_beta(sino, theta, weight=w, max_num_iter=CT_ITERS), clean)
             for w in info.weight * np.geomspace(0.125, 8, 7)}
    assert psnr1(u, clean) >= max(sweep.values()) - 1.0


def test_reconstruct_auto_is_deterministic_and_the_numeric_solve(reconstruct_case):
    _, theta, sino, _, u, info = reconstruct_case
    u2, info2 = reconstruct_tv_beta(sino, theta, weight="auto", max_num_iter=CT_ITERS,
                                    return_info=True)
    assert info2.weight == info.weight and info2.sigma == info.sigma
    np.testing.assert_array_equal(u, u2)
    np.testing.assert_array_equal(
        u, reconstruct_tv_beta(sino, theta, weight=info.weight, max_num_iter=CT_ITERS))


def test_reconstruct_numeric_weight_is_reported(reconstruct_case):
    _, theta, sino, _, _, _ = reconstruct_case
    _, info = reconstruct_tv_beta(sino, theta, weight=0.02, max_num_iter=5, return_info=True)
    assert info.weight == 0.02 and info.sigma is None


@pytest.mark.parametrize("weight", ["Auto", "sure"])
def test_reconstruct_other_strings_are_errors(weight):
    with pytest.raises(ValueError, match=r"weight must be a number >= 0 or 'auto'"):
        reconstruct_tv_beta(np.zeros((16, 6)), weight=weight)
