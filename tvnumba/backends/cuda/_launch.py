"""What every CUDA kernel of tvnumba shares: launch settings, the grid-stride
loop and block reduction, and the device-array plumbing.

Imported only on the GPU path: ``import tvnumba`` never imports ``numba.cuda``.

* Launch settings (threads per block, grid size) and the ``cuda.jit`` options
  come from :mod:`tvnumba._config`, read at every launch.
* :func:`grid_stride`, :func:`pixel` and :func:`advance` are the one
  grid-stride loop over the ``(z, y, x)`` pixels of a canonical array (x
  fastest, so a warp reads and writes consecutive addresses; the pixel index
  is carried incrementally, with no 64-bit division inside the loop);
  :func:`block_add` the one block reduction (float64 in shared memory, one
  ``cuda.atomic.add`` per block).  ``blockIdx.y`` strides over the batch.
* Device arrays: Numba device arrays, CuPy arrays and anything else with
  ``__cuda_array_interface__`` are viewed without copies (:func:`view`,
  :func:`flat`), gathered by a small strided-copy kernel when a view cannot
  express a layout (:func:`copy`), and allocated in the caller's kind.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache

import numpy as np

import numba

from ... import _config
from ..._validate import Plan
from .. import array_kind, is_numba_array


def _import_cuda():
    """``(numba.cuda, None)``, or ``(None, the import error)``.

    numba-cuda up to 0.30.4 registers an overload of ``np.row_stack`` (an alias of
    ``np.vstack`` that NumPy 2.5 removed) in ``numba.cuda.np.arrayobj``, which its CUDA
    target imports at the first compilation.  Where NumPy lacks the alias it is lent for
    these two imports only.
    """
    lent = not hasattr(np, "row_stack")
    if lent:
        np.row_stack = np.vstack
    try:
        from numba import cuda as target
    except ImportError as exc:  # pragma: no cover - numba without a CUDA target
        return None, exc
    else:
        try:
            import numba.cuda.np.arrayobj  # noqa: F401
        except ImportError:  # the simulator has no CUDA target to register with
            pass
        return target, None
    finally:
        if lent:
            del np.row_stack


cuda, _IMPORT_ERROR = _import_cuda()

#: ``gridDim.y`` limit of CUDA (the batch axis strides beyond it).
_MAX_GRID_Y = 65535
#: Dimensions of the strided copy kernel (arrays with more dims need CuPy).
_COPY_NDIM = 8

_SIM = bool(cuda is not None and getattr(numba.config, "ENABLE_CUDASIM", 0))

#: ``cuda.jit`` options of kernels and of device functions.
KERNEL_JIT, DEVICE_JIT = _config.cuda_jit_options(_SIM)

_NO_GPU_MESSAGE = (
    "no CUDA GPU is available (numba.cuda.is_available() is False: no NVIDIA "
    "driver or device was found). Run on a machine with an NVIDIA GPU and "
    "driver and install the `cuda` extra (pip install 'tvnumba[cuda]': "
    "numba-cuda and cupy-cuda12x), set NUMBA_ENABLE_CUDASIM=1 to use Numba's "
    "(slow) CUDA simulator, or pass device='cpu'"
)


def available() -> bool:
    return bool(cuda.is_available())


def require_cuda() -> None:
    if cuda is None:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "the GPU path needs Numba's CUDA target, which failed to import "
            f"({_IMPORT_ERROR!r}); install the `cuda` extra: "
            "pip install 'tvnumba[cuda]' (numba-cuda, cupy-cuda12x)"
        )
    if not available():
        raise RuntimeError(_NO_GPU_MESSAGE)


# --------------------------------------------------------------------------- device helpers
if cuda is not None:

    @cuda.jit(**DEVICE_JIT)
    def pixel(t, H, W):
        """``(k, i, j)`` of the flat pixel index ``t`` (x fastest)."""
        return t // (W * H), (t // W) % H, t % W

    @cuda.jit(**DEVICE_JIT)
    def grid_stride(tpb, H, W):
        """This thread's first flat pixel index and the grid's stride as a
        ``(z, y, x)`` step: ``(start, sk, si, sj)``."""
        start = np.int64(cuda.blockIdx.x) * tpb + cuda.threadIdx.x
        step = np.int64(cuda.gridDim.x) * tpb
        return start, step // (W * H), (step // W) % H, step % W

    @cuda.jit(**DEVICE_JIT)
    def advance(k, i, j, sk, si, sj, H, W):
        """The pixel one grid stride after ``(k, i, j)``, carried without division."""
        j += sj
        i += si
        k += sk
        if j >= W:
            j -= W
            i += 1
        if i >= H:
            i -= H
            k += 1
        return k, i, j

    @cuda.jit(**DEVICE_JIT)
    def block_add(sh, tid, tpb, acc, values, b):
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


if cuda is not None:

    @cuda.jit(**DEVICE_JIT)
    def _split4(r, na, nb, nc, nd):
        """The last four indices of the flat index ``r`` (C order), and the rest."""
        i_d = r % nd
        r //= nd
        i_c = r % nc
        r //= nc
        i_b = r % nb
        r //= nb
        return r // na, r % na, i_b, i_c, i_d


@lru_cache(maxsize=None)
def _copy_kernel():
    """``dst[...] = src[...]`` for 8-D arrays of any strides and dtypes (the
    assignment casts); the fallback for layouts a view cannot express."""

    @cuda.jit(**KERNEL_JIT)
    def copy8(src, dst):
        n0, n1, n2, n3, n4, n5, n6, n7 = dst.shape
        total = n0 * n1 * n2 * n3 * n4 * n5 * n6 * n7
        idx = np.int64(cuda.blockIdx.x) * cuda.blockDim.x + cuda.threadIdx.x
        step = np.int64(cuda.gridDim.x) * cuda.blockDim.x
        while idx < total:
            r, i4, i5, i6, i7 = _split4(idx, n4, n5, n6, n7)
            _, i0, i1, i2, i3 = _split4(r, n0, n1, n2, n3)
            dst[i0, i1, i2, i3, i4, i5, i6, i7] = src[i0, i1, i2, i3, i4, i5, i6, i7]
            idx += step

    return copy8


# --------------------------------------------------------------------------- launches
def threads_per_block() -> int:
    tpb = int(_config.THREADS_PER_BLOCK)
    if tpb < 1 or tpb > 1024 or tpb & (tpb - 1):
        raise ValueError(f"THREADS_PER_BLOCK must be a power of two <= 1024, got {tpb}")
    return tpb


@lru_cache(maxsize=None)
def resident_blocks(tpb: int) -> int:
    """Blocks of ``tpb`` threads the device runs at once (an estimate)."""
    dev = cuda.get_current_device()
    sms = getattr(dev, "MULTIPROCESSOR_COUNT", 16)  # the simulator has no attributes
    per_sm = getattr(dev, "MAX_THREADS_PER_MULTI_PROCESSOR", 2048) // tpb
    return max(1, sms * max(1, per_sm))


def max_blocks(tpb: int) -> int:
    if _config.MAX_BLOCKS is not None:
        return max(1, int(_config.MAX_BLOCKS))
    return _config.WAVES * resident_blocks(tpb)


def grid(n_batch: int, n_pixels: int, tpb: int) -> tuple[int, int]:
    """``(blocks over the pixels, blocks over the batch)``."""
    cap = max_blocks(tpb)
    by = max(1, min(n_batch, _MAX_GRID_Y, cap))
    bx = max(1, min(-(-n_pixels // tpb), cap // by))
    return bx, by


def launch(kernel, grid, tpb, stream, *args):
    with warnings.catch_warnings():
        # Small grids are expected for small inputs; not worth a warning.  (Matched by
        # message: numba-cuda's NumbaPerformanceWarning is not numba's class.)
        warnings.filterwarnings("ignore", message=r".*Grid size \d+ will likely result in GPU")
        kernel[grid, tpb, stream](*args)


def flat(a):
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
    flat = view(a, (hi - lo + 1,), (item,), offset=lo * item)
    return flat, (-lo,) + es


def copy(src, dst, stream=0):
    """``dst[...] = src[...]`` on the device (same shape, any strides/dtypes)."""
    nd = len(dst.shape)
    if nd > _COPY_NDIM:
        raise NotImplementedError(
            f"arrays with more than {_COPY_NDIM} dimensions in a layout that needs a "
            "device copy are not supported; pass a C-contiguous array"
        )
    pad = _COPY_NDIM - nd
    src = view(src, (1,) * pad + tuple(src.shape), (0,) * pad + tuple(src.strides))
    dst = view(dst, (1,) * pad + tuple(dst.shape), (0,) * pad + tuple(dst.strides))
    tpb = threads_per_block()
    n = math.prod(dst.shape)
    bx = max(1, min(-(-n // tpb), max_blocks(tpb)))
    launch(_copy_kernel(), bx, tpb, stream, src, dst)


# --------------------------------------------------------------------------- device arrays
def as_numba(a):
    """A Numba device array viewing ``a`` (no copy)."""
    if is_numba_array(a):
        return a
    if _SIM:
        raise TypeError(
            "the CUDA simulator only takes its own device arrays (numba.cuda.to_device); "
            f"got {type(a).__name__}"
        )
    return cuda.as_cuda_array(a)  # pragma: no cover - needs a GPU


def view(a, shape, strides, offset=0):
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


def may_overlap(a, b) -> bool:
    """The memory extents of two device arrays intersect."""
    if _SIM:
        return bool(np.may_share_memory(a._ary, b._ary))

    def extent(x):  # pragma: no cover - needs a GPU
        ptr = x.__cuda_array_interface__["data"][0]
        lo = sum((n - 1) * s for n, s in zip(x.shape, x.strides) if s < 0)
        hi = sum((n - 1) * s for n, s in zip(x.shape, x.strides) if s > 0)
        return ptr + lo, ptr + hi + x.dtype.itemsize

    (a0, a1), (b0, b1) = extent(a), extent(b)  # pragma: no cover
    return a0 < b1 and b0 < a1  # pragma: no cover


def transposed(a, plan: Plan):
    """``a.transpose(plan.perm)`` as a device view."""
    return view(a, [a.shape[p] for p in plan.perm], [a.strides[p] for p in plan.perm])


def canonical(a, plan: Plan):
    """``a`` in the kernels' ``(B, C, n0, n1, n2)`` layout as a view, or None
    when the memory order needs a copy (non-mergeable batch axes)."""
    strides = plan.canonical_strides(a.shape, a.strides)
    return None if strides is None else view(a, plan.canonical_shape, strides)


def device_empty(shape, dtype, stream=0):
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return cuda.device_array(shape, dtype=dtype, stream=stream)


def to_device(a, stream=0):
    return cuda.to_device(a, stream=stream)


def zeros(shape, dtype, stream=0):
    """A zeroed device array, set on the device: ``to_device`` of a host zero array
    copies the zeros over the bus (a 2-element per-batch sum vector took 110 µs on an
    H200, against ~25 µs for the allocation; a 128 MiB CP dual, milliseconds)."""
    a = device_empty(shape, dtype, stream)
    set_zero(a, stream)
    return a


def set_zero(a, stream=0):
    """Zero a C-contiguous device array in place (a memset on ``stream``)."""
    if _SIM:
        a.copy_to_device(np.zeros(a.shape, a.dtype), stream=stream)
        return
    from numba.cuda.cudadrv import driver  # pragma: no cover - needs a GPU

    driver.device_memset(a, 0, a.size * a.dtype.itemsize, stream)  # pragma: no cover


def to_host(d, stream=0):
    host = d.copy_to_host(stream=stream)
    if stream != 0:  # pragma: no cover - needs a GPU and a non-default stream
        stream.synchronize()
    return host


def empty_like_kind(u, shape, dtype, stream=0):
    """``(array of u's kind, Numba view of it)``: a new C-ordered gradient."""
    kind = array_kind(u)
    if kind == "cupy":  # pragma: no cover - needs a GPU and CuPy
        import cupy

        arr = cupy.empty(shape, dtype)
        return arr, as_numba(arr)
    if kind == "torch":  # pragma: no cover - needs a GPU and PyTorch
        import torch

        arr = torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=u.device)
        return arr, as_numba(arr)
    arr = device_empty(shape, dtype, stream)
    return arr, arr


def stream_of(u):
    """The stream the producer of ``u`` works on (0: Numba's default)."""
    kind = array_kind(u)
    if _SIM or kind not in ("cupy", "torch"):
        return 0
    if kind == "cupy":  # pragma: no cover - needs a GPU and CuPy
        import cupy

        ptr = cupy.cuda.get_current_stream().ptr
    else:  # pragma: no cover - needs a GPU and PyTorch
        import torch

        ptr = torch.cuda.current_stream(u.device).cuda_stream
    return cuda.external_stream(ptr) if ptr else 0  # pragma: no cover


