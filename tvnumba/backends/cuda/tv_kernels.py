"""CUDA kernels (numba-cuda) for the β-TV value and its gradient.

They mirror :mod:`tvnumba.backends.cpu.tv_kernels`: they work on the canonical
layout ``u[b, c, z, y, x]`` and are specialised by

* ``nd``        -- 1, 2 or 3 real spatial axes (dead axes compile away),
* ``mode``      -- β = 1 (one sqrt), β = 2 (no sqrt, no pow), any β (one pow),
* ``isotropic`` and ``with_grad`` (value only, or value and gradient fused),

through :func:`make_kernel`, a cached factory that closes over ints and
bools only (the CUDA backend's one specialisation strategy).

One thread per pixel ``(z, y, x)`` of a batch item, in the grid-stride loop
of :mod:`._launch`.  A pixel computes its own value and, with the gradient,
recomputes the weights of its neighbours ``p - e_d`` instead of storing them
(cheap on a GPU, no second pass).  The value is accumulated per thread in
float64 and reduced by :func:`._launch.block_add` into a float64 vector,
whose extra last slot flags non-finite input, so NaN/Inf checking costs no
extra pass over the data.

Arrays reach the kernels flat: a 1-D array over the memory extent of the
canonical view, plus a layout tuple ``(origin, stride_b, stride_c, stride_z,
stride_y, stride_x)`` in elements (strides may be negative).  An element is
``u[o + c*sc + ...]`` with one add per neighbour instead of a 5-D index
computation per access, every layout shares one compiled signature per dtype,
and indices are cast to unsigned, which skips Numba's negative-index
wraparound code.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from ..._validate import KERNEL_NDIM, Plan
from ..cpu.tv_kernels import MODE_ONE, MODE_TWO, beta_mode
from . import _launch as L
from ._launch import _DEVICE_JIT, _KERNEL_JIT, cuda

if cuda is not None:
    @cuda.jit(**_DEVICE_JIT)
    def _pointwise(m, p, beta, mode):
        """``(m^(β/2), β m^(β/2-1))``, the weight 0 where ``m == 0``."""
        zero = m - m
        if mode == MODE_ONE:
            r = math.sqrt(m)
            if m > zero:
                return r, beta / r
            return r, zero
        if mode == MODE_TWO:
            return m, beta
        t = zero
        if m > zero:
            t = m**p
        return m * t, beta * t

    @cuda.jit(**_DEVICE_JIT)
    def _flux(d, s2, p, beta, mode):
        """``(value, w·d)`` of one difference of the anisotropic sum."""
        val, wt = _pointwise(d * d + s2, p, beta, mode)
        return val, wt * d

    @cuda.jit(**_DEVICE_JIT)
    def _at(u, o):
        return u[np.uint64(o)]

    @cuda.jit(**_DEVICE_JIT)
    def _sqmag(u, o, sc, sz, sy, sx, C, k, i, j, D, H, W, s2, ihz, ihy, ihx, has_y, has_z):
        """``s² + Σ_c Σ_d (D_d u)²`` at the pixel at offset ``o`` (index ``k, i, j``);
        zero differences on the last slices."""
        m = s2
        for c in range(C):
            oc = o + c * sc
            uc = _at(u, oc)
            if j + 1 < W:
                d = (_at(u, oc + sx) - uc) * ihx
                m += d * d
            if has_y and i + 1 < H:
                d = (_at(u, oc + sy) - uc) * ihy
                m += d * d
            if has_z and k + 1 < D:
                d = (_at(u, oc + sz) - uc) * ihz
                m += d * d
        return m

@lru_cache(maxsize=None)
def make_kernel(nd: int, mode: int, isotropic: bool, with_grad: bool, tpb: int,
                 one_channel: bool = False):
    """The kernel for one specialisation (closes over ints and bools only).

    ``one_channel`` compiles the channel count in as 1 (grayscale data, the common
    case): the channel loops then fold away.

    Arguments: ``u, ul, g, gl, shape, s2, ihz, ihy, ihx, p, beta, scale, values``
    with ``u``/``g`` flat, ``ul``/``gl`` their layout tuples, ``shape`` the canonical
    ``(B, C, D, H, W)`` and ``values`` the float64 per-batch sums (+ a NaN/Inf flag).
    """
    has_y = nd >= 2
    has_z = nd >= 3
    f64 = L.numba.float64

    @cuda.jit(**_KERNEL_JIT)
    def iso_kernel(u, ul, g, gl, shape, s2, ihz, ihy, ihx, p, beta, scale, values):
        B, C, D, H, W = shape
        if one_channel:
            C = 1
        u0, ub, uc_, uz, uy, ux = ul
        g0, gb, gc_, gz, gy, gx = gl
        sh = cuda.shared.array(tpb, f64)
        start, sk, si, sj = L.grid_stride(tpb, H, W)
        zero = s2 - s2
        ihx2 = ihx * ihx
        ihy2 = ihy * ihy
        ihz2 = ihz * ihz
        bad = False
        b = np.int64(cuda.blockIdx.y)
        while b < B:
            acc = 0.0
            k, i, j = L.pixel(start, H, W)
            while k < D:
                o = u0 + b * ub + k * uz + i * uy + j * ux
                val, w0 = _pointwise(
                    _sqmag(u, o, uc_, uz, uy, ux, C, k, i, j, D, H, W, s2, ihz, ihy, ihx,
                           has_y, has_z), p, beta, mode)
                acc += val
                if with_grad:
                    og = g0 + b * gb + k * gz + i * gy + j * gx
                    wx = zero
                    wy = zero
                    wz = zero
                    if j > 0:
                        _, wx = _pointwise(
                            _sqmag(u, o - ux, uc_, uz, uy, ux, C, k, i, j - 1, D, H, W, s2,
                                   ihz, ihy, ihx, has_y, has_z), p, beta, mode)
                    if has_y and i > 0:
                        _, wy = _pointwise(
                            _sqmag(u, o - uy, uc_, uz, uy, ux, C, k, i - 1, j, D, H, W, s2,
                                   ihz, ihy, ihx, has_y, has_z), p, beta, mode)
                    if has_z and k > 0:
                        _, wz = _pointwise(
                            _sqmag(u, o - uz, uc_, uz, uy, ux, C, k - 1, i, j, D, H, W, s2,
                                   ihz, ihy, ihx, has_y, has_z), p, beta, mode)
                for c in range(C):
                    oc = o + c * uc_
                    uv = _at(u, oc)
                    if not math.isfinite(uv):
                        bad = True
                    if with_grad:
                        t = zero
                        if j > 0:
                            t += wx * (uv - _at(u, oc - ux))
                        if j + 1 < W:
                            t -= w0 * (_at(u, oc + ux) - uv)
                        gv = t * ihx2
                        if has_y:
                            t = zero
                            if i > 0:
                                t += wy * (uv - _at(u, oc - uy))
                            if i + 1 < H:
                                t -= w0 * (_at(u, oc + uy) - uv)
                            gv += t * ihy2
                        if has_z:
                            t = zero
                            if k > 0:
                                t += wz * (uv - _at(u, oc - uz))
                            if k + 1 < D:
                                t -= w0 * (_at(u, oc + uz) - uv)
                            gv += t * ihz2
                        g[np.uint64(og + c * gc_)] = gv * scale
                k, i, j = L.advance(k, i, j, sk, si, sj, H, W)
            L.block_add(sh, cuda.threadIdx.x, tpb, acc, values, b)
            b += cuda.gridDim.y
        if bad:
            values[B] = 1.0

    @cuda.jit(**_KERNEL_JIT)
    def aniso_kernel(u, ul, g, gl, shape, s2, ihz, ihy, ihx, p, beta, scale, values):
        B, C, D, H, W = shape
        if one_channel:
            C = 1
        u0, ub, uc_, uz, uy, ux = ul
        g0, gb, gc_, gz, gy, gx = gl
        sh = cuda.shared.array(tpb, f64)
        start, sk, si, sj = L.grid_stride(tpb, H, W)
        zero = s2 - s2
        bad = False
        b = np.int64(cuda.blockIdx.y)
        while b < B:
            acc = 0.0
            k, i, j = L.pixel(start, H, W)
            while k < D:
                o = u0 + b * ub + k * uz + i * uy + j * ux
                og = g0 + b * gb + k * gz + i * gy + j * gx
                for c in range(C):
                    oc = o + c * uc_
                    uv = _at(u, oc)
                    if not math.isfinite(uv):
                        bad = True
                    # The value counts every difference, the zero one on the
                    # last slice included: it contributes s^β.
                    d = zero
                    if j + 1 < W:
                        d = (_at(u, oc + ux) - uv) * ihx
                    val, f = _flux(d, s2, p, beta, mode)
                    acc += val
                    gv = -f * ihx
                    if with_grad and j > 0:
                        _, f = _flux((uv - _at(u, oc - ux)) * ihx, s2, p, beta, mode)
                        gv += f * ihx
                    if has_y:
                        d = zero
                        if i + 1 < H:
                            d = (_at(u, oc + uy) - uv) * ihy
                        val, f = _flux(d, s2, p, beta, mode)
                        acc += val
                        gv -= f * ihy
                        if with_grad and i > 0:
                            _, f = _flux((uv - _at(u, oc - uy)) * ihy, s2, p, beta, mode)
                            gv += f * ihy
                    if has_z:
                        d = zero
                        if k + 1 < D:
                            d = (_at(u, oc + uz) - uv) * ihz
                        val, f = _flux(d, s2, p, beta, mode)
                        acc += val
                        gv -= f * ihz
                        if with_grad and k > 0:
                            _, f = _flux((uv - _at(u, oc - uz)) * ihz, s2, p, beta, mode)
                            gv += f * ihz
                    if with_grad:
                        g[np.uint64(og + c * gc_)] = gv * scale
                k, i, j = L.advance(k, i, j, sk, si, sj, H, W)
            L.block_add(sh, cuda.threadIdx.x, tpb, acc, values, b)
            b += cuda.gridDim.y
        if bad:
            values[B] = 1.0

    return iso_kernel if isotropic else aniso_kernel


def compute(u5, g5, plan: Plan, stream=0):
    """Launch the TV kernel on canonical device arrays; per-batch sums (host)."""
    B, C, D, H, W = (int(n) for n in u5.shape)
    tpb = L.threads_per_block()
    nd = min(plan.n_spatial, KERNEL_NDIM)
    kernel = make_kernel(nd, beta_mode(plan.beta), plan.isotropic, g5 is not None, tpb, C == 1)
    T = np.dtype(u5.dtype).type
    ihz, ihy, ihx = (T(h) for h in plan.canonical_inv_spacing)
    values = L.to_device(np.zeros(B + 1, np.float64), stream)
    u, ul = L.flat(u5)
    if g5 is not None:
        g, gl = L.flat(g5)
    else:
        g, gl = L.device_empty((1,), u5.dtype), (0, 0, 0, 0, 0, 0)
    L.launch(kernel, L.grid(B, D * H * W, tpb), tpb, stream,
             u, ul, g, gl, (B, C, D, H, W), T(plan.smoothing**2), ihz, ihy, ihx,
             T(plan.beta / 2 - 1), T(plan.beta), T(plan.scale()), values)
    host = L.to_host(values, stream)
    if host[B] != 0:
        raise ValueError("u contains NaN or Inf values; TV is only defined for finite input")
    return host[:B]
