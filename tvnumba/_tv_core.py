"""The in-memory β-TV computation behind :mod:`tvnumba.tv` (and the per-chunk work of
:mod:`tvnumba.dask`, on plans it validated once): validate once, choose the backend once,
compute."""

from __future__ import annotations

import numpy as np

from ._validate import make_plan
from .backends import select


def tv_compute(u, beta, *, want_value: bool = True, want_grad: bool, out=None, axes=None,
               channel_axis=None, spacing=1.0, isotropic=True, smoothing=0.0,
               reduction="sum", device=None):
    """``(reduced value, gradient or None)`` of ``u`` (NumPy, CuPy or a device array)."""
    if not hasattr(u, "shape") or not hasattr(u, "dtype"):
        u = np.asarray(u)
    backend = select(u, device)
    plan = make_plan(u, beta, axes=axes, channel_axis=channel_axis, spacing=spacing,
                     isotropic=isotropic, smoothing=smoothing, reduction=reduction)
    return tv_planned(u, plan, want_grad=want_grad, out=out, backend=backend)


def tv_planned(u, plan, *, want_grad: bool, out=None, device=None, backend=None):
    """:func:`tv_compute` of ``u`` with its validated ``plan``."""
    backend = (select(u, device) if backend is None else backend).for_plan(plan)
    out = backend.check_out(out, plan) if want_grad else None
    values, grad = backend.tv(u, plan, want_grad, out)
    return plan.reduce(values), grad
