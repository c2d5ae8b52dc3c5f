"""Numba CPU kernels for the β-TV value and its gradient.

Every kernel works on the canonical layout ``u[b, c, z, y, x]`` made by
``_validate.to_canonical`` (1-D and 2-D data have length-1 leading spatial
axes; ``nd`` says how many trailing spatial axes are real).  Kernels are built
by :func:`_make_kernel` for one combination of

* ``nd``       -- 1, 2 or 3 real spatial axes (dead axes compile away),
* ``mode``     -- ``"one"`` (β = 1: one sqrt), ``"two"`` (β = 2: no sqrt, no pow)
  or ``"pow"`` (any β: one ``pow`` per weight),
* ``isotropic``, and ``with_grad`` (value only, or value and gradient fused).

Work is split in units of ``(b, z, block of rows)``; each unit owns its rows
of the gradient and one slot of the partial sums, so there are no races.
Within a unit the rows are swept in order and the per-pixel weight of the
previous row is carried over, so the isotropic weight -- the only
transcendental work -- is computed once per pixel in 1-D and 2-D (and twice
in 3-D, where the weight of the plane behind is recomputed rather than
stored).
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy as np
from numba import njit, prange

from ._validate import KERNEL_NDIM

# No nnan/ninf: NaN/Inf handling stays IEEE.  reassoc lets the float64 row sums
# vectorise; contract allows FMAs; arcp lets 1/sqrt(m) use a reciprocal.
FASTMATH = {"nsz", "arcp", "contract", "reassoc"}
JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy")
INLINE = dict(inline="always", fastmath=FASTMATH, error_model="numpy")

MODE_ONE, MODE_TWO, MODE_POW = 1, 2, 3


def beta_mode(beta: float) -> int:
    if beta == 1.0:
        return MODE_ONE
    if beta == 2.0:
        return MODE_TWO
    return MODE_POW


# The helpers below are module-level (not closures) and take the
# specialisation flags as arguments: a kernel passes its compile-time
# constants, and after inlining LLVM folds the dead branches away.  Closures
# over dispatchers would defeat ``cache=True`` (their pickles differ per
# process), so the kernel factory only closes over ints and bools.


@njit(**INLINE)
def _pointwise(m, p, beta, mode):
    """``(value, weight)`` of one squared magnitude ``m >= 0``.

    value = m^(β/2) and weight = β m^(β/2-1), both 0 where ``m == 0``
    (DESIGN.md: a subgradient for β ≥ 1, and no Inf for β < 1).  ``p`` is
    β/2 - 1 and ``beta`` is β, in the compute dtype.
    """
    if mode == MODE_ONE:
        r = np.sqrt(m)
        return r, (type(m)(1) / r if m > 0 else type(m)(0))
    if mode == MODE_TWO:
        return m, beta
    t = m**p if m > 0 else type(m)(0)
    return m * t, beta * t


@njit(**INLINE)
def _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, m, has_y, has_z):
    """m[j] = s² + Σ_c Σ_d (D_d u)² along row (k, i); Neumann via clamping."""
    _, C, D, H, W = u.shape
    kp = min(k + 1, D - 1)
    ip = min(i + 1, H - 1)
    for j in range(W):
        m[j] = s2
    for c in range(C):
        for j in range(W - 1):
            d = (u[b, c, k, i, j + 1] - u[b, c, k, i, j]) * ihx
            m[j] += d * d
        if has_y:
            for j in range(W):
                d = (u[b, c, k, ip, j] - u[b, c, k, i, j]) * ihy
                m[j] += d * d
        if has_z:
            for j in range(W):
                d = (u[b, c, kp, i, j] - u[b, c, k, i, j]) * ihz
                m[j] += d * d


@njit(**INLINE)
def _weights_row(u, b, k, i, s2, ihz, ihy, ihx, p, beta, w, mode, has_y, has_z):
    """Overwrite w with the weights of row (k, i); return Σ_j value (float64)."""
    _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, w, has_y, has_z)
    acc = 0.0
    for j in range(w.shape[0]):
        val, wt = _pointwise(w[j], p, beta, mode)
        acc += val
        w[j] = wt
    return acc


@njit(**INLINE)
def _iso_grad_row(u, g, b, k, i, ihz2, ihy2, ihx, scale, w, wy, wz, fx, has_y, has_z):
    """Gradient of row (k, i) from the weights of this row (w), the row above
    (wy) and the plane behind (wz); fx is a scratch row of W + 1."""
    _, C, D, H, W = u.shape
    kp = min(k + 1, D - 1)
    km = max(k - 1, 0)
    ip = min(i + 1, H - 1)
    im = max(i - 1, 0)
    zero = ihx - ihx
    for c in range(C):
        # x fluxes shifted by one, so that fx[j] is the flux entering pixel j.
        fx[0] = zero
        for j in range(W - 1):
            fx[j + 1] = w[j] * (u[b, c, k, i, j + 1] - u[b, c, k, i, j]) * ihx
        fx[W] = zero
        for j in range(W):
            acc = (fx[j] - fx[j + 1]) * ihx
            uc = u[b, c, k, i, j]
            if has_y:
                acc += (wy[j] * (uc - u[b, c, k, im, j]) - w[j] * (u[b, c, k, ip, j] - uc)) * ihy2
            if has_z:
                acc += (wz[j] * (uc - u[b, c, km, i, j]) - w[j] * (u[b, c, kp, i, j] - uc)) * ihz2
            g[b, c, k, i, j] = acc * scale


@njit(**INLINE)
def _flux(d, s2, p, beta, mode):
    """(value, w·d) of one difference d of the anisotropic sum."""
    val, wt = _pointwise(d * d + s2, p, beta, mode)
    return val, wt * d


@njit(**INLINE)
def _unit_bounds(unit, D, H, rows):
    nib = (H + rows - 1) // rows
    b = unit // (D * nib)
    k = (unit // nib) % D
    i0 = (unit % nib) * rows
    return b, k, i0, min(H, i0 + rows)


@lru_cache(maxsize=None)
def _make_kernel(nd: int, mode: int, isotropic: bool, with_grad: bool):
    """The parallel kernel for one specialisation (closes over ints/bools only)."""
    has_z = nd >= 3
    has_y = nd >= 2

    @njit(**JIT, parallel=True)
    def iso_kernel(u, g, s2, ihz, ihy, ihx, p, beta, scale, rows, partial):
        B, C, D, H, W = u.shape
        ihz2 = ihz * ihz
        ihy2 = ihy * ihy
        for unit in prange(partial.shape[0]):
            b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
            w = np.empty(W, u.dtype)
            acc = 0.0
            if with_grad:
                wy = np.zeros(W, u.dtype)
                wz = np.zeros(W, u.dtype)
                fx = np.empty(W + 1, u.dtype)
                if i0 > 0:
                    _weights_row(u, b, k, i0 - 1, s2, ihz, ihy, ihx, p, beta, wy,
                                 mode, has_y, has_z)
            for i in range(i0, i1):
                acc += _weights_row(u, b, k, i, s2, ihz, ihy, ihx, p, beta, w,
                                    mode, has_y, has_z)
                if with_grad:
                    if has_z and k > 0:
                        _weights_row(u, b, k - 1, i, s2, ihz, ihy, ihx, p, beta, wz,
                                     mode, has_y, has_z)
                    _iso_grad_row(u, g, b, k, i, ihz2, ihy2, ihx, scale, w, wy, wz, fx,
                                  has_y, has_z)
                    w, wy = wy, w
            partial[unit] = acc

    @njit(**JIT, parallel=True)
    def aniso_kernel(u, g, s2, ihz, ihy, ihx, p, beta, scale, rows, partial):
        B, C, D, H, W = u.shape
        zero = ihx - ihx
        for unit in prange(partial.shape[0]):
            b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
            kp = min(k + 1, D - 1)
            km = max(k - 1, 0)
            fx = np.empty(W + 1, u.dtype)
            acc = 0.0
            for i in range(i0, i1):
                ip = min(i + 1, H - 1)
                im = max(i - 1, 0)
                for c in range(C):
                    # The value counts every difference of the row, the last
                    # (zero) one included: it contributes s^β.
                    fx[0] = zero
                    for j in range(W):
                        jp = min(j + 1, W - 1)
                        val, f = _flux((u[b, c, k, i, jp] - u[b, c, k, i, j]) * ihx,
                                       s2, p, beta, mode)
                        acc += val
                        fx[j + 1] = f
                    for j in range(W):
                        uc = u[b, c, k, i, j]
                        gj = (fx[j] - fx[j + 1]) * ihx
                        if has_y:
                            val, f = _flux((u[b, c, k, ip, j] - uc) * ihy, s2, p, beta, mode)
                            acc += val
                            gj -= f * ihy
                            if with_grad:
                                _, f = _flux((uc - u[b, c, k, im, j]) * ihy, s2, p, beta, mode)
                                gj += f * ihy
                        if has_z:
                            val, f = _flux((u[b, c, kp, i, j] - uc) * ihz, s2, p, beta, mode)
                            acc += val
                            gj -= f * ihz
                            if with_grad:
                                _, f = _flux((uc - u[b, c, km, i, j]) * ihz, s2, p, beta, mode)
                                gj += f * ihz
                        if with_grad:
                            g[b, c, k, i, j] = gj * scale
            partial[unit] = acc

    return iso_kernel if isotropic else aniso_kernel


def _rows_per_unit(B: int, D: int, H: int, W: int) -> int:
    """Rows per work unit: enough units to balance the threads, few enough
    that the one recomputed boundary row per unit stays cheap."""
    from numba import get_num_threads

    target = 8 * get_num_threads()
    per_plane = max(1, -(-target // max(1, B * D)))
    return max(1, min(H, max(-(-H // per_plane), 16)))


def tv_canonical(u, g, *, nd, inv_spacing, smoothing, beta, isotropic, scale=1.0):
    """Per-batch β-TV sums of ``u[b, c, z, y, x]``; writes ``scale * ∇TV`` into
    ``g`` unless ``g`` is None.  Returns a float64 array of length B."""
    B, C, D, H, W = u.shape
    T = u.dtype.type
    mode = beta_mode(beta)
    kernel = _make_kernel(nd, mode, isotropic, g is not None)
    rows = _rows_per_unit(B, D, H, W)
    nunits = B * D * (-(-H // rows))
    partial = np.empty(nunits, np.float64)
    ihz, ihy, ihx = (T(h) for h in inv_spacing)
    grad = g if g is not None else np.empty((1, 1, 1, 1, 1), u.dtype)
    kernel(u, grad, T(smoothing * smoothing), ihz, ihy, ihx, T(beta / 2 - 1), T(beta),
           T(scale), rows, partial)
    return partial.reshape(B, -1).sum(axis=1)
