"""Self-checks of tests/reference.py on tiny cases worked out by hand (see the comments),
and of its gradients against central differences of its own values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

from reference import (
    numerical_grad,
    ref_grad_scale,
    ref_tf_total_variation,
    ref_tf_total_variation_grad,
    ref_tf_tv_loss,
    ref_torch_tv_loss,
    ref_torch_tv_loss_grad,
    ref_total_variation_distance,
    ref_tv,
    ref_tv_grad,
    roles,
)


def test_roles():
    assert roles(3) == ([0, 1, 2], None, [])
    assert roles(3, channel_axis=-1) == ([0, 1], 2, [])
    assert roles(4, axes=(2, -3), channel_axis=0) == ([2, 1], 0, [3])
    assert roles(2, axes=1) == ([1], None, [0])


def test_1d_hand():
    # u = [0, 1, 3]: forward differences [1, 2, 0] (0 on the last sample).
    u = np.array([0.0, 1.0, 3.0])
    assert ref_tv(u, 1) == pytest.approx(3.0)  # |1| + |2|
    assert ref_tv(u, 2) == pytest.approx(5.0)  # 1 + 4
    assert ref_tv(u, 1, reduction="mean") == pytest.approx(1.0)  # 3 / 3 pixels
    # beta = 1: w D = sign(D) = [1, 1, 0]; D^T v = [-v0, v0 - v1, v1] = [-1, 0, 1].
    assert_allclose(ref_tv_grad(u, 1), [-1.0, 0.0, 1.0])
    # beta = 2: w D = 2 D = [2, 4, 0]; D^T v = [-2, 2 - 4, 4].
    assert_allclose(ref_tv_grad(u, 2), [-2.0, -2.0, 4.0])
    assert_allclose(ref_tv_grad(u, 2, reduction="mean"), np.array([-2.0, -2.0, 4.0]) / 3)
    # spacing 2 halves the differences: [0.5, 1] → TV1 = 1.5, TV2 = 0.25 + 1.
    assert ref_tv(u, 1, spacing=2.0) == pytest.approx(1.5)
    assert ref_tv(u, 2, spacing=2.0) == pytest.approx(1.25)
    # smoothing s = 1 (beta = 1): sqrt(1 + 1) + sqrt(4 + 1) + sqrt(0 + 1), last sample counts.
    assert ref_tv(u, 1, smoothing=1.0) == pytest.approx(math.sqrt(2) + math.sqrt(5) + 1)
    assert ref_tv(u, 1, smoothing=1.0, isotropic=False) == pytest.approx(
        math.sqrt(2) + math.sqrt(5) + 1)
    # beta = 4: 1 + 16.
    assert ref_tv(u, 4) == pytest.approx(17.0)


def test_integer_input_no_wraparound():
    # uint8 [0, 255, 3]: differences must be taken as floats: 255 + 252 = 507.
    u = np.array([0, 255, 3], dtype=np.uint8)
    assert ref_tv(u, 1) == pytest.approx(507.0)


def test_2d_hand():
    # u = [[0, 3], [4, 0]]
    # D_0 (down): row 0 = [4, -3], row 1 = 0;  D_1 (right): col 0 = [3, -4], col 1 = 0.
    # Pixel norms: (0,0): sqrt(16 + 9) = 5, (0,1): 3, (1,0): 4, (1,1): 0.
    u = np.array([[0.0, 3.0], [4.0, 0.0]])
    assert ref_tv(u, 1) == pytest.approx(12.0)
    assert ref_tv(u, 1, isotropic=False) == pytest.approx(14.0)  # 4 + 3 + 3 + 4
    assert ref_tv(u, 2) == pytest.approx(50.0)  # 25 + 9 + 16
    assert ref_tv(u, 2, isotropic=False) == pytest.approx(50.0)
    # One spatial axis, the other one batch: rows [0, 3] → 3, [4, 0] → 4.
    assert_allclose(ref_tv(u, 1, axes=1, reduction="none"), [3.0, 4.0])
    assert_allclose(ref_tv(u, 1, axes=0, reduction="none"), [4.0, 3.0])
    assert ref_tv(u, 1, axes=1, reduction="mean") == pytest.approx(7.0 / 4)


def test_spacing_follows_axes_order():
    # u = [[0, 1], [5, 7]]: axis-0 differences [5, 6] (sum 11), axis-1 differences [1, 2] (3).
    u = np.array([[0.0, 1.0], [5.0, 7.0]])
    # axes=(1, 0), spacing=(1, 2): axis 1 gets h = 1 (3), axis 0 gets h = 2 (5.5).
    assert ref_tv(u, 1, axes=(1, 0), spacing=(1, 2), isotropic=False) == pytest.approx(8.5)
    assert ref_tv(u, 1, axes=(0, 1), spacing=(1, 2), isotropic=False) == pytest.approx(12.5)
    assert ref_tv(u, 1, spacing=(1, 2), isotropic=False) == pytest.approx(12.5)


def test_channels_coupled():
    # Two pixels, two channels: D = (3, 4) at pixel 0 → |.| = 5 (colour TV), 0 at pixel 1.
    u = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert ref_tv(u, 1, channel_axis=1) == pytest.approx(5.0)
    assert ref_tv(u, 1, channel_axis=1, isotropic=False) == pytest.approx(7.0)
    # mean divides by pixels x batch only (2), not by the channel count.
    assert ref_tv(u, 1, channel_axis=1, reduction="mean") == pytest.approx(2.5)
    # no batch axis → "none" gives a 0-d array
    v = ref_tv(u, 1, channel_axis=1, reduction="none")
    assert isinstance(v, np.ndarray) and v.shape == () and v.dtype == np.float64
    # channel axis treated as batch instead: |3| and |4| separately.
    assert_allclose(ref_tv(u, 1, axes=0, reduction="none"), [3.0, 4.0])
    # gradient: w D = D / 5 = (0.6, 0.8) at pixel 0 → grad rows [-0.6, -0.8], [0.6, 0.8].
    assert_allclose(ref_tv_grad(u, 1, channel_axis=1), [[-0.6, -0.8], [0.6, 0.8]])


def test_zero_weight_rule():
    u = np.zeros((4, 5))
    for beta in (0.5, 1.0, 1.5):
        assert ref_tv(u, beta) == 0.0
        g = ref_tv_grad(u, beta)
        assert np.all(g == 0.0)
    # piecewise constant, beta < 1: finite everywhere
    u = np.zeros((6, 6))
    u[2:, 3:] = 1.0
    g = ref_tv_grad(u, 0.5)
    assert np.all(np.isfinite(g)) and np.any(g != 0)


CASES = [
    dict(beta=1.0),
    dict(beta=2.0, isotropic=False),
    dict(beta=1.3, spacing=(0.7, 1.9, 1.2)),
    dict(beta=0.5, smoothing=0.3),
    dict(beta=0.8, smoothing=0.4, isotropic=False, reduction="mean"),
    dict(beta=3.0, channel_axis=-1, axes=(0,)),
    dict(beta=1.0, channel_axis=0, isotropic=True, smoothing=0.1),
    dict(beta=2.5, axes=(1,), reduction="none"),
]


@pytest.mark.parametrize("kw", CASES)
def test_reference_grad_matches_finite_differences(kw):
    rng = np.random.default_rng(3)
    u = rng.standard_normal((4, 5, 3))
    # "none": the gradient is that of the sum over the batch items
    f = lambda v: np.sum(ref_tv(v, **kw))  # noqa: E731
    assert_allclose(ref_tv_grad(u, **kw), numerical_grad(f, u, 1e-6), rtol=1e-6, atol=1e-7)
    assert ref_grad_scale(u, **kw) > 0


def test_torch_reference_tvloss_example():
    ch = np.array([[1.0, 2, 3], [2, 3, 4], [3, 4, 5]])
    x = np.stack([ch, ch])[None]  # 1 x 2 x 3 x 3
    # all differences are 1: sum dh^2 = 12 = C(H-1)W, same for w → 2 (1 + 1) / 1 = 4.
    assert ref_torch_tv_loss(x) == pytest.approx(4.0, abs=1e-12)
    g = np.array([[-2, -1, 0], [-1, 0, 1], [0, 1, 2]]) / 3
    assert_allclose(ref_torch_tv_loss_grad(x), np.stack([g, g])[None], atol=1e-12)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 4, 5))
    assert_allclose(ref_torch_tv_loss_grad(x, 0.7),
                    numerical_grad(lambda v: ref_torch_tv_loss(v, 0.7), x), rtol=1e-6,
                    atol=1e-8)


def test_tf_reference_hand():
    # HWC 2x2x1 [[1, 4], [2, 0]]: height |2-1| + |0-4| = 5, width |4-1| + |0-2| = 5.
    x = np.array([[1.0, 4.0], [2.0, 0.0]])[:, :, None]
    assert ref_tf_total_variation(x) == pytest.approx(10.0)
    assert_allclose(ref_tf_total_variation(np.stack([x, 2 * x])), [10.0, 20.0])
    assert ref_tf_tv_loss(np.stack([x, 2 * x]), 0.5) == pytest.approx(15.0)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 4, 2))
    assert_allclose(ref_tf_total_variation_grad(x),
                    numerical_grad(lambda v: np.sum(ref_tf_total_variation(v)), x),
                    rtol=1e-6, atol=1e-8)


def test_distance_reference():
    assert ref_total_variation_distance([1, 0], [0, 1]) == pytest.approx(1.0)
    assert ref_total_variation_distance([0.5, 0.5], [0.25, 0.75]) == pytest.approx(0.25)
    assert_allclose(ref_total_variation_distance([[1, 0], [0.5, 0.5]], [[0, 1], [0.5, 0.5]],
                                                 axis=1), [1.0, 0.0])
