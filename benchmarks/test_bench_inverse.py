"""Inverse problems: deconvolution, inpainting and sparse-angle CT against scikit-image,
and installed peers (pyproximal, SCICO: skipped when absent) on the same objective.

Deconvolution: camera in [0, 1] (small 256², full 512²) blurred by a Gaussian PSF (σ = 2,
15×15) or a horizontal motion PSF (1×9) as a camera makes it (the scene continues past the
frame: reflect-padded, then the "valid" convolution, so the border is not periodic), plus
noise σ = 0.01 (seed 0).  ``deconvolve_tv_beta`` (β = 1, weight 1e-3, boundary "extend",
default eps) against ``skimage.restoration.wiener`` at its best balance of {0.003, 0.01,
0.03, 0.1, 0.3} (baseline), ``unsupervised_wiener`` and ``richardson_lucy`` at its best
iteration count of {5, 10, 20, 30} (the best parameters chosen by PSNR before timing).
PSNR of the result clipped to [0, 1], full frame, border included.

Same objective, peers: each problem as tvnumba states it, solved by tvnumba at the default
eps and by the installed peers, each timed until its objective first reaches tvnumba's
(checked every iteration; limit small 20 s, full 60 s, for CT 30 s / 150 s, after which the
peer's time is a lower bound). pyproximal's ``PrimalDual`` as in its deblurring tutorial (L2
data term with 10 warm-started inner CG steps, L21 on ``pylops.Gradient``, τ = 1/√8, μ =
1/(8τ)); SCICO's ADMM (float64, ``FiniteDifference(append=0)``: Neumann, as tvnumba's TV; CG
x-steps; the penalty ρ = 0.03 for the deconvolutions and 0.3 for inpainting, the fastest to
the target of {0.01, 0.03, 0.1, 0.3, 1} on the small extended-grid deconvolution and
inpainting cases). The problems: ½‖A u − f‖² + 1e-3 · TV(u) with A =
``pylops.signalprocessing.Convolve2D`` (Gaussian PSF, zero boundary, camera small 128², full
256²) given to ``tvnumba.solve_tv_beta`` as callables; the Gaussian deconvolution case below
on ``deconvolve_tv_beta``'s own grid (boundary "extend": the "valid" convolution of the
grown unknown; pylops ``Convolve2D`` cropped by ``Restriction``, SCICO
``Convolve(mode="valid")``); camera blurred circularly by the same PSF on
``deconvolve_tv_beta``'s boundary "periodic" (circular blur, Neumann TV; the same FFT
convolution as a ``pylops.FunctionOperator`` and a SCICO ``LinearOperator``); the 50 %
inpainting case below (weight 0.01; pylops
``Restriction`` to the known pixels, SCICO ``Diagonal``); the 30-angle CT case below with
tvnumba's projector as the peer's operator (``pylops.FunctionOperator``; SCICO has no
projector of this geometry).

Inpainting: camera (small 256², full 512²) with 50 % of the pixels missing at random, or a
text-like mask (thick strokes, ~8 % missing): ``inpaint_tv_beta`` (β = 1 defaults, and
β = 1.5) against ``skimage.restoration.inpaint_biharmonic``.

CT: ``shepp_logan_phantom`` (small 128², full 256²), sinograms of tvnumba's projector at 30
and 60 angles in [0°, 180°) plus noise of σ = 1 % of the sinogram's maximum (seed 0).
``reconstruct_tv_beta`` (β = 1, the weight near the best PSNR for that size and angle
count, default eps) against filtered back-projection (``skimage.transform.iradon`` with its
best filter) and SART (``iradon_sart``, the best number of iterations of 1-10, each from the
last; the time is that of all of them).  PSNR against the phantom (``data_range=1``).
Projector: ``tvnumba.operators.radon`` / ``radon_adjoint`` against
``skimage.transform.radon`` / ``iradon(filter_name=None)`` (its unfiltered back-projection).

Defaults against a tight solve: each inverse problem as a user calls it at the default
eps = 1e-3 (timed) against the same call at eps = 1e-6 (not timed): ``excess`` = relative
objective excess, ``ΔPSNR`` = PSNR difference (both clipped to [0, 1]), the stopping
quantity ``gap`` and whether it is a ``bound``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
from benchlib import camera, measure, pick, psnr, record
from scipy import ndimage
from scipy.signal import fftconvolve
from skimage import draw
from skimage.data import shepp_logan_phantom
from skimage.restoration import (
    inpaint_biharmonic,
    richardson_lucy,
    unsupervised_wiener,
    wiener,
)
from skimage.transform import iradon, iradon_sart, resize
from skimage.transform import radon as sk_radon

import tvnumba
from tvnumba.operators import radon, radon_adjoint

pytestmark = pytest.mark.inverse

_CACHE: dict = {}


def clipped_psnr(clean, u):
    return psnr(clean, np.clip(u, 0, 1))


# --------------------------------------------------------------------------- deconvolution
def gaussian_psf(size=15, sigma=2.0):
    r = size // 2
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    psf = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    return psf / psf.sum()


PSFS = {"gaussian": ("Gaussian σ=2 15×15", gaussian_psf()),
        "motion": ("motion 1×9", np.full((1, 9), 1.0 / 9))}
BALANCES = (0.003, 0.01, 0.03, 0.1, 0.3)
RL_ITERS = (5, 10, 20, 30)


def blurred(psf_name):
    """(clean, blurred + noise) for the PSF, made once."""
    key = ("blur", psf_name)
    if key not in _CACHE:
        clean = camera(pick(256, 512))
        psf = PSFS[psf_name][1]
        pads = [(m // 2, (m - 1) // 2) for m in psf.shape]
        f = fftconvolve(np.pad(clean, pads, mode="reflect"), psf, mode="valid")
        f = f + 0.01 * np.random.default_rng(0).standard_normal(clean.shape)
        _CACHE[key] = clean, f
    return _CACHE[key]


def best_parameter(run, values, clean):
    return max(values, key=lambda v: clipped_psnr(clean, run(v)))


@pytest.mark.parametrize("method", ["tvnumba", "wiener", "unsupervised_wiener",
                                    "richardson_lucy"])
@pytest.mark.parametrize("psf_name", list(PSFS))
def test_deconvolution(benchmark, psf_name, method):
    clean, f = blurred(psf_name)
    text, psf = PSFS[psf_name]
    benchmark.group = f"deconvolution: camera {clean.shape[0]}², {text} PSF, noise σ=0.01"
    if method == "tvnumba":
        u, info = measure(benchmark, lambda: tvnumba.deconvolve_tv_beta(
            f, psf, 1e-3, return_info=True), rounds=pick(None, 3))
        record(benchmark, "tvnumba deconvolve_tv_beta β=1", PSNR=clipped_psnr(clean, u),
               parameter="weight=0.001", iterations=info.iterations)
    elif method == "wiener":
        b = best_parameter(lambda b: wiener(f, psf, b), BALANCES, clean)
        u = measure(benchmark, lambda: wiener(f, psf, b))
        record(benchmark, "skimage wiener", role="baseline", PSNR=clipped_psnr(clean, u),
               parameter=f"balance={b:g}")
    elif method == "unsupervised_wiener":
        u, _ = measure(benchmark, lambda: unsupervised_wiener(f, psf, rng=0))
        record(benchmark, "skimage unsupervised_wiener", role="other",
               PSNR=clipped_psnr(clean, u))
    else:
        n = best_parameter(lambda n: richardson_lucy(f, psf, num_iter=n), RL_ITERS, clean)
        u = measure(benchmark, lambda: richardson_lucy(f, psf, num_iter=n))
        record(benchmark, "skimage richardson_lucy", role="other", PSNR=clipped_psnr(clean, u),
               parameter=f"num_iter={n}")


# --------------------------------------------------------------------------- same objective
def peer_problem():
    """The pylops blur, its data and the objective, made once."""
    if "peer" not in _CACHE:
        pylops = pytest.importorskip("pylops")
        n = pick(128, 256)
        clean = camera(n)
        psf = gaussian_psf()
        r = psf.shape[0] // 2
        op = pylops.signalprocessing.Convolve2D((n, n), h=psf, offset=(r, r), dtype="float64")
        f = (op @ clean.ravel()).reshape(n, n)
        f = f + 0.01 * np.random.default_rng(0).standard_normal(f.shape)
        w = 1e-3

        def F(u):
            res = (op @ np.ravel(u)).reshape(n, n) - f
            return 0.5 * float(np.vdot(res, res)) + w * tvnumba.tv(np.reshape(u, (n, n)))

        _CACHE["peer"] = dict(n=n, clean=clean, psf=psf, op=op, f=f, w=w, F=F)
    return _CACHE["peer"]


class Reached(Exception):
    """Raised from a peer's callback once its objective reached the target."""


def until_target(F, target, limit):
    """A callback for a peer solver, and the state it keeps: the iterate, iterations,
    whether the target was reached; it stops the solver by raising ``Reached`` (or at
    ``limit`` seconds)."""
    state = {"x": None, "F": None, "n": 0, "reached": False, "t0": time.perf_counter()}

    def callback(x):
        state["n"] += 1
        state["x"] = np.array(x)
        state["F"] = F(state["x"])
        if state["F"] <= target:
            state["reached"] = True
            raise Reached
        if time.perf_counter() - state["t0"] > limit:
            raise Reached

    return state, callback


def pyproximal_run(F, target, limit, op, b, shape, w, sigma=1.0):
    """``(run, label)``: pyproximal's ``PrimalDual`` as in its deblurring tutorial on
    ``sigma/2 ‖op x − b‖² + w · TV(x)`` (L2 prox by 10 warm-started CG steps, L21 on
    ``pylops.Gradient``, τ = 1/√8, μ = 1/(8τ)), from zeros, until ``F`` reaches
    ``target`` or ``limit`` seconds."""
    import pylops
    import pyproximal
    from pyproximal.optimization.primaldual import PrimalDual

    grad = pylops.Gradient(dims=shape, edge=False, kind="forward", dtype="float64")
    tau = 1 / np.sqrt(8.0)

    def run():
        state, callback = until_target(F, target, limit)
        l2 = pyproximal.L2(Op=op, b=np.ravel(b), sigma=sigma, niter=10, warm=True)
        try:
            PrimalDual(l2, pyproximal.L21(ndim=2, sigma=w), grad,
                       x0=np.zeros(int(np.prod(shape))), tau=tau, mu=1 / (8 * tau),
                       theta=1.0, niter=100000, callback=callback)
        except Reached:
            pass
        return state

    return run, f"pyproximal PrimalDual {pyproximal.__version__}"


def scico_run(F, target, limit, make_loss, shape, w, rho, x0):
    """``(run, label)``: SCICO's ADMM (float64) on ``make_loss()`` (a function of
    ``jax.numpy``) + ``w · ‖FiniteDifference(append=0) x‖₂,₁`` (Neumann, as tvnumba's TV),
    CG x-steps, penalty ``rho``, from ``x0(jnp)``, until ``F`` reaches ``target`` or
    ``limit`` seconds."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    import scico
    from scico import functional, linop
    from scico.optimize.admm import ADMM, LinearSubproblemSolver

    def run():
        state, callback = until_target(F, target, limit)
        solver = ADMM(f=make_loss(jnp), g_list=[w * functional.L21Norm()],
                      C_list=[linop.FiniteDifference(input_shape=shape, append=0,
                                                     input_dtype=jnp.float64)],
                      rho_list=[rho], x0=x0(jnp), maxiter=100000,
                      subproblem_solver=LinearSubproblemSolver())
        try:
            solver.solve(callback=lambda st: callback(np.asarray(st.x)))
        except Reached:
            pass
        return state

    return run, f"SCICO ADMM {scico.__version__}"


def same_objective(benchmark, method, *, key, limit, tvnumba_call, label, peers, shape, clean,
                   crop=...):
    """Time ``tvnumba_call()`` (returns ``(u, info)``) or the peer
    ``peers[method](target, limit)`` (returns ``(run, label)``) until it reaches tvnumba's
    objective (:func:`target_of` ``key``) or ``limit`` seconds; the peer's PSNR on
    ``x.reshape(shape)[crop]``."""
    if method == "tvnumba":
        u, info = measure(benchmark, tvnumba_call)
        record(benchmark, label, objective=info.objective, PSNR=clipped_psnr(clean, u),
               iterations=info.iterations, reached=True)
        return
    pytest.importorskip(method)
    run, peer_label = peers[method](target_of(key, tvnumba_call), limit)
    # pyproximal is NumPy only (nothing to compile); JAX compiles in a first run
    state = measure(benchmark, run, warm=(lambda: None) if method == "pyproximal" else None,
                    rounds=1)
    u = state["x"].reshape(shape)
    record(benchmark, peer_label, role="other", objective=state["F"],
           PSNR=clipped_psnr(clean, u[crop]), iterations=state["n"],
           reached=state["reached"], lower_bound=not state["reached"])


def target_of(key, call):
    """tvnumba's objective at the default eps (the peers' target), computed once."""
    if key not in _CACHE:
        _CACHE[key] = call()[1].objective
    return _CACHE[key]


@pytest.mark.peer
@pytest.mark.parametrize("method", ["tvnumba", "pyproximal", "scico"])
def test_deconvolution_same_objective(benchmark, method):
    pytest.importorskip("pylops")
    p = peer_problem()
    n, op, f, w, F = p["n"], p["op"], p["f"], p["w"], p["F"]
    benchmark.group = (f"deconvolution, one objective (pylops Convolve2D, zero boundary): "
                       f"camera {n}², Gaussian PSF, weight 0.001")
    A = lambda u: (op @ u.ravel()).reshape(n, n)  # noqa: E731
    AT = lambda v: (op.H @ v.ravel()).reshape(n, n)  # noqa: E731
    same_objective(
        benchmark, method, key="pylops", limit=pick(20.0, 60.0), shape=(n, n),
        clean=p["clean"],
        tvnumba_call=lambda: tvnumba.solve_tv_beta(A, f, w, AT=AT, return_info=True),
        label="tvnumba solve_tv_beta (eps=1e-3)",
        peers={"pyproximal": lambda target, limit: pyproximal_run(F, target, limit, op, f,
                                                                  (n, n), w),
               "scico": lambda target, limit: scico_run(
                   F, target, limit,
                   lambda jnp: _scico_loss(jnp, f, p["psf"], (n, n), "same"), (n, n), w,
                   SCICO_RHO_EXTEND,
                   lambda jnp: jnp.asarray(AT(f)))})


def _scico_loss(jnp, f, psf, shape, mode):
    from scico import linop, loss

    A = linop.Convolve(h=jnp.asarray(psf), input_shape=shape, mode=mode)
    return loss.SquaredL2Loss(y=jnp.asarray(f), A=A)


def extend_objective(f, psf, w):
    """``F(u) = ½‖h ∗ u − f‖² + w · TV(u)`` on the extended grid ("valid" convolution), as
    ``deconvolve_tv_beta`` (boundary "extend") reports it."""
    ushape = tuple(n + m - 1 for n, m in zip(f.shape, psf.shape))

    def F(u):
        u = np.reshape(u, ushape)
        res = fftconvolve(u, psf, mode="valid") - f
        return 0.5 * float(np.vdot(res, res)) + w * tvnumba.tv(u)

    return F, ushape


@pytest.mark.peer
@pytest.mark.parametrize("method", ["tvnumba", "pyproximal", "scico"])
def test_deconvolution_extend_same_objective(benchmark, method):
    """The Gaussian deconvolution case above on ``deconvolve_tv_beta``'s own objective (the
    extended grid)."""
    clean, f = blurred("gaussian")
    psf, w = PSFS["gaussian"][1], 1e-3
    F, ushape = extend_objective(f, psf, w)
    n, r = f.shape[0], psf.shape[0] // 2
    benchmark.group = (f"deconvolution, one objective (extended grid, as deconvolve_tv_beta): "
                       f"camera {n}², Gaussian σ=2 15×15 PSF, weight 0.001")

    def valid_op():
        import pylops

        return (pylops.Restriction((n, ushape[1]), np.arange(r, r + n), axis=1)
                @ pylops.Restriction(ushape, np.arange(r, r + n), axis=0)
                @ pylops.signalprocessing.Convolve2D(ushape, h=psf, offset=(r, r)))

    same_objective(
        benchmark, method, key="extend", limit=pick(20.0, 60.0), shape=ushape, clean=clean,
        crop=(slice(r, r + n),) * 2,
        tvnumba_call=lambda: tvnumba.deconvolve_tv_beta(f, psf, w, return_info=True),
        label="tvnumba deconvolve_tv_beta (eps=1e-3)",
        peers={"pyproximal": lambda target, limit: pyproximal_run(F, target, limit, valid_op(),
                                                                  f, ushape, w),
               "scico": lambda target, limit: scico_run(
                   F, target, limit, lambda jnp: _scico_loss(jnp, f, psf, ushape, "valid"),
                   ushape, w, SCICO_RHO_EXTEND,
                   lambda jnp: jnp.pad(jnp.asarray(f), r, mode="edge"))})


def periodic_blur(psf, shape):
    """``(A, Aᵀ, H)``: the circular convolution with ``psf`` centred as ``mode="same"``
    (the PSF's element ``(m − 1) // 2`` at the origin) by NumPy's real FFT, and its
    transfer function ``H``."""
    k = np.zeros(shape)
    k[tuple(slice(0, m) for m in psf.shape)] = psf
    H = np.fft.rfft2(np.roll(k, tuple(-((m - 1) // 2) for m in psf.shape), axis=(0, 1)))

    def A(u):
        return np.fft.irfft2(np.fft.rfft2(np.reshape(u, shape)) * H, s=shape)

    def AT(v):
        return np.fft.irfft2(np.fft.rfft2(np.reshape(v, shape)) * H.conj(), s=shape)

    return A, AT, H


@pytest.mark.peer
@pytest.mark.parametrize("method", ["tvnumba", "pyproximal", "scico"])
def test_deconvolution_periodic_same_objective(benchmark, method):
    """camera blurred circularly by the Gaussian PSF, noise σ = 0.01 (seed 0), on
    ``deconvolve_tv_beta``'s objective with boundary "periodic" (circular blur, Neumann
    TV); the peers get the same circular convolution as an operator."""
    clean = camera(pick(256, 512))
    psf, w = PSFS["gaussian"][1], 1e-3
    shape = clean.shape
    A, AT, H = periodic_blur(psf, shape)
    wrapped = ndimage.convolve(clean, psf, mode="wrap")
    assert np.allclose(A(clean), wrapped, atol=1e-12)  # the same centring as tvnumba's
    f = wrapped + 0.01 * np.random.default_rng(0).standard_normal(shape)

    def F(u):
        res = A(u) - f
        return 0.5 * float(np.vdot(res, res)) + w * tvnumba.tv(np.reshape(u, shape))

    benchmark.group = (f"deconvolution, one objective (periodic, as deconvolve_tv_beta): "
                       f"camera {shape[0]}², Gaussian σ=2 15×15 PSF, weight 0.001")
    call = lambda: tvnumba.deconvolve_tv_beta(f, psf, w, boundary="periodic",  # noqa: E731
                                              return_info=True)
    if "periodic" not in _CACHE:  # the peers' objective is the one tvnumba reports
        u, info = call()
        assert abs(F(u) - info.objective) <= 1e-9 * info.objective
        _CACHE["periodic"] = info.objective

    def pylops_op():
        import pylops

        return pylops.FunctionOperator(lambda x: A(x).ravel(), lambda y: AT(y).ravel(),
                                       clean.size, clean.size, dtype="float64")

    def scico_loss(jnp):
        from scico import linop, loss

        Hj = jnp.asarray(H)
        op = linop.LinearOperator(input_shape=shape, input_dtype=jnp.float64,
                                  eval_fn=lambda x: jnp.fft.irfft2(jnp.fft.rfft2(x) * Hj,
                                                                   s=shape))
        return loss.SquaredL2Loss(y=jnp.asarray(f), A=op)

    same_objective(
        benchmark, method, key="periodic", limit=pick(20.0, 60.0), shape=shape, clean=clean,
        tvnumba_call=call, label="tvnumba deconvolve_tv_beta (eps=1e-3)",
        peers={"pyproximal": lambda target, limit: pyproximal_run(F, target, limit,
                                                                  pylops_op(), f, shape, w),
               "scico": lambda target, limit: scico_run(
                   F, target, limit, scico_loss, shape, w, SCICO_RHO_EXTEND,
                   lambda jnp: jnp.asarray(f))})


#: SCICO's ADMM penalty on the deconvolutions (the fastest to the target of 0.01, 0.03,
#: 0.1, 0.3, 1 on the small extended-grid case).
SCICO_RHO_EXTEND = 0.03


# --------------------------------------------------------------------------- inpainting
def text_mask(shape):
    """Thick strokes of a few block letters and scratches (drawn for 512², scaled)."""
    mask = np.zeros(shape, bool)
    k = shape[0] / 512
    strokes = [(60, 60, 60, 200), (60, 130, 230, 130), (60, 240, 230, 300),
               (230, 300, 60, 360), (300, 20, 420, 500), (480, 40, 350, 480),
               (20, 420, 500, 440)]
    half = max(1, round(4 * k))
    for r0, c0, r1, c1 in strokes:
        rr, cc = draw.line(*(round(v * k) for v in (r0, c0, r1, c1)))
        for dr in range(-half, half + 1):
            for dc in range(-half, half + 1):
                mask[np.clip(rr + dr, 0, shape[0] - 1), np.clip(cc + dc, 0, shape[1] - 1)] = True
    return mask


MASKS = {"random50": "50 % random pixels", "text": "text-like mask"}


@pytest.mark.parametrize("method", ["tvnumba", "tvnumba-beta1.5", "biharmonic"])
@pytest.mark.parametrize("mask_name", list(MASKS))
def test_inpainting(benchmark, mask_name, method):
    clean = camera(pick(256, 512))
    mask = (np.random.default_rng(0).random(clean.shape) < 0.5 if mask_name == "random50"
            else text_mask(clean.shape))
    damaged = np.where(mask, 0.0, clean)
    benchmark.group = (f"inpainting: camera {clean.shape[0]}², {MASKS[mask_name]} "
                       f"({100 * mask.mean():.1f} % missing)")
    if method.startswith("tvnumba"):
        beta = 1.5 if method.endswith("1.5") else 1.0
        u, info = measure(benchmark, lambda: tvnumba.inpaint_tv_beta(damaged, mask, beta=beta,
                                                                     return_info=True))
        record(benchmark, f"tvnumba inpaint_tv_beta β={beta:g}", PSNR=psnr(clean, u),
               method=info.method, iterations=info.iterations)
    else:
        u = measure(benchmark, lambda: inpaint_biharmonic(damaged, mask))
        record(benchmark, "skimage inpaint_biharmonic", role="baseline", PSNR=psnr(clean, u))


@pytest.mark.peer
@pytest.mark.parametrize("method", ["tvnumba", "pyproximal", "scico"])
def test_inpainting_same_objective(benchmark, method):
    """The 50 % random-pixel case on ``inpaint_tv_beta``'s objective
    ``½‖m ⊙ (u − f)‖² + 0.01 · TV(u)`` (m = 1 on the known pixels)."""
    clean = camera(pick(256, 512))
    mask = np.random.default_rng(0).random(clean.shape) < 0.5
    f = np.where(mask, 0.0, clean)
    known = ~mask
    w = 0.01
    n = clean.shape[0]

    def F(u):
        res = (np.reshape(u, clean.shape) - f)[known]
        return 0.5 * float(np.vdot(res, res)) + w * tvnumba.tv(np.reshape(u, clean.shape))

    benchmark.group = (f"inpainting, one objective: camera {n}², 50 % random pixels, "
                       f"weight 0.01")

    def restriction():
        import pylops

        return pylops.Restriction(n * n, np.flatnonzero(known))

    def scico_loss(jnp):
        from scico import linop, loss

        return loss.SquaredL2Loss(y=jnp.asarray(f * known),
                                  A=linop.Diagonal(jnp.asarray(known, jnp.float64)))

    same_objective(
        benchmark, method, key="inpaint", limit=pick(20.0, 60.0), shape=clean.shape,
        clean=clean, tvnumba_call=lambda: tvnumba.inpaint_tv_beta(f, mask, w, return_info=True),
        label="tvnumba inpaint_tv_beta (eps=1e-3)",
        peers={"pyproximal": lambda target, limit: pyproximal_run(
                   F, target, limit, restriction(), f[known], clean.shape, w),
               "scico": lambda target, limit: scico_run(
                   F, target, limit, scico_loss, clean.shape, w, SCICO_RHO_INPAINT,
                   lambda jnp: jnp.asarray(f))})


#: SCICO's ADMM penalty on inpainting (the fastest to the target of 0.01, 0.03, 0.1, 0.3,
#: 1 on the small case).
SCICO_RHO_INPAINT = 0.3


# --------------------------------------------------------------------------- CT
CT_WEIGHTS = {(128, 30): 0.03, (128, 60): 0.025, (256, 30): 0.1, (256, 60): 0.067}
FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def ct_case(n_angles):
    key = ("ct", n_angles)
    if key not in _CACHE:
        n = pick(128, 256)
        image = resize(shepp_logan_phantom(), (n, n))
        theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
        clean = radon(image, theta)
        sino = clean + 0.01 * clean.max() * np.random.default_rng(0).standard_normal(clean.shape)
        _CACHE[key] = n, image, theta, sino
    return _CACHE[key]


def quiet(fn, *args, **kw):
    """scikit-image's iradon/iradon_sart warn about the reconstruction circle."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def sart(sino, theta, k):
    u = None
    for _ in range(k):
        u = quiet(iradon_sart, sino, theta, image=u)
    return u


@pytest.mark.parametrize("method", ["tvnumba", "fbp", "sart"])
@pytest.mark.parametrize("n_angles", [30, 60], ids=lambda a: f"{a}angles")
def test_ct(benchmark, n_angles, method):
    n, image, theta, sino = ct_case(n_angles)
    benchmark.group = (f"CT: Shepp-Logan {n}², {n_angles} angles, noise 1 % of the "
                       f"sinogram's maximum")
    if method == "tvnumba":
        w = CT_WEIGHTS[n, n_angles]
        small = radon(image[::4, ::4], theta[::4])
        u, info = measure(benchmark, lambda: tvnumba.reconstruct_tv_beta(
            sino, theta, weight=w, return_info=True),
            warm=lambda: tvnumba.reconstruct_tv_beta(small, theta[::4], weight=w),
            rounds=pick(3, 1))
        record(benchmark, "tvnumba reconstruct_tv_beta β=1", PSNR=psnr(image, u),
               parameter=f"weight={w:g}", iterations=info.iterations)
    elif method == "fbp":
        name = max(FILTERS, key=lambda fl: psnr(image, quiet(iradon, sino, theta,
                                                             filter_name=fl)))
        u = measure(benchmark, lambda: quiet(iradon, sino, theta, filter_name=name))
        record(benchmark, "skimage iradon (FBP)", role="baseline", PSNR=psnr(image, u),
               parameter=f"filter={name}")
    else:
        scores, u = [], None
        for _ in range(10):
            u = quiet(iradon_sart, sino, theta, image=u)
            scores.append(psnr(image, u))
        k = int(np.argmax(scores)) + 1
        u = measure(benchmark, lambda: sart(sino, theta, k))
        record(benchmark, "skimage iradon_sart (SART)", role="baseline", PSNR=psnr(image, u),
               parameter=f"{k} iterations")


@pytest.mark.peer
@pytest.mark.parametrize("method", ["tvnumba", "pyproximal"])
def test_ct_same_objective(benchmark, method):
    """The 30-angle case on ``reconstruct_tv_beta``'s objective
    ``1/(2 n_θ) ‖A u − f‖² + w · TV(u)`` with tvnumba's projector as the peer's operator
    (a ``pylops.FunctionOperator``)."""
    n, image, theta, sino = ct_case(30)
    w = CT_WEIGHTS[n, 30]
    scale = 0.5 / len(theta)

    def F(u):
        res = radon(np.reshape(u, (n, n)), theta) - sino
        return scale * float(np.vdot(res, res)) + w * tvnumba.tv(np.reshape(u, (n, n)))

    benchmark.group = (f"CT, one objective: Shepp-Logan {n}², 30 angles, weight {w:g}")

    def projector():
        import pylops

        return pylops.FunctionOperator(
            lambda x: radon(x.reshape(n, n), theta).ravel(),
            lambda y: radon_adjoint(y.reshape(sino.shape), theta, shape=(n, n)).ravel(),
            sino.size, n * n, dtype="float64")

    same_objective(
        benchmark, method, key="ct", limit=pick(30.0, 150.0), shape=(n, n), clean=image,
        tvnumba_call=lambda: tvnumba.reconstruct_tv_beta(sino, theta, weight=w,
                                                         return_info=True),
        label="tvnumba reconstruct_tv_beta (eps=1e-3)",
        peers={"pyproximal": lambda target, limit: pyproximal_run(
                   F, target, limit, projector(), sino, (n, n), w, sigma=2 * scale)})


@pytest.mark.parametrize("impl", ["tvnumba", "skimage"])
@pytest.mark.parametrize("direction", ["forward", "adjoint"])
@pytest.mark.parametrize("n_angles", [60, 180], ids=lambda a: f"{a}angles")
def test_projector(benchmark, n_angles, direction, impl):
    n = pick(128, 256)
    image = resize(shepp_logan_phantom(), (n, n))
    theta = np.linspace(0.0, 180.0, n_angles, endpoint=False)
    sino = radon(image, theta)
    benchmark.group = f"Radon projector {direction}: {n}², {n_angles} angles, float64"
    if direction == "forward":
        fns = {"tvnumba": lambda: radon(image, theta),
               "skimage": lambda: sk_radon(image, theta)}
        row = "forward: radon / skimage radon"
    else:
        fns = {"tvnumba": lambda: radon_adjoint(sino, theta),
               "skimage": lambda: quiet(iradon, sino, theta, filter_name=None)}
        row = "adjoint: radon_adjoint / skimage iradon(filter_name=None)"
    measure(benchmark, fns[impl])
    record(benchmark, impl, role="tvnumba" if impl == "tvnumba" else "baseline",
           table=f"Radon projector, {n}² float64", row=f"{row}, {n_angles} angles")


# --------------------------------------------------------------------------- defaults
def _tight(key, call):
    """(answer, objective) of one problem at eps = 1e-6, made once."""
    if key not in _CACHE:
        u, info = call(1e-6)
        _CACHE[key] = u, info.objective
    return _CACHE[key]


def default_problems():
    """Each inverse problem as a user calls it: (label, clean, call(eps) -> (u, info))."""
    from skimage.color import rgb2gray
    from skimage.data import astronaut

    n = pick(128, 256)
    rng = np.random.default_rng(0)
    probs = {}
    ast = resize(rgb2gray(astronaut()), (n, n), anti_aliasing=True)
    diag = np.eye(9) / 9.0  # a 9-pixel diagonal motion
    pads = [(4, 4), (4, 4)]
    f = fftconvolve(np.pad(ast, pads, mode="reflect"), diag, mode="valid")
    f = f + 0.01 * rng.standard_normal(f.shape)
    probs["deconv-extend"] = (f"deconvolve_tv_beta, astronaut {n}², diagonal motion 9 px, "
                              "extend, weight 0.002", ast,
                              lambda eps: tvnumba.deconvolve_tv_beta(
                                  f, diag, 0.002, eps=eps, return_info=True))
    cam = camera(n)
    g = gaussian_psf(15, 2.0)
    fp = ndimage.convolve(cam, g, mode="wrap") + 0.01 * rng.standard_normal(cam.shape)
    probs["deconv-periodic"] = (f"deconvolve_tv_beta, camera {n}², Gaussian σ=2, periodic, "
                                "weight 0.001", cam,
                                lambda eps: tvnumba.deconvolve_tv_beta(
                                    fp, g, 0.001, boundary="periodic", eps=eps,
                                    return_info=True))
    fz = fftconvolve(cam, g, mode="same") + 0.01 * rng.standard_normal(cam.shape)
    probs["deconv-zero"] = (f"deconvolve_tv_beta, camera {n}², Gaussian σ=2, dark past the "
                            "frame (fftconvolve 'same'), extend, weight 0.001", cam,
                            lambda eps: tvnumba.deconvolve_tv_beta(
                                fz, g, 0.001, eps=eps, return_info=True))
    mask = rng.random(cam.shape) < 0.5
    probs["inpaint"] = (f"inpaint_tv_beta, camera {n}², 50 % missing", cam,
                        lambda eps: tvnumba.inpaint_tv_beta(cam, mask, eps=eps,
                                                            return_info=True))
    m, phantom, theta, sino = ct_case(30)
    probs["ct"] = (f"reconstruct_tv_beta, Shepp-Logan {m}², 30 angles, weight "
                   f"{CT_WEIGHTS[m, 30]:g}", phantom,
                   lambda eps: tvnumba.reconstruct_tv_beta(sino, theta, CT_WEIGHTS[m, 30],
                                                           eps=eps, return_info=True))
    k = pick(48, 64)
    small = camera(k)
    noisy_small = small + 0.1 * rng.standard_normal(small.shape)
    from scipy.sparse import identity

    eye = identity(k * k, format="csr")
    probs["solve-identity"] = (f"solve_tv_beta, A = I (sparse matrix), camera {k}², "
                               "noise 0.1, weight 0.1", small,
                               lambda eps: tvnumba.solve_tv_beta(
                                   eye, noisy_small, 0.1, shape=(k, k), eps=eps,
                                   return_info=True))
    return probs


@pytest.mark.parametrize("problem", ["deconv-extend", "deconv-periodic", "deconv-zero",
                                     "inpaint", "ct", "solve-identity"])
def test_defaults_against_tight(benchmark, problem):
    if "defaults" not in _CACHE:
        _CACHE["defaults"] = default_problems()
    label, clean, call = _CACHE["defaults"][problem]
    benchmark.group = "inverse problems: the default eps against a tight solve"
    u_tight, tight = _tight(("tight", problem), call)
    u, info = measure(benchmark, lambda: call(1e-3), rounds=pick(None, 3))
    record(benchmark, label, excess=(info.objective - tight) / tight,
           ΔPSNR=psnr(clean, np.clip(u, 0, 1)) - psnr(clean, np.clip(u_tight, 0, 1)),
           method=info.method, gap=info.gap, bound=info.bound, converged=info.converged,
           iterations=info.iterations)
