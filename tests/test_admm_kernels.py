"""The elementwise stages of the ADMM-FFT deconvolution: the Numba kernels
(:mod:`tvnumba.backends.cpu.admm_kernels`) and the whole-array code of
:class:`tvnumba.backends.array.ArrayOps`, both against float64 NumPy written here from
the definitions (periodic differences, the kept Neumann entries, the proximal step of
the weighted ℓ₁ / ℓ₂,₁ norm) and the TV value against :func:`reference.ref_tv`."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from reference import ref_tv

from tvnumba.backends.array import ArrayOps
from tvnumba.backends.cpu import vector_kernels

OPS = {"numba": vector_kernels, "array": ArrayOps(np)}

# (canonical grid shape, spatial axes, the unknown's extent in the grid)
CASES = [((1, 1, 1, 1, 23), 1, (19,)),
         ((2, 1, 1, 12, 10), 2, (12, 10)),
         ((1, 3, 1, 9, 14), 2, (7, 11)),
         ((1, 1, 6, 7, 8), 3, (5, 7, 6)),
         ((2, 2, 4, 5, 9), 3, (4, 5, 9))]


def _tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def _axis(d):
    """The canonical axis of component ``d`` (0: x)."""
    return 4 - d


def _keep(shape, nd, extent):
    """Float64 masks ``[d, ...]``: 1 where component ``d`` is a Neumann difference of the
    unknown (inside its extent, not on its last slice along ``d``)."""
    idx = np.indices(shape)
    ext = (shape[2], shape[3], shape[4])[:3 - nd] + tuple(extent)
    inside = np.ones(shape, bool)
    for k in range(3):
        inside &= idx[2 + k] < ext[k]
    return np.stack([inside & (idx[_axis(d)] < ext[2 - d] - 1) for d in range(nd)]).astype(float)


def _diff(u, nd, ih):
    return np.stack([(np.roll(u, -1, axis=_axis(d)) - u) * ih[d] for d in range(nd)])


def _setup(rng, case, dtype):
    shape, nd, extent = case
    spacing = [0.5, 1.0, 2.0][3 - nd:]
    ih = [1.0 / h for h in spacing[::-1]]  # per component, x first
    u = rng.standard_normal(shape).astype(dtype)
    z = rng.standard_normal((nd,) + shape).astype(dtype)
    b = rng.standard_normal((nd,) + shape).astype(dtype)
    return shape, nd, extent, [1.0 / h for h in spacing], ih, u, z, b


@pytest.mark.parametrize("ops", sorted(OPS))
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_admm_rhs(rng, ops, case, dtype):
    """``D_perᵀ(z − b)`` is the adjoint of the periodic difference: ``⟨D_per x, q⟩ =
    ⟨x, D_perᵀ q⟩`` for the float64 periodic differences of the definition."""
    shape, nd, extent, inv_spacing, ih, u, z, b = _setup(rng, case, dtype)
    out = np.full(shape, np.nan, dtype)
    z0, b0 = z.copy(), b.copy()
    OPS[ops].admm_rhs(z, b, out, inv_spacing)
    q = (z - b).astype(float)
    want = sum((np.roll(q[d], 1, axis=_axis(d)) - q[d]) * ih[d] for d in range(nd))
    assert_allclose(out, want, **_tol(dtype))
    x = rng.standard_normal(shape)
    assert_allclose(np.vdot(_diff(x, nd, ih), q), np.vdot(x, want), rtol=1e-10)
    assert np.array_equal(z, z0) and np.array_equal(b, b0)


@pytest.mark.parametrize("ops", sorted(OPS))
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("iso", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_admm_shrink(rng, ops, case, iso, dtype):
    """``TV₁`` of the unknown (its extent cut from the grid) as :func:`ref_tv`; then
    ``v = α D u + (1 − α) z + b``, ``z`` the shrinkage of the kept entries (``v`` on the
    free ones), ``b = v − z``."""
    shape, nd, extent, inv_spacing, ih, u, z, b = _setup(rng, case, dtype)
    alpha, t = 1.6, 0.7
    v = alpha * _diff(u.astype(float), nd, ih) + (1 - alpha) * z.astype(float) + b
    u0 = u.copy()
    tv = OPS[ops].admm_shrink(u, z, b, alpha, t, extent, inv_spacing, iso)
    assert np.array_equal(u, u0)
    crop = u.astype(float)[(Ellipsis,) + tuple(slice(0, n) for n in extent)]
    axes = tuple(range(5 - nd, 5))  # the others are batch axes
    spacing = [1.0 / h for h in inv_spacing]
    want_tv = ref_tv(crop, 1.0, axes=axes, channel_axis=1, spacing=spacing, isotropic=iso)
    assert_allclose(tv, want_tv, rtol=1e-5 if dtype == np.float32 else 1e-12)
    keep = _keep(shape, nd, extent)
    kv = keep * v
    if iso:
        norm = np.sqrt((kv ** 2).sum(axis=(0, 2), keepdims=True))
        shrunk = kv * np.maximum(1 - t / np.maximum(norm, 1e-300), 0)
    else:
        shrunk = np.sign(kv) * np.maximum(np.abs(kv) - t, 0)
    want_z = np.where(keep > 0, shrunk, v)
    assert_allclose(z, want_z, **_tol(dtype))
    assert_allclose(b, v - want_z, **_tol(dtype))


@pytest.mark.parametrize("ops", sorted(OPS))
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_admm_w_step(rng, ops, case, dtype):
    """The ``w``-step of ``½‖m(w − f)‖² + ρ/2 ‖w − v‖²``: its optimality condition on
    the observed window, ``w = v`` off it; the data misfit of ``cu`` on the window."""
    shape, nd, extent, *_ = _setup(rng, case, dtype)
    window = tuple(slice(1, n - 1) for n in shape[5 - nd:])
    m = np.zeros(shape)
    m[(Ellipsis,) + window] = 1
    cu, w, bw = (rng.standard_normal(shape).astype(dtype) for _ in range(3))
    mf = (m * rng.standard_normal(shape)).astype(dtype)
    s_w = np.full(shape, np.nan, dtype)
    alpha, rho = 1.6, 0.3
    v = alpha * cu.astype(float) + (1 - alpha) * w + bw
    fid = OPS[ops].admm_w_step(cu, w, bw, s_w, mf, alpha, rho, window)
    assert_allclose(fid, np.sum((m * (cu.astype(float) - mf)) ** 2),
                    rtol=1e-6 if dtype == np.float32 else 1e-12)
    assert_allclose(m * (w - mf) + rho * (w - v), 0, **_tol(dtype))
    assert_allclose(bw, v - w, **_tol(dtype))
    assert_allclose(s_w, w.astype(float) - bw, **_tol(dtype))


@pytest.mark.parametrize("ops", sorted(OPS))
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_admm_spectrum(rng, ops, periodic, dtype):
    """``U = r U + u_data (·S)`` on rfft arrays broadcast over the leading axes; periodic:
    the misfit ``‖irfft(H U) − f‖²`` by Parseval; extended: ``HU = H U``."""
    cdt = np.complex64 if dtype == np.float32 else np.complex128
    grid = (6, 10)
    lead = (2, 1, 1)
    spec = (6, 6)

    def c(shape):
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(cdt)

    def real_spectrum(shape):  # an rfft: Parseval holds for it
        return np.fft.rfftn(rng.standard_normal(shape), axes=(-2, -1)).astype(cdt)

    U = real_spectrum(lead + grid)
    # a real, even multiplier (as ρ / den): it keeps U an rfft
    r = (0.5 + 0.3 * np.cos(2 * np.pi * np.arange(6) / 6)[:, None]
         + 0.2 * np.cos(2 * np.pi * np.arange(6) / 10)[None, :]).astype(dtype)
    H = np.fft.rfftn(rng.standard_normal(grid)).astype(cdt)
    U0 = U.astype(complex)
    ops_ = OPS[ops]
    if periodic:
        f = rng.standard_normal(lead + grid)
        fhat = np.fft.rfftn(f, axes=(-2, -1)).astype(cdt)
        ud = real_spectrum(lead + grid)
        pw = np.full(spec[-1], 2.0)
        pw[0] = pw[-1] = 1.0
        pw /= np.prod(grid)
        fid = ops_.admm_spectrum(U, r, ud, H, fhat=fhat, parseval=pw)
        want = U0 * r + ud
        misfit = np.fft.irfftn(H * want, s=grid, axes=(-2, -1)) - np.fft.irfftn(
            fhat.astype(complex), s=grid, axes=(-2, -1))
        assert_allclose(fid, np.sum(misfit ** 2), rtol=1e-4 if dtype == np.float32 else 1e-10)
    else:
        ud, S = c(spec), c(lead + spec)
        HU = np.full(lead + spec, np.nan, cdt)
        assert ops_.admm_spectrum(U, r, ud, H, S=S, HU=HU) == 0.0
        want = U0 * r + ud * S
        assert_allclose(HU, H * want, **_tol(dtype))
    assert_allclose(U, want, **_tol(dtype))
