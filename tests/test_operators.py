"""tvnumba.operators: the convolution and linear-operator data terms against independent
NumPy/SciPy references.

Dot-product (adjoint) tests, the forward operator against scipy.signal.fftconvolve and a
circular convolution written with np.roll, the normal-operator diagonal, the periodic
proximal step and the operator norm against a dense matrix built from SciPy."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy.signal import fftconvolve
from scipy.sparse import csr_matrix
from scipy.sparse.linalg import LinearOperator, aslinearoperator

from tvnumba._validate import make_plan
from tvnumba.backends import select
from tvnumba.operators import Convolution, LinearOperatorTerm
from tvnumba.operators.convolution import SPECTRUM_TOL, extended_shape, positive_blur, smooth5

CASES = [((13, 16), (5, 3)), ((12, 11), (4, 6)), ((9, 8, 7), (3, 4, 2)), ((7, 6, 5), (2, 3, 3))]
TOL = {np.float32: 2e-6, np.float64: 1e-13}


def term(image_shape, psf, boundary, dtype, rng):
    pad = (1,) * (3 - len(image_shape))
    f = rng.standard_normal((1, 1) + pad + image_shape).astype(dtype)
    t = Convolution(psf.astype(dtype).reshape(pad + psf.shape), f, boundary=boundary)
    return t.bind(select(f))


def dot_error(t, rng, dtype):
    u = rng.standard_normal(t.u_shape).astype(dtype)
    r = rng.standard_normal(t.f.shape).astype(dtype)
    au, atr = t.forward(u), t.adjoint(r)
    assert au.shape == t.f.shape and atr.shape == u.shape
    assert au.dtype == dtype and atr.dtype == dtype
    lhs = np.vdot(au.astype(np.float64), r)
    rhs = np.vdot(u.astype(np.float64), atr)
    return abs(lhs - rhs) / (np.linalg.norm(au) * np.linalg.norm(r))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("boundary", ["extend", "periodic"])
@pytest.mark.parametrize("shape,psf_shape", CASES)
def test_convolution_adjoint(rng, dtype, boundary, shape, psf_shape):
    psf = rng.random(psf_shape)
    t = term(shape, psf, boundary, dtype, rng)
    assert dot_error(t, rng, dtype) < TOL[dtype]


def test_fft_split_rim_is_the_smallest_nonzero_psf_value_over_the_peak(rng):
    """The ADMM's split names the PSF's rim: the smallest non-zero |h| over the largest
    (1 for a box or a line; a Gaussian's tails far below)."""
    g = np.exp(-0.5 * (np.arange(9) - 4.0) ** 2 / 1.5**2)
    gauss = np.outer(g, g)
    line = np.eye(5) / 5  # zeros off the line do not count
    for psf, want in ((gauss, g[0] ** 2 / g[4] ** 2), (line, 1.0),
                      (np.ones((1, 7)) / 7, 1.0)):
        for boundary in ("extend", "periodic"):
            split = term((12, 11), psf, boundary, np.float64, rng).fft_split()
            assert_allclose(split["rim"], want, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,psf_shape", CASES)
def test_extend_is_fftconvolve_valid(rng, dtype, shape, psf_shape):
    psf = rng.random(psf_shape)
    t = term(shape, psf, "extend", dtype, rng)
    assert t.u_shape[-len(shape):] == extended_shape(shape, psf_shape)
    u = rng.standard_normal(t.u_shape).astype(dtype)
    ref = fftconvolve(u.reshape(extended_shape(shape, psf_shape)).astype(np.float64),
                      psf, mode="valid")
    assert_allclose(t.forward(u).reshape(shape), ref, atol=50 * TOL[dtype] * np.abs(ref).max())


def circular(u, psf):
    """Σ_j psf[j] u[i − j + (m − 1)//2] (indices mod n): mode="same" centring."""
    out = np.zeros_like(u, dtype=np.float64)
    for j in np.ndindex(psf.shape):
        shift = tuple(jj - (m - 1) // 2 for jj, m in zip(j, psf.shape))
        out += psf[j] * np.roll(u, shift, axis=tuple(range(u.ndim)))
    return out


@pytest.mark.parametrize("shape,psf_shape", CASES)
def test_periodic_is_circular_convolution(rng, shape, psf_shape):
    psf = rng.random(psf_shape)
    t = term(shape, psf, "periodic", np.float64, rng)
    u = rng.standard_normal(t.u_shape)
    assert_allclose(t.forward(u).reshape(shape), circular(u.reshape(shape), psf), atol=1e-12)


def dense(shape, psf, boundary):
    """The matrix of A, column by column from SciPy/np.roll (not the code under test)."""
    ushape = extended_shape(shape, psf.shape) if boundary == "extend" else shape
    cols = []
    for i in range(int(np.prod(ushape))):
        e = np.zeros(ushape)
        e.flat[i] = 1.0
        y = fftconvolve(e, psf, mode="valid") if boundary == "extend" else circular(e, psf)
        cols.append(y.ravel())
    return np.array(cols).T


@pytest.mark.parametrize("boundary", ["extend", "periodic"])
def test_normal_diag_and_op_norm_against_dense(rng, boundary):
    shape, psf = (7, 6), rng.random((3, 4))
    t = term(shape, psf, boundary, np.float64, rng)
    M = dense(shape, psf, boundary)
    assert_allclose(t.normal_diag().ravel(), np.sum(M * M, axis=0), atol=1e-12)
    smax = np.linalg.norm(M, 2)
    assert smax <= t.op_norm() <= 1.02 * max(smax, np.abs(np.fft.fft2(psf, shape)).max())
    x = rng.standard_normal(t.u_shape)
    out = np.empty_like(x)
    t.normal(x, out)
    assert_allclose(out.ravel(), M.T @ (M @ x.ravel()), atol=1e-12)


def test_periodic_prox_against_dense_solve(rng):
    shape, psf = (6, 5), rng.random((3, 3))
    t = term(shape, psf, "periodic", np.float64, rng)
    M = dense(shape, psf, "periodic")
    v = rng.standard_normal(t.u_shape)
    tau = 0.7
    out = np.empty_like(v)
    t.prox(v, tau, out)
    ref = np.linalg.solve(np.eye(M.shape[1]) + tau * M.T @ M,
                          v.ravel() + tau * M.T @ t.f.ravel())
    assert_allclose(out.ravel(), ref, atol=1e-12)
    assert t.mu == pytest.approx(np.linalg.svd(M, compute_uv=False).min() ** 2, rel=1e-9)


def _gauss(m, s, shift=0):
    g = np.exp(-0.5 * (np.arange(m) - m // 2 - shift) ** 2 / s**2)
    return np.outer(g, g) / g.sum() ** 2


@pytest.mark.parametrize("name,psf", [
    ("gauss 5 σ1.2", _gauss(5, 1.2)), ("gauss 7 σ1.5", _gauss(7, 1.5)),
    ("gauss 5 σ2.5", _gauss(5, 2.5)), ("gauss 5 shifted", _gauss(5, 1.2, shift=0.5)),
    ("gauss 4", _gauss(4, 1.0)), ("box 3", np.ones((3, 3))),
    ("cross", np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], float)),
    ("disk", (np.hypot(*np.mgrid[-2:3, -2:3]) <= 2).astype(float)),
    ("line", np.eye(5)), ("1-D gauss", _gauss(7, 1.5)[3:4])])
def test_positive_blur_is_a_symmetric_psd_convolution(name, psf):
    """``positive_blur`` says whether the periodic convolution's dense matrix is
    symmetric with eigenvalues ≥ −tol·sum (on a grid 4× the PSF)."""
    shape = tuple(4 * m if m > 1 else 1 for m in psf.shape)
    M = dense(shape, psf, "periodic")
    expected = bool(np.allclose(M, M.T, atol=1e-9)
                    and np.linalg.eigvalsh(0.5 * (M + M.T)).min() >= -SPECTRUM_TOL * psf.sum())
    assert positive_blur(psf) is expected
    assert expected is (name in ("gauss 5 σ1.2", "gauss 7 σ1.5", "cross", "1-D gauss"))


def test_smooth5():
    for n in (1, 7, 526, 1025):
        m = smooth5(n)
        assert m >= n and _smooth(m)
        assert not any(_smooth(c) for c in range(n, m))


def _smooth(c):
    for p in (2, 3, 5):
        while c % p == 0:
            c //= p
    return c == 1


# --------------------------------------------------------------------------- LinearOperatorTerm
def operators(M):
    return {"dense": (M, None), "sparse": (csr_matrix(M), None),
            "linop": (aslinearoperator(M), None),
            "callables": (lambda u: M @ u.ravel(), lambda r: (M.T @ r).reshape(4, 5))}


@pytest.mark.parametrize("kind", ["dense", "sparse", "linop", "callables"])
def test_linear_operator_term_adjoint(rng, kind):
    M = rng.standard_normal((9, 20))
    A, AT = operators(M)[kind]
    f = rng.standard_normal(9)
    plan = make_plan(np.zeros((4, 5)), 1.0)
    t = LinearOperatorTerm(A, f, plan, AT=AT).bind(select(f))
    assert t.check_adjoint() < 1e-12
    u5 = np.ascontiguousarray(plan.to_canonical(rng.standard_normal((4, 5))))
    assert_allclose(t.forward(u5), M @ plan.from_canonical(u5).ravel(), atol=1e-12)
    r = rng.standard_normal(9)
    assert_allclose(plan.from_canonical(t.adjoint(r)), (M.T @ r).reshape(4, 5), atol=1e-12)
    assert t.adjoint(r).shape == plan.canonical_shape


def test_wrong_adjoints_are_caught(rng):
    M = rng.standard_normal((9, 20))
    f = rng.standard_normal(9)
    plan = make_plan(np.zeros((4, 5)), 1.0)
    bad = LinearOperatorTerm(lambda u: M @ u.ravel(), f, plan,
                             AT=lambda r: (1.001 * M.T @ r).reshape(4, 5))
    with pytest.raises(ValueError, match=r"^AT is not the adjoint of A"):
        bad.check_adjoint()
    lin = LinearOperator((9, 20), matvec=lambda x: M @ x, rmatvec=lambda y: M[:, ::-1].T @ y,
                         dtype=np.float64)
    with pytest.raises(ValueError, match=r"A\.rmatvec is not the adjoint of A"):
        LinearOperatorTerm(lin, f, plan).check_adjoint()


def test_linear_operator_term_bad_input(rng):
    M = rng.standard_normal((9, 20))
    f = rng.standard_normal(9)
    plan = make_plan(np.zeros((4, 5)), 1.0)
    with pytest.raises(ValueError, match=r"A must have shape \(f.size, prod\(shape\)\) = "
                                         r"\(9, 20\), got A.shape=\(9, 21\)"):
        LinearOperatorTerm(np.zeros((9, 21)), f, plan)
    with pytest.raises(TypeError, match="AT must be None"):
        LinearOperatorTerm(M, f, plan, AT=lambda r: r)
    with pytest.raises(TypeError, match="AT must be the callable adjoint"):
        LinearOperatorTerm(lambda u: u, f, plan)
    with pytest.raises(TypeError, match="A must be a matrix"):
        LinearOperatorTerm("matrix", f, plan)
    with pytest.raises(TypeError, match="A must be real"):
        LinearOperatorTerm(M.astype(complex), f, plan)
    t = LinearOperatorTerm(lambda u: u.ravel()[:8], f, plan, AT=lambda r: np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"A must return an array of 9 elements"):
        t.check_adjoint()
