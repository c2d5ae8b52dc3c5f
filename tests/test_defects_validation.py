"""Regression tests: argument checks of compat (C), distance (D) and make_plan (E).

Contract: bad input raises ValueError/TypeError naming the argument (as the
caller spells it) and its value; inputs are never modified.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tvnumba import denoise_tv_beta, total_variation_distance, tv, tv_grad
from tvnumba import _validate as V
from tvnumba.compat import (
    tf_total_variation,
    tf_total_variation_grad,
    tf_tv_loss,
    tf_tv_loss_grad,
    torch_tv_loss,
    torch_tv_loss_grad,
)


def word(name):
    return rf"(?<![\w.]){re.escape(name)}(?![\w])"


TORCH = (torch_tv_loss, torch_tv_loss_grad)
TF = (tf_total_variation, tf_total_variation_grad, tf_tv_loss, tf_tv_loss_grad)


# --- C: compat ---------------------------------------------------------------------
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
def test_compat_weight_numbers_still_accepted(fn):
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


# --- D: total_variation_distance -----------------------------------------------------
@pytest.mark.parametrize("atol", [np.inf, np.nan, -1e-3, -np.inf])
def test_distance_atol_value(atol):
    with pytest.raises(ValueError, match=word("atol")):
        total_variation_distance([1.0, 0.0], [0.0, 1.0], atol=atol)


@pytest.mark.parametrize("atol", ["1e-8", None, True, 1j])
def test_distance_atol_type(atol):
    with pytest.raises(TypeError, match=word("atol")):
        total_variation_distance([1.0, 0.0], [0.0, 1.0], atol=atol)


def test_distance_atol_inf_reproducer_and_range():
    with pytest.raises(ValueError, match="atol=inf"):
        total_variation_distance([1.4, 0.0], [0.0, 1.4], atol=np.inf)
    # Within a (large) tolerance the distance is still clipped to [0, 1].
    assert total_variation_distance([1.4, 0.0], [0.0, 1.4], atol=0.5) == 1.0
    d = total_variation_distance([[1.0 + 1e-9, 0.0], [0.5, 0.5]],
                                 [[0.0, 1.0 + 1e-9], [0.5, 0.5]], axis=1)
    assert np.all((d >= 0) & (d <= 1))
    assert total_variation_distance([0.5, 0.5], [0.5, 0.5], atol=0) == 0.0


# --- E: make_plan --------------------------------------------------------------------
@pytest.mark.parametrize("axes", [True, False, np.bool_(True), (0, True), [True]])
def test_axes_bool_rejected(axes):
    with pytest.raises(TypeError, match=word("axes")):
        tv(np.ones((3, 4)), axes=axes)


@pytest.mark.parametrize("channel_axis", [True, False, np.bool_(True)])
def test_channel_axis_bool_rejected(channel_axis):
    with pytest.raises(TypeError, match=word("channel_axis")):
        tv(np.ones((3, 4, 2)), channel_axis=channel_axis)


@pytest.mark.parametrize("fn", [tv, tv_grad])
def test_masked_array_rejected(fn):
    u = np.ma.masked_array(np.arange(6.0), mask=[0, 0, 1, 0, 0, 0])
    with pytest.raises(TypeError, match=word("u")) as info:
        fn(u)
    assert "filled" in str(info.value) and "np.asarray" in str(info.value)
    assert fn(np.asarray(u)) is not None  # the documented way to drop the mask


def test_masked_array_named_image():
    u = np.ma.masked_array(np.ones((4, 4)), mask=np.zeros((4, 4), bool))
    with pytest.raises(TypeError, match=word("x")):
        V.make_plan(u, 1.0, name="x")


def test_too_many_dimensions():
    u = np.zeros((1,) * 63 + (2,))
    with pytest.raises(ValueError, match=str(V.MAX_SPATIAL_NDIM)) as info:
        tv(u)
    assert "spatial axes" in str(info.value) and "found" not in str(info.value)
    # the limit itself works, and batch axes do not count
    assert tv(np.zeros((1,) * (V.MAX_SPATIAL_NDIM - 1) + (2,))) == 0.0
    assert tv(u, axes=(-1,)) == 0.0


@pytest.mark.parametrize(("kw", "match"), [
    (dict(u=np.zeros((0, 3))), "empty"),
    (dict(u=np.zeros(())), "dimension"),
    (dict(u=np.zeros((3, 3), complex)), "real"),
    (dict(u=np.zeros((3,)), channel_axis=0), "spatial"),
])
def test_make_plan_name(kw, match):
    u = kw.pop("u")
    with pytest.raises((TypeError, ValueError), match=word("image")):
        V.make_plan(u, 1.0, name="image", **kw)
    with pytest.raises((TypeError, ValueError), match=word("u")):
        V.make_plan(u, 1.0, **kw)


def test_denoise_errors_name_image():
    with pytest.raises(ValueError, match=word("image")):
        denoise_tv_beta(np.zeros((0, 4)), weight=0.1)
    with pytest.raises(ValueError, match=word("image")):
        denoise_tv_beta(np.zeros((4,)), weight=0.1, channel_axis=0)


def test_inputs_not_modified():
    x = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    before = x.copy()
    torch_tv_loss_grad(x)
    tf_total_variation_grad(x.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(x, before)
