"""Vector kernels of the iterative solvers (CG, L-BFGS, primal-dual) on flat
contiguous NumPy arrays.

They replace NumPy's BLAS-backed dot products: OpenBLAS's own thread pool
spinning next to Numba's made every solver step tens of times slower on a busy
2-core machine, and these keep all parallel work in one thread pool (and
float32 sums in float64).  Each fused kernel updates its outputs in place and
returns the scalars the caller needs next; :class:`tvnumba.backends.array.ArrayOps`
is the same interface in whole-array operations.

Sums are order-fixed: every reduction runs over chunks of :data:`CHUNK`
elements, one float64 partial per chunk, added in chunk order.  A ``prange``
reduction would combine per-thread partials whose extent the scheduler
chooses (TBB steals work dynamically), so the last bits of a solve changed
from run to run; chunked, they do not depend on the scheduler or on the number
of threads.  Elementwise updates are chunked the same way: a ``prange`` over
elements would let the scheduler place the split points, and the elements at a
split take the loop's scalar remainder (other instructions than the vector
body, e.g. no fused multiply-add): another last bit.
"""

from __future__ import annotations

import numpy as np
from numba import prange

from ..._config import helper, parallel_kernel
from . import admm_kernels, mask_kernels
from .tv_kernels import in_order

#: Elements per partial sum: small enough to load-balance 2-64 threads on
#: images, large enough that the partials cost nothing.
CHUNK = 8192


@helper
def _span(c, n):
    return c * CHUNK, min(n, (c + 1) * CHUNK)


@helper
def _n_chunks(n):
    return (n + CHUNK - 1) // CHUNK


@parallel_kernel
def _pair_sum(a, b, diff):
    """Σ (a - b)² if ``diff`` else Σ a·b, accumulated in float64."""
    n = a.shape[0]
    part = np.empty(_n_chunks(n))
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        sa, sb = a[lo:hi], b[lo:hi]
        acc = 0.0
        if diff:
            for t in range(sa.shape[0]):
                r = np.float64(sa[t]) - np.float64(sb[t])
                acc += r * r
        else:
            for t in range(sa.shape[0]):
                acc += np.float64(sa[t]) * np.float64(sb[t])
        part[c] = acc
    return in_order(part)


def dot(a, b) -> float:
    """Σ a·b accumulated in float64."""
    return _pair_sum(a, b, False)


def sumsq_diff(a, b) -> float:
    """Σ (a - b)² accumulated in float64."""
    return _pair_sum(a, b, True)


@parallel_kernel
def pcg_step(x, r, p, ap, minv, alpha):
    """x += α p; r -= α Ap.  Returns (r·r, r·M⁻¹r) in float64 (z = M⁻¹r is not
    stored: pcg_direction recomputes it, one array less to write and read)."""
    n = x.shape[0]
    part = np.empty((_n_chunks(n), 2))
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        sx, sr, sp, sap, sm = x[lo:hi], r[lo:hi], p[lo:hi], ap[lo:hi], minv[lo:hi]
        rr = 0.0
        rz = 0.0
        for t in range(sx.shape[0]):
            sx[t] += alpha * sp[t]
            rt = sr[t] - alpha * sap[t]
            sr[t] = rt
            rr += np.float64(rt) * np.float64(rt)
            rz += np.float64(rt) * np.float64(sm[t] * rt)
        part[c, 0] = rr
        part[c, 1] = rz
    return in_order(part[:, 0]), in_order(part[:, 1])


@parallel_kernel
def pcg_direction(p, r, minv, beta):
    """p = M⁻¹r + β p."""
    n = p.shape[0]
    for c in prange(_n_chunks(n)):
        lo, hi = _span(c, n)
        sp, sr, sm = p[lo:hi], r[lo:hi], minv[lo:hi]  # slices: indices >= 0, vectorised
        for t in range(sp.shape[0]):
            sp[t] = sm[t] * sr[t] + beta * sp[t]


@parallel_kernel
def _subtract(b, ax, r):
    """r = b - ax."""
    n = b.shape[0]
    for c in prange(_n_chunks(n)):
        lo, hi = _span(c, n)
        sb, sax, sr = b[lo:hi], ax[lo:hi], r[lo:hi]
        for t in range(sb.shape[0]):
            sr[t] = sb[t] - sax[t]


@parallel_kernel
def _residual_norms(r, minv):
    """(r·r, r·M⁻¹r) in float64."""
    n = r.shape[0]
    part = np.empty((_n_chunks(n), 2))
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        sr, sm = r[lo:hi], minv[lo:hi]
        rr = 0.0
        rz = 0.0
        for t in range(sr.shape[0]):
            rt = np.float64(sr[t])
            rr += rt * rt
            rz += rt * np.float64(sm[t] * sr[t])
        part[c, 0], part[c, 1] = rr, rz
    return in_order(part[:, 0]), in_order(part[:, 1])


def residual_init(b, ax, minv, r):
    """r = b - Ax.  Returns (r·r, r·M⁻¹r) in float64 (once per CG solve: two passes)."""
    _subtract(b, ax, r)
    return _residual_norms(r, minv)


@parallel_kernel
def smooth_objective_grad(u, f, gtv, weight, g):
    """g = (u - f) + weight·gtv, computed in float64 whatever the arrays' float
    types (``gtv`` may be ``g``: each element is read before it is written).
    Returns (½‖u - f‖², ‖g‖²) in float64, the latter of the values before
    their rounding to ``g``'s dtype."""
    n = u.shape[0]
    part = np.empty((_n_chunks(n), 2))
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        su, sf, sgtv, sg = u[lo:hi], f[lo:hi], gtv[lo:hi], g[lo:hi]
        fid = 0.0
        gg = 0.0
        for t in range(su.shape[0]):
            r = np.float64(su[t]) - np.float64(sf[t])
            gt = r + weight * np.float64(sgtv[t])
            sg[t] = gt
            fid += 0.5 * r * r
            gg += gt * gt
        part[c, 0] = fid
        part[c, 1] = gg
    return in_order(part[:, 0]), in_order(part[:, 1])


@parallel_kernel
def axpy_to(out, x, alpha, d):
    """out = x + α d."""
    n = out.shape[0]
    for c in prange(_n_chunks(n)):
        lo, hi = _span(c, n)
        so, sx, sd = out[lo:hi], x[lo:hi], d[lo:hi]
        for t in range(so.shape[0]):
            so[t] = sx[t] + alpha * sd[t]


@parallel_kernel
def axpy(y, alpha, x):
    """y += α x."""
    n = y.shape[0]
    for c in prange(_n_chunks(n)):
        lo, hi = _span(c, n)
        sy, sx = y[lo:hi], x[lo:hi]
        for t in range(sy.shape[0]):
            sy[t] += alpha * sx[t]


def axpy_norm(y, alpha, x) -> float:
    """y += α x; returns ‖y‖² (float64).  Two passes: only the generic data
    terms' L-BFGS gradient uses it (the identity's is fused)."""
    axpy(y, alpha, x)
    return _pair_sum(y, y, False)


@parallel_kernel
def lbfgs_pair(s, y, d, step, g_new, g):
    """s = step·d, y = g_new - g, rounded to ``s``'s and ``y``'s dtype.  Returns
    (s·y, y·y) of the stored values, in float64: ρ = 1/(s·y) computed from what
    the two-loop recursion will read keeps its inverse Hessian positive
    definite whatever the storage precision."""
    n = s.shape[0]
    part = np.empty((_n_chunks(n), 2))
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        ss, sy_, sd = s[lo:hi], y[lo:hi], d[lo:hi]
        sgn, sg = g_new[lo:hi], g[lo:hi]
        sy = 0.0
        yy = 0.0
        for t in range(ss.shape[0]):
            ss[t] = step * np.float64(sd[t])
            sy_[t] = np.float64(sgn[t]) - np.float64(sg[t])
            st = np.float64(ss[t])  # the stored (rounded) values
            yt = np.float64(sy_[t])
            sy += st * yt
            yy += yt * yt
        part[c, 0] = sy
        part[c, 1] = yy
    return in_order(part[:, 0]), in_order(part[:, 1])


@helper
def _dot_rows(A, i, q, part):
    """Σ A[i]·q, order-fixed (partials in ``part``)."""
    n = q.shape[0]
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        sa, sq = A[i, lo:hi], q[lo:hi]
        acc = 0.0
        for t in range(sq.shape[0]):
            acc += np.float64(sa[t]) * np.float64(sq[t])
        part[c] = acc
    return in_order(part)


@parallel_kernel
def lbfgs_direction(g, S, Y, rho, order, gamma, q, alpha):
    """q = -H g by the two-loop recursion over the pairs ``order`` (oldest
    first); returns g·q (negative for a descent direction).  Any float types
    (L-BFGS keeps the pairs in float32); dot products in float64."""
    n = g.shape[0]
    m = _n_chunks(n)
    part = np.empty(m)
    for c in prange(m):
        lo, hi = _span(c, n)
        sq, sg = q[lo:hi], g[lo:hi]
        for t in range(sq.shape[0]):
            sq[t] = sg[t]
    for ii in range(order.shape[0] - 1, -1, -1):
        i = order[ii]
        a = rho[i] * _dot_rows(S, i, q, part)
        alpha[i] = a
        for c in prange(m):
            lo, hi = _span(c, n)
            sq, sy = q[lo:hi], Y[i, lo:hi]
            for t in range(sq.shape[0]):
                sq[t] -= a * sy[t]
    for c in prange(m):
        lo, hi = _span(c, n)
        sq = q[lo:hi]
        for t in range(sq.shape[0]):
            sq[t] *= gamma
    for ii in range(order.shape[0]):
        i = order[ii]
        cc = alpha[i] - rho[i] * _dot_rows(Y, i, q, part)
        for c in prange(m):
            lo, hi = _span(c, n)
            sq, ss = q[lo:hi], S[i, lo:hi]
            for t in range(sq.shape[0]):
                sq[t] += cc * ss[t]
    for c in prange(m):
        lo, hi = _span(c, n)
        sq = q[lo:hi]
        for t in range(sq.shape[0]):
            sq[t] = -sq[t]
    for c in prange(part.shape[0]):
        lo, hi = _span(c, n)
        sg, sq = g[lo:hi], q[lo:hi]
        acc = 0.0
        for t in range(sg.shape[0]):
            acc += np.float64(sg[t]) * np.float64(sq[t])
        part[c] = acc
    return in_order(part)


@parallel_kernel
def extrapolate(u, un, ub, theta, om):
    """ub = un + θ(un - u); u = un, or with ``om ≠ 1`` the over-relaxed
    u = u + ω(un - u) (the primal-dual's extrapolation and relaxation)."""
    n = u.shape[0]
    relax = om != type(om)(1)
    for c in prange(_n_chunks(n)):
        lo, hi = _span(c, n)
        su, sn, sb = u[lo:hi], un[lo:hi], ub[lo:hi]
        for t in range(su.shape[0]):
            v = sn[t]
            uo = su[t]
            sb[t] = v + theta * (v - uo)
            su[t] = uo + om * (v - uo) if relax else v


@parallel_kernel
def kl_dual_step(r, rt, z, y, b, b_step, sigma, om):
    """``rt = prox_{σ KL*}(r + σ z)`` of the Poisson loss, then ``r ← r + ω (rt − r)``.

    ``rt = ½(e + √(e² + 4σy))`` with ``e = r − σ(z + b)``, written without cancellation
    for ``e < 0`` (``2σy / (√(e² + 4σy) − e)``).  ``b`` is the background: an array
    like ``r`` (``b_step = 1``) or one element (``b_step = 0``).
    """
    n = r.shape[0]
    two = type(om)(2)
    half = type(om)(0.5)
    for c in prange(_n_chunks(n)):
        lo, hi = _span(c, n)
        for t in range(lo, hi):
            st = sigma[t]
            e = r[t] - st * (z[t] + b[t * b_step])
            sy = two * st * y[t]
            s = np.sqrt(e * e + two * sy)
            v = sy / (s - e) if e < 0 else half * (s + e)
            rt[t] = v
            r[t] += om * (v - r[t])


# The masked problem's preparation (on canonical arrays) belongs to the same interface.
hole_bounds = mask_kernels.hole_bounds
pull_push_fill = mask_kernels.pull_push_fill

# So do the ADMM-FFT's elementwise stages.
admm_rhs = admm_kernels.admm_rhs
admm_shrink = admm_kernels.admm_shrink
admm_w_step = admm_kernels.admm_w_step
admm_spectrum = admm_kernels.admm_spectrum
