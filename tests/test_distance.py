"""tvnumba.total_variation_distance(p, q, axis=None) = ½ Σ |p − q| between distributions.

Contract: p and q must be non-negative, of the same shape and already normalised (each
distribution sums to 1 within 1e-8); otherwise a ValueError naming the offending argument;
``atol`` must be a finite number >= 0 (TypeError / ValueError naming it).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

from tvnumba import total_variation_distance as tvd
from reference import ref_total_variation_distance


def word(name):
    """Regex for ``name`` as a whole word (so that 'p' does not match inside 'shape')."""
    return rf"(?<![\w.]){re.escape(name)}(?![\w])"


def dirichlet(rng, shape, axis=None):
    a = rng.random(shape)
    if axis is None:
        return a / a.sum()
    return a / a.sum(axis=axis, keepdims=True)


def test_hand_cases():
    # identical → 0; disjoint supports → 1; shifting half the mass → 0.5
    assert tvd([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    assert tvd([1.0, 0.0], [0.0, 1.0]) == pytest.approx(1.0, abs=1e-15)
    assert tvd([0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 0.25, 0.75]) == pytest.approx(1.0, abs=1e-15)
    assert tvd([0.5, 0.5, 0.0], [0.0, 0.5, 0.5]) == pytest.approx(0.5, abs=1e-15)
    # ½ (|0.1 - 0.4| + |0.9 - 0.6|) = 0.3
    assert tvd(np.array([0.1, 0.9]), np.array([0.4, 0.6])) == pytest.approx(0.3, abs=1e-15)


def test_returns_python_float_for_axis_none():
    v = tvd(np.array([0.25, 0.75]), np.array([0.5, 0.5]))
    assert type(v) is float
    assert v == pytest.approx(0.25, abs=1e-15)


def test_integer_inputs():
    # one-hot integer vectors are distributions too
    assert tvd(np.array([1, 0, 0]), np.array([0, 0, 1])) == pytest.approx(1.0)
    assert tvd(np.array([True, False]), np.array([True, False])) == 0.0


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 5)])
def test_random_whole_array(shape):
    rng = np.random.default_rng(31)
    p, q = dirichlet(rng, shape), dirichlet(rng, shape)
    p0, q0 = p.copy(), q.copy()
    d = tvd(p, q)
    assert_allclose(d, ref_total_variation_distance(p, q), rtol=1e-12)
    assert 0.0 <= d <= 1.0
    assert_allclose(tvd(q, p), d, rtol=1e-15)  # symmetric
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(q, q0)


@pytest.mark.parametrize("shape, axis", [((5, 8), 1), ((5, 8), 0), ((5, 8), -1),
                                         ((3, 4, 6), 2), ((3, 4, 6), 1), ((3, 4, 6), -3)])
def test_per_slice(shape, axis):
    rng = np.random.default_rng(32)
    p, q = dirichlet(rng, shape, axis), dirichlet(rng, shape, axis)
    d = tvd(p, q, axis=axis)
    expected_shape = tuple(n for i, n in enumerate(shape) if i != axis % len(shape))
    assert isinstance(d, np.ndarray) and d.shape == expected_shape
    assert_allclose(d, ref_total_variation_distance(p, q, axis=axis), rtol=1e-12)
    assert np.all((d >= 0) & (d <= 1))
    # each slice alone gives the same number
    pm, qm = np.moveaxis(p, axis, -1), np.moveaxis(q, axis, -1)
    for idx in np.ndindex(expected_shape):
        assert_allclose(d[idx], tvd(pm[idx], qm[idx]), rtol=1e-12)


def test_per_slice_identical_and_disjoint():
    p = np.array([[1.0, 0.0, 0.0], [0.2, 0.3, 0.5], [0.0, 0.5, 0.5]])
    q = np.array([[0.0, 0.0, 1.0], [0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert_allclose(tvd(p, q, axis=1), [1.0, 0.0, 1.0], atol=1e-15)


def test_normalisation_tolerance():
    rng = np.random.default_rng(33)
    p, q = dirichlet(rng, (50,)), dirichlet(rng, (50,))
    # rounding-level deviations (1e-10 relative) are accepted ...
    tvd(p * (1 + 1e-10), q)
    tvd(p, q * (1 - 1e-10))
    # ... real ones are not
    with pytest.raises(ValueError, match=word("p")):
        tvd(p * 1.01, q)
    with pytest.raises(ValueError, match=word("q")):
        tvd(p, q * 0.5)
    with pytest.raises(ValueError, match=word("p")):
        tvd(p * 1e-6, q)


def test_normalisation_is_per_slice():
    rng = np.random.default_rng(34)
    p, q = dirichlet(rng, (4, 6), axis=1), dirichlet(rng, (4, 6), axis=1)
    tvd(p, q, axis=1)  # every row sums to 1: fine
    with pytest.raises(ValueError, match=word("p")):
        tvd(p, q)  # as one distribution it sums to 4
    with pytest.raises(ValueError, match=word("p")):
        tvd(p, q, axis=0)  # columns do not sum to 1
    bad = q.copy()
    bad[2] *= 1.5
    with pytest.raises(ValueError, match=word("q")):
        tvd(p, bad, axis=1)


@pytest.mark.parametrize("which", ["p", "q"])
def test_negative_entries(which):
    good = np.array([0.5, 0.25, 0.25])
    bad = np.array([0.75, 0.5, -0.25])  # sums to 1 but has a negative entry
    args = (bad, good) if which == "p" else (good, bad)
    with pytest.raises(ValueError, match=word(which)):
        tvd(*args)


@pytest.mark.parametrize("shapes", [((3,), (4,)), ((2, 3), (3, 2)), ((6,), (2, 3))])
def test_mismatched_shapes(shapes):
    rng = np.random.default_rng(35)
    p, q = dirichlet(rng, shapes[0]), dirichlet(rng, shapes[1])
    with pytest.raises(ValueError, match="shape"):
        tvd(p, q)


@pytest.mark.parametrize("atol", [np.inf, np.nan, -1e-3, -np.inf])
def test_atol_value(atol):
    with pytest.raises(ValueError, match=word("atol")):
        tvd([1.0, 0.0], [0.0, 1.0], atol=atol)


@pytest.mark.parametrize("atol", ["1e-8", None, True, 1j])
def test_atol_type(atol):
    with pytest.raises(TypeError, match=word("atol")):
        tvd([1.0, 0.0], [0.0, 1.0], atol=atol)


def test_atol_inf_refused_and_range():
    with pytest.raises(ValueError, match="atol=inf"):
        tvd([1.4, 0.0], [0.0, 1.4], atol=np.inf)
    # Within a (large) tolerance the distance is still clipped to [0, 1].
    assert tvd([1.4, 0.0], [0.0, 1.4], atol=0.5) == 1.0
    d = tvd([[1.0 + 1e-9, 0.0], [0.5, 0.5]],
            [[0.0, 1.0 + 1e-9], [0.5, 0.5]], axis=1)
    assert np.all((d >= 0) & (d <= 1))
    assert tvd([0.5, 0.5], [0.5, 0.5], atol=0) == 0.0
