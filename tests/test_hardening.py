"""Regression tests of the hardening issue: every reproducer becomes a test."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tvnumba
from reference import ref_tv_grad


# --------------------------------------------------------------------------- out= overlapping u
def test_out_is_u():
    """``tv_grad(u, out=u)`` used to give [-1, 1, 2, -1, 2]."""
    u = np.array([0.0, 1, 3, 2, 5])
    expected = ref_tv_grad(u.copy())
    got = tvnumba.tv_grad(u, out=u)
    assert got is u
    assert_allclose(u, expected)
    assert_allclose(expected, [-1, 0, 2, -2, 1])


@pytest.mark.parametrize("shift", [-3, -1, 1, 2, 5])
@pytest.mark.parametrize("beta", [0.7, 1.0, 2.0])
def test_out_overlaps_u_partially(shift, beta):
    """Shifted and partial overlaps of one buffer, in 2-D, against the reference on a copy."""
    rng = np.random.default_rng(abs(shift))
    buf = rng.standard_normal(12 * 9 + 40)
    start = 20
    u = buf[start:start + 108].reshape(12, 9)
    out = buf[start + shift:start + shift + 108].reshape(12, 9)
    expected = ref_tv_grad(u.copy(), beta=beta, smoothing=0.1)
    value, grad = tvnumba.tv_value_and_grad(u, beta=beta, smoothing=0.1, out=out)
    assert grad is out
    assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_out_is_a_transposed_view_of_u():
    rng = np.random.default_rng(1)
    u = rng.standard_normal((7, 7))
    expected = ref_tv_grad(u.copy(), beta=1.5)
    tvnumba.tv_grad(u, 1.5, out=u.T)
    assert_allclose(u.T, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- CP gives up only at rounding
def _crop_case(seed, shape=(96, 80)):
    from skimage import data, img_as_float

    rng = np.random.default_rng(seed)
    cam = img_as_float(data.camera())
    i, j = rng.integers(0, 512 - shape[0]), rng.integers(0, 512 - shape[1])
    g = cam[i:i + shape[0], j:j + shape[1]]
    return g + 0.1 * rng.standard_normal(g.shape)


def test_cp_reproducer_converges_with_defaults():
    """It stopped at 1850 iterations with gap 3.6e-3 > eps, converged=False."""
    from skimage import data, img_as_float

    g = img_as_float(data.camera()[100:196, 200:280])
    f = g + 0.1 * np.random.default_rng(6).standard_normal(g.shape)
    u, info = tvnumba.denoise_tv_beta(f, weight=3.0, isotropic=False, return_info=True)
    assert info.converged and info.gap <= 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
def test_cp_float64_converges_on_everyday_cases(seed):
    """Weights 0.03-3, iso and aniso, eps = 1e-4: float64 never gives up above rounding."""
    f = _crop_case(seed)
    weight = float(np.geomspace(0.03, 3.0, 6)[seed])
    for iso in (True, False):
        u, info = tvnumba.denoise_tv_beta(f, weight, isotropic=iso, eps=1e-4, return_info=True)
        assert info.converged, (weight, iso, info)


def test_cp_anisotropic_tight_eps_converges_by_exact_finish():
    """Aniso, weight 3, eps = 1e-8 on the reproducer: not within 20 000 CP
    iterations before the exact finish (solvers/_polish.py); now < 10 000, and
    the answer's own objective and certificate are those reported."""
    from skimage import data, img_as_float

    g = img_as_float(data.camera()[100:196, 200:280])
    f = g + 0.1 * np.random.default_rng(6).standard_normal(g.shape)
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


def _reproducer():
    from skimage import data, img_as_float

    g = img_as_float(data.camera()[100:196, 200:280])
    return g + 0.1 * np.random.default_rng(6).standard_normal(g.shape)


def _iso_tv(u):
    gx = np.zeros_like(u)
    gy = np.zeros_like(u)
    gx[:, :-1] = np.diff(u, axis=1)
    gy[:-1] = np.diff(u, axis=0)
    return float(np.sqrt(gx * gx + gy * gy).sum())


@pytest.mark.parametrize("weight", [1.0, 3.0])
def test_cp_isotropic_tight_eps_converges_by_newton_finish(weight):
    """Iso, eps = 1e-8 on the reproducer with a cap of 10 000 iterations: CP alone
    is not converged there (gap 4e-8 at weight 1, 3e-7 at weight 3); the Newton
    finish (solvers/_polish.py) certifies it at the first try, and the answer's
    own objective is the one reported and within eps of a long CP run's."""
    from tvnumba.solvers import primal_dual

    f = _reproducer()
    u, info = tvnumba.denoise_tv_beta(f, weight, eps=1e-8, max_num_iter=10000,
                                      return_info=True)
    assert info.converged and info.gap <= 1e-8, info
    assert info.iterations == primal_dual.POLISH_ISO_START, info
    objective = 0.5 * float(((u - f) ** 2).sum()) + weight * _iso_tv(u)
    assert_allclose(objective, info.objective, rtol=1e-12)
    start = primal_dual.POLISH_ISO_START
    primal_dual.POLISH_ISO_START = float("inf")
    try:
        u_cp, info_cp = tvnumba.denoise_tv_beta(f, weight, eps=1e-8, max_num_iter=10000,
                                                return_info=True)
    finally:
        primal_dual.POLISH_ISO_START = start
    assert not info_cp.converged
    # both within their gaps of the optimum: ½‖u − u*‖² ≤ P(u) − P*
    assert info_cp.objective >= info.objective * (1 - 1e-8)
    bound = np.sqrt(2 * info.objective * (info.gap + info_cp.gap)) * 2
    assert np.sqrt(((u - u_cp) ** 2).sum()) <= bound


@pytest.mark.parametrize("eps,cap", [(1e-3, 10000), (1e-4, 10000), (1e-6, 50000),
                                     (1e-8, 500000)])
def test_cp_default_cap_grows_as_one_over_root_eps(eps, cap):
    from tvnumba.solvers import SOLVERS

    assert SOLVERS["cp"].cap(eps) == cap
    assert SOLVERS["lbfgs"].cap(eps) == 3000 and SOLVERS["mm"].cap(eps) == 200


def test_cp_isotropic_tight_eps_converges_with_the_default_cap(monkeypatch):
    """Iso, weight 1, eps = 1e-8 on the reproducer: CP needs 18 450 iterations, past
    the old fixed cap of 10 000 (not converged there); the default cap grows with
    1/√eps, so CP converges on its own (the Newton finish is not needed), to the
    objective it reports."""
    from tvnumba.solvers import _polish

    monkeypatch.setattr(_polish, "polish_isotropic", None)  # would raise if called
    f = _reproducer()
    u, info = tvnumba.denoise_tv_beta(f, 1.0, eps=1e-8, return_info=True)
    assert info.converged and info.gap <= 1e-8 and info.iterations > 10000, info
    assert_allclose(0.5 * float(((u - f) ** 2).sum()) + _iso_tv(u), info.objective,
                    rtol=1e-12)


def test_cp_isotropic_newton_finish_declines_and_cp_continues(monkeypatch):
    """A finish that cannot certify (one Newton step per stage, one stage) is
    refused: CP goes on and returns its own iterate."""
    from tvnumba.solvers import _polish

    monkeypatch.setattr(_polish, "ISO_STEPS", 1)
    monkeypatch.setattr(_polish, "ISO_STAGES", 1)
    calls = []
    real = _polish.polish_isotropic
    monkeypatch.setattr(_polish, "polish_isotropic",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    f = _reproducer()
    u, info = tvnumba.denoise_tv_beta(f, 1.0, eps=1e-8, max_num_iter=3000, return_info=True)
    assert calls == [1]  # tried at POLISH_ISO_START, next only at twice that
    assert info.iterations == 3000 and not info.converged and info.gap > 1e-8
    objective = 0.5 * float(((u - f) ** 2).sum()) + _iso_tv(u)
    assert_allclose(objective, info.objective, rtol=1e-10)


def test_cp_isotropic_newton_finish_not_tried_when_cp_is_on_course(monkeypatch):
    """The crop at weight 0.3 converges by CP alone at 6 765 iterations: within the
    default cap the finish is never tried (two failed tries cost 15× the time)."""
    from tvnumba.solvers import _polish

    monkeypatch.setattr(_polish, "polish_isotropic", None)  # would raise if called
    u, info = tvnumba.denoise_tv_beta(_reproducer(), 0.3, eps=1e-8, return_info=True)
    assert info.converged and info.iterations > 4000, info


def test_cp_isotropic_newton_finish_not_tried_at_everyday_eps(monkeypatch):
    from tvnumba.solvers import _polish

    monkeypatch.setattr(_polish, "polish_isotropic", None)  # would raise if called
    u, info = tvnumba.denoise_tv_beta(_reproducer(), 1.0, eps=1e-6, return_info=True)
    assert info.converged and info.iterations > 2000


def test_newton_finish_couples_channels_and_spacing():
    """Colour (|∇u| over the channels) and anisotropic spacing: certified by
    the finish, and within the gaps' distance of CP's own iterate."""
    from tvnumba.solvers import primal_dual

    f = _reproducer()[:24, :20]
    rgb = np.stack([f, f[::-1], 0.5 * f], axis=-1)
    kw = dict(eps=1e-8, channel_axis=-1, spacing=(1.0, 2.0), return_info=True)
    # CP alone would converge at 2 505: within a cap of 2 500 it would not, so the
    # finish is tried (and answers) at POLISH_ISO_START
    u, info = tvnumba.denoise_tv_beta(rgb, 0.5, max_num_iter=2500, **kw)
    assert info.converged and info.gap <= 1e-8, info
    assert info.iterations == primal_dual.POLISH_ISO_START  # the finish's answer
    u_cp, info_cp = tvnumba.denoise_tv_beta(rgb, 0.5, max_num_iter=400, **kw)
    assert info_cp.objective >= info.objective * (1 - 1e-8)
    bound = np.sqrt(2 * info.objective * (info.gap + info_cp.gap)) * 2
    assert np.sqrt(((u - u_cp) ** 2).sum()) <= bound


# --------------------------------------------------------------------------- no silent NaN image
@pytest.mark.parametrize("dtype,weight", [(np.float32, 1e35), (np.float64, 1e200)])
def test_huge_weight_beta_below_one_raises_instead_of_nan(dtype, weight):
    f = np.random.default_rng(0).random((16, 16)).astype(dtype)
    with pytest.raises(ValueError, match="weight="):
        tvnumba.denoise_tv_beta(f, weight, 0.5)


def test_large_finite_weight_still_solves():
    f = np.random.default_rng(0).random((16, 16))
    u, info = tvnumba.denoise_tv_beta(f, 1e10, 0.5, return_info=True)
    assert np.isfinite(u).all() and info.converged
    assert np.ptp(u) < 1e-6  # the limit: a constant image


# --------------------------------------------------------------------------- reproducibility
CASES_REPRO = [(0.5, 0.04, {}), (1.0, 0.1, {}), (1.0, 0.1, {"isotropic": False}),
               (1.5, 0.25, {}), (2.0, 0.3, {}), (1.0, 0.1, {"smoothing": 0.01})]


@pytest.mark.parametrize("shape", [(64, 72), (9, 17, 21)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solves_are_bitwise_reproducible_whatever_the_thread_count(shape, dtype, monkeypatch):
    """Every sum is order-fixed (units from the pool's size, chunked vector sums, no
    ``part.sum()`` inside a parallel kernel, chunked elementwise loops): the same bits
    run after run although TBB schedules dynamically, and on 1 thread as on the pool
    (before: 1.5e-11 apart for mm; 1.9e-10 for L-BFGS with 1 against 2 threads)."""
    monkeypatch.setenv("TVNUMBA_LOAD_AWARE", "0")
    f = np.random.default_rng(3).random(shape).astype(dtype)
    for beta, w, kw in CASES_REPRO:
        first = tvnumba.denoise_tv_beta(f, w, beta, **kw)
        np.testing.assert_array_equal(tvnumba.denoise_tv_beta(f, w, beta, **kw), first)
        with tvnumba.thread_limit(1):
            np.testing.assert_array_equal(tvnumba.denoise_tv_beta(f, w, beta, **kw), first)


def test_dct_tiny_spacing_gives_the_limit_not_an_error():
    """spacing=1e-200 with beta=2 raised ZeroDivisionError: the limit is the mean image."""
    img = np.random.default_rng(0).random((16, 16))
    u = tvnumba.denoise_tv_beta(img, 0.1, 2, spacing=1e-200)
    assert_allclose(u, img.mean(), rtol=1e-12)


# --------------------------------------------------------------------------- peak memory
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method,beta,smoothing", [
    ("lbfgs", 1.5, 0.0), ("lbfgs", 1.0, 0.01), ("lbfgs", 1.2, 0.0),
    ("cp", 1.0, 0.0), ("mm", 0.5, 0.0), ("dct", 2.0, 0.0)])
def test_peak_memory_within_12x_the_input(method, beta, smoothing, dtype):
    """L-BFGS peaked at 47x a float32 input and 22x a float64 one (float64 work arrays,
    eight float64 pairs, a float64 copy of the data); every solver must stay within 12x
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


# --------------------------------------------------------------------------- 1-D signals
@pytest.mark.parametrize("n", [4095, 4096, 8193, 30011])
@pytest.mark.parametrize("kw", [dict(), dict(beta=1.7, smoothing=0.05), dict(beta=0.6),
                                dict(beta=1.0, isotropic=False, spacing=0.5)])
def test_long_signal_in_segments_matches_reference(n, kw):
    """A 1-D signal runs in segments of >= 4096 samples, each recomputing the weight
    behind it: exact across the segment boundaries, for batches and channels too."""
    from reference import ref_tv, ref_tv_grad

    u = np.random.default_rng(n).standard_normal(n)
    value, grad = tvnumba.tv_value_and_grad(u, **kw)
    assert_allclose(value, ref_tv(u, **kw), rtol=1e-12)
    assert_allclose(grad, ref_tv_grad(u, **kw), rtol=1e-10, atol=1e-12)
    u3 = np.random.default_rng(1).standard_normal((2, n, 3))
    kw3 = dict(kw, axes=1, channel_axis=2, reduction="none")
    value, grad = tvnumba.tv_value_and_grad(u3, **kw3)
    assert_allclose(value, ref_tv(u3, **kw3), rtol=1e-12)
    assert_allclose(grad, ref_tv_grad(u3, **kw3), rtol=1e-10, atol=1e-12)


def test_long_signal_value_needs_no_signal_sized_scratch():
    """tv of a 1-D float32 signal allocated 5x the input inside the kernel (the whole
    signal was one row with row-sized scratch); in segments it needs a few KiB per
    thread.  Measured as the process's peak RSS (Numba's allocations are not traced)."""
    import subprocess
    import sys

    code = (
        "import resource, numpy as np, tvnumba\n"
        "u = np.random.default_rng(0).random(8_000_000, dtype=np.float32)\n"
        "tvnumba.tv(u[:9000], beta=1.7)\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "tvnumba.tv(u, beta=1.7)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / u.nbytes)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert float(out.stdout) < 1.0, out.stdout
