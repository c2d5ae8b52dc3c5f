"""``denoise_tv_beta(weight="auto")``: the noise estimate, the chosen weight
against an oracle sweep computed here with numeric weights, and the errors."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data, img_as_float
from skimage.transform import resize

from tvnumba.restoration import denoise_tv_beta
from tvnumba.restoration.auto_weight import estimate_noise_sigma
from tvnumba.solvers import SolveInfo


def psnr(u, clean) -> float:
    return float(10 * np.log10(np.ptp(clean) ** 2 / np.mean((u - clean) ** 2)))


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


# --- the chosen weight against the oracle -------------------------------------------
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


# --- numeric weights: behaviour unchanged -------------------------------------------
def test_numeric_weight_reported_and_unchanged():
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


# --- errors --------------------------------------------------------------------------
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


def test_module_examples():
    import doctest

    from tvnumba.restoration import auto_weight

    result = doctest.testmod(auto_weight, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
