"""Numba kernels of the ADMM-FFT deconvolution (:mod:`tvnumba.solvers.admm`).

One iteration is four FFTs and the elementwise work between them; these kernels do that
work in one pass per stage instead of about thirty whole-array operations:

* :func:`admm_rhs`: ``D_perᵀ(z − b)``, the TV side of the ``u``-step's right-hand side;
* :func:`admm_spectrum`: the ``u``-step's division in the frequency domain (and the data
  misfit of a periodic blur by Parseval, or the blurred ``u`` of an extended grid);
* :func:`admm_w_step`: the ``w = C u`` split of the extended grid (data misfit,
  relaxation, the ``w``-step and its multiplier);
* :func:`admm_shrink`: ``TV₁(u)``, then the relaxed ``z``-step (shrinkage of the kept
  differences) and its multiplier.

Arrays are canonical ``(B, C, Z, Y, X)`` on the FFT grid; the split variables ``z`` and
``b`` carry one leading component axis ``[d, B, C, Z, Y, X]`` with ``d = 0`` the x
difference, as the solver kernels' dual fields.  Differences are periodic on the grid;
an entry is penalised (kept) where it is a Neumann difference of the unknown: inside the
unknown's extent and not on its last slice along the difference's axis.
:class:`tvnumba.backends.array.ArrayOps` holds the same four operations in whole-array
code.  Sums are per work unit in float64, added in unit order.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..._config import helper, parallel_kernel
from .solver_kernels import n_units
from .tv_kernels import _unit_bounds


def _spacing(inv_spacing, dtype):
    """``(ihz, ihy, ihx)`` in ``dtype`` from the inverse spacings of the last ``nd`` axes."""
    t = np.dtype(dtype).type
    ih = [1.0, 1.0, 1.0]
    for k, h in enumerate(reversed(tuple(inv_spacing))):
        ih[2 - k] = float(h)
    return t(ih[0]), t(ih[1]), t(ih[2])


def admm_rhs(z, b, out, inv_spacing) -> None:
    """``out = D_perᵀ(z − b)``: ``Σ_d h_d ((z_d − b_d)(x − e_d) − (z_d − b_d)(x))``,
    periodic on the grid."""
    nd = z.shape[0]
    rows, nunits = n_units(out.shape)
    _rhs(z, b, out, *_spacing(inv_spacing, out.dtype), nd, rows, nunits)


@parallel_kernel
def _rhs(z, b, out, ihz, ihy, ihx, nd, rows, nunits):
    B, C, D, H, W = out.shape
    for unit in prange(nunits):
        bb, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        kb = k - 1 if k > 0 else D - 1
        for c in range(C):
            for i in range(i0, i1):
                o = out[bb, c, k, i]
                zr, br = z[0, bb, c, k, i], b[0, bb, c, k, i]
                o[0] = ((zr[W - 1] - br[W - 1]) - (zr[0] - br[0])) * ihx
                for j in range(1, W):
                    o[j] = ((zr[j - 1] - br[j - 1]) - (zr[j] - br[j])) * ihx
                for d in range(1, nd):
                    ib = (i - 1 if i > 0 else H - 1) if d == 1 else i
                    kk = k if d == 1 else kb
                    ih = ihy if d == 1 else ihz
                    zr, br = z[d, bb, c, k, i], b[d, bb, c, k, i]
                    zb, bb_ = z[d, bb, c, kk, ib], b[d, bb, c, kk, ib]
                    for j in range(W):
                        o[j] += ((zb[j] - bb_[j]) - (zr[j] - br[j])) * ih


def admm_shrink(u, z, b, alpha, t, extent, inv_spacing, iso) -> float:
    """``TV₁(u)`` on the kept differences (returned), then in place
    ``v = α D_per u + (1 − α) z + b``, ``z = prox_{t|·|}(v)`` on the kept entries (``v``
    on the free ones; isotropic: per pixel over the axes and channels) and ``b = v − z``.
    ``extent``: the unknown's size along the last ``nd`` axes."""
    nd = z.shape[0]
    dt = u.dtype.type
    ext = [u.shape[2], u.shape[3], u.shape[4]]
    for k, n in enumerate(reversed(tuple(extent))):
        ext[2 - k] = int(n)
    rows, nunits = n_units(u.shape)
    partial = np.empty(nunits)
    _shrink(u, z, b, dt(alpha), dt(t), ext[0], ext[1], ext[2], *_spacing(inv_spacing, u.dtype),
            nd, bool(iso), rows, nunits, partial)
    return float(partial.sum())


@helper
def _kept(d, k, i, ez, ey, ex):
    """How many leading entries of row ``(k, i)`` of component ``d`` are penalised."""
    if k >= ez or i >= ey:
        return 0
    if d == 0:
        return max(ex - 1, 0)
    if (d == 1 and i < ey - 1) or (d == 2 and k < ez - 1):
        return ex
    return 0


@parallel_kernel
def _shrink(u, z, b, alpha, t, ez, ey, ex, ihz, ihy, ihx, nd, iso, rows, nunits, partial):
    B, C, D, H, W = u.shape
    zero = alpha - alpha
    one = type(alpha)(1)
    keep_z = one - alpha
    for unit in prange(nunits):
        bb, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        kp = k + 1 if k + 1 < D else 0
        du = np.empty(W, u.dtype)
        magu = np.empty(W, u.dtype)
        magv = np.empty(W, u.dtype)
        acc = 0.0
        for i in range(i0, i1):
            ip = i + 1 if i + 1 < H else 0
            magu[:] = zero
            magv[:] = zero
            for c in range(C):
                row = u[bb, c, k, i]
                for d in range(nd):
                    if d == 0:
                        for j in range(W - 1):
                            du[j] = (row[j + 1] - row[j]) * ihx
                        du[W - 1] = (row[0] - row[W - 1]) * ihx
                    else:
                        nxt = u[bb, c, k, ip] if d == 1 else u[bb, c, kp, i]
                        ih = ihy if d == 1 else ihz
                        for j in range(W):
                            du[j] = (nxt[j] - row[j]) * ih
                    zr, br = z[d, bb, c, k, i], b[d, bb, c, k, i]
                    for j in range(W):  # v, kept in b until z is known
                        br[j] = alpha * du[j] + keep_z * zr[j] + br[j]
                    n = _kept(d, k, i, ez, ey, ex)
                    if iso:
                        for j in range(n):
                            magu[j] += du[j] * du[j]
                            magv[j] += br[j] * br[j]
                    else:
                        for j in range(n):
                            acc += np.float64(abs(du[j]))
                            v = br[j]
                            s = min(max(v, -t), t)
                            zr[j] = v - s
                            br[j] = s
                        _free(zr, br, n, zero)
            if not iso:
                continue
            for j in range(W):
                acc += np.float64(np.sqrt(magu[j]))
                # 1 − the shrinkage factor: v·min(t / |v|, 1) is what b keeps
                magv[j] = min(t / max(np.sqrt(magv[j]), t), one)
            for c in range(C):
                for d in range(nd):
                    zr, br = z[d, bb, c, k, i], b[d, bb, c, k, i]
                    n = _kept(d, k, i, ez, ey, ex)
                    for j in range(n):
                        v = br[j]
                        s = v * magv[j]
                        zr[j] = v - s
                        br[j] = s
                    _free(zr, br, n, zero)
        partial[unit] = acc


@helper
def _free(zr, br, n, zero):
    """The free entries ``[n, W)``: ``z = v`` (held in ``b``), ``b = 0``."""
    for j in range(n, zr.shape[0]):
        zr[j] = br[j]
        br[j] = zero


def admm_w_step(cu, w, bw, s_w, mf, alpha, rho, window) -> float:
    """The extended grid's ``w = C u`` split, in place: returns ``Σ (cu − f)²`` over the
    observed ``window`` (slices of the last axes; ``mf`` is ``f`` there, 0 elsewhere), then
    ``v = α cu + (1 − α) w + b_w``, ``w = (m f + ρ v) / (m + ρ)``, ``b_w = v − w`` and
    ``s_w = w − b_w``."""
    dt = cu.dtype.type
    lo, hi = [0, 0, 0], [cu.shape[2], cu.shape[3], cu.shape[4]]
    for k, s in enumerate(reversed(tuple(window))):
        lo[2 - k], hi[2 - k] = s.start, s.stop
    rows, nunits = n_units(cu.shape)
    partial = np.empty(nunits)
    _w_step(cu, w, bw, s_w, mf, dt(alpha), dt(rho), lo[0], hi[0], lo[1], hi[1], lo[2], hi[2],
            rows, nunits, partial)
    return float(partial.sum())


@parallel_kernel
def _w_step(cu, w, bw, s_w, mf, alpha, rho, z0, z1, y0, y1, x0, x1, rows, nunits, partial):
    B, C, D, H, W = cu.shape
    one = type(alpha)(1)
    keep_w = one - alpha
    inv = one / (one + rho)
    for unit in prange(nunits):
        bb, k, i0, i1 = _unit_bounds(unit, D, H, rows)
        acc = 0.0
        for c in range(C):
            for i in range(i0, i1):
                observed = z0 <= k < z1 and y0 <= i < y1
                lo, hi = (x0, x1) if observed else (0, 0)
                cr, wr, br, sr, fr = cu[bb, c, k, i], w[bb, c, k, i], bw[bb, c, k, i], \
                    s_w[bb, c, k, i], mf[bb, c, k, i]
                for j in range(lo, hi):
                    r = cr[j] - fr[j]
                    acc += np.float64(r) * np.float64(r)
                    v = alpha * cr[j] + keep_w * wr[j] + br[j]
                    wn = (fr[j] + rho * v) * inv
                    wr[j] = wn
                    br[j] = v - wn
                    sr[j] = wn + wn - v
                _w_free(cr, wr, br, sr, alpha, keep_w, 0, lo)
                _w_free(cr, wr, br, sr, alpha, keep_w, hi, W)
        partial[unit] = acc


@helper
def _w_free(cr, wr, br, sr, alpha, keep_w, lo, hi):
    """Unobserved entries: ``w = v``, ``b_w = 0``, ``s_w = v``."""
    zero = alpha - alpha
    for j in range(lo, hi):
        v = alpha * cr[j] + keep_w * wr[j] + br[j]
        wr[j] = v
        br[j] = zero
        sr[j] = v


def admm_spectrum(U, r_factor, u_data, H, S=None, HU=None, fhat=None, parseval=None) -> float:
    """The ``u``-step in the frequency domain, in place: ``U = r·U + u_data`` (periodic:
    returns ``Σ parseval·|H U − f̂|²``, the data misfit) or ``U = r·U + u_data·S`` and
    ``HU = H·U`` (extended grid; returns 0).  ``U``, ``S``, ``HU``, ``fhat`` and the
    periodic ``u_data`` are rfft arrays ``(..., M, n)``; ``r_factor``, ``H`` and the
    extended ``u_data`` the spectra ``(M, n)`` they broadcast from; ``parseval`` is ``(n,)``."""
    n = U.shape[-1]
    m = r_factor.size // n
    U2 = U.reshape(-1, n)
    r2 = r_factor.reshape(m, n)
    H2 = H.reshape(m, n)
    nunits = max(1, -(-U2.shape[0] // 16))
    partial = np.empty(nunits)
    if S is None:
        _spectrum_periodic(U2, r2, u_data.reshape(-1, n), H2, fhat.reshape(-1, n), parseval,
                           nunits, partial)
        return float(partial.sum())
    _spectrum_extend(U2, r2, u_data.reshape(m, n), H2, S.reshape(-1, n), HU.reshape(-1, n),
                     nunits)
    return 0.0


@parallel_kernel
def _spectrum_periodic(U, r, ud, H, fhat, pw, nunits, partial):
    R, n = U.shape
    m = r.shape[0]
    for unit in prange(nunits):
        acc = 0.0
        for row in range(unit * 16, min(R, unit * 16 + 16)):
            s = row % m
            Ur, rr, ur, Hr, fr = U[row], r[s], ud[row], H[s], fhat[row]
            for j in range(n):
                x = Ur[j] * rr[j] + ur[j]
                Ur[j] = x
                e = Hr[j] * x - fr[j]
                acc += np.float64(pw[j]) * (np.float64(e.real) ** 2 + np.float64(e.imag) ** 2)
        partial[unit] = acc


@parallel_kernel
def _spectrum_extend(U, r, ud, H, S, HU, nunits):
    R, n = U.shape
    m = r.shape[0]
    for unit in prange(nunits):
        for row in range(unit * 16, min(R, unit * 16 + 16)):
            s = row % m
            Ur, rr, ur, Hr, Sr, hr = U[row], r[s], ud[s], H[s], S[row], HU[row]
            for j in range(n):
                x = Ur[j] * rr[j] + ur[j] * Sr[j]
                Ur[j] = x
                hr[j] = Hr[j] * x
