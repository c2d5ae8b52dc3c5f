"""The Fenchel duality gap of ``½‖Au − f‖² + weight · TV_β(u)`` for β ≥ 1, any linear ``A``.

Write the regulariser as ``Σ_i φ((Du)_i)`` with ``φ(v) = λ (|v|² + s²)^(β/2)``
(``λ = weight``; ``v`` the differences of one pixel over the axes and channels
when isotropic, one difference otherwise).  Fenchel–Rockafellar duality gives,
for every ``q`` on the data grid and ``p`` on the differences with
``Aᵀq + Dᵀp = 0``,

    D(p, q) = −½‖q‖² − ⟨q, f⟩ − Σ_i φ*(p_i)  ≤  P* = min_u P(u),

so ``(P(u) − D)/D`` bounds ``(P(u) − P*)/P*`` from above whenever ``D > 0``:
whatever ``A`` is, ``AᵀA`` singular included.  The conjugate is

* ``s = 0``, β > 1: ``φ*(p) = (1 − 1/β) |p| (|p| / (λβ))^(1/(β−1))``, finite everywhere;
* ``s > 0``, β > 1: ``φ*(p) = |p| r − λ(r² + s²)^(β/2)`` at the radius ``r`` with
  ``λβ r (r² + s²)^(β/2 − 1) = |p|``, found per pixel by Newton's method (monotone
  from the start chosen, to rounding);
* β = 1: ``φ*(p) = −s √(λ² − |p|²)`` for ``|p| ≤ λ``, ``+∞`` outside.

The dual point comes from the iterate: ``q = Au − f`` and ``p = ∇φ(Du)``, for which
``Aᵀq + Dᵀp = ∇P(u)``.  Two corrections make it feasible.  First, ``Dᵀp`` sums to
zero over each batch item and channel (the constants are ``D``'s null space), so
``q`` moves along ``A`` of those constants until ``Aᵀq`` does too (a least-squares
solve with one unknown per batch item and channel).  Then ``p`` takes the rest,
``p ← p − D(DᵀD)⁺(Aᵀq + Dᵀp)``: ``DᵀD`` is the Neumann Laplacian, diagonal in the
DCT-II basis, so that is one DCT pair.  With β = 1 the pair is then scaled into
``|p| ≤ λ`` (the constraint is linear, so it stays feasible).  The gap tends to 0 as
``u`` tends to the minimiser, where ``∇P = 0`` leaves nothing to correct.  Everything
is computed in float64.
"""

from __future__ import annotations

import math

import numpy as np

from ._common import certificate

#: Where the data term's strong-convexity modulus ``μ`` is below this fraction of
#: ``‖A‖²`` (or 0), the ratio ``½‖∇F‖²/μ / (F − ½‖∇F‖²/μ)`` is slow to fall or no
#: bound at all, and the duality gap is evaluated as well.
ILL_CONDITIONED = 1e-2
#: Whatever the gradient does, the dual value is evaluated again after this many
#: iterations at the latest, or after as many as have run so far once more have.
FIRST_SPACING = 10
#: After an evaluation the next one waits for ``‖∇F‖²`` to fall by this factor at
#: least (and by ``eps / gap`` where that is smaller).
GRAD_DROP = 0.5
#: Newton steps of the per-pixel conjugate with smoothing (it converges in 5–8).
NEWTON_STEPS = 60


def uses_dual(beta: float, weight: float, data) -> bool:
    """Whether the stopping quantity of ``data`` with ``weight`` · β-TV needs the
    duality gap: a convex problem (β ≥ 1) of the least-squares term whose ``AᵀA`` is
    singular or ill-conditioned.  Not with ``weight = 0``, where the dual needs
    ``Aᵀq = 0`` exactly, a least-squares solve of its own."""
    if beta < 1.0 or weight <= 0 or not data.loss.quadratic:
        return False
    mu = float(data.mu)
    if mu <= 0:
        return True
    return mu < ILL_CONDITIONED * float(data.op_norm()) ** 2


class DualValue:
    """``D(p, q)`` at the feasible pair built from an iterate (see the module docstring).

    Parameters
    ----------
    backend : Backend
        The solve's backend (its array module, FFT and TV operators).
    plan : Plan
        β, isotropy, spacing and the canonical layout.
    data : DataTerm
        The least-squares data term, bound to ``backend``.
    weight, smoothing : float
        ``λ`` and ``s`` of the objective the solver minimises.
    """

    def __init__(self, backend, plan, data, weight: float, smoothing: float):
        xp = backend.xp
        self.xp, self.fft = xp, backend.fft
        self.data = data.at_float64()
        self.f = xp.asarray(self.data.f, dtype=xp.float64)
        self.tvo = backend.tv_ops(plan, np.float64)
        self.iso = plan.isotropic
        self.beta, self.lam, self.s = float(plan.beta), float(weight), float(smoothing)
        self.shape = tuple(self.data.f_shape())
        self._laplacian = None
        self._null_images()

    # --- the constants' images: D's null space seen through A -------------------------
    def _null_images(self):
        """``A e_k`` and ``AᵀA e_k`` for the constant ``e_k`` of each batch item and
        channel ``k``, and the pseudo-inverse of their Gram matrix."""
        xp, data = self.xp, self.data
        B, C = self.shape[0], self.shape[1]
        if data.separable:
            # A acts on each batch item and channel alone: one application serves all.
            a1 = xp.asarray(data.forward(xp.ones(self.shape, xp.float64)), dtype=xp.float64)
            self.sep = (a1, xp.asarray(data.adjoint(a1), dtype=xp.float64))
            gram = self._slice_sums(a1 * a1)
            keep = gram > 1e-14 * float(gram.max(initial=0.0))
            self.sep_inv = np.where(keep, 1.0 / np.where(keep, gram, 1.0), 0.0)
            return
        self.sep = None
        images, normals = [], []
        for k in range(B * C):
            e = xp.zeros(self.shape, xp.float64)
            e[k // C, k % C] = 1.0
            ae = xp.asarray(data.forward(e), dtype=xp.float64)
            images.append(ae)
            normals.append(xp.asarray(data.adjoint(ae), dtype=xp.float64))
        gram = np.array([[float(xp.vdot(a.ravel(), b.ravel())) for b in images]
                         for a in images])
        self.images, self.normals = images, normals
        self.gram_pinv = np.linalg.pinv(gram, rcond=1e-12)

    def _slice_sums(self, a):
        """Sums over each batch item and channel, on the host, shape ``(B, C)``."""
        sums = a.reshape(a.shape[0], a.shape[1], -1).sum(axis=2)
        return np.asarray(sums.get() if hasattr(sums, "get") else sums, dtype=np.float64)

    def _balance(self, q, atq):
        """Move ``q`` (and ``Aᵀq`` with it) along ``A e_k`` so that ``Aᵀq`` sums to zero
        over each batch item and channel, in place."""
        xp = self.xp
        sums = self._slice_sums(atq)
        if self.sep is not None:
            a1, ata1 = self.sep
            c = xp.asarray(sums * self.sep_inv).reshape(sums.shape + (1,) * (a1.ndim - 2))
            q -= c * a1
            atq -= c * ata1
            return
        c = self.gram_pinv @ sums.ravel()
        for ck, ae, atae in zip(c, self.images, self.normals):
            if ck != 0.0:
                q -= ck * ae
                atq -= ck * atae

    # --- the Neumann Laplacian -------------------------------------------------------
    def _pinv_laplacian(self, r):
        """``(DᵀD)⁺ r`` per batch item and channel: one DCT-II pair (the constants,
        ``DᵀD``'s null space, are dropped)."""
        xp, fft, tvo = self.xp, self.fft, self.tvo
        axes = tuple(tvo.axes)
        if self._laplacian is None:
            lap = xp.zeros([r.shape[a] if a in axes else 1 for a in range(r.ndim)],
                           xp.float64)
            for ax, ih in zip(axes, tvo.ih):
                n = r.shape[ax]
                k = xp.arange(n, dtype=xp.float64)
                shape = [1] * r.ndim
                shape[ax] = n
                # (2/h · sin)²: the DCT-II eigenvalues of D_dᵀD_d.
                eig = ((2.0 * float(ih)) * xp.sin(np.pi * k / (2 * n))) ** 2
                lap = lap + eig.reshape(shape)
            lap[(0,) * r.ndim] = np.inf  # the constant mode: no component, (DᵀD)⁺
            self._laplacian = lap
        if not axes:
            return xp.zeros_like(r)
        R = fft.dctn(r, type=2, norm="ortho", axes=axes)
        R /= self._laplacian
        return fft.idctn(R, type=2, norm="ortho", axes=axes, overwrite_x=True)

    # --- φ, ∇φ and φ* ------------------------------------------------------------------
    def _magnitude(self, p):
        """``|p|`` per term of the sum: per pixel over the axes and channels
        (isotropic), per difference otherwise (a list then)."""
        if self.iso:
            return [self.xp.sqrt(sum((d * d).sum(axis=1, keepdims=True) for d in p))]
        return [self.xp.abs(d) for d in p]

    def _flux(self, diffs):
        """``∇φ(Du)``, in place of the differences."""
        xp, beta, lam, s2 = self.xp, self.beta, self.lam, self.s * self.s
        ms = ([sum((d * d).sum(axis=1, keepdims=True) for d in diffs) + s2] if self.iso
              else [d * d + s2 for d in diffs])
        ws = []
        for m in ms:
            pos = m > 0
            ws.append(xp.where(pos, (lam * beta) * xp.where(pos, m, 1.0) ** (beta / 2 - 1), 0.0))
        for i, d in enumerate(diffs):
            d *= ws[0] if self.iso else ws[i]
        return diffs

    def _conjugate_sum(self, a) -> float:
        """``Σ φ*(a)`` for magnitudes ``a ≥ 0`` (β > 1)."""
        xp, beta, lam, s = self.xp, self.beta, self.lam, self.s
        if s == 0.0:
            return float(((1.0 - 1.0 / beta) * a * (a / (lam * beta)) ** (1.0 / (beta - 1))).sum())
        # In units of s: t = r/s solves h(t) = t (1 + t²)^(β/2 − 1) = b.  In x = log t the
        # equation is convex (β > 2) or concave (β < 2) with slope between 1 and β − 1, so
        # Newton's method converges monotonically from a start on the proper side.
        b = a / (lam * beta * s ** (beta - 1))
        pos = b > 0
        lb = xp.log(xp.where(pos, b, 1.0))
        x = (xp.minimum if beta > 2 else xp.maximum)(lb, lb / (beta - 1))
        for _ in range(NEWTON_STEPS):
            slope = 1.0 + (beta - 2) / (1.0 + xp.exp(-2.0 * x))  # e^(−2x) = inf: slope 1
            step = (x + (beta / 2 - 1) * xp.logaddexp(0.0, 2.0 * x) - lb) / slope
            x = x - step
            if not bool(xp.any(pos & (xp.abs(step) > 4e-15 * (1.0 + xp.abs(x))))):
                break
        t = xp.where(pos, xp.exp(x), 0.0)
        values = a * (s * t) - lam * s ** beta * (1.0 + t * t) ** (beta / 2)
        return float(values.sum())

    # --- the dual value ----------------------------------------------------------------
    def __call__(self, u) -> float:
        """``D(p, q)`` at the feasible pair built from ``u`` (float64; ``−inf`` where
        ``φ*`` overflows, far from the minimiser with β near 1)."""
        with np.errstate(over="ignore", invalid="ignore"):
            value = self._value(u)
        return value if not math.isnan(value) else -math.inf

    def _value(self, u) -> float:
        xp, data, tvo = self.xp, self.data, self.tvo
        u = xp.asarray(u, dtype=xp.float64).reshape(self.shape)
        q = xp.asarray(data.forward(u), dtype=xp.float64) - self.f
        atq = xp.asarray(data.adjoint(q), dtype=xp.float64)
        if xp.may_share_memory(atq, q):  # an adjoint that returns its input (A = I)
            atq = atq.copy()
        self._balance(q, atq)
        p = self._flux(tvo.grad(u))
        atq += tvo.div(p)  # the residual Aᵀq + Dᵀp, now orthogonal to the constants
        x = self._pinv_laplacian(atq)
        del atq
        for d, dx in zip(p, tvo.grad(x)):
            d -= dx
        del x
        qq = float(xp.vdot(q.ravel(), q.ravel()))
        qf = float(xp.vdot(q.ravel(), self.f.ravel()))
        mags = self._magnitude(p)
        del p
        if self.beta > 1.0:
            return -0.5 * qq - qf - sum(self._conjugate_sum(a) for a in mags)
        # β = 1: scale (q, p) by θ into |p| ≤ λ; without smoothing the best θ of the
        # concave quadratic −½θ²‖q‖² − θ⟨q, f⟩ on [0, θ_max] is free.
        top = max(float(a.max()) for a in mags)
        theta_max = 1.0 if top <= self.lam else self.lam / top
        if self.s == 0.0:
            theta = min(max(-qf / qq, 0.0), theta_max) if qq > 0 else 0.0
            return -0.5 * theta * theta * qq - theta * qf
        theta = theta_max
        inside = sum(float(xp.sqrt(xp.maximum(self.lam ** 2 - (theta * a) ** 2, 0.0)).sum())
                     for a in mags)
        return -0.5 * theta * theta * qq - theta * qf + self.s * inside


def relative_gap(F: float, dual: float) -> float:
    """``(F − D)/D``: a bound on ``(F − F*)/F*`` for ``D ≤ F*`` (0 where rounding puts
    ``D`` above ``F``; ``inf`` while ``D ≤ 0``)."""
    if dual >= F:
        return 0.0
    return (F - dual) / dual if dual > 0 else math.inf


class StoppingRule:
    """The stopping quantity of the smooth solvers (L-BFGS, majorize–minimize, DCT),
    given ``F(u)`` and ``‖∇F(u)‖²`` at each iterate.

    * β ≥ 1 and a strongly convex data term (``μ`` not below :data:`ILL_CONDITIONED`
      ``·‖A‖²``): ``½‖∇F‖²/μ / (F − ½‖∇F‖²/μ)``, a bound on ``(F − F*)/F*`` that costs
      nothing.
    * β ≥ 1 otherwise: the duality gap ``(F − D_best)/D_best``, with ``D_best`` the
      largest dual value (:class:`DualValue`) found so far.  Every dual value is a lower
      bound on ``F*`` for good, so the gap is a bound at every iterate while the dual is
      evaluated only now and then: first at the start, then once ``‖∇F‖²`` has fallen
      by ``eps/gap`` (the gap shrinks about as fast as ``‖∇F‖``, so this comes early)
      or the iterations since the last evaluation have doubled.  Where ``μ > 0`` the
      smaller of the two bounds.
    * β < 1 (non-convex): the same ratio with ``mu_stationary``, a relative stationarity
      measure, not a bound.

    Parameters
    ----------
    problem : Problem
        The solve (β, weight, ``eps``, backend).
    data : DataTerm
        The data term, bound.
    smoothing : float
        ``s`` of the objective minimised.
    mu_stationary : float
        The ``μ`` of the ratio for β < 1.
    """

    def __init__(self, problem, data, smoothing: float, mu_stationary: float = 1.0):
        beta = problem.plan.beta
        self.eps = problem.eps
        self.mu = float(data.mu) if beta >= 1 else 0.0
        self.mu_ratio = self.mu if self.mu > 0 else mu_stationary
        self.dual = (DualValue(problem.backend, problem.plan, data, problem.weight, smoothing)
                     if uses_dual(beta, problem.weight, data) else None)
        self.best = -math.inf
        self.last_it = None
        self.next_gg = math.inf
        self.next_it = 0

    def __call__(self, F: float, gg: float, u, it: int) -> float:
        """The stopping quantity at iterate ``it`` (``u`` in the canonical layout or flat)."""
        ratio = certificate(F, gg, self.mu_ratio)
        if self.dual is None or (self.mu > 0 and ratio <= self.eps):
            return ratio
        if gg <= self.next_gg or it >= self.next_it:
            self._evaluate(u, it)
            gap = relative_gap(F, self.best)
            drop = self.eps / gap if 0 < gap < math.inf else self.eps
            self.next_gg = gg * min(GRAD_DROP, drop)
            self.next_it = it + max(FIRST_SPACING, it)
        gap = relative_gap(F, self.best)
        return min(gap, ratio) if self.mu > 0 else gap

    def final(self, F: float, gap: float, u, it: int) -> float:
        """The quantity to report for the returned iterate: ``gap``, or where it is above
        ``eps`` the duality gap evaluated there (when not evaluated at ``it`` already)."""
        if self.dual is None or gap <= self.eps or self.last_it == it:
            return gap
        self._evaluate(u, it)
        return min(gap, relative_gap(F, self.best))

    def _evaluate(self, u, it):
        self.best = max(self.best, self.dual(u))
        self.last_it = it
