"""The whole-array backend: NumPy or CuPy operations, any number of spatial axes.

The Numba kernels are compiled for one to three spatial axes; data with more
(e.g. 3-D + time treated as spatial) and every solver step on the GPU that has
no CUDA kernel of its own run here, as whole-array operations of the array's
own module.  It is also the plain path the tests check the kernels against:
the same quantities, written as differences, sums and powers of arrays.

Everything works on the canonical layout ``(B, C, n0, ..., nk)`` of
:class:`tvnumba._validate.Plan`, whose spatial axes are ``2 ... 2 + k``.
"""

from __future__ import annotations

import math

import numpy as np

from .._validate import Plan
from .base import Backend


# --------------------------------------------------------------------------- differences
def forward_diff(xp, u, axis, ih):
    """``D_d u`` along ``axis`` (0 on the last slice)."""
    d = xp.zeros_like(u)
    d[_part(u.ndim, axis, 0)] = (u[_part(u.ndim, axis, 1)] - u[_part(u.ndim, axis, 0)]) * ih
    return d


def adjoint_diff(xp, v, axis, ih):
    """``D_dᵀ v`` for ``v`` whose last slice along ``axis`` is zero."""
    out = -v
    out[_part(v.ndim, axis, 1)] += v[_part(v.ndim, axis, 0)]
    return out * ih


def _part(ndim, axis, part):
    """Index of the slices ``[:-1]`` (part 0) or ``[1:]`` (part 1) along ``axis``."""
    idx = [slice(None)] * ndim
    idx[axis] = slice(0, -1) if part == 0 else slice(1, None)
    return tuple(idx)


def _value_weight(xp, m, beta):
    """(m^(β/2), β m^(β/2-1)) with both 0 where m == 0."""
    pos = m > 0
    safe = xp.where(pos, m, 1)
    t = xp.where(pos, safe ** (beta / 2 - 1), 0).astype(m.dtype)
    return m * t, beta * t


def _axes_spacing(plan: Plan, dtype):
    """The canonical axes of the real spatial axes and their 1/h.  Not the
    padding: anisotropic TV counts a term (``s^β`` with smoothing) for every
    difference, the zero ones on a last slice included."""
    T = np.dtype(dtype).type
    axes = plan.canonical_spatial_axes[-plan.n_spatial:]
    return axes, [T(h) for h in plan.inv_spacing]


def tv_array(xp, u5, g5, plan: Plan):
    """Per-batch sums of β-TV of the canonical ``u5``; ``g5 = scale·∇TV`` if given."""
    axes, ih = _axes_spacing(plan, u5.dtype)
    T = u5.dtype.type
    s2 = T(plan.smoothing**2)
    diffs = [forward_diff(xp, u5, a, h) for a, h in zip(axes, ih)]
    sum_axes = tuple(range(1, u5.ndim))
    if plan.isotropic:
        m = sum(d * d for d in diffs).sum(axis=1, keepdims=True) + s2
        val, w = _value_weight(xp, m, plan.beta)
        values = val.astype(np.float64).sum(axis=sum_axes)
        fluxes = [w * d for d in diffs]
    else:
        values = xp.zeros(u5.shape[0], np.float64)
        fluxes = []
        for d in diffs:
            val, w = _value_weight(xp, d * d + s2, plan.beta)
            values += val.astype(np.float64).sum(axis=sum_axes)
            fluxes.append(w * d)
    if g5 is not None:
        g5[...] = sum(adjoint_diff(xp, f, a, h) for f, a, h in zip(fluxes, axes, ih)) * T(
            plan.scale())
    return _to_host(xp, values)


def _to_host(xp, a):
    return a if xp is np else xp.asnumpy(a)


# --------------------------------------------------------------------------- masks
def _block_sum(a, axes, xp):
    """Sums over 2-blocks along ``axes`` (an odd length padded with a zero)."""
    for ax in axes:
        n = a.shape[ax]
        if n % 2:
            pad = [(0, 0)] * a.ndim
            pad[ax] = (0, 1)
            a = xp.pad(a, pad)
            n += 1
        a = a.reshape(a.shape[:ax] + (n // 2, 2) + a.shape[ax + 1:]).sum(axis=ax + 1)
    return a


def _interpolate_up(a, shape, xp):
    """Linear interpolation of block values to the grid twice as fine (block
    centres at ±¼ of a coarse cell, edge values repeated), cut to ``shape``."""
    for ax in range(2, 5):
        n, target = a.shape[ax], shape[ax]
        if n == target:
            continue
        idx = xp.arange(n)
        lower = xp.take(a, xp.maximum(idx - 1, 0), axis=ax)
        upper = xp.take(a, xp.minimum(idx + 1, n - 1), axis=ax)
        three = a.dtype.type(0.75)
        quarter = a.dtype.type(0.25)
        both = xp.stack([three * a + quarter * lower, three * a + quarter * upper], axis=ax + 1)
        a = both.reshape(a.shape[:ax] + (2 * n,) + a.shape[ax + 1:])
        a = xp.take(a, xp.arange(target), axis=ax)
    return a


# --------------------------------------------------------------------------- vector ops
class ArrayOps:
    """The solvers' vector operations, in whole-array operations of ``xp``.

    The interface the Numba kernels of :mod:`tvnumba.backends.cpu.vector_kernels`
    share: flat arrays, outputs updated in place, the scalars the caller needs
    next returned as Python floats (sums in float64).
    """

    def __init__(self, xp):
        self.xp = xp
        self._window = (None, None)  # the ADMM w-step's observed-window mask, by its key

    def dot(self, a, b) -> float:
        return float(self.xp.sum(a * b, dtype=self.xp.float64))

    def hole_bounds(self, m, f, axes, kappa):
        """See :func:`tvnumba.backends.cpu.mask_kernels.hole_bounds`: the holes labelled by
        ``ndimage.label`` (consecutive numbers), then one side of one axis at a time, the
        known neighbours gathered and scattered onto their labels."""
        xp = self.xp
        if xp is np:
            from scipy import ndimage
        else:  # pragma: no cover - CuPy
            from cupyx.scipy import ndimage
        structure = np.zeros((3,) * m.ndim, bool)
        structure[(1,) * m.ndim] = True
        for ax in axes:
            for k in (0, 2):
                idx = [1] * m.ndim
                idx[ax] = k
                structure[tuple(idx)] = True
        labels, n = ndimage.label(~(m > 0), structure=structure)
        labels = xp.ascontiguousarray(labels, dtype=xp.int32)
        a = xp.full(int(n) + 1, np.inf)
        b = xp.full(int(n) + 1, -np.inf)
        seen = m > 0
        if not bool(xp.any(seen)):
            return labels, a, b, math.inf, -math.inf
        ratio = f[seen].astype(xp.float64) / m[seen]
        for ax in axes:
            for hole, known in ((slice(0, -1), slice(1, None)), (slice(1, None), slice(0, -1))):
                at_hole = tuple(hole if i == ax else slice(None) for i in range(m.ndim))
                at_known = tuple(known if i == ax else slice(None) for i in range(m.ndim))
                lab, mk = labels[at_hole], m[at_known]
                sel = (lab > 0) & (mk > 0)
                mj = mk[sel].astype(xp.float64)
                c = f[at_known][sel].astype(xp.float64) / mj
                k = kappa / (mj * mj)
                if xp is np:
                    np.minimum.at(a, lab[sel], c - k)
                    np.maximum.at(b, lab[sel], c + k)
                else:  # pragma: no cover - CuPy
                    import cupyx

                    cupyx.scatter_min(a, lab[sel], c - k)
                    cupyx.scatter_max(b, lab[sel], c + k)
        return labels, a, b, float(ratio.min()), float(ratio.max())

    def pull_push_fill(self, f5, known5):
        """Fill the holes (``known5`` False) of each ``f5[b, c]`` by pull-push (Gortler
        et al. 1996).

        Pull: the known values and their counts are summed over 2-blocks, level by
        level, until no block is empty; push: from the coarsest level down, each empty
        block takes the linear interpolation of the level above, each other block its
        known mean.  O(N) array operations; a smooth fill that meets the known pixels,
        which the solver then only has to sharpen."""
        xp = self.xp
        axes = tuple(a for a in (2, 3, 4) if f5.shape[a] > 1)
        dt = f5.dtype
        v = xp.where(known5, f5, dt.type(0))
        w = known5.astype(dt)
        levels = []
        while axes and not bool(xp.all(w > 0)):
            levels.append((v, w))
            v, w = _block_sum(v, axes, xp), _block_sum(w, axes, xp)
            axes = tuple(a for a in axes if v.shape[a] > 1)
        # a plane without any known pixel gets the mean of all known pixels
        mean = v.sum() / xp.maximum(w.sum(), dt.type(1))
        est = xp.where(w > 0, v / xp.where(w > 0, w, dt.type(1)), mean)
        for v, w in reversed(levels):
            up = _interpolate_up(est, v.shape, xp)
            est = xp.where(w > 0, v / xp.where(w > 0, w, dt.type(1)), up)
        return xp.where(known5, f5, est)

    # ADMM-FFT (see tvnumba.backends.cpu.admm_kernels): component d of z and b differences
    # the axis ndim − 1 − d; inv_spacing lists the spatial axes in order.
    def _admm_keep(self, shape, extent, nd, dtype):
        """One array per component, broadcast over ``shape``: 1 on the kept differences."""
        xp = self.xp
        spatial = shape[len(shape) - nd:]
        ext = tuple(extent)[-nd:]
        keep = []
        for d in range(nd):
            a = nd - 1 - d
            m = None
            for k, (n, e) in enumerate(zip(spatial, ext)):
                along = xp.arange(n) < (e - 1 if k == a else e)
                along = along.reshape([-1 if j == k else 1 for j in range(nd)])
                m = along if m is None else m & along
            keep.append(m.astype(dtype))
        return keep

    def admm_rhs(self, z, b, out, inv_spacing) -> None:
        """See :func:`tvnumba.backends.cpu.admm_kernels.admm_rhs`."""
        xp = self.xp
        nd = z.shape[0]
        out[...] = 0
        for d in range(nd):
            q = z[d] - b[d]
            out += (xp.roll(q, 1, axis=out.ndim - 1 - d) - q) * inv_spacing[nd - 1 - d]

    def admm_shrink(self, u, z, b, alpha, t, extent, inv_spacing, iso) -> float:
        """See :func:`tvnumba.backends.cpu.admm_kernels.admm_shrink`."""
        xp = self.xp
        nd = z.shape[0]
        keep = self._admm_keep(u.shape, extent, nd, u.dtype)
        du = [(xp.roll(u, -1, axis=u.ndim - 1 - d) - u) * inv_spacing[nd - 1 - d]
              for d in range(nd)]
        kept = [k * x for k, x in zip(keep, du)]
        if iso:
            tv = float(xp.sum(xp.sqrt(sum(x * x for x in kept).sum(axis=1)), dtype=xp.float64))
        else:
            tv = float(sum(xp.sum(xp.abs(x), dtype=xp.float64) for x in kept))
        v = [alpha * x + (1 - alpha) * zi + bi for x, zi, bi in zip(du, z, b)]
        if iso:
            norm = xp.sqrt(sum((k * x) ** 2 for k, x in zip(keep, v)).sum(axis=1, keepdims=True))
            s = xp.minimum(t / xp.maximum(norm, t), 1)
            shrunk = [vi * (1 - k * s) for k, vi in zip(keep, v)]
        else:
            shrunk = [vi - k * xp.clip(vi, -t, t) for k, vi in zip(keep, v)]
        for d in range(nd):
            z[d] = shrunk[d]
            b[d] = v[d] - shrunk[d]
        return tv

    def admm_w_step(self, cu, w, bw, s_w, mf, alpha, rho, window) -> float:
        """See :func:`tvnumba.backends.cpu.admm_kernels.admm_w_step`."""
        xp = self.xp
        key = (cu.shape, cu.dtype, tuple((s.start, s.stop) for s in window))
        if self._window[0] != key:  # one mask per solve, not per step
            m = xp.zeros(cu.shape, cu.dtype)
            m[(Ellipsis,) + tuple(window)] = 1
            self._window = (key, m)
        m = self._window[1]
        r = m * (cu - mf)
        fid = float(xp.sum(r * r, dtype=xp.float64))
        v = alpha * cu + (1 - alpha) * w + bw
        w[...] = (mf + rho * v) / (m + rho)
        bw[...] = v - w
        s_w[...] = w - bw
        return fid

    def admm_spectrum(self, U, r_factor, u_data, H, S=None, HU=None, fhat=None,
                      parseval=None) -> float:
        """See :func:`tvnumba.backends.cpu.admm_kernels.admm_spectrum`."""
        xp = self.xp
        U *= r_factor
        if S is None:
            U += u_data
            e = H * U - fhat
            return float(xp.sum(parseval * (e.real ** 2 + e.imag ** 2), dtype=xp.float64))
        U += u_data * S
        HU[...] = H * U
        return 0.0

    def dot64(self, a, b) -> float:
        """Σ a·b with the products in float64 too (L-BFGS's float32 pairs)."""
        xp = self.xp
        return float(xp.sum(xp.asarray(a, dtype=xp.float64) * xp.asarray(b, dtype=xp.float64)))

    def sumsq_diff(self, a, b) -> float:
        r = a - b
        return self.dot(r, r)

    def residual_init(self, b, ax, minv, r):
        """r = b - Ax; returns (r·r, r·M⁻¹r)."""
        self.xp.subtract(b, ax, out=r)
        return self.dot(r, r), self.dot(r, minv * r)

    def pcg_step(self, x, r, p, ap, minv, alpha):
        """x += α p; r -= α Ap; returns (r·r, r·M⁻¹r)."""
        x += alpha * p
        r -= alpha * ap
        return self.dot(r, r), self.dot(r, minv * r)

    def pcg_direction(self, p, r, minv, beta):
        """p = M⁻¹r + β p."""
        p *= beta
        p += minv * r

    def smooth_objective_grad(self, u, f, gtv, weight, g):
        """g = (u - f) + weight·gtv (``gtv`` may be ``g``); returns (½‖u - f‖², ‖g‖²),
        the latter before the rounding to ``g``'s dtype."""
        xp = self.xp
        r = xp.asarray(u, dtype=xp.float64) - f
        fid = 0.5 * self.dot(r, r)
        r += weight * xp.asarray(gtv, dtype=xp.float64)
        g[...] = r
        return fid, self.dot(r, r)

    def axpy_to(self, out, x, alpha, d):
        """out = x + α d."""
        self.xp.multiply(d, alpha, out=out)
        out += x

    def axpy(self, y, alpha, x):
        """y += α x."""
        y += alpha * x

    def axpy_norm(self, y, alpha, x) -> float:
        """y += α x; returns ‖y‖²."""
        y += alpha * x
        return self.dot(y, y)

    def kl_dual_step(self, r, rt, z, y, b, b_step, sigma, om):
        """As :func:`tvnumba.backends.cpu.vector_kernels.kl_dual_step`."""
        xp = self.xp
        e = r - sigma * (z + (b if b_step else b[0]))
        sy = 2 * sigma * y
        s = xp.sqrt(e * e + 2 * sy)
        neg = e < 0
        rt[...] = xp.where(neg, sy / xp.where(neg, s - e, 1), 0.5 * (s + e))
        r += om * (rt - r)

    def extrapolate(self, u, un, ub, theta, om):
        """ub = un + θ(un - u); u = un (``om = 1``) or u + ω(un - u)."""
        self.xp.subtract(un, u, out=ub)
        if om != 1:
            u += om * ub
        ub *= theta
        ub += un
        if om == 1:
            u[...] = un

    def lbfgs_pair(self, s, y, d, step, g_new, g):
        """s = step·d, y = g_new - g (in their own dtypes); returns (s·y, y·y) of
        the stored values."""
        self.xp.multiply(d, step, out=s)
        self.xp.subtract(g_new, g, out=y)
        return self.dot64(s, y), self.dot64(y, y)

    def lbfgs_direction(self, g, S, Y, rho, order, gamma, q, alpha):
        """q = -H g by the two-loop recursion (pairs ``order``, oldest first);
        returns g·q."""
        q[...] = g
        for i in order[::-1]:
            alpha[i] = rho[i] * self.dot64(S[i], q)
            q -= alpha[i] * Y[i]
        q *= gamma
        for i in order:
            q += (alpha[i] - rho[i] * self.dot64(Y[i], q)) * S[i]
        q *= -1.0
        return self.dot64(g, q)


# --------------------------------------------------------------------------- solver state
class CPArray:
    """β = 1 primal–dual iterates in whole-array operations (see
    :class:`tvnumba.backends.cpu.CPNumba` for the interface) on a canonical
    array of any number of spatial axes."""

    def __init__(self, xp, f5, weight, plan: Plan, *, identity: bool):
        T = f5.dtype.type
        self.xp, self.f, self.T = xp, f5, T
        self.u = f5.copy()
        self.ub = f5.copy()
        self.axes, self.ih = _axes_spacing(plan, f5.dtype)
        self.inv_spacing = plan.canonical_inv_spacing
        self.nd = len(self.axes)
        self.p = [xp.zeros_like(f5) for _ in self.axes]
        self.iso, self.weight, self.identity = plan.isotropic, weight, identity

    def sumsq_f(self) -> float:
        return _sumsq(self.xp, self.f)

    def dual_step(self, sigma, om=1.0):
        xp, T = self.xp, self.T
        moved = [q + T(sigma) * forward_diff(xp, self.ub, ax, ih)
                 for q, ax, ih in zip(self.p, self.axes, self.ih)]
        moved = _project(xp, moved, T(self.weight), self.iso)
        if om != 1:
            moved = [q + T(om) * (m - q) for q, m in zip(self.p, moved)]
        self.p = moved

    def primal_step(self, tau, theta, want_residual) -> float:
        xp, T = self.xp, self.T
        dt = sum(adjoint_diff(xp, q, ax, ih) for q, ax, ih in zip(self.p, self.axes, self.ih))
        if not self.identity:
            self.ub = self.u - T(tau) * dt
            return 0.0
        un = (self.u + T(tau) * (self.f - dt)) * T(1.0 / (1.0 + tau))
        self.ub = un + T(theta) * (un - self.u)
        self.u = un
        return _sumsq(xp, self.f - dt) if want_residual else 0.0

    def diagonal_step(self, tau, theta, om, m, f) -> None:
        """The primal step with the proximal step of ``½‖m ⊙ u − f‖²`` (see
        :class:`tvnumba.backends.cpu.CPNumba`); ``u`` in place."""
        xp, T = self.xp, self.T
        dt = sum(adjoint_diff(xp, q, ax, ih) for q, ax, ih in zip(self.p, self.axes, self.ih))
        un = (self.u + T(tau) * (m * f - dt)) / (T(1) + T(tau) * (m * m))
        self.ub = un + T(theta) * (un - self.u)
        self.u += T(om) * (un - self.u)

    def masked_gap_sums(self, m, f, box, transfer=False):
        """``(Σ (m u − f)², D, TV₁(u))`` (float64) on the per-pixel ``box`` (see
        :class:`tvnumba.backends.cpu.CPNumba`)."""
        xp = self.xp
        f = f.astype(xp.float64)
        m = m.astype(xp.float64)
        q = m * self.u.astype(xp.float64) - f
        p = [c.astype(xp.float64) for c in _project(xp, self.p, self.T(self.weight),
                                                      self.iso)]
        d = sum(adjoint_diff(xp, c, ax, ih) for c, ax, ih in zip(p, self.axes, self.ih))
        if transfer and m.shape[1] == 1:
            d = _transfer_holes(xp, d, p, m, self.axes, [float(h) for h in self.ih],
                                float(self.T(self.weight)), self.iso)
        seen = m > 0
        # known pixels: the best q on [L, H] (solver_kernels._box_dual), holes: q = 0
        mm = xp.where(seen, m, 1.0)
        c, k = f / mm, box.kappa / (mm * mm)
        lo = xp.where(seen, xp.maximum(c - k, box.lo), box.hole_lo[box.labels])
        hi = xp.where(seen, xp.minimum(c + k, box.hi), box.hole_hi[box.labels])
        qa, qb = m * lo - f, m * hi - f
        qd = xp.where(d + m * qa > 0, qa, xp.where(d + m * qb < 0, qb, -d / mm))
        qd = xp.where(seen, qd, 0.0)
        g = d + m * qd
        terms = -xp.maximum(-g * lo, -g * hi) - xp.where(seen, 0.5 * qd * qd + qd * f, 0.0)
        return float(xp.sum(q * q)), float(xp.sum(terms)), self.primal_terms()[1]

    @property
    def dual_fields(self):
        """The callable giving ``(axis, 1/h, p_axis)`` of every differenced canonical
        axis for the exact finish of :mod:`tvnumba.solvers._polish`, which runs on the
        host: None for device arrays."""
        if self.xp is not np:
            return None
        return lambda: list(zip(self.axes, self.ih, self.p))

    def primal_terms(self):
        """(½‖u − f‖², TV₁(u)) in float64."""
        xp = self.xp
        diffs = [forward_diff(xp, self.u, ax, h).astype(xp.float64)
                 for ax, h in zip(self.axes, self.ih)]
        if self.iso:
            tv1 = float(xp.sqrt(sum((d * d).sum(axis=1) for d in diffs)).sum())
        else:
            tv1 = float(sum(xp.abs(d).sum() for d in diffs))
        fid = 0.5 * _sumsq(xp, self.u - self.f) if self.identity else 0.0
        return fid, tv1


def _sumsq(xp, a) -> float:
    flat = a.reshape(-1).astype(xp.float64)
    return float(xp.dot(flat, flat))


#: Newton steps at most of :func:`_power_radius` (from its start 7 reach float64 rounding
#: for β in [1.05, 6] and ``c``, ``m`` over 12 decades; it stops once a step is below 1e-7).
POWER_NEWTON = 8


def _power_radius(xp, m, c, beta):
    """``t ≥ 0`` with ``t + c t^(β−1) = m`` (per element; β > 1, ``c, m ≥ 0``).

    Closed forms at β = 3/2, 2 and 3 (quadratics in ``√t``, ``t``, ``t``); otherwise
    Newton's method on ``s = log t``: ``F(s) = e^s + c e^((β−1)s) − m`` is increasing and
    convex, so from a point above the root it moves down to it monotonically.  Above:
    ``log min(m, (m/c)^(1/(β−1)))`` (each term alone at most ``m``), within
    ``log 2/(β−1)`` of the root."""
    mm = xp.maximum(m, 0)
    if beta == 2:
        return mm / (1 + c)
    if beta == 1.5:  # √t = 2m / (c + √(c² + 4m)), without cancellation
        return (2 * mm / (c + xp.hypot(c, 2 * xp.sqrt(mm)))) ** 2
    if beta == 3:
        return 2 * mm / (1 + xp.hypot(1, 2 * xp.sqrt(c * mm)))
    pos = mm > 0
    x = xp.where(pos, mm, 1)
    with np.errstate(divide="ignore"):
        s = xp.minimum(xp.log(x), xp.log(x / c) / (beta - 1))
    for _ in range(POWER_NEWTON):
        a = xp.exp(s)
        b = c * xp.exp((beta - 1) * s)
        step = (a + b - x) / (a + (beta - 1) * b)
        s -= step
        if not float(xp.abs(step).max()) > 1e-7:  # the step after it is below rounding
            break
    return xp.where(pos, xp.exp(s), 0)


def _transfer_holes(xp, d, v, m, axes, ih, w, iso):
    """``d = Dᵀ v`` with the residual of each hole pixel (``m = 0``) moved to its known
    neighbours ahead along the last axis, then the one before, as far as the pixel's own
    dual ``v`` stays in the ball (see
    :func:`tvnumba.backends.cpu.solver_kernels._transfer_row`); one channel."""
    hole = m == 0
    v = list(v)
    vv = sum(c * c for c in v)
    left = d
    d = d.copy()
    for n in (len(axes) - 1, len(axes) - 2)[:len(axes)]:
        ax, h = axes[n], ih[n]
        here = tuple(slice(0, -1) if a == ax else slice(None) for a in range(d.ndim))
        ahead = tuple(slice(1, None) if a == ax else slice(None) for a in range(d.ndim))
        sel = xp.zeros(d.shape, bool)
        sel[here] = hole[here] & (m[ahead] > 0)
        sel &= left != 0
        a = left / h
        if iso:
            r = xp.sqrt(xp.maximum(v[n] * v[n] + w * w - vv, 0.0))
            lo, hi = -v[n] - r, -v[n] + r
        else:
            lo, hi = -w - v[n], w - v[n]
        y = xp.where(a > 0, xp.maximum(xp.minimum(a, hi), 0.0), xp.minimum(xp.maximum(a, lo), 0.0))
        y = xp.where(sel, y, 0.0)
        vv = vv - v[n] * v[n]
        v[n] = v[n] + y
        vv = vv + v[n] * v[n]
        left = left - h * y
        d[ahead] += h * y[here]
    return xp.where(hole, left, d)


def _project(xp, p, w, isotropic):
    if not isotropic:
        return [xp.clip(q, -w, w) for q in p]
    m = sum((q * q).sum(axis=1, keepdims=True) for q in p)  # couple channels (axis 1)
    scale = w / xp.maximum(xp.sqrt(m), w)
    return [q * scale for q in p]


class MMArray:
    """Majorize–minimize operators in whole-array operations (see
    :class:`tvnumba.backends.cpu.MMNumba` for the interface)."""

    def __init__(self, xp, f5, weight, beta, smoothing, plan: Plan, *, c0: float):
        T = f5.dtype.type
        self.xp, self.f = xp, xp.ascontiguousarray(f5)
        self.axes, self.ih = _axes_spacing(plan, f5.dtype)
        self.iso = plan.isotropic
        self.scale, self.s2, self.p = T(weight * beta), T(smoothing * smoothing), T(beta / 2 - 1)
        self.c0 = T(c0)
        self.weight = weight
        self.a = []

    def weights_and_tv(self, x) -> float:
        """Weights at x (kept for apply/diag); returns TV_β(x) (float64 sum).

        Isotropic weights are one array per pixel, shared by every channel
        and difference; no weight needs zeroing on the last slices because
        the forward differences vanish there.
        """
        xp = self.xp
        diffs = [forward_diff(xp, x, ax, h) for ax, h in zip(self.axes, self.ih)]
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
        return tv

    def apply(self, x, out) -> float:
        """out = c0·x + Dᵀ(a ⊙ D x); returns x·out."""
        out[...] = self.c0 * x
        for a, ax, h in zip(self.a, self.axes, self.ih):
            out += adjoint_diff(self.xp, a * forward_diff(self.xp, x, ax, h), ax, h)
        return float(self.xp.sum(x * out, dtype=self.xp.float64))

    def diag(self):
        """Diagonal of ``c0·I + Dᵀ diag(a) D``: a difference on [i, i+1] adds
        its weight to both ends."""
        diag = self.xp.full_like(self.f, self.c0)
        for a, ax, h in zip(self.a, self.axes, self.ih):
            lo, hi = _part(diag.ndim, ax, 0), _part(diag.ndim, ax, 1)
            ad = a[lo] * (h * h)
            diag[lo] += ad
            diag[hi] += ad
        return diag


# --------------------------------------------------------------------------- TV for step arrays
class TVOps:
    """``D``, ``Dᵀ``, the dual ball and ``TV₁`` of a plan on canonical arrays, for solvers
    whose step sizes are arrays (preconditioned primal-dual).  ``p`` is a list, one
    array per differenced axis (zero on its last slice)."""

    def __init__(self, xp, plan: Plan, dtype):
        self.xp = xp
        self.axes, self.ih = _axes_spacing(plan, dtype)
        self.iso = plan.isotropic
        self.dtype = np.dtype(dtype)

    def grad(self, u):
        return [forward_diff(self.xp, u, ax, h) for ax, h in zip(self.axes, self.ih)]

    def div(self, p):
        """``Dᵀp``."""
        return sum(adjoint_diff(self.xp, q, ax, h) for q, ax, h in zip(p, self.axes, self.ih))

    def project(self, p, weight):
        """``p`` on the ball ``|p| ≤ weight`` (per pixel over axes and channels when
        isotropic, per difference otherwise)."""
        return _project(self.xp, p, self.dtype.type(weight), self.iso)

    def field(self, shape):
        """A zero dual field for a canonical ``shape``: one array of shape
        ``(len(axes),) + shape`` whose components follow :attr:`axes` (iterating over
        it gives the list that :meth:`div` and :meth:`project` take)."""
        return self.xp.zeros((len(self.axes),) + tuple(shape), self.dtype)

    def pd_primal(self, u, ut, ub, p, atr, tau, om, nonneg) -> None:
        """``ũ = u − τ (Dᵀp + atr)`` (at least 0 with ``nonneg``) into ``ut``,
        ``ū = 2ũ − u`` into ``ub``, ``u ← u + ω (ũ − u)``: the preconditioned
        primal–dual's primal step (``τ`` per pixel, ``p`` a :meth:`field`)."""
        ut[...] = u - tau * (self.div(p) + atr)
        if nonneg:
            self.xp.maximum(ut, 0, out=ut)
        ub[...] = 2 * ut - u
        u += om * (ut - u)

    def pd_dual(self, p, pt, ub, sig, weight, om) -> None:
        """``pt = proj_{|·| ≤ weight}(p + σ D ū)``, ``p ← p + ω (pt − p)``: the
        preconditioned primal–dual's TV dual step (``σ`` per pixel, shape
        ``(B, 1, ...)``; ``p``, ``pt`` :meth:`field` arrays)."""
        moved = self.project([q + sig * g for q, g in zip(p, self.grad(ub))], weight)
        for q, q0, qt in zip(moved, p, pt):
            qt[...] = q
            q0 += om * (qt - q0)

    def pd_dual_power(self, p, pt, ub, sig, weight, beta, om) -> None:
        """:meth:`pd_dual` for ``weight · TV_β``, β > 1 (no ball): ``pt = prox_{σg*}(z)``,
        ``z = p + σ D ū``, ``g = weight |·|^β`` per pixel (per difference when
        anisotropic), by Moreau's identity ``pt = z − σ prox_{g/σ}(z/σ)``, whose radius
        ``t`` solves ``t + (weight β / σ) t^(β−1) = |z|/σ`` (:func:`_power_radius`)."""
        xp = self.xp
        z = [q + sig * g for q, g in zip(p, self.grad(ub))]
        sig = xp.where(sig > 0, sig, 1)  # σ = 0 only where no difference starts (z = 0)

        def shrink(m):
            # 1 − σ t / |z| with t the radius of prox_{g/σ} at |z|/σ: pt = z · shrink
            t = _power_radius(xp, m / sig, weight * beta / sig, beta)
            return xp.where(m > 0, 1 - sig * t / xp.where(m > 0, m, 1), 0)

        if self.iso:  # one radius per pixel, shared by the axes and channels
            m = xp.sqrt(sum((q * q).sum(axis=1, keepdims=True) for q in z))
            factors = [shrink(m)] * len(z)
        else:
            factors = [shrink(xp.abs(q)) for q in z]
        for q, q0, qt, f in zip(z, p, pt, factors):
            qt[...] = q * f
            q0 += om * (qt - q0)

    def _diffs64(self, u):
        """``D u`` in float64, one array per differenced axis."""
        return [forward_diff(self.xp, u, ax, h).astype(self.xp.float64)
                for ax, h in zip(self.axes, self.ih)]

    def tv_power(self, u, beta) -> float:
        """``TV_β(u)`` (no smoothing) in float64."""
        xp = self.xp
        diffs = self._diffs64(u)
        if self.iso:
            return float((sum((d * d).sum(axis=1) for d in diffs) ** (0.5 * beta)).sum())
        return float(sum((xp.abs(d) ** beta).sum() for d in diffs))

    def power_dual(self, u, weight, beta):
        """``∇g(Du)`` (float64): the dual field that ``u`` determines when β > 1,
        ``weight · β |Du|^(β−2) Du`` (0 where ``Du = 0``)."""
        xp = self.xp
        diffs = self._diffs64(u)
        if self.iso:
            m = xp.sqrt(sum((d * d).sum(axis=1, keepdims=True) for d in diffs))
            scale = weight * beta * xp.where(m > 0, xp.where(m > 0, m, 1) ** (beta - 2), 0)
            return [d * scale for d in diffs]
        return [weight * beta * xp.sign(d) * xp.abs(d) ** (beta - 1) for d in diffs]

    def power_conj(self, p, weight, beta) -> float:
        """``Σ g*(p)``, ``g*(q) = (β − 1) weight (|q| / (weight β))^(β/(β−1))`` (float64)."""
        xp = self.xp
        p = [q.astype(xp.float64) for q in p]
        e = beta / (beta - 1)
        if self.iso:
            m = xp.sqrt(sum((q * q).sum(axis=1) for q in p))
            return float((beta - 1) * weight * ((m / (weight * beta)) ** e).sum())
        return float((beta - 1) * weight * sum(((xp.abs(q) / (weight * beta)) ** e).sum()
                                                for q in p))

    def tv1(self, u) -> float:
        """``TV₁(u)`` in float64."""
        xp = self.xp
        diffs = self._diffs64(u)
        if self.iso:
            return float(xp.sqrt(sum((d * d).sum(axis=1) for d in diffs)).sum())
        return float(sum(xp.abs(d).sum() for d in diffs))

    def abs_colsum(self, shape):
        """``Σ_i |D_ij|`` per pixel ``j`` (float64): ``1/h`` for each axis along which the
        pixel is not last and for each along which it is not first."""
        xp = self.xp
        col = xp.zeros(shape, xp.float64)
        for ax, h in zip(self.axes, self.ih):
            col[_part(len(shape), ax, 0)] += float(h)
            col[_part(len(shape), ax, 1)] += float(h)
        return col

    def abs_rowsum(self, s):
        """``max_d (1/h_d)(s_j + s_{j+e_d})`` per pixel (0 where no difference starts),
        the largest over the channels (axis 1): the row sums of ``|D|`` weighted by ``s``,
        one per pixel for the dual ball."""
        xp = self.xp
        out = xp.zeros(s.shape, xp.float64)
        for ax, h in zip(self.axes, self.ih):
            lo, hi = _part(s.ndim, ax, 0), _part(s.ndim, ax, 1)
            rs = xp.zeros(s.shape, xp.float64)
            rs[lo] = float(h) * (s[lo] + s[hi])
            out = xp.maximum(out, rs)
        return out.max(axis=1, keepdims=True)


# --------------------------------------------------------------------------- the backend
class ArrayBackend(Backend):
    """Whole-array operations of ``xp`` (NumPy or CuPy).

    ``home`` is the backend the call started on (CPU or CUDA): it keeps the
    moves in and out of the caller's kind of array.
    """

    name = "array"

    def __init__(self, xp=np, home: Backend | None = None):
        self.xp = xp
        self.ops = ArrayOps(xp)
        self.home = home
        self.host = home.host if home is not None else xp is np

    def bring(self, u):
        return self.home.bring(u) if self.home is not None else self.xp.asarray(u)

    def result(self, a):
        return self.home.result(a) if self.home is not None else a

    def as_float_image(self, image, dtype):
        if self.home is not None:
            return self.home.as_float_image(image, dtype)
        return super().as_float_image(image, dtype)

    def check_out(self, out, plan):
        if self.home is not None:
            return self.home.check_out(out, plan)
        return super().check_out(out, plan)

    @property
    def fft(self):
        if self.xp is np:
            return super().fft
        from cupyx.scipy import fft  # pragma: no cover - needs a GPU and CuPy

        return fft  # pragma: no cover

    @property
    def ndimage(self):
        if self.xp is np:
            return super().ndimage
        from cupyx.scipy import ndimage  # pragma: no cover - needs a GPU and CuPy

        return ndimage  # pragma: no cover

    def to_host(self, a):
        return a if self.xp is np else self.xp.asnumpy(a)

    def copy_into(self, out, a):
        if self.home is not None:
            return self.home.copy_into(out, a)
        out[...] = a

    def tv5(self, u5, g5, plan):
        return tv_array(self.xp, u5, g5, plan)

    def tv_ops(self, plan, dtype):
        return TVOps(self.xp, plan, dtype)

    def float_input(self, a, name, ndim, *, scale_ints):
        if self.home is not None:
            return self.home.float_input(a, name, ndim, scale_ints=scale_ints)
        return super().float_input(a, name, ndim, scale_ints=scale_ints)

    def radon(self, geom, a, *, adjoint=False):
        if self.home is None:
            raise NotImplementedError("the whole-array backend projects through its home "
                                      "backend's Radon kernels; create it with home=")
        return self.home.radon(geom, a, adjoint=adjoint)

    def cp_state(self, f5, weight, plan, *, identity):
        return CPArray(self.xp, f5, weight, plan, identity=identity)

    def mm_state(self, f5, weight, beta, smoothing, plan, *, c0):
        return MMArray(self.xp, f5, weight, beta, smoothing, plan, c0=c0)

    def sumsq(self, a) -> float:
        return _sumsq(self.xp, a)
