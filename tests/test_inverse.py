"""solve_tv_beta, deconvolve_tv_beta and inpaint_tv_beta (tvnumba.restoration.inverse)
against independent references, and every bad input.

The references: SciPy L-BFGS-B on the same smooth objective (built on tests/reference.py
and scipy.signal.fftconvolve, never on tvnumba), scikit-image's wiener and
inpaint_biharmonic on synthetic images with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.ndimage import convolve as nd_convolve
from scipy.optimize import minimize
from scipy.signal import fftconvolve
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import aslinearoperator
from skimage import data, img_as_float
from skimage.metrics import peak_signal_noise_ratio
from skimage.restoration import inpaint_biharmonic, wiener

from reference import ref_tv, ref_tv_grad
from tvnumba import deconvolve_tv_beta, inpaint_tv_beta, solve_tv_beta


def lbfgsb(fun, x0):
    res = minimize(fun, x0.ravel(), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=50000, ftol=1e-15, gtol=1e-10, maxcor=30))
    return res.x.reshape(x0.shape)


def gaussian_psf(radius, sigma):
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    psf = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return psf / psf.sum()


def blur_extend(clean, psf):
    """The blur of a scene larger than the picture: reflect, then "valid"."""
    pads = [(m // 2, (m - 1) // 2) for m in psf.shape]
    return fftconvolve(np.pad(clean, pads, mode="reflect"), psf, mode="valid")


# --------------------------------------------------------------------------- deconvolution
def ref_deconvolve(f, psf, weight, beta, smoothing=0.0, **tv_kw):
    """argmin ½‖valid(u * psf) − f‖² + weight TV_β(u) over the extended u, by SciPy."""
    ext = tuple(n + m - 1 for n, m in zip(f.shape, psf.shape))
    flip = psf[(slice(None, None, -1),) * psf.ndim]

    def fun(x):
        u = x.reshape(ext)
        r = fftconvolve(u, psf, mode="valid") - f
        g = fftconvolve(r, flip, mode="full") + weight * ref_tv_grad(
            u, beta=beta, smoothing=smoothing, **tv_kw)
        return 0.5 * float(np.sum(r * r)) + weight * ref_tv(
            u, beta=beta, smoothing=smoothing, **tv_kw), g.ravel()

    u = lbfgsb(fun, np.pad(f, [(m // 2, (m - 1) // 2) for m in psf.shape], mode="edge"))
    return u, fun(u.ravel())[0]


def window(u, psf):
    return u[tuple(slice(m // 2, m // 2 + n - m + 1) for m, n in zip(psf.shape, u.shape))]


@pytest.mark.parametrize("beta,smoothing", [(1.5, 0.0), (1.0, 0.05)])
@pytest.mark.parametrize("psf_shape", [(3, 3), (4, 3)])
def test_deconvolve_is_the_minimiser_2d(rng, beta, smoothing, psf_shape):
    clean = np.zeros((12, 10))
    clean[3:9, 2:7] = 1.0
    psf = rng.random(psf_shape)
    psf /= psf.sum()
    f = blur_extend(clean, psf) + 0.02 * rng.standard_normal(clean.shape)
    ref, F_ref = ref_deconvolve(f, psf, 0.05, beta, smoothing)
    u, info = deconvolve_tv_beta(f, psf, 0.05, beta, smoothing=smoothing, eps=1e-12,
                                 max_num_iter=20000, return_info=True)
    assert info.method == "lbfgs" and u.shape == f.shape
    assert_allclose(info.objective, F_ref, rtol=1e-7)
    assert_allclose(u, window(ref, psf), atol=1e-4)


def test_deconvolve_is_the_minimiser_3d(rng):
    clean = np.zeros((6, 7, 5))
    clean[2:5, 1:5, 1:4] = 1.0
    psf = rng.random((3, 2, 3))
    psf /= psf.sum()
    f = blur_extend(clean, psf) + 0.02 * rng.standard_normal(clean.shape)
    ref, F_ref = ref_deconvolve(f, psf, 0.05, 1.5)
    u, info = deconvolve_tv_beta(f, psf, 0.05, 1.5, eps=1e-12, max_num_iter=20000,
                                 return_info=True)
    assert_allclose(info.objective, F_ref, rtol=1e-7)
    assert_allclose(u, window(ref, psf), atol=1e-4)


def test_deconvolve_periodic_is_the_minimiser(rng):
    clean = np.zeros((10, 9))
    clean[2:7, 3:8] = 1.0
    psf = rng.random((3, 3))
    psf /= psf.sum()
    f = nd_convolve(clean, psf, mode="wrap") + 0.02 * rng.standard_normal(clean.shape)

    def fun(x):
        u = x.reshape(f.shape)
        r = nd_convolve(u, psf, mode="wrap") - f
        g = nd_convolve(r, psf[::-1, ::-1], mode="wrap") + 0.05 * ref_tv_grad(u, beta=1.5)
        return 0.5 * float(np.sum(r * r)) + 0.05 * ref_tv(u, beta=1.5), g.ravel()

    ref = lbfgsb(fun, f)
    u, info = deconvolve_tv_beta(f, psf, 0.05, 1.5, boundary="periodic", eps=1e-12,
                                 max_num_iter=20000, return_info=True)
    assert_allclose(info.objective, fun(ref.ravel())[0], rtol=1e-7)
    assert_allclose(u, ref, atol=1e-4)


@pytest.mark.parametrize("method", ["admm", "cp"])
@pytest.mark.parametrize("boundary", ["extend", "periodic"])
def test_deconvolve_beta1_reaches_the_optimum(rng, boundary, method):
    """β = 1 by ADMM (the default) and by primal-dual: the objective is within 1e-4 of
    the smoothed SciPy optimum with a tiny smoothing (which differs from TV₁ by ≤ Σ s)."""
    clean = np.zeros((12, 10))
    clean[3:9, 2:7] = 1.0
    psf = gaussian_psf(1, 0.8)
    f = blur_extend(clean, psf) + 0.02 * rng.standard_normal(clean.shape)
    # primal-dual's accelerated tail on the periodic prox is slow below 1e-6
    eps = 1e-6 if (method, boundary) == ("cp", "periodic") else 1e-7
    u, info = deconvolve_tv_beta(f, psf, 0.05, boundary=boundary, eps=eps,
                                 max_num_iter=50000, method=method, return_info=True)
    assert info.method == method and info.converged
    assert deconvolve_tv_beta(f, psf, 0.05, boundary=boundary,
                              return_info=True)[1].method == "admm"
    if boundary == "extend":
        _, F_ref = ref_deconvolve(f, psf, 0.05, 1.0, smoothing=1e-4)
        assert info.objective <= F_ref * (1 + 1e-4)
        assert info.objective >= F_ref - 0.05 * 1e-4 * 14 * 12 - 1e-6


@pytest.mark.parametrize("boundary", ["extend", "periodic"])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("channels", [False, True])
def test_admm_on_the_whole_array_backend_follows_the_host(rng, monkeypatch, boundary,
                                                          isotropic, channels):
    """The ADMM's stages in whole-array operations (the code a CuPy image runs) give the
    Numba kernels' iterates: same iterations, objective and image."""
    from tvnumba.backends.array import ArrayBackend
    from tvnumba.restoration import _core

    clean = np.zeros((20, 17, 2) if channels else (20, 17))
    clean[4:12, 3:9] = 1.0
    clean[9:16, 7:14] += 0.5
    psf = gaussian_psf(2, 1.0)
    f = clean + 0.02 * rng.standard_normal(clean.shape)
    kw = dict(boundary=boundary, isotropic=isotropic, return_info=True,
              channel_axis=-1 if channels else None)
    u_h, info_h = deconvolve_tv_beta(f, psf, 0.02, **kw)
    monkeypatch.setattr(_core, "select", lambda image, device, solver=True: ArrayBackend(np))
    u_a, info_a = deconvolve_tv_beta(f, psf, 0.02, **kw)
    assert info_h.method == info_a.method == "admm"
    assert info_a.iterations == info_h.iterations
    assert_allclose(info_a.objective, info_h.objective, rtol=1e-12)
    assert_allclose(u_a, u_h, rtol=0, atol=1e-11)


def test_deconvolve_beats_wiener(rng):
    """A piecewise-constant image, Gaussian blur, noise 0.01: TV beats the best
    Wiener filter (balance swept) in PSNR."""
    clean = np.zeros((96, 96))
    clean[20:70, 15:45] = 0.8
    clean[40:85, 50:90] = 0.4
    clean[10:30, 60:80] = 1.0
    psf = gaussian_psf(4, 1.5)
    f = blur_extend(clean, psf) + 0.01 * rng.standard_normal(clean.shape)
    u = deconvolve_tv_beta(f, psf, weight=0.002, eps=1e-4)
    best = max(peak_signal_noise_ratio(clean, np.clip(wiener(f, psf, b), 0, 1), data_range=1)
               for b in (0.003, 0.01, 0.03, 0.1, 0.3))
    assert peak_signal_noise_ratio(clean, np.clip(u, 0, 1), data_range=1) > best + 3


def test_deconvolve_layout_dtype_and_no_mutation(rng):
    """float32 stays float32; a Fortran-ordered image (whose kernel axes are
    reversed) with a non-symmetric PSF gives the C-ordered result; the inputs
    are not modified."""
    f = rng.random((14, 11)).astype(np.float32)
    psf = rng.random((3, 5)).astype(np.float32)
    f0, psf0 = f.copy(), psf.copy()
    u = deconvolve_tv_beta(f, psf, 0.01, eps=1e-6)
    uF = deconvolve_tv_beta(np.asfortranarray(f), psf, 0.01, eps=1e-6)
    assert u.dtype == np.float32 and u.shape == f.shape
    assert_allclose(uF, u, atol=1e-4)
    assert np.array_equal(f, f0) and np.array_equal(psf, psf0)
    # the PSF is normalised: scaling it changes nothing but the rounding of the kernel
    f64, psf64 = f.astype(np.float64), psf.astype(np.float64)
    assert_allclose(deconvolve_tv_beta(f64, 3 * psf64, 0.01, eps=1e-6),
                    deconvolve_tv_beta(f64, psf64, 0.01, eps=1e-6), atol=1e-9)


def test_deconvolve_colour_couples_channels(rng):
    """Three equal channels: coupled β-TV is 3^(β/2) times the grey TV, so the
    colour problem with weight w is the grey one with w·3^(β/2 − 1)."""
    g = rng.random((12, 13))
    psf = gaussian_psf(1, 1.0)
    rgb = np.stack([g, g, g], axis=-1)
    u = deconvolve_tv_beta(rgb, psf, 0.05, 1.5, channel_axis=-1, eps=1e-12, max_num_iter=5000)
    ref = deconvolve_tv_beta(g, psf, 0.05 * 3 ** (0.75 - 1), 1.5, eps=1e-12, max_num_iter=5000)
    assert u.shape == rgb.shape
    for c in range(3):
        assert_allclose(u[..., c], ref, atol=1e-6)


@pytest.mark.parametrize("psf,exc,match", [
    (np.ones(3), ValueError, r"psf must have one axis per spatial axis of the image \(2\), "
                             r"got psf.ndim=1"),
    (np.full((3, 3), np.nan), ValueError, "psf contains NaN"),
    (np.zeros((3, 3)), ValueError, r"psf must have a positive sum .* got psf.sum\(\)=0.0"),
    (-np.ones((3, 3)), ValueError, r"psf must have a positive sum .* got psf.sum\(\)=-9.0"),
    (np.ones((30, 3)), ValueError, r"psf must not be larger than the image, got "
                                   r"psf.shape=\(30, 3\)"),
    (np.ones((3, 3), complex), TypeError, r"psf must be real"),
    (np.ones((0, 3)), ValueError, "psf must not be empty"),
])
def test_deconvolve_bad_psf(psf, exc, match):
    with pytest.raises(exc, match=match):
        deconvolve_tv_beta(np.zeros((20, 20)), psf)


def test_deconvolve_bad_options():
    f, psf = np.zeros((20, 20)), np.ones((3, 3))
    with pytest.raises(ValueError, match=r"boundary must be one of \('extend', 'periodic'\), "
                                         r"got boundary='wrap'"):
        deconvolve_tv_beta(f, psf, boundary="wrap")
    with pytest.raises(ValueError, match="weight must be a finite number >= 0"):
        deconvolve_tv_beta(f, psf, weight=-1)
    with pytest.raises(ValueError, match="image contains NaN"):
        deconvolve_tv_beta(np.full((20, 20), np.nan), psf)
    with pytest.raises(ValueError, match="method='dct'"):
        deconvolve_tv_beta(f, psf, beta=2.0, method="dct")


# --------------------------------------------------------------------------- inpainting
def test_inpaint_camera_close_to_biharmonic():
    """50 % random pixels of a camera crop: within 1 dB of inpaint_biharmonic."""
    clean = img_as_float(data.camera())[200:296, 180:276]
    mask = np.random.default_rng(3).random(clean.shape) < 0.5
    damaged = np.where(mask, 0.0, clean)
    u = inpaint_tv_beta(damaged, mask)
    ub = inpaint_biharmonic(damaged, mask)
    p, pb = (peak_signal_noise_ratio(clean, v, data_range=1) for v in (u, ub))
    assert p > pb - 1.0, (p, pb)
    assert np.array_equal(u[~mask], clean[~mask])


def test_inpaint_is_the_minimiser(rng):
    clean = np.zeros((11, 12))
    clean[3:8, 2:9] = 1.0
    mask = rng.random(clean.shape) < 0.4
    f = clean + 0.05 * rng.standard_normal(clean.shape)
    m = (~mask).astype(float)

    def fun(x):
        u = x.reshape(f.shape)
        r = m * (u - f)
        return (0.5 * float(np.sum(r * r)) + 0.1 * ref_tv(u, beta=1.5),
                (m * r + 0.1 * ref_tv_grad(u, beta=1.5)).ravel())

    ref = lbfgsb(fun, m * f)
    u, info = inpaint_tv_beta(np.where(mask, np.nan, f), mask, 0.1, 1.5, eps=1e-12,
                              max_num_iter=20000, return_info=True)
    assert info.method == "lbfgs"
    assert_allclose(info.objective, fun(ref.ravel())[0], rtol=1e-7)
    assert_allclose(u[mask], ref[mask], atol=1e-4)
    assert np.array_equal(u[~mask], f[~mask])


@pytest.mark.parametrize("weight", [5e-4, 0.3])
def test_inpaint_steps_follow_the_weight_and_the_data_scale(weight):
    """The mask iteration balances its steps by the known data's range over the weight:
    the same iterations and a scaled answer for data and weight scaled together, and far
    weights solved in a few hundred iterations (a fixed balance took 1419 and 3053 on
    these), each within the certified gap."""
    rng = np.random.default_rng(1)
    clean = img_as_float(data.camera())[::4, ::4]
    f = clean + 0.02 * rng.standard_normal(clean.shape)
    mask = rng.random(f.shape) < 0.5
    f[mask] = 0.0
    u, info = inpaint_tv_beta(f, mask, weight, return_info=True, max_num_iter=5000)
    u100, info100 = inpaint_tv_beta(100 * f, mask, 100 * weight, return_info=True,
                                    max_num_iter=5000)
    assert info.converged and info.bound and info.gap <= 1e-3
    assert info.iterations < 600
    assert info100.iterations == info.iterations
    assert_allclose(u100, 100 * u, rtol=1e-9, atol=1e-9)


def test_inpaint_colour_and_masks(rng):
    img = rng.random((10, 3, 12)).astype(np.float32)  # channel axis in the middle
    mask = rng.random((10, 12)) < 0.3
    img0 = img.copy()
    u = inpaint_tv_beta(img, mask, channel_axis=1)
    full = np.broadcast_to(mask[:, None, :], img.shape)
    u_full = inpaint_tv_beta(img, full.astype(np.uint8), channel_axis=1)
    assert u.dtype == np.float32 and u.shape == img.shape
    assert np.array_equal(u[~full], img[~full])
    assert_allclose(u_full, u, atol=1e-6)
    assert np.array_equal(img, img0)


@pytest.mark.parametrize("mask,exc,match", [
    (np.zeros((5, 5), bool), ValueError, r"mask must have the image's shape \(8, 9\), got "
                                         r"mask.shape=\(5, 5\)"),
    (np.full((8, 9), 2), ValueError, "mask must be bool or hold only 0 and 1"),
    (np.ones((8, 9), bool), ValueError, "mask marks every pixel as missing"),
    (np.full((8, 9), "a"), TypeError, "mask must be a bool array"),
])
def test_inpaint_bad_mask(mask, exc, match):
    with pytest.raises(exc, match=match):
        inpaint_tv_beta(np.zeros((8, 9)), mask)


def test_inpaint_bad_mask_with_channels():
    with pytest.raises(ValueError, match=r"or its spatial shape \(8, 9\), got mask.shape=\(9, 8\)"):
        inpaint_tv_beta(np.zeros((8, 9, 3)), np.zeros((9, 8), bool), channel_axis=-1)
    with pytest.raises(ValueError, match=r"image \(on the known pixels\) contains NaN"):
        inpaint_tv_beta(np.full((8, 9), np.nan), np.eye(8, 9, dtype=bool))


# --------------------------------------------------------------------------- solve_tv_beta
@pytest.fixture(scope="module")
def system():
    rng = np.random.default_rng(5)
    x = np.zeros((6, 5))
    x[1:4, 2:5] = 1.0
    M = rng.standard_normal((20, 30)) / 5  # under-determined: 20 data for 30 unknowns
    f = M @ x.ravel() + 0.01 * rng.standard_normal(20)
    return M, f


def test_solve_all_operator_kinds_agree_with_scipy(system):
    M, f = system
    kw = dict(weight=0.05, beta=1.5, shape=(6, 5), eps=1e-12, max_num_iter=20000)

    def fun(x):
        u = x.reshape(6, 5)
        r = M @ x - f
        return (0.5 * float(r @ r) + 0.05 * ref_tv(u, beta=1.5),
                M.T @ r + 0.05 * ref_tv_grad(u, beta=1.5).ravel())

    ref = lbfgsb(fun, np.zeros((6, 5)))
    results = [solve_tv_beta(M, f, **kw), solve_tv_beta(csr_matrix(M), f, **kw),
               solve_tv_beta(aslinearoperator(M), f, **kw),
               solve_tv_beta(lambda u: M @ u.ravel(), f, AT=lambda r: (M.T @ r).reshape(6, 5),
                             check_adjoint=True, **kw)]
    for u in results:
        assert u.shape == (6, 5)
        assert_allclose(u, ref, atol=1e-5)


def test_solve_beta1_and_float32(system):
    M, f = system
    u, info = solve_tv_beta(M, f.astype(np.float32), 0.05, shape=(6, 5), eps=1e-5,
                            max_num_iter=20000, return_info=True)
    assert info.method == "cp" and info.converged and u.dtype == np.float32


def test_solve_bad_input(system):
    M, f = system
    with pytest.raises(ValueError, match=r"shape is required: A has 30 columns but f has "
                                         r"f.size=20"):
        solve_tv_beta(M, f)
    with pytest.raises(ValueError, match=r"A must have shape .* got A.shape=\(20, 30\)"):
        solve_tv_beta(M, f, shape=(5, 5))
    with pytest.raises(ValueError, match=r"^AT is not the adjoint of A"):
        solve_tv_beta(lambda u: M @ u.ravel(), f, shape=(6, 5), check_adjoint=True,
                      AT=lambda r: (M.T @ r).reshape(6, 5)[::-1])
    with pytest.raises(TypeError, match="AT must be the callable adjoint"):
        solve_tv_beta(lambda u: u, f)
    with pytest.raises(ValueError, match="shape must hold integers >= 1"):
        solve_tv_beta(M, f, shape=(0, 30))
    with pytest.raises(TypeError, match="shape must be a tuple of integers"):
        solve_tv_beta(M, f, shape=(6.0, 5))
    with pytest.raises(ValueError, match="f contains NaN"):
        solve_tv_beta(M, np.full(20, np.nan), shape=(6, 5))
    with pytest.raises(TypeError, match="check_adjoint must be True or False"):
        solve_tv_beta(M, f, shape=(6, 5), check_adjoint=1)


# --------------------------------------------------------------------------- weight = 0
def test_weight_zero_solves_least_squares_matrix():
    """β = 1 and β = 3 at weight 0: ``A u = f`` solved, not the starting guess returned."""
    f = np.random.default_rng(0).random(6)
    for beta in (1.0, 3.0):
        u, info = solve_tv_beta(0.5 * np.eye(6), f, 0.0, beta=beta, return_info=True)
        assert_allclose(u, 2 * f, rtol=1e-10)
        assert info.converged and info.gap <= 1e-3 and info.method == "cgls"


def test_weight_zero_underdetermined_is_nearest_start():
    """Fewer data than unknowns: the least-squares solution nearest the start ``Aᵀf``,
    which is the minimum-norm one (``pinv(A) f``)."""
    rng = np.random.default_rng(1)
    A, f = rng.random((3, 6)), rng.random(3)
    u, info = solve_tv_beta(A, f, 0.0, shape=(6,), eps=1e-10, return_info=True)
    assert_allclose(A @ u, f, atol=1e-9)
    assert_allclose(u, np.linalg.pinv(A) @ f, atol=1e-8)
    assert info.converged


def test_weight_zero_periodic_deconvolution_inverts_the_blur():
    clean = np.random.default_rng(2).random((24, 30))
    psf = gaussian_psf(2, 1.0)
    blurred = nd_convolve(clean, psf, mode="wrap")
    u, info = deconvolve_tv_beta(blurred, psf, 0.0, boundary="periodic", return_info=True)
    assert_allclose(u, clean, atol=1e-8)
    assert info.method == "exact" and info.converged


def test_weight_zero_extend_deconvolution_fits_the_data():
    rng = np.random.default_rng(3)
    psf = np.full((1, 5), 0.2)
    clean = rng.random((12, 20))
    blurred = blur_extend(clean, psf)
    u, info = deconvolve_tv_beta(blurred, psf, 0.0, eps=1e-8, return_info=True)
    # the extended scene has more unknowns than data: the least-squares objective is 0
    assert info.converged and info.method == "cgls"
    assert info.objective <= 1e-12 * 0.5 * np.sum(blurred ** 2)
    # the returned window is not the blurred image (a weight-0 deconvolution, not a copy)
    assert np.abs(u - blurred).max() > 1e-2


def test_weight_zero_inpainting_keeps_the_known_pixels():
    rng = np.random.default_rng(4)
    image = rng.random((16, 16))
    mask = rng.random(image.shape) < 0.4
    u, info = inpaint_tv_beta(image, mask, weight=0.0, return_info=True)
    assert_allclose(u[~mask], image[~mask])
    assert info.converged


def test_zero_operator_is_refused():
    f = np.ones(5)
    for A in (np.zeros((5, 5)), csr_matrix((5, 5)), lambda u: 0 * u):
        with pytest.raises(ValueError, match="A is the zero operator"):
            solve_tv_beta(A, f, 0.1, AT=(lambda r: 0 * r) if callable(A) else None)


def test_psf_with_an_overflowing_sum_is_normalised():
    image = np.random.default_rng(5).random((16, 16))
    psf = gaussian_psf(1, 1.0)
    small = deconvolve_tv_beta(image, psf, 0.01)
    huge = deconvolve_tv_beta(image, psf * 1e308, 0.01)  # psf.sum() overflows to inf
    assert_allclose(huge, small, rtol=1e-6, atol=1e-9)
