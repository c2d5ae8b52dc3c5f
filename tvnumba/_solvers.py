"""Solver drivers behind :func:`tvnumba.restoration.denoise_tv_beta`.

Every driver minimises ``F(u) = ½‖u − f‖² + weight · TV_β(u)`` and works on
arrays already validated and laid out by the restoration layer:

* :func:`rof_cp` -- β = 1 without smoothing: Chambolle–Pock primal–dual with
  the strong-convexity acceleration (CP 2011, Algorithm 2, γ = 1), two fused
  Numba passes per iteration on the canonical ``(B, C, z, y, x)`` layout, and
  a duality-gap stopping rule.
* :func:`rof_cp_xp` -- the same iteration with whole-array operations of the
  array's own module (NumPy or CuPy): for more than three spatial axes and for
  GPU arrays.
* :func:`lbfgs` -- convex smooth cases (β > 1, or β = 1 with smoothing):
  SciPy's L-BFGS-B on the fused ``tv_value_and_grad`` kernel, stopped by the
  strong-convexity certificate ``F(u) − F* ≤ ½‖∇F(u)‖²``.
* :func:`irls_mm` -- 0 < β < 1 (non-convex) and any β ≤ 2 with smoothing:
  majorize–minimize (iteratively reweighted least squares), each quadratic
  majorizer decreased by Jacobi-preconditioned conjugate gradients started at
  the current iterate, so ``F`` never increases.
* :func:`tikhonov_dct` -- β = 2: the problem is quadratic,
  ``(I + 2·weight·DᵀD) u = f``, and DᵀD with Neumann boundaries is diagonal in
  the DCT-II basis: one forward and one inverse transform give the exact
  minimiser.

Each driver returns ``(u, Result)``; ``Result.gap`` is the stopping quantity
(see :class:`tvnumba.restoration.DenoiseInfo`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _validate as V


@dataclass
class Result:
    iterations: int
    objective: float
    gap: float
    converged: bool
    method: str


def _call_back(callback, it, u, objective, view):
    if callback is None:
        return False
    return bool(callback(it, view(u), objective))


# --------------------------------------------------------------------- β = 1: CP
def _cp_steps(inv_spacing, nd):
    """Initial (τ, σ) with τσ‖D‖² ≤ 1 (‖D‖² ≤ 4 Σ 1/h²), primal-heavy ratio."""
    lip = math.sqrt(4.0 * sum(h * h for h in inv_spacing[-nd:]))
    ratio = 5.0  # τ/σ = ratio²/…: insensitive in [3, 30] on natural images
    return ratio / lip, 1.0 / (ratio * lip)


def rof_cp(f, weight, *, nd, inv_spacing, isotropic, eps, max_iter, check_every=5,
           callback=None, view=None):
    """Accelerated Chambolle–Pock for ROF on a canonical (B, C, D, H, W) array.

    Stops when the duality gap ``P(u) − D(p)`` is at most ``eps · D(p)``,
    which bounds ``(P(u) − P*) / P*`` by ``eps``.
    """
    from . import _cpu_rof as K

    T = f.dtype.type
    f = np.ascontiguousarray(f)
    u = f.copy()
    ub = f.copy()
    p = np.zeros((nd,) + f.shape, f.dtype)
    ihz, ihy, ihx = (T(h) for h in inv_spacing)
    rows, nunits = K.n_units(f.shape)
    partial = np.zeros(nunits, np.float64)
    fid = np.empty(nunits, np.float64)
    tv1 = np.empty(nunits, np.float64)
    f2 = _sumsq(f)
    tau, sigma = _cp_steps(inv_spacing, nd)
    w = T(weight)
    it = 0
    primal = gap = math.inf
    converged = False
    if weight == 0:
        return u, Result(0, 0.0, 0.0, True, "cp")
    while it < max_iter:
        it += 1
        theta = 1.0 / math.sqrt(1.0 + 2.0 * tau)
        check = it % check_every == 0 or it == max_iter
        K.cp_dual_step(ub, p, T(sigma), w, ihz, ihy, ihx, nd, isotropic, rows, nunits)
        K.cp_primal_step(u, ub, f, p, T(tau), T(theta), ihz, ihy, ihx, nd, rows, nunits,
                         check, partial)
        tau *= theta
        sigma /= theta
        if check:
            dual = 0.5 * f2 - 0.5 * float(partial.sum())
            K.rof_primal(u, f, float(ihz), float(ihy), float(ihx), nd, isotropic, rows,
                         nunits, fid, tv1)
            primal = float(fid.sum()) + weight * float(tv1.sum())
            gap = (primal - dual) / dual if dual > 0 else (0.0 if primal <= 0 else math.inf)
            if gap <= eps:
                converged = True
            if _call_back(callback, it, u, primal, view) or converged:
                break
    return u, Result(it, primal, max(gap, 0.0), converged, "cp")


def _sumsq(a) -> float:
    """Σ a² accumulated in float64 (NumPy: a Numba reduction, no BLAS)."""
    xp = V._xp(a)
    if xp is np:
        from . import _cpu_rof as K

        flat = np.ascontiguousarray(a).reshape(-1)
        return float(K.dot(flat, flat))
    flat = a.reshape(-1).astype(xp.float64)
    return float(xp.dot(flat, flat))


def _fwd(xp, u, axis, ih):
    from ._generic import _forward_diff

    return _forward_diff(xp, u, axis, ih)


def _adj(xp, v, axis, ih):
    from ._generic import _adjoint_diff

    return _adjoint_diff(xp, v, axis, ih)


def rof_cp_xp(f, weight, *, spatial_axes, inv_spacing, isotropic, eps, max_iter,
              check_every=5, callback=None, view=None):
    """:func:`rof_cp` with whole-array operations (NumPy or CuPy, any n-D).

    ``f`` is ``(B, C, n0, ..., nk)`` with ``spatial_axes`` the trailing axes;
    ``inv_spacing`` holds one 1/h per spatial axis.
    """
    xp = V._xp(f)
    T = f.dtype.type
    nd = len(spatial_axes)
    u = f.copy()
    ub = f.copy()
    p = [xp.zeros_like(f) for _ in range(nd)]
    f2 = _sumsq(f)
    tau, sigma = _cp_steps(tuple(inv_spacing), nd)
    w = T(weight)
    it = 0
    primal = gap = math.inf
    converged = False
    if weight == 0:
        return u, Result(0, 0.0, 0.0, True, "cp")
    while it < max_iter:
        it += 1
        theta = 1.0 / math.sqrt(1.0 + 2.0 * tau)
        for d, (ax, ih) in enumerate(zip(spatial_axes, inv_spacing)):
            p[d] += T(sigma) * _fwd(xp, ub, ax, T(ih))
        p = _project(xp, p, w, isotropic)
        dt = sum(_adj(xp, p[d], ax, T(ih)) for d, (ax, ih) in
                 enumerate(zip(spatial_axes, inv_spacing)))
        un = (u + T(tau) * (f - dt)) * T(1.0 / (1.0 + tau))
        ub = un + T(theta) * (un - u)
        u = un
        tau *= theta
        sigma /= theta
        if it % check_every == 0 or it == max_iter:
            dual = 0.5 * f2 - 0.5 * _sumsq(f - dt)
            primal = 0.5 * _sumsq(u - f) + weight * _tv1_xp(xp, u, spatial_axes,
                                                             inv_spacing, isotropic)
            gap = (primal - dual) / dual if dual > 0 else (0.0 if primal <= 0 else math.inf)
            converged = gap <= eps
            if _call_back(callback, it, u, primal, view) or converged:
                break
    return u, Result(it, primal, max(gap, 0.0), converged, "cp")


def _project(xp, p, w, isotropic):
    if not isotropic:
        return [xp.clip(q, -w, w) for q in p]
    m = sum((q * q).sum(axis=1, keepdims=True) for q in p)  # couple channels (axis 1)
    scale = w / xp.maximum(xp.sqrt(m), w)
    return [q * scale for q in p]


def _tv1_xp(xp, u, spatial_axes, inv_spacing, isotropic):
    diffs = [_fwd(xp, u, ax, u.dtype.type(ih)) for ax, ih in zip(spatial_axes, inv_spacing)]
    if isotropic:
        m = sum((d.astype(xp.float64) ** 2).sum(axis=1) for d in diffs)
        return float(xp.sqrt(m).sum())
    return float(sum(xp.abs(d.astype(xp.float64)).sum() for d in diffs))


# --------------------------------------------------------------------- smooth: L-BFGS
def lbfgs(f, weight, plan, *, eps, max_iter, callback=None, memory=8):
    """L-BFGS on F, in float64 on the image's own layout.

    ``plan`` is a float64 :class:`~tvnumba._validate.Plan` for ``f``'s shape.
    Two-loop recursion with ``memory`` pairs, Armijo backtracking from the
    unit step (pairs with ``sᵀy ≤ 0`` are skipped), all vector work in Numba
    kernels.  Stops when ``½‖∇F‖² ≤ eps · (F − ½‖∇F‖²)``: for convex TV
    (β ≥ 1) F is 1-strongly convex, so ``F − F* ≤ ½‖∇F‖²`` and the relative
    objective error is at most ``eps``.
    """
    from . import _cpu_rof as K
    from .tv import run_plan

    f64 = np.ascontiguousarray(f, dtype=np.float64)
    shape = f64.shape
    n = f64.size
    ff = f64.reshape(-1)
    gtv = np.empty(shape, np.float64)
    gtvf = gtv.reshape(-1)

    def evaluate(u, g):
        """F(u), writing ∇F into g; returns (F, ‖∇F‖²)."""
        vals, _ = run_plan(u.reshape(shape), plan, True, gtv)
        fid, gg = K.smooth_objective_grad(u, ff, gtvf, weight, g)
        return fid + weight * float(np.sum(vals)), gg

    def certificate(F, gg):
        lower = F - 0.5 * gg
        return 0.5 * gg / lower if lower > 0 else (0.0 if gg == 0 else math.inf)

    S_ = np.empty((memory, n))
    Y_ = np.empty((memory, n))
    rho = np.zeros(memory)
    alpha = np.zeros(memory)
    u = ff.copy()
    g = np.empty(n)
    u_new = np.empty(n)
    g_new = np.empty(n)
    d = np.empty(n)
    F, gg = evaluate(u, g)
    gap = certificate(F, gg)
    pairs: list[int] = []
    gamma = 1.0
    it = 0
    nxt = 0
    while gap > eps and it < max_iter:
        it += 1
        order = np.asarray(pairs, dtype=np.int64)
        gd = K.lbfgs_direction(g, S_, Y_, rho, order, gamma, d, alpha)
        if not gd < 0:  # not a descent direction: restart from -g
            pairs.clear()
            gd = K.lbfgs_direction(g, S_, Y_, rho, order[:0], 1.0, d, alpha)
        t = 1.0
        for _ in range(40):
            K.axpy_to(u_new, u, t, d)
            F_new, gg_new = evaluate(u_new, g_new)
            if F_new <= F + 1e-4 * t * gd:
                break
            t *= 0.5
        else:
            break  # no decrease possible at this precision
        sy, yy = K.lbfgs_pair(S_[nxt], Y_[nxt], u_new, u, g_new, g)
        if sy > 1e-12 * yy and yy > 0:
            rho[nxt] = 1.0 / sy
            gamma = sy / yy
            if nxt in pairs:
                pairs.remove(nxt)
            pairs.append(nxt)
            nxt = (nxt + 1) % memory
        elif nxt in pairs:  # its storage was overwritten by the rejected pair
            pairs.remove(nxt)
        u, u_new = u_new, u
        g, g_new = g_new, g
        F, gg = F_new, gg_new
        gap = certificate(F, gg)
        if callback is not None and callback(it, u.reshape(shape), F):
            break
    return u.reshape(shape), Result(it, F, gap, gap <= eps, "lbfgs")


# --------------------------------------------------------------------- β < 1: IRLS / MM
def irls_mm(f, weight, beta, smoothing, *, nd, inv_spacing, isotropic, eps, max_iter,
            cg_iter=30, cg_tol=1e-2, callback=None, view=None, history=None):
    """Majorize–minimize for ``½‖u − f‖² + weight Σ (m + s²)^(β/2)`` (β ≤ 2).

    ``t ↦ (t + s²)^(β/2)`` is concave for β ≤ 2, so its tangent at the current
    squared magnitudes majorizes it: each outer step decreases the quadratic
    ``½‖u − f‖² + Σ a |Du|²/2`` (``a = weight·β (m₀ + s²)^(β/2 − 1)``) by
    preconditioned CG from the current iterate, and the objective cannot
    increase.  Stops when the relative decrease of F over one outer step is
    at most ``eps``; with β < 1 the limit is a local minimiser.
    """
    from . import _cpu_rof as K

    T = f.dtype.type
    f = np.ascontiguousarray(f)
    u = f.copy()
    a = np.empty((nd,) + f.shape, f.dtype)
    ihz, ihy, ihx = (T(h) for h in inv_spacing)
    rows, nunits = K.n_units(f.shape)
    tvp = np.empty(nunits, np.float64)
    s2 = T(smoothing * smoothing)

    def weights_and_value(x):
        K.irls_weights(x, a, T(weight * beta), s2, T(beta / 2 - 1), ihz, ihy, ihx, nd,
                       isotropic, rows, nunits, tvp)
        return 0.5 * K.sumsq_diff(x.reshape(-1), f.reshape(-1)) + weight * float(tvp.sum())

    def apply(x, out):
        K.irls_apply(x, a, out, ihz, ihy, ihx, nd, rows, nunits)
        return out

    F = weights_and_value(u)
    if history is not None:
        history.append(F)
    it = 0
    rel = math.inf
    converged = False
    ih2 = (float(ihx) ** 2, float(ihy) ** 2, float(ihz) ** 2)
    while it < max_iter:
        it += 1
        diag = _irls_diag(a, nd, ih2)
        u = _pcg(apply, f, u, 1.0 / diag, cg_iter, cg_tol)
        F_new = weights_and_value(u)
        if history is not None:
            history.append(F_new)
        rel = (F - F_new) / max(abs(F_new), np.finfo(np.float64).tiny)
        F = F_new
        converged = rel <= eps
        if _call_back(callback, it, u, F, view) or converged:
            break
    return u, Result(it, F, max(rel, 0.0), converged, "mm")


def _irls_diag(a, nd, ih2):
    """Diagonal of ``I + Dᵀ diag(a) D`` (a is zero on every last slice)."""
    diag = np.ones(a.shape[1:], a.dtype)
    for d in range(nd):
        axis = 4 - d  # component d differs along canonical axis 4 - d
        ad = a[d] * a.dtype.type(ih2[d])
        diag += ad
        lo = [slice(None)] * 5
        hi = [slice(None)] * 5
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        diag[tuple(hi)] += ad[tuple(lo)]
    return diag


def _pcg(apply, b, x, minv, max_iter, tol):
    """Preconditioned CG on A x = b from ``x`` (A symmetric positive definite).

    Each CG iterate minimises the quadratic over a growing affine subspace
    through ``x``, so the quadratic never increases.
    """
    from . import _cpu_rof as K

    T = x.dtype.type
    x = x.copy()
    ap = np.empty_like(x)
    r = np.empty_like(x)
    z = np.empty_like(x)
    xf, rf, zf, apf = (a.reshape(-1) for a in (x, r, z, ap))
    bf, mf = b.reshape(-1), minv.reshape(-1)
    apply(x, ap)
    rr, rz = K.residual_init(bf, apf, mf, rf, zf)
    r0 = math.sqrt(rr)
    if r0 == 0:
        return x
    p = z.copy()
    pf = p.reshape(-1)
    for _ in range(max_iter):
        apply(p, ap)
        pap = K.dot(pf, apf)
        if pap <= 0:
            break
        alpha = rz / pap
        rr, rz_new = K.pcg_step(xf, rf, pf, apf, zf, mf, T(alpha))
        if math.sqrt(rr) <= tol * r0:
            break
        K.pcg_direction(pf, zf, T(rz_new / rz))
        rz = rz_new
    return x


# --------------------------------------------------------------------- β = 2: DCT
def tikhonov_dct(f, weight, *, spatial_axes, spacing):
    """Exact minimiser of ``½‖u − f‖² + weight Σ |Du|²`` by a DCT-II solve."""
    xp = V._xp(f)
    if xp is np:
        from scipy import fft as sfft
    else:  # pragma: no cover - GPU only
        from cupyx.scipy import fft as sfft
    F = sfft.dctn(f, type=2, norm="ortho", axes=spatial_axes)
    denom = None
    for ax, h in zip(spatial_axes, spacing):
        n = f.shape[ax]
        k = xp.arange(n, dtype=xp.float64)
        lam = (4.0 / (h * h)) * xp.sin(np.pi * k / (2 * n)) ** 2
        shape = [1] * f.ndim
        shape[ax] = n
        lam = lam.reshape(shape)
        denom = lam if denom is None else denom + lam
    denom = (1.0 + 2.0 * weight * denom).astype(f.dtype)
    return sfft.idctn(F / denom, type=2, norm="ortho", axes=spatial_axes).astype(f.dtype)
