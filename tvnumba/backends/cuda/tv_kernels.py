"""CUDA kernels (numba-cuda) for the β-TV value and its gradient.

They mirror :mod:`tvnumba.backends.cpu.tv_kernels`: they work on the canonical
layout ``u[b, c, z, y, x]`` and are specialised by

* ``nd``        -- 1, 2 or 3 real spatial axes (dead axes compile away),
* ``mode``      -- β = 1 (one sqrt), β = 2 (no sqrt, no pow), any β (one pow),
* ``isotropic`` and ``with_grad`` (value only, or value and gradient fused),

through :func:`make_kernel`, a cached factory that closes over ints and
bools only (the CUDA backend's one specialisation strategy).

Two kernels (:func:`select` picks): for one channel in 2-D/3-D, the common case,
:func:`make_strip_kernel`'s threads walk down strips of rows and pass the
weighted differences to their neighbours (its docstring says how); otherwise
(colour, 1-D) one thread per pixel ``(z, y, x)`` of a batch item, in the
grid-stride loop of :mod:`._launch`.  A pixel computes its own value and, with the gradient,
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
from ._launch import DEVICE_JIT, KERNEL_JIT, cuda

if cuda is not None:
    @cuda.jit(**DEVICE_JIT)
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

    @cuda.jit(**DEVICE_JIT)
    def _flux(d, s2, p, beta, mode):
        """``(value, w·d)`` of one difference of the anisotropic sum."""
        val, wt = _pointwise(d * d + s2, p, beta, mode)
        return val, wt * d

    @cuda.jit(**DEVICE_JIT)
    def _aniso_axis(u, oc, st, idx, n, ih, s2, p, beta, mode, with_grad):
        """``(value, gradient part)`` of the anisotropic term along one axis at
        offset ``oc`` (index ``idx`` of ``n`` along it, element stride ``st``):
        the pixel's own difference, and the one of the pixel behind."""
        uv = _at(u, oc)
        d = uv - uv
        if idx + 1 < n:
            d = (_at(u, oc + st) - uv) * ih
        val, f = _flux(d, s2, p, beta, mode)
        gv = -f * ih
        if with_grad and idx > 0:
            _, f = _flux((uv - _at(u, oc - st)) * ih, s2, p, beta, mode)
            gv += f * ih
        return val, gv

    @cuda.jit(**DEVICE_JIT)
    def _iso_axis(u, oc, st, idx, n, w_behind, w0):
        """``Σ`` over the two differences of one axis touching the element at
        ``oc``: ``w_behind (u − u_behind) − w0 (u_ahead − u)`` (0 past the ends)."""
        uv = _at(u, oc)
        t = uv - uv
        if idx > 0:
            t += w_behind * (uv - _at(u, oc - st))
        if idx + 1 < n:
            t -= w0 * (_at(u, oc + st) - uv)
        return t

    @cuda.jit(**DEVICE_JIT)
    def _at(u, o):
        return u[np.uint64(o)]

    @cuda.jit(**DEVICE_JIT)
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

    @cuda.jit(**DEVICE_JIT)
    def sqmag(u, o, uc_, uz, uy, ux, C, k, i, j, D, H, W, s2, ihz, ihy, ihx):
        return _sqmag(u, o, uc_, uz, uy, ux, C, k, i, j, D, H, W, s2, ihz, ihy, ihx,
                      has_y, has_z)

    @cuda.jit(**DEVICE_JIT)
    def iso_pixel(u, ul, g, gl, b, k, i, j, C, D, H, W, s2, ihz, ihy, ihx, p, beta, scale):
        """The isotropic term of pixel ``(b, k, i, j)`` and (``with_grad``) its
        gradient, written; returns ``(value, any input non-finite)``.  The
        weights of the neighbours behind are recomputed, not stored."""
        u0, ub, uc_, uz, uy, ux = ul
        g0, gb, gc_, gz, gy, gx = gl
        zero = s2 - s2
        o = u0 + b * ub + k * uz + i * uy + j * ux
        val, w0 = _pointwise(sqmag(u, o, uc_, uz, uy, ux, C, k, i, j, D, H, W, s2, ihz, ihy,
                                   ihx), p, beta, mode)
        wx = zero
        wy = zero
        wz = zero
        if with_grad:
            if j > 0:
                _, wx = _pointwise(sqmag(u, o - ux, uc_, uz, uy, ux, C, k, i, j - 1, D, H, W,
                                         s2, ihz, ihy, ihx), p, beta, mode)
            if has_y and i > 0:
                _, wy = _pointwise(sqmag(u, o - uy, uc_, uz, uy, ux, C, k, i - 1, j, D, H, W,
                                         s2, ihz, ihy, ihx), p, beta, mode)
            if has_z and k > 0:
                _, wz = _pointwise(sqmag(u, o - uz, uc_, uz, uy, ux, C, k - 1, i, j, D, H, W,
                                         s2, ihz, ihy, ihx), p, beta, mode)
        og = g0 + b * gb + k * gz + i * gy + j * gx
        bad = False
        for c in range(C):
            oc = o + c * uc_
            if not math.isfinite(_at(u, oc)):
                bad = True
            if with_grad:
                gv = _iso_axis(u, oc, ux, j, W, wx, w0) * (ihx * ihx)
                if has_y:
                    gv += _iso_axis(u, oc, uy, i, H, wy, w0) * (ihy * ihy)
                if has_z:
                    gv += _iso_axis(u, oc, uz, k, D, wz, w0) * (ihz * ihz)
                g[np.uint64(og + c * gc_)] = gv * scale
        return val, bad

    @cuda.jit(**DEVICE_JIT)
    def aniso_pixel(u, ul, g, gl, b, k, i, j, C, D, H, W, s2, ihz, ihy, ihx, p, beta, scale):
        """The anisotropic terms of pixel ``(b, k, i, j)`` (float64 sum) and
        its gradient; returns ``(value, any input non-finite)``.  Every
        difference counts, the zero one on a last slice included: it
        contributes s^β."""
        u0, ub, uc_, uz, uy, ux = ul
        g0, gb, gc_, gz, gy, gx = gl
        o = u0 + b * ub + k * uz + i * uy + j * ux
        og = g0 + b * gb + k * gz + i * gy + j * gx
        acc = 0.0
        bad = False
        for c in range(C):
            oc = o + c * uc_
            if not math.isfinite(_at(u, oc)):
                bad = True
            val, gv = _aniso_axis(u, oc, ux, j, W, ihx, s2, p, beta, mode, with_grad)
            acc += val
            if has_y:
                val, t = _aniso_axis(u, oc, uy, i, H, ihy, s2, p, beta, mode, with_grad)
                acc += val
                gv += t
            if has_z:
                val, t = _aniso_axis(u, oc, uz, k, D, ihz, s2, p, beta, mode, with_grad)
                acc += val
                gv += t
            if with_grad:
                g[np.uint64(og + c * gc_)] = gv * scale
        return acc, bad

    pixel_terms = iso_pixel if isotropic else aniso_pixel

    @cuda.jit(**KERNEL_JIT)
    def kernel(u, ul, g, gl, shape, s2, ihz, ihy, ihx, p, beta, scale, values):
        B, C, D, H, W = shape
        if one_channel:
            C = 1
        sh = cuda.shared.array(tpb, f64)
        start, sk, si, sj = L.grid_stride(tpb, H, W)
        bad = False
        b = np.int64(cuda.blockIdx.y)
        while b < B:
            acc = 0.0
            k, i, j = L.pixel(start, H, W)
            while k < D:
                val, nonfinite = pixel_terms(u, ul, g, gl, b, k, i, j, C, D, H, W, s2, ihz,
                                             ihy, ihx, p, beta, scale)
                acc += val
                bad = bad or nonfinite
                k, i, j = L.advance(k, i, j, sk, si, sj, H, W)
            L.block_add(sh, cuda.threadIdx.x, tpb, acc, values, b)
            b += cuda.gridDim.y
        if bad:
            values[B] = 1.0

    return kernel


@lru_cache(maxsize=None)
def make_strip_kernel(nd: int, mode: int, isotropic: bool, with_grad: bool, tpb: int,
                      rows: int, dtype: str):
    """The kernel for one channel and 2 or 3 spatial axes, the common case, walking
    down strips of ``rows`` rows (same arguments as :func:`make_kernel`'s kernel).

    Consecutive threads take consecutive ``x`` of one strip and march down it, so a
    pixel loads only the element below (the element above is in a register) and
    its right neighbour (cached), and computes its weight once: the weighted
    differences behind it come from the thread on the left (through shared memory,
    one barrier per row) and from the row before (a register).  Only the first
    row of a strip, the first thread of a block and, in 3-D, the ``z`` difference
    behind are recomputed.  On an H100 the one-thread-per-pixel kernel spent ~120
    instructions per pixel on 64-bit index arithmetic and recomputed weights
    (compute-bound at 8-15 % of the memory bandwidth, Nsight Compute); here the
    index arithmetic is one add per row.
    """
    has_z = nd >= 3
    f64 = L.numba.float64
    T = getattr(L.numba, dtype)

    @cuda.jit(**DEVICE_JIT)
    def flux_behind(u, o, st, ih, k, i, j, D, H, W, uz, uy, ux, s2, ihz, ihy, ihx, p, beta):
        """``w·d`` of the difference from the pixel ``(k, i, j)`` at ``o − st``
        to the one at ``o`` (isotropic: ``w`` from all of that pixel's differences)."""
        ob = o - st
        d = (_at(u, o) - _at(u, ob)) * ih
        if isotropic:
            m = _sqmag(u, ob, 0, uz, uy, ux, 1, k, i, j, D, H, W, s2, ihz, ihy, ihx,
                       True, has_z)
        else:
            m = d * d + s2
        _, w = _pointwise(m, p, beta, mode)
        return w * d

    @cuda.jit(**KERNEL_JIT)
    def kernel(u, ul, g, gl, shape, s2, ihz, ihy, ihx, p, beta, scale, values):
        B, C, D, H, W = shape
        u0, ub, uc_, uz, uy, ux = ul
        g0, gb, gc_, gz, gy, gx = gl
        tid = cuda.threadIdx.x
        sh = cuda.shared.array(tpb, f64)
        # Double-buffered: a row's flux is written to one half while a slower thread
        # may still read the other half of the row before (one barrier per row).
        fxs = cuda.shared.array((2, tpb), T)
        S = (H + rows - 1) // rows
        total = D * S * W
        zero = s2 - s2
        bad = False
        par = 0
        b = np.int64(cuda.blockIdx.y)
        while b < B:
            acc = 0.0
            q0 = np.int64(cuda.blockIdx.x) * tpb
            while q0 < total:  # uniform over the block: every thread meets the barriers
                q = q0 + tid
                live = q < total
                j = q % W
                t = q // W
                i = (t % S) * rows
                k = t // S
                o = u0 + b * ub + k * uz + i * uy + j * ux
                og = g0 + b * gb + k * gz + i * gy + j * gx
                uc = zero
                fy_up = zero
                if live:
                    uc = _at(u, o)
                    if with_grad and i > 0:
                        fy_up = flux_behind(u, o, uy, ihy, k, i - 1, j, D, H, W, uz, uy, ux,
                                            s2, ihz, ihy, ihx, p, beta)
                for _ in range(rows):
                    row = live and i < H
                    fx = zero
                    fy = zero
                    fz = zero
                    below = uc
                    if row:
                        if not math.isfinite(uc):
                            bad = True
                        dx = zero
                        if j + 1 < W:
                            dx = (_at(u, o + ux) - uc) * ihx
                        dy = zero
                        if i + 1 < H:
                            below = _at(u, o + uy)
                            dy = (below - uc) * ihy
                        dz = zero
                        if has_z and k + 1 < D:
                            dz = (_at(u, o + uz) - uc) * ihz
                        if isotropic:
                            m = s2 + dx * dx + dy * dy
                            if has_z:
                                m += dz * dz
                            val, w = _pointwise(m, p, beta, mode)
                            acc += val
                            fx = w * dx
                            fy = w * dy
                            fz = w * dz
                        else:
                            val, fx = _flux(dx, s2, p, beta, mode)
                            acc += val
                            val, fy = _flux(dy, s2, p, beta, mode)
                            acc += val
                            if has_z:
                                val, fz = _flux(dz, s2, p, beta, mode)
                                acc += val
                    if with_grad:
                        fxs[par, tid] = fx
                        cuda.syncthreads()
                        if row:
                            fx_left = zero
                            if j > 0:
                                if tid > 0:
                                    fx_left = fxs[par, tid - 1]
                                else:
                                    fx_left = flux_behind(u, o, ux, ihx, k, i, j - 1, D, H, W,
                                                          uz, uy, ux, s2, ihz, ihy, ihx, p, beta)
                            gv = (fx_left - fx) * ihx + (fy_up - fy) * ihy
                            if has_z:
                                fz_back = zero
                                if k > 0:
                                    fz_back = flux_behind(u, o, uz, ihz, k - 1, i, j, D, H, W,
                                                          uz, uy, ux, s2, ihz, ihy, ihx, p, beta)
                                gv += (fz_back - fz) * ihz
                            g[np.uint64(og)] = gv * scale
                            fy_up = fy
                        par ^= 1
                    uc = below
                    o += uy
                    og += gy
                    i += 1
                q0 += np.int64(cuda.gridDim.x) * tpb
            L.block_add(sh, tid, tpb, acc, values, b)
            b += cuda.gridDim.y
        if bad:
            values[B] = 1.0

    return kernel


#: Rows a thread of the strip kernel walks down (tests shrink it so that small
#: inputs span several strips).
STRIP_ROWS = 16


def select(shape5, plan: Plan, with_grad: bool, dtype):
    """``(kernel, grid, tpb)`` for canonical arrays of ``shape5``: the strip kernel
    for one channel and 2-3 spatial axes, the one-thread-per-pixel kernel otherwise
    (colour, 1-D)."""
    B, C, D, H, W = shape5
    tpb = L.threads_per_block()
    nd = min(plan.n_spatial, KERNEL_NDIM)
    mode = beta_mode(plan.beta)
    if C == 1 and nd >= 2:
        rows = int(STRIP_ROWS)
        kernel = make_strip_kernel(nd, mode, plan.isotropic, with_grad, tpb, rows,
                                   np.dtype(dtype).name)
        return kernel, L.grid(B, D * -(-H // rows) * W, tpb), tpb
    kernel = make_kernel(nd, mode, plan.isotropic, with_grad, tpb, C == 1)
    return kernel, L.grid(B, D * H * W, tpb), tpb


def compute(u5, g5, plan: Plan, stream=0):
    """Launch the TV kernel on canonical device arrays; per-batch sums (host)."""
    B, C, D, H, W = (int(n) for n in u5.shape)
    kernel, grid, tpb = select((B, C, D, H, W), plan, g5 is not None, u5.dtype)
    T = np.dtype(u5.dtype).type
    ihz, ihy, ihx = (T(h) for h in plan.canonical_inv_spacing)
    values = L.zeros(B + 1, np.float64, stream)
    u, ul = L.flat(u5)
    if g5 is not None:
        g, gl = L.flat(g5)
    else:
        g, gl = L.device_empty((1,), u5.dtype), (0, 0, 0, 0, 0, 0)
    L.launch(kernel, grid, tpb, stream,
             u, ul, g, gl, (B, C, D, H, W), T(plan.smoothing**2), ihz, ihy, ihx,
             T(plan.beta / 2 - 1), T(plan.beta), T(plan.scale()), values)
    host = L.to_host(values, stream)
    if host[B] != 0:
        raise ValueError("u contains NaN or Inf values; TV is only defined for finite input")
    return host[:B]
