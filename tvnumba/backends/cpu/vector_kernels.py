"""Vector kernels of the iterative solvers (CG, L-BFGS, primal-dual) on flat
contiguous NumPy arrays.

They replace NumPy's BLAS-backed dot products: OpenBLAS's own thread pool
spinning next to Numba's made every solver step tens of times slower on a busy
2-core machine, and these keep all parallel work in one thread pool (and
float32 sums in float64).  Each fused kernel updates its outputs in place and
returns the scalars the caller needs next; :class:`tvnumba.backends.array.ArrayOps`
is the same interface in whole-array operations.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..._threads import serialised
from .tv_kernels import FASTMATH

JIT = dict(cache=True, fastmath=FASTMATH, error_model="numpy", parallel=True)


def _kernel(func):
    # Launched from Python only: the wrapper keeps two threads from launching at once
    # under the workqueue layer (see tvnumba._threads).
    return serialised(njit(**JIT)(func))



@_kernel
def dot(a, b):
    """Σ a·b accumulated in float64."""
    acc = 0.0
    for t in prange(a.shape[0]):
        acc += np.float64(a[t]) * np.float64(b[t])
    return acc


@_kernel
def sumsq_diff(a, b):
    """Σ (a - b)² accumulated in float64."""
    acc = 0.0
    for t in prange(a.shape[0]):
        r = np.float64(a[t]) - np.float64(b[t])
        acc += r * r
    return acc


@_kernel
def pcg_step(x, r, p, ap, minv, alpha):
    """x += α p; r -= α Ap.  Returns (r·r, r·M⁻¹r) in float64 (z = M⁻¹r is not
    stored: pcg_direction recomputes it, one array less to write and read)."""
    rr = 0.0
    rz = 0.0
    for t in prange(x.shape[0]):
        x[t] += alpha * p[t]
        rt = r[t] - alpha * ap[t]
        r[t] = rt
        rr += np.float64(rt) * np.float64(rt)
        rz += np.float64(rt) * np.float64(minv[t] * rt)
    return rr, rz


@_kernel
def pcg_direction(p, r, minv, beta):
    """p = M⁻¹r + β p."""
    for t in prange(p.shape[0]):
        p[t] = minv[t] * r[t] + beta * p[t]


@_kernel
def residual_init(b, ax, minv, r):
    """r = b - Ax.  Returns (r·r, r·M⁻¹r) in float64."""
    rr = 0.0
    rz = 0.0
    for t in prange(b.shape[0]):
        rt = b[t] - ax[t]
        r[t] = rt
        rr += np.float64(rt) * np.float64(rt)
        rz += np.float64(rt) * np.float64(minv[t] * rt)
    return rr, rz


@_kernel
def smooth_objective_grad(u, f, gtv, weight, g):
    """g = (u - f) + weight·gtv.  Returns (½‖u - f‖², ‖g‖²) in float64."""
    fid = 0.0
    gg = 0.0
    for t in prange(u.shape[0]):
        r = u[t] - f[t]
        gt = r + weight * gtv[t]
        g[t] = gt
        fid += 0.5 * r * r
        gg += gt * gt
    return fid, gg


@_kernel
def axpy_to(out, x, alpha, d):
    """out = x + α d; returns Σ d² (float64)."""
    acc = 0.0
    for t in prange(out.shape[0]):
        out[t] = x[t] + alpha * d[t]
        acc += d[t] * d[t]
    return acc


@_kernel
def lbfgs_pair(s, y, u_new, u, g_new, g):
    """s = u_new - u, y = g_new - g.  Returns (s·y, y·y)."""
    sy = 0.0
    yy = 0.0
    for t in prange(s.shape[0]):
        st = u_new[t] - u[t]
        yt = g_new[t] - g[t]
        s[t] = st
        y[t] = yt
        sy += st * yt
        yy += yt * yt
    return sy, yy


@_kernel
def lbfgs_direction(g, S, Y, rho, order, gamma, q, alpha):
    """q = -H g by the two-loop recursion over the pairs ``order`` (oldest
    first); returns g·q (negative for a descent direction)."""
    n = g.shape[0]
    for t in prange(n):
        q[t] = g[t]
    for ii in range(order.shape[0] - 1, -1, -1):
        i = order[ii]
        a = 0.0
        for t in prange(n):
            a += S[i, t] * q[t]
        a *= rho[i]
        alpha[i] = a
        for t in prange(n):
            q[t] -= a * Y[i, t]
    for t in prange(n):
        q[t] *= gamma
    for ii in range(order.shape[0]):
        i = order[ii]
        bt = 0.0
        for t in prange(n):
            bt += Y[i, t] * q[t]
        c = alpha[i] - rho[i] * bt
        for t in prange(n):
            q[t] += c * S[i, t]
    gq = 0.0
    for t in prange(n):
        q[t] = -q[t]
        gq += g[t] * q[t]
    return gq


@_kernel
def axpy_norm(y, alpha, x):
    """y += α x; returns ‖y‖² (float64)."""
    acc = 0.0
    for t in prange(y.shape[0]):
        yt = y[t] + alpha * x[t]
        y[t] = yt
        acc += np.float64(yt) * np.float64(yt)
    return acc


@_kernel
def extrapolate(u, un, ub, theta):
    """ub = un + θ(un - u); u = un (the primal-dual over-relaxation)."""
    for t in prange(u.shape[0]):
        v = un[t]
        ub[t] = v + theta * (v - u[t])
        u[t] = v
