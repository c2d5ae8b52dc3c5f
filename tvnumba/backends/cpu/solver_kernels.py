"""Numba CPU kernels for the TV solvers (:mod:`tvnumba.solvers`).

Every kernel works on the canonical layout ``u[b, c, z, y, x]`` of
:meth:`tvnumba._validate.Plan.to_canonical`; vector fields (dual variables, IRLS weights) carry
one leading component axis ``p[d, b, c, z, y, x]`` with ``d = 0`` the x
(innermost) difference, ``d = 1`` y and ``d = 2`` z, so a 2-D problem stores
two components and a 1-D problem one.

The number of real spatial axes ``nd`` and the isotropic flag are runtime
arguments tested once per row (never per pixel), so one compiled kernel per
dtype serves 1-D, 2-D and 3-D, isotropic and anisotropic problems: compile
time is a user-facing figure and these kernels are not the ones
whose inner loops need branch-free specialisation.

Work is split like :mod:`.tv_kernels`: units of ``(b, z, block of rows)``; a unit owns
the rows it writes and one slot of the float64 partial sums, so there are no
races.  Every kernel only *reads* neighbours of the array it does not write.

Chambolle-Pock for ROF (β = 1) runs as two passes per iteration (three spatial axes,
another data term):

* :func:`cp_dual_step`:  ``p <- proj_{|p| <= w}(p + σ D ū)``   (reads ū, updates p)
* :func:`cp_primal_step`: ``u' = (u - τ Dᵀp + τ f) / (1 + τ)``, ``ū = u' + θ(u' - u)``
  (reads p, updates u and ū; optionally accumulates ``Σ (f - Dᵀp)²`` for
  the dual objective).  That is the proximal step of the identity data term
  ½‖u − f‖², fused; that of a diagonal term ½‖m ⊙ u − f‖² likewise (with the
  over-relaxation of ``u``); for any other data term it only forms ``u − τ Dᵀp``
  (into ū), whose proximal step the data term takes.

With the identity data term and one or two spatial axes, :func:`cp_fused_step` runs
both as one pass (p read once; the rows shared by two units come from
snapshots, see there).

:func:`rof_primal` evaluates ``Σ ½(u - f)²`` and ``TV₁(u)`` for the duality gap.
The IRLS kernels (:func:`irls_weights`, :func:`irls_diag`, :func:`irls_apply`) serve the
majorize-minimize solver; the operator ``c0·I + Dᵀ diag(a) D`` has the
identity data term's normal operator fused in (``c0 = 1``) or left to the
data term (``c0 = 0``).
"""

from __future__ import annotations

import math

import numpy as np
from numba import prange

from ..._config import helper, parallel_kernel
from .tv_kernels import MODE_POW, _rows_per_unit, _sqmag_row, _unit_bounds, _weights, in_order


def n_units(shape) -> tuple[int, int]:
    """(rows per unit, number of units) for a canonical shape."""
    B, C, D, H, W = shape
    rows = _rows_per_unit(B, D, H, W)
    return rows, B * D * (-(-H // rows))


@helper
def _dual_row(q, row, nxt, s, last):
    """q += s·(nxt − row): one y or z row of p + σ D ū (0 on the last slice)."""
    if last:
        q[:] = s - s
    else:
        for j in range(q.shape[0]):
            q[j] += s * (nxt[j] - row[j])


@parallel_kernel
def cp_dual_step(ub, p, sigma, w, om, ihz, ihy, ihx, nd, iso, rows, nunits):
    """p <- projection onto {|p| <= w} of p + σ D ū (in place); with ``om ≠ 1`` the
    over-relaxed step ``p <- p + ω (proj(p + σ D ū) − p)``."""
    B, C, D, H, W = ub.shape
    zero = sigma - sigma
    one = type(sigma)(1)  # zero + 1 would promote float32 to float64 (half the lanes)
    w2 = w * w
    relax = om != one
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        kp = min(k + 1, D - 1)
        m = np.empty(W, ub.dtype)
        # relaxing: the moved point of a row goes to t; p keeps the old value until the end
        t = np.empty((nd, C, W) if relax else (0, 0, 0), ub.dtype)
        sx = sigma * ihx
        sy = sigma * ihy
        sz = sigma * ihz
        for i in range(i0, i1):
            ip = min(i + 1, H - 1)
            m[:] = zero
            if relax:
                for c in range(C):
                    row = ub[b, c, k, i]
                    px, tx = p[0, b, c, k, i], t[0, c]
                    for j in range(W - 1):
                        tx[j] = px[j] + sx * (row[j + 1] - row[j])
                    tx[W - 1] = zero
                    if nd >= 2:
                        _moved_row(t[1, c], p[1, b, c, k, i], row, ub[b, c, k, ip], sy, ip == i)
                    if nd >= 3:
                        _moved_row(t[2, c], p[2, b, c, k, i], row, ub[b, c, kp, i], sz, kp == k)
                    for d in range(nd):
                        _accumulate_or_clip(t[d, c], m, w, iso)
                if iso:
                    _iso_scale(m, w, w2, one)
                for d in range(nd):
                    for c in range(C):
                        q, tq = p[d, b, c, k, i], t[d, c]
                        if iso:
                            for j in range(W):
                                q[j] += om * (tq[j] * m[j] - q[j])
                        else:
                            for j in range(W):
                                q[j] += om * (tq[j] - q[j])
                continue
            for c in range(C):
                row = ub[b, c, k, i]
                px = p[0, b, c, k, i]
                for j in range(W - 1):
                    px[j] += sx * (row[j + 1] - row[j])
                px[W - 1] = zero
                if nd >= 2:
                    _dual_row(p[1, b, c, k, i], row, ub[b, c, k, ip], sy, ip == i)
                if nd >= 3:
                    _dual_row(p[2, b, c, k, i], row, ub[b, c, kp, i], sz, kp == k)
                for d in range(nd):
                    _accumulate_or_clip(p[d, b, c, k, i], m, w, iso)
            if iso:
                _iso_scale(m, w, w2, one)
                for d in range(nd):
                    for c in range(C):
                        q = p[d, b, c, k, i]
                        for j in range(W):
                            q[j] *= m[j]


@helper
def _accumulate_or_clip(q, m, w, iso):
    """Isotropic: ``m += q²`` (``|p|`` couples the components and the channels of a
    pixel); anisotropic: ``q`` clipped to ``±w``."""
    if iso:
        for j in range(q.shape[0]):
            m[j] += q[j] * q[j]
    else:
        for j in range(q.shape[0]):
            q[j] = min(max(q[j], -w), w)


@helper
def _moved_row(t, q, row, nxt, s, last):
    """t = q + s·(nxt − row): one y or z row of p + σ D ū (0 on the last slice)."""
    if last:
        t[:] = s - s
    else:
        for j in range(t.shape[0]):
            t[j] = q[j] + s * (nxt[j] - row[j])


@helper
def _adjoint_row(dt, q, behind, ih, first):
    """dt += (q_behind − q)·ih: one y or z row of Dᵀp (no row behind the first)."""
    if first:
        for j in range(dt.shape[0]):
            dt[j] -= q[j] * ih
    else:
        for j in range(dt.shape[0]):
            dt[j] += (behind[j] - q[j]) * ih


@parallel_kernel
def cp_primal_step(u, ub, f, m, p, tau, theta, om, ihz, ihy, ihx, nd, rows, nunits,
                   want_dual, partial, mode):
    """``mode`` 1 (identity data term): u' = (u - τ Dᵀp + τ f)/(1 + τ);
    ū = u' + θ(u' - u); u = u' (in place).

    With ``want_dual``, ``partial[unit]`` receives Σ (f - Dᵀp)² over the unit
    (float64), from which the dual objective ½‖f‖² - ½‖f - Dᵀp‖² follows.
    ``mode`` 2 (a diagonal term ½‖m ⊙ u − f‖²): u' = (u - τ Dᵀp + τ m f)/(1 + τ m²),
    ū = u' + θ(u' - u), u ← u + ω(u' − u).  ``mode`` 0 (another data term): only
    ``ū = u - τ Dᵀp`` is written (``f`` and ``m`` are not read).
    """
    B, C, D, H, W = u.shape
    one = type(tau)(1)  # tau - tau + 1 would promote float32 to float64 (half the lanes)
    inv = one / (one + tau)
    relax = om != one
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        km = k - 1
        dt = np.empty(W, u.dtype)
        acc = 0.0
        for i in range(i0, i1):
            im = i - 1
            for c in range(C):
                # dt = Dᵀp along the row; p vanishes on every last slice.
                dt[0] = -p[0, b, c, k, i, 0] * ihx
                for j in range(1, W):
                    dt[j] = (p[0, b, c, k, i, j - 1] - p[0, b, c, k, i, j]) * ihx
                if nd >= 2:
                    _adjoint_row(dt, p[1, b, c, k, i], p[1, b, c, k, max(im, 0)], ihy, im < 0)
                if nd >= 3:
                    _adjoint_row(dt, p[2, b, c, k, i], p[2, b, c, max(km, 0), i], ihz, km < 0)
                if mode == 0:
                    for j in range(W):
                        ub[b, c, k, i, j] = u[b, c, k, i, j] - tau * dt[j]
                    continue
                if mode == 2:
                    for j in range(W):
                        uo = u[b, c, k, i, j]
                        mj = m[b, c, k, i, j]
                        un = (uo + tau * (mj * f[b, c, k, i, j] - dt[j])) / (one + tau * mj * mj)
                        ub[b, c, k, i, j] = un + theta * (un - uo)
                        u[b, c, k, i, j] = uo + om * (un - uo) if relax else un
                    continue
                if want_dual:
                    for j in range(W):
                        r = f[b, c, k, i, j] - dt[j]
                        acc += r * r
                for j in range(W):
                    uo = u[b, c, k, i, j]
                    un = (uo + tau * (f[b, c, k, i, j] - dt[j])) * inv
                    ub[b, c, k, i, j] = un + theta * (un - uo)
                    u[b, c, k, i, j] = un
        partial[unit] = acc


@helper
def _dual_xy(px, py, row, nxt, sx, sy, w, w2, one, iso, first, one_c, m):
    """One row of p + σ D ū (x and y components, in place; 0 on the last column),
    with the projection onto |p| ≤ w where it is per pixel and channel (anisotropic,
    or isotropic with one channel); else ``m`` (re)starts / accumulates |p|²."""
    W = px.shape[0]
    zero = sx - sx
    if not iso:
        for j in range(W - 1):
            a = px[j] + sx * (row[j + 1] - row[j])
            c = py[j] + sy * (nxt[j] - row[j])
            px[j] = min(max(a, -w), w)
            py[j] = min(max(c, -w), w)
        c = py[W - 1] + sy * (nxt[W - 1] - row[W - 1])
        px[W - 1] = zero
        py[W - 1] = min(max(c, -w), w)
    elif one_c:
        for j in range(W - 1):
            a = px[j] + sx * (row[j + 1] - row[j])
            c = py[j] + sy * (nxt[j] - row[j])
            mj = a * a
            mj += c * c
            s = w / np.sqrt(mj) if mj > w2 else one
            px[j] = a * s
            py[j] = c * s
        c = py[W - 1] + sy * (nxt[W - 1] - row[W - 1])
        mj = c * c
        s = w / np.sqrt(mj) if mj > w2 else one
        px[W - 1] = zero
        py[W - 1] = c * s
    else:
        for j in range(W - 1):
            a = px[j] + sx * (row[j + 1] - row[j])
            c = py[j] + sy * (nxt[j] - row[j])
            px[j] = a
            py[j] = c
            mj = a * a if first else m[j] + a * a
            mj += c * c
            m[j] = mj
        c = py[W - 1] + sy * (nxt[W - 1] - row[W - 1])
        px[W - 1] = zero
        py[W - 1] = c
        m[W - 1] = c * c if first else m[W - 1] + c * c


@helper
def _dual_x(px, row, sx, w, w2, one, iso, first, one_c, m):
    """:func:`_dual_xy` of one spatial axis."""
    W = px.shape[0]
    zero = sx - sx
    if not iso:
        for j in range(W - 1):
            a = px[j] + sx * (row[j + 1] - row[j])
            px[j] = min(max(a, -w), w)
    elif one_c:
        for j in range(W - 1):
            a = px[j] + sx * (row[j + 1] - row[j])
            mj = a * a
            s = w / np.sqrt(mj) if mj > w2 else one
            px[j] = a * s
    else:
        for j in range(W - 1):
            a = px[j] + sx * (row[j + 1] - row[j])
            px[j] = a
            m[j] = a * a if first else m[j] + a * a
        m[W - 1] = zero if first else m[W - 1]
    px[W - 1] = zero


@helper
def _iso_scale(m, w, w2, one):
    """m <- w/√m where m > w², else 1 (the scale of the projection onto |p| ≤ w)."""
    for j in range(m.shape[0]):
        mj = m[j]
        m[j] = w / np.sqrt(mj) if mj > w2 else one


@helper
def _times(q, m):
    for j in range(q.shape[0]):
        q[j] *= m[j]


@helper
def _dual_rows(p, b, k, i, C, nd, a, ab, ak, ai, n, nb, nk, ni, sx, sy, w, w2, one, iso, m):
    """Row i of the dual step for every channel: p[:, b, :, k, i] in place.  ū row i is
    ``a[ab, c, ak, ai]``, row i + 1 ``n[nb, c, nk, ni]`` (row i itself on the last row)."""
    one_c = C == 1
    for c in range(C):
        row = a[ab, c, ak, ai]
        if nd >= 2:
            _dual_xy(p[0, b, c, k, i], p[1, b, c, k, i], row, n[nb, c, nk, ni], sx, sy, w, w2,
                     one, iso, c == 0, one_c, m)
        else:
            _dual_x(p[0, b, c, k, i], row, sx, w, w2, one, iso, c == 0, one_c, m)
    if iso and not one_c:
        _iso_scale(m, w, w2, one)
        for d in range(nd):
            for c in range(C):
                _times(p[d, b, c, k, i], m)


@helper
def _primal_row(u, ub, f, px, py, behind, nd, ihx, ihy, tau, theta, inv, want_dual):
    """Row of the identity data term's primal step (see :func:`cp_primal_step`);
    returns Σ (f − Dᵀp)² over the row when ``want_dual`` (else 0)."""
    W = u.shape[0]
    acc = 0.0
    t = -px[0] * ihx
    if nd >= 2:
        t += (behind[0] - py[0]) * ihy
    uo = u[0]
    fj = f[0]
    if want_dual:
        r = fj - t
        acc += r * r
    un = (uo + tau * (fj - t)) * inv
    ub[0] = un + theta * (un - uo)
    u[0] = un
    if nd >= 2:
        if want_dual:
            for j in range(1, W):
                t = (px[j - 1] - px[j]) * ihx
                t += (behind[j] - py[j]) * ihy
                uo = u[j]
                fj = f[j]
                r = fj - t
                acc += r * r
                un = (uo + tau * (fj - t)) * inv
                ub[j] = un + theta * (un - uo)
                u[j] = un
        else:
            for j in range(1, W):
                t = (px[j - 1] - px[j]) * ihx
                t += (behind[j] - py[j]) * ihy
                uo = u[j]
                un = (uo + tau * (f[j] - t)) * inv
                ub[j] = un + theta * (un - uo)
                u[j] = un
    else:
        for j in range(1, W):
            t = (px[j - 1] - px[j]) * ihx
            uo = u[j]
            fj = f[j]
            if want_dual:
                r = fj - t
                acc += r * r
            un = (uo + tau * (fj - t)) * inv
            ub[j] = un + theta * (un - uo)
            u[j] = un
    return acc


@parallel_kernel
def cp_fused_step(u, ub, f, p, snap_first, snap_last, snap_p, cur, sigma, w, tau, theta,
                  one, ihy, ihx, nd, iso, rows, nunits, want_dual, partial):
    """One Chambolle-Pock iteration with the identity data term in ONE pass
    (nd ≤ 2, one plane: ``D == 1``): :func:`cp_dual_step` then
    :func:`cp_primal_step`, row by row.

    Inside a unit, row i's dual update (reads ū rows i, i+1 of the previous
    iterate) comes before its primal update (writes u, ū row i), so each dual
    row still sees the old ū.  Across units two rows would race; they come
    from snapshots that each unit wrote at the end of the previous call, double
    buffered (read slot ``cur``, write slot ``1 - cur``), per unit:
    ``snap_first[slot, c, unit, 0]`` = ū of its first row, ``snap_last[slot, c, unit, 0]``
    = ū of its last row, ``snap_p[d, slot, c, unit, 0]`` = p of its last row (laid out
    like ``ub[b, c, k, i]`` and ``p[d, b, c, k, i]``).

    * the unit's last dual row reads ū of the next unit's first row from
      ``snap_first`` (the next unit may already have overwritten it);
    * the unit's first primal row needs the *new* p of the row above, which
      the unit above computes: it is recomputed privately from the snapshots
      with the same arithmetic (same value), not written.

    ``partial[unit]`` receives Σ (f − Dᵀp)² over the unit as in
    :func:`cp_primal_step` (float64).  ``one`` is 1 in u's dtype: all arithmetic
    stays in that dtype (:func:`cp_primal_step` forms ``u'`` and ``ū`` in float64
    for float32 input, which halves its vector lanes; the results differ by rounding).
    """
    B, C, D, H, W = u.shape
    inv = one / (one + tau)
    w2 = w * w
    sx = sigma * ihx
    sy = sigma * ihy
    nxt = 1 - cur
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        m = np.empty(W, u.dtype)
        above = np.zeros((C, W), u.dtype)  # new p_y of row i0 − 1 (0 above row 0)
        acc = 0.0
        if nd >= 2 and i0 > 0:
            q = np.empty((nd, 1, C, 1, 1, W), u.dtype)
            for d in range(nd):
                for c in range(C):
                    q[d, 0, c, 0, 0, :] = snap_p[d, cur, c, unit - 1, 0]  # old p, row i0 − 1
            _dual_rows(q, 0, 0, 0, C, nd, snap_last, cur, unit - 1, 0, ub, b, k, i0,
                       sx, sy, w, w2, one, iso, m)
            for c in range(C):
                above[c, :] = q[1, 0, c, 0, 0]
        for i in range(i0, i1):
            if i + 1 < i1:
                n, nb, nk, ni = ub, b, k, i + 1
            elif i + 1 < H:
                n, nb, nk, ni = snap_first, cur, unit + 1, 0
            else:
                n, nb, nk, ni = ub, b, k, i
            _dual_rows(p, b, k, i, C, nd, ub, b, k, i, n, nb, nk, ni, sx, sy, w, w2, one, iso, m)
            for c in range(C):
                if i == i0:
                    behind = above[c]
                else:
                    behind = p[nd - 1, b, c, k, i - 1]
                acc += _primal_row(u[b, c, k, i], ub[b, c, k, i], f[b, c, k, i],
                                   p[0, b, c, k, i], p[nd - 1, b, c, k, i], behind, nd, ihx,
                                   ihy, tau, theta, inv, want_dual)
        for c in range(C):
            snap_first[nxt, c, unit, 0, :] = ub[b, c, k, i0]
            snap_last[nxt, c, unit, 0, :] = ub[b, c, k, i1 - 1]
            for d in range(nd):
                snap_p[d, nxt, c, unit, 0, :] = p[d, b, c, k, i1 - 1]
        partial[unit] = acc


@parallel_kernel
def rof_primal(u, f, ihz, ihy, ihx, nd, iso, rows, nunits, fid, tv1):
    """fid[unit] = Σ ½(u - f)², tv1[unit] = TV₁(u): differences, squares and
    square roots in u's dtype (8 float32 lanes), sums in float64."""
    B, C, D, H, W = u.shape
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        mag = np.empty(W, u.dtype)
        dx = np.empty(W, u.dtype)
        af = 0.0
        at = 0.0
        for i in range(i0, i1):
            mag[:] = ihx - ihx
            for c in range(C):
                row = u[b, c, k, i]
                frow = f[b, c, k, i]
                for j in range(W):
                    r = np.float64(row[j]) - np.float64(frow[j])
                    af += r * r
                at += _tv_row(u, b, c, k, i, ihz, ihy, ihx, nd, iso, dx, mag)
            if iso:
                at += _sum_sqrt(mag)
        fid[unit] = 0.5 * af
        tv1[unit] = at


@helper
def _tv_row(u, b, c, k, i, ihz, ihy, ihx, nd, iso, dx, mag):
    """Row ``(k, i)`` of channel ``c``: adds the squared differences to ``mag``
    (isotropic, in u's dtype) or returns Σ |differences| in float64 (anisotropic; 0
    otherwise)."""
    D, H, W = u.shape[2], u.shape[3], u.shape[4]
    row = u[b, c, k, i]
    zero = ihx - ihx
    at = 0.0
    for d in range(nd):
        if d == 0:
            for j in range(W - 1):
                dx[j] = (row[j + 1] - row[j]) * ihx
            dx[W - 1] = zero
        else:
            nxt = u[b, c, k, min(i + 1, H - 1)] if d == 1 else u[b, c, min(k + 1, D - 1), i]
            ih = ihy if d == 1 else ihz
            for j in range(W):
                dx[j] = (nxt[j] - row[j]) * ih
        if iso:
            for j in range(W):
                mag[j] += dx[j] * dx[j]
        else:
            for j in range(W):
                at += np.float64(abs(dx[j]))
    return at


@helper
def _sum_sqrt(mag):
    """Σ √mag in float64 (the roots in mag's dtype)."""
    at = 0.0
    for j in range(mag.shape[0]):
        at += np.float64(np.sqrt(mag[j]))
    return at


@parallel_kernel
def masked_gap(u, f, m, p, w, lo, hi, kappa, labels, hole_lo, hole_hi, ihz, ihy, ihx, nd,
               iso, transfer, rows, nunits, partial):
    """The box gap's sums of ``½‖m ⊙ u − f‖² + w·TV₁(u)`` at ``u`` and a dual point made
    from ``P(p)`` (``P`` the projection onto ``|p| ≤ w``: an over-relaxed ``p`` may lie
    outside): ``partial[unit] = (Σ (m u − f)², Σ_i D_i, TV₁(u))`` in float64, ``D_i`` the
    dual value's term of pixel ``i`` on its box ``[L_i, H_i]`` (:mod:`tvnumba.solvers._box`)
    at the best data-side dual ``q_i`` for ``d_i`` (:func:`_box_dual`), ``d = Dᵀ p̃``;
    ``p̃`` is ``P(p)``, with ``transfer`` and one channel with the holes' residuals moved
    to known neighbours (:func:`_transfer_row`); TV₁ as :func:`rof_primal`.  ``p`` in the
    layout of :func:`cp_dual_step`, zero on the last slice of its axis."""
    B, C, D, H, W = u.shape
    one = type(w)(1)
    moving = transfer and C == 1
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        s = np.empty(W, u.dtype)  # the projection's scale on row (k, i) ...
        sy = np.empty(W, u.dtype)  # ... (k, i − 1)
        sz = np.empty(W, u.dtype)  # ... (k − 1, i)
        s[:] = one
        sy[:] = one
        sz[:] = one
        g = np.empty(W, np.float64)
        inc = np.zeros(W, np.float64)  # moved down from the row above
        nxt = np.zeros(W, np.float64)
        buf = np.empty((4, W), np.float64)
        mag = np.empty(W, u.dtype)
        dx = np.empty(W, u.dtype)
        a0 = 0.0
        a1 = 0.0
        at = 0.0
        if iso and nd >= 2 and i0 > 0:  # row i0 − 1's scale: the first swap makes it sy
            _ball_scale(p, b, k, i0 - 1, w, nd, s)
        if moving and nd >= 2 and i0 > 0:  # what the row above this unit moves down
            if iso and i0 > 1:
                _ball_scale(p, b, k, i0 - 2, w, nd, sy)
            if iso and nd >= 3 and k > 0:
                _ball_scale(p, b, k - 1, i0 - 1, w, nd, sz)
            _divergence_row(g, p, b, 0, k, i0 - 1, s, sy, sz, w, iso, ihz, ihy, ihx, nd)
            _transfer_row(g, m, p, b, k, i0 - 1, s, w, iso, ihx, ihy, nd, inc, buf)
        for i in range(i0, i1):
            if iso:
                s, sy = sy, s  # row i − 1's scale is the last row's
                _ball_scale(p, b, k, i, w, nd, s)
                if nd >= 3 and k > 0:
                    _ball_scale(p, b, k - 1, i, w, nd, sz)
            mag[:] = w - w
            for c in range(C):
                _divergence_row(g, p, b, c, k, i, s, sy, sz, w, iso, ihz, ihy, ihx, nd)
                if moving:
                    nxt[:] = 0.0
                    for j in range(W):
                        g[j] += inc[j]
                    _transfer_row(g, m, p, b, k, i, s, w, iso, ihx, ihy, nd, nxt, buf)
                    inc, nxt = nxt, inc
                ur, fr, mr = u[b, c, k, i], f[b, c, k, i], m[b, c, k, i]
                lr = labels[b, c, k, i]
                for j in range(W):
                    mj = np.float64(mr[j])
                    fj = np.float64(fr[j])
                    q = mj * np.float64(ur[j]) - fj
                    a0 += q * q
                    a1 += _box_dual(g[j], mj, fj, lo, hi, kappa, hole_lo[lr[j]],
                                    hole_hi[lr[j]])
                at += _tv_row(u, b, c, k, i, ihz, ihy, ihx, nd, iso, dx, mag)
            if iso:
                at += _sum_sqrt(mag)
        partial[unit, 0] = a0
        partial[unit, 1] = a1
        partial[unit, 2] = at


@helper
def _divergence_row(g, p, b, c, k, i, s, sy, sz, w, iso, ihz, ihy, ihx, nd):
    """``g = Dᵀ P(p)`` on row ``(k, i)`` of channel ``c`` in float64, with the projection's
    scales ``s``, ``sy``, ``sz`` of rows ``(k, i)``, ``(k, i − 1)``, ``(k − 1, i)``:
    ``Σ_d ih_d (P(p_d)(x − e_d) − P(p_d)(x))``."""
    q0 = p[0, b, c, k, i]
    prev = 0.0
    for j in range(g.shape[0]):
        here = np.float64(_proj1(q0[j], s[j], w, iso))
        g[j] = (prev - here) * ihx
        prev = here
    if nd >= 2:
        _masked_gap_row(g, p[1, b, c, k, i], p[1, b, c, k, max(i - 1, 0)], s, sy, w, iso,
                        ihy, i > 0)
    if nd >= 3:
        _masked_gap_row(g, p[2, b, c, k, i], p[2, b, c, max(k - 1, 0), i], s, sz, w, iso,
                        ihz, k > 0)


@helper
def _transfer_row(g, m, p, b, k, i, s, w, iso, ihx, ihy, nd, down, buf):
    """Moves the residual ``g_j`` of each hole pixel of row ``(k, i)`` (one channel) to
    its known neighbours ahead along x, then y, as far as the pixel's own dual stays in
    the ball: ``P(p)_d(j) += y_d`` moves ``ih_d y_d`` from ``g_j`` to the neighbour
    (``g[j + 1]``, or ``down[j]`` for the next row), each ``y_d`` of the sign of the
    residual.  A hole's dual term ``min(g L, g H)`` costs ``|g|`` times its box's width;
    a known neighbour's term is concave in its ``g`` with slope its minimiser's value,
    which lies in the hole's box (the neighbour's box is part of it): the move never
    lowers the dual value.  Only a pixel's own edges change, so the pixels are
    independent; written with selects and without divisions (``buf``: four float64
    rows), so that the loops vectorise."""
    W = g.shape[0]
    H = p.shape[4]
    mr = m[b, 0, k, i]
    md = m[b, 0, k, min(i + 1, H - 1)]
    px = p[0, b, 0, k, i]
    py = p[min(1, nd - 1), b, 0, k, i]
    pz = p[nd - 1, b, 0, k, i]
    wf = np.float64(w)
    w2 = wf * wf
    yx, vxb, vyb, vvb = buf[0], buf[1], buf[2], buf[3]
    zero = w - w
    for j in range(W):
        sj = s[j] if iso else zero
        vx = np.float64(_proj1(px[j], sj, w, iso))
        vy = np.float64(_proj1(py[j], sj, w, iso)) if nd >= 2 else 0.0
        vz = np.float64(_proj1(pz[j], sj, w, iso)) if nd >= 3 else 0.0
        vxb[j] = vx
        vyb[j] = vy
        vvb[j] = vx * vx + vy * vy + vz * vz
    _shares(g, mr, mr, 1, 1.0 / np.float64(ihx), vxb, vvb, wf, w2, iso, yx)
    for j in range(W):
        g[j] -= ihx * yx[j]
    for j in range(1, W):
        g[j] += ihx * yx[j - 1]
    if nd >= 2 and i + 1 < H:
        for j in range(W):
            vvb[j] += yx[j] * (2.0 * vxb[j] + yx[j])
        _shares(g, mr, md, 0, 1.0 / np.float64(ihy), vyb, vvb, wf, w2, iso, yx)
        for j in range(W):
            g[j] -= ihy * yx[j]
            down[j] += ihy * yx[j]


@helper
def _shares(g, mr, mn, shift, inv_h, v, vv, w, w2, iso, out):
    """``out[j]``: the share (:func:`_share`) that hole ``j`` moves to its neighbour
    ``mn[j + shift]`` where that one is known, else 0."""
    W = g.shape[0]
    n = W - shift
    for j in range(n):
        ok = (mr[j] <= 0) & (mn[j + shift] > 0)
        y = _share(g[j] * inv_h, v[j], vv[j], w, w2, iso)
        out[j] = y if ok else 0.0
    for j in range(n, W):
        out[j] = 0.0


@helper
def _share(a, v, vv, w, w2, iso):
    """The change of a dual component ``v`` between 0 and ``a`` nearest ``a`` that keeps
    the pixel's dual (squared norm ``vv``) in the ball: ``|·| ≤ w`` isotropic, the
    component in ``[−w, w]`` anisotropic."""
    r = np.sqrt(max(v * v + w2 - vv, 0.0))
    lo = -v - r if iso else -w - v
    hi = -v + r if iso else w - v
    # 0 where rounding left the dual just outside the ball: never against the residual
    up = max(min(a, hi), 0.0)
    dn = min(max(a, lo), 0.0)
    return up if a > 0 else dn


@helper
def _box_dual(d, m, f, lo, hi, kappa, hole_lo, hole_hi):
    """``max_q −½q² − q f − max(−g L, −g H)``, ``g = d + m q``, on the pixel's box: for a
    known pixel (``m > 0``) ``[L, H] = [max(lo, f/m − κ/m²), min(hi, f/m + κ/m²)]``, where
    the objective is concave in ``q`` with its kink at ``g = 0`` and the maximiser is
    ``m L − f`` where ``g > 0`` there, ``m H − f`` where ``g < 0`` there, else ``−d/m``;
    for a hole ``[hole_lo, hole_hi]`` and ``q = 0``.  Written with selects, not branches:
    a random mask would mispredict every other pixel."""
    known = m > 0
    inv = 1.0 / (m if known else 1.0)
    c = f * inv
    k = kappa * inv * inv
    lb = max(lo, c - k) if known else hole_lo
    ub = min(hi, c + k) if known else hole_hi
    qa = m * lb - f
    qb = m * ub - f
    q = qa if d + m * qa > 0 else (qb if d + m * qb < 0 else -d * inv)
    q = q if known else 0.0
    g = d + m * q
    f = f if known else 0.0  # a hole's value may be anything
    return -0.5 * q * q - q * f - max(-g * lb, -g * ub)


@helper
def _masked_gap_row(g, q, behind, s, sb, w, iso, ih, has_behind):
    """g += ih (P(q_behind) − P(q)) along one row (no row behind the first)."""
    for j in range(g.shape[0]):
        v = -np.float64(_proj1(q[j], s[j], w, iso))
        if has_behind:
            v += np.float64(_proj1(behind[j], sb[j], w, iso))
        g[j] += v * ih


@helper
def _proj1(v, scale, w, iso):
    """One component of ``p`` projected: ``v·scale`` (isotropic) or ``v`` clipped to ``±w``."""
    return v * scale if iso else min(max(v, -w), w)


@helper
def _ball_scale(p, b, k, i, w, nd, out):
    """``out[j] = min(1, w / |p|)`` on row ``(k, i)``, ``|p|`` over components and channels."""
    C = p.shape[2]
    out[:] = w - w
    for c in range(C):
        for d in range(nd):
            q = p[d, b, c, k, i]
            for j in range(out.shape[0]):
                out[j] += q[j] * q[j]
    w2 = w * w
    one = type(w)(1)
    for j in range(out.shape[0]):
        mj = out[j]
        out[j] = w / np.sqrt(mj) if mj > w2 else one


@parallel_kernel
def irls_weights(u, a, weight, s2, p, beta, mode, single, ihz, ihy, ihx, nd, iso, rows,
                 nunits, tvp):
    """IRLS weights of the β-TV majorizer at ``u``, and TV_β(u).

    With ``m`` the smoothed squared magnitude (per pixel if isotropic, per
    difference otherwise), writes ``a[d, b, c, ...] = weight · β m^(β/2 - 1)``
    on every difference and ``tvp[unit] = Σ m^(β/2)`` (float64), through the
    TV kernels' own branch-free power rows (``mode``/``single``/``p`` as in
    ``tv_kernels.tv_canonical``).  On the last slice of an axis (no difference)
    the weight is 0.
    """
    B, C, D, H, W = u.shape
    zero = weight - weight
    nt = W if mode == MODE_POW else 1
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        kp = min(k + 1, D - 1)
        m = np.empty(W, u.dtype)
        t = np.empty(nt, np.float64)
        ib = np.empty(nt, np.int64)
        acc = 0.0
        for i in range(i0, i1):
            ip = min(i + 1, H - 1)
            if iso:
                _sqmag_row(u, b, k, i, s2, ihz, ihy, ihx, nd, m)
                acc += _weights(m, p, beta, mode, t, ib, single)
                for c in range(C):
                    for d in range(nd):
                        for j in range(W):
                            a[d, b, c, k, i, j] = weight * m[j]
            else:
                for c in range(C):
                    for d in range(nd):
                        row = u[b, c, k, i]
                        if d == 0:
                            for j in range(W - 1):
                                q = (row[j + 1] - row[j]) * ihx
                                m[j] = q * q + s2
                            m[W - 1] = s2
                        else:
                            nxt = u[b, c, k, ip] if d == 1 else u[b, c, kp, i]
                            ih = ihy if d == 1 else ihz
                            for j in range(W):
                                q = (nxt[j] - row[j]) * ih
                                m[j] = q * q + s2
                        acc += _weights(m, p, beta, mode, t, ib, single)
                        for j in range(W):
                            a[d, b, c, k, i, j] = weight * m[j]
            # No difference on the last slice of each axis: weight 0 there.
            for c in range(C):
                a[0, b, c, k, i, W - 1] = zero
                if nd >= 2 and ip == i:
                    for j in range(W):
                        a[1, b, c, k, i, j] = zero
                if nd >= 3 and kp == k:
                    for j in range(W):
                        a[2, b, c, k, i, j] = zero
        tvp[unit] = acc


@parallel_kernel
def irls_diag(a, diag, c0, ihz, ihy, ihx, nd, rows, nunits):
    """diag = diagonal of ``c0·I + Dᵀ diag(a) D``: each difference adds its
    weight to both of its ends (a is 0 on every last slice)."""
    _, B, C, D, H, W = a.shape
    cx = ihx * ihx
    cy = ihy * ihy
    cz = ihz * ihz
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        for i in range(i0, i1):
            for c in range(C):
                a0 = a[0, b, c, k, i]
                out = diag[b, c, k, i]
                out[0] = c0 + a0[0] * cx
                for j in range(1, W):
                    out[j] = c0 + (a0[j] + a0[j - 1]) * cx
                if nd >= 2:
                    a1 = a[1, b, c, k, i]
                    if i > 0:
                        a1m = a[1, b, c, k, i - 1]
                        for j in range(W):
                            out[j] += (a1[j] + a1m[j]) * cy
                    else:
                        for j in range(W):
                            out[j] += a1[j] * cy
                if nd >= 3:
                    a2 = a[2, b, c, k, i]
                    if k > 0:
                        a2m = a[2, b, c, k - 1, i]
                        for j in range(W):
                            out[j] += (a2[j] + a2m[j]) * cz
                    else:
                        for j in range(W):
                            out[j] += a2[j] * cz


@parallel_kernel
def irls_apply(x, a, y, c0, ihz, ihy, ihx, nd, rows, nunits, partial):
    """y = c0·x + Dᵀ(a ⊙ D x), the IRLS normal operator; returns x·y
    (float64, which CG needs next, fused here to save a pass)."""
    B, C, D, H, W = x.shape
    ihx2 = ihx * ihx
    ihy2 = ihy * ihy
    ihz2 = ihz * ihz
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        kp = min(k + 1, D - 1)
        km = max(k - 1, 0)
        fx = np.empty(W + 1, x.dtype)
        zero = ihx - ihx
        acc = 0.0
        for i in range(i0, i1):
            ip = min(i + 1, H - 1)
            im = max(i - 1, 0)
            for c in range(C):
                xr = x[b, c, k, i]
                yr = y[b, c, k, i]
                fx[0] = zero
                for j in range(W - 1):
                    fx[j + 1] = a[0, b, c, k, i, j] * (xr[j + 1] - xr[j])
                fx[W] = zero
                for j in range(W):
                    yr[j] = c0 * xr[j] + (fx[j] - fx[j + 1]) * ihx2
                if nd >= 2:
                    # a vanishes on the last row, so clamped indices add nothing.
                    for j in range(W):
                        xc = xr[j]
                        yr[j] += (a[1, b, c, k, im, j] * (xc - x[b, c, k, im, j])
                                  - a[1, b, c, k, i, j] * (x[b, c, k, ip, j] - xc)) * ihy2
                if nd >= 3:
                    for j in range(W):
                        xc = xr[j]
                        yr[j] += (a[2, b, c, km, i, j] * (xc - x[b, c, km, i, j])
                                  - a[2, b, c, k, i, j] * (x[b, c, kp, i, j] - xc)) * ihz2
                for j in range(W):
                    acc += np.float64(xr[j]) * np.float64(yr[j])
        partial[unit] = acc
    return in_order(partial)


@parallel_kernel
def pd_dual_step(ub, p, pt, sig, w, om, ihz, ihy, ihx, nd, iso, rows, nunits):
    """``pt = proj_{|·| ≤ w}(p + σ D ū)`` with one σ per pixel (``sig[b, 0, z, y, x]``),
    then ``p ← p + ω (pt − p)``: the preconditioned primal-dual's TV dual step.

    ``p`` and ``pt`` hold their components in the order of the canonical axes
    (``p[nd - 1]`` the x difference, ``p[nd - 2]`` y, ``p[nd - 3]`` z), as
    :meth:`tvnumba.backends.array.TVOps.field` lays them out.
    """
    B, C, D, H, W = ub.shape
    one = type(om)(1)
    w2 = w * w
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        m = np.empty(W, ub.dtype)
        for i in range(i0, i1):
            s = sig[b, 0, k, i]
            _pd_dual_point(ub, p, pt, s, b, k, i, ihz, ihy, ihx, nd, iso, m)
            if iso:
                _iso_scale(m, w, w2, one)
            else:
                for d in range(nd):
                    for c in range(C):
                        q = pt[d, b, c, k, i]
                        for j in range(W):
                            q[j] = min(max(q[j], -w), w)
            _pd_relax(p, pt, m, b, k, i, nd, iso, om)


@parallel_kernel
def pd_dual_power_step(ub, p, pt, sig, wb, beta, om, ihz, ihy, ihx, nd, iso, rows, nunits):
    """:func:`pd_dual_step` for ``w · TV_β``, β > 1 (``wb = w β``): ``pt = prox_{σg*}(z)``,
    ``z = p + σ D ū``, ``g = w |·|^β`` per pixel (per difference when not ``iso``),
    a radial shrink ``pt = z (1 − t/x)`` with ``x = |z|/σ`` and ``t`` the root of
    ``t + (wβ/σ) t^(β−1) = x`` (:func:`_power_radius`); then ``p ← p + ω (pt − p)``."""
    B, C, D, H, W = ub.shape
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        m = np.empty(W, ub.dtype)
        for i in range(i0, i1):
            s = sig[b, 0, k, i]
            _pd_dual_point(ub, p, pt, s, b, k, i, ihz, ihy, ihx, nd, iso, m)
            if iso:
                for j in range(W):
                    m[j] = _power_shrink(np.sqrt(m[j]), s[j], wb, beta)
            else:
                for d in range(nd):
                    for c in range(C):
                        q = pt[d, b, c, k, i]
                        for j in range(W):
                            q[j] *= _power_shrink(abs(q[j]), s[j], wb, beta)
            _pd_relax(p, pt, m, b, k, i, nd, iso, om)


@helper
def _pd_dual_point(ub, p, pt, s, b, k, i, ihz, ihy, ihx, nd, iso, m):
    """``pt = p + σ D ū`` on row ``(b, ·, k, i)`` of every component and channel; with
    ``iso``, ``m`` = its squared magnitude per pixel over components and channels."""
    B, C, D, H, W = ub.shape
    zero = ihx - ihx
    kp = min(k + 1, D - 1)
    ip = min(i + 1, H - 1)
    m[:] = zero
    for c in range(C):
        row = ub[b, c, k, i]
        q, q0 = pt[nd - 1, b, c, k, i], p[nd - 1, b, c, k, i]
        for j in range(W - 1):
            q[j] = q0[j] + s[j] * ihx * (row[j + 1] - row[j])
        q[W - 1] = zero
        if nd >= 2:
            _pd_dual_row(pt[nd - 2, b, c, k, i], p[nd - 2, b, c, k, i], row,
                         ub[b, c, k, ip], s, ihy, ip == i)
        if nd >= 3:
            _pd_dual_row(pt[0, b, c, k, i], p[0, b, c, k, i], row,
                         ub[b, c, kp, i], s, ihz, kp == k)
        if iso:
            for d in range(nd):
                q = pt[d, b, c, k, i]
                for j in range(W):
                    m[j] += q[j] * q[j]


@helper
def _pd_relax(p, pt, m, b, k, i, nd, iso, om):
    """With ``iso`` scale ``pt`` by the per-pixel factor ``m``; then ``p ← p + ω (pt − p)``
    on row ``(b, ·, k, i)``."""
    C = p.shape[2]
    for d in range(nd):
        for c in range(C):
            q, q0 = pt[d, b, c, k, i], p[d, b, c, k, i]
            if iso:
                for j in range(q.shape[0]):
                    q[j] *= m[j]
            for j in range(q.shape[0]):
                q0[j] += om * (q[j] - q0[j])


@helper
def _pd_dual_row(q, q0, row, nxt, s, ih, last):
    """q = q0 + σ·ih·(nxt − row): one y or z row of p + σ D ū (0 on the last slice)."""
    if last:
        q[:] = q0[0] - q0[0]
    else:
        for j in range(q.shape[0]):
            q[j] = q0[j] + s[j] * ih * (nxt[j] - row[j])


#: Newton steps at most of :func:`_power_radius` (as :data:`tvnumba.backends.array.
#: POWER_NEWTON`; it stops once a step is below 1e-7).
POWER_NEWTON = 8


@helper
def _power_shrink(mag, s, wb, beta):
    """``1 − t/x`` with ``x = mag/s`` and ``t`` the root of ``t + (wb/s) t^(β−1) = x``:
    the factor of :func:`pd_dual_power_step` for one pixel (0 where ``mag`` or ``s`` is 0)."""
    zero = mag - mag
    if not (mag > zero and s > zero):
        return zero
    x = mag / s
    return (zero + 1) - _power_radius(x, wb / s, beta) / x


@helper
def _power_radius(x, c, beta):
    """The root ``t`` of ``t + c t^(β−1) = x`` (``x > 0``, β > 1): closed forms at β = 3/2,
    2 and 3, otherwise Newton's method on ``log t`` from above the root, as
    :func:`tvnumba.backends.array._power_radius` does."""
    one = x / x
    two = one + one
    if beta == 2:
        return x / (one + c)
    if beta == 1.5:
        r = two * x / (c + math.hypot(c, two * math.sqrt(x)))
        return r * r
    if beta == 3:
        return two * x / (one + math.hypot(one, two * math.sqrt(c * x)))
    b1 = beta - one
    s = min(math.log(x), math.log(x / c) / b1)
    tol = type(x)(1e-7)
    for _ in range(POWER_NEWTON):
        a = math.exp(s)
        b = c * math.exp(b1 * s)
        step = (a + b - x) / (a + b1 * b)
        s -= step
        if not abs(step) > tol:
            break
    return math.exp(s)


@parallel_kernel
def pd_primal_step(u, ut, ub, p, atr, tau, om, nonneg, ihz, ihy, ihx, nd, rows, nunits):
    """``ũ = u − τ (Dᵀp + atr)`` (at least 0 with ``nonneg``), ``ū = 2ũ − u``,
    ``u ← u + ω (ũ − u)``: the preconditioned primal-dual's primal step, τ per pixel.
    ``p`` in the layout of :func:`pd_dual_step`."""
    B, C, D, H, W = u.shape
    lo = type(om)(0) if nonneg else type(om)(-np.inf)
    two = type(om)(2)
    for unit in prange(nunits):
        b, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        km = k - 1
        dt = np.empty(W, u.dtype)
        for i in range(i0, i1):
            im = i - 1
            for c in range(C):
                px = p[nd - 1, b, c, k, i]
                dt[0] = -px[0] * ihx
                for j in range(1, W):
                    dt[j] = (px[j - 1] - px[j]) * ihx
                if nd >= 2:
                    _adjoint_row(dt, p[nd - 2, b, c, k, i], p[nd - 2, b, c, k, max(im, 0)],
                                 ihy, im < 0)
                if nd >= 3:
                    _adjoint_row(dt, p[0, b, c, k, i], p[0, b, c, max(km, 0), i], ihz, km < 0)
                ur, tr, br = u[b, c, k, i], ut[b, c, k, i], ub[b, c, k, i]
                ar, ta = atr[b, c, k, i], tau[b, c, k, i]
                for j in range(W):
                    uo = ur[j]
                    v = max(uo - ta[j] * (dt[j] + ar[j]), lo)
                    tr[j] = v
                    br[j] = two * v - uo
                    ur[j] = uo + om * (v - uo)
