"""The duality gap of ``KL(A u + b; y) + weight · TV_β(u)``, ``u ≥ 0``, β ≥ 1, that bounds
the objective error.

For ``|p| ≤ weight`` (pointwise), ``r ≥ 0`` (``> 0`` where ``y > 0``) and a closed convex
set ``C`` that contains a minimiser ``u*``,

    D(p, r) = Σ y log r + b (1 − r) − σ_C(w),   w = Aᵀr − Aᵀ1 − Dᵀp,

with ``σ_C(w) = sup_{u∈C} ⟨w, u⟩``, is at most the optimal value ``P*``: for ``u ∈ C``,
``weight·TV(u) ≥ ⟨Du, p⟩`` and ``L(Au) ≥ ⟨Au, 1 − r⟩ − L*(1 − r)`` (Fenchel–Young), so
``P(u) ≥ −⟨w, u⟩ − L*(1 − r) ≥ D(p, r)``; take ``u = u*``.  The sets:

* ``A = I``: ``C = [0, M]``, ``M = max(y − b)₊`` — cutting ``u`` at ``M`` raises no
  difference and lowers the loss where ``u > M``, so every minimiser lies below ``M``;
* ``A ≥ 0``, per batch item and channel: ``C = {0 ≤ u ≤ U, ⟨Aᵀ1, u⟩ ≤ S}`` with
  ``S = Σ y`` (the optimality conditions tested with ``u*``, TV being 1-homogeneous, give
  ``Σ A u* (1 − y / (A u* + b)) ≤ 0``) and ``U = S / Σ Aᵀ1 + √d · h_max · P_best / weight``
  (the weighted mean bounds the minimum, and a monotone lattice path bounds the range
  by ``√d h_max TV(u*) ≤ √d h_max P* / weight``); ``σ_C`` is a fractional knapsack.

The raw dual iterate violates ``w ≤ 0`` slightly almost everywhere, which ``σ_C`` would
multiply by ``U``; before evaluating ``D`` the dual point is repaired, staying
admissible: positive violations in the outer band of an extended grid are pushed inwards
through ``p`` (re-projected on the ball), then ``r`` is lowered locally (``δ`` = the
largest violation per unit of ``Aᵀ1`` over the pixels each datum sees, at most ``½ r``).

β > 1 replaces the ball by the conjugate ``g*(p) = (β − 1) weight (|p| / (weight β))^(β/(β−1))``
of ``g = weight |·|^β``: ``D(p, r) = Σ y log r + b (1 − r) − Σ g*(p) − σ_C(w)``.  The flux
bound holds as before (``TV_β`` is β-homogeneous, so the same test gives
``Σ A u* (1 − y / (A u* + b)) = −β weight TV_β(u*) ≤ 0``); no range bound is used.  Besides
the solver's dual point, the one the primal iterate determines, ``p = ∇g(Du)``,
``r = y / (Au + b)``, is tried: it tends to the dual optimum as ``u`` converges, where the
solver's own dual point trails.
"""

from __future__ import annotations

import math

#: Rounds of the data-side repair.
REPAIR_ROUNDS = 2
#: Accelerated projected-gradient steps that move the dual ``p`` towards feasibility
#: before the gap is evaluated (each the primal and dual passes of an iteration, without
#: its ``A`` and ``Aᵀ``).
POLISH_STEPS = 30
#: The data-side repair keeps at least this fraction of ``r``.
REPAIR_KEEP = 0.5
#: Lifts ``η`` (times the mean count) tried where ``b = 0`` leaves ``P = ∞`` at a zero
#: of ``A u``: ``u + η`` has the same TV and is as valid a primal point.
LIFTS = (1e-8, 1e-6, 1e-4, 1e-3, 1e-2, 1e-1)


class Certificate:
    """Primal values and certified dual values of one problem, in float64 whatever the
    dtype of the solve (a float32 rounding of ``w`` times ``U`` would void the bound)."""

    def __init__(self, data, tvo, weight, beta=1.0):
        import numpy as np

        data = data.astype(np.float64)
        self.data, self.tvo, self.weight, self.beta = data, tvo, weight, beta
        xp = self.xp = data.xp
        self.a64 = a64 = xp.maximum(data.colsum(), 0)
        y = data.f
        self.mean_y = max(float(xp.mean(y)), 1e-12)
        if data.identity:
            self.box = max(float(xp.max(y - data.background)), 0.0)
        else:
            # Per batch item and channel where the term acts on each alone (the flux and
            # the range are bounded per connected grid); one set for a general operator,
            # whose range is bounded only where the unknown is one grid.
            self.box = None
            n = a64.shape[0] * a64.shape[1] if data.separable else 1
            self.flux = y.reshape(n, -1).sum(axis=1)  # S per slab
            mass = a64.reshape(n, -1).sum(axis=1)
            self.base = self.flux / xp.maximum(mass, 1e-300)
            h_max = max(1.0 / float(h) for h in tvo.ih)
            self.spread = math.sqrt(len(tvo.axes)) * h_max / weight
            if (n == 1 and a64.shape[0] * a64.shape[1] > 1) or beta != 1:
                self.spread = math.inf
        self.slabs = 1 if self.box is not None else self.flux.shape[0]
        self.widths = getattr(data, "ring_widths", lambda: None)()

    def primal(self, u):
        """``(P(u), the point it was evaluated at)``: ``u``, or ``u + η`` where ``b = 0``
        leaves ``P(u)`` infinite."""
        data = self.data
        u64 = u.astype(self.xp.float64)
        tv = self.weight * self.tv(u64)
        best = data.loss.value(data, data.forward(u64)) + tv
        cand = u
        if not math.isfinite(best):
            for lift in LIFTS:
                v = u + u.dtype.type(lift * self.mean_y)
                value = data.loss.value(data, data.forward(v.astype(self.xp.float64))) + tv
                if value < best:
                    best, cand = value, v
        return best, cand.copy()

    def tv(self, u64) -> float:
        """``TV_β(u)`` (float64)."""
        return self.tvo.tv1(u64) if self.beta == 1 else self.tvo.tv_power(u64, self.beta)

    def dual(self, p, r, p_best, u=None) -> float:
        """A lower bound on the optimal value from the dual point ``(p, r)`` (β > 1: and
        from the one that ``u`` determines, the larger)."""
        data, tvo, xp = self.data, self.tvo, self.xp
        r = r.astype(xp.float64)
        c = data.adjoint(1 - r)  # Aᵀ(1 − r) = a − Aᵀr
        if self.beta != 1:
            best = self._repaired(self._inwards([q.astype(xp.float64) for q in p], c),
                                  r, c, p_best)
            if u is not None:
                u64 = u.astype(xp.float64)
                y = data.f
                mu = data.forward(u64) + data.background
                ru = xp.where(y > 0, y / xp.where(y > 0, mu, 1.0), 0.0)
                if bool(xp.all(xp.isfinite(ru))):
                    cu = data.adjoint(1 - ru)
                    pu = self._inwards(tvo.power_dual(u64, self.weight, self.beta), cu)
                    best = max(best, self._repaired(pu, ru, cu, p_best))
            return best
        p = self._polish([q.astype(xp.float64) for q in p], c)
        if self.widths is not None:
            p = _ring_transfer(xp, p, c + tvo.div(p), tvo, self.widths, self.weight)
        return self._repaired(p, r, c, p_best)

    def _inwards(self, p, c):
        """β > 1: ``p`` with the violations in the outer band of an extended grid carried
        inwards (:func:`_ring_transfer`, no ball to return to)."""
        if self.widths is None:
            return p
        return _ring_transfer(self.xp, p, c + self.tvo.div(p), self.tvo, self.widths, None)

    def _repaired(self, p, r, c, p_best) -> float:
        """``D(p, r)`` after the data-side repair (``c = Aᵀ(1 − r)``)."""
        data, tvo, xp = self.data, self.tvo, self.xp
        w = -(c + tvo.div(p))
        a = self.a64
        for _ in range(REPAIR_ROUNDS):
            wp = xp.maximum(w, 0)
            if not bool(xp.any(wp > 0)):
                break
            v = xp.where(a > 0, wp / xp.where(a > 0, a, 1.0), 0.0)
            delta = data.dilate(v)
            if delta is None:
                break
            delta = xp.minimum(delta, (1 - REPAIR_KEEP) * r)
            r = r - delta
            w = w - data.adjoint(delta)
        conj = 0.0 if self.beta == 1 else tvo.power_conj(p, self.weight, self.beta)
        return data.loss.conj_value(data, r) - conj - self._support(w, p_best)

    def _polish(self, p, c):
        """``p`` moved within the ball towards ``w = −(c + Dᵀp) ≤ 0``: :data:`POLISH_STEPS`
        accelerated projected-gradient steps on ``½‖(c + Dᵀp)₋‖²`` (FISTA).  For a given
        ``r`` the dual value depends on ``p`` only through the violations ``w₊`` that
        ``σ_C`` multiplies by ``C``'s range, and the primal-dual's own ``p`` trails its
        ``u``; any ``p`` in the ball keeps the bound valid.  Each step is the backend's
        primal and dual passes (fused on the CPU): the primal step from ``u = 0`` with
        ``τ = 1`` and ``Aᵀr = c``, clipped at 0, is ``w₊``; the dual step with
        ``σ = 1/‖D‖²`` the projected gradient step; neither relaxed (``ω = 0``)."""
        xp, tvo = self.xp, self.tvo
        shape = c.shape
        c = xp.ascontiguousarray(c, dtype=xp.float64)
        zero, tau = xp.zeros(shape), xp.ones(shape)
        step = 1.0 / (4.0 * sum(float(h) ** 2 for h in tvo.ih))  # 1/‖D‖²
        sig = xp.full((shape[0], 1) + shape[2:], step)
        v, vb = xp.empty(shape), xp.empty(shape)
        q = xp.stack(p).astype(xp.float64, copy=False)
        y, new = q.copy(), xp.empty_like(q)
        t = 1.0
        for _ in range(POLISH_STEPS):
            tvo.pd_primal(zero, v, vb, y, c, tau, 0.0, True)  # v = w₊ at y
            tvo.pd_dual(y, new, v, sig, self.weight, 0.0)  # new = P(y + σ D v)
            t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
            xp.subtract(new, q, out=y)  # y = new + ((t − 1)/t_new)(new − q)
            y *= (t - 1.0) / t_new
            y += new
            q, new, t = new, q, t_new
        return list(q)

    def _support(self, w, p_best) -> float:
        """``σ_C(w)``."""
        xp = self.xp
        wp = xp.maximum(w, 0)
        if self.box is not None:
            return self.box * float(xp.sum(wp))
        if not math.isfinite(p_best):
            return math.inf
        n = self.slabs
        cap = self.base + self.spread * p_best
        return _knapsack(xp, wp.reshape(n, -1), self.a64.reshape(n, -1), self.flux, cap)


def _knapsack(xp, w, a, flux, cap) -> float:
    """``Σ_rows sup {⟨w, u⟩ : 0 ≤ u ≤ cap, ⟨a, u⟩ ≤ flux}`` for ``w, a ≥ 0`` (rows: slabs):
    items by decreasing ``w / a``, the last one in part."""
    ratio = xp.where(a > 0, w / xp.where(a > 0, a, 1.0), xp.inf)
    if not bool(xp.all(xp.isfinite(cap))):  # no range bound: all the flux on the best item
        return float(xp.sum(flux * xp.max(xp.where(w > 0, ratio, 0.0), axis=1)))
    ratio = xp.where(w > 0, ratio, -1.0)  # worthless items last
    order = xp.argsort(-ratio, axis=1)
    ws = xp.take_along_axis(w, order, axis=1)
    as_ = xp.take_along_axis(a, order, axis=1)
    cost = as_ * cap[:, None]
    used = xp.cumsum(cost, axis=1)
    full = used <= flux[:, None]
    total = float(xp.sum(ws * cap[:, None] * full))
    k = full.sum(axis=1)  # the first item that does not fit whole, per row
    rows = xp.nonzero(k < w.shape[1])[0]
    if rows.size:
        kk = k[rows]
        before = xp.where(kk > 0, used[rows, xp.maximum(kk - 1, 0)], 0.0)
        room = flux[rows] - before
        ak, wk = as_[rows, kk], ws[rows, kk]
        part = xp.where(ak > 0, xp.minimum(cap[rows], room / xp.where(ak > 0, ak, 1.0)),
                        cap[rows])
        total += float(xp.sum(wk * xp.maximum(part, 0)))
    return total


def _ring_transfer(xp, p, v, tvo, widths, weight):
    """``p`` with the positive part of ``v = a − Aᵀr + Dᵀp`` (the negated violation) in the
    outer bands of an extended grid carried inwards, slice by slice, until the slack of
    an inner slice absorbs it; then ``p`` back on the ball (``weight``; None: no ball, β > 1).
    ``widths``: the band of each canonical axis (``psf.shape − 1``)."""
    w = -v
    p = [q.copy() for q in p]
    for d, (ax, ih) in enumerate(zip(tvo.axes, tvo.ih)):
        band = widths.get(ax, 0)
        n = w.shape[ax]
        if band <= 0 or 2 * band >= n:
            continue
        h = 1.0 / float(ih)

        def at(k):
            idx = [slice(None)] * w.ndim
            idx[ax] = k
            return tuple(idx)

        carry = xp.zeros(w[at(0)].shape)
        for k in range(band):  # leading band, towards larger indices
            x = w[at(k)] + carry
            carry = xp.maximum(x, 0.0)
            w[at(k)] = xp.minimum(x, 0.0)
            p[d][at(k)] -= carry * h
        w[at(band)] += carry
        carry = xp.zeros(carry.shape)
        for k in range(n - 1, n - 1 - band, -1):  # trailing band, towards smaller indices
            x = w[at(k)] + carry
            carry = xp.maximum(x, 0.0)
            w[at(k)] = xp.minimum(x, 0.0)
            p[d][at(k - 1)] += carry * h
        w[at(n - 1 - band)] += carry
    return p if weight is None else tvo.project(p, weight)
