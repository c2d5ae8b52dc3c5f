"""Vector operations of the iterative solvers, for two backends.

The conjugate-gradient and L-BFGS loops in :mod:`tvnumba._solvers` are
written once against this small interface on flat (1-D, contiguous) arrays:

* ``ops_for(np, use_numba=True)`` -- the fused parallel Numba kernels of :mod:`tvnumba._cpu_rof`
  for NumPy arrays (one pass per fused step, float64 sums, no BLAS).
* :class:`ArrayOps` -- whole-array operations of the array's own module
  (CuPy on the GPU, so a solve never copies an array to the host; NumPy for
  more than three spatial axes, and in the tests that check this backend
  against the Numba one).

Each fused function updates its output arrays in place and returns the
scalars the caller needs, as Python floats.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np


def _numba_ops():
    from . import _cpu_rof as K

    return SimpleNamespace(
        name="numba", xp=np, dot=K.dot, sumsq_diff=K.sumsq_diff,
        residual_init=K.residual_init, pcg_step=K.pcg_step, pcg_direction=K.pcg_direction,
        smooth_objective_grad=K.smooth_objective_grad, axpy_to=K.axpy_to,
        lbfgs_pair=K.lbfgs_pair, lbfgs_direction=K.lbfgs_direction)


class ArrayOps:
    """The vector interface in whole-array operations of the module ``xp``."""

    name = "array"

    def __init__(self, xp):
        self.xp = xp

    def dot(self, a, b) -> float:
        return float(self.xp.sum(a * b, dtype=self.xp.float64))

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
        """g = (u - f) + weight·gtv; returns (½‖u - f‖², ‖g‖²)."""
        self.xp.subtract(u, f, out=g)
        fid = 0.5 * self.dot(g, g)
        g += weight * gtv
        return fid, self.dot(g, g)

    def axpy_to(self, out, x, alpha, d):
        """out = x + α d."""
        self.xp.multiply(d, alpha, out=out)
        out += x

    def lbfgs_pair(self, s, y, u_new, u, g_new, g):
        """s = u_new - u, y = g_new - g; returns (s·y, y·y)."""
        self.xp.subtract(u_new, u, out=s)
        self.xp.subtract(g_new, g, out=y)
        return self.dot(s, y), self.dot(y, y)

    def lbfgs_direction(self, g, S, Y, rho, order, gamma, q, alpha):
        """q = -H g by the two-loop recursion (pairs ``order``, oldest first);
        returns g·q."""
        q[...] = g
        for i in order[::-1]:
            alpha[i] = rho[i] * self.dot(S[i], q)
            q -= alpha[i] * Y[i]
        q *= gamma
        for i in order:
            q += (alpha[i] - rho[i] * self.dot(Y[i], q)) * S[i]
        q *= -1.0
        return self.dot(g, q)


def ops_for(xp, use_numba: bool):
    """The backend for arrays of module ``xp``: Numba kernels when allowed."""
    if use_numba and xp is np:
        return _numba_ops()
    return ArrayOps(xp)
