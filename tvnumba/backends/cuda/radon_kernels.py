"""CUDA kernels (numba-cuda) of the parallel-beam Radon projector pair.

The device twins of :mod:`tvnumba.backends.cpu.radon_kernels`: the per-sample
arithmetic is :func:`tvnumba.backends.radon_rays.make_ray_functions` compiled
with ``cuda.jit(device=True)``, the same Python source the CPU kernels compile
with ``njit``, so both sample the same coordinates with the same expressions.

* forward -- one thread per ray ``(angle, detector bin)`` (bins fastest, so
  a warp walks neighbouring rays through the image), each one
  :func:`~tvnumba.backends.radon_rays.make_ray_functions` ``ray_sum``, as the
  CPU kernel's ``prange`` body;
* adjoint -- one thread per output pixel, a *gather*: ``pixel_gather``
  finds, for every angle, the samples whose bilinear cell touches the pixel
  by re-evaluating the forward's cell test on the few candidate samples
  around it.  Every weight is the forward's, bit for bit, so this is the
  exact transpose (to summation order) without atomics: deterministic, and
  each pixel is written once, in the output dtype, already cropped or
  embedded into the caller's image (no scratch square, no second pass);
* pad -- the zero-padded square of a ``circle=False`` geometry;
* nonfinite -- the count of NaN/Inf entries of a 2-D array (input checks of
  device arrays that CuPy may not be there to do).

One thread per work item in the grid-stride loop of :mod:`._launch`; the
kernels come from one cached factory (:func:`make_radon_kernels`) keyed by the
threads per block.  Accumulation is in float64 whatever the dtype, as on the
CPU.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..radon_rays import make_ray_functions
from . import _launch as L
from ._launch import DEVICE_JIT, KERNEL_JIT, cuda


@lru_cache(maxsize=None)
def make_radon_kernels(tpb: int):
    """``(forward, adjoint, pad, nonfinite)`` kernels for blocks of ``tpb`` threads."""
    rays = make_ray_functions(cuda.jit(**DEVICE_JIT))
    ray_sum, pixel_gather = rays.ray_sum, rays.pixel_gather
    f64 = L.numba.float64

    @cuda.jit(**KERNEL_JIT)
    def forward(img, cos_t, sin_t, out):
        """``out[x, a] = Σ_y bilin(img)(coords(x, y, θ_a))``; ``img`` P×P, any strides."""
        P = img.shape[0]
        n_ang = cos_t.shape[0]
        c = f64(P // 2)
        top = P - 1.0
        start, sk, sa_, sx = L.grid_stride(tpb, n_ang, P)
        k, a, x = L.pixel(start, n_ang, P)
        while k < 1:
            out[x, a] = ray_sum(img, f64(x), cos_t[a], sin_t[a], c, top, P)
            k, a, x = L.advance(k, a, x, sk, sa_, sx, n_ang, P)

    @cuda.jit(**KERNEL_JIT)
    def adjoint(sino, cos_t, sin_t, P, d0, d1, out):
        """``out[i, j] = (Aᵀ sino)[i + d0, j + d1]``, 0 outside the P×P square."""
        H, W = out.shape
        c = f64(P // 2)
        start, sk, si, sj = L.grid_stride(tpb, H, W)
        k, i, j = L.pixel(start, H, W)
        while k < 1:
            r = i + d0
            q = j + d1
            v = 0.0
            if 0 <= r < P and 0 <= q < P:
                v = pixel_gather(sino, r, q, cos_t, sin_t, c, P)
            out[i, j] = v
            k, i, j = L.advance(k, i, j, sk, si, sj, H, W)

    @cuda.jit(**KERNEL_JIT)
    def pad(img, d0, d1, out):
        """``out[i, j] = img[i − d0, j − d1]``, 0 outside ``img``."""
        H, W = out.shape
        h, w = img.shape
        start, sk, si, sj = L.grid_stride(tpb, H, W)
        k, i, j = L.pixel(start, H, W)
        while k < 1:
            r = i - d0
            q = j - d1
            v = 0.0
            if 0 <= r < h and 0 <= q < w:
                v = img[r, q]
            out[i, j] = v
            k, i, j = L.advance(k, i, j, sk, si, sj, H, W)

    @cuda.jit(**KERNEL_JIT)
    def nonfinite(a, count):
        """``count[0] +=`` the number of NaN/Inf entries of the 2-D ``a``."""
        H, W = a.shape
        sh = cuda.shared.array(tpb, f64)
        start, sk, si, sj = L.grid_stride(tpb, H, W)
        k, i, j = L.pixel(start, H, W)
        bad = 0.0
        while k < 1:
            v = a[i, j]
            if not math.isfinite(v):
                bad += 1.0
            k, i, j = L.advance(k, i, j, sk, si, sj, H, W)
        L.block_add(sh, cuda.threadIdx.x, tpb, bad, count, 0)

    return forward, adjoint, pad, nonfinite


# --------------------------------------------------------------------------- launches
def _run(kernel, n, stream, *args):
    tpb = L.threads_per_block()
    L.launch(kernel, L.grid(1, n, tpb), tpb, stream, *args)


def _kernels():
    return make_radon_kernels(L.threads_per_block())


def forward(sq, cos_t, sin_t, out, stream=0):
    """``out = A sq`` on the device: ``sq`` the P×P square (Numba device array,
    any strides), ``cos_t``/``sin_t`` float64 device arrays, ``out`` (P, n_angles)."""
    _run(_kernels()[0], sq.shape[0] * cos_t.shape[0], stream, sq, cos_t, sin_t, out)


def adjoint(sino, cos_t, sin_t, P, shift, out, stream=0):
    """``out[i, j] = (Aᵀ sino)[i + shift[0], j + shift[1]]`` (0 outside the P×P
    square) on the device: the back projection cropped or embedded into
    ``out`` in one pass."""
    H, W = out.shape
    _run(_kernels()[1], H * W, stream, sino, cos_t, sin_t, P, shift[0], shift[1], out)


def pad(img, P, shift, stream=0):
    """A new P×P device array: ``img`` at rows/columns ``shift``, zeros elsewhere."""
    out = L.device_empty((P, P), img.dtype, stream)
    _run(_kernels()[2], P * P, stream, img, shift[0], shift[1], out)
    return out


def count_nonfinite(a, stream=0) -> int:
    """The number of NaN/Inf entries of the 2-D device array ``a``."""
    count = L.zeros(1, np.float64, stream)
    _run(_kernels()[3], a.shape[0] * a.shape[1], stream, a, count)
    return int(L.to_host(count, stream)[0])
