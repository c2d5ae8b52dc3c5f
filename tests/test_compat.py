"""tvnumba.compat: the PyTorch ``TVLoss`` formula and ``tf.image.total_variation``, with their
gradients, against the float64 reference and by hand; their argument checks."""

from __future__ import annotations

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose

import tvnumba
from tvnumba import compat
from tvnumba.compat import (
    tf_total_variation,
    tf_total_variation_grad,
    tf_tv_loss,
    tf_tv_loss_grad,
    torch_tv_loss,
    torch_tv_loss_grad,
)
from reference import (
    numerical_grad,
    ref_tf_total_variation,
    ref_tf_total_variation_grad,
    ref_tf_tv_loss,
    ref_tf_tv_loss_grad,
    ref_torch_tv_loss,
    ref_torch_tv_loss_grad,
)


def tvloss_example():
    ch = np.array([[1.0, 2.0, 3.0], [2.0, 3.0, 4.0], [3.0, 4.0, 5.0]])
    return np.stack([ch, ch])[None]  # 1 x 2 x 3 x 3


def no_ties(x, axes):
    """True when no forward difference along ``axes`` is within 1e-4 of 0 (|.| is smooth
    there, so central differences with eps = 1e-6 never cross a kink)."""
    return all(np.min(np.abs(np.diff(x, axis=a))) > 1e-4 for a in axes)


# --------------------------------------------------------------------------- PyTorch TVLoss
def test_torch_tvloss_example():
    x = tvloss_example()
    # All differences are 1: sum dh^2 = 12 = C (H-1) W and sum dw^2 = 12 = C H (W-1), so
    # 2 * 1 * (1 + 1) / N = 4.
    assert compat.torch_tv_loss(x) == pytest.approx(4.0, abs=1e-12)
    g = np.array([[-2.0, -1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 1.0, 2.0]]) / 3.0
    grad = compat.torch_tv_loss_grad(x)
    assert grad.shape == x.shape
    assert_allclose(grad, np.stack([g, g])[None], atol=1e-12)


def test_torch_weight_scales():
    x = tvloss_example()
    assert compat.torch_tv_loss(x, weight=2.5) == pytest.approx(10.0, abs=1e-12)
    assert compat.torch_tv_loss(x, 0.0) == pytest.approx(0.0, abs=1e-12)
    assert_allclose(compat.torch_tv_loss_grad(x, weight=2.5), 2.5 * compat.torch_tv_loss_grad(x),
                    rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 3, 5, 7), (3, 1, 8, 2), (4, 2, 6, 6)])
@pytest.mark.parametrize("weight", [1.0, 0.3])
def test_torch_random_vs_reference(shape, weight):
    rng = np.random.default_rng(21)
    x = rng.standard_normal(shape)
    x_copy = x.copy()
    assert_allclose(compat.torch_tv_loss(x, weight), ref_torch_tv_loss(x, weight), rtol=1e-12)
    assert_allclose(compat.torch_tv_loss_grad(x, weight), ref_torch_tv_loss_grad(x, weight),
                    rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(x, x_copy)
    # Non-contiguous input gives the same numbers.
    xf = np.asfortranarray(x)[:, :, ::-1][:, :, ::-1]
    assert_allclose(compat.torch_tv_loss(xf, weight), ref_torch_tv_loss(x, weight), rtol=1e-12)


def test_torch_matches_tv():
    # Sum of squared differences along one axis = anisotropic beta=2 TV along that axis only.
    rng = np.random.default_rng(22)
    x = rng.standard_normal((2, 3, 6, 5))
    n, c, h, w = x.shape
    sh = tvnumba.tv(x, 2, axes=2, isotropic=False)
    sw = tvnumba.tv(x, 2, axes=3, isotropic=False)
    expected = 2 * (sh / (c * (h - 1) * w) + sw / (c * h * (w - 1))) / n
    assert_allclose(compat.torch_tv_loss(x), expected, rtol=1e-12)


def test_torch_gradient_finite_differences():
    rng = np.random.default_rng(23)
    x = rng.standard_normal((2, 2, 4, 3))
    num = numerical_grad(lambda v: compat.torch_tv_loss(v, 0.7), x, 1e-6)
    assert_allclose(compat.torch_tv_loss_grad(x, 0.7), num, rtol=1e-6, atol=1e-8)


# --------------------------------------------------------------------------- TensorFlow
def test_tf_hand_hwc():
    # HWC 2x2x1 [[1, 4], [2, 0]]: height |2-1| + |0-4| = 5, width |4-1| + |0-2| = 5.
    x = np.array([[1.0, 4.0], [2.0, 0.0]])[:, :, None]
    v = compat.tf_total_variation(x)
    assert isinstance(v, float)
    assert v == pytest.approx(10.0, abs=1e-12)
    # Gradient: signs of the height differences (+1, -1) and width differences (+1, -1):
    # g[0,0] = -1 - 1, g[1,0] = +1 + 1, g[0,1] = +1 + 1, g[1,1] = -1 - 1.
    assert_allclose(compat.tf_total_variation_grad(x)[:, :, 0], [[-2.0, 2.0], [2.0, -2.0]],
                    atol=1e-12)


def test_tf_hand_multichannel():
    # Two channels: channel 0 as above (10), channel 1 = [[0, 0], [0, 3]]: height 3, width 3.
    x = np.zeros((2, 2, 2))
    x[:, :, 0] = [[1.0, 4.0], [2.0, 0.0]]
    x[:, :, 1] = [[0.0, 0.0], [0.0, 3.0]]
    assert compat.tf_total_variation(x) == pytest.approx(16.0, abs=1e-12)


def test_tf_nhwc_per_image():
    x = np.array([[1.0, 4.0], [2.0, 0.0]])[:, :, None]
    batch = np.stack([x, 2 * x, 1 - x, np.zeros_like(x)])  # TV scales with |a|, ignores shifts
    v = compat.tf_total_variation(batch)
    assert isinstance(v, np.ndarray) and v.shape == (4,)
    assert_allclose(v, [10.0, 20.0, 10.0, 0.0], atol=1e-12)
    assert compat.tf_tv_loss(batch) == pytest.approx(40.0, abs=1e-12)
    assert compat.tf_tv_loss(batch, weight=0.25) == pytest.approx(10.0, abs=1e-12)
    assert compat.tf_tv_loss(x, weight=3.0) == pytest.approx(30.0, abs=1e-12)


@pytest.mark.parametrize("shape", [(5, 6, 3), (2, 5, 4, 1), (3, 7, 2, 3), (1, 1, 4, 2)])
def test_tf_random_vs_reference(shape):
    rng = np.random.default_rng(24)
    x = rng.standard_normal(shape)
    x_copy = x.copy()
    assert_allclose(compat.tf_total_variation(x), ref_tf_total_variation(x), rtol=1e-12)
    assert_allclose(compat.tf_total_variation_grad(x), ref_tf_total_variation_grad(x),
                    atol=1e-12)
    assert_allclose(compat.tf_tv_loss(x, 0.4), ref_tf_tv_loss(x, 0.4), rtol=1e-12)
    assert_allclose(compat.tf_tv_loss_grad(x, 0.4), ref_tf_tv_loss_grad(x, 0.4), atol=1e-12)
    np.testing.assert_array_equal(x, x_copy)


def test_tf_matches_tv():
    rng = np.random.default_rng(25)
    x = rng.standard_normal((3, 6, 5, 2))  # NHWC
    # anisotropic beta = 1 TV over (H, W), channels as batch items, summed per image
    per = tvnumba.tv(x, 1, axes=(1, 2), isotropic=False, reduction="none").sum(axis=1)
    assert_allclose(compat.tf_total_variation(x), per, rtol=1e-12)


@pytest.mark.parametrize("shape", [(4, 3, 2), (2, 3, 4, 2)])
def test_tf_gradient_finite_differences(shape):
    rng = np.random.default_rng(26)
    x = rng.standard_normal(shape)
    axes = (0, 1) if len(shape) == 3 else (1, 2)
    assert no_ties(x, axes)
    num = numerical_grad(lambda v: np.sum(compat.tf_total_variation(v)), x, 1e-6)
    assert_allclose(compat.tf_total_variation_grad(x), num, rtol=1e-6, atol=1e-7)
    num = numerical_grad(lambda v: compat.tf_tv_loss(v, 1.7), x, 1e-6)
    assert_allclose(compat.tf_tv_loss_grad(x, 1.7), num, rtol=1e-6, atol=1e-7)


# --------------------------------------------------------------------------- argument checks
def word(name):
    """Regex for ``name`` as a whole word (so that 'x' does not match inside 'max')."""
    return rf"(?<![\w.]){re.escape(name)}(?![\w])"


TORCH = (torch_tv_loss, torch_tv_loss_grad)
TF = (tf_total_variation, tf_total_variation_grad, tf_tv_loss, tf_tv_loss_grad)


@pytest.mark.parametrize("fn", TORCH)
@pytest.mark.parametrize("shape", [(0, 3, 4, 4), (2, 0, 4, 4)])
def test_torch_empty_batch_or_channels(fn, shape):
    with pytest.raises(ValueError, match=word("x")) as info:
        fn(np.zeros(shape, np.float32))
    assert str(shape) in str(info.value)


@pytest.mark.parametrize("fn", [torch_tv_loss, torch_tv_loss_grad, tf_tv_loss, tf_tv_loss_grad])
@pytest.mark.parametrize("weight", ["2", True, np.bool_(False), None, [1.0], 1j])
def test_compat_weight_type(fn, weight):
    x = np.zeros((1, 1, 4, 4), np.float32) if fn in TORCH else np.zeros((1, 4, 4, 1))
    with pytest.raises(TypeError, match=word("weight")):
        fn(x, weight=weight)


@pytest.mark.parametrize("fn", [torch_tv_loss, torch_tv_loss_grad, tf_tv_loss, tf_tv_loss_grad])
def test_compat_weight_numbers_accepted(fn):
    x = np.zeros((1, 1, 4, 4), np.float32) if fn in TORCH else np.zeros((1, 4, 4, 1))
    fn(x, weight=2)
    fn(x, weight=np.float32(0.5))


@pytest.mark.parametrize("fn", TORCH + TF)
@pytest.mark.parametrize("bad", ["complex", "object", "nan", "inf", "masked", "empty"])
def test_compat_errors_name_x(fn, bad):
    shape = (1, 2, 4, 4) if fn in TORCH else (1, 4, 4, 2)
    x = np.ones(shape)
    if bad == "complex":
        x = x.astype(complex)
    elif bad == "object":
        x = x.astype(object)
    elif bad == "nan":
        x[0, 0, 1, 1] = np.nan
    elif bad == "inf":
        x[0, 0, 1, 1] = -np.inf
    elif bad == "masked":
        x = np.ma.masked_array(x, mask=x > 5)
    else:
        x = np.ones((1, 0, 4, 4) if fn in TORCH else (1, 4, 4, 0))
    with pytest.raises((TypeError, ValueError)) as info:
        fn(x)
    msg = str(info.value)
    assert re.search(word("x"), msg), msg
    assert not re.search(word("u"), msg), msg


def test_inputs_not_modified():
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    before = x.copy()
    torch_tv_loss_grad(x)
    tf_total_variation_grad(x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(x, before)
