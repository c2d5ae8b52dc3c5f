"""CUDA kernels (numba-cuda) for the β-TV value and its gradient.

Imported lazily by :mod:`tvnumba.tv` on the GPU path only: ``import tvnumba``
never imports ``numba.cuda``.  The kernels mirror :mod:`tvnumba._cpu`: they
work on the canonical layout ``u[b, c, z, y, x]`` and are specialised by

* ``nd``        -- 1, 2 or 3 real spatial axes (dead axes compile away),
* ``mode``      -- β = 1 (one sqrt), β = 2 (no sqrt, no pow), any β (one pow),
* ``isotropic`` and ``with_grad`` (value only, or value and gradient fused),

through :func:`_make_kernel`, a factory that closes over ints and bools only.

One thread per pixel ``(z, y, x)`` of a batch item, in a grid-stride loop over
the flattened ``D·H·W`` pixels (x fastest, so a warp reads and writes
consecutive addresses); ``blockIdx.y`` strides over the batch.  The pixel
index is carried incrementally (no 64-bit division inside the loop).  A pixel
computes its own value and, with the gradient, recomputes the weights of its
neighbours ``p - e_d`` instead of storing them (cheap on a GPU, no second
pass).  The value is accumulated per thread in float64, reduced per block in
shared memory (float64) and added with one ``cuda.atomic.add`` per block and
batch item into a float64 vector, whose extra last slot flags non-finite
input, so NaN/Inf checking costs no extra pass over the data.

Arrays: NumPy in -> copied to the device in canonical order, gradient copied
back (NumPy out).  Device arrays (Numba, CuPy, anything with
``__cuda_array_interface__``) in -> device array of the same kind out; the
canonical layout is a strided view whenever the memory order allows
(otherwise a device copy by a small strided-copy kernel), and the only host
transfer is the tiny per-batch value vector.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np

from . import _validate as V
from ._cpu import MODE_ONE, MODE_TWO, beta_mode
from .tv import finish_value

try:
    import numba
    from numba import cuda
except ImportError as exc:  # pragma: no cover - numba without a CUDA target
    cuda = None
    _IMPORT_ERROR: Exception | None = exc
else:
    _IMPORT_ERROR = None

#: Threads per block of every launch (a power of two; tests shrink it so
#: that tiny inputs span several blocks).
THREADS_PER_BLOCK = 256
#: Upper bound on the blocks of one launch; ``None`` sizes the grid from the
#: device (resident blocks × ``WAVES``).  Tests set it small to exercise the
#: grid-stride loops.
MAX_BLOCKS: int | None = None
#: Full waves of resident blocks launched when the input is large.
WAVES = 4
#: ``gridDim.y`` limit of CUDA (the batch axis strides beyond it).
_MAX_GRID_Y = 65535
#: Dimensions of the strided copy kernel (arrays with more dims need CuPy).
_COPY_NDIM = 8

_SIM = bool(cuda is not None and getattr(numba.config, "ENABLE_CUDASIM", 0))

# No fastmath: IEEE NaN/Inf semantics stay (the non-finite flag relies on
# them) and the float32 results match the CPU kernels closely.  cache=True is
# not supported by the simulator, which ignores it.
_KERNEL_JIT = dict(cache=not _SIM)
# forceinline: the specialisation flags passed to the helpers become
# constants after NVVM inlining, so the dead branches fold away.
_DEVICE_JIT = dict(device=True) if _SIM else dict(device=True, forceinline=True)

_NO_GPU_MESSAGE = (
    "no CUDA GPU is available (numba.cuda.is_available() is False: no NVIDIA "
    "driver or device was found). Run on a machine with an NVIDIA GPU and "
    "driver and install the `cuda` extra (pip install 'tvnumba[cuda]': "
    "numba-cuda and cupy-cuda12x), set NUMBA_ENABLE_CUDASIM=1 to use Numba's "
    "(slow) CUDA simulator, or pass device='cpu'"
)


def _available() -> bool:
    return bool(cuda.is_available())


def _require_cuda() -> None:
    if cuda is None:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "the GPU path needs Numba's CUDA target, which failed to import "
            f"({_IMPORT_ERROR!r}); install the `cuda` extra: "
            "pip install 'tvnumba[cuda]' (numba-cuda, cupy-cuda12x)"
        )
    if not _available():
        raise RuntimeError(_NO_GPU_MESSAGE)


# --------------------------------------------------------------------------- kernels
# Arrays reach the kernels flat: a 1-D array over the memory extent of the canonical
# view, plus a "layout" tuple (origin, stride_b, stride_c, stride_z, stride_y, stride_x)
# in elements (strides may be negative).  An element is u[o + c*sc + ...] with one add
# per neighbour instead of a 5-D index computation per access, every layout (contiguous,
# strided, negative, transposed) shares one compiled signature per dtype, and indices
# are cast to unsigned, which skips Numba's negative-index wraparound code.
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

    @cuda.jit(**_DEVICE_JIT)
    def _block_add(sh, tid, tpb, acc, values, b):
        """Reduce ``acc`` over the block in shared memory; thread 0 adds the
        block's sum to ``values[b]``.  Every thread of the block calls it."""
        sh[tid] = acc
        cuda.syncthreads()
        s = tpb // 2
        while s > 0:
            if tid < s:
                sh[tid] += sh[tid + s]
            cuda.syncthreads()
            s //= 2
        if tid == 0:
            cuda.atomic.add(values, b, sh[0])


@lru_cache(maxsize=None)
def _make_kernel(nd: int, mode: int, isotropic: bool, with_grad: bool, tpb: int,
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
    f64 = numba.float64

    @cuda.jit(**_KERNEL_JIT)
    def iso_kernel(u, ul, g, gl, shape, s2, ihz, ihy, ihx, p, beta, scale, values):
        B, C, D, H, W = shape
        if one_channel:
            C = 1
        u0, ub, uc_, uz, uy, ux = ul
        g0, gb, gc_, gz, gy, gx = gl
        sh = cuda.shared.array(tpb, f64)
        tid = cuda.threadIdx.x
        start = np.int64(cuda.blockIdx.x) * tpb + tid
        step = np.int64(cuda.gridDim.x) * tpb
        sj = step % W
        si = (step // W) % H
        sk = step // (W * H)
        zero = s2 - s2
        ihx2 = ihx * ihx
        ihy2 = ihy * ihy
        ihz2 = ihz * ihz
        bad = False
        b = np.int64(cuda.blockIdx.y)
        while b < B:
            acc = 0.0
            j = start % W
            i = (start // W) % H
            k = start // (W * H)
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
                # next pixel of this thread: carry the (k, i, j) index
                j += sj
                i += si
                k += sk
                if j >= W:
                    j -= W
                    i += 1
                if i >= H:
                    i -= H
                    k += 1
            _block_add(sh, tid, tpb, acc, values, b)
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
        tid = cuda.threadIdx.x
        start = np.int64(cuda.blockIdx.x) * tpb + tid
        step = np.int64(cuda.gridDim.x) * tpb
        sj = step % W
        si = (step // W) % H
        sk = step // (W * H)
        zero = s2 - s2
        bad = False
        b = np.int64(cuda.blockIdx.y)
        while b < B:
            acc = 0.0
            j = start % W
            i = (start // W) % H
            k = start // (W * H)
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
                j += sj
                i += si
                k += sk
                if j >= W:
                    j -= W
                    i += 1
                if i >= H:
                    i -= H
                    k += 1
            _block_add(sh, tid, tpb, acc, values, b)
            b += cuda.gridDim.y
        if bad:
            values[B] = 1.0

    return iso_kernel if isotropic else aniso_kernel


@lru_cache(maxsize=None)
def _copy_kernel():
    """``dst[...] = src[...]`` for 8-D arrays of any strides and dtypes (the
    assignment casts); the fallback for layouts a view cannot express."""

    @cuda.jit(**_KERNEL_JIT)
    def copy8(src, dst):
        n0, n1, n2, n3, n4, n5, n6, n7 = dst.shape
        total = n0 * n1 * n2 * n3 * n4 * n5 * n6 * n7
        idx = np.int64(cuda.blockIdx.x) * cuda.blockDim.x + cuda.threadIdx.x
        step = np.int64(cuda.gridDim.x) * cuda.blockDim.x
        while idx < total:
            r = idx
            i7 = r % n7
            r //= n7
            i6 = r % n6
            r //= n6
            i5 = r % n5
            r //= n5
            i4 = r % n4
            r //= n4
            i3 = r % n3
            r //= n3
            i2 = r % n2
            r //= n2
            i1 = r % n1
            i0 = r // n1
            dst[i0, i1, i2, i3, i4, i5, i6, i7] = src[i0, i1, i2, i3, i4, i5, i6, i7]
            idx += step

    return copy8


# --------------------------------------------------------------------------- launches
def _threads_per_block() -> int:
    tpb = int(THREADS_PER_BLOCK)
    if tpb < 1 or tpb > 1024 or tpb & (tpb - 1):
        raise ValueError(f"THREADS_PER_BLOCK must be a power of two <= 1024, got {tpb}")
    return tpb


@lru_cache(maxsize=None)
def _resident_blocks(tpb: int) -> int:
    """Blocks of ``tpb`` threads the device runs at once (an estimate)."""
    dev = cuda.get_current_device()
    sms = getattr(dev, "MULTIPROCESSOR_COUNT", 16)  # the simulator has no attributes
    per_sm = getattr(dev, "MAX_THREADS_PER_MULTI_PROCESSOR", 2048) // tpb
    return max(1, sms * max(1, per_sm))


def _max_blocks(tpb: int) -> int:
    if MAX_BLOCKS is not None:
        return max(1, int(MAX_BLOCKS))
    return WAVES * _resident_blocks(tpb)


def _grid(n_batch: int, n_pixels: int, tpb: int) -> tuple[int, int]:
    """``(blocks over the pixels, blocks over the batch)``."""
    cap = _max_blocks(tpb)
    by = max(1, min(n_batch, _MAX_GRID_Y, cap))
    bx = max(1, min(-(-n_pixels // tpb), cap // by))
    return bx, by


def _launch(kernel, grid, tpb, stream, *args):
    with warnings.catch_warnings():
        # Small grids are expected for small inputs; not worth a warning.  (Matched by
        # message: numba-cuda's NumbaPerformanceWarning is not numba's class.)
        warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU")
        kernel[grid, tpb, stream](*args)


def _dummy_grad(dtype):
    return _device_empty((1,), dtype)


def _flat(a):
    """``(1-D device array over a's memory extent, layout tuple)``: the layout is
    ``(element offset of a[0, ..., 0], element strides...)``."""
    item = a.dtype.itemsize
    shape = tuple(int(n) for n in a.shape)
    strides = tuple(int(s) for s in a.strides)
    if any(s % item for s in strides):  # pragma: no cover - exotic foreign arrays
        raise ValueError(f"strides {strides} are not multiples of the item size {item}")
    es = tuple(s // item for s in strides)
    lo = sum((n - 1) * s for n, s in zip(shape, es) if s < 0)
    hi = sum((n - 1) * s for n, s in zip(shape, es) if s > 0)
    flat = _view(a, (hi - lo + 1,), (item,), offset=lo * item)
    return flat, (-lo,) + es


def _compute(u5, g5, plan: V.Plan, stream=0):
    """Launch the TV kernel on canonical device arrays; per-batch sums (host)."""
    B, C, D, H, W = (int(n) for n in u5.shape)
    tpb = _threads_per_block()
    nd = min(len(plan.spatial_shape), V.KERNEL_NDIM)
    kernel = _make_kernel(nd, beta_mode(plan.beta), plan.isotropic, g5 is not None, tpb,
                          C == 1)
    T = plan.dtype.type
    ihz, ihy, ihx = (T(h) for h in plan.canonical_inv_spacing)
    values = _to_device(np.zeros(B + 1, np.float64), stream)
    u, ul = _flat(u5)
    if g5 is not None:
        g, gl = _flat(g5)
    else:
        g, gl = _dummy_grad(plan.dtype), (0, 0, 0, 0, 0, 0)
    _launch(kernel, _grid(B, D * H * W, tpb), tpb, stream,
            u, ul, g, gl, (B, C, D, H, W), T(plan.smoothing**2), ihz, ihy, ihx,
            T(plan.beta / 2 - 1), T(plan.beta), T(plan.scale()), values)
    host = _to_host(values, stream)
    if host[B] != 0:
        raise ValueError("u contains NaN or Inf values; TV is only defined for finite input")
    return host[:B]


def _copy(src, dst, stream=0):
    """``dst[...] = src[...]`` on the device (same shape, any strides/dtypes)."""
    nd = len(dst.shape)
    if nd > _COPY_NDIM:
        raise NotImplementedError(
            f"arrays with more than {_COPY_NDIM} dimensions in a layout that needs a "
            "device copy are not supported; pass a C-contiguous array"
        )
    pad = _COPY_NDIM - nd
    src = _view(src, (1,) * pad + tuple(src.shape), (0,) * pad + tuple(src.strides))
    dst = _view(dst, (1,) * pad + tuple(dst.shape), (0,) * pad + tuple(dst.strides))
    tpb = _threads_per_block()
    n = math.prod(dst.shape)
    bx = max(1, min(-(-n // tpb), _max_blocks(tpb)))
    _launch(_copy_kernel(), bx, tpb, stream, src, dst)


# --------------------------------------------------------------------------- device arrays
def _is_numba_array(a) -> bool:
    """A Numba device array (or the simulator's stand-in for one)."""
    return bool(getattr(type(a), "__cuda_ndarray__", False))


def is_device_array(a) -> bool:
    return _is_numba_array(a) or (
        hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray)
    )


def _kind(a) -> str:
    return type(a).__module__.split(".")[0]


def _as_numba(a):
    """A Numba device array viewing ``a`` (no copy)."""
    if _is_numba_array(a):
        return a
    if _SIM:
        raise TypeError(
            "the CUDA simulator only takes its own device arrays (numba.cuda.to_device); "
            f"got {type(a).__name__}"
        )
    return cuda.as_cuda_array(a)  # pragma: no cover - needs a GPU


def _view(a, shape, strides, offset=0):
    """A device array over ``a``'s memory starting ``offset`` bytes from ``a``'s
    first element, with the given shape and (byte) strides: the device twin of
    ``as_strided``."""
    if _SIM:
        x = a._ary
        if offset:
            # the element at the lowest address, as a view: as_strided starts there
            low = tuple(slice(n - 1, n) if s < 0 else slice(0, 1)
                        for n, s in zip(x.shape, x.strides))
            x = x[low]
            lo = sum((n - 1) * s for n, s in zip(a.shape, a.strides) if s < 0)
            assert offset == lo, "the simulator views only start at a[0...] or the lowest address"
        return type(a)(np.lib.stride_tricks.as_strided(x, tuple(shape), tuple(strides)))
    desc = dict(  # pragma: no cover - needs a GPU
        shape=tuple(int(n) for n in shape),
        strides=tuple(int(s) for s in strides),
        typestr=a.dtype.str,
        data=(a.__cuda_array_interface__["data"][0] + offset, False),
        version=3,
    )
    return cuda.from_cuda_array_interface(desc, owner=a, sync=False)  # pragma: no cover


def _transposed(a, plan: V.Plan):
    """``a.transpose(plan.perm)`` as a device view."""
    return _view(a, [a.shape[p] for p in plan.perm], [a.strides[p] for p in plan.perm])


def _canonical(a, plan: V.Plan):
    """``a`` in the kernels' ``(B, C, n0, n1, n2)`` layout as a view, or None
    when the memory order needs a copy (non-mergeable batch axes)."""
    # The stride arithmetic is NumPy's: a zero-size-buffer probe with a's
    # shape and strides is transposed and reshaped without copying (no data
    # is read), and its strides are carried over to the device array.
    probe = np.lib.stride_tricks.as_strided(
        np.zeros(1, a.dtype), tuple(a.shape), tuple(a.strides))
    try:
        c = probe.transpose(plan.perm).reshape(plan.canonical_shape, copy=False)
    except ValueError:
        return None
    return _view(a, c.shape, c.strides)


def _device_empty(shape, dtype, stream=0):
    return cuda.device_array(tuple(shape), dtype=dtype, stream=stream)


def _to_device(a, stream=0):
    return cuda.to_device(a, stream=stream)


def _to_host(d, stream=0):
    host = d.copy_to_host(stream=stream)
    if stream != 0:  # pragma: no cover - needs a GPU and a non-default stream
        stream.synchronize()
    return host


def _empty_like_kind(u, shape, dtype, stream=0):
    """``(array of u's kind, Numba view of it)``: a new C-ordered gradient."""
    kind = _kind(u)
    if kind == "cupy":  # pragma: no cover - needs a GPU and CuPy
        import cupy

        arr = cupy.empty(shape, dtype)
        return arr, _as_numba(arr)
    if kind == "torch":  # pragma: no cover - needs a GPU and PyTorch
        import torch

        arr = torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=u.device)
        return arr, _as_numba(arr)
    arr = _device_empty(shape, dtype, stream)
    return arr, arr


def _stream_of(u):
    """The stream the producer of ``u`` works on (0: Numba's default)."""
    kind = _kind(u)
    if _SIM or kind not in ("cupy", "torch"):
        return 0
    if kind == "cupy":  # pragma: no cover - needs a GPU and CuPy
        import cupy

        ptr = cupy.cuda.get_current_stream().ptr
    else:  # pragma: no cover - needs a GPU and PyTorch
        import torch

        ptr = torch.cuda.current_stream(u.device).cuda_stream
    return cuda.external_stream(ptr) if ptr else 0  # pragma: no cover


# --------------------------------------------------------------------------- entry point
def run(u, beta, want_grad: bool, out, kwargs: dict):
    """The GPU path of :func:`tvnumba.tv._run`: ``(value, grad or None)``.

    ``value`` is reduced as :func:`tvnumba.tv.finish_value` does; ``grad`` is
    of ``u``'s kind (NumPy for host input, the device array kind otherwise).
    """
    _require_cuda()
    if is_device_array(u):
        return _run_device(u, beta, want_grad, out, kwargs)
    return _run_host(u, beta, want_grad, out, kwargs)


def _run_host(u, beta, want_grad, out, kwargs):
    """NumPy (or array-like) input with ``device="cuda"``: there and back."""
    u = np.asarray(u)
    plan = V.make_plan(u, beta, **kwargs)
    out = V.check_out(out, plan.shape, plan.dtype) if want_grad else None
    if out is not None and not out.flags.writeable:
        raise ValueError("out must be writeable")
    if len(plan.spatial_shape) > V.KERNEL_NDIM:
        return _run_generic(u, beta, want_grad, out, kwargs)
    uk = V.as_kernel_input(u, plan.dtype)
    u5 = _to_device(np.ascontiguousarray(V.to_canonical(uk, plan)))
    g5 = _device_empty(plan.canonical_shape, plan.dtype) if want_grad else None
    value = finish_value(_compute(u5, g5, plan), plan)
    if not want_grad:
        return value, None
    back = g5.copy_to_host()
    if out is None and plan.perm == tuple(range(len(plan.shape))):
        return value, back.reshape(plan.shape)
    grad = out if out is not None else np.empty(plan.shape, plan.dtype)
    grad.transpose(plan.perm)[...] = back.reshape([plan.shape[a] for a in plan.perm])
    return value, grad


def _run_device(u, beta, want_grad, out, kwargs):
    """Device input: device output of the same kind, no host round trip."""
    ud = _as_numba(u)
    plan = V.make_plan(ud, beta, **kwargs)
    outd = None
    if want_grad and out is not None:
        if not is_device_array(out):
            raise TypeError(
                f"out must be a device array for device input u, got {type(out).__name__}")
        outd = _as_numba(out)
        V.check_out(outd, plan.shape, plan.dtype, xp=None)
        cai = getattr(out, "__cuda_array_interface__", None)
        if cai is not None and cai["data"][1]:  # pragma: no cover - read-only device memory
            raise ValueError("out must be writeable")
    if not ud.dtype.isnative:
        raise TypeError(f"device arrays must be in native byte order, got dtype {ud.dtype}")
    if len(plan.spatial_shape) > V.KERNEL_NDIM:
        return _run_generic(u, beta, want_grad, out, kwargs)
    stream = _stream_of(u)
    tshape = [plan.shape[a] for a in plan.perm]

    u5 = _canonical(ud, plan) if ud.dtype == plan.dtype else None
    if u5 is None:  # cast (float16, ints, bool) and/or gather into canonical order
        u5 = _device_empty(plan.canonical_shape, plan.dtype, stream)
        _copy(_transposed(ud, plan), u5.reshape(tshape), stream)

    grad = g5 = gd = None
    scatter = False
    if want_grad:
        if out is None:
            grad, gd = _empty_like_kind(u, plan.shape, plan.dtype, stream)
        else:
            grad, gd = out, outd
        g5 = _canonical(gd, plan)
        scatter = g5 is None
        if scatter:  # the memory order of the gradient forbids a view
            g5 = _device_empty(plan.canonical_shape, plan.dtype, stream)
    value = finish_value(_compute(u5, g5, plan, stream), plan)
    if scatter:
        _copy(g5.reshape(tshape), _transposed(gd, plan), stream)
    return value, grad


def _cupy_for_generic():
    """CuPy, which the path for more than three spatial axes runs on."""
    try:
        import cupy
    except ImportError:
        raise NotImplementedError(
            "more than 3 spatial axes on the GPU need CuPy (pip install cupy-cuda12x, "
            "or the `cuda` extra); or pass device='cpu'"
        ) from None
    return cupy  # pragma: no cover - needs a GPU and CuPy


def _run_generic(u, beta, want_grad, out, kwargs):
    """More than three spatial axes: the vectorised path, on CuPy arrays."""
    cupy = _cupy_for_generic()
    return _run_generic_cupy(cupy, u, beta, want_grad, out, kwargs)


def _run_generic_cupy(cupy, u, beta, want_grad, out, kwargs):  # pragma: no cover - needs CuPy
    from ._generic import tv_nd

    host = not is_device_array(u)
    x = cupy.asarray(u)
    plan = V.make_plan(x, beta, **kwargs)
    xk = V.as_kernel_input(x, plan.dtype)
    V.check_finite(xk)
    target = None
    if want_grad and out is not None and not host:
        target = cupy.asarray(out)  # zero-copy view of the caller's device array
    values, grad = tv_nd(xk, plan, want_grad, target)
    value = finish_value(cupy.asnumpy(values), plan)
    if not want_grad:
        return value, None
    if host:
        g = cupy.asnumpy(grad)
        if out is None:
            return value, g
        out[...] = g
        return value, out
    if out is not None:
        return value, out
    kind = _kind(u)
    if kind == "cupy":
        return value, grad
    if kind == "torch":
        import torch

        return value, torch.as_tensor(grad, device=u.device)
    return value, cuda.as_cuda_array(grad)
