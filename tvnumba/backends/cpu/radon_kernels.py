"""Numba CPU kernels of the parallel-beam Radon projector pair.

The per-sample arithmetic is :func:`tvnumba.backends.radon_rays.make_ray_functions`
compiled with ``njit(inline="always")`` (the CUDA kernels of
:mod:`tvnumba.backends.cuda.radon_kernels` compile the same functions for the
device):

* :func:`forward` -- ray-driven gather, ``prange`` over the ``(angle, bin)``
  rays, one :func:`ray_sum` each;
* :func:`adjoint` -- its exact transpose: every ray scatters its samples'
  bilinear weights (:func:`ray_scatter`).  Scattering from parallel work items
  would race, so each of ``n_chunks`` items owns a private float64 image,
  summed last.

Both take the ``P × P`` square that is rotated (see
:class:`tvnumba.operators.RadonGeometry`) and the angles' cosines and sines.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ..._config import parallel_kernel
from ..radon_rays import make_ray_functions

_RAYS = make_ray_functions(njit(inline="always"))
ray_sum = _RAYS.ray_sum
ray_scatter = _RAYS.ray_scatter


@parallel_kernel(exact=True)
def forward(img, cos_t, sin_t, out):
    """``out[x, a] = Σ_y bilin(img)(coords(x, y, θ_a))``; ``img`` square P×P."""
    P = img.shape[0]
    n_ang = cos_t.shape[0]
    c = float(P // 2)
    top = P - 1.0
    for k in prange(n_ang * P):
        a = k // P
        x = k - a * P
        out[x, a] = ray_sum(img, float(x), cos_t[a], sin_t[a], c, top, P)


@parallel_kernel(exact=True)
def adjoint(sino, cos_t, sin_t, P, n_chunks, out):
    """The transpose of :func:`forward` into the P×P ``out``, from ``n_chunks``
    private float64 buffers (one per parallel work item)."""
    n_ang = cos_t.shape[0]
    n_lines = n_ang * P
    c = float(P // 2)
    top = P - 1.0
    buf = np.zeros((n_chunks, P, P))
    for t in prange(n_chunks):
        lo = t * n_lines // n_chunks
        hi = (t + 1) * n_lines // n_chunks
        img = buf[t]
        for k in range(lo, hi):
            a = k // P
            x = k - a * P
            s = float(sino[x, a])
            if s == 0.0:
                continue
            ray_scatter(img, s, float(x), cos_t[a], sin_t[a], c, top, P)
    for i in prange(P):
        for j in range(P):
            acc = 0.0
            for t in range(n_chunks):
                acc += buf[t, i, j]
            out[i, j] = acc
