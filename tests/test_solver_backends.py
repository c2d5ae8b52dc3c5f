"""Every solver on every backend that runs without a GPU, by parametrisation.

The whole-array backend (``tvnumba.backends.array``) is the code CuPy arrays run
(with CuPy as the array module), and the path for more than three spatial axes;
these tests run it with NumPy beside the Numba CPU backend, through the solver entry
``tvnumba.solvers.solve`` with an explicit backend: each vector operation against the
fused Numba kernel, each solver against the other backend and against optimality
conditions recomputed from ``tvnumba.tv_grad``.
"""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage import data, img_as_float

import tvnumba
from tvnumba._validate import make_plan
from tvnumba.backends.array import ArrayBackend, ArrayOps, MMArray
from tvnumba.backends.cpu import CpuBackend, MMNumba
from tvnumba.backends.cpu import vector_kernels
from tvnumba.solvers import Identity, solve

BACKENDS = {"cpu": CpuBackend, "array": lambda: ArrayBackend(np)}


@pytest.fixture(scope="module")
def camera():
    rng = np.random.default_rng(0)
    f = img_as_float(data.camera()[::8, ::8])
    return f + 0.1 * rng.standard_normal(f.shape)


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


def objective(u, f, weight, beta, **kw):
    r = np.asarray(u, np.float64) - np.asarray(f, np.float64)
    return 0.5 * float(np.sum(r * r)) + weight * tvnumba.tv(np.asarray(u, np.float64), beta,
                                                            **kw)


def certificate(u, f, weight, beta, **kw):
    """½‖∇F‖² / (F − ½‖∇F‖²), recomputed from tv_grad."""
    u64 = np.asarray(u, np.float64)
    g = (u64 - f) + weight * tvnumba.tv_grad(u64, beta, **kw)
    half = 0.5 * float(np.sum(g * g))
    return half / (objective(u, f, weight, beta, **kw) - half)


# --------------------------------------------------------------------------- vector ops
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
    both("extrapolate", a, b, c, t, outs=(0, 2))
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


# --------------------------------------------------------------------------- solvers
CASES = [
    dict(),
    dict(isotropic=False),
    dict(spacing=(1.0, 0.6)),
]


@pytest.mark.parametrize("kw", CASES)
@pytest.mark.parametrize("beta,method", [(1.0, "cp"), (1.5, "lbfgs"), (2.0, "dct"),
                                         (0.6, "mm"), (1.3, "mm")])
def test_array_backend_matches_numba(camera, kw, beta, method):
    w = 0.1
    smoothing = 0.02 if method == "mm" else 0.0
    u_a, info_a = denoise_on(BACKENDS["array"](), camera, w, beta, method=method,
                             smoothing=smoothing, eps=1e-6, **kw)
    u_n, info_n = denoise_on(BACKENDS["cpu"](), camera, w, beta, method=method,
                             smoothing=smoothing, eps=1e-6, **kw)
    assert info_a.method == info_n.method == method and info_a.converged
    tv_kw = dict(smoothing=smoothing, **kw)
    F_a = objective(u_a, camera, w, beta, **tv_kw)
    F_n = objective(u_n, camera, w, beta, **tv_kw)
    assert_allclose(info_a.objective, F_a, rtol=1e-9)
    assert_allclose(F_a, F_n, rtol=1e-5)
    if beta >= 1 and method != "cp":  # convex smooth: the gradient certificate holds
        assert certificate(u_a, camera, w, beta, **tv_kw) <= 1e-6 * (1 + 1e-6)
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
