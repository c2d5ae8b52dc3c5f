"""Numba CPU kernels for the β-TV value and its gradient.

Every kernel works on the canonical layout ``u[b, c, z, y, x]`` (C-contiguous)
made by :meth:`tvnumba._validate.Plan.to_canonical`: 1-D and 2-D data have length-1 leading spatial axes,
and ``nd`` says how many trailing spatial axes are real.

Structure (three layers, as in stumpy):

* row workers -- serial functions (:func:`tvnumba._config.helper`) that process one row of ``x``:
  squared magnitudes, weights, fluxes, gradient.  Each specialisation
  (β = 1: one sqrt; β = 2: no sqrt, no pow; other β: a vectorised pow; 1/2/3
  spatial axes; float32/float64) is its own loop, chosen by a branch *outside*
  the loop, so every inner loop is branch-free and vectorises.  Compiling the
  specialisations as separate small functions (once per dtype and process, inlined by
  LLVM) rather than as whole-kernel variants keeps the cold compile to seconds.
* two parallel drivers (isotropic, anisotropic) -- ``prange`` over work
  units; each unit owns its rows of the gradient and one slot of the float64
  partial sums, so there are no races.  An isotropic unit is a block of rows
  of one batch item, swept plane by plane, carrying the weights of the row
  above and of the plane behind: every weight is computed once per pixel
  (plus one boundary row per block and plane).  An anisotropic unit is a
  block of rows of one plane; it carries the y fluxes of the row above and
  recomputes the z fluxes of the plane behind.
* :func:`tv_canonical`, the Python entry point.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, prange

from ..._config import helper, parallel_kernel

MODE_ONE, MODE_TWO, MODE_POW = 1, 2, 3


@helper
def in_order(part):
    """Σ part, first to last.  ``part.sum()`` inside a parallel kernel becomes a
    parallel reduction whose grouping follows the thread count."""
    acc = 0.0
    for i in range(part.shape[0]):
        acc += part[i]
    return acc


def beta_mode(beta: float) -> int:
    """Which specialisation serves β: 1 (sqrt only), 2 (no pow) or any."""
    if beta == 1.0:
        return MODE_ONE
    if beta == 2.0:
        return MODE_TWO
    return MODE_POW


# --- a vectorisable pow for general β -------------------------------------
# libm's pow is a scalar call (no SVML in this LLVM), ~10x the cost of all the
# rest of the kernel.  m ** p is computed by splitting exponent and mantissa
# with integer views of a scratch row, then a log and an exp polynomial, in
# loops that LLVM vectorises.  Exactly 0 where m == 0; exponents are clamped
# to the normal range of the dtype, and the helpers return True when a lane
# was clamped (its result is then wrong): the TV kernels mark that unit's sum
# NaN so that ``tv.run_plan`` recomputes out of the fast path (rare inputs).
_MANT = np.int64(0x000FFFFFFFFFFFFF)
_TINY64 = float(np.finfo(np.float64).tiny)  # smallest normal numbers
_TINY32 = float(np.finfo(np.float32).tiny)


@helper
def _tiny(x):
    """Smallest normal number of x's float type (float32 rounds _TINY64 to 0)."""
    T = type(x)
    return T(_TINY32) if T(_TINY64) == 0 else T(_TINY64)
_ONE_BITS = np.int64(0x3FF0000000000000)
_LN2 = math.log(2.0)
_INV_LN2 = 1.0 / math.log(2.0)
_SQRT2 = math.sqrt(2.0)
_TINY = 2.0**-900  # below this, pre-scale so the exponent split sees a normal number
_PRESCALE = 2.0**200


@helper
def _pow_row(m, p, t, ib):
    """float64: t[j] = m[j] ** p where m[j] > 0, else 0 (t float64, ib int64 scratch).

    log(f) = 2 atanh(z), z = (f-1)/(f+1) with f in [√½, √2): |z| <= 0.172;
    exp(r) on |r| <= ln(2)/2 by Taylor; ~1e-15 relative error.
    """
    W = m.shape[0]
    ti = t.view(np.int64)
    fb = ib.view(np.float64)
    pp = np.float64(p)
    out = False
    for j in range(W):
        x = np.float64(m[j])
        t[j] = x * _PRESCALE if x < _TINY else x
    for j in range(W):
        bits = ti[j]
        ib[j] = (bits & _MANT) | _ONE_BITS  # mantissa f in [1, 2)
        # exponent via int32: AVX2 converts int32 lanes to double, not int64
        t[j] = np.float64(np.int32((bits >> 52) - 1023))
        if np.float64(m[j]) < _TINY:
            t[j] -= 200.0
    for j in range(W):
        f = fb[j]
        e = t[j]
        if f > _SQRT2:
            f *= 0.5
            e += 1.0
        z = (f - 1.0) / (f + 1.0)
        z2 = z * z
        s = 1.0 + z2 * (1 / 3 + z2 * (1 / 5 + z2 * (1 / 7 + z2 * (1 / 9 + z2 * (
            1 / 11 + z2 * (1 / 13 + z2 * (1 / 15 + z2 * (1 / 17 + z2 * (1 / 19)))))))))
        y = pp * (e + 2.0 * _INV_LN2 * z * s)
        out |= (y < -1022.0) | (y > 1023.0)
        y = min(max(y, -1022.0), 1023.0)
        n = np.floor(y + 0.5)
        r = (y - n) * _LN2
        t[j] = 1.0 + r * (1.0 + r * (1 / 2 + r * (1 / 6 + r * (1 / 24 + r * (
            1 / 120 + r * (1 / 720 + r * (1 / 5040 + r * (1 / 40320 + r * (
                1 / 362880 + r * (1 / 3628800 + r * (1 / 39916800 + r * (
                    1 / 479001600 + r * (1 / 6227020800)))))))))))))
        ib[j] = (np.int64(np.int32(n)) + 1023) << 52  # 2**n
    for j in range(W):
        t[j] = t[j] * fb[j] if m[j] > 0 else 0.0
    return out


# float32: the same scheme in 8 float32 lanes (twice AVX2's float64 width),
# division-free: minimax polynomials for log2(1 + x) on [√½ - 1, √2 - 1]
# (abs. error 6e-8) and 2**r on [-½, ½] (rel. error 1e-7).  Only y = p·log2(m)
# is formed in float64, so that large exponents cost no precision; results are
# within a few float32 ulp of powf.  Exponents are clamped to float32's normal
# range (no Inf from finite input); True is returned when one was.
_F32_MANT = np.int32(0x007FFFFF)
_F32_ONE_BITS = np.int32(0x3F800000)
_F32_TINY = np.float32(2.0**-126)
_F32_PRESCALE = np.float32(2.0**24)
_L0, _L1, _L2, _L3, _L4, _L5, _L6, _L7, _L8 = (np.float32(c) for c in (
    1.4426950216293335, -0.7213473320007324, 0.48091059923171997, -0.36070483922958374,
    0.28791823983192444, -0.23892004787921906, 0.2156704217195511, -0.20742355287075043,
    0.12615002691745758))
_E0, _E1, _E2, _E3, _E4, _E5, _E6 = (np.float32(c) for c in (
    1.0, 0.6931471824645996, 0.24022650718688965, 0.05550327152013779,
    0.00961802527308464, 0.001340043731033802, 0.00015469736536033452))


@helper
def _pow_row32(m, p, t, ib):
    """float32: t[j] = m[j] ** p where m[j] > 0, else 0 (t float32, ib int32 scratch)."""
    W = m.shape[0]
    ti = t.view(np.int32)
    fb = ib.view(np.float32)
    pp = np.float64(p)
    one = np.float32(1)
    half = np.float32(0.5)
    out = False
    for j in range(W):
        x = m[j]
        t[j] = x * _F32_PRESCALE if x < _F32_TINY else x
    for j in range(W):
        bits = ti[j]
        ib[j] = (bits & _F32_MANT) | _F32_ONE_BITS  # mantissa f in [1, 2)
        e = np.float32(((bits >> 23) & 0xFF) - 127)
        t[j] = e - np.float32(24) if m[j] < _F32_TINY else e
    for j in range(W):
        f = fb[j]
        e = t[j]
        if f > np.float32(_SQRT2):
            f *= half
            e += one
        x = f - one
        lg = x * (_L0 + x * (_L1 + x * (_L2 + x * (_L3 + x * (_L4 + x * (_L5 + x * (
            _L6 + x * (_L7 + x * _L8))))))))
        y = pp * (np.float64(e) + np.float64(lg))
        out |= (y < -126.0) | (y > 127.0)
        y = min(max(y, -126.0), 127.0)
        n = np.floor(y + 0.5)
        r = np.float32(y - n)
        t[j] = _E0 + r * (_E1 + r * (_E2 + r * (_E3 + r * (_E4 + r * (_E5 + r * _E6)))))
        ib[j] = (np.int32(n) + np.int32(127)) << 23  # 2**n
    zero = np.float32(0)
    for j in range(W):
        t[j] = t[j] * fb[j] if m[j] > 0 else zero
    return out


@helper
def _weights(w, p, beta, mode, t, ib, single):
    """In place: w[j] = m[j] -> β m^(β/2-1) (0 where m == 0); returns Σ m^(β/2)
    in float64.  The weight is 0 where m == 0 (the documented rule): a subgradient
    for β ≥ 1 and no Inf for β < 1."""
    return _weights_chk(w, p, beta, mode, t, ib, single)[0]


@helper
def _weights_chk(w, p, beta, mode, t, ib, single):
    """:func:`_weights`, and whether the power clamped a lane (a wrong result)."""
    acc = 0.0
    out = False
    if mode == MODE_ONE:
        T = type(beta)  # the compute dtype: keeps float32 arithmetic in float32
        one = T(1)
        zero = T(0)
        for j in range(w.shape[0]):
            m = w[j]
            r = np.sqrt(m)
            acc += r
            w[j] = one / r if m > 0 else zero
    elif mode == MODE_TWO:
        for j in range(w.shape[0]):
            acc += w[j]
            w[j] = beta
    elif single:
        t32 = t.view(np.float32)
        out = _pow_row32(w, p, t32, ib.view(np.int32))
        for j in range(w.shape[0]):
            acc += w[j] * t32[j]
            w[j] = beta * t32[j]
    else:
        out = _pow_row(w, p, t, ib)
        for j in range(w.shape[0]):
            acc += w[j] * t[j]
            w[j] = beta * t[j]
    return acc, out


@helper
def _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, nd, m):
    """m[j] = s² + Σ_c Σ_d (D_d u)² along row (k, i) (Neumann: last difference 0).
    x and y are fused in one loop; z (3-D) adds a second.  Returns True when
    a nonzero difference squared below the dtype's normal range (the square
    lost precision or vanished) while s² did not hide it.  With s² above
    that range (any smoothing) nothing is checked: the loop-invariant test
    lets LLVM keep the plain loops (the solvers' smoothed rows)."""
    _, C, D, H, W = u.shape
    m[:] = s2
    tiny = _tiny(s2)
    check = s2 < tiny
    lo = False
    for c in range(C):
        row = u[b, c, k, i]
        if nd == 1:
            for j in range(W - 1):
                d = (row[j + 1] - row[j]) * ihx
                dd = d * d
                m[j] += dd
                if check:
                    lo |= (dd < tiny) & (d != 0)
            continue
        nxt = u[b, c, k, min(i + 1, H - 1)]
        for j in range(W - 1):
            dx = (row[j + 1] - row[j]) * ihx
            dy = (nxt[j] - row[j]) * ihy
            dxx = dx * dx
            dyy = dy * dy
            m[j] += dxx + dyy
            if check:
                lo |= ((dxx < tiny) & (dx != 0)) | ((dyy < tiny) & (dy != 0))
        dy = (nxt[W - 1] - row[W - 1]) * ihy
        m[W - 1] += dy * dy
        lo |= (dy * dy < tiny) & (dy != 0)
        if nd >= 3:
            nxt = u[b, c, min(k + 1, D - 1), i]
            for j in range(W):
                d = (nxt[j] - row[j]) * ihz
                dd = d * d
                m[j] += dd
                if check:
                    lo |= (dd < tiny) & (d != 0)
    return lo and check


@helper
def _iso_weights_row(u, b, k, i, s2, ihz, ihy, ihx, nd, p, beta, mode, single, w, t, ib):
    """Weights of row (k, i) into w; returns (Σ m^(β/2), out of range)."""
    lo = _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, nd, w)
    acc, out = _weights_chk(w, p, beta, mode, t, ib, single)
    return acc, lo or out


@helper
def _iso_grad_xy(row, above, below, w, wy, j, jm, jp, cy, cx):
    """x and y parts of ∇TV at pixel j (jm/jp clamped at the row ends)."""
    return ((w[jm] * (row[j] - row[jm]) - w[j] * (row[jp] - row[j])) * cx
            + (wy[j] * (row[j] - above[j]) - w[j] * (below[j] - row[j])) * cy)


@helper
def _iso_grad_row(u, g, b, k, i, cz, cy, cx, nd, w, wy, wz):
    """g row (k, i) = Σ_d D_dᵀ(w D_d u), from the weights of this row (w), the
    row above (wy) and the plane behind (wz); c* = scale / h².  Clamped
    neighbours make the boundary differences vanish; x and y are fused in
    one pass, z (3-D) adds a second."""
    _, C, D, H, W = u.shape
    for c in range(C):
        row = u[b, c, k, i]
        out = g[b, c, k, i]
        if nd == 1:
            out[0] = -w[0] * (row[min(1, W - 1)] - row[0]) * cx
            for j in range(1, W - 1):
                out[j] = (w[j - 1] * (row[j] - row[j - 1]) - w[j] * (row[j + 1] - row[j])) * cx
            if W > 1:
                out[W - 1] = w[W - 2] * (row[W - 1] - row[W - 2]) * cx
            continue
        above = u[b, c, k, max(i - 1, 0)]
        below = u[b, c, k, min(i + 1, H - 1)]
        out[0] = _iso_grad_xy(row, above, below, w, wy, 0, 0, min(1, W - 1), cy, cx)
        for j in range(1, W - 1):
            out[j] = _iso_grad_xy(row, above, below, w, wy, j, j - 1, j + 1, cy, cx)
        if W > 1:
            out[W - 1] = _iso_grad_xy(row, above, below, w, wy, W - 1, W - 2, W - 1, cy, cx)
        if nd >= 3:
            behind = u[b, c, max(k - 1, 0), i]
            front = u[b, c, min(k + 1, D - 1), i]
            for j in range(W):
                out[j] += (wz[j] * (row[j] - behind[j]) - w[j] * (front[j] - row[j])) * cz


@helper
def _flux_row(u, b, c, k, i, axis, ih, s2, p, beta, mode, single, F, m, t, ib):
    """Anisotropic term of one axis on row (k, i) of channel c: F[j] = w·D u
    (the flux), returns Σ_j ((D u)² + s²)^(β/2) in float64 and whether a
    lane left the dtype's range (as :func:`_sqmag_row`, :func:`_weights_chk`).
    The last slice's zero difference still counts: it contributes s^β."""
    _, C, D, H, W = u.shape
    row = u[b, c, k, i]
    if axis == 2:
        for j in range(W - 1):
            F[j] = (row[j + 1] - row[j]) * ih
        F[W - 1] = 0
    else:
        nxt = u[b, c, k, min(i + 1, H - 1)] if axis == 1 else u[b, c, min(k + 1, D - 1), i]
        for j in range(W):
            F[j] = (nxt[j] - row[j]) * ih
    tiny = _tiny(s2)
    check = s2 < tiny
    lo = False
    for j in range(W):
        ff = F[j] * F[j]
        m[j] = ff + s2
        if check:
            lo |= (ff < tiny) & (F[j] != 0)
    acc, out = _weights_chk(m, p, beta, mode, t, ib, single)
    for j in range(W):
        F[j] *= m[j]
    return acc, (lo and check) or out


@helper
def _aniso_grad_row(g, b, c, k, i, cz, cy, cx, nd, fx, fyc, fyb, fz, fzb):
    """g row = Σ_d D_dᵀ F_d from the fluxes of this row, the row above (fyb)
    and the plane behind (fzb); c* = scale / h."""
    out = g[b, c, k, i]
    W = out.shape[0]
    out[0] = -fx[0] * cx
    for j in range(1, W):
        out[j] = (fx[j - 1] - fx[j]) * cx
    if nd >= 2:
        for j in range(W):
            out[j] += (fyb[j] - fyc[j]) * cy
    if nd >= 3:
        for j in range(W):
            out[j] += (fzb[j] - fz[j]) * cz


@helper
def _unit_span(unit, sweep, D, H, rows):
    """(b, k0, k1, i0, i1) of a unit: a block of rows on every plane (sweep,
    so a kernel can carry what the plane behind computed) or on one plane."""
    if sweep:
        nib = (H + rows - 1) // rows
        i0 = (unit % nib) * rows
        return unit // nib, 0, D, i0, min(H, i0 + rows)
    b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
    return b, k, k + 1, i0, i1


@helper
def _unit_bounds(unit, D, H, rows):
    nib = (H + rows - 1) // rows
    b = unit // (D * nib)
    k = (unit // nib) % D
    i0 = (unit % nib) * rows
    return b, k, i0, min(H, i0 + rows)


@parallel_kernel
def _iso_kernel(u, g, with_grad, nd, mode, single, s2, ihz, ihy, ihx, p, beta, scale, rows,
                sweep, strict, partial):
    B, C, D, H, W = u.shape
    cz = scale * ihz * ihz
    cy = scale * ihy * ihy
    cx = scale * ihx * ihx
    nt = W if mode == MODE_POW else 1
    for unit in prange(partial.shape[0]):
        # With the gradient in 3-D a unit is a block of rows swept plane by
        # plane, so the weights of the plane behind are carried (wplane), not
        # recomputed; otherwise one plane's block (contiguous memory).
        b, k0, k1, i0, i1 = _unit_span(unit, sweep, D, H, rows)
        wrows = np.zeros((2, W), u.dtype)  # weights of row i and of the row above, in turn
        wplane = np.zeros((i1 - i0 if nd >= 3 else 1, W), u.dtype)  # 0 before the first plane
        t = np.empty(nt, np.float64)
        ib = np.empty(nt, np.int64)
        acc = 0.0
        bad = False
        for k in range(k0, k1):
            if with_grad and nd >= 2 and i0 > 0:
                _iso_weights_row(u, b, k, i0 - 1, s2, ihz, ihy, ihx, nd, p, beta, mode, single,
                                 wrows[(i0 - 1) & 1], t, ib)
            for i in range(i0, i1):
                w = wrows[i & 1]
                a, out = _iso_weights_row(u, b, k, i, s2, ihz, ihy, ihx, nd, p, beta, mode,
                                          single, w, t, ib)
                acc += a
                bad |= out
                if with_grad:
                    wz = wplane[i - i0 if nd >= 3 else 0]
                    _iso_grad_row(u, g, b, k, i, cz, cy, cx, nd, w, wrows[(i - 1) & 1], wz)
                    if nd >= 3:
                        wz[:] = w
        partial[unit] = np.nan if strict and bad else acc


@parallel_kernel
def _aniso_kernel(u, g, with_grad, nd, mode, single, s2, ihz, ihy, ihx, p, beta, scale, rows,
                  sweep, strict, partial):
    B, C, D, H, W = u.shape
    cz = scale * ihz
    cy = scale * ihy
    cx = scale * ihx
    nt = W if mode == MODE_POW else 1
    for unit in prange(partial.shape[0]):
        # Units as in the isotropic kernel: with the gradient in 3-D the z
        # fluxes of the plane behind are carried (fzs), not recomputed.
        b, k0, k1, i0, i1 = _unit_span(unit, sweep, D, H, rows)
        fx = np.empty(W, u.dtype)
        fy = np.zeros((2, C, W), u.dtype)  # y fluxes of this row and the row above
        fz = np.empty(W, u.dtype)
        fzs = np.zeros((i1 - i0 if nd >= 3 else 1, C, W), u.dtype)  # 0 before the first plane
        m = np.empty(W, u.dtype)
        t = np.empty(nt, np.float64)
        ib = np.empty(nt, np.int64)
        acc = 0.0
        bad = False
        for k in range(k0, k1):
            if with_grad and nd >= 2:
                for c in range(C):
                    if i0 > 0:
                        _flux_row(u, b, c, k, i0 - 1, 1, ihy, s2, p, beta, mode, single,
                                  fy[(i0 - 1) & 1, c], m, t, ib)
                    else:  # no row above the first
                        fy[1, c, :] = 0
            for i in range(i0, i1):
                for c in range(C):
                    a, out = _flux_row(u, b, c, k, i, 2, ihx, s2, p, beta, mode, single, fx,
                                       m, t, ib)
                    acc += a
                    bad |= out
                    if nd >= 2:
                        a, out = _flux_row(u, b, c, k, i, 1, ihy, s2, p, beta, mode, single,
                                           fy[i & 1, c], m, t, ib)
                        acc += a
                        bad |= out
                    if nd >= 3:
                        a, out = _flux_row(u, b, c, k, i, 0, ihz, s2, p, beta, mode, single,
                                           fz, m, t, ib)
                        acc += a
                        bad |= out
                    if with_grad:
                        _aniso_grad_row(g, b, c, k, i, cz, cy, cx, nd, fx, fy[i & 1, c],
                                        fy[(i - 1) & 1, c], fz, fzs[i - i0 if nd >= 3 else 0, c])
                    if nd >= 3:
                        fzs[i - i0, c, :] = fz
        partial[unit] = np.nan if strict and bad else acc


@parallel_kernel
def _kernel_1d(u, g, with_grad, mode, single, s2, ihx, p, beta, scale, seg, strict, partial):
    """:func:`_iso_kernel` for one spatial axis (``u[b, c, 0, 0, x]``), in segments
    of ``seg`` samples: a long signal is one row, which the row kernels run on one
    thread with whole-row scratch (a 10⁷-sample signal took 4-6× the time of a
    3162² image on 2 cores).  A segment recomputes the one weight behind it.
    Isotropic: the channels share a weight; with one channel it is also the
    anisotropic sum (every difference, the zero last one included, counts)."""
    B, C, D, H, W = u.shape
    cx = scale * ihx * ihx
    nseg = (W + seg - 1) // seg
    nt = seg + 1 if mode == MODE_POW else 1
    tiny = _tiny(s2)
    check = s2 < tiny
    for unit in prange(partial.shape[0]):
        b = unit // nseg
        j0 = (unit % nseg) * seg
        j1 = min(W, j0 + seg)
        lo = max(j0 - 1, 0)
        n = j1 - lo
        w = np.empty(n, u.dtype)
        t = np.empty(nt, np.float64)
        ib = np.empty(nt, np.int64)
        w[:] = s2
        small = False
        for c in range(C):
            row = u[b, c, 0, 0]
            for j in range(lo, min(j1, W - 1)):
                d = (row[j + 1] - row[j]) * ihx
                dd = d * d
                w[j - lo] += dd
                if check:
                    small |= (dd < tiny) & (d != 0)
        off = j0 - lo  # the weight behind the segment: needed, not counted
        _, out0 = _weights_chk(w[:off], p, beta, mode, t, ib, single)
        acc, out = _weights_chk(w[off:], p, beta, mode, t, ib, single)
        if with_grad:
            for c in range(C):
                row = u[b, c, 0, 0]
                gr = g[b, c, 0, 0]
                for j in range(j0, j1):
                    v = -w[j - lo] * (row[j + 1] - row[j]) if j + 1 < W else row[j] - row[j]
                    if j > 0:
                        v += w[j - 1 - lo] * (row[j] - row[j - 1])
                    gr[j] = v * cx
        bad = (small and check) or out or out0
        partial[unit] = np.nan if strict and bad else acc


def _segment_length(B: int, W: int) -> int:
    """Samples per unit of :func:`_kernel_1d`: enough units to balance the pool
    (its size, not the calling thread's count, so the sums' order is fixed)."""
    target = 8 * config.NUMBA_NUM_THREADS
    return max(4096, -(-W // max(1, -(-target // B))))


def _rows_per_unit(B: int, D: int, H: int, W: int) -> int:
    """Rows per work unit: enough units to balance the threads, few enough
    that the one recomputed boundary row per unit stays cheap.  From the pool's
    size, not the calling thread's count: the units fix the order of the sums, so
    the results do not depend on how many threads run them."""
    target = 8 * config.NUMBA_NUM_THREADS
    per_plane = max(1, -(-target // max(1, B * D)))
    return max(1, min(H, max(-(-H // per_plane), 16)))


def tv_canonical(u, g, *, nd, inv_spacing, smoothing, beta, isotropic, scale=1.0,
                 strict=True):
    """Per-batch β-TV sums of the C-contiguous ``u[b, c, z, y, x]``; writes
    ``scale * ∇TV`` into ``g`` (C-contiguous, same shape) unless ``g`` is
    None.  Returns a float64 array of length B.

    With ``strict`` a batch item is NaN where a square or a power left the
    dtype's range (its value or gradient would be wrong); the caller
    recomputes it (``tv.run_plan``).  The caller keeps ``smoothing**2`` and
    ``1/h`` within the dtype."""
    B, C, D, H, W = u.shape
    T = u.dtype.type
    if nd == 1 and (isotropic or C == 1):
        seg = _segment_length(B, W)
        partial = np.empty(B * (-(-W // seg)), np.float64)
        with_grad = g is not None
        if not with_grad:
            g = np.empty((1, 1, 1, 1, 1), u.dtype)
        _kernel_1d(u, g, with_grad, beta_mode(beta),
                   u.dtype == np.float32, T(smoothing**2), T(inv_spacing[-1]),
                   T(beta / 2 - 1), T(beta), T(scale), seg, strict, partial)
        return partial.reshape(B, -1).sum(axis=1)
    # Units span all planes where the gradient needs what the plane behind
    # computed (weights or z fluxes, carried); else one plane each, whose
    # memory is contiguous (faster for the value alone).
    with_grad = g is not None
    sweep = with_grad and nd >= 3
    planes = 1 if sweep else D
    rows = _rows_per_unit(B, planes, H, W)
    partial = np.empty(B * planes * (-(-H // rows)), np.float64)
    ihz, ihy, ihx = (T(h) for h in inv_spacing)
    if not with_grad:
        g = np.empty((1, 1, 1, 1, 1), u.dtype)
    kernel = _iso_kernel if isotropic else _aniso_kernel
    kernel(u, g, with_grad, nd, beta_mode(beta), u.dtype == np.float32, T(smoothing**2),
           ihz, ihy, ihx, T(beta / 2 - 1), T(beta), T(scale), rows, sweep, strict, partial)
    return partial.reshape(B, -1).sum(axis=1)
