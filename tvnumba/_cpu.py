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


# --- a vectorisable pow for general β -------------------------------------
# libm's pow is a scalar call (no SVML here), ~10x the cost of everything else
# in the kernel.  The row of squared magnitudes is raised to p = β/2 - 1 in
# float64 through bit-level exponent/mantissa splitting, a log series and an
# exp polynomial, all in loops that LLVM vectorises.  Relative error: ~1e-14
# (float64 input) and ~1e-9 (float32 input, shorter polynomials); exact 0 where
# m == 0.  Results below 2**-1022 (subnormal) are flushed to that scale.
_MANT = np.int64(0x000FFFFFFFFFFFFF)
_ONE_BITS = np.int64(0x3FF0000000000000)
_LN2 = math.log(2.0)
_INV_LN2 = 1.0 / math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_TINY = 2.0**-900  # below this, pre-scale so the exponent split sees a normal number
_PRESCALE = 2.0**200


@njit(**INLINE)
def _log_series(t2, single):
    """Σ_k t^(2k) / (2k + 1), so that log(f) = 2 t · series(t²), t = (f-1)/(f+1)."""
    if single:
        return 1.0 + t2 * (1 / 3 + t2 * (1 / 5 + t2 * (1 / 7 + t2 * (1 / 9))))
    return 1.0 + t2 * (1 / 3 + t2 * (1 / 5 + t2 * (1 / 7 + t2 * (1 / 9 + t2 * (
        1 / 11 + t2 * (1 / 13 + t2 * (1 / 15 + t2 * (1 / 17 + t2 * (1 / 19)))))))))


@njit(**INLINE)
def _exp_poly(x, single):
    """e^x for |x| <= ln(2)/2 (Taylor; degree 7 resp. 13)."""
    if single:
        return 1.0 + x * (1.0 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (
            1 / 120 + x * (1 / 720 + x * (1 / 5040)))))))
    return 1.0 + x * (1.0 + x * (1 / 2 + x * (1 / 6 + x * (1 / 24 + x * (1 / 120 + x * (
        1 / 720 + x * (1 / 5040 + x * (1 / 40320 + x * (1 / 362880 + x * (
            1 / 3628800 + x * (1 / 39916800 + x * (1 / 479001600 + x * (
                1 / 6227020800)))))))))))))


@njit(**INLINE)
def _pow_row(m, p, t, ib, single):
    """t[j] = m[j] ** p for m[j] > 0, 0 where m[j] == 0 (t float64, ib int64 scratch)."""
    W = m.shape[0]
    ti = t.view(np.int64)
    fb = ib.view(np.float64)
    pp = np.float64(p)
    for j in range(W):
        x = np.float64(m[j])
        t[j] = x * _PRESCALE if x < _TINY else x
    for j in range(W):
        bits = ti[j]
        ib[j] = (bits & _MANT) | _ONE_BITS  # mantissa f in [1, 2)
        t[j] = np.float64(np.int32((bits >> 52) - 1023))  # exponent (int32: AVX2 converts it)
    for j in range(W):
        f = fb[j]
        e = t[j]
        if f > _SQRT2:  # f in [√½, √2): |t| <= 0.172 keeps the series short
            f *= 0.5
            e += 1.0
        if np.float64(m[j]) < _TINY:
            e -= 200.0
        z = (f - 1.0) / (f + 1.0)
        y = pp * (e + 2.0 * _INV_LN2 * z * _log_series(z * z, single))
        y = min(max(y, -1022.0), 1023.0)
        n = np.floor(y + 0.5)
        t[j] = _exp_poly((y - n) * _LN2, single)
        ib[j] = (np.int64(np.int32(n)) + 1023) << 52  # 2**n
    for j in range(W):
        t[j] = t[j] * fb[j] if m[j] > 0 else 0.0


@njit(**INLINE)
def _sqmag_px(u, b, c, k, i, j, kp, ip, jp, ihz, ihy, ihx, has_y, has_z):
    """Σ_d (D_d u)² at one pixel of one channel; the caller clamps the
    forward neighbours (kp, ip, jp) so that differences vanish on the last
    slice (Neumann)."""
    uc = u[b, c, k, i, j]
    d = (u[b, c, k, i, jp] - uc) * ihx
    m = d * d
    if has_y:
        d = (u[b, c, k, ip, j] - uc) * ihy
        m += d * d
    if has_z:
        d = (u[b, c, kp, i, j] - uc) * ihz
        m += d * d
    return m


@njit(**INLINE)
def _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, m, has_y, has_z):
    """m[j] = s² + Σ_c Σ_d (D_d u)² along row (k, i), one fused pass per channel."""
    _, C, D, H, W = u.shape
    kp = min(k + 1, D - 1)
    ip = min(i + 1, H - 1)
    for j in range(W - 1):
        m[j] = s2 + _sqmag_px(u, b, 0, k, i, j, kp, ip, j + 1, ihz, ihy, ihx, has_y, has_z)
    m[W - 1] = s2 + _sqmag_px(u, b, 0, k, i, W - 1, kp, ip, W - 1, ihz, ihy, ihx, has_y, has_z)
    for c in range(1, C):
        for j in range(W - 1):
            m[j] += _sqmag_px(u, b, c, k, i, j, kp, ip, j + 1, ihz, ihy, ihx, has_y, has_z)
        m[W - 1] += _sqmag_px(u, b, c, k, i, W - 1, kp, ip, W - 1, ihz, ihy, ihx, has_y, has_z)


@njit(**INLINE)
def _weights_row(u, b, k, i, s2, ihz, ihy, ihx, p, beta, w, t, ib, mode, single, has_y, has_z):
    """Overwrite w with the weights of row (k, i); return Σ_j value (float64).
    t, ib: float64/int64 scratch rows for the vector pow (mode POW)."""
    _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, w, has_y, has_z)
    acc = 0.0
    if mode == MODE_POW:
        _pow_row(w, p, t, ib, single)
        for j in range(w.shape[0]):
            acc += w[j] * t[j]
            w[j] = beta * t[j]
        return acc
    for j in range(w.shape[0]):
        val, wt = _pointwise(w[j], p, beta, mode)
        acc += val
        w[j] = wt
    return acc


@njit(**INLINE)
def _iso_grad_px(u, b, c, k, i, j, km, kp, im, ip, jm, jp, ihz2, ihy2, ihx2, w, wy, wz,
                 has_y, has_z):
    """∇TV at one pixel: Σ_d D_dᵀ(w D_d u), from the weights of this row (w),
    the row above (wy) and the plane behind (wz).  Clamped neighbours make
    the boundary differences vanish."""
    uc = u[b, c, k, i, j]
    acc = (w[jm] * (uc - u[b, c, k, i, jm]) - w[j] * (u[b, c, k, i, jp] - uc)) * ihx2
    if has_y:
        acc += (wy[j] * (uc - u[b, c, k, im, j]) - w[j] * (u[b, c, k, ip, j] - uc)) * ihy2
    if has_z:
        acc += (wz[j] * (uc - u[b, c, km, i, j]) - w[j] * (u[b, c, kp, i, j] - uc)) * ihz2
    return acc


@njit(**INLINE)
def _iso_grad_row(u, g, b, k, i, ihz2, ihy2, ihx2, scale, w, wy, wz, has_y, has_z):
    """Gradient of row (k, i): one pass per channel, ends peeled so the
    interior loop has affine indices only (and vectorises)."""
    _, C, D, H, W = u.shape
    kp = min(k + 1, D - 1)
    km = max(k - 1, 0)
    ip = min(i + 1, H - 1)
    im = max(i - 1, 0)
    for c in range(C):
        g[b, c, k, i, 0] = scale * _iso_grad_px(
            u, b, c, k, i, 0, km, kp, im, ip, 0, min(1, W - 1), ihz2, ihy2, ihx2,
            w, wy, wz, has_y, has_z)
        for j in range(1, W - 1):
            g[b, c, k, i, j] = scale * _iso_grad_px(
                u, b, c, k, i, j, km, kp, im, ip, j - 1, j + 1, ihz2, ihy2, ihx2,
                w, wy, wz, has_y, has_z)
        if W > 1:
            g[b, c, k, i, W - 1] = scale * _iso_grad_px(
                u, b, c, k, i, W - 1, km, kp, im, ip, W - 2, W - 1, ihz2, ihy2, ihx2,
                w, wy, wz, has_y, has_z)


@njit(**INLINE)
def _flux_row(u, b, c, k, i, axis, ih, s2, p, beta, F, m, t, ib, mode, single):
    """Anisotropic term along one axis for row (k, i) of channel c: F[j] = w·D u
    (the flux, already divided by h once), returns Σ_j value (float64).  The
    last slice's zero difference still counts: it contributes s^β."""
    _, C, D, H, W = u.shape
    kp = min(k + 1, D - 1)
    ip = min(i + 1, H - 1)
    for j in range(W):
        if axis == 2:
            d = (u[b, c, k, i, min(j + 1, W - 1)] - u[b, c, k, i, j]) * ih
        elif axis == 1:
            d = (u[b, c, k, ip, j] - u[b, c, k, i, j]) * ih
        else:
            d = (u[b, c, kp, i, j] - u[b, c, k, i, j]) * ih
        F[j] = d
        m[j] = d * d + s2
    acc = 0.0
    if mode == MODE_POW:
        _pow_row(m, p, t, ib, single)
        for j in range(W):
            acc += m[j] * t[j]
            F[j] = F[j] * (beta * t[j])
        return acc
    for j in range(W):
        val, wt = _pointwise(m[j], p, beta, mode)
        acc += val
        F[j] = F[j] * wt
    return acc


@njit(**INLINE)
def _aniso_grad_px(fx, fyc, fyb, fz, fzb, j, jm, ihz, ihy, ihx, has_y, has_z, first):
    """Σ_d D_dᵀ F_d at pixel j from the fluxes of this row / the row above /
    the plane behind (x flux entering from the left is 0 on the first pixel)."""
    left = fx[jm] * (ihx - ihx) if first else fx[jm]
    acc = (left - fx[j]) * ihx
    if has_y:
        acc += (fyb[j] - fyc[j]) * ihy
    if has_z:
        acc += (fzb[j] - fz[j]) * ihz
    return acc


@njit(**INLINE)
def _unit_bounds(unit, D, H, rows):
    nib = (H + rows - 1) // rows
    b = unit // (D * nib)
    k = (unit // nib) % D
    i0 = (unit % nib) * rows
    return b, k, i0, min(H, i0 + rows)


@lru_cache(maxsize=None)
def _make_kernel(nd: int, mode: int, isotropic: bool, with_grad: bool, single: bool):
    """The parallel kernel for one specialisation (closes over ints/bools only)."""
    has_z = nd >= 3
    has_y = nd >= 2

    @njit(**JIT, parallel=True)
    def iso_kernel(u, g, s2, ihz, ihy, ihx, p, beta, scale, rows, partial):
        B, C, D, H, W = u.shape
        ihz2 = ihz * ihz
        ihy2 = ihy * ihy
        ihx2 = ihx * ihx
        for unit in prange(partial.shape[0]):
            b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
            # Two weight rows used in turn: row i and the row above it.
            wrows = np.zeros((2, W), u.dtype)
            t = np.empty(W if mode == MODE_POW else 1, np.float64)
            ib = np.empty(W if mode == MODE_POW else 1, np.int64)
            acc = 0.0
            if with_grad:
                wz = np.zeros(W, u.dtype)
                if i0 > 0:
                    _weights_row(u, b, k, i0 - 1, s2, ihz, ihy, ihx, p, beta, wrows[(i0 - 1) & 1],
                                 t, ib, mode, single, has_y, has_z)
            for i in range(i0, i1):
                w = wrows[i & 1]
                acc += _weights_row(u, b, k, i, s2, ihz, ihy, ihx, p, beta, w,
                                    t, ib, mode, single, has_y, has_z)
                if with_grad:
                    if has_z and k > 0:
                        _weights_row(u, b, k - 1, i, s2, ihz, ihy, ihx, p, beta, wz,
                                     t, ib, mode, single, has_y, has_z)
                    _iso_grad_row(u, g, b, k, i, ihz2, ihy2, ihx2, scale, w, wrows[(i - 1) & 1],
                                  wz, has_y, has_z)
            partial[unit] = acc

    @njit(**JIT, parallel=True)
    def aniso_kernel(u, g, s2, ihz, ihy, ihx, p, beta, scale, rows, partial):
        B, C, D, H, W = u.shape
        for unit in prange(partial.shape[0]):
            b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
            fx = np.empty(W, u.dtype)
            fy = np.zeros((2, C, W), u.dtype)  # y fluxes of this row and the row above
            fz = np.empty(W, u.dtype)
            fzb = np.zeros(W, u.dtype)  # z flux of the plane behind (0 on the first plane)
            m = np.empty(W, u.dtype)
            t = np.empty(W if mode == MODE_POW else 1, np.float64)
            ib = np.empty(W if mode == MODE_POW else 1, np.int64)
            acc = 0.0
            if with_grad and has_y and i0 > 0:
                for c in range(C):
                    _flux_row(u, b, c, k, i0 - 1, 1, ihy, s2, p, beta, fy[(i0 - 1) & 1, c],
                              m, t, ib, mode, single)
            for i in range(i0, i1):
                for c in range(C):
                    acc += _flux_row(u, b, c, k, i, 2, ihx, s2, p, beta, fx, m, t, ib, mode, single)
                    if has_y:
                        acc += _flux_row(u, b, c, k, i, 1, ihy, s2, p, beta, fy[i & 1, c],
                                         m, t, ib, mode, single)
                    if has_z:
                        acc += _flux_row(u, b, c, k, i, 0, ihz, s2, p, beta, fz, m, t, ib,
                                         mode, single)
                    if with_grad:
                        if has_z and k > 0:
                            _flux_row(u, b, c, k - 1, i, 0, ihz, s2, p, beta, fzb, m, t, ib,
                                      mode, single)
                        fyc = fy[i & 1, c]
                        fyb = fy[(i - 1) & 1, c]
                        g[b, c, k, i, 0] = scale * _aniso_grad_px(
                            fx, fyc, fyb, fz, fzb, 0, 0, ihz, ihy, ihx, has_y, has_z, True)
                        for j in range(1, W):
                            g[b, c, k, i, j] = scale * _aniso_grad_px(
                                fx, fyc, fyb, fz, fzb, j, j - 1, ihz, ihy, ihx, has_y, has_z,
                                False)
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
    kernel = _make_kernel(nd, mode, isotropic, g is not None, u.dtype == np.float32)
    rows = _rows_per_unit(B, D, H, W)
    nunits = B * D * (-(-H // rows))
    partial = np.empty(nunits, np.float64)
    ihz, ihy, ihx = (T(h) for h in inv_spacing)
    grad = g if g is not None else np.empty((1, 1, 1, 1, 1), u.dtype)
    kernel(u, grad, T(smoothing * smoothing), ihz, ihy, ihx, T(beta / 2 - 1), T(beta),
           T(scale), rows, partial)
    return partial.reshape(B, -1).sum(axis=1)
