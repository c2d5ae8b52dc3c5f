"""Solver drivers behind :func:`tvnumba.restoration.denoise_tv_beta`.

Every driver minimises ``F(u) = ½‖u − f‖² + weight · TV_β(u)`` and works on
arrays already validated and laid out by the restoration layer:

* :func:`rof_cp` -- β = 1 without smoothing: Chambolle–Pock primal–dual with
  the strong-convexity acceleration (CP 2011, Algorithm 2, γ = 1) and a
  duality-gap stopping rule; the iterates live in :class:`CPNumba` (two fused
  Numba passes per iteration on the canonical ``(B, C, z, y, x)`` layout),
  :class:`tvnumba._cuda_rof.CPCuda` (the same two passes as CUDA kernels, GPU
  arrays) or :class:`CPArray` (whole-array NumPy/CuPy, > 3 spatial axes).
* :func:`lbfgs` -- convex smooth cases (β > 1, or β = 1 with smoothing):
  L-BFGS on the fused ``tv_value_and_grad`` kernel, stopped by the
  strong-convexity certificate ``F(u) − F* ≤ ½‖∇F(u)‖²``.
* :func:`irls_mm` -- 0 < β < 1 (non-convex) and any β ≤ 2 with smoothing:
  majorize–minimize (iteratively reweighted least squares), each quadratic
  majorizer decreased by Jacobi-preconditioned conjugate gradients started at
  the current iterate (or a safeguarded extrapolation), so ``F`` never
  increases.  Its operators come from :class:`MMNumba` (Numba kernels) or
  :class:`MMArray` (whole-array NumPy/CuPy).
* :func:`tikhonov_dct` -- β = 2: the problem is quadratic,
  ``(I + 2·weight·DᵀD) u = f``, and DᵀD with Neumann boundaries is diagonal in
  the DCT-II basis: one forward and one inverse transform give the exact
  minimiser.

L-BFGS and CG do their vector work through :mod:`tvnumba._vector`: fused
Numba kernels for NumPy arrays, whole-array operations of the array's module
for CuPy (and > 3 spatial axes), so GPU arrays stay on the GPU.

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


#: Convergence checks of :func:`rof_cp` without a 1 % better gap after which
#: it gives up (250 iterations at the default check interval).
CP_STALL_CHECKS = 50


def rof_cp(problem, weight, *, eps, max_iter, check_every=5, callback=None, view=None):
    """Accelerated Chambolle–Pock for ROF; ``problem`` holds the iterates
    (:class:`CPNumba`, :class:`CPArray` or :class:`tvnumba._cuda_rof.CPCuda`).

    Stops when the duality gap ``P(u) − D(p)`` is at most ``eps · D(p)``,
    which bounds ``(P(u) − P*) / P*`` by ``eps``.  Gives up (not converged)
    when the smallest gap seen has not improved by 1 % over
    :data:`CP_STALL_CHECKS` checks: rounding (float32 data, eps ≲ 1e-7)
    stops the gap there, and the rest of ``max_iter`` would be wasted.
    """
    f2 = problem.sumsq_f()
    floor = 0.5 * f2 * float(np.finfo(problem.T).eps)
    tau, sigma = _cp_steps(problem.inv_spacing, problem.nd)
    it = 0
    primal = gap = math.inf
    converged = False
    best, since_best = math.inf, 0
    if weight == 0:
        return problem.u, Result(0, 0.0, 0.0, True, "cp")
    while it < max_iter and since_best < CP_STALL_CHECKS:
        it += 1
        theta = 1.0 / math.sqrt(1.0 + 2.0 * tau)
        check = it % check_every == 0 or it == max_iter
        problem.dual_step(sigma)
        residual = problem.primal_step(tau, theta, check)
        tau *= theta
        sigma /= theta
        if check:
            dual = 0.5 * f2 - 0.5 * residual
            primal = problem.primal_objective()
            # P* >= 0 can be 0 (a constant image): the gap is relative to the dual,
            # floored at the rounding level of the data term.
            gap = max(primal - dual, 0.0) / max(dual, floor, np.finfo(np.float64).tiny)
            converged = gap <= eps
            if gap < 0.99 * best:
                best, since_best = gap, 0
            else:
                since_best += 1
            if _call_back(callback, it, problem.u, primal, view) or converged:
                break
    return problem.u, Result(it, primal, max(gap, 0.0), converged, "cp")


class CPNumba:
    """ROF primal–dual iterates on a canonical ``(B, C, z, y, x)`` NumPy array (one
    to three spatial axes): two fused Numba passes per iteration (``_cpu_rof``).

    ``dual_step``: ``p ← proj_{|p| ≤ w}(p + σ D ū)``; ``primal_step``:
    ``u' = (u − τ Dᵀp + τ f)/(1 + τ)``, ``ū = u' + θ(u' − u)``, returning
    ``‖f − Dᵀp‖²`` (the dual objective's term) when asked.
    """

    def __init__(self, f, weight, *, nd, inv_spacing, isotropic):
        from . import _cpu_rof as K

        self.K = K
        T = f.dtype.type
        self.f = np.ascontiguousarray(f)
        self.u = self.f.copy()
        self.ub = self.f.copy()
        self.p = np.zeros((nd,) + f.shape, f.dtype)
        self.nd, self.iso, self.weight, self.T = nd, isotropic, weight, T
        self.inv_spacing = tuple(inv_spacing)
        self.ih = tuple(T(h) for h in inv_spacing)  # (z, y, x)
        self.rows, self.nunits = K.n_units(f.shape)
        self.partial = np.zeros(self.nunits, np.float64)
        self.partial2 = np.empty(self.nunits, np.float64)

    def sumsq_f(self) -> float:
        return _sumsq(self.f)

    def dual_step(self, sigma):
        self.K.cp_dual_step(self.ub, self.p, self.T(sigma), self.T(self.weight), *self.ih,
                            self.nd, self.iso, self.rows, self.nunits)

    def primal_step(self, tau, theta, want_residual) -> float:
        self.K.cp_primal_step(self.u, self.ub, self.f, self.p, self.T(tau), self.T(theta),
                              *self.ih, self.nd, self.rows, self.nunits, want_residual,
                              self.partial)
        return float(self.partial.sum()) if want_residual else 0.0

    def primal_objective(self) -> float:
        fid, tv1 = self.partial, self.partial2
        self.K.rof_primal(self.u, self.f, *(float(h) for h in self.ih), self.nd, self.iso,
                          self.rows, self.nunits, fid, tv1)
        return float(fid.sum()) + self.weight * float(tv1.sum())


class CPArray:
    """:class:`CPNumba` in whole-array operations (NumPy or CuPy, any number of
    spatial axes) on a ``(B, C, n0, ..., nk)`` array whose trailing axes
    ``spatial_axes`` carry the differences (one 1/h each in ``inv_spacing``)."""

    def __init__(self, f, weight, *, spatial_axes, inv_spacing, isotropic):
        xp = V._xp(f)
        T = f.dtype.type
        self.xp, self.f, self.T = xp, f, T
        self.u = f.copy()
        self.ub = f.copy()
        self.axes = tuple(spatial_axes)
        self.nd = len(self.axes)
        self.inv_spacing = tuple(inv_spacing)
        self.ih = tuple(T(h) for h in inv_spacing)
        self.p = [xp.zeros_like(f) for _ in self.axes]
        self.iso, self.weight = isotropic, weight

    def sumsq_f(self) -> float:
        return _sumsq(self.f)

    def dual_step(self, sigma):
        xp, T = self.xp, self.T
        for q, ax, ih in zip(self.p, self.axes, self.ih):
            q += T(sigma) * _fwd(xp, self.ub, ax, ih)
        self.p = _project(xp, self.p, T(self.weight), self.iso)

    def primal_step(self, tau, theta, want_residual) -> float:
        xp, T = self.xp, self.T
        dt = sum(_adj(xp, q, ax, ih) for q, ax, ih in zip(self.p, self.axes, self.ih))
        un = (self.u + T(tau) * (self.f - dt)) * T(1.0 / (1.0 + tau))
        self.ub = un + T(theta) * (un - self.u)
        self.u = un
        return _sumsq(self.f - dt) if want_residual else 0.0

    def primal_objective(self) -> float:
        return 0.5 * _sumsq(self.u - self.f) + self.weight * _tv1_xp(
            self.xp, self.u, self.axes, self.inv_spacing, self.iso)


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
def lbfgs(f, weight, tv_value_grad, *, ops, eps, max_iter, callback=None, memory=8):
    """L-BFGS on F, in float64 on the image's own layout.

    ``tv_value_grad(u, out)`` returns ``(TV_β(u), ∇TV_β(u))`` for an array of
    ``f``'s shape, writing the gradient into ``out`` where it can.
    Two-loop recursion with ``memory`` pairs, Armijo backtracking from the
    unit step (pairs with ``sᵀy ≤ 0`` are skipped), all vector work through
    ``ops`` (:mod:`tvnumba._vector`).  Stops when
    ``½‖∇F‖² ≤ eps · (F − ½‖∇F‖²)``: for convex TV (β ≥ 1) F is 1-strongly
    convex, so ``F − F* ≤ ½‖∇F‖²`` and the relative objective error is at
    most ``eps``.
    """
    xp = ops.xp
    f64 = xp.ascontiguousarray(f, dtype=xp.float64)
    shape = f64.shape
    n = f64.size
    ff = f64.reshape(-1)
    gtv = xp.empty(shape, xp.float64)

    def evaluate(u, g):
        """F(u), writing ∇F into g; returns (F, ‖∇F‖²)."""
        value, grad = tv_value_grad(u.reshape(shape), gtv)
        fid, gg = ops.smooth_objective_grad(u, ff, grad.reshape(-1), weight, g)
        return fid + weight * value, gg

    S_ = xp.empty((memory, n))
    Y_ = xp.empty((memory, n))
    rho = np.zeros(memory)
    alpha = np.zeros(memory)
    u = ff.copy()
    g = xp.empty(n)
    u_new = xp.empty(n)
    g_new = xp.empty(n)
    d = xp.empty(n)
    F, gg = evaluate(u, g)
    gap = _certificate(F, gg)
    pairs: list[int] = []
    gamma = 1.0
    it = 0
    nxt = 0
    while gap > eps and it < max_iter:
        it += 1
        order = np.asarray(pairs, dtype=np.int64)
        gd = ops.lbfgs_direction(g, S_, Y_, rho, order, gamma, d, alpha)
        if not gd < 0:  # not a descent direction: restart from -g
            pairs.clear()
            gd = ops.lbfgs_direction(g, S_, Y_, rho, order[:0], 1.0, d, alpha)
        t = 1.0
        for _ in range(40):
            ops.axpy_to(u_new, u, t, d)
            F_new, gg_new = evaluate(u_new, g_new)
            if F_new <= F + 1e-4 * t * gd:
                break
            t *= 0.5
        else:
            break  # no decrease possible at this precision
        sy, yy = ops.lbfgs_pair(S_[nxt], Y_[nxt], u_new, u, g_new, g)
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
        gap = _certificate(F, gg)
        if callback is not None and callback(it, u.reshape(shape), F):
            break
    return u.reshape(shape), Result(it, F, gap, gap <= eps, "lbfgs")


def _certificate(F, gg):
    """½‖∇F‖² / (F − ½‖∇F‖²): bounds (F − F*)/F* when F is 1-strongly convex."""
    lower = F - 0.5 * gg
    return 0.5 * gg / lower if lower > 0 else (0.0 if gg == 0 else math.inf)


# --------------------------------------------------------------------- β < 1: IRLS / MM
#: Consecutive majorize-minimize steps without a decrease beyond rounding
#: after which :func:`irls_mm` gives up (not converged).
MM_STALL = 10


def irls_mm(problem, *, ops, eps, max_iter, cg_iter=10, cg_tol=1e-2, extrapolate=True,
            callback=None, view=None):
    """Majorize–minimize for ``F(u) = ½‖u − f‖² + weight Σ (m + s²)^(β/2)`` (β ≤ 2).

    ``problem`` is an :class:`MMNumba` or :class:`MMArray`.  ``t ↦ (t + s²)^(β/2)``
    is concave for β ≤ 2, so its tangent at the squared magnitudes of a point
    ``y`` majorizes it: the quadratic ``Q_y(u) = ½‖u − f‖² + Σ a_y |Du|²/2``
    (``a_y = weight·β (m_y + s²)^(β/2 − 1)``) lies above F and touches it at
    ``y``.  Each outer step decreases ``Q_y`` by Jacobi-preconditioned CG
    started at ``y``, so ``F(u⁺) ≤ Q_y(u⁺) ≤ Q_y(y) = F(y)``.

    ``y`` is the current iterate, or -- with ``extrapolate`` -- the
    extrapolated point ``u + (u − u_prev)`` when that already has a lower
    objective (checked, so F never increases); this momentum roughly halves
    the outer steps on images.

    Stops when ``½‖∇F(u)‖² ≤ eps · (F(u) − ½‖∇F(u)‖²)`` (``∇F(u) = A_u u − f``
    with the weights at u): a bound on the relative objective error when F
    is 1-strongly convex (β ≥ 1), a relative stationarity measure for β < 1,
    where the limit is a local minimiser.  Gives up (``converged=False``)
    after :data:`MM_STALL` steps that lower F by no more than rounding.
    """
    f = problem.f
    u = f.copy()
    u_prev = None
    xp = ops.xp
    ap = xp.empty_like(f)
    r = xp.empty_like(f)
    ff, rf, apf = f.reshape(-1), r.reshape(-1), ap.reshape(-1)

    def stationarity(x, Fx):
        """Certificate at x, whose weights must be current (A_x x − f = ∇F(x))."""
        problem.apply(x, ap)
        xp.subtract(ff, apf, out=rf)
        return _certificate(Fx, ops.dot(rf, rf))

    F = problem.weights_and_value(u)
    gap = stationarity(u, F)
    it = 0
    # A stiff problem (tiny smoothing) in float32 can stall above eps: stop when
    # F has not decreased beyond rounding for STALL consecutive steps.
    rounding = 8 * float(np.finfo(f.dtype).eps)
    stalled = 0
    while gap > eps and it < max_iter and stalled < MM_STALL:
        it += 1
        base = u
        if extrapolate and u_prev is not None:
            y = u + (u - u_prev)
            if problem.weights_and_value(y) <= F:
                base = y
            else:
                problem.weights_and_value(u)
        u_prev = u
        u = _pcg(problem.apply, f, base, 1.0 / problem.diag(), cg_iter, cg_tol, ops)
        F_new = problem.weights_and_value(u)
        stalled = stalled + 1 if F - F_new <= rounding * abs(F_new) else 0
        F = F_new
        gap = stationarity(u, F)
        if _call_back(callback, it, u, F, view):
            break
    return u, Result(it, F, gap, gap <= eps, "mm")


class MMNumba:
    """MM operators on a C-contiguous canonical ``(B, C, z, y, x)`` NumPy array
    (one to three spatial axes), in the Numba kernels of ``_cpu_rof``."""

    def __init__(self, f, weight, beta, smoothing, *, nd, inv_spacing, isotropic):
        from . import _cpu_rof as K
        from ._cpu import beta_mode

        self.K = K
        T = f.dtype.type
        self.f = np.ascontiguousarray(f)
        self.a = np.empty((nd,) + f.shape, f.dtype)
        self.nd, self.iso = nd, isotropic
        self.ih = tuple(T(h) for h in inv_spacing)  # (z, y, x)
        self.rows, self.nunits = K.n_units(f.shape)
        self.partial = np.empty(self.nunits, np.float64)
        self.consts = (T(weight), T(smoothing * smoothing), T(beta / 2 - 1), T(beta),
                       beta_mode(beta), f.dtype == np.float32)
        self.weight = weight

    def weights_and_value(self, x) -> float:
        """Weights at x (kept for apply/diag); returns F(x)."""
        self.K.irls_weights(x, self.a, *self.consts, *self.ih, self.nd, self.iso, self.rows,
                            self.nunits, self.partial)
        tv = float(self.partial.sum())
        return 0.5 * self.K.sumsq_diff(x.reshape(-1), self.f.reshape(-1)) + self.weight * tv

    def apply(self, x, out) -> float:
        """out = x + Dᵀ(a ⊙ D x); returns x·out."""
        return self.K.irls_apply(x, self.a, out, *self.ih, self.nd, self.rows, self.nunits,
                                 self.partial)

    def diag(self):
        """Diagonal of ``I + Dᵀ diag(a) D``."""
        diag = np.empty_like(self.f)
        self.K.irls_diag(self.a, diag, *self.ih, self.nd, self.rows, self.nunits)
        return diag


class MMArray:
    """MM operators in whole-array operations (NumPy or CuPy, any number of
    spatial axes) on a ``(B, C, n0, ..., nk)`` array whose trailing axes
    ``spatial_axes`` carry the differences."""

    def __init__(self, f, weight, beta, smoothing, *, spatial_axes, inv_spacing, isotropic):
        xp = V._xp(f)
        T = f.dtype.type
        self.xp, self.f = xp, xp.ascontiguousarray(f)
        self.axes = tuple(spatial_axes)
        self.ih = tuple(T(h) for h in inv_spacing)
        self.iso = isotropic
        self.scale, self.s2, self.p = T(weight * beta), T(smoothing * smoothing), T(beta / 2 - 1)
        self.weight = weight
        self.a = []

    def weights_and_value(self, x) -> float:
        """Weights at x (kept for apply/diag); returns F(x).

        Isotropic weights are one array per pixel, shared by every channel
        and difference; no weight needs zeroing on the last slices because
        the forward differences vanish there.
        """
        xp = self.xp
        diffs = [_fwd(xp, x, ax, h) for ax, h in zip(self.axes, self.ih)]
        if self.iso:
            m = sum(d * d for d in diffs).sum(axis=1, keepdims=True) + self.s2
            q = m ** self.p
            tv = float(xp.sum(m * q, dtype=xp.float64))
            self.a = [self.scale * q] * len(diffs)
        else:
            tv = 0.0
            self.a = []
            for d in diffs:
                m = d * d + self.s2
                q = m ** self.p
                tv += float(xp.sum(m * q, dtype=xp.float64))
                self.a.append(self.scale * q)
        return 0.5 * float(xp.sum((x - self.f) ** 2, dtype=xp.float64)) + self.weight * tv

    def apply(self, x, out) -> float:
        """out = x + Dᵀ(a ⊙ D x); returns x·out."""
        out[...] = x
        for a, ax, h in zip(self.a, self.axes, self.ih):
            out += _adj(self.xp, a * _fwd(self.xp, x, ax, h), ax, h)
        return float(self.xp.sum(x * out, dtype=self.xp.float64))

    def diag(self):
        """Diagonal of ``I + Dᵀ diag(a) D``: a difference on [i, i+1] adds its
        weight to both ends."""
        diag = self.xp.ones_like(self.f)
        for a, ax, h in zip(self.a, self.axes, self.ih):
            lo, hi = _shifted(diag.ndim, ax, 0), _shifted(diag.ndim, ax, 1)
            ad = a[lo] * (h * h)
            diag[lo] += ad
            diag[hi] += ad
        return diag


def _shifted(ndim, axis, part):
    """Index of the slices ``[:-1]`` (part 0) or ``[1:]`` (part 1) along ``axis``."""
    idx = [slice(None)] * ndim
    idx[axis] = slice(0, -1) if part == 0 else slice(1, None)
    return tuple(idx)


def _pcg(apply, b, x, minv, max_iter, tol, ops):
    """Preconditioned CG on A x = b from ``x`` (A symmetric positive definite;
    ``apply(v, out)`` writes Av and returns v·Av).

    Each CG iterate minimises the quadratic over a growing affine subspace
    through ``x``, so the quadratic never increases.
    """
    xp = ops.xp
    T = x.dtype.type
    x = x.copy()
    ap = xp.empty_like(x)
    r = xp.empty_like(x)
    p = xp.zeros_like(x)
    xf, rf, pf, apf = (a.reshape(-1) for a in (x, r, p, ap))
    bf, mf = b.reshape(-1), minv.reshape(-1)
    apply(x, ap)
    rr, rz = ops.residual_init(bf, apf, mf, rf)
    r0 = math.sqrt(rr)
    if r0 == 0:
        return x
    ops.pcg_direction(pf, rf, mf, T(0))
    for _ in range(max_iter):
        pap = apply(p, ap)
        if pap <= 0:
            break
        alpha = rz / pap
        rr, rz_new = ops.pcg_step(xf, rf, pf, apf, mf, T(alpha))
        if math.sqrt(rr) <= tol * r0:
            break
        ops.pcg_direction(pf, rf, mf, T(rz_new / rz))
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
