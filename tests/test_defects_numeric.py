"""Regression tests: squares and powers beyond the dtype's range (defects A and B).

The kernels work in the input's float type; a difference whose square (or whose
power m^(β/2-1)) leaves that type's normal range used to give silently wrong
finite values, 0, or Inf with a zero gradient.  The expected values come from
the float64 reference on rescaled data (TV is homogeneous: TV_s(c v) =
c^β TV_{s/c}(v)) or are exact by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from reference import ref_tv, ref_tv_grad

from tvnumba import tv, tv_grad, tv_value_and_grad


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _pow2(e):
    return math.inf if e > 1023 else 2.0**e


# --- A: the fast power's exponent clamp and subnormal squares ---------------------
@pytest.mark.parametrize(("u", "beta"), [
    (np.array([0.0, 1e-155]), 0.01),  # m = 1e-310 (subnormal), m^(β/2-1) > max float64
    (np.float32([0, 1e-22]), 0.1),  # m = 1e-44 (subnormal float32)
    (np.float32([0, 1.3784]), 300.0),  # m^(β/2) = 6.5e41 > max float32 (sum is float64)
    (np.float32([0, 1e-30]), 1.0),  # d*d underflows to 0 in float32
    (np.float32([0, 1e-30]), 1.7),
    (np.array([0.0, 1e-170]), 1.0),  # d*d underflows to 0 in float64
    (np.array([0.0, 1e-170]), 0.5),
])
def test_tiny_and_large_powers_value(u, beta):
    d = float(_f64(u)[1])
    assert tv(u, beta=beta) == pytest.approx(d**beta, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [1.0, 1.7, 2.0, 0.5])
def test_vanishing_steps_gradient(dtype, beta):
    d = 1e-30 if dtype == np.float32 else 1e-170
    u = np.array([0, d], dtype=dtype)
    value, grad = tv_value_and_grad(u, beta=beta)
    d = float(u[1])
    assert value == pytest.approx(d**beta, rel=1e-6)
    g = beta * d ** (beta - 1)
    np.testing.assert_allclose(_f64(grad), [-g, g], rtol=1e-5)
    assert grad.dtype == dtype


def test_value_and_grad_float32_tiny_step_reproducer():
    value, grad = tv_value_and_grad(np.float32([0, 1e-30]))
    assert value == pytest.approx(1e-30, rel=1e-6)
    np.testing.assert_array_equal(grad, np.float32([-1, 1]))


def test_small_beta_gradient_beyond_float32_weight():
    # The weight β m^(β/2-1) = 6e40 overflows float32; its flux 6.3e18 does not.
    u = np.float32([0, 1e-22])
    value, grad = tv_value_and_grad(u, beta=0.1)
    d = float(u[1])
    assert value == pytest.approx(d**0.1, rel=1e-6)
    np.testing.assert_allclose(_f64(grad), [-0.1 * d**-0.9, 0.1 * d**-0.9], rtol=1e-5)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [0.3, 1.0, 1.5, 2.0, 3.0])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("k", [-80, 70])  # 2**k: squares below / above float32's range
def test_scaled_images_match_reference(rng, dtype, beta, isotropic, k):
    if dtype == np.float64:
        k *= 9  # -720, 630: beyond float64's range for the squares
    v = rng.random((5, 6, 2)).astype(dtype)
    u = np.ldexp(v, k).astype(dtype)
    assert np.isfinite(u).all()
    kw = dict(beta=beta, channel_axis=-1, isotropic=isotropic)
    expected = ref_tv(_f64(v), **kw) * _pow2(k * beta)
    if not math.isfinite(expected):
        with pytest.raises(ValueError, match="overflows float64"):
            tv(u, **kw)
        return
    if expected == 0:
        pytest.skip("value itself below float64's range")
    rel = 2e-5 if dtype == np.float32 else 1e-10
    assert tv(u, **kw) == pytest.approx(expected, rel=rel)
    g = ref_tv_grad(_f64(v), **kw) * _pow2(k * (beta - 1))
    scale = np.max(np.abs(g))
    if not scale < np.finfo(dtype).max:
        with pytest.raises(ValueError, match="gradient overflows"):
            tv_value_and_grad(u, **kw)
    else:
        value, grad = tv_value_and_grad(u, **kw)
        assert value == pytest.approx(expected, rel=rel)
        atol = max(1e-5 * scale, float(np.finfo(dtype).tiny))  # subnormal gradients
        np.testing.assert_allclose(_f64(grad), g, rtol=1e-4, atol=atol)


# --- B: overflow of the squares, s² or 1/h ------------------------------------------
def test_float32_square_overflow_reproducer():
    value, grad = tv_value_and_grad(np.float32([0, 2e19]))
    assert value == pytest.approx(2e19, rel=1e-6)
    np.testing.assert_array_equal(grad, np.float32([-1, 1]))


def test_float64_square_overflow():
    value, grad = tv_value_and_grad(np.array([0.0, 2e154]))
    assert value == pytest.approx(2e154, rel=1e-12)
    np.testing.assert_array_equal(grad, [-1.0, 1.0])
    value, grad = tv_value_and_grad(np.array([0.0, 1e300, -1e300]))
    assert value == pytest.approx(3e300, rel=1e-12)
    np.testing.assert_array_equal(grad, [-1.0, 2.0, -1.0])


def test_float32_small_spacing():
    value, grad = tv_value_and_grad(np.float32([0, 1]), spacing=1e-20)
    assert value == pytest.approx(1e20, rel=1e-6)
    np.testing.assert_allclose(grad, [-1e20, 1e20], rtol=1e-6)


def test_float32_large_smoothing():
    value, grad = tv_value_and_grad(np.float32([0, 1]), smoothing=1e20)
    # (1 + s²)^½ + s, gradient ±1/sqrt(1 + s²)
    assert value == pytest.approx(2e20, rel=1e-6)
    np.testing.assert_allclose(grad, [-1e-20, 1e-20], rtol=1e-5)


def test_float32_beta_above_two():
    assert tv(np.float32([0, 1e10]), beta=4) == pytest.approx(1e40, rel=1e-6)
    assert tv(np.float32([0, 1.3784]), beta=300) == pytest.approx(
        float(np.float32(1.3784)) ** 300, rel=1e-5)


def test_float64_large_smoothing():
    assert tv(np.array([0.0, 1.0]), smoothing=1e200) == pytest.approx(2e200, rel=1e-12)
    g = tv_grad(np.array([0.0, 1.0]), smoothing=1e200)
    np.testing.assert_allclose(g, [-1e-200, 1e-200], rtol=1e-12)


def test_unrepresentable_value_raises():
    with pytest.raises(ValueError, match="smoothing"):
        tv(np.array([0.0, 1.0]), smoothing=1e200, beta=2)
    with pytest.raises(ValueError, match="overflows"):
        tv(np.array([0.0, 1e300]), beta=3)


def test_unrepresentable_float32_gradient_raises():
    # The value (6.5e41) fits the float64 sum, the gradient does not fit float32.
    with pytest.raises(ValueError, match="float32"):
        tv_value_and_grad(np.float32([0, 1.3784]), beta=300)


def test_fallback_respects_out_and_mean(rng):
    u = np.ldexp(rng.random((4, 5)), 600)
    out = np.empty_like(u)
    value, grad = tv_value_and_grad(u, beta=1.0, reduction="mean", out=out)
    assert grad is out
    v = np.ldexp(u, -600)
    assert value == pytest.approx(ref_tv(v, reduction="mean") * 2.0**600, rel=1e-12)
    np.testing.assert_allclose(out, ref_tv_grad(v, reduction="mean"), rtol=1e-10, atol=1e-14)


def test_fallback_does_not_modify_input():
    u = np.float32([0, 2e19, 1e-30])
    before = u.copy()
    tv_value_and_grad(u)
    np.testing.assert_array_equal(u, before)


def test_finite_differences_tiny_float64():
    u = np.array([0.0, 3e-170, 1e-170, 5e-170])
    g = tv_grad(u, beta=1.5)
    h = 1e-176
    for i in range(u.size):
        e = np.zeros_like(u)
        e[i] = h
        fd = (tv(u + e, beta=1.5) - tv(u - e, beta=1.5)) / (2 * h)
        assert fd == pytest.approx(g[i], rel=1e-4)
