"""What every restoration function does around its solve, in one place: the image onto
its backend as float with its TV plan, and the canonical result back in the caller's layout
and kind of array.  Also the in-memory denoiser, which :mod:`tvnumba.dask` runs per chunk."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .._validate import check_choice, check_nonneg, float_dtype, make_plan
from ..backends import select
from ..solvers import Identity, solve
from ..solvers.data_terms import PoissonLoss
from .auto_weight import choose_weight

#: The noise models of the restoration functions.
NOISES = ("gaussian", "poisson")


def prepare(image, beta, *, device, channel_axis, spacing, isotropic, smoothing, plan=None,
            counts=False):
    """``(backend, f, plan)``: ``image`` as float (scikit-image's rule; with ``counts``,
    integers unscaled and negative values refused) on the backend of this call, and its
    validated TV plan (errors name ``image``).  ``plan``: that of a larger array
    ``image`` is a block of (validated once, by the caller)."""
    if not hasattr(image, "shape") or not hasattr(image, "dtype"):
        image = np.asarray(image)
    backend = select(image, device, solver=True)
    dtype = float_dtype(image.dtype, "image")
    if counts:
        f = backend.as_compute(backend.bring(image), dtype)
    else:
        f = backend.bring(backend.as_float_image(image, dtype))
    if plan is None:
        plan = make_plan(f, beta, channel_axis=channel_axis, spacing=spacing,
                         isotropic=isotropic, smoothing=smoothing, name="image")
    else:
        plan = plan.for_block(f)
    return backend.for_plan(plan), f, plan


def check_noise(noise) -> str:
    return check_choice("noise", noise, NOISES)


def poisson_term(term, f, plan, backend, background):
    """``term`` with the Poisson loss of counts ``f`` (checked ≥ 0) and ``background``
    (a number ``>= 0`` or an array of ``f``'s shape, moved to ``plan``'s canonical layout,
    or kept in ``f``'s with ``plan=None``)."""
    xp = backend.xp
    if bool(xp.any(f < 0)):
        raise ValueError(f"image must hold counts >= 0 with noise='poisson', got a minimum "
                         f"of {float(xp.min(f))!r}")
    if getattr(background, "ndim", 0) > 0 or isinstance(background, (list, tuple)):
        b = backend.as_compute(backend.bring(xp.asarray(background)), f.dtype)
        if tuple(b.shape) != tuple(f.shape):
            raise ValueError(f"background must be a number or an array of the image's shape "
                             f"{tuple(f.shape)}, got background.shape={tuple(b.shape)}")
        if not bool(xp.all(xp.isfinite(b))) or bool(xp.any(b < 0)):
            raise ValueError("background must be finite and >= 0")
        b = backend.canonical(b, plan) if plan is not None else b
    else:
        b = check_nonneg("background", background)
    return term.with_loss(PoissonLoss(), b)


def finish(backend, plan, u5):
    """A canonical solution as a new array in the caller's layout and kind."""
    return backend.result(plan.from_canonical(backend.wrap(u5)).copy())


def check_weight(weight):
    """A number >= 0, or the string ``"auto"``."""
    if isinstance(weight, str):
        if weight != "auto":
            raise ValueError(f"weight must be a number >= 0 or 'auto', got weight={weight!r}")
        return weight
    return check_nonneg("weight", weight)


def no_auto_weight(weight, function: str):
    """``weight`` unchanged, unless it is ``"auto"``, which ``function`` lacks."""
    if isinstance(weight, str) and weight == "auto":
        raise ValueError(f"weight='auto' is available only for denoise_tv_beta, "
                         f"deconvolve_tv_beta and reconstruct_tv_beta; pass a number >= 0 "
                         f"to {function}")
    return weight


def denoise(image, weight, beta, *, eps=1e-3, max_num_iter=None, channel_axis=None,
            isotropic=True, smoothing=0.0, spacing=1.0, method="auto", device=None,
            callback=None, plan=None, noise="gaussian", background=0.0):
    """``(u, info)`` of :func:`tvnumba.denoise_tv_beta` for an in-memory image (with
    ``plan``: a block of the array that plan validated)."""
    weight = check_weight(weight)
    counts = check_noise(noise) == "poisson"
    backend, f, plan = prepare(image, beta, device=device, channel_axis=channel_axis,
                               spacing=spacing, isotropic=isotropic, smoothing=smoothing,
                               plan=plan, counts=counts)
    backend.check_finite(f, "image")
    f5 = backend.canonical(f, plan)
    term = Identity(f5)
    if counts:
        term = poisson_term(term, f, plan, backend, background)
    sigma, warm = None, None
    if weight == "auto" and counts:
        from .poisson_weight import choose_poisson_weight

        weight, warm = choose_poisson_weight(
            lambda g: Identity(g).with_loss(term.loss, term.background), f5, plan, plan,
            backend, max_num_iter=max_num_iter)
    elif weight == "auto":
        weight, sigma, _ = choose_weight(f5, plan, backend, method=method,
                                         max_num_iter=max_num_iter)
    u5, info = solve(term, weight, backend=backend, plan=plan, method=method, eps=eps,
                     max_num_iter=max_num_iter, callback=callback, warm=warm)
    return finish(backend, plan, u5), replace(info, weight=weight, sigma=sigma)
