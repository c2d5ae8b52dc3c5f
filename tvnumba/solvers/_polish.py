"""Exact finish of anisotropic ROF denoising from a Chambolle–Pock iterate.

The anisotropic problem ``min ½‖u − f‖² + w Σ_e |(D u)_e|`` is piecewise
linear-quadratic: once the dual ``p`` tells which differences are at the bound
(``|p_e| = w``, with their signs) and which are slack (``D u = 0`` there),
the solution is explicit.  The slack differences join pixels into regions on
which ``u`` is constant, and the value of a region is the mean of
``f − Dᵀp_bound`` over it (the slack differences' part of ``Dᵀp`` sums to zero
on a region).  A dual completing the bound part is a flow on each region's
slack differences with divergence ``f − u − Dᵀp_bound`` (a graph Laplacian
solve, started from the iterate's flow so the correction is small).

The result is certified by the true duality gap of the full problem, so a
wrong guess of the bound set costs one try, never a wrong answer.  First-order
methods need many iterations to settle the flow on large flat regions (the
sweep in benchmarks/RESULTS.md: up to 20 000 at eps = 1e-8) while the bound set
is usually right after a few hundred.
"""

from __future__ import annotations

import math

import numpy as np

#: A difference whose dual is within this relative distance of the bound is
#: taken as at the bound.
SLACK = 1e-9


def _edges(shape, fields):
    """Flat indices ``(i0, i1)``, ``1/h`` and dual values of every difference
    ``(u[i1] − u[i0])/h`` of the canonical ``shape`` (``fields``: ``(axis,
    ih, p_axis)`` with ``p_axis`` zero on the last slice)."""
    idx = np.arange(math.prod(shape)).reshape(shape)
    i0s, i1s, ihs, ps = [], [], [], []
    for axis, ih, p in fields:
        if shape[axis] < 2:
            continue
        lo = [slice(None)] * len(shape)
        hi = list(lo)
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        i0s.append(idx[tuple(lo)].ravel())
        i1s.append(idx[tuple(hi)].ravel())
        ps.append(np.asarray(p, np.float64)[tuple(lo)].ravel())
        ihs.append(np.full(i0s[-1].size, float(ih)))
    if not i0s:
        e = np.empty(0)
        return e.astype(np.intp), e.astype(np.intp), e, e
    return (np.concatenate(i0s), np.concatenate(i1s), np.concatenate(ihs),
            np.concatenate(ps))


def bound_pattern(fields, weight):
    """The bound set the dual indicates: per difference −1, 0 (slack) or 1."""
    lim = weight * (1.0 - SLACK)
    return [np.sign(p) * (np.abs(p) >= lim) for _, _, p in fields]


def same_pattern(a, b, fraction=1e-3) -> bool:
    """Whether at most ``fraction`` of the differences changed between two
    :func:`bound_pattern` (degenerate ones, at the bound with ``D u = 0``,
    can flicker for thousands of iterations while the finish already
    succeeds)."""
    if b is None:
        return False
    changed = sum(int(np.count_nonzero(x != y)) for x, y in zip(a, b))
    return changed <= fraction * sum(x.size for x in a)


def _adjoint(n, i0, i1, ih, q):
    """``Dᵀq`` over the difference list."""
    v = ih * q
    return np.bincount(i1, v, minlength=n) - np.bincount(i0, v, minlength=n)


def _dot(a, b) -> float:
    """Not ``np.dot``: a threaded BLAS stalls on a busy machine (19 ms for a
    65 536-long dot under load, against 60 µs)."""
    return float(np.add.reduce(a * b))


def _flow(inc, r, tol2, maxiter=500):
    """Conjugate gradients for ``incᵀ inc z = r`` (a graph Laplacian, ``r``
    zero-sum on every component) until ``‖r − incᵀ inc z‖² ≤ tol2``; returns
    ``inc z``, the flow correction."""
    x = np.zeros(inc.shape[1])
    res = r.copy()
    d = res.copy()
    rr = _dot(res, res)
    for _ in range(maxiter):
        if rr <= tol2:
            break
        ad = inc @ d
        ld = inc.T @ ad
        a = rr / _dot(d, ld)
        x += a * d
        res -= a * ld
        rr, rr_old = _dot(res, res), rr
        d = res + (rr / rr_old) * d
    return inc @ x


def polish_anisotropic(f5, weight, fields, floor, eps, primal_bound=math.inf):
    """The explicit solution for the bound set read off the dual ``fields``.

    Parameters
    ----------
    f5 : ndarray
        Canonical data (float64 host array).
    weight : float
        TV weight ``w > 0``.
    fields : list of (int, float, ndarray)
        ``(axis, 1/h, p)`` of every differenced axis; ``p`` the dual iterate.
    floor : float
        Lower bound of the gap's denominator (as in the solver).
    eps : float
        The gap wanted: the flow is solved to a residual ``e`` with
        ``½‖e‖² ≤ eps · P / 100`` (what it costs the dual: ``u`` is constant
        on every region and ``e`` sums to zero there, so ``D`` loses exactly
        ``½‖e‖²``).
    primal_bound : float
        The iterate's objective: a candidate above it (a wrong bound set; the
        right one gives the minimum) is returned without building its dual.

    Returns
    -------
    (u5, primal, gap)
        The candidate (canonical, float64), its objective and its relative
        duality gap ``(P(u) − D(p)) / D(p)`` with a feasible ``p``.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    f = np.asarray(f5, np.float64).ravel()
    n = f.size
    i0, i1, ih, p = _edges(f5.shape, fields)
    slack = np.abs(p) < weight * (1.0 - SLACK)
    bound = np.where(slack, 0.0, np.copysign(weight, p))
    t0, t1, tih = i0[slack], i1[slack], ih[slack]
    graph = csr_matrix((np.ones(t0.size), (t0, t1)), shape=(n, n))
    nreg, label = connected_components(graph, directed=False)
    count = np.bincount(label, minlength=nreg).astype(np.float64)
    # Region values: minimise ½‖u − f‖² + ⟨D u, p_bound⟩ over region-constant u.
    g = f - _adjoint(n, i0, i1, ih, bound)
    u = (np.bincount(label, g, minlength=nreg) / count)[label]
    du = u - f
    primal = 0.5 * float(du @ du) + weight * float(np.abs(ih * (u[i1] - u[i0])).sum())
    if primal > primal_bound:
        return u.reshape(f5.shape), primal, math.inf
    # Flow on the slack differences: Dᵀq_slack = f − u − Dᵀp_bound (zero sum
    # per region by the choice of u), from the iterate's flow.
    q = p[slack]
    r = g - u - _adjoint(n, t0, t1, tih, q)
    r -= (np.bincount(label, r, minlength=nreg) / count)[label]
    if t0.size:
        inc = csr_matrix((np.concatenate([tih, -tih]),
                          (np.tile(np.arange(t0.size), 2), np.concatenate([t1, t0]))),
                         shape=(t0.size, n))
        q = q + _flow(inc, r, 0.02 * eps * max(primal, floor))
    dual_p = bound.copy()
    dual_p[slack] = np.clip(q, -weight, weight)
    # The certificate: both objectives of the full problem, in float64.
    resid = f - _adjoint(n, i0, i1, ih, dual_p)
    dual = 0.5 * float(f @ f) - 0.5 * float(resid @ resid)
    scale = max(dual, floor, np.finfo(np.float64).tiny)
    return u.reshape(f5.shape), primal, max(primal - dual, 0.0) / scale


# --------------------------------------------------------------------------- isotropic
#: The smoothing δ of the first Newton stage, relative to the data's range
#: times the largest ``1/h``; later stages cut it by 10-100× (measured on the
#: sweep's crop and camera 256²: warm-started from CP, 100× cuts converge in
#: 10-15 Newton steps each; from the first stage on, the prototype's 100× cuts
#: from 500 CP iterations did not converge at 256²).
ISO_DELTA0 = 1e-5
#: Newton steps per stage and stages before the finish declines.
ISO_STEPS = 15
ISO_STAGES = 8


def _pixel_pairs(pix, npix):
    """Every ordered pair ``(e, e')`` of differences of one pixel (the blocks of
    the isotropic Hessian: ``|∇u|`` couples the axes and channels of a pixel)."""
    order = np.argsort(pix, kind="stable")
    start = np.searchsorted(pix[order], np.arange(npix))
    cnt = np.bincount(pix, minlength=npix)
    pe, pf = [], []
    for a in range(int(cnt.max(initial=0))):
        for b in range(int(cnt.max(initial=0))):
            ok = (cnt > a) & (cnt > b)
            pe.append(order[start[ok] + a])
            pf.append(order[start[ok] + b])
    return np.concatenate(pe), np.concatenate(pf)


def polish_isotropic(f5, weight, fields, floor, eps, u0=None):
    """Isotropic ROF to a certified gap by primal–dual Newton, from a CP iterate.

    The Chan–Golub–Mulet method on the smoothed problem
    ``½‖u − f‖² + w Σ_i sqrt(|∇u_i|² + δ²)`` with unknowns ``u`` and ``p``
    (``|p_i| ≤ w`` kept by projection), continued in ``δ``: every stage's
    Newton system ``I + Dᵀ C D`` is a sparse symmetric matrix factored by
    SuperLU.  After every stage the pair ``(u, p)`` is certified by the true
    duality gap of the unsmoothed problem; that gap falls about linearly with
    ``δ`` (the smoothing's cost on flat regions), so the next ``δ`` is chosen
    from it.  Any layout the canonical fields describe is handled: 2-D and
    3-D, channels coupled in ``|∇u_i|``, batches, spacing.  The cost is one
    sparse factorisation per Newton step (about 0.3 s for 256², 10-15 steps
    per stage), so it is meant for the tight tolerances where CP needs tens
    of thousands of iterations.

    Parameters
    ----------
    f5 : ndarray
        Canonical data ``(B, C, ...)`` (float64 host array).
    weight : float
        TV weight ``w > 0``.
    fields : list of (int, float, ndarray)
        ``(axis, 1/h, p)`` of every differenced axis; ``p`` the CP dual
        iterate (the warm start of the Newton dual).
    floor : float
        Lower bound of the gap's denominator (as in the solver).
    eps : float
        The relative gap wanted; the continuation stops once it is reached.
    u0 : ndarray, optional
        The CP primal iterate (the warm start; ``f5`` without it).

    Returns
    -------
    (u5, primal, gap)
        The best candidate found (canonical, float64), its objective and its
        relative duality gap ``(P(u) − D(p)) / D(p)`` with a feasible ``p``;
        ``gap = inf`` when it declines (no differences, or a singular
        Newton system).
    """
    from scipy.sparse import csc_matrix, csr_matrix, identity
    from scipy.sparse.linalg import splu

    shape = f5.shape
    f = np.asarray(f5, np.float64).ravel()
    n = f.size
    i0, i1, ih, p = _edges(shape, fields)
    u = f.copy() if u0 is None else np.asarray(u0, np.float64).ravel().copy()
    if i0.size == 0:
        return u.reshape(shape), math.inf, math.inf
    # Edges -> spatial pixel (batch kept, channel dropped): the unit of |∇u_i|.
    nc, nsp = shape[1], math.prod(shape[2:])
    # (pixels without a difference, the far corner, carry no |∇u_i|: renumbered out)
    _, pix = np.unique((i0 // (nc * nsp)) * nsp + i0 % nsp, return_inverse=True)
    npix = int(pix.max()) + 1
    ne = i0.size
    dmat = csr_matrix((np.concatenate([ih, -ih]),
                       (np.tile(np.arange(ne), 2), np.concatenate([i1, i0]))), shape=(ne, n))
    pe, pf = _pixel_pairs(pix, npix)
    same = pe == pf
    eye = identity(n, format="csr")
    f2 = float(f @ f)

    def norms(x):
        return np.sqrt(np.bincount(pix, x * x, minlength=npix))

    def certify(u, p):
        g = dmat @ u
        du = u - f
        primal = 0.5 * float(du @ du) + weight * float(norms(g).sum())
        resid = f - _adjoint(n, i0, i1, ih, p)
        dual = 0.5 * f2 - 0.5 * float(resid @ resid)
        scale = max(dual, floor, np.finfo(np.float64).tiny)
        return primal, max(primal - dual, 0.0) / scale

    span = float(f.max() - f.min()) * float(ih.max())
    delta = ISO_DELTA0 * (span if span > 0 else 1.0)
    best = (u.copy(), *certify(u, p))
    previous = math.inf
    for _ in range(ISO_STAGES):
        for _ in range(ISO_STEPS):
            g = dmat @ u
            m = np.sqrt(np.bincount(pix, g * g, minlength=npix) + delta * delta)[pix]
            r1 = u - f + dmat.T @ p
            r2 = m * p - weight * g
            if math.sqrt(_dot(r1, r1) + _dot(r2, r2)) <= 1e-12 * math.sqrt(f2):
                break
            # CGM's linearisation of m p = w g, symmetrised (positive definite
            # for |p| <= w); the dual step itself uses the exact one.
            mp = m[pe]
            c = (weight * same - 0.5 * (p[pe] * g[pf] + g[pe] * p[pf]) / mp) / mp
            hess = (eye + dmat.T @ csr_matrix((c, (pe, pf)), shape=(ne, ne)) @ dmat)
            try:
                lu = splu(csc_matrix(hess), permc_spec="MMD_AT_PLUS_A")
            except RuntimeError:  # singular: declined
                return best[0].reshape(shape), best[1], math.inf
            du = lu.solve(-r1 + dmat.T @ (r2 / m))
            dg = dmat @ du
            gtd = np.bincount(pix, g * dg, minlength=npix)[pix] / m
            u += du
            p += (weight * dg - p * gtd - r2) / m
            p *= np.minimum(1.0, weight / np.maximum(norms(p), np.finfo(np.float64).tiny))[pix]
        primal, gap = certify(u, p)
        if gap < best[2]:
            best = (u.copy(), primal, gap)
        if gap <= eps or not math.isfinite(gap) or gap > 0.3 * previous:
            break  # certified, or the continuation stalls: a failed try stays short
        previous = gap
        # The gap is about linear in δ: aim at a third of eps, 10-100× per stage.
        delta *= min(0.1, max(0.01, eps / (3.0 * gap)))
    return best[0].reshape(shape), best[1], best[2]

