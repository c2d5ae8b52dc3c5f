"""The one-pass Chambolle-Pock iteration of the CPU backend (``CPNumba.step``,
:func:`tvnumba.backends.cpu.solver_kernels.cp_fused_step`) against its two passes
(``dual_step`` then ``primal_step``): the same iterates ``u``, ``ū``, ``p`` and the same
residual, whatever the work units (thread count, rows per unit, one-row units)."""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
from numpy.testing import assert_allclose

import tvnumba
from tvnumba._validate import make_plan
from tvnumba.backends.cpu import CPNumba
from tvnumba.solvers.primal_dual import CP_GAMMA, STEP_RATIO, _d_norm

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


def test_three_axes_keep_two_passes():
    f = np.random.default_rng(0).random((1, 1, 6, 7, 8))
    plan = make_plan(f, 1.0, axes=(2, 3, 4), channel_axis=1)
    assert not CPNumba(f, 0.1, plan, identity=True).fused
    plan2 = make_plan(f[:, :, 0], 1.0, axes=(2, 3), channel_axis=1)
    assert not CPNumba(f[:, :, :1], 0.1, plan2, identity=False).fused
