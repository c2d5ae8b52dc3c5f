"""tvnumba.operators.radon: the projector pair radon / radon_adjoint and the CT data term
RadonTerm.

The adjoint is the exact transpose (dot-product test), the forward projection is
scikit-image's (its own code is the reference), bad input is refused with errors that name
the argument; RadonTerm's operator norm bounds the dense scaled matrix's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage.data import shepp_logan_phantom
from skimage.transform import radon as sk_radon
from skimage.transform import resize

from tvnumba._validate import make_plan
from tvnumba.backends import select
from tvnumba.operators import RadonGeometry, RadonTerm, radon, radon_adjoint

ANGLES = {
    "default-like": np.arange(0.0, 180.0, 7.0),
    "random": np.random.default_rng(3).uniform(-200.0, 400.0, 9),
    "one": np.array([33.3]),
    "axes": np.array([0.0, 90.0, 180.0, 270.0, 45.0]),
}


@pytest.fixture(scope="module")
def phantom():
    ph = shepp_logan_phantom()
    return {n: resize(ph, (n, n), anti_aliasing=False) for n in (64, 128)}


def sk(image, theta, circle):
    with warnings.catch_warnings():  # scikit-image warns on non-zero corners; not ours to test
        warnings.simplefilter("ignore")
        return sk_radon(image, theta, circle=circle)


@pytest.mark.parametrize("circle", [True, False])
@pytest.mark.parametrize("shape", [(15, 15), (16, 16), (33, 33), (12, 17), (20, 13)])
@pytest.mark.parametrize("angles", list(ANGLES))
def test_dot_product_float64(shape, angles, circle):
    rng = np.random.default_rng(sum(shape))
    theta = ANGLES[angles]
    x = rng.standard_normal(shape)
    ax = radon(x, theta, circle)
    y = rng.standard_normal(ax.shape)
    aty = radon_adjoint(y, theta, circle, shape=shape)
    assert aty.shape == shape and aty.dtype == np.float64
    lhs, rhs = np.vdot(ax, y), np.vdot(x, aty)
    scale = np.linalg.norm(ax) * np.linalg.norm(y)
    assert abs(lhs - rhs) <= 1e-10 * scale


@pytest.mark.parametrize("circle", [True, False])
@pytest.mark.parametrize("n", [17, 32])
def test_dot_product_float32(n, circle):
    rng = np.random.default_rng(n)
    theta = np.linspace(0.0, 180.0, 12, endpoint=False)
    x = rng.standard_normal((n, n)).astype(np.float32)
    ax = radon(x, theta, circle)
    y = rng.standard_normal(ax.shape).astype(np.float32)
    aty = radon_adjoint(y, theta, circle)
    assert ax.dtype == np.float32 and aty.dtype == np.float32
    lhs = np.vdot(ax.astype(np.float64), y)
    rhs = np.vdot(x.astype(np.float64), aty)
    scale = np.linalg.norm(ax.astype(np.float64)) * np.linalg.norm(y.astype(np.float64))
    assert abs(lhs - rhs) <= 1e-5 * scale


def test_adjoint_is_the_transpose_of_the_matrix():
    """Columns of A by unit vectors, rows of Aᵀ by unit sinograms: the same matrix."""
    theta = np.array([0.0, 30.0, 121.0])
    n = 7
    A = np.stack([radon(e.reshape(n, n), theta).ravel() for e in np.eye(n * n)], axis=1)
    m = A.shape[0]
    At = np.stack([radon_adjoint(e.reshape(n, len(theta)), theta).ravel()
                   for e in np.eye(m)], axis=1)
    assert_allclose(At, A.T, rtol=0, atol=1e-14)


# Measured: the projections equal scikit-image's to the last bit in float64 (max
# relative error 0.0 at 64² and 128², circle=True/False, 30 and 180 angles) and to
# 6.2e-8 in float32; the bounds leave room for a different summation order.
@pytest.mark.parametrize("circle", [True, False])
@pytest.mark.parametrize("n", [64, 128])
@pytest.mark.parametrize("theta", [None, np.linspace(0.0, 180.0, 30, endpoint=False)])
def test_matches_skimage(phantom, n, circle, theta):
    image = phantom[n]
    ours = radon(image, theta, circle=circle)
    ref = sk(image, theta, circle)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-12 * np.abs(ref).max()
    ours32 = radon(image.astype(np.float32), theta, circle=circle)
    assert ours32.dtype == np.float32
    assert np.abs(ours32 - ref).max() <= 1e-6 * np.abs(ref).max()


@pytest.mark.parametrize("circle", [True, False])
@pytest.mark.parametrize("shape", [(40, 47), (47, 40), (41, 41)])
def test_matches_skimage_non_square_and_odd(shape, circle):
    rng = np.random.default_rng(1)
    image = rng.random(shape)
    theta = np.array([0.0, 17.0, 90.0, 133.0])
    ref = sk(image, theta, circle)
    ours = radon(image, theta, circle=circle)
    assert ours.shape == ref.shape
    assert np.abs(ours - ref).max() <= 1e-12 * np.abs(ref).max()


def test_integer_image_scaled_like_skimage():
    image = (np.arange(20 * 20).reshape(20, 20) % 256).astype(np.uint8)
    theta = [0.0, 45.0]
    ref = sk(image, theta, False)
    assert_allclose(radon(image, theta, circle=False), ref, rtol=1e-12, atol=1e-12)


def test_defaults_and_inputs_unchanged():
    rng = np.random.default_rng(0)
    image = rng.random((10, 10))
    keep = image.copy()
    sino = radon(image)
    assert sino.shape == (10, 180)
    assert np.array_equal(image, keep)
    s2 = rng.random((10, 6))
    keep2 = s2.copy()
    a = radon_adjoint(s2)  # theta=None: linspace(0, 180, 6, endpoint=False)
    assert np.array_equal(s2, keep2)
    assert_allclose(a, radon_adjoint(s2, np.linspace(0, 180, 6, endpoint=False)))


def test_adjoint_shape_inferred_for_padded_sinograms():
    for n in (5, 16, 31, 64):
        geom = RadonGeometry.create((n, n), [0.0], circle=False)
        s = np.ones(geom.sinogram_shape)
        assert radon_adjoint(s, [0.0], circle=False).shape == (n, n)


def test_errors():
    img = np.zeros((8, 8))
    sino = np.zeros((8, 5))
    with pytest.raises(ValueError, match=r"theta.*len\(theta\)=4.*sinogram.shape\[1\]=5"):
        radon_adjoint(sino, np.arange(4.0))
    with pytest.raises(ValueError, match="image must be 2-D.*image.ndim=3"):
        radon(np.zeros((4, 4, 4)))
    with pytest.raises(ValueError, match="sinogram must be 2-D.*sinogram.ndim=1"):
        radon_adjoint(np.zeros(8))
    bad = img.copy()
    bad[2, 3] = np.nan
    with pytest.raises(ValueError, match="image contains NaN"):
        radon(bad)
    bad = sino.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="sinogram contains NaN"):
        radon_adjoint(bad)
    with pytest.raises(ValueError, match="theta contains NaN"):
        radon(img, [0.0, np.nan])
    with pytest.raises(ValueError, match="theta must be a non-empty 1-D"):
        radon(img, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="theta must be a non-empty 1-D"):
        radon(img, [])
    with pytest.raises(TypeError, match="circle must be True or False"):
        radon(img, [0.0], circle="yes")
    with pytest.raises(TypeError, match="image must be real"):
        radon(np.zeros((4, 4), complex))
    with pytest.raises(ValueError, match="image must be non-empty"):
        radon(np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"shape=\(9, 9\).*9 detector bins.*sinogram.shape\[0\]=8"):
        radon_adjoint(sino, shape=(9, 9))
    with pytest.raises(ValueError, match="no square image.*sinogram.shape"):
        radon_adjoint(np.zeros((4, 3)), circle=False)  # ceil(√2 n) skips 4


# --------------------------------------------------------------------------- RadonTerm
def test_radon_term_operator_norm():
    """op_norm bounds the spectral norm of the dense scaled matrix (and is cached)."""
    theta = np.array([0.0, 50.0, 100.0, 150.0])
    n = 9
    geom = RadonGeometry.create((n, n), theta)
    A = np.stack([radon(e.reshape(n, n), theta).ravel() for e in np.eye(n * n)], axis=1)
    scale = 0.5
    term = RadonTerm(geom, np.zeros(geom.sinogram_shape), scale=scale)
    plan = make_plan(np.zeros((n, n)), 1.0)
    term.bind(select(np.zeros(1)).for_plan(plan))
    exact = scale * np.linalg.norm(A, 2)
    norm = term.op_norm()
    assert exact <= norm <= 1.02 * exact
    assert term.op_norm() == norm
    x5 = np.random.default_rng(0).standard_normal((1, 1, 1, n, n))
    assert_allclose(term.forward(x5).ravel(), scale * A @ x5.ravel(), rtol=1e-12, atol=1e-12)
    y = np.random.default_rng(1).standard_normal(geom.sinogram_shape)
    back = term.adjoint(y)
    assert back.shape == (1, 1, 1, n, n)
    assert_allclose(back.ravel(), scale * A.T @ y.ravel(), rtol=1e-12, atol=1e-12)
