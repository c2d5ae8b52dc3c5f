"""The Numba CPU backend: parallel ``@njit`` kernels on NumPy arrays.

Modules:

* :mod:`.tv_kernels` -- the β-TV value and gradient (fused, one pass);
* :mod:`.solver_kernels` -- the passes of the primal-dual and
  majorize-minimize solvers;
* :mod:`.vector_kernels` -- the solvers' fused vector operations (no BLAS);
* :mod:`.radon_kernels` -- the parallel-beam Radon projector pair.

How a case is specialised: every kernel is compiled once per dtype
(``cache=True``) and takes the specialisation -- number of spatial axes
``nd``, β mode (1: one sqrt, 2: no power, other: a vectorised power),
isotropy -- as runtime arguments tested *outside* the inner loops, so every
inner loop is branch-free and vectorises while the cold compile stays at
seconds instead of one whole kernel per case.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

import numba

from ..._validate import KERNEL_NDIM, Plan
from ..array import TVOps
from ..base import Backend
from . import radon_kernels
from . import solver_kernels as kernels
from . import vector_kernels
from .tv_kernels import beta_mode, tv_canonical


class CpuBackend(Backend):
    """NumPy arrays, Numba CPU kernels (one to three spatial axes)."""

    name = "cpu"
    xp = np
    host = True

    ops = vector_kernels

    def for_plan(self, plan: Plan) -> Backend:
        if plan.n_spatial > KERNEL_NDIM:
            from ..array import ArrayBackend

            return ArrayBackend(np, home=self)
        return self

    def bring(self, u):
        return np.asarray(u)

    def canonical(self, a, plan: Plan):
        return np.ascontiguousarray(plan.to_canonical(a))

    def tv5(self, u5, g5, plan: Plan, strict: bool = False):
        """As :meth:`Backend.tv5`; ``strict`` marks a batch item NaN where a
        square or a power left the dtype's range (see :meth:`tv`)."""
        return tv_canonical(
            u5, g5, nd=min(plan.n_spatial, KERNEL_NDIM),
            inv_spacing=plan.canonical_inv_spacing, smoothing=plan.smoothing,
            beta=plan.beta, isotropic=plan.isotropic, scale=plan.scale(), strict=strict)

    def tv(self, u, plan: Plan, want_grad: bool, out=None, *, strict: bool = True):
        """As :meth:`Backend.tv`, exact over the whole float range: where the
        kernels' squares or powers leave the dtype's range (NaN/Inf sums of
        finite input, ``s²`` or ``1/h`` beyond the dtype), recomputed by
        :func:`_rescaled_tv`.  Normal input costs no extra pass."""
        fmax = float(np.finfo(plan.dtype).max)
        if strict and (plan.smoothing > math.sqrt(fmax) or max(plan.inv_spacing) > fmax):
            return _rescaled_tv(self, u, plan, want_grad, out)
        values, grad = super().tv(u, plan, want_grad, out, strict=strict)
        if strict and not np.isfinite(values).all():
            return _rescaled_tv(self, u, plan, want_grad, grad if want_grad else None)
        return values, grad

    def radon(self, geom, a, *, adjoint=False):
        cos_t, sin_t = geom.trig()
        if not adjoint:
            out = np.empty(geom.sinogram_shape, a.dtype)
            radon_kernels.forward(np.ascontiguousarray(geom.square(a)), cos_t, sin_t, out)
            return out
        P = geom.size
        # From the pool's size: the chunks fix the order of the sums, whatever the count.
        n_chunks = max(1, min(numba.config.NUMBA_NUM_THREADS, len(geom.theta) * P))
        sq = np.empty((P, P), a.dtype)
        radon_kernels.adjoint(np.ascontiguousarray(a), cos_t, sin_t, P, n_chunks, sq)
        return geom.unsquare(sq)

    def tv_ops(self, plan, dtype):
        return TVOpsNumba(plan, dtype)

    def cp_state(self, f5, weight, plan, *, identity):
        return CPNumba(f5, weight, plan, identity=identity)

    def mm_state(self, f5, weight, beta, smoothing, plan, *, c0):
        return MMNumba(f5, weight, beta, smoothing, plan, c0=c0)


def _unit_setup(shape, plan: Plan, dtype):
    T = np.dtype(dtype).type
    rows, nunits = kernels.n_units(shape)
    return T, tuple(T(h) for h in plan.canonical_inv_spacing), rows, nunits


class CPNumba:
    """β = 1 primal–dual iterates on a C-contiguous canonical ``(B, C, z, y, x)``
    NumPy array: two fused Numba passes per iteration, or one (:meth:`step`) for
    one or two spatial axes with the identity data term.

    ``dual_step``: ``p ← proj_{|p| ≤ w}(p + σ D ū)`` (over-relaxed by ``ω`` when asked:
    ``p ← p + ω (proj(…) − p)``); ``primal_step``: with
    the identity data term ``u' = (u − τ Dᵀp + τ f)/(1 + τ)``,
    ``ū = u' + θ(u' − u)``, returning ``‖f − Dᵀp‖²`` (the dual objective's
    term) when asked; with another data term ``ū = u − τ Dᵀp`` only, whose
    proximal step the solver takes.  ``p[d]`` is the difference along axis
    ``d`` counted from the innermost (0: x, 1: y, 2: z).
    """

    def __init__(self, f5, weight, plan: Plan, *, identity: bool):
        self.f = np.ascontiguousarray(f5)
        self.T, self.ih, self.rows, self.nunits = _unit_setup(f5.shape, plan, f5.dtype)
        self.nd = min(plan.n_spatial, KERNEL_NDIM)
        self.u = self.f.copy()
        self.ub = self.f.copy()
        self.p = np.zeros((self.nd,) + f5.shape, f5.dtype)
        self.iso, self.weight, self.identity = plan.isotropic, weight, identity
        self.inv_spacing = plan.canonical_inv_spacing
        self.partial = np.zeros(self.nunits, np.float64)
        self.partial2 = np.empty(self.nunits, np.float64)
        # One pass per iteration (step) for the identity data term on one plane.
        self.fused = identity and self.nd <= 2 and f5.shape[2] == 1
        if self.fused:
            _, C, _, H, W = f5.shape
            self._starts = np.arange(0, H, self.rows)
            self._ends = np.minimum(self._starts + self.rows, H) - 1
            self._snap_first = np.empty((2, C, self.nunits, 1, W), f5.dtype)
            self._snap_last = np.empty_like(self._snap_first)
            self._snap_p = np.empty((self.nd, 2, C, self.nunits, 1, W), f5.dtype)
            self._cur = -1  # no valid snapshot

    def _snapshot(self):
        """The unit-boundary rows of ū and p that :func:`cp_fused_step` reads from
        slot ``_cur`` (it writes the next iteration's into the other slot)."""
        C, W = self.f.shape[1], self.f.shape[4]
        n = self.nunits
        ub, p = self.ub[:, :, 0], self.p[:, :, :, 0]  # (B, C, H, W), (nd, B, C, H, W)
        # unit = b · (units per plane) + block: (B, C, blocks, W) -> (C, units, W)
        self._snap_first[0, :, :, 0] = ub[:, :, self._starts].transpose(1, 0, 2, 3).reshape(
            C, n, W)
        self._snap_last[0, :, :, 0] = ub[:, :, self._ends].transpose(1, 0, 2, 3).reshape(
            C, n, W)
        self._snap_p[:, 0, :, :, 0] = p[:, :, :, self._ends].transpose(0, 2, 1, 3, 4).reshape(
            self.nd, C, n, W)
        self._cur = 0

    def sumsq_f(self) -> float:
        # Once per solve: NumPy's buffered float64 sum spares a cold start a kernel compile.
        flat = self.f.reshape(-1)
        return float(np.einsum("i,i->", flat, flat, dtype=np.float64))

    def step(self, sigma, tau, theta, want_residual) -> float:
        """:meth:`dual_step` then :meth:`primal_step`: one fused pass for one or
        two spatial axes and the identity data term, else the two passes."""
        if not self.fused:
            self.dual_step(sigma)
            return self.primal_step(tau, theta, want_residual)
        if self._cur < 0:
            self._snapshot()
        T = self.T
        kernels.cp_fused_step(self.u, self.ub, self.f, self.p, self._snap_first,
                              self._snap_last, self._snap_p, self._cur, T(sigma),
                              T(self.weight), T(tau), T(theta), T(1), self.ih[1], self.ih[2],
                              self.nd, self.iso, self.rows, self.nunits, want_residual,
                              self.partial)
        self._cur = 1 - self._cur
        return float(self.partial.sum()) if want_residual else 0.0

    def dual_step(self, sigma, om=1.0):
        if self.fused:
            self._cur = -1  # the snapshots go stale
        kernels.cp_dual_step(self.ub, self.p, self.T(sigma), self.T(self.weight), self.T(om),
                             *self.ih, self.nd, self.iso, self.rows, self.nunits)

    def primal_step(self, tau, theta, want_residual) -> float:
        if self.fused:
            self._cur = -1
        T = self.T
        kernels.cp_primal_step(self.u, self.ub, self.f, self.f, self.p, T(tau), T(theta), T(1),
                               *self.ih, self.nd, self.rows, self.nunits, want_residual,
                               self.partial, 1 if self.identity else 0)
        return float(self.partial.sum()) if want_residual and self.identity else 0.0

    def diagonal_step(self, tau, theta, om, m, f) -> None:
        """The primal step with the proximal step of ``½‖m ⊙ u − f‖²`` in the same pass:
        ``u' = (u − τ Dᵀp + τ m f)/(1 + τ m²)``, ``ū = u' + θ(u' − u)``,
        ``u ← u + ω(u' − u)``."""
        T = self.T
        kernels.cp_primal_step(self.u, self.ub, np.ascontiguousarray(f),
                               np.ascontiguousarray(m), self.p, T(tau), T(theta), T(om),
                               *self.ih, self.nd, self.rows, self.nunits, False, self.partial,
                               2)

    def dual_fields(self):
        """``(axis, 1/h, p_axis)`` of every differenced canonical axis (for
        :mod:`tvnumba.solvers._polish`)."""
        return [(4 - d, self.ih[2 - d], self.p[d]) for d in range(self.nd)]

    def masked_gap_sums(self, m, f, box, transfer=False):
        """``(Σ (m u − f)², D, TV₁(u))`` (float64): the box gap's terms of a diagonal data
        term on the per-pixel ``box`` (:class:`tvnumba.solvers._box.PixelBox`) at ``u`` and
        the projected dual (with ``transfer``, one channel: the holes' residuals moved to
        known neighbours), in one pass (:func:`.solver_kernels.masked_gap`)."""
        sums = np.empty((self.nunits, 3), np.float64)
        kernels.masked_gap(self.u, np.ascontiguousarray(f), np.ascontiguousarray(m), self.p,
                           self.T(self.weight), float(box.lo), float(box.hi),
                           float(box.kappa), np.ascontiguousarray(box.labels), box.hole_lo,
                           box.hole_hi, *self.ih, self.nd, self.iso, bool(transfer), self.rows,
                           self.nunits, sums)
        return tuple(float(v) for v in sums.sum(axis=0))

    def primal_terms(self):
        """(½‖u − f‖², TV₁(u)) in float64 (the first is 0 without the identity
        data term, which then evaluates its own)."""
        fid, tv1 = self.partial, self.partial2
        kernels.rof_primal(self.u, self.f, *self.ih, self.nd, self.iso,
                   self.rows, self.nunits, fid, tv1)
        return (float(fid.sum()) if self.identity else 0.0), float(tv1.sum())


class TVOpsNumba(TVOps):
    """:class:`~tvnumba.backends.array.TVOps` with the preconditioned primal–dual's
    steps as fused Numba passes (:func:`.solver_kernels.pd_primal_step`,
    :func:`.solver_kernels.pd_dual_step`, :func:`.solver_kernels.pd_dual_power_step`) on
    C-contiguous canonical arrays."""

    def __init__(self, plan: Plan, dtype):
        super().__init__(np, plan, dtype)
        self.canonical_ih = tuple(self.dtype.type(h) for h in plan.canonical_inv_spacing)

    def pd_primal(self, u, ut, ub, p, atr, tau, om, nonneg) -> None:
        rows, nunits = kernels.n_units(u.shape)
        kernels.pd_primal_step(u, ut, ub, p, atr, tau, self.dtype.type(om), bool(nonneg),
                               *self.canonical_ih, len(self.axes), rows, nunits)

    def pd_dual(self, p, pt, ub, sig, weight, om) -> None:
        rows, nunits = kernels.n_units(ub.shape)
        T = self.dtype.type
        kernels.pd_dual_step(ub, p, pt, sig, T(weight), T(om), *self.canonical_ih,
                             len(self.axes), self.iso, rows, nunits)

    def pd_dual_power(self, p, pt, ub, sig, weight, beta, om) -> None:
        rows, nunits = kernels.n_units(ub.shape)
        T = self.dtype.type
        kernels.pd_dual_power_step(ub, p, pt, sig, T(weight * beta), T(beta), T(om),
                                   *self.canonical_ih, len(self.axes), self.iso, rows, nunits)


class MMNumba:
    """Majorize–minimize operators on a C-contiguous canonical NumPy array:
    the weights ``a = weight·β (m + s²)^(β/2 − 1)`` of the majorizer at a
    point, and the operator ``c0·I + Dᵀ diag(a) D`` with its diagonal."""

    def __init__(self, f5, weight, beta, smoothing, plan: Plan, *, c0: float):
        self.f = np.ascontiguousarray(f5)
        T, self.ih, self.rows, self.nunits = _unit_setup(f5.shape, plan, f5.dtype)
        self.nd = min(plan.n_spatial, KERNEL_NDIM)
        self.iso = plan.isotropic
        self.a = np.empty((self.nd,) + f5.shape, f5.dtype)
        self.partial = np.empty(self.nunits, np.float64)
        self.consts = (T(weight), T(smoothing * smoothing), T(beta / 2 - 1), T(beta),
                       beta_mode(beta), f5.dtype == np.float32)
        self.c0 = T(c0)

    def weights_and_tv(self, x) -> float:
        """Weights at x (kept for apply/diag); returns TV_β(x) (float64 sum)."""
        kernels.irls_weights(x, self.a, *self.consts, *self.ih, self.nd, self.iso, self.rows,
                     self.nunits, self.partial)
        return float(self.partial.sum())

    def apply(self, x, out) -> float:
        """out = c0·x + Dᵀ(a ⊙ D x); returns x·out."""
        return kernels.irls_apply(x, self.a, out, self.c0, *self.ih, self.nd, self.rows, self.nunits,
                          self.partial)

    def diag(self):
        """Diagonal of ``c0·I + Dᵀ diag(a) D``."""
        diag = np.empty_like(self.f)
        kernels.irls_diag(self.a, diag, self.c0, *self.ih, self.nd, self.rows, self.nunits)
        return diag


def _rescaled_tv(backend: CpuBackend, u, plan: Plan, want_grad: bool, out=None):
    """:meth:`CpuBackend.tv` where a square or power of the kernels left the
    dtype's range although ``u`` is finite (rare: huge or tiny differences,
    spacing or smoothing).  float32 is recomputed in float64 (whose range
    holds every float32 square); float64 uses homogeneity with a power of two
    c = 2**k (exact): TV_s(u) = c**β TV_{s/c}(u/c), ∇TV_s(u) = c**(β-1)
    ∇TV_{s/c}(u/c), with k taken from max|u|/h and s.  Raises ValueError where
    the value or the gradient is not representable."""
    u = np.asarray(u)
    if plan.dtype == np.float32:
        values, g64 = _rescaled_tv(backend, u.astype(np.float64), dataclasses.replace(
            plan, dtype=np.dtype(np.float64)), want_grad)
        if not want_grad:
            return values, None
        if not np.all(np.abs(g64) <= np.finfo(np.float32).max):
            raise ValueError(
                f"the TV gradient overflows float32 (beta={plan.beta!r}, max|u|="
                f"{float(np.max(np.abs(u)))!r}); pass float64 input")
        grad = out if out is not None else np.empty_like(u, dtype=np.float32)
        grad[...] = g64
        return values, grad
    amax = float(np.max(np.abs(u)))
    kh = math.frexp(max(plan.inv_spacing))[1]  # 1 / (h 2**kh) < 1
    k = math.frexp(amax)[1] + kh  # |D u| / 2**k < 2 and s / 2**k < 1
    if plan.smoothing > 0:
        k = max(k, math.frexp(plan.smoothing)[1])
    ku = k - kh
    v = np.ldexp(u, -ku)
    scaled = dataclasses.replace(
        plan, inv_spacing=tuple(math.ldexp(h, -kh) for h in plan.inv_spacing),
        smoothing=math.ldexp(plan.smoothing, -k))
    values, grad = backend.tv(v, scaled, want_grad, out, strict=False)

    def times_pow2(x, e):  # x * 2**e without overflow of 2**e alone
        n = math.floor(e)
        with np.errstate(over="ignore"):
            return np.ldexp(np.asarray(x, np.float64) * 2.0 ** (e - n), n)

    values = times_pow2(values, k * plan.beta)
    if not np.isfinite(values).all():
        big = ("smoothing" if plan.smoothing >= amax * max(plan.inv_spacing)
               else "spacing" if min(plan.inv_spacing) > 1 else "u")
        raise ValueError(
            f"the TV value overflows float64 (beta={plan.beta!r}, smoothing="
            f"{plan.smoothing!r}, max|u|={amax!r}, 1/spacing={plan.inv_spacing!r}): "
            f"reduce {big} or beta")
    if want_grad:
        grad[...] = times_pow2(grad, k * plan.beta - ku)
        if not np.isfinite(grad).all():
            raise ValueError(
                f"the TV gradient overflows float64 (beta={plan.beta!r}, max|u|={amax!r})")
    return values, grad
