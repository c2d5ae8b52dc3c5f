"""The interface every backend implements, and the parts they share.

A backend is chosen once per public call (:func:`tvnumba.backends.select`)
and then does all the array work of that call: it brings the input into its
own memory, evaluates the β-TV value and gradient on a validated
:class:`~tvnumba._validate.Plan`, provides the solvers' iterate objects and
vector operations, and hands the result back in the caller's kind of array.
Solvers and public functions never look at the kind of an array themselves.
"""

from __future__ import annotations

import numpy as np

from .._validate import Plan


class Backend:
    """One place where arrays live and are computed on.

    Attributes
    ----------
    name : str
        ``"cpu"`` (Numba CPU kernels), ``"cuda"`` (Numba CUDA kernels) or
        ``"array"`` (whole-array NumPy/CuPy operations).
    xp : module
        The array module of this backend's arrays (NumPy or CuPy), for the
        whole-array work of solvers and data terms.
    ops : object
        The solvers' vector operations on flat arrays (see
        :class:`tvnumba.backends.array.ArrayOps` for the interface).
    host : bool
        Results are NumPy arrays.
    """

    name = "base"
    xp = np
    host = True

    # --- arrays -------------------------------------------------------------------
    def for_plan(self, plan: Plan) -> "Backend":
        """The backend that serves ``plan`` (this one, or the whole-array one
        for more spatial axes than the kernels are compiled for)."""
        return self

    def bring(self, u):
        """``u`` in this backend's memory (no dtype change, no copy when it is there)."""
        return u

    def result(self, a):
        """A computed array, returned in the kind of array the caller passed."""
        return a

    def to_host(self, a):
        """A NumPy array with ``a``'s values (no copy when it already is one)."""
        return a

    def wrap(self, a):
        """An array of :attr:`xp` viewing ``a`` (a kernel's own device array)."""
        return a

    def as_compute(self, a, dtype: np.dtype):
        """``a`` as ``dtype`` in native byte order, copying only when needed."""
        if a.dtype == dtype and a.dtype.isnative:
            return a
        return a.astype(dtype.newbyteorder("="))

    def as_float_image(self, image, dtype: np.dtype):
        """scikit-image's conversion of an image for restoration: integers and
        bools through ``img_as_float``; floats to ``dtype``."""
        if np.dtype(image.dtype).kind != "f":
            from skimage.util import img_as_float

            return img_as_float(image)
        return self.as_compute(image, dtype)

    def all_finite(self, a) -> bool:
        return bool(self.xp.isfinite(a).all())

    def check_finite(self, a, name: str = "u") -> None:
        if a.dtype.kind == "f" and not self.all_finite(a):
            raise ValueError(
                f"{name} contains NaN or Inf values; TV is only defined for finite input")

    def check_out(self, out, plan: Plan):
        """``out`` checked for the gradient of ``plan``: shape, dtype, kind, writeable."""
        from .._validate import check_out

        out = check_out(out, plan)
        if out is None:
            return None
        if self.host and not isinstance(out, np.ndarray):
            raise TypeError(f"out must be a NumPy array for NumPy input, got {type(out).__name__}")
        if isinstance(out, np.ndarray) and not out.flags.writeable:
            raise ValueError("out must be writeable, got a read-only array")
        return out

    def float_input(self, a, name: str, ndim: int, *, scale_ints: bool):
        """``a`` checked as a finite, non-empty real array of ``ndim`` axes (errors name
        ``name``), as float: integers through ``img_as_float`` when ``scale_ints``, else
        unscaled.  Host input stays on the host (the backend's operations move it)."""
        return host_float_array(a, name, ndim, scale_ints)

    def canonical(self, a, plan: Plan):
        """``a`` in the canonical layout, C-contiguous (a view when it already is)."""
        return self.xp.ascontiguousarray(plan.to_canonical(a))

    # --- TV -----------------------------------------------------------------------
    def tv5(self, u5, g5, plan: Plan):
        """Per-batch float64 sums (a NumPy array) of β-TV on the canonical array
        ``u5``; writes ``plan.scale() · ∇TV`` into ``g5`` unless it is None."""
        raise NotImplementedError

    def tv(self, u, plan: Plan, want_grad: bool, out=None, **kernel_kw):
        """``(per-batch sums, gradient or None)`` of the caller's array ``u``
        (validated by ``plan``); the gradient is of the caller's kind, written
        into ``out`` when given (checked by :meth:`check_out`).  ``kernel_kw``
        goes to :meth:`tv5`.

        The kernels take C-contiguous canonical arrays: a view where the memory
        order allows, else one copy.  The gradient keeps ``u``'s memory order
        (like ``np.empty_like``), so that its canonical view is contiguous
        whenever ``u``'s is.
        """
        xp = self.xp
        x = self.as_compute(self.bring(u), plan.dtype)
        self.check_finite(x)
        u5 = self.canonical(x, plan)
        if not want_grad:
            return self.tv5(u5, None, plan, **kernel_kw), None
        # An ``out`` that overlaps the input (``tv_grad(u, out=u)``) would be
        # written while the kernel still reads u: compute aside, then copy.
        mine = out is not None and self.owns(out) and not xp.may_share_memory(out, x)
        grad = out if mine else xp.empty_like(x, dtype=plan.dtype)
        g5 = plan.to_canonical(grad, writable=True)
        scatter = g5 is None or not g5.flags.c_contiguous
        if scatter:
            g5 = xp.empty(plan.canonical_shape, plan.dtype)
        values = self.tv5(u5, g5, plan, **kernel_kw)
        if scatter:
            plan.scatter(g5, grad)
        if out is not None and not mine:
            self.copy_into(out, grad)
            return values, out
        return values, self.result(grad)

    def owns(self, a) -> bool:
        """``a`` lives in this backend's memory as an array of ``xp``."""
        return isinstance(a, np.ndarray) if self.xp is np else not isinstance(a, np.ndarray)

    def copy_into(self, out, a) -> None:
        """``out[...] = a`` across kinds of arrays."""
        out[...] = a

    # --- solvers ------------------------------------------------------------------
    def cp_state(self, f5, weight: float, plan: Plan, *, identity: bool):
        """The primal-dual iterates of β = 1 TV on the canonical ``f5``."""
        raise NotImplementedError

    def mm_state(self, f5, weight: float, beta: float, smoothing: float, plan: Plan, *,
                 c0: float):
        """The majorize-minimize operators of β-TV on the canonical ``f5``."""
        raise NotImplementedError

    def radon(self, geom, a, *, adjoint: bool = False):
        """The parallel-beam projection of the image ``a`` on ``geom``
        (:class:`tvnumba.operators.RadonGeometry`), or with ``adjoint`` the back
        projection of the sinogram ``a``; ``a`` validated float, the result of its kind."""
        raise NotImplementedError

    def tv_ops(self, plan: Plan, dtype):
        """``D``, ``Dᵀ``, the dual ball and ``TV₁`` as whole-array operations
        (:class:`tvnumba.backends.array.TVOps`) on this backend's arrays."""
        raise NotImplementedError

    @property
    def ndimage(self):
        """``scipy.ndimage`` or its twin for this backend's arrays."""
        from scipy import ndimage

        return ndimage

    @property
    def fft(self):
        """``scipy.fft`` or its twin for this backend's arrays (on the host: with as many
        workers as the calling thread's Numba threads)."""
        return _HostFFT()

    def sumsq(self, a) -> float:
        """Σ a² accumulated in float64."""
        flat = self.xp.ascontiguousarray(a).reshape(-1)
        return self.ops.dot(flat, flat)


def host_float_array(a, name: str, ndim: int, scale_ints: bool):
    """:meth:`Backend.float_input` for NumPy (and array-like) input."""
    from .._validate import float_dtype

    if not hasattr(a, "shape") or not hasattr(a, "dtype"):
        a = np.asarray(a)
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(f"{name} is a numpy.ma.MaskedArray; pass {name}.filled(value)")
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, got {type(a).__name__}")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {name}.ndim={a.ndim} "
                         f"({name}.shape={a.shape})")
    if min(a.shape) < 1:
        raise ValueError(f"{name} must be non-empty, got {name}.shape={a.shape}")
    dtype = float_dtype(a.dtype, name)
    if a.dtype.kind != "f" and scale_ints:
        from skimage.util import img_as_float

        a = img_as_float(a)
    else:
        a = a.astype(dtype.newbyteorder("="), copy=False)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or Inf values")
    return a


#: Transforms of fewer points than this run on one worker: pocketfft's threads cost
#: more than they save below it (an rfft/irfft pair of 270², float64: 0.79 ms on one
#: worker, 0.95 ms on two; of 540², float32: 1.53 ms on one, 1.08 ms on two).
SERIAL_FFT_POINTS = 1 << 17


class _HostFFT:
    """``scipy.fft`` whose transforms use the calling thread's Numba thread count as
    ``workers`` (pocketfft is single-threaded by default; this keeps one thread budget),
    one worker for transforms smaller than :data:`SERIAL_FFT_POINTS`."""

    def __getattr__(self, name):
        import math

        from scipy import fft

        from .._threads import get_num_threads

        fn = getattr(fft, name)
        if not name.startswith(("rfft", "irfft", "fft", "ifft", "dct", "idct", "dst", "idst")):
            return fn

        def transform(x, *args, **kwargs):
            s = kwargs.get("s")  # the batch axes count too: they are split across workers
            points = max(x.size, math.prod(s) if s is not None else 0)
            workers = get_num_threads() if points >= SERIAL_FFT_POINTS else 1
            return fn(x, *args, workers=workers, **kwargs)

        return transform
