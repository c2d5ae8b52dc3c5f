"""Per-pixel bounds on a minimiser of ``½‖m ⊙ u − f‖² + weight · TV₁(u)`` (``m ≥ 0``).

The duality gap of a masked problem is taken on a box that holds a minimiser
(:func:`tvnumba.solvers.primal_dual._box_gap`); the tighter the box, the sooner the
gap certifies.  Three facts give one per pixel:

* every minimiser lies in ``[lo, hi]``, the range of ``f / m`` over ``m > 0``: clipping
  ``u`` to it lowers every data residual and raises no difference;
* where ``m_i > 0``, ``u*_i`` is unique and the optimality condition
  ``m_i (m_i u*_i − f_i) + (Dᵀp*)_i = 0`` with ``|p*_d| ≤ weight`` gives
  ``|u*_i − f_i / m_i| ≤ κ / m_i²``, ``κ = 2 · weight · Σ_d 1/h_d``;
* on a hole (a face-connected component of ``m = 0``, within one batch item and
  channel) clipping a minimiser to the range of its known face neighbours raises
  no difference (they all lie in that range), so some minimiser lies in the range
  of those neighbours' bounds.
"""

from __future__ import annotations

from typing import NamedTuple


class PixelBox(NamedTuple):
    """``lo, hi``: the global range; ``kappa``: the known pixels' half-width times
    ``m²``; ``labels``: int32 on the unknown's grid, 0 on known pixels, else the hole's
    number; ``hole_lo``, ``hole_hi``: float64 bounds per hole number (entry 0 unused)."""

    lo: float
    hi: float
    kappa: float
    labels: object
    hole_lo: object
    hole_hi: object


def pixel_box(backend, data, weight: float, axes, ih) -> PixelBox | None:
    """The bounds of the module's docstring for the diagonal term ``data`` bound to
    ``backend`` (``axes``: the canonical axes that carry differences, ``ih``: their
    ``1/h``), or None where no pixel is known."""
    xp = data.xp
    kappa = 2.0 * float(weight) * sum(float(h) for h in ih)
    labels, hole_lo, hole_hi, lo, hi = backend.ops.hole_bounds(data.m, data.f, tuple(axes),
                                                               kappa)
    if not lo <= hi:
        return None
    # clipped to the global range (every minimiser lies in it); a hole without a known
    # neighbour (a whole batch item) keeps that range
    hole_lo = xp.where(xp.isfinite(hole_lo), xp.maximum(hole_lo, lo), lo)
    hole_hi = xp.where(xp.isfinite(hole_hi), xp.minimum(hole_hi, hi), hi)
    return PixelBox(lo, hi, kappa, labels, hole_lo, hole_hi)
