"""Majorize–minimize for β < 1 on a whole Dask array, without seams.

β < 1 is non-convex: the in-memory solver (:func:`tvnumba.solvers.mm.mm`) reaches
one local minimiser along its path, and a chunk solved on its own, whatever its
halo, reaches another (its conjugate-gradient steps use inner products over the
chunk, not the image).  Here the in-memory algorithm runs step for step on the
Dask array: every operator is one depth-1 halo exchange (the weights and the
operator ``I + Dᵀ diag(a) D`` at a pixel read only its neighbours) and every inner
product is a reduction over the chunks, so the iterates are the in-memory ones up
to the order of the float64 sums.  The price is one synchronisation per inner
product (about 30 per outer step) and the iterates held in the workers' memory
(``persist``): it is not lazy, and it needs the cluster to hold about eight arrays
of the image's size.  It is the path of a ``dask.distributed`` cluster whose workers
cannot hold the image; where a process can, :func:`tvnumba.dask.denoise_chunked` runs
the in-memory solver as one task instead.
"""

from __future__ import annotations

import math

import numpy as np

from ._validate import make_plan
from .backends.cpu import MMNumba
from .solvers._common import certificate
from .solvers.mm import MM_STALL


class _Chunks:
    """The chunk-wise operators of one problem (``spatial``/``channel``: the
    roles of the array's axes; ``kw``: what :func:`make_plan` needs)."""

    def __init__(self, f, spatial, weight, beta, smoothing, kw):
        import dask.array as da

        self.da = da
        self.depth = {d: 1 for d in spatial}
        self.boundary = {d: "none" for d in spatial}
        self.weight, self.beta, self.smoothing, self.kw = weight, beta, smoothing, kw
        self.dtype = f.dtype
        self.meta = np.empty((0,) * f.ndim, f.dtype)

    def ext(self, x):
        """``x`` with a one-pixel halo where a chunk has a neighbour."""
        return self.da.overlap.overlap(x, depth=self.depth, boundary=self.boundary,
                                       allow_rechunk=False)

    def _state(self, y):
        """An MM state on the (extended) chunk ``y`` with its weights at ``y``."""
        plan = make_plan(y, self.beta, smoothing=self.smoothing, **self.kw)
        y5 = np.ascontiguousarray(plan.to_canonical(y))
        state = MMNumba(y5, self.weight, self.beta, self.smoothing, plan, c0=1.0)
        state.weights_and_tv(y5)
        return plan, state

    def _apply_block(self, y, v):
        plan, state = self._state(y)
        v5 = np.ascontiguousarray(plan.to_canonical(v))
        out = np.empty_like(v5)
        state.apply(v5, out)
        return plan.from_canonical(out)

    def _inv_diag_block(self, y):
        plan, state = self._state(y)
        return plan.from_canonical(1.0 / state.diag())

    def _trimmed(self, blocks):
        return self.da.overlap.trim_internal(blocks, self.depth, boundary=self.boundary)

    def apply(self, y_ext, v):
        """``(I + Dᵀ diag(a_y) D) v`` with the weights at ``y`` (given extended)."""
        out = self.da.map_blocks(self._apply_block, y_ext, self.ext(v), dtype=self.dtype,
                                 meta=self.meta)
        return self._trimmed(out)

    def inverse_diag(self, y_ext):
        out = self.da.map_blocks(self._inv_diag_block, y_ext, dtype=self.dtype,
                                 meta=self.meta)
        return self._trimmed(out)


def _dot(da, x, y):
    return da.sum(x.astype(np.float64) * y.astype(np.float64))


def denoise_global_mm(image, weight: float, beta: float, *, spatial, channel, spacing,
                      isotropic: bool, smoothing: float, eps: float, max_iter: int, tv,
                      cg_iter: int = 10, cg_tol: float = 1e-2):
    """:func:`tvnumba.solvers.mm.mm` (identity data term, extrapolated) on the Dask
    array ``image`` (float32 or float64, the channel axis in one chunk); returns the
    persisted result.  ``smoothing`` is the one the in-memory solver would use (the
    internal one for ``smoothing=0``, from the whole array's range); ``tv(x)`` gives
    the exact TV_β of a Dask array, lazily (:func:`tvnumba.dask.tv_value_and_grad`)."""
    import dask
    import dask.array as da

    kw = dict(axes=spatial, channel_axis=channel, spacing=spacing, isotropic=isotropic)
    f = image.persist()
    ops = _Chunks(f, spatial, weight, beta, smoothing, kw)

    def value(x):
        """F(x) = ½‖x − f‖² + weight·TV_β(x) (float64)."""
        fid, tv_x = dask.compute(0.5 * _dot(da, x - f, x - f), tv(x))
        return float(fid) + weight * float(tv_x)

    def scalars(*parts):
        return (float(v) for v in dask.compute(*parts))

    def pcg(y_ext, x):
        """:func:`tvnumba.solvers.mm._pcg` from x (weights at y): the same steps, two
        synchronisations per iteration (arrays persisted with their inner products)."""
        T = x.dtype.type
        minv, r = dask.persist(ops.inverse_diag(y_ext), f - ops.apply(y_ext, x))
        rr, rz = scalars(_dot(da, r, r), _dot(da, r, minv * r))
        r0 = math.sqrt(rr)
        if r0 == 0:
            return x
        p = minv * r
        for _ in range(cg_iter):
            ap = ops.apply(y_ext, p)
            p, ap, pap = dask.persist(p, ap, _dot(da, p, ap))
            pap = float(pap.compute())
            if pap <= 0:
                break
            alpha = T(rz / pap)
            x, r = x + alpha * p, r - alpha * ap
            x, r, rr, rz_new = dask.persist(x, r, _dot(da, r, r), _dot(da, r, minv * r))
            rr, rz_new = scalars(rr, rz_new)
            if math.sqrt(rr) <= cg_tol * r0:
                break
            p = minv * r + T(rz_new / rz) * p
            rz = rz_new
        return x

    def stationarity(x, Fx):
        x_ext = ops.ext(x).persist()
        r = f - ops.apply(x_ext, x)
        return certificate(Fx, float(_dot(da, r, r).compute()), 1.0)

    u = f
    F = value(u)
    gap = stationarity(u, F)
    rounding = 8 * float(np.finfo(f.dtype).eps)
    u_prev = None
    it = stalled = 0
    while gap > eps and it < max_iter and stalled < MM_STALL:
        it += 1
        base = u
        if u_prev is not None:
            y = (u + (u - u_prev)).persist()
            if value(y) <= F - rounding * abs(F):
                base = y
        u_prev = u
        u = pcg(ops.ext(base).persist(), base)
        F_new = value(u)
        stalled = stalled + 1 if F - F_new <= rounding * abs(F_new) else 0
        F = F_new
        gap = stationarity(u, F)
    return u
