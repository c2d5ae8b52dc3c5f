"""Data terms ``G(u) = ½‖A u − f‖²`` of the TV-regularised problems.

Every solver minimises ``G(u) + weight · TV_β(u)`` and touches the data term
only through this interface, so that denoising (``A = I``), masks,
convolutions or any linear operator are additions, not copies of a solver.
All arrays are in the canonical layout of the problem's plan (``(B, C, n0,
..., nk)``, the layout of the iterate); a data term whose operator acts on
the caller's layout moves there and back with the plan.

What a data term provides (:class:`DataTerm`):

``value(u)``                  ``½‖Au − f‖²`` (float64 sum)
``grad(u, out)``              ``out = Aᵀ(Au − f)``, returns the value
``normal(x, out)``            ``out = AᵀA x`` (conjugate gradients, MM)
``normal_diag()``             the diagonal of ``AᵀA`` (Jacobi preconditioner), or None
``rhs()``                     ``Aᵀf``
``start()``                   the first iterate
``prox(v, tau, out)``         ``argmin_u G(u) + ‖u − v‖²/(2τ)`` where cheap
                              (``has_prox``); else the primal-dual solver dualises A
``forward(u)``, ``adjoint(r)`` ``Au`` and ``Aᵀr``
``op_norm()``                 ``‖A‖`` (power iteration unless known)
``mu``                        a lower bound on the smallest eigenvalue of ``AᵀA``
                              (strong convexity; 0 when unknown)

Capabilities the solver registry reads: ``identity`` (the fused kernels of
the denoising problem serve it), ``has_prox``, ``dct_diagonal`` (``AᵀA`` is
diagonal in the DCT-II basis, so β = 2 has a closed form).

The loss of ``z = Au`` is the term's :attr:`~DataTerm.loss`: :class:`SquaredLoss`
(``½‖z − f‖²``, the default) or :class:`PoissonLoss` (``KL(z + b; y)``, photon counts,
``u ≥ 0``).  The primal–dual solvers reach the loss only through it (its conjugate's
proximal step, its dual value, its domain); the quadratic-only members above
(``normal``, ``rhs``, ``prox``, ``mu``) serve :class:`SquaredLoss` alone, and the
solver registry refuses a term whose loss a solver cannot take.
"""

from __future__ import annotations

import copy
import math

import numpy as np


class SquaredLoss:
    """``½‖z − f‖²`` of ``z = Au``: Gaussian noise of one standard deviation.

    Its dual variable ``q`` lives on the data grid; the conjugate is
    ``L*(q) = ½‖q‖² + ⟨q, f⟩``.  The methods take the data term that holds ``f``
    (on its backend).
    """

    quadratic = True
    #: The unknown's domain is all of ℝⁿ.
    nonnegative = False
    name = "gaussian"

    def value(self, term, z) -> float:
        xp = term.xp
        r = (z.astype(xp.float64) - term.f.astype(xp.float64)).ravel()
        return 0.5 * float(xp.vdot(r, r))

    def dual_start(self, term):
        return term.xp.zeros_like(term.f)

    def dual_step(self, term, ops, q, qt, z, sigma, om) -> None:
        """``qt = prox_{σL*}(q + σz) = (q + σ(z − f)) / (1 + σ)``, then
        ``q ← q + ω (qt − q)`` (in place)."""
        qt[...] = (q + sigma * (z - term.f)) / (1 + sigma)
        q += om * (qt - q)

    def adjoint_input(self, q):
        """The array whose ``Aᵀ`` enters the primal step: ``q`` itself."""
        return q

    def conj_value(self, term, q) -> float:
        """``−L*(q)`` in float64."""
        xp = term.xp
        q64 = q.astype(xp.float64).ravel()
        return (-0.5 * float(xp.vdot(q64, q64))
                - float(xp.vdot(q64, term.f.astype(xp.float64).ravel())))


class PoissonLoss:
    """``KL(z + b; y) = Σ (z + b) − y − y log((z + b)/y)`` of ``z = Au ≥ 0`` for counts
    ``y = term.f ≥ 0`` and a known background ``b = term.background ≥ 0``
    (``0 log 0 = 0``): the Poisson negative log-likelihood up to a constant, ``≥ 0``,
    half the Poisson deviance.

    The dual variable is kept as ``r = 1 − q``, which at the optimum is the ratio
    ``y / (Au + b)`` of Richardson–Lucy; then ``−L*(1 − r) = Σ y log r + b(1 − r)``
    (``r ≥ 0``, ``r > 0`` where ``y > 0``), and ``r = 0`` exactly where ``y = 0``.
    """

    quadratic = False
    nonnegative = True
    name = "poisson"

    def value(self, term, z) -> float:
        """``KL(z + b; y)`` in float64; ``inf`` where ``z + b ≤ 0 < y`` or ``z + b < 0``."""
        xp = term.xp
        w = z.astype(xp.float64) + term.background
        y = term.f.astype(xp.float64)
        if bool(xp.any(w < 0)) or bool(xp.any((w <= 0) & (y > 0))):
            return float("inf")
        pos = y > 0
        ratio = xp.where(pos, y, 1.0) / xp.where(pos, w, 1.0)
        return float(xp.sum(w - y) + xp.sum(xp.where(pos, y * xp.log(ratio), 0.0)))

    def dual_start(self, term):
        return term.xp.ones_like(term.f)

    def dual_step(self, term, ops, r, rt, z, sigma, om) -> None:
        """``rt = prox_{σL*}(r + σz) = ½(e + √(e² + 4σy))``, ``e = r − σ(z + b)``, then
        ``r ← r + ω (rt − r)``: one fused pass of the backend's ``ops``
        (:func:`~tvnumba.backends.cpu.vector_kernels.kl_dual_step`; the arrays
        C-contiguous, of the data's shape)."""
        xp, b = term.xp, term.background
        b = b.reshape(-1) if getattr(b, "ndim", 0) > 0 else xp.full(1, b, term.f.dtype)
        ops.kl_dual_step(r.reshape(-1), rt.reshape(-1), z.reshape(-1), term.f.reshape(-1),
                         b, int(b.size > 1), sigma.reshape(-1), term.f.dtype.type(om))

    def adjoint_input(self, r):
        return 1 - r

    def conj_value(self, term, r) -> float:
        xp = term.xp
        r64 = r.astype(xp.float64)
        y = term.f.astype(xp.float64)
        pos = y > 0
        if bool(xp.any(r64 < 0)) or bool(xp.any(pos & (r64 <= 0))):
            return -float("inf")
        logs = xp.where(pos, y * xp.log(xp.where(pos, r64, 1.0)), 0.0)
        return float(xp.sum(logs) + xp.sum(term.background * (1 - r64)))


class DataTerm:
    """``L(A u)``, by default ``½‖A u − f‖²``; subclasses give ``forward``/``adjoint``
    (and what is cheaper than the defaults built from them); :meth:`with_loss` sets
    another loss."""

    identity = False
    has_prox = False
    dct_diagonal = False
    mu = 0.0
    #: ``f`` is in the unknown's canonical layout and ``A`` acts on each batch item and
    #: channel alone (identity, masks, convolutions).
    separable = False
    #: The attributes holding arrays (moved by :meth:`bind`, cast by :meth:`astype`).
    arrays: tuple[str, ...] = ("f",)
    loss = SquaredLoss()
    #: The known background ``b`` of :class:`PoissonLoss` (a number, or an array of
    #: ``f``'s shape listed in :attr:`arrays`).
    background = 0.0

    def __init__(self, f):
        self.f = f
        self.xp = np
        self.ops = None

    def with_loss(self, loss, background=0.0) -> "DataTerm":
        """This term with ``loss`` of ``A u`` (``f`` its data) and ``background``."""
        self.loss = loss
        self.background = background
        if hasattr(background, "shape"):
            self.arrays = tuple(self.arrays) + ("background",)
        return self

    # --- set-up -------------------------------------------------------------------
    def bind(self, backend) -> "DataTerm":
        """Use ``backend``'s array module and vector operations (called once by
        the solver entry before the first evaluation)."""
        self.xp = backend.xp
        self.ops = backend.ops
        for name in self.arrays:
            setattr(self, name, backend.bring(getattr(self, name)))
        return self

    def astype(self, dtype) -> "DataTerm":
        """The same term with its arrays in ``dtype``."""
        if all(getattr(self, name).dtype == dtype for name in self.arrays):
            return self
        other = copy.copy(self)
        for name in self.arrays:
            setattr(other, name, self.xp.ascontiguousarray(getattr(self, name), dtype=dtype))
        return other

    def at_float64(self) -> "DataTerm":
        """The term as L-BFGS and the DCT certificate evaluate it, at a float64
        iterate: its arrays in float64, so that the operators compute in float64
        (a copy of float32 data).  The identity's fused kernel reads ``f`` in its
        own dtype and computes in float64, so it keeps ``f`` as it is."""
        return self.astype(np.float64)

    # --- the operator -------------------------------------------------------------
    def forward(self, u):
        raise NotImplementedError

    def adjoint(self, r):
        raise NotImplementedError

    # --- what the solvers call ----------------------------------------------------
    def value(self, u) -> float:
        """``L(A u)`` in float64."""
        if not self.loss.quadratic:
            return self.loss.value(self, self.forward(u))
        r = self.forward(u) - self.f
        return 0.5 * self._sumsq(r)

    def fft_split(self):
        """The FFT structure of ``A`` for :mod:`tvnumba.solvers.admm`, or None."""
        return None

    def abs_sums(self):
        """``(|A|·1, |A|ᵀ·1)`` (data grid, unknown's grid) for the diagonal steps of
        :mod:`tvnumba.solvers.pdhg`, or None where unknown."""
        return None

    def colsum(self):
        """``Aᵀ1`` on the unknown's grid (the column sums of a non-negative ``A``)."""
        return self.adjoint(self.xp.ones_like(self.f))

    def dilate(self, v):
        """``δ_i = max_{j: A_ij > 0} v_j`` on the data grid for ``v ≥ 0`` on the unknown's
        grid (so that ``Aᵀδ ≥ (Aᵀ1) ⊙ v``), or None where the term cannot tell."""
        return None

    def to_unknown_grid(self, x):
        """An array of the data grid carried to the unknown's grid as :meth:`start` carries
        ``f`` (the identity, an edge continuation, ...); None where there is no such map."""
        return None

    def grad(self, u, out) -> float:
        r = self.forward(u) - self.f
        out[...] = self.adjoint(r)
        return 0.5 * self._sumsq(r)

    def objective_grad(self, u, gtv, weight, g):
        """``g = ∇G(u) + weight·gtv`` (flat arrays; ``gtv`` may be ``g``, so that
        the TV gradient is written where the total one goes); returns
        ``(G(u), ‖g‖²)``."""
        shape = self.f_shape()
        grad_g = self.xp.empty(shape, g.dtype)
        fid = self.grad(u.reshape(shape), grad_g)
        if gtv is not g:
            g[...] = gtv
        g *= weight
        return fid, self.ops.axpy_norm(g, 1.0, grad_g.reshape(-1))

    def normal(self, x, out) -> None:
        out[...] = self.adjoint(self.forward(x))

    def normal_diag(self):
        return None

    def rhs(self):
        return self.adjoint(self.f)

    def start(self):
        return self.rhs()

    def least_squares(self, u0):
        """The minimiser of ``½‖Au − f‖²`` nearest ``u0`` in closed form, or None
        (``weight = 0``; :mod:`tvnumba.solvers.unregularised`)."""
        return None

    def poisson_exact(self, u0):
        """The minimiser of the Poisson loss of ``Au`` over ``u ≥ 0`` in closed form
        (nearest ``u0`` where ``A`` has a null space), or None."""
        return None

    def prox(self, v, tau, out) -> None:
        raise NotImplementedError(f"{type(self).__name__} has no cheap proximal step")

    def op_norm(self, iters: int = 30, seed: int = 0) -> float:
        """‖A‖ by power iteration on ``AᵀA`` (a slight over-estimate: safe for
        step sizes)."""
        xp = self.xp
        x = xp.asarray(np.random.default_rng(seed).standard_normal(self.f_shape()))
        x = x.astype(self.start().dtype)
        out = xp.empty_like(x)
        lam = 0.0
        for _ in range(iters):
            nx = math.sqrt(self._sumsq(x))
            if nx == 0:
                return 0.0
            x /= nx
            self.normal(x, out)
            lam = math.sqrt(self._sumsq(out))
            x, out = out, x
        return 1.01 * math.sqrt(lam)

    def range_hint(self) -> float:
        """``max f − min f``: the scale of the data, for an internal smoothing."""
        return float(self.xp.max(self.f)) - float(self.xp.min(self.f))

    def f_shape(self):
        return self.start().shape

    def _sumsq(self, a) -> float:
        return float(self.xp.sum(self.xp.square(a, dtype=self.xp.float64)))


class Identity(DataTerm):
    """``½‖u − f‖²``: denoising.  The fused kernels of every backend serve it
    (the primal-dual passes, the majorize-minimize operator, the L-BFGS
    gradient), so it is the fast special case of each solver."""

    identity = True
    has_prox = True
    dct_diagonal = True
    separable = True
    mu = 1.0

    def forward(self, u):
        return u

    def adjoint(self, r):
        return r

    def value(self, u) -> float:
        if self.loss.quadratic:  # the fused difference-and-square kernel
            return 0.5 * self.ops.sumsq_diff(u.reshape(-1), self.f.reshape(-1))
        return self.loss.value(self, u)

    def colsum(self):
        return self.xp.ones_like(self.f)

    def dilate(self, v):
        return v

    def to_unknown_grid(self, x):
        return x

    def at_float64(self):
        """Itself: the fused kernel reads ``f`` in its own dtype (no float64 copy)."""
        return self

    def objective_grad(self, u, gtv, weight, g):
        return self.ops.smooth_objective_grad(u, self.f.reshape(-1), gtv, weight, g)

    def normal(self, x, out):
        out[...] = x

    def normal_diag(self):
        return self.xp.ones_like(self.f)

    def rhs(self):
        return self.f

    def start(self):
        return self.f

    def least_squares(self, u0):
        return self.f.copy()

    def poisson_exact(self, u0):
        return self.xp.maximum(self.f - self.background, 0).astype(self.f.dtype)

    def prox(self, v, tau, out):
        T = self.f.dtype.type
        self.xp.multiply(self.f, T(tau), out=out)
        out += v
        out *= T(1.0 / (1.0 + tau))

    def op_norm(self, iters=0, seed=0) -> float:
        return 1.0


class Diagonal(DataTerm):
    """``½‖m ⊙ u − f‖²`` for a non-negative array ``m`` of the iterate's shape
    (a mask, or per-pixel confidence): ``AᵀA = diag(m²)``, so its proximal
    step is one division per pixel."""

    has_prox = True
    separable = True
    arrays = ("f", "m")

    def __init__(self, m, f):
        super().__init__(f)
        self.m = m

    def bind(self, backend):
        super().bind(backend)
        self.mu = float(self.xp.min(self.xp.abs(self.m))) ** 2
        return self

    def forward(self, u):
        return self.m * u

    def adjoint(self, r):
        return self.m * r

    def abs_sums(self):
        a = self.xp.abs(self.m)
        return a, a

    def normal_diag(self):
        return self.m * self.m

    def start(self):
        return (self.m * self.f).astype(self.f.dtype)

    def least_squares(self, u0):
        xp = self.xp
        seen = self.m != 0
        return xp.where(seen, self.f / xp.where(seen, self.m, 1), u0).astype(self.f.dtype)

    def poisson_exact(self, u0):
        xp = self.xp
        seen = self.m > 0
        rate = xp.maximum(self.f - self.background, 0) / xp.where(seen, self.m, 1)
        return xp.where(seen, rate, u0).astype(self.f.dtype)

    def prox(self, v, tau, out):
        """``out = (v + τ m f) / (1 + τ m²)`` (the primal–dual solver takes this step
        inside its primal pass, :meth:`CPNumba.diagonal_step
        <tvnumba.backends.cpu.CPNumba.diagonal_step>`)."""
        T = self.f.dtype.type
        out[...] = (v + T(tau) * (self.m * self.f)) / (T(1) + T(tau) * (self.m * self.m))

    def op_norm(self, iters=0, seed=0) -> float:
        return float(self.xp.max(self.xp.abs(self.m)))
