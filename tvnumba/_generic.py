"""Vectorised path for data with more than three spatial axes.

The Numba kernels are specialised for one to three spatial axes; 4-D+ data
(e.g. 3-D + time treated as spatial) take this array-module agnostic path,
which computes the same quantities with whole-array operations.
"""

from __future__ import annotations

import numpy as np

from . import _validate as V


def _forward_diff(xp, u, axis, ih):
    d = xp.zeros_like(u)
    n = u.shape[axis]
    hi = [slice(None)] * u.ndim
    lo = [slice(None)] * u.ndim
    hi[axis] = slice(1, n)
    lo[axis] = slice(0, n - 1)
    d[tuple(lo)] = (u[tuple(hi)] - u[tuple(lo)]) * ih
    return d


def _adjoint_diff(xp, v, axis, ih):
    """D_dᵀ v, for v whose last slice along ``axis`` is zero."""
    out = -v
    n = v.shape[axis]
    hi = [slice(None)] * v.ndim
    lo = [slice(None)] * v.ndim
    hi[axis] = slice(1, n)
    lo[axis] = slice(0, n - 1)
    out[tuple(hi)] += v[tuple(lo)]
    return out * ih


def _value_weight(xp, m, beta):
    """(m^(β/2), β m^(β/2-1)) with both 0 where m == 0."""
    pos = m > 0
    safe = xp.where(pos, m, 1)
    t = xp.where(pos, safe ** (beta / 2 - 1), 0).astype(m.dtype)
    return m * t, beta * t


def tv_nd(u, plan: V.Plan, want_grad: bool, out=None):
    xp = V._xp(u)
    T = plan.dtype.type
    shape = (plan.n_batch, plan.n_channels) + plan.spatial_shape
    x = u.transpose(plan.perm).reshape(shape)
    axes = range(2, x.ndim)
    ih = [T(h) for h in plan.inv_spacing]
    s2 = T(plan.smoothing**2)
    diffs = [_forward_diff(xp, x, a, h) for a, h in zip(axes, ih)]
    sum_axes = tuple(range(1, x.ndim))
    if plan.isotropic:
        m = sum(d * d for d in diffs).sum(axis=1, keepdims=True) + s2
        val, w = _value_weight(xp, m, plan.beta)
        values = val.astype(np.float64).sum(axis=sum_axes)
        fluxes = [w * d for d in diffs]
    else:
        values = xp.zeros(plan.n_batch, np.float64)
        fluxes = []
        for d in diffs:
            val, w = _value_weight(xp, d * d + s2, plan.beta)
            values += val.astype(np.float64).sum(axis=sum_axes)
            fluxes.append(w * d)
    if not want_grad:
        return values, None
    g = sum(_adjoint_diff(xp, f, a, h) for f, a, h in zip(fluxes, axes, ih)) * T(plan.scale())
    grad = out if out is not None else xp.empty(plan.shape, plan.dtype)
    grad.transpose(plan.perm)[...] = g.reshape([plan.shape[a] for a in plan.perm])
    return values, grad
