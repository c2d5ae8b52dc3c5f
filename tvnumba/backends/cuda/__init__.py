"""The CUDA backend: Numba ``@cuda.jit`` kernels on device arrays.

Modules:

* :mod:`._launch` -- launch settings, the one grid-stride loop and block
  reduction, device-array views and copies;
* :mod:`.tv_kernels` -- the β-TV value and gradient (fused, one launch): a
  strip kernel for one channel in 2-D/3-D (a thread walks down a strip of
  rows), one thread per pixel otherwise;
* :mod:`.solver_kernels` -- the two fused launches of a β = 1 primal-dual
  iteration;
* :mod:`.radon_kernels` -- the parallel-beam Radon projector pair (the
  sampling arithmetic shared with the CPU kernels through
  :mod:`tvnumba.backends.radon_rays`).

How a case is specialised: each kernel module has one cached factory
(``make_kernel``/``make_strip_kernel``, ``make_cp_kernels``) that closes over the case's ints and
bools (``nd``, β mode, isotropy, gradient or not, threads per block); the
dead branches fold away at compile time, and each specialisation compiles
once per process (``cache=True`` on a real GPU).

Arrays: NumPy input with ``device="cuda"`` is copied to the device in
canonical order and the gradient copied back; device input (Numba, CuPy,
anything with ``__cuda_array_interface__``) gives device output of the same
kind, with the canonical layout a strided view whenever the memory order
allows and the per-batch value vector the only host transfer.  The solvers'
whole-array work (L-BFGS, majorize-minimize, primal-dual with a data term
other than the identity) runs in CuPy, which they need.
"""

from __future__ import annotations

import numpy as np

from ..._validate import KERNEL_NDIM, Plan
from ..base import Backend
from . import _launch as L


def _cupy(why: str):
    try:
        import cupy  # noqa: PLC0415 - optional dependency
    except ImportError as exc:
        raise RuntimeError(
            f"{why} needs CuPy; install the `cuda` extra: pip install 'tvnumba[cuda]'"
        ) from exc
    return cupy


_HOST = Backend()  # NumPy's whole-array checks, for host input


class CudaBackend(Backend):
    """Numba CUDA kernels; CuPy for the solvers' whole-array work."""

    name = "cuda"

    def __init__(self, *, host_input: bool, numba_input: bool, kind: str, solver: bool = False):
        if solver:  # the solvers' array work needs CuPy: say so before anything else
            _ = self.xp
        L.require_cuda()
        self.host = host_input
        self.numba_input = numba_input
        self.kind = kind

    @property
    def xp(self):
        return _cupy("denoise_tv_beta on the GPU (its solvers run in CuPy and the CUDA TV "
                     "kernels)")

    @property
    def fft(self):
        from cupyx.scipy import fft  # pragma: no cover - needs a GPU and CuPy

        return fft  # pragma: no cover

    @property
    def ndimage(self):
        from cupyx.scipy import ndimage  # pragma: no cover - needs a GPU and CuPy

        return ndimage  # pragma: no cover

    @property
    def ops(self):
        from ..array import ArrayOps

        return ArrayOps(self.xp)

    def for_plan(self, plan: Plan) -> Backend:
        if plan.n_spatial <= KERNEL_NDIM:
            return self
        try:
            import cupy  # noqa: PLC0415 - optional dependency
        except ImportError:
            raise NotImplementedError(
                "more than 3 spatial axes on the GPU need CuPy (pip install cupy-cuda12x, "
                "or the `cuda` extra); or pass device='cpu'") from None
        from ..array import ArrayBackend  # pragma: no cover - needs a GPU and CuPy

        return ArrayBackend(cupy, home=self)  # pragma: no cover

    # --- arrays (the solvers' CuPy view of the caller's array, and back) ------------
    def bring(self, u):
        return self.xp.asarray(u)

    def result(self, a):
        if self.host:
            return a.get()
        if self.numba_input:
            return L.cuda.as_cuda_array(a)
        return a

    def wrap(self, a):
        return self.xp.asarray(a)

    def to_host(self, a):
        if isinstance(a, np.ndarray):
            return a
        return self.xp.asnumpy(self.xp.asarray(a))

    def as_compute(self, a, dtype):
        return a if a.dtype == dtype else a.astype(dtype)

    def as_float_image(self, image, dtype):
        if self.host:
            return super().as_float_image(np.asarray(image), dtype)
        if np.dtype(image.dtype).kind != "f":
            raise TypeError("GPU images must be float32 or float64")
        return image if image.dtype == dtype else self.bring(image).astype(dtype)

    def check_finite(self, a, name="u"):
        """Host and CuPy arrays are checked here; the TV kernels flag NaN/Inf of
        any device array in the same pass (no CuPy needed for those)."""
        if isinstance(a, np.ndarray):
            return Backend.check_finite(_HOST, a, name)
        if a.dtype.kind == "f" and self.kind == "cupy" and not bool(self.xp.isfinite(a).all()):
            raise ValueError(
                f"{name} contains NaN or Inf values; TV is only defined for finite input")

    def copy_into(self, out, a):
        if isinstance(out, np.ndarray):
            out[...] = a.get()
        else:
            self.xp.asarray(out)[...] = a

    def check_out(self, out, plan):
        if out is None:
            return None
        if self.host:
            return super().check_out(out, plan)
        from .. import is_gpu_array

        if not is_gpu_array(out):
            raise TypeError(
                f"out must be a device array for device input u, got {type(out).__name__}")
        outd = L.as_numba(out)
        from ..._validate import check_out

        check_out(outd, plan)
        cai = getattr(out, "__cuda_array_interface__", None)
        if cai is not None and cai["data"][1]:  # pragma: no cover - read-only device memory
            raise ValueError("out must be writeable")
        return out

    # --- TV -----------------------------------------------------------------------
    def tv5(self, u5, g5, plan):
        from .tv_kernels import compute

        return compute(u5, g5, plan, L.stream_of(u5))

    def tv(self, u, plan, want_grad, out=None):
        """The TV of host input (there and back) or device input (device
        output of the same kind, no host round trip); NaN/Inf are flagged
        inside the kernel."""
        from .tv_kernels import compute

        if self.host:
            x = np.asarray(u)
            x = x if x.dtype == plan.dtype and x.dtype.isnative else x.astype(
                plan.dtype.newbyteorder("="))
            u5 = L.to_device(np.ascontiguousarray(plan.to_canonical(x)))
            g5 = L.device_empty(plan.canonical_shape, plan.dtype) if want_grad else None
            values = compute(u5, g5, plan)
            if not want_grad:
                return values, None
            back = g5.copy_to_host()
            if out is None and plan.perm == tuple(range(len(plan.shape))):
                return values, back.reshape(plan.shape)
            grad = out if out is not None else np.empty(plan.shape, plan.dtype)
            plan.scatter(back, grad)
            return values, grad

        ud = L.as_numba(u)
        if not ud.dtype.isnative:
            raise TypeError(f"device arrays must be in native byte order, got dtype {ud.dtype}")
        stream = L.stream_of(u)
        tshape = [plan.shape[a] for a in plan.perm]
        u5 = L.canonical(ud, plan) if ud.dtype == plan.dtype else None
        if u5 is None:  # cast (float16, ints, bool) and/or gather into canonical order
            u5 = L.device_empty(plan.canonical_shape, plan.dtype, stream)
            L.copy(L.transposed(ud, plan), u5.reshape(tshape), stream)
        grad = g5 = gd = None
        scatter = False
        if want_grad:
            if out is None:
                grad, gd = L.empty_like_kind(u, plan.shape, plan.dtype, stream)
            else:
                grad, gd = out, L.as_numba(out)
            # Written aside when the memory order forbids a view, or when out
            # overlaps u (the kernel still reads u while it writes).
            g5 = None if L.may_overlap(gd, ud) else L.canonical(gd, plan)
            scatter = g5 is None
            if scatter:
                g5 = L.device_empty(plan.canonical_shape, plan.dtype, stream)
        values = compute(u5, g5, plan, stream)
        if scatter:
            L.copy(g5.reshape(tshape), L.transposed(gd, plan), stream)
        return values, grad

    # --- the Radon projector pair ----------------------------------------------------
    def float_input(self, a, name, ndim, *, scale_ints):
        """Host input as :meth:`Backend.float_input`; a device array checked where it
        lives, without conversion (float32 or float64 only, as the other GPU paths)."""
        if self.host:
            return super().float_input(a, name, ndim, scale_ints=scale_ints)
        from . import radon_kernels as K

        d = L.as_numba(a)  # shape and dtype of any __cuda_array_interface__ array
        if d.ndim != ndim:
            raise ValueError(f"{name} must be {ndim}-D, got {name}.ndim={d.ndim} "
                             f"({name}.shape={tuple(d.shape)})")
        if min(d.shape) < 1:
            raise ValueError(f"{name} must be non-empty, got {name}.shape={tuple(d.shape)}")
        dtype = np.dtype(d.dtype)
        if dtype not in (np.float32, np.float64) or not dtype.isnative:
            raise TypeError(f"a GPU {name} must be float32 or float64 (native byte order), "
                            f"got {name}.dtype={dtype}; convert it on the device first")
        if K.count_nonfinite(d, L.stream_of(a)):
            raise ValueError(f"{name} contains NaN or Inf values")
        return a

    def radon(self, geom, a, *, adjoint=False):
        """Host arrays go to the device and back; device arrays stay (CuPy is not needed)."""
        if isinstance(a, np.ndarray):
            d = L.to_device(np.ascontiguousarray(a))
            return L.to_host(self._radon_device(geom, d, adjoint))
        return self._radon_device(geom, a, adjoint)

    def _radon_device(self, geom, a, adjoint):
        from . import radon_kernels as K

        stream = L.stream_of(a)
        d = L.as_numba(a)
        # The angles' cosines and sines, uploaded once per device and geometry (a
        # solve projects thousands of times).
        key = ("radon_trig", getattr(L.cuda.get_current_device(), "id", 0))
        if key not in geom.cache:
            geom.cache[key] = tuple(L.to_device(np.ascontiguousarray(t)) for t in geom.trig())
        trig = geom.cache[key]
        (o0, o1), P = geom.offset, geom.size
        if not adjoint:
            # circle=True: the square is a view of the image (the kernel takes any
            # strides); circle=False: a zero-padded copy, ~1/n_angles of the work.
            sq = d[o0:o0 + P, o1:o1 + P] if geom.circle else K.pad(d, P, geom.offset, stream)
            out, outd = L.empty_like_kind(a, geom.sinogram_shape, d.dtype, stream)
            K.forward(sq, *trig, outd, stream)
            return out
        # image pixel (r, s) is square pixel (r + d0, s + d1): the kernel writes the
        # cropped (circle=False) or embedded (circle=True) back projection.
        shift = (-o0, -o1) if geom.circle else (o0, o1)
        out, outd = L.empty_like_kind(a, geom.shape, d.dtype, stream)
        K.adjoint(d, *trig, P, shift, outd, stream)
        return out

    # --- solvers ------------------------------------------------------------------
    def tv_ops(self, plan, dtype):
        from ..array import TVOps

        return TVOps(self.xp, plan, dtype)

    def cp_state(self, f5, weight, plan, *, identity):
        if identity:
            from .solver_kernels import CPCuda

            return CPCuda(f5, weight, plan)
        from ..array import CPArray

        return CPArray(self.xp, f5, weight, plan, identity=False)

    def mm_state(self, f5, weight, beta, smoothing, plan, *, c0):
        from ..array import MMArray

        return MMArray(self.xp, f5, weight, beta, smoothing, plan, c0=c0)

    def sumsq(self, a) -> float:
        xp = self.xp
        flat = a.reshape(-1).astype(xp.float64)
        return float(xp.dot(flat, flat))
