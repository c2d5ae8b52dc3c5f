"""The masked problem's preparation: the pull-push fill of the holes and the holes'
labels and bounds, the Numba kernels (:mod:`tvnumba.backends.cpu.mask_kernels`) against
the whole-array code of :class:`tvnumba.backends.array.ArrayOps` and against what a fill
and a labelling must give."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_allclose
from scipy import ndimage

from tvnumba.backends.array import ArrayOps
from tvnumba.backends.cpu import vector_kernels

FILL_OPS = {"numba": vector_kernels, "array": ArrayOps(np)}


@pytest.mark.parametrize("ops", sorted(FILL_OPS))
@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 37), (1, 2, 1, 13, 10), (2, 1, 5, 6, 7),
                                   (1, 1, 1, 64, 64), (1, 1, 9, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pull_push_fill(rng, shape, dtype, ops):
    """The first iterate of inpainting: known pixels kept, every hole filled with a
    convex combination of known values (within their range), constants exact."""
    fill_of = FILL_OPS[ops].pull_push_fill
    f = rng.random(shape).astype(dtype)
    known = rng.random(shape) < 0.3
    known[0, 0].flat[0] = True  # every plane holds one known pixel
    if shape[1] > 1:
        known[0, 1] = False  # ... except this one: the mean of all known pixels
        known[0, 1].flat[3] = False
    f0, known0 = f.copy(), known.copy()
    fill = fill_of(f, known)
    assert fill.dtype == dtype and fill.shape == shape
    assert np.array_equal(f, f0) and np.array_equal(known, known0)
    assert np.array_equal(fill[known], f[known])
    assert np.isfinite(fill).all()
    assert fill.min() >= f[known].min() - 1e-6 and fill.max() <= f[known].max() + 1e-6
    if shape[1] > 1:
        assert_allclose(fill[0, 1], f[known].mean(), rtol=1e-5)
    const = fill_of(np.full(shape, 0.25, dtype), known)
    assert_allclose(const, 0.25, rtol=1e-6)
    assert np.array_equal(fill_of(f, np.ones(shape, bool)), f)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1, 37), (1, 2, 1, 13, 10), (2, 3, 5, 6, 7),
                                   (1, 1, 1, 64, 63), (1, 1, 9, 1, 1), (1, 1, 17, 4, 1),
                                   (5, 2, 1, 1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("missing", [0.5, 0.97])
def test_pull_push_fill_kernels_match_the_array_code(rng, shape, dtype, missing):
    """The Numba pull-push (one pass per level and direction) gives the whole-array
    algorithm's fill, many levels deep where few pixels are known."""
    f = rng.standard_normal(shape).astype(dtype)
    known = rng.random(shape) >= missing
    known.flat[-1] = True
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert_allclose(vector_kernels.pull_push_fill(f, known),
                    ArrayOps(np).pull_push_fill(f, known), rtol=rtol, atol=rtol)


@pytest.mark.parametrize("ops", sorted(FILL_OPS))
def test_pull_push_fill_is_local(rng, ops):
    """A hole next to a bright and a dark region takes the near side's value."""
    f = np.zeros((1, 1, 1, 32, 32))
    f[..., :, 16:] = 1.0
    known = np.ones(f.shape, bool)
    known[..., 10:14, 2:6] = False   # deep in the dark half
    known[..., 10:14, 26:30] = False  # deep in the bright half
    fill = FILL_OPS[ops].pull_push_fill(f, known)
    assert np.abs(fill[..., 10:14, 2:6]).max() < 1e-12
    assert np.abs(fill[..., 10:14, 26:30] - 1).max() < 1e-12


@pytest.mark.parametrize("shape,axes", [((1, 1, 1, 40, 37), (3, 4)), ((2, 3, 4, 9, 12), (3, 4)),
                                        ((1, 2, 6, 7, 8), (2, 3, 4)), ((1, 1, 1, 1, 50), (4,)),
                                        ((1, 1, 7, 1, 9), (2, 4))])
@pytest.mark.parametrize("missing", [0.3, 0.6, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hole_bounds_kernel_matches_the_array_code(rng, shape, axes, missing, dtype):
    """The union-find labels hole the same components as ``ndimage.label`` (any numbers),
    every hole's bounds and the global range are the whole-array code's."""
    m = np.where(rng.random(shape) < missing, 0.0, rng.uniform(0.2, 1.5, shape)).astype(dtype)
    f = (m * rng.standard_normal(shape)).astype(dtype)
    m0, f0 = m.copy(), f.copy()
    got = vector_kernels.hole_bounds(m, f, axes, 0.3)
    want = ArrayOps(np).hole_bounds(m, f, axes, 0.3)
    assert np.array_equal(m, m0) and np.array_equal(f, f0)
    labels, lab_ref = got[0], want[0]
    assert labels.dtype == np.int32 and labels.shape == shape
    assert np.array_equal(labels == 0, lab_ref == 0)
    # one component ↔ one label: the pairs (label, reference label) are a bijection
    pairs = np.unique(np.stack([labels[labels > 0], lab_ref[lab_ref > 0]]), axis=1)
    assert len(np.unique(pairs[0])) == len(np.unique(pairs[1])) == pairs.shape[1]
    for k in (1, 2):
        assert_allclose(got[k][labels], want[k][lab_ref], rtol=1e-12, atol=1e-14)
    assert got[3:] == pytest.approx(want[3:], rel=1e-14)


def test_hole_bounds_join_arms_that_meet_late():
    """Holes whose arms meet only rows below their tops (a U, a W: the union-find's
    joins) are one hole each, as ``ndimage.label`` finds; an image without a known pixel
    has no range."""
    m = np.ones((1, 1, 1, 12, 16))
    m[..., 1:9, 1] = m[..., 1:9, 5] = m[..., 8, 1:6] = 0  # U
    m[..., 1:10, 8] = m[..., 3:10, 11] = m[..., 1:10, 14] = m[..., 9, 8:15] = 0  # W
    f = np.arange(m.size, dtype=float).reshape(m.shape) * m
    labels, lo, hi, glo, ghi = vector_kernels.hole_bounds(m, f, (3, 4), 0.1)
    ref, n = ndimage.label(m[0, 0, 0] == 0)
    lab = labels[0, 0, 0]
    assert n == 2 and len(np.unique(lab[lab > 0])) == 2
    assert np.array_equal(lab == lab[1, 1], ref == ref[1, 1])
    assert np.array_equal(lab == lab[1, 8], ref == ref[1, 8])
    assert (glo, ghi) == (f[m > 0].min(), f[m > 0].max())
    allm = np.zeros((1, 1, 1, 3, 4))
    labels, lo, hi, glo, ghi = vector_kernels.hole_bounds(allm, allm, (3, 4), 0.1)
    assert (glo, ghi) == (np.inf, -np.inf) and len(np.unique(labels)) == 1
    assert np.isinf(lo[labels[0, 0, 0, 0, 0]])
