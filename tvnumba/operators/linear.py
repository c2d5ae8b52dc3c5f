"""Any linear operator as a data term: a matrix, a SciPy ``LinearOperator``,
or a pair of callables ``(forward, adjoint)`` on the caller's arrays."""

from __future__ import annotations

import math

import numpy as np

from .._validate import Plan, _describe
from ..solvers import DataTerm

__all__ = ["LinearOperatorTerm", "as_operator"]


def _is_matrix_like(A) -> bool:
    """A dense or sparse matrix or a ``LinearOperator`` (which is callable too), as
    opposed to a forward callable."""
    from scipy.sparse.linalg import LinearOperator

    return isinstance(A, LinearOperator) or (
        not callable(A) and hasattr(A, "shape") and hasattr(A, "dtype"))


def as_operator(A, AT, u_shape, f_shape, name: str = "A"):
    """``(forward, adjoint, adjoint_name)`` acting on arrays of ``u_shape`` and
    ``f_shape`` (the caller's layout), from a matrix, a ``LinearOperator`` or
    a callable with its adjoint ``AT``; shapes and types are checked, the
    errors name ``name`` (or ``AT``)."""
    from scipy.sparse import issparse
    from scipy.sparse.linalg import LinearOperator

    n_u, n_f = math.prod(u_shape), math.prod(f_shape)
    if _is_matrix_like(A):
        if AT is not None:
            raise TypeError(f"AT must be None when {name} is a matrix or a LinearOperator "
                            f"(its adjoint is {name}.T), got AT={_describe(AT)}")
        if len(A.shape) != 2 or tuple(A.shape) != (n_f, n_u):
            raise ValueError(
                f"{name} must have shape (f.size, prod(shape)) = ({n_f}, {n_u}), got "
                f"{name}.shape={tuple(A.shape)}; pass shape= for the unknown's shape")
        dtype = np.dtype(A.dtype) if A.dtype is not None else np.dtype(np.float64)
        if dtype.kind not in "biuf":
            raise TypeError(f"{name} must be real, got {name}.dtype={dtype}")
        if isinstance(A, LinearOperator):
            fwd_flat, adj_flat = A.matvec, A.rmatvec
            adj_name = f"{name}.rmatvec"
        else:
            adj_name = f"{name}.T"
            M = A if issparse(A) else np.asarray(A)
            MT = M.T
            fwd_flat, adj_flat = (lambda x: M @ x), (lambda r: MT @ r)

        def forward(x):
            return np.asarray(fwd_flat(np.ravel(x))).reshape(f_shape)

        def adjoint(r):
            return np.asarray(adj_flat(np.ravel(r))).reshape(u_shape)

        return forward, adjoint, adj_name
    if not callable(A):
        raise TypeError(f"{name} must be a matrix, a scipy.sparse.linalg.LinearOperator or a "
                        f"callable, got {type(A).__name__}")
    if AT is None or not callable(AT):
        raise TypeError(f"AT must be the callable adjoint of the callable {name}, "
                        f"got AT={_describe(AT)}")

    def checked(fn, label, shape):
        def call(x):
            y = fn(x)
            if not hasattr(y, "shape") or math.prod(y.shape) != math.prod(shape):
                raise ValueError(
                    f"{label} must return an array of {math.prod(shape)} elements (shape "
                    f"{tuple(shape)}), got {getattr(y, 'shape', type(y).__name__)}")
            return y.reshape(shape)
        return call

    return checked(A, name, f_shape), checked(AT, "AT", u_shape), "AT"


def adjoint_error(forward, adjoint, u_shape, f_shape, seed: int = 0) -> float:
    """``|⟨Ax, y⟩ − ⟨x, Aᵀy⟩| / max(‖Ax‖‖y‖, ‖x‖‖Aᵀy‖)`` on seeded float64
    random ``x``, ``y``: 0 up to rounding for an exact adjoint."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(u_shape)
    y = rng.standard_normal(f_shape)
    ax = np.asarray(forward(x), dtype=np.float64)
    aty = np.asarray(adjoint(y), dtype=np.float64)
    lhs, rhs = float(np.vdot(ax, y)), float(np.vdot(x, aty))
    scale = max(np.linalg.norm(ax) * np.linalg.norm(y), np.linalg.norm(x) * np.linalg.norm(aty))
    return abs(lhs - rhs) / scale if scale > 0 else 0.0


class LinearOperatorTerm(DataTerm):
    """``½‖A u − f‖²`` for an operator on the caller's arrays.

    Parameters
    ----------
    A : ndarray, sparse matrix, LinearOperator or callable
        A matrix of shape ``(f.size, prod(plan.shape))`` acting on the
        C-order flattened unknown, a ``scipy.sparse.linalg.LinearOperator``
        of that shape, or ``A(u) -> Au`` on arrays of ``plan.shape``.
    f : ndarray
        The data, any shape (host array; a callable ``A`` may use any array
        kind the backend holds).
    plan : Plan
        The plan of the unknown (its shape is ``plan.shape``).
    AT : callable, optional
        ``AT(r) -> Aᵀr`` (arrays of ``f``'s shape in, ``plan.shape`` out);
        required with a callable ``A``, not allowed otherwise.

    Notes
    -----
    The solvers work on the canonical layout: the term moves the iterate
    to the caller's layout (``plan.from_canonical``) before ``A`` and the
    result of ``Aᵀ`` back (``plan.to_canonical``).  Matrices and
    LinearOperators run on the host.
    """

    def __init__(self, A, f, plan: Plan, *, AT=None, name: str = "A"):
        super().__init__(f)
        self.plan = plan
        self.name = name
        self._fwd, self._adj, self._adj_name = as_operator(A, AT, plan.shape, f.shape, name)
        from scipy.sparse.linalg import LinearOperator

        # an explicit matrix (dense or sparse): its entries are known, not only its action
        self._matrix = A if _is_matrix_like(A) and not isinstance(A, LinearOperator) else None

    def check_nonnegative(self) -> None:
        """Raise ``ValueError`` unless ``A >= 0``: every entry of a matrix, else the sums
        ``A1`` and ``Aᵀ1`` (what a Poisson data term can check of an operator)."""
        from scipy.sparse import issparse

        M = self._matrix
        if M is not None:
            low = float((M.data if issparse(M) else np.asarray(M)).min(initial=0.0))
            if low < 0:
                raise ValueError(f"{self.name} must be >= 0 with noise='poisson', got an entry "
                                 f"{low!r}")
            return
        xp = self.xp
        row = self.forward(xp.ones(self.plan.canonical_shape, self.f.dtype))
        col = self.colsum()
        if bool(xp.any(row < 0)) or bool(xp.any(col < 0)):
            raise ValueError(f"{self.name} must be >= 0 with noise='poisson': {self.name}·1 or "
                             f"its adjoint of 1 has negative entries")

    def abs_sums(self):
        """``(|A|·1, |A|ᵀ·1)`` of an explicit matrix; None for operators given by their
        action."""
        from scipy.sparse import issparse

        if self._matrix is None:
            return None
        M = abs(self._matrix) if issparse(self._matrix) else np.abs(np.asarray(self._matrix))
        row = np.asarray(M @ np.ones(M.shape[1])).reshape(self.f.shape)
        col = np.asarray(M.T @ np.ones(M.shape[0])).reshape(self.plan.shape)
        xp = self.xp
        return xp.asarray(row, dtype=self.f.dtype), xp.ascontiguousarray(
            xp.asarray(self.plan.to_canonical(col)), dtype=self.f.dtype)

    def dilate(self, v):
        """For an explicit matrix: ``δ_i = max_{j: A_ij > 0} v_j``; None otherwise."""
        from scipy.sparse import csr_matrix, issparse

        if self._matrix is None:
            return None
        x = np.asarray(self.plan.from_canonical(v)).reshape(-1)
        M = self._matrix
        if issparse(M):
            M = csr_matrix(M)
            vals = np.where(M.data > 0, x[M.indices], 0.0)
            out = np.zeros(M.shape[0])
            rows = np.flatnonzero(np.diff(M.indptr))
            if rows.size:
                out[rows] = np.maximum.reduceat(vals, M.indptr[rows])
        else:
            out = np.where(np.asarray(M) > 0, x[None, :], 0.0).max(axis=1, initial=0.0)
        return self.xp.asarray(out.reshape(self.f.shape))

    def forward(self, u):
        y = self._fwd(self.plan.from_canonical(u))
        return self.xp.asarray(y, dtype=u.dtype)

    def adjoint(self, r):
        x = self._adj(r)
        return self.xp.ascontiguousarray(self.plan.to_canonical(x), dtype=self.f.dtype)

    def f_shape(self):
        return self.plan.canonical_shape

    def check_nonzero(self, backend, seed: int = 0) -> None:
        """``ValueError`` naming ``A`` when it maps a seeded random image to zero (then
        it is the zero operator, with probability one, and no data constrain ``u``)."""
        x = np.random.default_rng(seed).standard_normal(self.plan.shape).astype(self.f.dtype)
        y = self._fwd(backend.bring(x))
        if not bool(backend.xp.any(backend.xp.asarray(y) != 0)):
            raise ValueError(f"{self.name} is the zero operator (it maps a random image to "
                             "zeros), so the data say nothing about the unknown")

    def check_adjoint(self, rtol: float = 1e-6, seed: int = 0) -> float:
        """Dot-product test ``⟨Ax, y⟩ = ⟨x, Aᵀy⟩`` on seeded random float64
        vectors; returns the relative error, raises ``ValueError`` naming the
        adjoint's argument when it exceeds ``rtol``."""
        err = adjoint_error(self._fwd, self._adj, self.plan.shape, self.f.shape, seed)
        if not err <= rtol:
            raise ValueError(
                f"{self._adj_name} is not the adjoint of {self.name}: the dot-product test "
                f"|<Ax, y> - <x, ATy>| / (|Ax||y|) gave {err:.3g} > rtol={rtol:g} on random "
                "x, y")
        return err
