"""tvnumba._validate: the checks of an image and of its shared arguments (``make_plan``,
beta, smoothing, spacing, axes, channel_axis, reduction, device, out).

Exercised through tv, tv_grad and tv_value_and_grad: every bad input raises
ValueError/TypeError naming the argument and the value received.  A function's own
arguments (a PSF, a mask, a weight) are checked in that function's test file."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tvnumba
from tvnumba import _validate as V
from tvnumba import tv, tv_grad

FUNCS = [tvnumba.tv, tvnumba.tv_grad, tvnumba.tv_value_and_grad]
BAD = (ValueError, TypeError)


@pytest.fixture
def u():
    return np.random.default_rng(0).standard_normal((4, 5, 3))


def word(name):
    """Regex for ``name`` as a whole word (so that 'u' does not match inside 'must')."""
    return rf"(?<![\w.]){re.escape(name)}(?![\w])"


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("beta", [0, 0.0, -1.5, float("nan"), float("inf"), -np.inf])
def test_beta(func, u, beta):
    with pytest.raises(BAD, match=word("beta")):
        func(u, beta)


@pytest.mark.parametrize("func", FUNCS)
def test_beta_value_in_message(func, u):
    with pytest.raises(BAD, match=r"beta.*-1\.5"):
        func(u, -1.5)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("smoothing", [-0.1, -1, float("nan"), float("inf")])
def test_smoothing(func, u, smoothing):
    with pytest.raises(BAD, match=word("smoothing")):
        func(u, 1.0, smoothing=smoothing)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("spacing", [
    0.0, -1.0, float("nan"), float("inf"),          # bad scalar
    (1.0, 0.0, 1.0), (1.0, -2.0, 1.0), (1.0, np.nan, 1.0),  # bad entry
    (1.0, 1.0), (1.0, 1.0, 1.0, 1.0), [],           # wrong count (3 spatial axes)
])
def test_spacing(func, u, spacing):
    with pytest.raises(BAD, match=word("spacing")):
        func(u, 1.0, spacing=spacing)


@pytest.mark.parametrize("func", FUNCS)
def test_spacing_count_follows_axes(func, u):
    with pytest.raises(BAD, match=word("spacing")):
        func(u, 1.0, axes=(0, 1), spacing=(1.0, 1.0, 1.0))
    with pytest.raises(BAD, match=word("spacing")):
        func(u, 1.0, channel_axis=-1, spacing=(1.0, 1.0, 1.0))


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", ["float64", "float32", ">f8"])
def test_non_finite_input(func, u, bad, dtype):
    v = u.astype(dtype)
    v[1, 2, 0] = bad
    with pytest.raises(BAD, match=word("u")):
        func(v, 1.0)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("axes", [3, -4, (0, 3), (0, -4), (0, 0), (1, -2), 10])
def test_axes_out_of_range_or_repeated(func, u, axes):
    with pytest.raises(BAD, match=word("axes")):
        func(u, 1.0, axes=axes)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("channel_axis", [3, -4, 7])
def test_channel_axis_out_of_range(func, u, channel_axis):
    with pytest.raises(BAD, match=word("channel_axis")):
        func(u, 1.0, channel_axis=channel_axis)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("axes, channel_axis", [((0, 2), 2), ((0, 1), -2), (2, -1), ((-1,), 2)])
def test_spatial_axis_is_channel_axis(func, u, axes, channel_axis):
    with pytest.raises(BAD, match=word("channel_axis")):
        func(u, 1.0, axes=axes, channel_axis=channel_axis)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("shape", [(0,), (0, 5), (4, 0), (3, 0, 2)])
def test_empty(func, shape):
    with pytest.raises(BAD, match=word("u")):
        func(np.zeros(shape), 1.0)


@pytest.mark.parametrize("func", FUNCS)
def test_empty_batch_axis(func):
    with pytest.raises(BAD, match=word("u")):
        func(np.zeros((0, 4, 4)), 1.0, axes=(1, 2))


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("dtype", [np.complex64, np.complex128])
def test_complex(func, dtype):
    with pytest.raises(BAD, match=word("u")):
        func(np.ones((4, 4), dtype=dtype), 1.0)


@pytest.mark.parametrize("func", FUNCS)
def test_object_dtype(func):
    with pytest.raises(BAD, match=word("u")):
        func(np.ones((4, 4), dtype=object), 1.0)


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("reduction", ["avg", "Sum", "", None, "max"])
def test_reduction(func, u, reduction):
    with pytest.raises(BAD, match=word("reduction")):
        func(u, 1.0, reduction=reduction)


@pytest.mark.parametrize("func", FUNCS)
def test_reduction_value_in_message(func, u):
    with pytest.raises(BAD, match=r"reduction.*avg"):
        func(u, 1.0, reduction="avg")


@pytest.mark.parametrize("func", FUNCS)
@pytest.mark.parametrize("device", ["gpu", "tpu", "CUDA:7", 3])
def test_device(func, u, device):
    with pytest.raises(BAD, match=word("device")):
        func(u, 1.0, device=device)


@pytest.mark.parametrize("func", [tvnumba.tv_grad, tvnumba.tv_value_and_grad])
@pytest.mark.parametrize("out_shape, out_dtype, u_dtype", [
    ((4, 5), np.float64, np.float64),        # wrong shape
    ((3, 5, 4), np.float64, np.float64),     # wrong shape, same size
    ((4, 5, 3), np.float32, np.float64),     # float32 out for a float64 gradient
    ((4, 5, 3), np.float64, np.float32),     # float64 out for a float32 gradient
    ((4, 5, 3), np.float64, np.float16),     # float16 input has a float32 gradient
    ((4, 5, 3), np.int64, np.int64),         # integer input has a float64 gradient
])
def test_out(func, u, out_shape, out_dtype, u_dtype):
    with pytest.raises(BAD, match=word("out")):
        func(u.astype(u_dtype), 1.0, out=np.zeros(out_shape, dtype=out_dtype))


@pytest.mark.parametrize("func", FUNCS)
def test_errors_do_not_depend_on_order_of_good_arguments(func, u):
    # A valid call right after the failures works (no state left behind).
    with pytest.raises(BAD):
        func(u, -1.0)
    res = func(u, 1.0, axes=(0, 1), channel_axis=2, spacing=(1.0, 2.0))
    assert res is not None


# --------------------------------------------------------------------------- make_plan
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
