"""tvnumba.tv / tv_grad / tv_value_and_grad and the CPU kernels behind them, against the
float64 reference (tests/reference.py).

Values, gradients, dtypes, layouts, ``out=`` (also overlapping the input), long 1-D
signals, and steps whose squares or powers leave the dtype's range.

Tolerances (why these numbers)
------------------------------
* float64 computation (float64, integer and bool input): ``rtol = 1e-9`` on the value.  The
  value is a sum of non-negative terms, each within a few ulps (1e-16) of the reference, so
  1e-9 leaves room for ``pow`` implementations and summation order, and nothing else.
* float32 computation (float32 and float16 input): ``rtol = 1e-5`` on the value.  Each term is
  computed in float32 (relative error a few times 6e-8 for beta <= 4) and summed in float64.
* Gradient: ``rtol`` as above plus ``atol = rtol * ref_grad_scale(...)``, where the scale is
  the largest flux |w D_d u| / h_d.  A gradient entry is a sum of at most 2 n_spatial fluxes
  (D^T), so its rounding error is bounded by that scale, not by the entry itself
  (cancellation); the reference itself is exact to ~1e-15 relative to the scale.
* The reference is fed exactly the values the library sees (float32 / float16 / int / bool
  arrays are converted to float64 exactly), so the only differences are rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

import tvnumba
from tvnumba import tv, tv_grad, tv_value_and_grad
from reference import (
    numerical_grad,
    ref_grad_scale,
    ref_tv,
    ref_tv_grad,
    roles,
)

RTOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-5}

# Beta: the specialised values 1 and 2 (also as ints) often, plus the rest of (0, 4].
BETAS = st.one_of(
    st.sampled_from([1.0, 2.0, 1, 2, 0.5, 1.7, 3.0, 4.0, 0.3]),
    st.floats(0.05, 4.0, allow_nan=False, allow_infinity=False),
)
DTYPES = ["float64", "float32", "float16", "int16", "uint8", "int64", "bool",
          ">f8", ">f4", ">i4"]
LAYOUTS = ["C", "F", "strided", "negative", "permuted", "readonly"]


def grad_dtype(dtype):
    dtype = np.dtype(dtype)
    return np.dtype(np.float32) if dtype.kind == "f" and dtype.itemsize <= 4 else np.dtype(
        np.float64)


def make_data(rng, shape, dtype, ties=False):
    """Random values representable in ``dtype`` (ties=True: few distinct levels)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    if dtype.kind == "u":
        return rng.integers(0, 256, shape).astype(dtype)
    if dtype.kind == "i":
        return rng.integers(-60, 60, shape).astype(dtype)
    if ties:
        return (rng.integers(-2, 3, shape) * 0.75).astype(dtype)
    return (rng.standard_normal(shape) * 1.5).astype(dtype)


def make_layout(a, layout, rng):
    """An array equal to ``a`` with the requested memory layout."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "strided":  # every other element of a bigger buffer, with an offset
        big = np.zeros(tuple(2 * n + 1 for n in a.shape), dtype=a.dtype)
        view = big[tuple(slice(1, None, 2) for _ in a.shape)]
        view[...] = a
        return view
    if layout == "negative":  # negative strides on every axis
        return np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])[
            (slice(None, None, -1),) * a.ndim]
    if layout == "permuted":  # memory order a random permutation of the axes
        perm = rng.permutation(a.ndim)
        return np.ascontiguousarray(a.transpose(perm)).transpose(np.argsort(perm))
    if layout == "readonly":
        b = a.copy()
        b.flags.writeable = False
        return b
    raise AssertionError(layout)


@st.composite
def tv_cases(draw, max_ndim=4, dtypes=DTYPES, layouts=LAYOUTS):
    ndim = draw(st.integers(1, max_ndim))
    max_len = {1: 9, 2: 7, 3: 5, 4: 4}[ndim]
    shape = tuple(draw(st.lists(st.integers(1, max_len), min_size=ndim, max_size=ndim)))
    channel_axis = None
    if ndim >= 2 and draw(st.booleans()):
        channel_axis = draw(st.integers(-ndim, ndim - 1))
    c = None if channel_axis is None else channel_axis % ndim
    others = [a for a in range(ndim) if a != c]
    if draw(st.booleans()):
        axes = None
        n_spatial = len(others)
    else:
        perm = draw(st.permutations(others))
        n_spatial = draw(st.integers(1, len(perm)))
        axes = tuple(a - ndim if draw(st.booleans()) else a for a in perm[:n_spatial])
        if n_spatial == 1 and draw(st.booleans()):
            axes = axes[0]
    spacing = draw(st.one_of(
        st.just(1.0),
        st.floats(0.25, 4.0),
        st.lists(st.floats(0.25, 4.0), min_size=n_spatial, max_size=n_spatial).map(tuple),
    ))
    kw = dict(
        beta=draw(BETAS),
        axes=axes,
        channel_axis=channel_axis,
        spacing=spacing,
        isotropic=draw(st.booleans()),
        smoothing=draw(st.one_of(st.just(0.0), st.floats(0.01, 2.0))),
        reduction=draw(st.sampled_from(["sum", "mean", "none"])),
    )
    dtype = draw(st.sampled_from(dtypes))
    layout = draw(st.sampled_from(layouts))
    ties = draw(st.booleans())
    seed = draw(st.integers(0, 2**32 - 1))
    return shape, dtype, layout, ties, seed, kw


def build(shape, dtype, layout, ties, seed):
    rng = np.random.default_rng(seed)
    a = make_data(rng, shape, dtype, ties)
    u = make_layout(a, layout, rng)
    assert u.shape == tuple(shape)
    return u


def expected(u, kw):
    return ref_tv(u, **kw), ref_tv_grad(u, **kw), ref_grad_scale(u, **kw)


def check_value(value, ref, kw, rtol):
    if kw["reduction"] == "none":
        assert isinstance(value, np.ndarray) and value.dtype == np.float64
        assert value.shape == ref.shape
        assert_allclose(value, ref, rtol=rtol, atol=0)
    else:
        assert type(value) is float
        assert_allclose(value, ref, rtol=rtol, atol=0)


def check_grad(g, ref, scale, u, rtol):
    assert isinstance(g, np.ndarray)
    assert g.shape == u.shape
    assert g.dtype == grad_dtype(u.dtype)
    assert np.all(np.isfinite(g))
    assert_allclose(g, ref, rtol=rtol, atol=rtol * scale)


def snapshot(u):
    return u.copy(), u.strides, u.flags.writeable, u.flags.c_contiguous, u.flags.f_contiguous


def check_unchanged(u, snap):
    copy, strides, writeable, c, f = snap
    assert u.dtype == copy.dtype
    assert_array_equal(u, copy)
    assert (u.strides, u.flags.writeable, u.flags.c_contiguous, u.flags.f_contiguous) == (
        strides, writeable, c, f)


# --------------------------------------------------------------------------- properties
@given(tv_cases())
def test_against_reference(case):
    shape, dtype, layout, ties, seed, kw = case
    u = build(shape, dtype, layout, ties, seed)
    note(f"u = {u!r}")
    snap = snapshot(u)
    rtol = RTOL[grad_dtype(u.dtype)]
    ref_v, ref_g, scale = expected(u, kw)

    value = tvnumba.tv(u, **kw)
    check_value(value, ref_v, kw, rtol)
    g = tvnumba.tv_grad(u, **kw)
    check_grad(g, ref_g, scale, u, rtol)
    v2, g2 = tvnumba.tv_value_and_grad(u, **kw)
    check_value(v2, ref_v, kw, rtol)
    check_grad(g2, ref_g, scale, u, rtol)
    # The fused pass must agree with the separate calls up to rounding in the compute dtype.
    tight = 1e-12 if grad_dtype(u.dtype) == np.float64 else 1e-6
    assert_allclose(v2, value, rtol=tight, atol=0)
    assert_allclose(g2, g, rtol=tight, atol=tight * scale)
    check_unchanged(u, snap)


@given(tv_cases(max_ndim=3, dtypes=["float64", "float32", "int32"], layouts=["C", "F"]),
       st.sampled_from(["C", "F", "strided"]))
def test_out_argument(case, out_layout):
    shape, dtype, layout, ties, seed, kw = case
    u = build(shape, dtype, layout, ties, seed)
    snap = snapshot(u)
    gdt = grad_dtype(u.dtype)
    rtol = RTOL[gdt]
    ref_v, ref_g, scale = expected(u, kw)
    for func in ("tv_grad", "tv_value_and_grad"):
        out = make_layout(np.full(shape, np.nan, dtype=gdt), out_layout, None)
        out_strides = out.strides
        res = getattr(tvnumba, func)(u, out=out, **kw)
        if func == "tv_value_and_grad":
            value, res = res
            check_value(value, ref_v, kw, rtol)
        assert res is out
        assert out.strides == out_strides
        check_grad(out, ref_g, scale, u, rtol)
    check_unchanged(u, snap)


@given(tv_cases(max_ndim=3, dtypes=["float64"], layouts=["C"]),
       st.floats(-3.0, 3.0).filter(lambda a: abs(a) > 0.1))
def test_homogeneity(case, a):
    """TV(a u) = |a|^beta TV(u) and grad TV(a u) = sign(a) |a|^(beta-1) grad TV(u) (s = 0)."""
    shape, dtype, layout, ties, seed, kw = case
    kw = dict(kw, smoothing=0.0)
    u = build(shape, dtype, layout, ties, seed)
    beta = kw["beta"]
    assert_allclose(tvnumba.tv(a * u, **kw), abs(a) ** beta * np.asarray(tvnumba.tv(u, **kw)),
                    rtol=1e-9)
    g = tvnumba.tv_grad(u, **kw)
    scale = ref_grad_scale(u, **kw)
    assert_allclose(tvnumba.tv_grad(a * u, **kw), np.sign(a) * abs(a) ** (beta - 1) * g,
                    rtol=1e-9, atol=1e-9 * abs(a) ** (beta - 1) * scale)
    # adding a constant changes nothing
    assert_allclose(tvnumba.tv(u + 3.25, **kw), tvnumba.tv(u, **kw), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- dtype rules
@pytest.mark.parametrize("dtype, gdt", [
    ("float64", "float64"), ("float32", "float32"), ("float16", "float32"),
    (">f4", "float32"), (">f8", "float64"), ("int8", "float64"), ("uint8", "float64"),
    ("int32", "float64"), ("uint16", "float64"), ("int64", "float64"), ("bool", "float64"),
])
def test_dtype_rules(dtype, gdt):
    rng = np.random.default_rng(5)
    u = make_data(rng, (6, 7), dtype)
    g = tvnumba.tv_grad(u, 1.5)
    assert g.dtype == np.dtype(gdt)
    assert g.dtype.isnative
    _, g2 = tvnumba.tv_value_and_grad(u, 1.5)
    assert g2.dtype == np.dtype(gdt)
    assert type(tvnumba.tv(u, 1.5)) is float
    assert type(tvnumba.tv(u, 1.5, reduction="mean")) is float
    v = tvnumba.tv(u, 1.5, axes=0, reduction="none")
    assert v.dtype == np.float64 and v.shape == (7,)
    rtol = RTOL[np.dtype(gdt)]
    assert_allclose(tvnumba.tv(u, 1.5), ref_tv(u, 1.5), rtol=rtol)
    assert_allclose(g, ref_tv_grad(u, 1.5), rtol=rtol, atol=rtol * ref_grad_scale(u, 1.5))


def test_integers_taken_unscaled_no_wraparound():
    # uint8 [0, 255, 3]: |255 - 0| + |3 - 255| = 507 (not img_as_float scaled, no uint8 wrap)
    u = np.array([0, 255, 3], dtype=np.uint8)
    assert_allclose(tvnumba.tv(u), 507.0, rtol=1e-12)
    # signs of the differences [+1, -1]; D^T v = [-v0, v0 - v1, v1] = [-1, 2, -1]
    assert_allclose(tvnumba.tv_grad(u), [-1.0, 2.0, -1.0], atol=1e-12)
    # bool [True, False, True]: two unit jumps
    assert_allclose(tvnumba.tv(np.array([True, False, True]), 2), 2.0, rtol=1e-12)


# --------------------------------------------------------------------------- hand cases
def test_hand_cases():
    # Same cases as test_reference.py (worked out there).
    u = np.array([0.0, 1.0, 3.0])
    assert_allclose(tvnumba.tv(u, 1), 3.0, rtol=1e-12)
    assert_allclose(tvnumba.tv(u, 2), 5.0, rtol=1e-12)
    assert_allclose(tvnumba.tv_grad(u, 1), [-1.0, 0.0, 1.0], atol=1e-12)
    assert_allclose(tvnumba.tv_grad(u, 2), [-2.0, -2.0, 4.0], atol=1e-12)
    u = np.array([[0.0, 3.0], [4.0, 0.0]])
    assert_allclose(tvnumba.tv(u, 1), 12.0, rtol=1e-12)
    assert_allclose(tvnumba.tv(u, 1, isotropic=False), 14.0, rtol=1e-12)
    u = np.array([[0.0, 1.0], [5.0, 7.0]])
    assert_allclose(tvnumba.tv(u, 1, axes=(1, 0), spacing=(1, 2), isotropic=False), 8.5,
                    rtol=1e-12)
    assert_allclose(tvnumba.tv(u, 1, axes=(0, 1), spacing=(1, 2), isotropic=False), 12.5,
                    rtol=1e-12)
    u = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert_allclose(tvnumba.tv(u, 1, channel_axis=1), 5.0, rtol=1e-12)
    assert_allclose(tvnumba.tv(u, 1, channel_axis=1, reduction="mean"), 2.5, rtol=1e-12)
    assert_allclose(tvnumba.tv_grad(u, 1, channel_axis=1), [[-0.6, -0.8], [0.6, 0.8]],
                    atol=1e-12)


def test_reduction_none_shapes():
    rng = np.random.default_rng(8)
    u = rng.standard_normal((2, 5, 6, 3))
    assert tvnumba.tv(u, axes=(1, 2), channel_axis=-1, reduction="none").shape == (2,)
    assert tvnumba.tv(u, axes=2, channel_axis=3, reduction="none").shape == (2, 5)
    assert tvnumba.tv(u, axes=(-3,), reduction="none").shape == (2, 6, 3)
    v = tvnumba.tv(u, channel_axis=0, reduction="none")
    assert isinstance(v, np.ndarray) and v.shape == () and v.dtype == np.float64
    assert tvnumba.tv(u, reduction="none").shape == ()
    # batch axes keep their original order: (5, 3) from axes 1 and 3
    v = tvnumba.tv(u, axes=(2, 0), reduction="none")
    assert v.shape == (5, 3)
    assert_allclose(v, ref_tv(u, axes=(2, 0), reduction="none"), rtol=1e-9)


@pytest.mark.parametrize("beta", [0.6, 1.0, 2.0, 2.7])
@pytest.mark.parametrize("isotropic", [True, False])
def test_batch_items_are_independent(beta, isotropic):
    rng = np.random.default_rng(9)
    u = rng.standard_normal((3, 6, 5, 2))
    kw = dict(beta=beta, isotropic=isotropic, axes=(1, 2), channel_axis=-1, smoothing=0.1)
    per = tvnumba.tv(u, reduction="none", **kw)
    g = tvnumba.tv_grad(u, reduction="none", **kw)
    for i in range(3):
        assert_allclose(per[i], tvnumba.tv(u[i], beta=beta, isotropic=isotropic,
                                           channel_axis=-1, smoothing=0.1), rtol=1e-12)
        assert_allclose(g[i], tvnumba.tv_grad(u[i], beta=beta, isotropic=isotropic,
                                              channel_axis=-1, smoothing=0.1),
                        rtol=1e-12, atol=1e-14)
    # "sum" is the sum of "none"; "mean" divides by pixels x batch (not channels): 6 * 5 * 3
    assert_allclose(tvnumba.tv(u, **kw), per.sum(), rtol=1e-12)
    assert_allclose(tvnumba.tv(u, reduction="mean", **kw), per.sum() / 90, rtol=1e-12)
    assert_allclose(tvnumba.tv_grad(u, reduction="mean", **kw), g / 90, rtol=1e-12,
                    atol=1e-15)
    assert_allclose(tvnumba.tv_grad(u, **kw), g, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("beta", [0.7, 1.0, 2.0, 3.0])
def test_channels(beta):
    rng = np.random.default_rng(10)
    u = rng.standard_normal((7, 6, 3))
    # anisotropic: channels are independent terms
    aniso = tvnumba.tv(u, beta, channel_axis=-1, isotropic=False)
    assert_allclose(aniso, sum(tvnumba.tv(u[..., k], beta, isotropic=False) for k in range(3)),
                    rtol=1e-10)
    # a single channel is the same as no channel axis
    for iso in (True, False):
        assert_allclose(tvnumba.tv(u[..., :1], beta, channel_axis=2, isotropic=iso),
                        tvnumba.tv(u[..., 0], beta, isotropic=iso), rtol=1e-12)
        assert_allclose(tvnumba.tv_grad(u[..., :1], beta, channel_axis=2, isotropic=iso)[..., 0],
                        tvnumba.tv_grad(u[..., 0], beta, isotropic=iso), rtol=1e-12,
                        atol=1e-14)
    # isotropic colour TV couples the channels: below the per-channel sum for beta = 1 ...
    iso = tvnumba.tv(u, beta, channel_axis=-1)
    per_channel = sum(tvnumba.tv(u[..., k], beta) for k in range(3))
    if beta == 2.0:  # ... and equal to it for beta = 2 (squares add up)
        assert_allclose(iso, per_channel, rtol=1e-12)
    elif beta == 1.0:
        assert iso < per_channel
    assert_allclose(iso, ref_tv(u, beta, channel_axis=-1), rtol=1e-9)


def test_spacing():
    rng = np.random.default_rng(11)
    u = rng.standard_normal((5, 6, 4))
    for beta in (0.5, 1.0, 2.0, 3.3):
        # scalar spacing h: TV_h = h^-beta TV_1 (s = 0)
        assert_allclose(tvnumba.tv(u, beta, spacing=2.5), 2.5 ** -beta * tvnumba.tv(u, beta),
                        rtol=1e-10)
        # per-axis spacing follows `axes`, not the axis number
        kw = dict(isotropic=False)
        assert_allclose(tvnumba.tv(u, beta, axes=(2, 0, 1), spacing=(0.5, 1.0, 2.0), **kw),
                        tvnumba.tv(u, beta, spacing=(1.0, 2.0, 0.5), **kw), rtol=1e-12)
        assert_allclose(tvnumba.tv(u, beta, axes=(2, 0, 1), spacing=(0.5, 1.0, 2.0)),
                        ref_tv(u, beta, axes=(2, 0, 1), spacing=(0.5, 1.0, 2.0)), rtol=1e-9)
    # spacing given as a NumPy array works like a tuple
    assert_allclose(tvnumba.tv(u, spacing=np.array([0.5, 1.0, 2.0])),
                    tvnumba.tv(u, spacing=(0.5, 1.0, 2.0)), rtol=1e-15)


def test_device_cpu_is_default():
    rng = np.random.default_rng(12)
    u = rng.standard_normal((9, 8)).astype(np.float32)
    assert tvnumba.tv(u, device="cpu") == tvnumba.tv(u)
    assert_array_equal(tvnumba.tv_grad(u, device="cpu"), tvnumba.tv_grad(u))


# --------------------------------------------------------------------------- gradient checks
FD_SHAPES = [(9,), (5, 6), (4, 3, 5), (3, 2, 3, 2), (5, 4, 3)]


@pytest.mark.parametrize("shape", FD_SHAPES)
@pytest.mark.parametrize("kw", [
    dict(beta=1.0), dict(beta=1.0, isotropic=False), dict(beta=2.0),
    dict(beta=1.5, spacing=0.7), dict(beta=3.0, isotropic=False, reduction="mean"),
    dict(beta=1.2, axes=0, reduction="none"),
], ids=lambda kw: "-".join(f"{k}={v}" for k, v in kw.items()))
def test_gradient_finite_differences_beta_ge_1(shape, kw):
    """beta >= 1, s = 0 on generic data (no zero differences except the fixed boundary
    ones), so TV is differentiable at u."""
    rng = np.random.default_rng(13)
    u = rng.standard_normal(shape)
    f = lambda v: np.sum(tvnumba.tv(v, **kw))  # noqa: E731  ("none": gradient of the sum)
    num = numerical_grad(f, u, 1e-6)
    g = tvnumba.tv_grad(u, **kw)
    assert_allclose(g, num, rtol=1e-5, atol=1e-6 * max(1.0, np.max(np.abs(num))))


@pytest.mark.parametrize("shape, extra", [
    ((11,), {}), ((6, 5), {}), ((4, 5, 3), dict(channel_axis=-1)),
    ((3, 4, 3), dict(spacing=(0.5, 1.5, 1.0))), ((2, 3, 2, 3), {}),
    ((5, 4, 2), dict(axes=(1, 0), channel_axis=2, reduction="mean")),
])
@pytest.mark.parametrize("beta, smoothing", [(0.3, 0.5), (0.5, 0.1), (0.9, 1.0)])
@pytest.mark.parametrize("isotropic", [True, False])
def test_gradient_finite_differences_beta_lt_1(shape, extra, beta, smoothing, isotropic):
    """beta < 1 is smooth only with s > 0."""
    rng = np.random.default_rng(14)
    u = rng.standard_normal(shape)
    kw = dict(extra, beta=beta, smoothing=smoothing, isotropic=isotropic)
    num = numerical_grad(lambda v: tvnumba.tv(v, **kw), u, 1e-6)
    assert_allclose(tvnumba.tv_grad(u, **kw), num, rtol=1e-5,
                    atol=1e-6 * max(1.0, np.max(np.abs(num))))


# --------------------------------------------------------------------------- zero gradients
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("isotropic", [True, False])
@pytest.mark.parametrize("beta", [0.5, 1.0, 0.1])
def test_flat_regions_give_finite_results(dtype, isotropic, beta):
    # constant image: TV 0 and gradient exactly 0 (weights taken as 0 where the base is 0)
    u = np.full((7, 9), 2.5, dtype=dtype)
    assert tvnumba.tv(u, beta, isotropic=isotropic) == 0.0
    v, g = tvnumba.tv_value_and_grad(u, beta, isotropic=isotropic)
    assert v == 0.0
    assert np.all(g == 0)
    # piecewise constant: many zero differences next to jumps
    u = np.zeros((12, 10, 3), dtype=dtype)
    u[3:8, 2:6] = 1.0
    u[:, 7:, 1] = -2.0
    for ca in (None, -1):
        kw = dict(beta=beta, isotropic=isotropic, channel_axis=ca)
        v, g = tvnumba.tv_value_and_grad(u, **kw)
        assert np.isfinite(v) and np.all(np.isfinite(g))
        rtol = RTOL[np.dtype(dtype)]
        assert_allclose(v, ref_tv(u, **kw), rtol=rtol)
        assert_allclose(g, ref_tv_grad(u, **kw), rtol=rtol,
                        atol=rtol * ref_grad_scale(u, **kw))
        assert np.any(g != 0)


# --------------------------------------------------------------------------- larger inputs
LARGE = [
    # (shape, kwargs, layout): several blocks of rows per thread, ragged last block
    ((300, 257, 3), dict(channel_axis=-1), "C"),
    ((3, 300, 257), dict(channel_axis=0), "C"),
    ((300, 257, 3), dict(channel_axis=-1), "F"),
    ((20, 31, 17), {}, "C"),
    ((6, 40, 9, 2), dict(channel_axis=-1), "C"),  # colour volume, two row blocks
    ((20, 31, 17), dict(spacing=(1.0, 0.5, 2.0)), "negative"),
    ((4, 65, 130), dict(axes=(1, 2)), "C"),
    ((10007,), {}, "C"),
    ((6, 7, 8, 9), {}, "C"),
    ((2, 9, 10, 11), dict(axes=(1, 2, 3), reduction="none"), "C"),
    ((257, 3), dict(axes=0), "C"),
]


@pytest.mark.parametrize("shape, extra, layout", LARGE, ids=lambda p: str(p))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_large_against_reference(shape, extra, layout, dtype):
    rng = np.random.default_rng(15)
    u = make_layout(make_data(rng, shape, dtype), layout, rng)
    snap = snapshot(u)
    rtol = RTOL[np.dtype(dtype)]
    for beta, iso, s in [(1.0, True, 0.0), (2.0, False, 0.0), (0.7, True, 0.05),
                         (2.6, False, 0.3), (1.0, False, 0.2), (2.0, True, 0.0)]:
        kw = dict(extra, beta=beta, isotropic=iso, smoothing=s)
        ref_v, ref_g, scale = expected(u, dict(kw, reduction=kw.get("reduction", "sum")))
        v, g = tvnumba.tv_value_and_grad(u, **kw)
        assert_allclose(v, ref_v, rtol=rtol)
        assert_allclose(g, ref_g, rtol=rtol, atol=rtol * scale)
        assert_allclose(tvnumba.tv(u, **kw), ref_v, rtol=rtol)
    check_unchanged(u, snap)


def test_thread_count_does_not_change_results():
    numba = pytest.importorskip("numba")
    rng = np.random.default_rng(16)
    u = rng.standard_normal((131, 67, 3))
    n = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        v1, g1 = tvnumba.tv_value_and_grad(u, 1.3, channel_axis=-1)
    finally:
        numba.set_num_threads(n)
    v2, g2 = tvnumba.tv_value_and_grad(u, 1.3, channel_axis=-1)
    assert_allclose(v2, v1, rtol=1e-12)
    assert_allclose(g2, g1, rtol=1e-12, atol=1e-13)
    assert_allclose(v2, ref_tv(u, 1.3, channel_axis=-1), rtol=1e-9)


def test_roles_helper_consistent():
    # guard the reference's own axis bookkeeping used above
    assert roles(4, axes=(2, 0), channel_axis=None) == ([2, 0], None, [1, 3])


# --------------------------------------------------------------------------- out= overlapping u
def test_out_is_u():
    """``tv_grad(u, out=u)`` writes the gradient of ``u`` as it was on entry."""
    u = np.array([0.0, 1, 3, 2, 5])
    expected = ref_tv_grad(u.copy())
    got = tvnumba.tv_grad(u, out=u)
    assert got is u
    assert_allclose(u, expected)
    assert_allclose(expected, [-1, 0, 2, -2, 1])


@pytest.mark.parametrize("shift", [-3, -1, 1, 2, 5])
@pytest.mark.parametrize("beta", [0.7, 1.0, 2.0])
def test_out_overlaps_u_partially(shift, beta):
    """Shifted and partial overlaps of one buffer, in 2-D, against the reference on a copy."""
    rng = np.random.default_rng(abs(shift))
    buf = rng.standard_normal(12 * 9 + 40)
    start = 20
    u = buf[start:start + 108].reshape(12, 9)
    out = buf[start + shift:start + shift + 108].reshape(12, 9)
    expected = ref_tv_grad(u.copy(), beta=beta, smoothing=0.1)
    value, grad = tvnumba.tv_value_and_grad(u, beta=beta, smoothing=0.1, out=out)
    assert grad is out
    assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_out_is_a_transposed_view_of_u():
    rng = np.random.default_rng(1)
    u = rng.standard_normal((7, 7))
    expected = ref_tv_grad(u.copy(), beta=1.5)
    tvnumba.tv_grad(u, 1.5, out=u.T)
    assert_allclose(u.T, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------- long 1-D signals
@pytest.mark.parametrize("n", [4095, 4096, 8193, 30011])
@pytest.mark.parametrize("kw", [dict(), dict(beta=1.7, smoothing=0.05), dict(beta=0.6),
                                dict(beta=1.0, isotropic=False, spacing=0.5)])
def test_long_signal_in_segments_matches_reference(n, kw):
    """A 1-D signal runs in segments of >= 4096 samples, each recomputing the weight
    behind it: exact across the segment boundaries, for batches and channels too."""
    u = np.random.default_rng(n).standard_normal(n)
    value, grad = tvnumba.tv_value_and_grad(u, **kw)
    assert_allclose(value, ref_tv(u, **kw), rtol=1e-12)
    assert_allclose(grad, ref_tv_grad(u, **kw), rtol=1e-10, atol=1e-12)
    u3 = np.random.default_rng(1).standard_normal((2, n, 3))
    kw3 = dict(kw, axes=1, channel_axis=2, reduction="none")
    value, grad = tvnumba.tv_value_and_grad(u3, **kw3)
    assert_allclose(value, ref_tv(u3, **kw3), rtol=1e-12)
    assert_allclose(grad, ref_tv_grad(u3, **kw3), rtol=1e-10, atol=1e-12)


def test_long_signal_value_needs_no_signal_sized_scratch():
    """tv of a long 1-D float32 signal runs in segments with a few KiB of scratch per
    thread, no signal-sized scratch: the process's peak RSS grows by less than the
    input's size (measured as RSS: Numba's allocations are not traced)."""
    import subprocess
    import sys

    code = (
        "import resource, numpy as np, tvnumba\n"
        "u = np.random.default_rng(0).random(8_000_000, dtype=np.float32)\n"
        "tvnumba.tv(u[:9000], beta=1.7)\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "tvnumba.tv(u, beta=1.7)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024 / u.nbytes)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert float(out.stdout) < 1.0, out.stdout


# ---------------------------------------------------------------------- beyond the dtype's range
# The kernels work in the input's float type; where a difference's square (or the power
# m^(β/2-1)) leaves that type's normal range they still give the right finite value, never a
# wrong finite value, 0, or Inf with a zero gradient.  The expected values come from the
# float64 reference on rescaled data (TV is homogeneous: TV_s(c v) = c^β TV_{s/c}(v)) or are
# exact by hand.
def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _pow2(e):
    return math.inf if e > 1023 else 2.0**e


# tiny steps: subnormal squares and the fast power's exponent range
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


def test_value_and_grad_float32_tiny_step():
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


# huge steps: overflow of the squares, of s² or of 1/h
def test_float32_square_overflow():
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
