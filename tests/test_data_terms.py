"""tvnumba.solvers.DataTerm: a new data term is an addition to the generic solvers.

A test-only ``A = diag(m)`` (a mask with zeros and weights) is solved by primal-dual, L-BFGS
and MM through the solver entry ``tvnumba.solvers.solve``, on every CPU backend, against an
independent SciPy solve of the same objective (built on the float64 reference, never on
tvnumba)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.optimize import minimize

from reference import ref_tv, ref_tv_grad
from tvnumba._validate import make_plan
from tvnumba.backends import select
from tvnumba.backends.array import ArrayBackend
from tvnumba.solvers import DataTerm, solve

BACKENDS = {"cpu": lambda plan: select(np.zeros(1)).for_plan(plan),
            "array": lambda plan: ArrayBackend(np)}


class MaskTerm(DataTerm):
    """``½‖m ⊙ u − f‖²`` written only as an operator and its adjoint: every solver
    works from these (primal-dual then dualises A: no proximal step is given)."""

    arrays = ("f", "m")  # moved to the backend and cast together

    def __init__(self, m, f):
        super().__init__(f)
        self.m = m

    def forward(self, u):
        return self.m * u

    def adjoint(self, r):
        return self.m * r


class MaskTermWithProx(MaskTerm):
    """The same term with its (diagonal) proximal step: primal-dual uses it."""

    has_prox = True

    def prox(self, v, tau, out):
        out[...] = (v + tau * self.m * self.f) / (1 + tau * self.m * self.m)


@pytest.fixture(scope="module")
def problem():
    rng = np.random.default_rng(11)
    clean = np.zeros((7, 6))
    clean[2:5, 1:4] = 1.0
    m = rng.uniform(0.3, 1.0, clean.shape)
    m[rng.random(clean.shape) < 0.25] = 0.0  # missing pixels
    f = m * (clean + 0.1 * rng.standard_normal(clean.shape))
    return m, f


def objective(u, m, f, weight, beta, **kw):
    r = m * u - f
    return 0.5 * float(np.sum(r * r)) + weight * ref_tv(u, beta=beta, **kw)


def scipy_smooth(m, f, weight, beta, **kw):
    """L-BFGS-B on the same smooth objective (β > 1 or smoothing > 0), to 1e-12."""
    def fun(x):
        u = x.reshape(f.shape)
        r = m * u - f
        g = m * r + weight * ref_tv_grad(u, beta=beta, **kw)
        return 0.5 * float(np.sum(r * r)) + weight * ref_tv(u, beta=beta, **kw), g.ravel()

    res = minimize(fun, (m * f).ravel(), jac=True, method="L-BFGS-B",
                   options=dict(maxiter=20000, ftol=1e-15, gtol=1e-11, maxcor=30))
    return res.x.reshape(f.shape)


def scipy_anisotropic_tv1(m, f, weight):
    """β = 1 anisotropic, non-smooth: the equivalent smooth constrained problem
    min ½‖m u − f‖² + weight Σ t  s.t. −t ≤ D u ≤ t, by SLSQP."""
    H, W = f.shape
    n = H * W
    rows = []
    for i in range(H):
        for j in range(W):
            for di, dj in ((1, 0), (0, 1)):
                if i + di < H and j + dj < W:
                    r = np.zeros(n)
                    r[(i + di) * W + j + dj] = 1.0
                    r[i * W + j] = -1.0
                    rows.append(r)
    D = np.array(rows)
    k = len(D)
    mf, ff = m.ravel(), f.ravel()

    def fun(x):
        u, t = x[:n], x[n:]
        r = mf * u - ff
        return 0.5 * r @ r + weight * t.sum(), np.concatenate([mf * r, np.full(k, weight)])

    A = np.block([[-D, np.eye(k)], [D, np.eye(k)]])  # t - Du >= 0, t + Du >= 0
    x0 = np.concatenate([mf * ff, np.abs(D @ (mf * ff)) + 1e-3])
    res = minimize(fun, x0, jac=True, method="SLSQP",
                   constraints=[dict(type="ineq", fun=lambda x: A @ x, jac=lambda x: A)],
                   options=dict(maxiter=5000, ftol=1e-13))
    assert res.success, res.message
    return res.x[:n].reshape(f.shape)


def run(backend_name, term, f, weight, beta, method, eps, **plan_kw):
    plan = make_plan(f, beta, **plan_kw)
    backend = BACKENDS[backend_name](plan)
    u5, info = solve(term, weight, backend=backend, plan=plan, method=method, eps=eps,
                     max_num_iter=20000)
    return np.asarray(plan.from_canonical(u5)), info


def canonical(a, **plan_kw):
    plan = make_plan(a, 1.0, **plan_kw)
    return np.ascontiguousarray(plan.to_canonical(a))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("term_cls", [MaskTerm, MaskTermWithProx])
def test_primal_dual_any_data_term(problem, backend, term_cls):
    """β = 1 anisotropic; the mask has no zeros here, so the minimiser is unique
    (with missing pixels TV₁ can leave it undetermined) and u can be compared."""
    m, f = problem
    m = np.where(m > 0, m, 0.2)
    weight = 0.2
    ref = scipy_anisotropic_tv1(m, f, weight)
    term = term_cls(canonical(m), canonical(f))
    u, info = run(backend, term, f, weight, 1.0, "cp", 1e-10, isotropic=False)
    assert info.method == "cp" and info.converged, info
    F, F_ref = objective(u, m, f, weight, 1.0, isotropic=False), objective(
        ref, m, f, weight, 1.0, isotropic=False)
    assert_allclose(info.objective, F, rtol=1e-9)
    assert F <= F_ref * (1 + 1e-7)
    assert_allclose(F, F_ref, rtol=1e-6)
    assert_allclose(u, ref, atol=2e-4)


@pytest.mark.slow
@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("method,beta,smoothing", [("lbfgs", 1.5, 0.0), ("lbfgs", 1.0, 0.05),
                                                   ("mm", 1.5, 0.05), ("mm", 1.2, 0.05)])
def test_smooth_solvers_any_data_term(problem, backend, method, beta, smoothing):
    m, f = problem
    weight = 0.2
    kw = dict(smoothing=smoothing)
    ref = scipy_smooth(m, f, weight, beta, **kw)
    term = MaskTerm(canonical(m), canonical(f))
    u, info = run(backend, term, f, weight, beta, method, 1e-12, **kw)
    assert info.method == method and info.smoothing == smoothing
    F, F_ref = objective(u, m, f, weight, beta, **kw), objective(ref, m, f, weight, beta, **kw)
    assert_allclose(info.objective, F, rtol=1e-9)
    assert_allclose(F, F_ref, rtol=1e-8)
    assert_allclose(u, ref, atol=1e-4)


def test_auto_picks_lbfgs_for_beta2_with_a_data_term(problem):
    """β = 2 has the DCT closed form for denoising only: with another data term
    ``method="auto"`` takes L-BFGS, and ``method="dct"`` says why it cannot."""
    m, f = problem
    term = MaskTerm(canonical(m), canonical(f))
    u, info = run("cpu", term, f, 0.2, 2.0, "auto", 1e-10)
    assert info.method == "lbfgs"
    with pytest.raises(ValueError, match="dct.*data term"):
        run("cpu", MaskTerm(canonical(m), canonical(f)), f, 0.2, 2.0, "dct", 1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_diagonal_prox_meets_its_optimality_condition(problem, dtype):
    """``Diagonal.prox``: ``x = argmin ½‖m ⊙ x − f‖² + ‖x − v‖²/(2τ)``, i.e.
    ``(x − v)/τ + m (m x − f) = 0``."""
    from tvnumba.solvers import Diagonal

    m, f = problem
    v = np.random.default_rng(5).standard_normal(f.shape)
    term = Diagonal(m.astype(dtype), f.astype(dtype)).bind(ArrayBackend(np))
    out = np.empty(f.shape, dtype)
    term.prox(v.astype(dtype), 0.7, out)
    assert out.dtype == dtype
    mm, ff, vv = (a.astype(dtype).astype(float) for a in (m, f, v))
    x = out.astype(float)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert_allclose((x - vv) / 0.7 + mm * (mm * x - ff), 0, atol=tol)
