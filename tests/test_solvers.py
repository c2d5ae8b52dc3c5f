"""The solvers (tvnumba.solvers): Chambolle-Pock, L-BFGS, MM and DCT, the fused CPU
Chambolle-Pock pass, and every solver on the Numba CPU and whole-array backends.

Through denoising: stopping rules and certificates, iteration caps, the exact finishes of
Chambolle-Pock, reproducibility and peak memory.  The one-pass Chambolle-Pock iteration of
the CPU backend against its two passes.  The whole-array backend
(``tvnumba.backends.array``, run with NumPy) beside the Numba CPU backend through the
solver entry ``tvnumba.solvers.solve``.  Optimality is recomputed here from ``tvnumba.tv``
/ ``tv_grad``, never taken from the solver's own report."""

from __future__ import annotations

import math
import tracemalloc

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage import data, img_as_float

import tvnumba
from tvnumba._validate import make_plan
from tvnumba.backends.array import ArrayBackend, ArrayOps, MMArray
from tvnumba.backends.cpu import CPNumba, CpuBackend, MMNumba
from tvnumba.backends.cpu import vector_kernels
from tvnumba.restoration import denoise_tv_beta
from tvnumba.solvers import Identity, solve
from tvnumba.solvers._box import PixelBox
from tvnumba.solvers.primal_dual import CP_GAMMA, STEP_RATIO, _d_norm

BACKENDS = {"cpu": CpuBackend, "array": lambda: ArrayBackend(np)}


def objective(u, f, weight, beta=1.0, **kw):
    r = np.asarray(u, np.float64) - np.asarray(f, np.float64)
    return 0.5 * float(np.sum(r * r)) + weight * tvnumba.tv(np.asarray(u, np.float64), beta,
                                                            **kw)


def certificate(u, f, weight, beta, **kw):
    """½‖∇F‖² / (F − ½‖∇F‖²), recomputed from tv_grad."""
    u64 = np.asarray(u, np.float64)
    g = (u64 - f) + weight * tvnumba.tv_grad(u64, beta, **kw)
    half = 0.5 * float(np.sum(g * g))
    return half / (objective(u, f, weight, beta, **kw) - half)


def denoise_on(backend, f, weight, beta, *, channel_axis=None, spacing=1.0, isotropic=True,
               smoothing=0.0, **solve_kw):
    """``denoise_tv_beta`` through the solver entry on a given backend."""
    plan = make_plan(f, beta, channel_axis=channel_axis, spacing=spacing, isotropic=isotropic,
                     smoothing=smoothing)
    if backend.name == "cpu":
        backend = backend.for_plan(plan)
    u5, info = solve(Identity(backend.canonical(f, plan)), weight, backend=backend, plan=plan,
                     **solve_kw)
    return plan.from_canonical(u5).copy(), info


@pytest.fixture(scope="module")
def camera():
    rng = np.random.default_rng(0)
    f = img_as_float(data.camera()[::4, ::4])
    return f + 0.1 * rng.standard_normal(f.shape)


@pytest.fixture(scope="module")
def small_camera():
    rng = np.random.default_rng(0)
    f = img_as_float(data.camera()[::8, ::8])
    return f + 0.1 * rng.standard_normal(f.shape)


def _random_camera_crop(seed, shape=(96, 80)):
    """A random crop of the camera image with white noise of σ = 0.1."""
    rng = np.random.default_rng(seed)
    cam = img_as_float(data.camera())
    i, j = rng.integers(0, 512 - shape[0]), rng.integers(0, 512 - shape[1])
    g = cam[i:i + shape[0], j:j + shape[1]]
    return g + 0.1 * rng.standard_normal(g.shape)


def _camera_crop():
    """A 96×80 crop of the camera image with white noise of σ = 0.1."""
    g = img_as_float(data.camera()[100:196, 200:280])
    return g + 0.1 * np.random.default_rng(6).standard_normal(g.shape)


def _iso_tv(u):
    gx = np.zeros_like(u)
    gy = np.zeros_like(u)
    gx[:, :-1] = np.diff(u, axis=1)
    gy[:-1] = np.diff(u, axis=0)
    return float(np.sqrt(gx * gx + gy * gy).sum())


# --------------------------------------------------------------------------- Chambolle-Pock
def test_cp_converges_with_defaults_on_a_camera_crop():
    """Anisotropic, weight 3, default eps = 1e-3: converged, with the gap within eps."""
    f = _camera_crop()
    u, info = tvnumba.denoise_tv_beta(f, weight=3.0, isotropic=False, return_info=True)
    assert info.converged and info.gap <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_cp_float64_converges_on_everyday_cases(seed):
    """Weights 0.03-3, iso and aniso, eps = 1e-4: float64 never gives up above rounding."""
    f = _random_camera_crop(seed)
    weight = float(np.geomspace(0.03, 3.0, 6)[seed])
    for iso in (True, False):
        u, info = tvnumba.denoise_tv_beta(f, weight, isotropic=iso, eps=1e-4, return_info=True)
        assert info.converged, (weight, iso, info)


@pytest.mark.parametrize("eps,cap", [(1e-3, 10000), (1e-4, 10000), (1e-6, 50000),
                                     (1e-8, 500000)])
def test_cp_default_cap_grows_as_one_over_root_eps(eps, cap):
    from tvnumba.solvers import SOLVERS

    assert SOLVERS["cp"].cap(eps) == cap
    assert SOLVERS["lbfgs"].cap(eps) == 3000 and SOLVERS["mm"].cap(eps) == 200


def test_cp_stops_when_float32_rounding_stalls_the_gap(camera):
    """eps below float32's reach: Chambolle-Pock gives up once the best gap stops
    improving (CP_STALL_CHECKS checks), long before max_num_iter, not converged."""
    f32 = camera.astype(np.float32)
    u, info = denoise_tv_beta(f32, 0.1, eps=1e-10, max_num_iter=20000, return_info=True)
    assert not info.converged and info.iterations < 10000
    assert info.gap < 1e-5  # it got as far as float32 allows
    u64, info64 = denoise_tv_beta(camera, 0.1, eps=1e-8, max_num_iter=20000,
                                  return_info=True)
    assert info64.converged  # float64 keeps improving: no false stall


# ------------------------------------------------------------- Chambolle-Pock: exact finishes
def test_cp_anisotropic_tight_eps_converges_by_exact_finish():
    """Aniso, weight 3, eps = 1e-8 on the camera crop: Chambolle-Pock alone is not there
    within 20 000 iterations; with the exact finish (solvers/_polish.py) it converges in
    fewer than 10 000, the answer's own objective and certificate are those reported, and
    a long run without the finish reaches the same image."""
    f = _camera_crop()
    u, info = tvnumba.denoise_tv_beta(f, 3.0, isotropic=False, eps=1e-8, return_info=True)
    assert info.converged and info.gap <= 1e-8 and info.iterations < 10000, info
    tv1 = float(np.abs(np.diff(u, axis=0)).sum() + np.abs(np.diff(u, axis=1)).sum())
    assert_allclose(0.5 * float(((u - f) ** 2).sum()) + 3.0 * tv1, info.objective, rtol=1e-12)
    # the same problem without the finish, run long: the same image
    from tvnumba.solvers import primal_dual

    start = primal_dual.POLISH_START
    primal_dual.POLISH_START = float("inf")
    try:
        u_cp, info_cp = tvnumba.denoise_tv_beta(f, 3.0, isotropic=False, eps=1e-8,
                                                max_num_iter=6000, return_info=True)
    finally:
        primal_dual.POLISH_START = start
    assert info_cp.objective >= info.objective * (1 - 1e-8)
    assert_allclose(u_cp, u, atol=2e-3)


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_cp_isotropic_capped_tight_solve_reports_its_own_gap(weight):
    """Iso, eps = 1e-8 on the camera crop with a cap of 10 000 iterations: CP is not
    converged there (gap 4e-8 at weight 1, 3e-7 at weight 3) and says so; the gap it
    reports bounds its distance to the default-cap solve's objective."""
    f = _camera_crop()
    u, info = tvnumba.denoise_tv_beta(f, weight, eps=1e-8, max_num_iter=10000,
                                      return_info=True)
    assert not info.converged and info.iterations == 10000 and info.gap > 1e-8, info
    objective = 0.5 * float(((u - f) ** 2).sum()) + weight * _iso_tv(u)
    assert_allclose(objective, info.objective, rtol=1e-12)
    u_ref, ref = tvnumba.denoise_tv_beta(f, weight, eps=1e-8, return_info=True)
    assert ref.converged
    assert info.objective >= ref.objective * (1 - 1e-8)
    assert info.objective - ref.objective <= info.gap * ref.objective * (1 + 1e-6)


def test_cp_isotropic_tight_eps_converges_with_the_default_cap():
    """Iso, weight 1, eps = 1e-8 on the camera crop: CP needs 18 450 iterations, more
    than 10 000; the default cap grows with 1/√eps (500 000 at 1e-8), so CP converges,
    to the objective it reports."""
    f = _camera_crop()
    u, info = tvnumba.denoise_tv_beta(f, 1.0, eps=1e-8, return_info=True)
    assert info.converged and info.gap <= 1e-8 and info.iterations > 10000, info
    assert_allclose(0.5 * float(((u - f) ** 2).sum()) + _iso_tv(u), info.objective,
                    rtol=1e-12)


def test_cp_isotropic_converges_on_its_own_at_tight_eps():
    """The crop at weight 0.3 and eps 1e-8, and at weight 1 and eps 1e-6: CP converges
    within the default cap."""
    u, info = tvnumba.denoise_tv_beta(_camera_crop(), 0.3, eps=1e-8, return_info=True)
    assert info.converged and info.iterations > 4000, info
    u, info = tvnumba.denoise_tv_beta(_camera_crop(), 1.0, eps=1e-6, return_info=True)
    assert info.converged and info.iterations > 2000


def test_cp_couples_channels_and_spacing_at_tight_eps():
    """Colour (|∇u| over the channels) and anisotropic spacing at eps 1e-8: certified
    by CP, and within the gaps' distance of a capped iterate."""
    f = _camera_crop()[:24, :20]
    rgb = np.stack([f, f[::-1], 0.5 * f], axis=-1)
    kw = dict(eps=1e-8, channel_axis=-1, spacing=(1.0, 2.0), return_info=True)
    u, info = tvnumba.denoise_tv_beta(rgb, 0.5, **kw)
    assert info.converged and info.gap <= 1e-8, info
    u_cp, info_cp = tvnumba.denoise_tv_beta(rgb, 0.5, max_num_iter=400, **kw)
    assert info_cp.objective >= info.objective * (1 - 1e-8)
    bound = np.sqrt(2 * info.objective * (info.gap + info_cp.gap)) * 2
    assert np.sqrt(((u - u_cp) ** 2).sum()) <= bound


# --------------------------------------------------------------------------- L-BFGS
@pytest.mark.parametrize("beta,smoothing", [(1.5, 0.0), (3.0, 0.0), (1.0, 0.05)])
def test_lbfgs_gradient_norm_optimality(camera, beta, smoothing):
    w = 0.1
    u, info = denoise_tv_beta(camera, w, beta, smoothing=smoothing, eps=1e-5,
                              return_info=True)
    assert info.method == "lbfgs" and info.converged
    g = (u - camera) + w * tvnumba.tv_grad(u, beta, smoothing=smoothing)
    F = objective(u, camera, w, beta, smoothing=smoothing)
    assert_allclose(info.objective, F, rtol=1e-9)
    assert 0.5 * np.sum(g * g) <= 1e-5 * F
    assert F < objective(camera, camera, w, beta, smoothing=smoothing)


# --------------------------------------------------------------------------- MM
@pytest.mark.parametrize("beta", [0.5, 0.8, 1.5])
def test_mm_monotone(camera, beta):
    hist = []
    u, info = denoise_tv_beta(camera, 0.1, beta, method="mm", return_info=True,
                              callback=lambda k, u, F: hist.append(F))
    assert info.method == "mm" and info.smoothing > 0 and len(hist) >= 2
    F0 = objective(camera, camera, 0.1, beta, smoothing=info.smoothing)
    seq = np.array([F0] + hist)
    assert np.all(np.diff(seq) <= 1e-10 * seq[0])
    assert_allclose(info.objective, objective(u, camera, 0.1, beta, smoothing=info.smoothing),
                    rtol=1e-6)


def test_mm_stops_when_stalled():
    """Two float32 pixels, β = 0.5, tiny internal smoothing: float32 cannot bring the
    gradient below eps; MM stops after MM_STALL steps without progress, not converged,
    instead of running to max_num_iter."""
    from tvnumba.solvers.mm import MM_STALL

    f = np.random.default_rng(2).random(2).astype(np.float32)
    u, info = denoise_tv_beta(f, 0.05, 0.5, eps=1e-4, isotropic=False, max_num_iter=2000,
                              return_info=True)
    assert not info.converged and info.gap > 1e-4
    assert info.iterations < 10 * MM_STALL
    u64, info64 = denoise_tv_beta(f.astype(np.float64), 0.05, 0.5, eps=1e-4,
                                  isotropic=False, max_num_iter=2000, return_info=True)
    assert info.objective <= info64.objective * (1 + 1e-3)


# --------------------------------------------------------------------------- DCT
def test_beta2_dct_is_exact(camera):
    w = 0.3
    u, info = denoise_tv_beta(camera, w, 2.0, return_info=True)
    assert info.method == "dct"
    g = (u - camera) + w * tvnumba.tv_grad(u, 2.0)
    assert np.abs(g).max() < 1e-10
    u_l = denoise_tv_beta(camera, w, 2.0, method="lbfgs", eps=1e-6)
    assert_allclose(u, u_l, atol=1e-3)
    # anisotropic spacing, colour
    rgb = np.stack([camera, camera.T, camera[::-1]], axis=-1)
    u = denoise_tv_beta(rgb, w, 2.0, spacing=(1.0, 0.5), channel_axis=-1)
    g = (u - rgb) + w * tvnumba.tv_grad(u, 2.0, spacing=(1.0, 0.5), channel_axis=-1)
    assert np.abs(g).max() < 1e-10


def test_dct_tiny_spacing_gives_the_limit_not_an_error():
    """spacing=1e-200 with beta=2 gives the limit, the mean image (no ZeroDivisionError)."""
    img = np.random.default_rng(0).random((16, 16))
    u = tvnumba.denoise_tv_beta(img, 0.1, 2, spacing=1e-200)
    assert_allclose(u, img.mean(), rtol=1e-12)


# --------------------------------------------------------------------------- every solver
CASES_REPRO = [(0.5, 0.04, {}), (1.0, 0.1, {}), (1.0, 0.1, {"isotropic": False}),
               (1.5, 0.25, {}), (2.0, 0.3, {}), (1.0, 0.1, {"smoothing": 0.01})]


@pytest.mark.parametrize("shape", [(64, 72), (9, 17, 21)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solves_are_bitwise_reproducible_whatever_the_thread_count(shape, dtype, monkeypatch):
    """Every sum is order-fixed (units from the pool's size, chunked vector sums, no
    ``part.sum()`` inside a parallel kernel, chunked elementwise loops): the same bits
    run after run although TBB schedules dynamically, and on 1 thread as on the pool."""
    monkeypatch.setenv("TVNUMBA_LOAD_AWARE", "0")
    f = np.random.default_rng(3).random(shape).astype(dtype)
    for beta, w, kw in CASES_REPRO:
        first = tvnumba.denoise_tv_beta(f, w, beta, **kw)
        np.testing.assert_array_equal(tvnumba.denoise_tv_beta(f, w, beta, **kw), first)
        with tvnumba.thread_limit(1):
            np.testing.assert_array_equal(tvnumba.denoise_tv_beta(f, w, beta, **kw), first)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method,beta,smoothing", [
    ("lbfgs", 1.5, 0.0), ("lbfgs", 1.0, 0.01), ("lbfgs", 1.2, 0.0),
    ("cp", 1.0, 0.0), ("mm", 0.5, 0.0), ("dct", 2.0, 0.0)])
def test_peak_memory_within_12x_the_input(method, beta, smoothing, dtype):
    """Every solver's peak allocation stays within 12x the input, float32 and float64
    (tracemalloc sees NumPy's allocations; the input itself is not counted)."""
    f = np.random.default_rng(0).random((256, 256)).astype(dtype)
    kw = dict(method=method, smoothing=smoothing, max_num_iter=5)
    tvnumba.denoise_tv_beta(f[:32, :32], 0.25, beta, **kw)  # compiled before tracing
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tvnumba.denoise_tv_beta(f, 0.25, beta, **kw)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak <= 12 * f.nbytes, f"{method} peak {peak / f.nbytes:.1f}x the input"


# --------------------------------------------------------------------------- fused CP pass
# The one-pass Chambolle-Pock iteration of the CPU backend (``CPNumba.step``,
# tvnumba.backends.cpu.solver_kernels.cp_fused_step) against its two passes (``dual_step``
# then ``primal_step``): the same iterates u, ū, p and the same residual, whatever the work
# units (thread count, rows per unit, one-row units).
SHAPES = [
    (1, 1, 1, 1, 300),   # 1-D
    (2, 3, 1, 1, 50),    # 1-D, batch, colour
    (1, 1, 1, 70, 40),   # 2-D, a short last unit
    (1, 1, 1, 33, 17),   # 2-D, a one-row last unit
    (2, 3, 1, 45, 19),   # 2-D, batch, colour
    (1, 3, 1, 200, 31),  # 2-D, colour, rows per unit depend on the threads
]
THREADS = sorted({1, 2, numba.config.NUMBA_NUM_THREADS})


def _states(shape, dtype, isotropic, weight):
    nd = 1 if shape[3] == 1 else 2
    rng = np.random.default_rng(3)
    f = rng.random(shape).astype(dtype)
    plan = make_plan(f, 1.0, axes=tuple(range(5 - nd, 5)), channel_axis=1,
                     spacing=(1 / 1.3, 1 / 0.8)[2 - nd:], isotropic=isotropic)
    assert plan.canonical_shape == shape
    return (CPNumba(f, weight, plan, identity=True), CPNumba(f, weight, plan, identity=True))


@pytest.mark.parametrize("threads", THREADS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_fused_step_matches_two_passes(shape, isotropic, dtype, threads):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("not that many threads")
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    with tvnumba.thread_limit(threads):
        two, one = _states(shape, dtype, isotropic, weight=0.08)
        assert one.fused
        lip = _d_norm(one.inv_spacing[-one.nd:])
        tau, sigma = STEP_RATIO / lip, 1.0 / (STEP_RATIO * lip)
        for it in range(1, 13):
            theta = 1.0 / math.sqrt(1.0 + 2.0 * CP_GAMMA * tau)
            want = it % 3 == 0
            two.dual_step(sigma)
            r2 = two.primal_step(tau, theta, want)
            r1 = one.step(sigma, tau, theta, want)
            assert_allclose(r1, r2, rtol=rtol)
            tau *= theta
            sigma /= theta
        scale = float(np.abs(two.u).max())
        assert_allclose(one.u, two.u, rtol=rtol, atol=rtol * scale)
        assert_allclose(one.ub, two.ub, rtol=rtol, atol=rtol * scale)
        assert_allclose(one.p, two.p, rtol=rtol, atol=rtol * 0.08)
        assert np.abs(two.p).max() > 0.05  # the projection was active
        # the two-pass methods leave a fused state consistent (snapshots refreshed)
        one.dual_step(sigma)
        one.primal_step(tau, 0.9, False)
        two.dual_step(sigma)
        two.primal_step(tau, 0.9, False)
        r1 = one.step(sigma, tau, 0.9, True)
        two.dual_step(sigma)
        assert_allclose(r1, two.primal_step(tau, 0.9, True), rtol=rtol)
        assert_allclose(one.u, two.u, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("shape,nd", [((1, 1, 1, 1, 23), 1), ((2, 3, 1, 9, 12), 2),
                                      ((1, 2, 5, 6, 7), 3), ((2, 1, 1, 40, 12), 2),
                                      ((1, 1, 5, 20, 7), 3)])
@pytest.mark.parametrize("om", [1.0, 1.9])
def test_cp_dual_step_with_relaxation(shape, nd, isotropic, dtype, om):
    """The mask solver's dual step of both backends, ``p ← p + ω (proj(p + σ D ū) − p)``,
    against the formula in float64 from tests/reference.py's differences; and the sums
    of the box gap of a diagonal data term at the projected ``p`` (the mask solver's
    stopping rule; for one channel also with the holes' residuals moved to known
    neighbours, against a pixel-by-pixel loop), and its primal step with the term's
    proximal step."""
    from reference import _adjoint_diff, _forward_diff, ref_tv

    from tvnumba.backends.array import CPArray

    rng = np.random.default_rng(8)
    ih = (0.7, 1.3, 0.9)[3 - nd:]
    axes = tuple(range(5 - nd, 5))
    f = rng.standard_normal(shape)
    plan = make_plan(f, 1.0, axes=axes, channel_axis=1, spacing=tuple(1 / h for h in ih),
                     isotropic=isotropic)
    ub = rng.standard_normal(shape)
    p0 = {ax: 0.2 * rng.standard_normal(shape) for ax in axes}
    for ax in axes:  # a field is zero on its last slice
        p0[ax][tuple(slice(None) if a != ax else -1 for a in range(5))] = 0
    w, sigma = 0.25, 0.4

    def project(fields):
        """The fields on the ball, and their per-pixel norm (isotropic)."""
        if not isotropic:
            return {ax: np.clip(q, -w, w) for ax, q in fields.items()}, None
        mag = np.sqrt(sum((q * q).sum(axis=1, keepdims=True) for q in fields.values()))
        return {ax: q * np.minimum(1, w / np.maximum(mag, 1e-300))
                for ax, q in fields.items()}, mag

    proj, _ = project({ax: p0[ax] + sigma * _forward_diff(ub, ax, 1 / h)
                       for ax, h in zip(axes, ih)})
    want = {ax: p0[ax] + om * (proj[ax] - p0[ax]) for ax in axes}
    back, mag = project(want)
    d = sum(_adjoint_diff(back[ax], ax, 1 / h) for ax, h in zip(axes, ih))
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    u = rng.standard_normal(shape).astype(dtype).astype(float)
    mk = np.where(rng.random(shape) < 0.3, 0.0, rng.random(shape)).astype(dtype).astype(float)
    fk = rng.standard_normal(shape).astype(dtype).astype(float)
    # the box gap's terms on a per-pixel box: known pixels [f/m ∓ κ/m²] within [lo, hi],
    # holes a range per label
    seen = mk > 0
    mm = np.where(seen, mk, 1.0)
    lo, hi, kappa = (fk / mm)[seen].min(), (fk / mm)[seen].max(), 0.3  # as pixel_box
    labels = np.where(seen, 0, rng.integers(1, 5, shape)).astype(np.int32)
    ends = np.sort(rng.uniform(lo, hi, (2, 5)), axis=0)
    box = PixelBox(lo, hi, kappa, labels, ends[0], ends[1])
    L = np.where(seen, np.maximum(fk / mm - kappa / mm**2, lo), ends[0][labels])
    H = np.where(seen, np.minimum(fk / mm + kappa / mm**2, hi), ends[1][labels])

    def dual_sum(d):
        """Σ_i D_i at ``Dᵀp = d``: the data-side dual q the best of the three points where
        the concave piecewise quadratic can peak (its pieces' vertices and the kink)."""
        def term(q):
            g = d + mk * q
            return -0.5 * q * q - q * fk - np.maximum(-g * L, -g * H)

        best = np.max([term(mk * L - fk), term(mk * H - fk), term(-d / mm)], axis=0)
        return np.sum(np.where(seen, best, term(0.0)))

    expect = [np.sum((mk * u - fk) ** 2), dual_sum(d),
              ref_tv(u, axes=axes, channel_axis=1, spacing=tuple(1 / h for h in ih),
                     isotropic=isotropic)]
    if shape[1] == 1:  # one channel: the holes' residuals can move to known neighbours
        moved = _moved_residuals(d, back, mk, axes, ih, w, isotropic)
        assert moved[~seen].std() < 0.9 * d[~seen].std()  # the move did something
        expect_moved = expect[:1] + [dual_sum(moved)] + expect[2:]
        assert expect_moved[1] >= expect[1] - 1e-12 * abs(expect[1])  # never lower
    tau, theta = 0.3, 0.8
    dt = sum(_adjoint_diff(want[ax], ax, 1 / h) for ax, h in zip(axes, ih))
    un = (u + tau * (mk * fk - dt)) / (1 + tau * mk**2)
    u_next, ub_next = u + om * (un - u), un + theta * (un - u)
    for state in (CPNumba(f.astype(dtype), w, plan, identity=False),
                  CPArray(np, f.astype(dtype), w, plan, identity=False)):
        fields = state.dual_fields()
        for ax, _, q in fields:
            q[...] = p0[ax]
        state.ub[...] = ub
        state.dual_step(sigma, om)
        fields = state.dual_fields()
        for ax, _, q in fields:
            assert_allclose(q, want[ax], rtol=rtol, atol=rtol)
        # the box gap's terms at (u, P(p)) for a diagonal term ½‖m ⊙ u − f‖², and TV₁(u)
        state.u[...] = u
        sums = state.masked_gap_sums(mk.astype(dtype), fk.astype(dtype), box)
        assert_allclose(sums, expect, rtol=20 * rtol)
        if shape[1] == 1:
            sums = state.masked_gap_sums(mk.astype(dtype), fk.astype(dtype), box, True)
            assert_allclose(sums, expect_moved, rtol=20 * rtol)
        # the primal step with the diagonal term's proximal step, relaxed by ω
        state.diagonal_step(tau, theta, om, mk.astype(dtype), fk.astype(dtype))
        assert_allclose(state.u, u_next, rtol=rtol, atol=10 * rtol)
        assert_allclose(state.ub, ub_next, rtol=rtol, atol=10 * rtol)
    if om != 1 and isotropic:
        assert mag.max() > w  # the relaxed field left the ball: the projection mattered


def _moved_residuals(d, v, m, axes, ih, w, isotropic):
    """``d = Dᵀv`` with each hole pixel's residual moved, pixel by pixel, to its known
    neighbour ahead along x, then along y, as far as the pixel's own dual stays in the
    ball (the masked gap's tighter dual point)."""
    out = d.copy()
    for idx in zip(*np.nonzero(m == 0)):
        own = {ax: v[ax][idx] for ax in axes}
        r = d[idx]
        for ax in (axes[-1], axes[-2]) if len(axes) > 1 else (axes[-1],):
            nb = list(idx)
            nb[ax] += 1
            nb = tuple(nb)
            if nb[ax] >= m.shape[ax] or m[nb] == 0:
                continue
            h = ih[axes.index(ax)]
            if isotropic:
                slack = np.sqrt(max(w * w - sum(c * c for c in own.values()) + own[ax] ** 2, 0))
                lo, hi = -own[ax] - slack, -own[ax] + slack
            else:
                lo, hi = -w - own[ax], w - own[ax]
            y = max(min(r / h, hi), 0.0) if r > 0 else min(max(r / h, lo), 0.0)
            own[ax] += y
            r -= h * y
            out[nb] += h * y
        out[idx] = r
    return out


def test_three_axes_keep_two_passes():
    f = np.random.default_rng(0).random((1, 1, 6, 7, 8))
    plan = make_plan(f, 1.0, axes=(2, 3, 4), channel_axis=1)
    assert not CPNumba(f, 0.1, plan, identity=True).fused
    plan2 = make_plan(f[:, :, 0], 1.0, axes=(2, 3), channel_axis=1)
    assert not CPNumba(f[:, :, :1], 0.1, plan2, identity=False).fused


# --------------------------------------------------------------------- CPU and array backends
# The whole-array backend is the code CuPy arrays run (with CuPy as the array module) and
# the path for more than three spatial axes; here it runs with NumPy beside the Numba CPU
# backend: each vector operation against the fused Numba kernel, each solver against the
# other backend and against optimality conditions recomputed from tv_grad.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_array_ops_match_numba_kernels(dtype):
    rng = np.random.default_rng(1)
    n = 1001
    A, N = ArrayOps(np), vector_kernels
    vec = [rng.standard_normal(n).astype(dtype) for _ in range(6)]
    rtol = 1e-5 if dtype == np.float32 else 1e-12

    def both(name, *args, outs=()):
        """Run op ``name`` on copies for both backends; compare returns and outputs."""
        res = []
        for ops in (A, N):
            a = [x.copy() if isinstance(x, np.ndarray) else x for x in args]
            ret = getattr(ops, name)(*a)
            res.append((ret, [a[i] for i in outs]))
        (ra, oa), (rn, on) = res
        if ra is not None and rn is not None:
            assert_allclose(np.ravel(ra), np.ravel(rn), rtol=rtol)
        for x, y in zip(oa, on):
            assert_allclose(x, y, rtol=rtol, atol=rtol)

    a, b, c, d, e, m = vec
    t = dtype(0.37)
    both("dot", a, b)
    both("sumsq_diff", a, b)
    both("residual_init", a, b, np.abs(m), c, outs=(3,))
    both("pcg_step", a, b, c, d, np.abs(m), t, outs=(0, 1))
    both("pcg_direction", a, b, np.abs(m), t, outs=(0,))
    both("axpy_to", a, b, t, c, outs=(0,))
    both("axpy", a, t, b, outs=(0,))
    both("axpy_norm", a, t, b, outs=(0,))
    both("extrapolate", a, b, c, t, dtype(1), outs=(0, 2))
    both("extrapolate", a, b, c, t, dtype(1.9), outs=(0, 2))
    for om in (1.0, 1.9):  # ub = un + θ(un − u), u ← u + ω(un − u)
        u, un, ub = a.copy(), b.copy(), c.copy()
        N.extrapolate(u, un, ub, t, dtype(om))
        assert_allclose(ub, b + t * (b - a), rtol=rtol, atol=rtol)
        assert_allclose(u, a + dtype(om) * (b - a), rtol=rtol, atol=rtol)
    # L-BFGS: a float64 iterate, gradients and direction in ``dtype``, float32 pairs
    f64 = [x.astype(np.float64) for x in vec]
    both("smooth_objective_grad", f64[0], b, c, 0.3, d, outs=(4,))
    # the TV gradient in place of the total one (gtv is g)
    for ops in (A, N):
        g = c.copy()
        fid, gg = ops.smooth_objective_grad(f64[0], b, g, 0.3, g)
        r = f64[0] - b.astype(np.float64)
        ref = r + 0.3 * c.astype(np.float64)
        assert_allclose(g, ref, rtol=rtol, atol=rtol)
        assert_allclose((fid, gg), (0.5 * r @ r, ref @ ref), rtol=1e-12)
    s32, y32 = np.empty(n, np.float32), np.empty(n, np.float32)
    both("lbfgs_pair", s32, y32, a, 0.25, b, c, outs=(0, 1))
    for ops in (A, N):  # s·y and y·y of the stored (rounded) vectors
        sy, yy = ops.lbfgs_pair(s32, y32, a, 0.25, b, c)
        s64, y64 = s32.astype(np.float64), y32.astype(np.float64)
        assert_allclose((sy, yy), (s64 @ y64, y64 @ y64), rtol=1e-12)
    S, Y = rng.standard_normal((2, 4, n))
    Y = S + 0.1 * Y  # positive curvature pairs
    S, Y = S.astype(np.float32), Y.astype(np.float32)
    rho = 1.0 / np.einsum("ij,ij->i", S.astype(np.float64), Y.astype(np.float64))
    order = np.array([2, 0, 3], dtype=np.int64)
    both("lbfgs_direction", a, S, Y, rho, order, 0.7, np.empty(n, dtype), np.zeros(4),
         outs=(6,))


CASES = [
    dict(),
    dict(isotropic=False),
    dict(spacing=(1.0, 0.6)),
]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("beta,method", [(1.0, "cp"), (1.5, "lbfgs"), (2.0, "dct"),
                                         (0.6, "mm"), (1.3, "mm")])
def test_array_backend_matches_numba(small_camera, kw, beta, method):
    w = 0.1
    smoothing = 0.02 if method == "mm" else 0.0
    u_a, info_a = denoise_on(BACKENDS["array"](), small_camera, w, beta, method=method,
                             smoothing=smoothing, eps=1e-6, **kw)
    u_n, info_n = denoise_on(BACKENDS["cpu"](), small_camera, w, beta, method=method,
                             smoothing=smoothing, eps=1e-6, **kw)
    assert info_a.method == info_n.method == method and info_a.converged
    tv_kw = dict(smoothing=smoothing, **kw)
    F_a = objective(u_a, small_camera, w, beta, **tv_kw)
    F_n = objective(u_n, small_camera, w, beta, **tv_kw)
    assert_allclose(info_a.objective, F_a, rtol=1e-9)
    assert_allclose(F_a, F_n, rtol=1e-5)
    if beta >= 1 and method != "cp":  # convex smooth: the gradient certificate holds
        assert certificate(u_a, small_camera, w, beta, **tv_kw) <= 1e-6 * (1 + 1e-6)
        assert_allclose(u_a, u_n, atol=2e-3)
    elif method == "cp":
        assert_allclose(u_a, u_n, atol=2e-3)


@pytest.mark.parametrize("method,beta", [("cp", 1.0), ("lbfgs", 1.5), ("mm", 0.7),
                                         ("dct", 2.0)])
@pytest.mark.parametrize("shape,channel_axis", [((40,), None), ((12, 13, 3), -1),
                                                ((3, 10, 11, 9), 0)])
@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_backend_shapes(backend, method, beta, shape, channel_axis):
    rng = np.random.default_rng(3)
    f = rng.random(shape).astype(np.float32)
    u, info = denoise_on(BACKENDS[backend](), f, 0.1, beta, method=method,
                         channel_axis=channel_axis, smoothing=0.02 if method == "mm" else 0.0,
                         eps=1e-5)
    assert u.shape == f.shape and u.dtype == np.float32 and info.converged
    ref = tvnumba.denoise_tv_beta(f.astype(np.float64), 0.1, beta, method=method,
                                  channel_axis=channel_axis, smoothing=info.smoothing, eps=1e-7)
    if method == "mm":  # non-convex: float32 and float64 may settle in different minima
        kw = dict(channel_axis=channel_axis, smoothing=info.smoothing)
        assert_allclose(objective(u, f, 0.1, beta, **kw), objective(ref, f, 0.1, beta, **kw),
                        rtol=1e-3)
    else:
        assert_allclose(u, ref, atol=5e-3)


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_mm_certificate_and_4d(backend):
    """MM stops on ½‖∇F‖² ≤ eps (F − ½‖∇F‖²), recomputed here; 4-D data (which the Numba
    MM kernels do not cover) run through the array backend on either."""
    rng = np.random.default_rng(4)
    f = rng.random((6, 7, 5, 8))
    for beta in (0.5, 1.5):
        u, info = denoise_on(BACKENDS[backend](), f, 0.05, beta, method="mm", smoothing=0.05,
                             eps=1e-4)
        assert info.converged and info.gap <= 1e-4
        assert certificate(u, f, 0.05, beta, smoothing=0.05) <= 1e-4 * (1 + 1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,nd", [((1, 1, 1, 1, 23), 1), ((2, 1, 1, 9, 12), 2),
                                      ((1, 3, 1, 8, 7), 2), ((1, 2, 5, 6, 7), 3)])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_mm_operators_numba_vs_array(dtype, shape, nd, isotropic, beta):
    """The MM operators (weights and F, A x and x·Ax, diag A) of both backends agree, and
    diag A matches A applied to unit vectors."""
    rng = np.random.default_rng(8)
    f = rng.random(shape).astype(dtype)
    x = rng.random(shape).astype(dtype)
    ih = (0.7, 1.3, 0.9)[3 - nd:]
    plan = make_plan(f, beta, axes=tuple(range(5 - nd, 5)), channel_axis=1,
                     spacing=tuple(1 / h for h in ih), isotropic=isotropic, smoothing=0.05)
    assert plan.canonical_shape == shape
    N = MMNumba(f, 0.3, beta, 0.05, plan, c0=1.0)
    A = MMArray(np, f, 0.3, beta, 0.05, plan, c0=1.0)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(N.weights_and_tv(x), A.weights_and_tv(x), rtol=rtol)
    yn, ya = np.empty_like(x), np.empty_like(x)
    assert_allclose(N.apply(x, yn), A.apply(x, ya), rtol=rtol)
    assert_allclose(yn, ya, rtol=rtol, atol=rtol)
    assert_allclose(N.apply(x, yn), float(np.sum(x.astype(float) * yn)), rtol=rtol)
    dn = N.diag()
    assert_allclose(dn, A.diag(), rtol=rtol)
    e = np.zeros(shape, dtype)
    for idx in [(0, 0, 0, 0, 0), tuple(s - 1 for s in shape), tuple(s // 2 for s in shape)]:
        e[...] = 0
        e[idx] = 1
        N.apply(e, yn)
        assert_allclose(yn[idx], dn[idx], rtol=rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,nd", [((1, 1, 1, 1, 23), 1), ((2, 1, 1, 9, 12), 2),
                                      ((1, 3, 1, 8, 7), 2), ((1, 2, 5, 6, 7), 3)])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("nonneg", [True, False])
def test_preconditioned_steps_match_the_reference(dtype, shape, nd, isotropic, nonneg):
    """The preconditioned primal-dual's primal and TV dual steps (per-pixel τ and σ,
    over-relaxation ω) of both backends against the same steps written in float64 from
    tests/reference.py's differences."""
    from reference import _adjoint_diff, _forward_diff

    from tvnumba.backends.cpu import TVOpsNumba
    from tvnumba.backends.array import TVOps

    rng = np.random.default_rng(9)
    ih = (0.7, 1.3, 0.9)[3 - nd:]
    plan = make_plan(np.zeros(shape), 1.0, axes=tuple(range(5 - nd, 5)), channel_axis=1,
                     spacing=tuple(1 / h for h in ih), isotropic=isotropic)
    axes = tuple(range(5 - nd, 5))
    u = rng.standard_normal(shape)
    atr = rng.standard_normal(shape)
    tau = rng.uniform(0.1, 0.5, shape)
    sig = rng.uniform(0.1, 0.9, (shape[0], 1) + shape[2:])
    p = 0.2 * rng.standard_normal((nd,) + shape)
    for q, ax in zip(p, axes):  # a field is zero on its last slice
        q[tuple(slice(None) if a != ax else -1 for a in range(5))] = 0
    w, om = 0.3, 1.7
    # reference, float64
    ut = u - tau * (sum(_adjoint_diff(q, ax, 1 / h) for q, ax, h in zip(p, axes, ih)) + atr)
    if nonneg:
        ut = np.maximum(ut, 0)
    ub = 2 * ut - u
    moved = [q + sig * _forward_diff(ub, ax, 1 / h) for q, ax, h in zip(p, axes, ih)]
    if isotropic:
        mag = np.sqrt(sum((q * q).sum(axis=1, keepdims=True) for q in moved))
        pt = np.array([q * np.minimum(1, w / np.maximum(mag, 1e-300)) for q in moved])
    else:
        pt = np.clip(moved, -w, w)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    for ops in (TVOps(np, plan, dtype), TVOpsNumba(plan, dtype)):
        c = [np.array(a, dtype) for a in (u, atr, tau, sig, p)]
        uk, atk, tk, sk, pk = c
        utk, ubk, ptk = np.empty_like(uk), np.empty_like(uk), np.empty_like(pk)
        ops.pd_primal(uk, utk, ubk, pk, atk, tk, om, nonneg)
        assert_allclose(utk, ut, rtol=rtol, atol=rtol)
        assert_allclose(ubk, ub, rtol=rtol, atol=rtol)
        assert_allclose(uk, u + om * (ut - u), rtol=rtol, atol=rtol)
        ops.pd_dual(pk, ptk, ub.astype(dtype), sk, w, om)
        assert_allclose(ptk, pt, rtol=rtol, atol=rtol)
        assert_allclose(pk, p + om * (pt - p), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("beta", [1.3, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("shape,nd", [((1, 1, 1, 1, 23), 1), ((2, 1, 1, 9, 12), 2),
                                      ((1, 3, 1, 8, 7), 2), ((1, 2, 5, 6, 7), 3)])
@pytest.mark.parametrize("isotropic", [True, False])
def test_power_dual_step_is_the_conjugate_prox(beta, shape, nd, isotropic):
    """The β > 1 dual step of both backends: ``pt = prox_{σg*}(z)``, ``z = p + σ D ū``,
    ``g = w |·|^β``, checked by its optimality condition ``pt = ∇g((z − pt)/σ)`` (per
    pixel over axes and channels when isotropic, per difference otherwise) in float64;
    float32 agrees with float64.  ``p`` then moves by ω towards ``pt``."""
    from reference import _forward_diff

    from tvnumba.backends.array import TVOps
    from tvnumba.backends.cpu import TVOpsNumba

    rng = np.random.default_rng(5)
    ih = (0.7, 1.3, 0.9)[3 - nd:]
    plan = make_plan(np.zeros(shape), 1.0, axes=tuple(range(5 - nd, 5)), channel_axis=1,
                     spacing=tuple(1 / h for h in ih), isotropic=isotropic)
    axes = tuple(range(5 - nd, 5))
    ub = rng.standard_normal(shape)
    sig = rng.uniform(0.05, 2.0, (shape[0], 1) + shape[2:])
    p = 0.5 * rng.standard_normal((nd,) + shape)
    for q, ax in zip(p, axes):  # a field is zero on its last slice
        q[tuple(slice(None) if a != ax else -1 for a in range(5))] = 0
    w, om = 0.3, 1.7
    z = np.array([q + sig * _forward_diff(ub, ax, 1 / h) for q, ax, h in zip(p, axes, ih)])
    results = {}
    for dtype in (np.float64, np.float32):
        for ops in (TVOps(np, plan, dtype), TVOpsNumba(plan, dtype)):
            pk, ptk = p.astype(dtype), np.empty(p.shape, dtype)
            ops.pd_dual_power(pk, ptk, ub.astype(dtype), sig.astype(dtype), w, beta, om)
            pt = ptk.astype(float)
            assert_allclose(pk, p + om * (pt - p), rtol=1e-5, atol=1e-6)
            results[dtype, type(ops)] = pt
    pt = results[np.float64, TVOpsNumba]
    v = (z - pt) / sig
    mag = (np.sqrt((v * v).sum(axis=(0, 2), keepdims=True)) if isotropic else np.abs(v))
    grad = w * beta * np.where(mag > 0, mag, 1) ** (beta - 2) * v
    assert np.abs(pt).max() > 0.1 * w
    assert_allclose(pt, grad, rtol=1e-9, atol=1e-12)
    for (dtype, _), other in results.items():
        tol = 1e-12 if dtype == np.float64 else 1e-5
        assert_allclose(other, pt, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("array_background", [False, True])
def test_kl_dual_step_solves_its_quadratic(dtype, array_background):
    """The Poisson loss's dual step of both backends: ``rt ≥ 0`` is the root of
    ``rt² − e rt − σy = 0`` (``e = r − σ(z + b)``: the prox of σ KL*), zero counts
    included, and ``r`` moves by ω towards it."""
    rng = np.random.default_rng(3)
    n = 20001
    r = rng.uniform(-2, 3, n)
    z = rng.uniform(0, 50, n)
    y = rng.poisson(rng.uniform(0, 30, n)).astype(float)
    sigma = rng.uniform(1e-3, 2, n)
    b = rng.uniform(0, 3, n) if array_background else np.array([1.5])
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    for ops in (ArrayOps(np), vector_kernels):
        rk, zk, yk, sk, bk = (np.array(a, dtype) for a in (r, z, y, sigma, b))
        rt = np.empty_like(rk)
        ops.kl_dual_step(rk, rt, zk, yk, bk, int(array_background), sk, dtype(1.9))
        rt64 = rt.astype(float)
        assert np.all(rt64 >= 0)
        # the quadratic at the rounded inputs, relative to the size of its terms
        r0, z0, y0, s0, b0 = (a.astype(float) for a in (np.array(r, dtype), zk, yk, sk, bk))
        e0 = r0 - s0 * (z0 + b0)
        scale = rt64 * rt64 + np.abs(e0) * rt64 + s0 * y0
        assert np.all(np.abs(rt64 * (rt64 - e0) - s0 * y0) <= 10 * rtol * scale)
        assert_allclose(rk, r0 + 1.9 * (rt64 - r0), rtol=rtol, atol=10 * rtol)


# --------------------------------------------------------------------------- duality gap, any A
# For β ≥ 1 and a data term that is not strongly convex (AᵀA singular: a wide matrix, an
# "extend" deconvolution, a mask with holes) the smooth solvers stop on a Fenchel duality
# gap (tvnumba.solvers._fenchel).  The optimum is computed here by SciPy on the objective
# built from tests/reference.py, never from tvnumba's own report.
def _ref_minimum(A, f, shape, weight, beta, starts=1, **tv_kw):
    """min_u ½‖A u − f‖² + weight·TV_β(u) by SciPy BFGS from ``starts`` seeded points."""
    from scipy.optimize import minimize

    from reference import ref_tv, ref_tv_grad

    def fun(x):
        u = x.reshape(shape)
        r = A @ x - f
        return (0.5 * float(r @ r) + weight * ref_tv(u, beta, **tv_kw),
                A.T @ r + weight * ref_tv_grad(u, beta, **tv_kw).ravel())

    rng = np.random.default_rng(1)
    runs = [minimize(fun, rng.standard_normal(math.prod(shape)), jac=True, method="BFGS",
                     options=dict(gtol=1e-13, maxiter=20000)) for _ in range(starts)]
    best = min(runs, key=lambda r: r.fun)
    return best.x.reshape(shape), best.fun, fun


def _dual_value(A, f, shape, weight, beta, smoothing=0.0, **plan_kw):
    """The solvers' dual value for ½‖A u − f‖² + weight·TV_β(u), as a function of u."""
    from tvnumba.operators.linear import LinearOperatorTerm
    from tvnumba.solvers._fenchel import DualValue

    plan = make_plan(np.zeros(shape), beta, smoothing=smoothing, **plan_kw)
    backend = CpuBackend().for_plan(plan)
    term = LinearOperatorTerm(A, f, plan).bind(backend)
    dual = DualValue(backend, plan, term, weight, smoothing)
    return lambda u: dual(plan.to_canonical(np.ascontiguousarray(u, np.float64)))


def test_gap_bounds_the_error_of_a_wide_matrix_beta3():
    """A 3×6 matrix (AᵀA singular), β = 3: the reported gap is at least the true relative
    objective error, at the default eps and at a tight one."""
    rng = np.random.default_rng(0)
    A, f = rng.standard_normal((3, 6)), rng.standard_normal(3)
    _, F_star, fun = _ref_minimum(A, f, (6,), 0.01, 3.0, starts=20)
    for eps in (1e-3, 1e-6):
        u, info = tvnumba.solve_tv_beta(A, f, 0.01, beta=3.0, shape=(6,), eps=eps,
                                        return_info=True)
        assert info.method == "lbfgs" and info.converged and info.gap <= eps
        F = fun(u)[0]
        assert_allclose(info.objective, F, rtol=1e-12)
        excess = (F - F_star) / F_star
        assert -1e-12 <= excess <= info.gap


@pytest.mark.parametrize("beta,smoothing,kw", [
    (1.0, 0.2, {}), (1.5, 0.0, {}), (1.5, 0.2, {"isotropic": False}), (2.0, 0.0, {}),
    (3.0, 0.0, {"channel_axis": -1, "spacing": (1.0, 0.5)}),
    (1.3, 0.2, {"channel_axis": -1}), (2.5, 0.1, {"isotropic": False, "spacing": (0.5, 1.0)})])
def test_dual_value_is_below_the_optimum_and_meets_it(beta, smoothing, kw):
    """D(u) ≤ F* at random points and D = F* (to rounding) at the minimiser, so the relative
    gap is ≥ 0, bounds the relative error everywhere and is 0 at the optimum; a wide
    operator that mixes the channels (its null space holds constants)."""
    rng = np.random.default_rng(3)
    shape = (5, 4, 2) if "channel_axis" in kw else (5, 4)
    n = math.prod(shape)
    A, f = rng.standard_normal((n // 2, n)), rng.standard_normal(n // 2)
    tv_kw = dict(smoothing=smoothing, **kw)
    u_star, F_star, fun = _ref_minimum(A, f, shape, 0.3, beta, **tv_kw)
    dual = _dual_value(A, f, shape, 0.3, beta, **tv_kw)
    for _ in range(4):
        u = u_star + 0.1 * rng.standard_normal(shape)
        F, D = fun(u.ravel())[0], dual(u)
        assert D <= F_star * (1 + 1e-12)
        if D > 0:
            assert (F - D) / D >= (F - F_star) / F_star >= 0
    assert abs(F_star - dual(u_star)) <= 1e-9 * F_star


def test_dual_value_leaves_its_inputs_and_an_identity_adjoint_alone():
    """The identity term's adjoint returns its own argument: the dual value must not update
    one array twice through it, nor touch the iterate or the data; it equals the value of
    the same problem given as an explicit identity matrix."""
    from tvnumba.solvers._fenchel import DualValue

    rng = np.random.default_rng(5)
    f = rng.random((9, 7))
    u = f + 0.1 * rng.standard_normal(f.shape)
    plan = make_plan(f, 1.5)
    backend = CpuBackend().for_plan(plan)
    term = Identity(backend.canonical(f, plan)).bind(backend)
    u5, f5 = plan.to_canonical(u).copy(), term.f.copy()
    D = DualValue(backend, plan, term, 0.1, 0.0)(u5)
    np.testing.assert_array_equal(u5, plan.to_canonical(u))
    np.testing.assert_array_equal(term.f, f5)
    D_matrix = _dual_value(np.eye(f.size), f.ravel(), f.shape, 0.1, 1.5)(u)
    assert_allclose(D, D_matrix, rtol=1e-12)


def test_strongly_convex_data_terms_never_evaluate_the_dual(camera, monkeypatch):
    """Denoising (μ = 1) keeps the free gradient-norm bound: no dual value is built, and the
    reported gap is that bound, recomputed here."""
    from tvnumba.solvers import _fenchel

    def refuse(*args, **kwargs):
        raise AssertionError("dual value evaluated for a strongly convex data term")

    monkeypatch.setattr(_fenchel.DualValue, "__call__", refuse)
    for beta, method in ((1.5, "lbfgs"), (1.5, "mm"), (2.0, "dct")):
        u, info = denoise_tv_beta(camera, 0.1, beta, method=method, return_info=True)
        assert info.converged
        if method != "mm":  # mm's objective carries its internal smoothing
            assert_allclose(info.gap, certificate(u, camera, 0.1, beta), rtol=1e-6, atol=1e-14)


def _blur_problem(shape=(14, 12), psf_shape=(5, 5), seed=2):
    """A small "extend" deconvolution as an explicit matrix: the blurred window of the grid
    grown by the PSF (a singular AᵀA), with its image and PSF."""
    rng = np.random.default_rng(seed)
    psf = rng.random(psf_shape)
    psf /= psf.sum()
    ext = tuple(n + m - 1 for n, m in zip(shape, psf_shape))
    from reference import ref_blur_valid

    A = np.stack([ref_blur_valid(e.reshape(ext), psf).ravel()
                  for e in np.eye(math.prod(ext))], axis=1)
    clean = np.zeros(ext)
    clean[4:12, 3:10] = 1.0
    f = ref_blur_valid(clean, psf) + 0.02 * rng.standard_normal(shape)
    return A, f, psf, ext


@pytest.mark.parametrize("method", ["lbfgs", "mm"])
def test_deconvolution_gap_is_a_bound_beta15(method):
    """``deconvolve_tv_beta`` at β = 1.5 ("extend": AᵀA singular) converges on a gap that
    bounds the true relative error, with L-BFGS and with MM (whose internal smoothing takes
    the Newton-solved conjugate)."""
    A, f, psf, ext = _blur_problem()
    infos = [tvnumba.deconvolve_tv_beta(f, psf, 0.02, 1.5, method=method, eps=eps,
                                        return_info=True)[1] for eps in (1e-3, 1e-6)]
    _, F_star, _ = _ref_minimum(A, f.ravel(), ext, 0.02, 1.5, smoothing=infos[0].smoothing)
    for eps, info in zip((1e-3, 1e-6), infos):
        assert info.converged and info.gap <= eps and info.smoothing == infos[0].smoothing
        excess = (info.objective - F_star) / F_star
        assert -1e-9 <= excess <= info.gap + 1e-9


def test_inpainting_gap_is_a_bound_beta15():
    """A mask with holes (``Diagonal`` with zeros, one application of A serves every
    channel): the gap bounds the true relative error."""
    rng = np.random.default_rng(4)
    img = rng.random((10, 9, 2))
    mask = rng.random((10, 9)) < 0.4
    u, info = tvnumba.inpaint_tv_beta(img, mask, 0.05, 1.5, channel_axis=-1, eps=1e-5,
                                      return_info=True)
    assert info.method == "lbfgs" and info.converged and info.gap <= 1e-5
    keep = np.repeat(~mask[..., None], 2, axis=-1).ravel().astype(float)
    A = np.diag(keep)
    _, F_star, _ = _ref_minimum(A, keep * img.ravel(), img.shape, 0.05, 1.5, channel_axis=-1)
    excess = (info.objective - F_star) / F_star
    assert -1e-9 <= excess <= info.gap + 1e-9


def test_beta2_gap_with_a_singular_operator_vanishes_at_the_exact_minimiser():
    """β = 2 is quadratic: ``(AᵀA + 2 weight DᵀD) u = Aᵀf`` gives the minimiser exactly
    (a dense solve here), where the dual value meets the objective to rounding."""
    A, f, psf, ext = _blur_problem(shape=(9, 8), psf_shape=(3, 4))
    n = math.prod(ext)
    DtD = np.zeros((n, n))
    for axis in range(2):
        D = np.zeros((n, n))  # column j: the differences along axis of the unit vector j
        for j, e in enumerate(np.eye(n)):
            d = np.zeros(ext)
            d[(slice(None),) * axis + (slice(0, -1),)] = np.diff(e.reshape(ext), axis=axis)
            D[:, j] = d.ravel()
        DtD += D.T @ D
    u = np.linalg.solve(A.T @ A + 2 * 0.1 * DtD, A.T @ f.ravel()).reshape(ext)
    r = A @ u.ravel() - f.ravel()
    from reference import ref_tv

    F = 0.5 * float(r @ r) + 0.1 * ref_tv(u, 2.0)
    dual = _dual_value(A, f.ravel(), ext, 0.1, 2.0)
    assert abs(F - dual(u)) <= 1e-11 * F
    wiggle = 0.01 * np.random.default_rng(0).standard_normal(ext)
    assert dual(u + wiggle) < F and dual(u * 1.01) < F


def test_dct_reports_the_duality_gap_for_a_data_term_without_modulus():
    """The exact β = 2 solve of a DCT-diagonal term that declares no strong convexity
    (μ = 0) reports the duality gap: ≥ 0, at rounding level, converged."""

    class NoModulus(Identity):
        mu = 0.0

    f = _camera_crop()
    plan = make_plan(f, 2.0)
    backend = CpuBackend().for_plan(plan)
    u5, info = solve(NoModulus(backend.canonical(f, plan)), 0.3, backend=backend, plan=plan,
                     method="dct", eps=1e-10)
    assert info.method == "dct" and info.converged and 0.0 <= info.gap <= 1e-10
    u = plan.from_canonical(u5)
    g = (u - f) + 0.3 * tvnumba.tv_grad(u, 2.0)
    assert np.abs(g).max() < 1e-10


def test_info_says_whether_the_gap_is_a_bound():
    """``SolveInfo.bound``: True for the duality gaps, False for the estimates."""
    from skimage.data import camera

    from tvnumba import deconvolve_tv_beta, inpaint_tv_beta, reconstruct_tv_beta
    from tvnumba.operators import radon

    img = camera()[::16, ::16] / 255.0
    mask = np.random.default_rng(0).random(img.shape) < 0.3
    theta = np.linspace(0, 180, 8, endpoint=False)
    cases = [
        (lambda: tvnumba.denoise_tv_beta(img, 0.1, return_info=True), "cp", True),
        (lambda: tvnumba.denoise_tv_beta(img, 0.1, beta=1.5, return_info=True), "lbfgs", True),
        (lambda: tvnumba.denoise_tv_beta(img, 0.1, beta=0.7, return_info=True), "mm", False),
        (lambda: tvnumba.denoise_tv_beta(np.round(20 * img), 0.5, noise="poisson",
                                         return_info=True), "cp", True),
        (lambda: inpaint_tv_beta(img, mask, return_info=True), "cp", True),
        (lambda: deconvolve_tv_beta(img, np.full((1, 3), 1 / 3), 0.01, return_info=True),
         "admm", False),
        (lambda: reconstruct_tv_beta(radon(img, theta), theta, 0.01, return_info=True),
         "cp", False),
    ]
    for call, method, bound in cases:
        _, info = call()
        assert (info.method, info.bound) == (method, bound)
        assert info.converged == (info.gap <= 1e-3)
