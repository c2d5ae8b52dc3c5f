"""The Poisson data term ``KL(Au + b; y)``: ``noise="poisson"`` of ``denoise_tv_beta``,
``deconvolve_tv_beta`` and ``solve_tv_beta`` (β ≥ 1, preconditioned primal-dual with a
certified duality gap), against the float64 NumPy reference and tight solves."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

import tvnumba
from reference import ref_blur_valid, ref_kl, ref_kl_grad, ref_tv, numerical_grad


def _scene(n=40, peak=10.0):
    x = np.full((n, n), 0.2 * peak)
    x[n // 4:3 * n // 4, n // 5:n // 2] = peak
    x[n // 2:, 3 * n // 5:] = 0.6 * peak
    return x


def _psf(m=5, s=1.2):
    g = np.exp(-0.5 * (np.arange(m) - m // 2) ** 2 / s**2)
    h = np.outer(g, g)
    return h / h.sum()


def _counts(x, b, seed=0, psf=None):
    rng = np.random.default_rng(seed)
    mean = x if psf is None else ref_blur_valid(np.pad(x, psf.shape[0] // 2, mode="edge"), psf)
    return rng.poisson(mean + b)


def _objective(u, y, b, weight, psf=None):
    z = u if psf is None else ref_blur_valid(u, psf)
    return ref_kl(z, y, b) + weight * ref_tv(u)


# --------------------------------------------------------------------------- the reference
def test_reference_kl_gradient_is_the_finite_difference():
    rng = np.random.default_rng(1)
    z = rng.random(7) + 0.5
    y = rng.poisson(3.0, 7).astype(float)
    assert_allclose(ref_kl_grad(z, y, 0.3), numerical_grad(lambda v: ref_kl(v, y, 0.3), z),
                    rtol=1e-6, atol=1e-8)
    assert ref_kl(y, y) == 0.0  # zero at the data, the constant included


# --------------------------------------------------------------------------- denoising
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("b", [0.0, 2.0])
def test_denoise_objective_and_certificate(dtype, b):
    """info.objective is KL + weight·TV of the returned u (reference), u >= 0, and the
    gap bounds the distance to a tight solve's objective."""
    y = _counts(_scene(), b, seed=2).astype(dtype)
    u, info = tvnumba.denoise_tv_beta(y, 0.4, noise="poisson", background=b,
                                      return_info=True)
    assert info.converged and info.gap <= 1e-3 and info.method == "cp"
    assert u.dtype == np.dtype(dtype) and u.min() >= 0
    assert_allclose(info.objective, _objective(u, y, b, 0.4), rtol=1e-5 if dtype == "float32"
                    else 1e-10)
    _, tight = tvnumba.denoise_tv_beta(y.astype(np.float64), 0.4, noise="poisson",
                                       background=b, eps=1e-7, return_info=True)
    assert tight.converged
    excess = (info.objective - tight.objective) / tight.objective
    assert excess <= info.gap * (1 + 1e-6) + (1e-6 if dtype == "float32" else 1e-12)


def test_denoise_counts_are_not_rescaled():
    """uint8 counts are solved as the numbers they hold (not img_as_float's [0, 1])."""
    y = _counts(_scene(32), 1.0, seed=3)
    as_int = tvnumba.denoise_tv_beta(y.astype(np.uint8), 0.3, noise="poisson", background=1.0)
    as_float = tvnumba.denoise_tv_beta(y.astype(np.float64), 0.3, noise="poisson",
                                       background=1.0)
    assert as_int.dtype == np.float64
    assert_allclose(as_int, as_float, rtol=0, atol=1e-12)
    assert 5 < as_int.max() < 20


def test_denoise_lowers_the_objective_of_the_data():
    y = _counts(_scene(), 0.0, seed=4)
    u = tvnumba.denoise_tv_beta(y, 0.5, noise="poisson")
    assert _objective(u, y, 0.0, 0.5) < _objective(y.astype(float) + 1e-9, y, 0.0, 0.5)


def test_zero_counts_and_zero_background():
    """77 % zero counts, b = 0: finite objective (u lifted where the data need it),
    certified."""
    y = _counts(_scene(peak=1.0), 0.0, seed=5)
    assert (y == 0).mean() > 0.3
    u, info = tvnumba.denoise_tv_beta(y, 0.2, noise="poisson", return_info=True)
    assert info.converged and np.isfinite(info.objective)
    assert np.isfinite(_objective(u, y, 0.0, 0.2))
    y0 = np.zeros((8, 8), int)
    u0, info0 = tvnumba.denoise_tv_beta(y0, 0.2, noise="poisson", background=0.5,
                                        return_info=True)
    assert info0.converged and np.all(u0 == 0)


def test_array_background_channels_spacing_and_3d():
    rng = np.random.default_rng(6)
    y = rng.poisson(4.0, (12, 10, 3))
    b = np.full(y.shape, 0.5)
    u, info = tvnumba.denoise_tv_beta(y, 0.3, noise="poisson", background=b,
                                      channel_axis=-1, spacing=(1.0, 2.0), return_info=True)
    assert info.converged and u.shape == y.shape and u.min() >= 0
    v = rng.poisson(3.0, (6, 8, 9))
    u, info = tvnumba.denoise_tv_beta(v, 0.3, noise="poisson", isotropic=False,
                                      return_info=True)
    assert info.converged and u.shape == v.shape


# --------------------------------------------------------------------------- deconvolution
@pytest.mark.parametrize("boundary", ["extend", "periodic"])
def test_deconvolve_objective_and_certificate(boundary):
    x, psf, b = _scene(36), _psf(), 1.0
    if boundary == "extend":
        y = _counts(x, b, seed=7, psf=psf)
    else:
        y = np.random.default_rng(7).poisson(np.real(np.fft.ifft2(
            np.fft.fft2(x) * np.fft.fft2(np.roll(np.pad(psf, [(0, 31)] * 2), (-2, -2),
                                                 (0, 1))))) + b)
    u, info = tvnumba.deconvolve_tv_beta(y, psf, 0.3, noise="poisson", background=b,
                                         boundary=boundary, return_info=True)
    assert info.converged and info.gap <= 1e-3 and u.shape == y.shape and u.min() >= 0
    _, tight = tvnumba.deconvolve_tv_beta(y, psf, 0.3, noise="poisson", background=b,
                                          boundary=boundary, eps=1e-6, return_info=True)
    assert (info.objective - tight.objective) / tight.objective <= info.gap * (1 + 1e-6)
    if boundary == "periodic":  # the objective of the returned image, from the reference
        blur = np.real(np.fft.ifft2(np.fft.fft2(u) * np.fft.fft2(
            np.roll(np.pad(psf, [(0, 31)] * 2), (-2, -2), (0, 1)))))
        assert_allclose(info.objective, ref_kl(blur, y, b) + 0.3 * ref_tv(u), rtol=1e-9)


def test_certificate_polish_stays_in_the_ball_and_lowers_the_violation():
    """The dual polish of the Poisson gap keeps |p| <= weight per pixel and lowers
    ‖(c + Dᵀp)₋‖ (the violation σ_C multiplies); D and Dᵀ from tests/reference.py."""
    from reference import _adjoint_diff

    from tvnumba._validate import make_plan
    from tvnumba.backends import select
    from tvnumba.solvers import Identity
    from tvnumba.solvers.data_terms import PoissonLoss
    from tvnumba.solvers._kl_gap import Certificate

    b, w = 1.0, 0.3
    y = _counts(_scene(24), b, seed=3).astype(float)
    plan = make_plan(y, 1.0, name="image")
    backend = select(y, None, solver=True).for_plan(plan)
    term = Identity(backend.canonical(y, plan)).with_loss(PoissonLoss(), b).bind(backend)
    cert = Certificate(term, backend.tv_ops(plan, np.float64), w)
    rng = np.random.default_rng(0)
    shape = term.f.shape
    p = [rng.uniform(-w, w, shape) / np.sqrt(2) for _ in range(2)]
    for q, ax in zip(p, (3, 4)):
        q[tuple(slice(None) if a != ax else -1 for a in range(5))] = 0
    p0 = [rng.uniform(-w, w, shape) / np.sqrt(2) for _ in range(2)]
    for q, ax in zip(p0, (3, 4)):
        q[tuple(slice(None) if a != ax else -1 for a in range(5))] = 0
    # feasible: c + Dᵀp0 = 0.01 > 0, so the least violation in the ball is 0
    c = 0.01 - sum(_adjoint_diff(q, ax, 1.0) for q, ax in zip(p0, (3, 4)))

    def violation(p):
        div = sum(_adjoint_diff(q, ax, 1.0) for q, ax in zip(p, (3, 4)))
        return np.linalg.norm(np.minimum(c + div, 0))

    q = cert._polish([a.copy() for a in p], c)
    assert np.sqrt(q[0] ** 2 + q[1] ** 2).max() <= w * (1 + 1e-12)
    assert violation(p) > 1 and violation(q) < 0.2 * violation(p)


@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("whole_array", [False, True], ids=["numba", "whole-array"])
def test_certificate_polish_is_fista_on_the_violation(isotropic, whole_array):
    """The polish equals POLISH_STEPS FISTA steps on ½‖(c + Dᵀp)₋‖² projected on the
    ball, written here from the definitions (D, Dᵀ from tests/reference.py), on the fused
    passes and on the whole-array backend; a 3-D volume with anisotropic spacing."""
    from reference import _adjoint_diff, _forward_diff

    from tvnumba._validate import make_plan
    from tvnumba.backends import select
    from tvnumba.backends.array import TVOps
    from tvnumba.solvers import Identity
    from tvnumba.solvers import _kl_gap
    from tvnumba.solvers.data_terms import PoissonLoss

    b, w, spacing = 1.0, 0.3, (2.0, 1.0, 1.0)
    rng = np.random.default_rng(4)
    y = rng.poisson(5.0, (6, 9, 8)).astype(float)
    plan = make_plan(y, 1.0, name="image", spacing=spacing, isotropic=isotropic)
    backend = select(y, None, solver=True).for_plan(plan)
    term = Identity(backend.canonical(y, plan)).with_loss(PoissonLoss(), b).bind(backend)
    tvo = TVOps(np, plan, np.float64) if whole_array else backend.tv_ops(plan, np.float64)
    cert = _kl_gap.Certificate(term, tvo, w)
    shape = term.f.shape
    axes = (2, 3, 4)
    hs = spacing
    p = [rng.uniform(-w, w, shape) / 2 for _ in axes]
    for q, ax in zip(p, axes):
        q[tuple(slice(None) if a != ax else -1 for a in range(5))] = 0
    c = rng.normal(0.0, 0.3, shape)

    def div(p):
        return sum(_adjoint_diff(q, ax, h) for q, ax, h in zip(p, axes, hs))

    def project(p):
        if isotropic:
            scale = np.maximum(np.sqrt(sum(q * q for q in p)) / w, 1.0)
            return [q / scale for q in p]
        return [np.clip(q, -w, w) for q in p]

    step = 1.0 / (4.0 * sum(1 / (h * h) for h in hs))
    q = yk = [a.copy() for a in p]
    t = 1.0
    for _ in range(_kl_gap.POLISH_STEPS):
        v = -np.minimum(c + div(yk), 0)
        new = project([a + step * _forward_diff(v, ax, h) for a, ax, h in zip(yk, axes, hs)])
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        yk = [a + (t - 1.0) / t_new * (a - b_) for a, b_ in zip(new, q)]
        q, t = new, t_new
    got = cert._polish([a.copy() for a in p], c)
    for g, r in zip(got, q):
        assert_allclose(g, r, rtol=0, atol=1e-12)
    assert np.linalg.norm(np.minimum(c + div(got), 0)) < np.linalg.norm(np.minimum(c + div(p), 0))


def test_deconvolve_float32_follows_float64():
    x, psf = _scene(32), _psf()
    y = _counts(x, 2.0, seed=8, psf=psf)
    u64, i64 = tvnumba.deconvolve_tv_beta(y.astype(np.float64), psf, 0.2, noise="poisson",
                                          background=2.0, return_info=True)
    u32, i32 = tvnumba.deconvolve_tv_beta(y.astype(np.float32), psf, 0.2, noise="poisson",
                                          background=2.0, return_info=True)
    assert u32.dtype == np.float32 and i32.converged and i64.converged
    assert_allclose(i32.objective, i64.objective, rtol=2e-3)
    assert np.abs(u32 - u64).max() < 0.05 * x.max()


def test_deconvolve_beats_richardson_lucy_at_low_counts():
    """A piecewise-constant scene at 10 photons: TV with the Poisson likelihood is closer
    to the scene than Richardson-Lucy at its best iteration count."""
    from skimage.restoration import richardson_lucy

    x, psf, b = _scene(48), _psf(7, 1.5), 1.0
    y = _counts(x, b, seed=9, psf=psf)
    u = tvnumba.deconvolve_tv_beta(y, psf, 0.3, noise="poisson", background=b)
    err_tv = np.abs(u - x).mean()
    scale = float(y.max())
    err_rl = min(np.abs(scale * richardson_lucy(np.maximum(y - b, 0) / scale, psf, k,
                                                clip=False) - x).mean() for k in (2, 5, 10, 20))
    assert err_tv < 0.8 * err_rl


# --------------------------------------------------------------------------- any operator
def test_solve_matrix_sparse_and_callable_agree():
    from scipy import sparse

    M = sum(np.eye(48, k=k) for k in (-1, 0, 1)) / 3
    y = np.random.default_rng(10).poisson(M @ np.repeat([1.0, 8.0, 3.0], 16) + 1.0)
    kw = dict(noise="poisson", background=1.0, eps=1e-5, return_info=True)
    u1, i1 = tvnumba.solve_tv_beta(M, y, 0.5, **kw)
    u2, i2 = tvnumba.solve_tv_beta(sparse.csr_matrix(M), y, 0.5, **kw)
    u3, i3 = tvnumba.solve_tv_beta(lambda v: M @ v, y, 0.5, AT=lambda r: M.T @ r, **kw)
    assert i1.converged and i2.converged and i3.converged
    assert_allclose(i1.objective, _objective_1d(u1, M, y, 1.0, 0.5), rtol=1e-10)
    for u in (u2, u3):
        assert np.abs(u - u1).max() < 0.05


def _objective_1d(u, M, y, b, weight):
    return ref_kl(M @ u, y, b) + weight * ref_tv(u)


# --------------------------------------------------------------------------- weight="auto"
def test_auto_weight_is_near_the_best_of_a_grid():
    """PURE's weight on a 10-photon blur: within 1 dB of the best of a weight grid."""
    x, psf, b = _scene(40), _psf(), 1.0
    y = _counts(x, b, seed=11, psf=psf)

    def psnr(u):
        return 10 * np.log10(x.max() ** 2 / np.mean((u - x) ** 2))

    grid = [psnr(tvnumba.deconvolve_tv_beta(y, psf, w, noise="poisson", background=b))
            for w in (0.05, 0.1, 0.2, 0.4, 0.8)]
    u, info = tvnumba.deconvolve_tv_beta(y, psf, "auto", noise="poisson", background=b,
                                         return_info=True)
    assert info.sigma is None and 0.01 < info.weight < 5
    assert psnr(u) > max(grid) - 1.0


def test_auto_weight_after_a_3d_blur_is_near_the_best_of_a_grid():
    """On a blurred volume (smooth blobs, 100 photons, the field of view of a larger
    scene) the blur-weighted risk's weight is within 0.3 dB of the best of a grid; the
    risk of the predicted counts chose half the best weight here (0.6 dB below)."""
    from scipy.ndimage import gaussian_filter
    from scipy.signal import fftconvolve
    from skimage.data import binary_blobs

    n, m, photons, b = 20, 4, 100.0, 2.0
    scene = gaussian_filter(binary_blobs(n + 2 * m, n_dim=3, volume_fraction=0.2,
                                         rng=2).astype(float), 1.0) + 0.05
    g = np.exp(-0.5 * (np.arange(7) - 3) ** 2 / 1.5**2)
    psf = g[:, None, None] * g[None, :, None] * g[None, None, :]
    psf /= psf.sum()
    inside = (slice(m, m + n),) * 3
    mean = fftconvolve(photons * scene, psf, mode="same")[inside]  # the scene, not under test
    x = photons * scene[inside]
    y = np.random.default_rng(0).poisson(mean + b)

    def psnr(u):
        return 10 * np.log10(photons**2 / np.mean((u - x) ** 2))

    grid = {w: psnr(tvnumba.deconvolve_tv_beta(y, psf, w, noise="poisson", background=b))
            for w in (0.0025, 0.005, 0.01, 0.02, 0.04)}
    u, info = tvnumba.deconvolve_tv_beta(y, psf, "auto", noise="poisson", background=b,
                                         return_info=True)
    best = max(grid, key=grid.get)
    assert psnr(u) > grid[best] - 0.3
    assert best / 2 < info.weight < 2 * best


def test_auto_weight_final_solve_starts_from_the_search():
    """The final solve starts from the search's iterates at the chosen weight: it agrees
    with a cold solve at that weight (same certificate, objective within the bound)."""
    x, b = _scene(32), 1.0
    y = _counts(x, b, seed=12)
    u, info = tvnumba.denoise_tv_beta(y, "auto", noise="poisson", background=b,
                                      return_info=True)
    cold_u, cold = tvnumba.denoise_tv_beta(y, info.weight, noise="poisson", background=b,
                                           return_info=True)
    assert info.converged and info.gap <= 1e-3 and info.iterations <= cold.iterations
    assert abs(info.objective - cold.objective) <= 1e-3 * min(info.objective, cold.objective)
    assert_allclose(info.objective, ref_kl(u, y, b) + info.weight * ref_tv(u), rtol=1e-9)


def test_warm_start_reaches_the_same_certified_objective():
    """A solve started from a neighbouring weight's iterates (``p`` scaled into the new
    ball) is certified like a cold one, and the iterates it leaves start a repeat."""
    from dataclasses import replace

    from tvnumba.restoration._core import poisson_term, prepare
    from tvnumba.solvers import Identity, WarmStart, solve

    y = _counts(_scene(32), 1.0, seed=13)
    backend, f, plan = prepare(y, 1.0, device=None, channel_axis=None, spacing=1.0,
                               isotropic=True, smoothing=0.0, counts=True)

    def run(weight, warm=None):
        term = poisson_term(Identity(backend.canonical(f, plan)), f, plan, backend, 1.0)
        return solve(term, weight, backend=backend, plan=plan, method="cp", eps=1e-5,
                     warm=warm)[1]

    warm = WarmStart()
    first = run(0.4, warm)
    assert warm.u is not None and warm.weight == 0.4
    near, cold = run(0.5, replace(warm)), run(0.5)
    assert near.converged and cold.converged and near.bound
    assert abs(near.objective - cold.objective) <= 1e-5 * cold.objective * 1.01
    again = run(0.4, warm)
    assert again.converged and again.iterations < first.iterations


def test_residual_ratio_is_that_of_the_dense_operator():
    """The step-balance ratio ``‖P‖_T / ‖D‖_Σ`` of the Poisson denoising step, against
    dense matrices: ``K = [D_y; D_x; −I]`` (the loss's dual enters as ``1 − r``),
    ``P = T⁻¹Δu − KᵀΔy``, ``D = Σ⁻¹Δy − KΔu`` on the differences that exist."""
    from reference import _forward_diff

    from tvnumba.restoration._core import poisson_term, prepare
    from tvnumba.solvers import Identity, pdhg

    rng = np.random.default_rng(4)
    y = rng.poisson(5.0, (6, 5))
    backend, f, plan = prepare(y, 1.0, device=None, channel_axis=None, spacing=1.0,
                               isotropic=True, smoothing=0.0, counts=True)
    term = poisson_term(Identity(backend.canonical(f, plan)), f, plan, backend, 1.0)
    tvo = backend.tv_ops(plan, np.float64)
    shape = term.f.shape
    u, ut = rng.random(shape), rng.random(shape)
    p, pt = tvo.field(shape), tvo.field(shape)
    for q in (p, pt):  # zero on the last slice of each axis, as the iterates are
        q[0][..., :-1, :] = rng.standard_normal(shape)[..., :-1, :]
        q[1][..., :, :-1] = rng.standard_normal(shape)[..., :, :-1]
    r, rt = rng.random(shape), rng.random(shape)
    tau = rng.random(shape) + 0.5
    sig_d = np.ones((shape[0], 1) + shape[2:]) * 0.3
    sig_d[..., -1, -1] = 0.0  # no difference leaves the last pixel
    sig_a = rng.random(shape) + 0.5
    ratio = pdhg._residual_ratio(term, tvo, (u, p, r), (ut, pt, rt), tau, sig_d, sig_a)

    n = y.size
    eye = np.eye(n)
    Dy = np.stack([_forward_diff(e.reshape(y.shape), 0, 1.0).ravel() for e in eye], axis=1)
    Dx = np.stack([_forward_diff(e.reshape(y.shape), 1, 1.0).ravel() for e in eye], axis=1)
    K = np.vstack([Dy, Dx, -eye])
    du = (u - ut).ravel()
    dy = np.concatenate([(p[0] - pt[0]).ravel(), (p[1] - pt[1]).ravel(), (r - rt).ravel()])
    prim = du / tau.ravel() - K.T @ dy
    s = np.concatenate([np.broadcast_to(sig_d, shape).ravel()] * 2 + [sig_a.ravel()])
    exists = np.concatenate([np.abs(Dy).sum(1) > 0, np.abs(Dx).sum(1) > 0,
                             np.ones(n, bool)]) & (s > 0)
    dual = np.where(exists, dy / np.where(exists, s, 1) - K @ du, 0)
    want = np.sqrt(np.sum(tau.ravel() * prim**2) / np.sum(np.where(exists, s, 0) * dual**2))
    assert_allclose(ratio, want, rtol=1e-12)


def test_step_balance_speeds_up_a_volume_and_stays_certified(monkeypatch):
    """A blurred volume at 1000 photons: the balanced steps reach the certified gap in
    under a quarter of the iterations of the fixed ones (a tenth here), at the same
    objective within the bound."""
    from scipy.ndimage import gaussian_filter
    from skimage.data import binary_blobs

    from tvnumba.solvers import pdhg

    from scipy.signal import fftconvolve

    n, b = 16, 2.0
    scene = 1000 * gaussian_filter(binary_blobs(n, n_dim=3, volume_fraction=0.2,
                                                rng=1).astype(float), 1.0)
    g = np.exp(-0.5 * (np.arange(7) - 3) ** 2 / 1.5**2)
    psf = g[:, None, None] * g[None, :, None] * g[None, None, :]
    psf /= psf.sum()
    y = np.random.default_rng(0).poisson(fftconvolve(scene, psf, mode="same") + b)
    kw = dict(noise="poisson", background=b, return_info=True)
    u, info = tvnumba.deconvolve_tv_beta(y, psf, 0.003, **kw)
    monkeypatch.setattr(pdhg, "MAX_BALANCE_CHANGES", 0)
    u0, info0 = tvnumba.deconvolve_tv_beta(y, psf, 0.003, **kw)
    assert info.converged and info0.converged and info.bound
    assert 4 * info.iterations < info0.iterations
    low = min(info.objective, info0.objective)
    assert info.objective - low <= info.gap * low and info0.objective - low <= info0.gap * low
    assert u.min() >= 0


# --------------------------------------------------------------------------- β > 1
def _reference_minimum(y, b, weight, beta, isotropic, psf=None):
    """min over u ≥ 0 of the Poisson-TV_β objective by SciPy's L-BFGS-B on the float64
    reference (β > 1: smooth on the open orthant where b > 0)."""
    from scipy.optimize import minimize

    from reference import ref_tv_grad

    shape = y.shape if psf is None else tuple(n + m - 1 for n, m in zip(y.shape, psf.shape))

    def fun(v):
        u = v.reshape(shape)
        z = u if psf is None else ref_blur_valid(u, psf)
        g = ref_kl_grad(z, y, b)
        if psf is not None:  # the adjoint of the 'valid' blur: a 'full' correlation
            from scipy.signal import correlate
            g = correlate(g, psf, mode="full")
        value = ref_kl(z, y, b) + weight * ref_tv(u, beta, isotropic=isotropic)
        return value, (g + weight * ref_tv_grad(u, beta, isotropic=isotropic)).ravel()

    start = np.full(shape, max(float(np.mean(y)) - b, 0.1))
    res = minimize(fun, start.ravel(), jac=True, method="L-BFGS-B",
                   bounds=[(0, None)] * start.size,
                   options=dict(maxiter=50000, maxfun=100000, ftol=1e-15, gtol=1e-11))
    return res.fun


@pytest.mark.parametrize("beta, weight, isotropic", [(1.5, 0.05, True), (2.0, 0.02, True),
                                                     (2.0, 0.02, False), (3.0, 0.002, True),
                                                     (1.3, 0.1, False)])
def test_power_tv_denoise_reaches_the_reference_minimum(beta, weight, isotropic):
    """β > 1: the primal–dual with the conjugate's radial step reaches the minimum of the
    float64 reference objective, and its gap bounds the distance to it."""
    x, b = _scene(20, peak=15.0), 0.5
    y = _counts(x, b, seed=1)
    u, info = tvnumba.denoise_tv_beta(y, weight, beta=beta, noise="poisson", background=b,
                                      isotropic=isotropic, eps=1e-6, return_info=True)
    ref = _reference_minimum(y, b, weight, beta, isotropic)
    value = ref_kl(u, y, b) + weight * ref_tv(u, beta, isotropic=isotropic)
    assert info.converged and info.bound and info.method == "cp" and info.gap <= 1e-6
    assert u.min() >= 0
    assert_allclose(info.objective, value, rtol=1e-9)
    assert (value - ref) / ref <= info.gap + 1e-9  # the gap is a bound
    assert abs(value - ref) / ref <= 1e-6


def test_power_tv_deconvolution_reaches_the_reference_minimum():
    """β = 2 deconvolution (the extended grid) against the reference minimum."""
    x, b, psf = _scene(16, peak=20.0), 1.0, _psf(5, 1.0)
    y = _counts(x, b, seed=3, psf=psf)
    weight = 0.01
    u, info = tvnumba.deconvolve_tv_beta(y, psf, weight, beta=2.0, noise="poisson",
                                         background=b, eps=1e-6, return_info=True)
    ref = _reference_minimum(y, b, weight, 2.0, True, psf=psf)
    assert info.converged and info.bound and info.gap <= 1e-6 and u.min() >= 0
    assert (info.objective - ref) / ref <= info.gap + 1e-9
    assert abs(info.objective - ref) / ref <= 1e-6


def test_power_radius_solves_its_equation():
    """The radius of the conjugate's proximal step: ``t + c t^(β−1) = m``."""
    from tvnumba.backends.array import _power_radius
    from tvnumba.backends.cpu.solver_kernels import _power_radius as radius1

    m = np.concatenate([[0.0], np.logspace(-8, 6, 30)])
    for beta in (1.05, 1.1, 1.5, 1.7, 2.0, 2.5, 3.0, 4.0, 6.0):
        for c in np.logspace(-6, 6, 7):
            t = _power_radius(np, m, c, beta)
            assert np.all(t >= 0) and t[0] == 0
            assert_allclose(t + c * t ** (beta - 1), m, rtol=1e-12, atol=0)
            # the Numba kernels' scalar form (run here as Python)
            assert_allclose([radius1(x, c, beta) for x in m[1:]], t[1:], rtol=1e-12)


def test_power_tv_float32_3d_and_the_weight_trade_off():
    """β = 2 on a float32 volume: certified, u ≥ 0, float32 kept, close to float64; a
    larger weight gives a smoother result (a smaller TV_2)."""
    rng = np.random.default_rng(4)
    x = np.full((10, 12, 14), 3.0)
    x[3:7, 4:9, 5:11] = 12.0
    y = rng.poisson(x).astype(np.float32)
    u32 = tvnumba.denoise_tv_beta(y, 0.05, beta=2.0, noise="poisson", eps=1e-5)
    u64, info = tvnumba.denoise_tv_beta(y.astype(np.float64), 0.05, beta=2.0, noise="poisson",
                                        eps=1e-5, return_info=True)
    assert u32.dtype == np.float32 and info.converged and u32.min() >= 0
    assert_allclose(u32, u64, atol=2e-3 * float(x.max()))
    smoother = tvnumba.denoise_tv_beta(y.astype(np.float64), 0.5, beta=2.0, noise="poisson")
    assert ref_tv(smoother, 2.0) < 0.5 * ref_tv(u64, 2.0)


# --------------------------------------------------------------------------- errors
def test_errors_name_the_argument():
    y = np.ones((8, 8))
    with pytest.raises(ValueError, match="counts >= 0"):
        tvnumba.denoise_tv_beta(y - 2, 0.1, noise="poisson")
    with pytest.raises(ValueError, match="noise must be one of"):
        tvnumba.denoise_tv_beta(y, 0.1, noise="gauss")
    with pytest.raises(ValueError, match="background"):
        tvnumba.denoise_tv_beta(y, 0.1, noise="poisson", background=-1.0)
    with pytest.raises(ValueError, match=r"background must be a number or an array"):
        tvnumba.denoise_tv_beta(y, 0.1, noise="poisson", background=np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"noise='poisson'.*method='cp' with beta >= 1"):
        tvnumba.denoise_tv_beta(y, 0.1, beta=0.5, noise="poisson")
    with pytest.raises(ValueError, match=r"method='cp' with beta >= 1 and smoothing=0"):
        tvnumba.denoise_tv_beta(y, 0.1, beta=1.5, smoothing=0.1, noise="poisson")
    with pytest.raises(ValueError, match=r"method='cp' solves the poisson loss with beta >= 1"):
        tvnumba.denoise_tv_beta(y, 0.1, beta=0.5, noise="poisson", method="cp")
    with pytest.raises(ValueError, match="psf must be >= 0"):
        tvnumba.deconvolve_tv_beta(y, np.array([[-0.1, 1.2, -0.1]]), 0.1, noise="poisson")
    with pytest.raises(ValueError, match="A must be >= 0"):
        tvnumba.solve_tv_beta(-np.eye(8), np.ones(8), 0.1, noise="poisson")


def test_whole_array_backend_follows_the_host(monkeypatch):
    """The Poisson solves run on whole-array operations of the backend's module (the
    code a CuPy image runs): on the whole-array backend with NumPy they take the same
    iterations to the same objective and image as on the host."""
    from tvnumba.backends.array import ArrayBackend
    from tvnumba.restoration import _core

    x, psf, b = _scene(24), _psf(), 1.0
    y = _counts(x, b, seed=3, psf=psf)
    calls = [lambda: tvnumba.denoise_tv_beta(y, 0.5, noise="poisson", background=b,
                                             return_info=True),
             lambda: tvnumba.deconvolve_tv_beta(y, psf, 0.3, noise="poisson", background=b,
                                                return_info=True)]
    host = [call() for call in calls]
    monkeypatch.setattr(_core, "select", lambda image, device, solver=True: ArrayBackend(np))
    for call, (u_h, info_h) in zip(calls, host):
        u_a, info_a = call()
        assert info_a.converged and info_a.iterations == info_h.iterations
        assert_allclose(info_a.objective, info_h.objective, rtol=1e-12)
        assert_allclose(u_a, u_h, rtol=0, atol=1e-12 * np.ptp(u_h))


def test_dask_needs_depth():
    da = pytest.importorskip("dask.array")
    import dask

    y = _counts(_scene(48), 1.0, seed=12)
    with pytest.raises(ValueError, match="depth="):
        tvnumba.denoise_tv_beta(da.from_array(y, chunks=24), 0.3, noise="poisson")
    with dask.config.set(scheduler="sync"):
        u = tvnumba.denoise_tv_beta(da.from_array(y, chunks=24), 0.3, noise="poisson",
                                    background=1.0, depth=24).compute()
    ref = tvnumba.denoise_tv_beta(y, 0.3, noise="poisson", background=1.0)
    assert np.abs(u - ref).max() < 0.05 * ref.max()


# --------------------------------------------------------------------------- properties
@settings(max_examples=8, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(0.05, 2.0), st.floats(0.0, 3.0))
def test_certified_and_nonnegative_on_random_counts(seed, weight, b):
    rng = np.random.default_rng(seed)
    y = rng.poisson(rng.random((10, 9)) * 6 + b)
    u, info = tvnumba.denoise_tv_beta(y, weight, noise="poisson", background=b,
                                      return_info=True)
    assert info.converged and u.min() >= 0
    assert np.isfinite(info.objective)
    start = _objective(np.maximum(y - b, 0) + 1e-6, y, b, weight)
    assert info.objective <= start + 1e-9


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1), st.floats(1.1, 3.0), st.floats(0.01, 1.0),
       st.floats(0.0, 3.0))
def test_power_tv_certified_and_nonnegative_on_random_counts(seed, beta, weight, b):
    """β > 1: certified, u ≥ 0, the objective below the start's and equal to the reference's
    at the returned u (b = 0 included: zero counts under a zero model)."""
    rng = np.random.default_rng(seed)
    y = rng.poisson(rng.random((9, 8)) * 6 + b)
    u, info = tvnumba.denoise_tv_beta(y, weight, beta=beta, noise="poisson", background=b,
                                      return_info=True)
    assert info.converged and info.bound and u.min() >= 0
    value = ref_kl(u, y, b) + weight * ref_tv(u, beta)
    assert_allclose(info.objective, value, rtol=1e-9)
    start = np.maximum(y - b, 0) + 1e-6
    assert value <= ref_kl(start, y, b) + weight * ref_tv(start, beta) + 1e-9


# --------------------------------------------------------------------------- weight = 0
def test_weight_zero_denoising_is_the_counts_minus_background():
    y = np.random.default_rng(7).poisson(3.0, (12, 14))
    u, info = tvnumba.denoise_tv_beta(y, 0.0, noise="poisson", background=1.5,
                                      return_info=True)
    assert_allclose(u, np.maximum(y - 1.5, 0.0))
    assert info.converged and info.method == "exact"
    # the minimiser: the KL gradient is 0 where u > 0 and >= 0 at the bound u = 0
    g = ref_kl_grad(u, y, 1.5)
    assert np.all(np.abs(g[u > 0]) < 1e-12) and np.all(g[u == 0] >= 0)


def test_weight_zero_poisson_deconvolution_is_refused_with_the_reason():
    y = np.random.default_rng(8).poisson(5.0, (16, 16))
    with pytest.raises(ValueError, match="weight=0.*richardson_lucy"):
        tvnumba.deconvolve_tv_beta(y, np.full((3, 3), 1 / 9), 0.0, noise="poisson")
