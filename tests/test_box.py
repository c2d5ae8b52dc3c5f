"""tvnumba.solvers._box: per-pixel bounds on a minimiser of ``½‖m ⊙ u − f‖² + w·TV₁(u)``,
against a flood fill written here, and the masked primal–dual's gap on them against
SciPy's minimum of the same objective."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from numpy.testing import assert_allclose
from skimage import data, img_as_float

from reference import ref_tv
from test_data_terms import scipy_anisotropic_tv1
from tvnumba._validate import make_plan
from tvnumba.backends.array import ArrayBackend
from tvnumba.backends.cpu import CpuBackend
from tvnumba.solvers import Diagonal, solve
from tvnumba.solvers._box import pixel_box


def _bounds(box, m, f):
    """Per-pixel ``(L, H)`` from a :class:`PixelBox`."""
    seen = m > 0
    mm = np.where(seen, m, 1.0)
    c, k = f / mm, box.kappa / mm**2
    lab = np.asarray(box.labels)
    return (np.where(seen, np.maximum(c - k, box.lo), np.asarray(box.hole_lo)[lab]),
            np.where(seen, np.minimum(c + k, box.hi), np.asarray(box.hole_hi)[lab]))


def _flood_fill_bounds(m, f, weight, ih, axes):
    """The same bounds by a breadth-first search over each hole (5-D canonical arrays)."""
    seen = m > 0
    lo, hi = (f[seen] / m[seen]).min(), (f[seen] / m[seen]).max()
    kappa = 2 * weight * sum(ih)
    known_lo = np.where(seen, np.maximum(f / np.where(seen, m, 1) - kappa / np.where(
        seen, m, 1) ** 2, lo), np.nan)
    known_hi = np.where(seen, np.minimum(f / np.where(seen, m, 1) + kappa / np.where(
        seen, m, 1) ** 2, hi), np.nan)
    L, H = known_lo.copy(), known_hi.copy()
    done = seen.copy()
    for start in zip(*np.nonzero(~seen)):
        if done[start]:
            continue
        hole, border, todo = [], [], deque([start])
        done[start] = True
        while todo:
            x = todo.popleft()
            hole.append(x)
            for a in axes:
                for step in (-1, 1):
                    y = list(x)
                    y[a] += step
                    y = tuple(y)
                    if not 0 <= y[a] < m.shape[a]:
                        continue
                    if seen[y]:
                        border.append(y)
                    elif not done[y]:
                        done[y] = True
                        todo.append(y)
        a_, b_ = ((min(known_lo[y] for y in border), max(known_hi[y] for y in border))
                  if border else (lo, hi))
        for x in hole:
            L[x], H[x] = a_, b_
    return L, H


BACKENDS = {"cpu": lambda: CpuBackend(), "array": lambda: ArrayBackend(np)}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("shape,axes", [((1, 1, 1, 13, 11), (3, 4)),
                                        ((2, 3, 1, 9, 12), (3, 4)),
                                        ((1, 2, 5, 6, 7), (2, 3, 4))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pixel_box_matches_a_flood_fill(shape, axes, dtype, backend, rng):
    m = rng.uniform(0.2, 1.5, shape)
    m[rng.random(shape) < 0.45] = 0.0
    m[0, 0, ..., :2] = 0.0  # a hole along an edge
    f = m * rng.standard_normal(shape)
    m, f = m.astype(dtype).astype(float), f.astype(dtype).astype(float)
    ih = (0.8, 1.25, 1.0)[-len(axes):]
    be = BACKENDS[backend]()
    term = Diagonal(m.astype(dtype), f.astype(dtype)).bind(be)
    box = pixel_box(be, term, 0.07, axes, ih)
    L, H = _bounds(box, m, f)
    L_ref, H_ref = _flood_fill_bounds(m, f, 0.07, ih, axes)
    assert_allclose(L, L_ref, rtol=1e-14, atol=1e-14)
    assert_allclose(H, H_ref, rtol=1e-14, atol=1e-14)
    assert np.all(L <= H)
    assert np.all(np.asarray(box.labels)[m > 0] == 0) and box.labels.dtype == np.int32


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_pixel_box_without_known_pixels(backend):
    """A batch item with every pixel missing keeps the global range; no pixel known at
    all: no box."""
    m = np.ones((2, 1, 1, 4, 5))
    m[1] = 0.0
    f = m * np.arange(40.0).reshape(m.shape)
    be = BACKENDS[backend]()
    box = pixel_box(be, Diagonal(m, f).bind(be), 0.1, (3, 4), (1.0, 1.0))
    L, H = _bounds(box, m, f)
    assert np.all(L[1] == 0.0) and np.all(H[1] == 19.0)
    assert pixel_box(be, Diagonal(0 * m, f).bind(be), 0.1, (3, 4), (1.0, 1.0)) is None


def _problem(rng):
    clean = np.zeros((9, 8))
    clean[2:7, 2:6] = 1.0
    m = rng.uniform(0.5, 1.0, clean.shape)
    m[rng.random(clean.shape) < 0.3] = 0.0
    m[4, 3:5] = 0.0  # a two-pixel hole inside the square
    f = m * (clean + 0.1 * rng.standard_normal(clean.shape))
    return m, f


@pytest.mark.parametrize("backend", ["cpu", "array"])
def test_minimiser_in_the_box_and_the_gap_bounds_the_error(backend, rng):
    """Anisotropic β = 1 (SciPy's SLSQP gives the minimum): every minimiser lies in the
    per-pixel box, and the masked primal–dual's gap bounds its relative error."""
    m, f = _problem(rng)
    weight = 0.05
    ref = scipy_anisotropic_tv1(m, f, weight)
    F_ref = 0.5 * np.sum((m * ref - f) ** 2) + weight * ref_tv(ref, isotropic=False)
    plan = make_plan(f, 1.0, isotropic=False)
    be = CpuBackend().for_plan(plan) if backend == "cpu" else ArrayBackend(np)
    term = Diagonal(plan.to_canonical(m), plan.to_canonical(f))
    box = pixel_box(be, term.bind(be), weight, plan.canonical_spatial_axes[-2:],
                    plan.inv_spacing)
    L, H = (plan.from_canonical(b) for b in _bounds(box, term.m, term.f))
    assert np.all(ref >= L - 1e-6) and np.all(ref <= H + 1e-6)
    assert np.any(H - L < 0.5 * (box.hi - box.lo))  # tighter than the global range
    for eps in (1e-3, 1e-6):
        u5, info = solve(Diagonal(plan.to_canonical(m), plan.to_canonical(f)), weight,
                         backend=be, plan=plan, method="cp", eps=eps, max_num_iter=50000)
        assert info.method == "cp" and info.bound and info.converged and info.gap <= eps
        excess = (info.objective - F_ref) / F_ref
        assert -1e-7 <= excess <= info.gap + 1e-9


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inpainting_gap_bounds_the_error_isotropic(dtype):
    """Camera 64², random and line masks: the default solve's gap bounds its relative
    error against a tight float64 solve."""
    from tvnumba import inpaint_tv_beta

    img = img_as_float(data.camera())[::8, ::8]
    random = np.random.default_rng(2).random(img.shape) < 0.5
    lines = np.zeros(img.shape, bool)
    lines[10::12] = True
    lines[:, 5::9] = True
    for mask in (random, lines):
        _, tight = inpaint_tv_beta(img, mask, 0.01, eps=1e-9, max_num_iter=200000,
                                   return_info=True)
        F_star = tight.objective / (1 + tight.gap)  # a lower bound on the optimum
        _, info = inpaint_tv_beta(img.astype(dtype), mask, 0.01, return_info=True)
        assert info.converged and info.bound and info.gap <= 1e-3
        assert (info.objective - F_star) / F_star <= info.gap + 1e-6


@pytest.mark.parametrize("shape,channel_axis", [((12, 14, 16), None), ((5, 6, 7, 8), None),
                                                ((20, 3, 24), 1)])
def test_inpainting_gap_bounds_the_error_volumes_and_colour(shape, channel_axis, rng):
    """A 3-D volume (the Numba kernels), four spatial axes (the whole-array path) and
    coupled colour: the default solve's gap bounds its error against a tight solve."""
    from tvnumba import inpaint_tv_beta

    img = rng.random(shape)
    spatial = shape if channel_axis is None else tuple(
        n for i, n in enumerate(shape) if i != channel_axis)
    mask = rng.random(spatial) < 0.4
    kw = dict(channel_axis=channel_axis)
    _, tight = inpaint_tv_beta(img, mask, 0.05, eps=1e-9, max_num_iter=200000,
                               return_info=True, **kw)
    F_star = tight.objective / (1 + tight.gap)
    _, info = inpaint_tv_beta(img, mask, 0.05, eps=1e-3, return_info=True, **kw)
    assert info.method == "cp" and info.converged and info.bound
    assert (info.objective - F_star) / F_star <= info.gap + 1e-9
