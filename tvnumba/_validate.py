"""Input checks, dtype rules and axis roles for every public entry point.

All validation lives here so that the kernels (CPU and CUDA) can assume clean
inputs: a float32/float64 array in native byte order, moved into the canonical
``(batch, channel, n0, n1, n2)`` layout by :func:`to_canonical`.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass
from numbers import Real

import numpy as np

REDUCTIONS = ("sum", "mean", "none")
DEVICES = (None, "cpu", "cuda")

#: Spatial dimensions handled by the specialised kernels; more use a generic path.
KERNEL_NDIM = 3


def _describe(value) -> str:
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."


def check_positive(name: str, value) -> float:
    """A finite real number > 0, as a float; the error names the argument."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number > 0, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {name}={value!r}")
    return value


def check_beta(beta) -> float:
    return check_positive("beta", beta)


def check_nonneg(name: str, value) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number >= 0, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {name}={value!r}")
    return value


def check_reduction(reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"reduction must be one of {REDUCTIONS}, got reduction={_describe(reduction)}"
        )
    return reduction


def check_device(device) -> str | None:
    if device not in DEVICES:
        raise ValueError(
            f"device must be None, 'cpu' or 'cuda', got device={_describe(device)}"
        )
    return device


def float_dtype(dtype, name: str = "u") -> np.dtype:
    """The float type a computation on ``dtype`` runs in (scikit-image's rule).

    float32 and float64 are kept, float16 becomes float32, integers and bool
    become float64; complex and object arrays are rejected.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise TypeError(
            f"{name} must be real: complex input is not supported (got {name}.dtype={dtype}); "
            "take the TV of the real and imaginary parts separately"
        )
    if dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got {name}.dtype={dtype}")
    if dtype.kind == "f" and dtype.itemsize <= 4:
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def normalize_axis(axis, ndim: int, name: str) -> int:
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {name}={_describe(axis)}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={axis} is out of range for an array with {ndim} dimension(s)"
        )
    return axis % ndim


def check_finite(u, name: str = "u") -> None:
    """Raise if ``u`` holds NaN or Inf (array-module agnostic: NumPy or CuPy)."""
    if u.dtype.kind == "f" and not bool(_xp(u).isfinite(u).all()):
        raise ValueError(f"{name} contains NaN or Inf values; TV is only defined for finite input")


def _xp(u):
    """The array module of ``u`` (CuPy for CuPy arrays, else NumPy)."""
    mod = type(u).__module__.split(".")[0]
    if mod == "cupy":
        import cupy

        return cupy
    return np


@dataclass(frozen=True)
class Plan:
    """Where every axis of ``u`` goes, and the parameters the kernels need.

    ``perm`` moves the batch axes first, then the channel axis, then the
    spatial axes ordered by decreasing stride, so the kernels' innermost loop
    runs over the most contiguous spatial axis.  Differences along different
    axes are independent, so any order of the spatial axes gives the same
    result once the spacings follow them.
    """

    shape: tuple[int, ...]
    perm: tuple[int, ...]
    batch_shape: tuple[int, ...]
    n_channels: int
    spatial_shape: tuple[int, ...]  # in kernel order
    inv_spacing: tuple[float, ...]  # 1/h, in kernel order
    beta: float
    smoothing: float
    isotropic: bool
    reduction: str
    dtype: np.dtype  # compute / gradient dtype

    @property
    def n_batch(self) -> int:
        return math.prod(self.batch_shape)

    @property
    def n_terms(self) -> int:
        """Divisor of ``reduction="mean"``: pixels times batch items."""
        return self.n_batch * math.prod(self.spatial_shape)

    @property
    def canonical_shape(self) -> tuple[int, ...]:
        """``(B, C, n0, ..., nk)`` with at least ``KERNEL_NDIM`` spatial axes."""
        pad = max(0, KERNEL_NDIM - len(self.spatial_shape))
        return (self.n_batch, self.n_channels) + (1,) * pad + self.spatial_shape

    @property
    def canonical_inv_spacing(self) -> tuple[float, ...]:
        pad = max(0, KERNEL_NDIM - len(self.spatial_shape))
        return (1.0,) * pad + self.inv_spacing

    def scale(self) -> float:
        """Factor applied to the summed value (and gradient) by the reduction."""
        return 1.0 / self.n_terms if self.reduction == "mean" else 1.0


def make_plan(
    u,
    beta,
    *,
    axes=None,
    channel_axis=None,
    spacing=1.0,
    isotropic=True,
    smoothing=0.0,
    reduction="sum",
) -> Plan:
    """Check every argument of the TV functions and work out the axis roles."""
    if not hasattr(u, "shape") or not hasattr(u, "dtype"):
        raise TypeError(f"u must be an array, got {type(u).__name__}")
    dtype = float_dtype(u.dtype)
    beta = check_beta(beta)
    smoothing = check_nonneg("smoothing", smoothing)
    reduction = check_reduction(reduction)
    if not isinstance(isotropic, (bool, np.bool_)):
        raise TypeError(f"isotropic must be True or False, got isotropic={_describe(isotropic)}")
    ndim = u.ndim
    if ndim == 0:
        raise ValueError("u must have at least one dimension, got a 0-d array")
    if u.size == 0:
        raise ValueError(f"u must not be empty, got an array of shape {tuple(u.shape)}")

    if channel_axis is not None:
        channel_axis = normalize_axis(channel_axis, ndim, "channel_axis")
    if axes is None:
        spatial = tuple(a for a in range(ndim) if a != channel_axis)
        if not spatial:
            raise ValueError(
                "u has no spatial axis: a 1-D array cannot also have a channel_axis "
                f"(got channel_axis={channel_axis})"
            )
    else:
        raw = (axes,) if np.ndim(axes) == 0 else tuple(axes)
        if not raw:
            raise ValueError("axes must name at least one spatial axis, got axes=()")
        spatial = tuple(normalize_axis(a, ndim, "axes") for a in raw)
        if len(set(spatial)) != len(spatial):
            raise ValueError(f"axes must not repeat an axis, got axes={_describe(axes)}")
        if channel_axis is not None and channel_axis in spatial:
            raise ValueError(
                f"axis {channel_axis} cannot be both spatial (axes={_describe(axes)}) and "
                f"the channel_axis; use channel_axis=None for grayscale data"
            )

    spacings = _check_spacing(spacing, len(spatial))
    batch = tuple(a for a in range(ndim) if a not in spatial and a != channel_axis)

    # Innermost = smallest |stride|; ties keep the user's order.
    strides = getattr(u, "strides", None) or (0,) * ndim
    order = sorted(range(len(spatial)), key=lambda i: -abs(strides[spatial[i]]))
    spatial_k = tuple(spatial[i] for i in order)
    inv_h = tuple(1.0 / spacings[i] for i in order)

    perm = batch + ((channel_axis,) if channel_axis is not None else ()) + spatial_k
    return Plan(
        shape=tuple(u.shape),
        perm=perm,
        batch_shape=tuple(u.shape[a] for a in batch),
        n_channels=u.shape[channel_axis] if channel_axis is not None else 1,
        spatial_shape=tuple(u.shape[a] for a in spatial_k),
        inv_spacing=inv_h,
        beta=beta,
        smoothing=smoothing,
        isotropic=bool(isotropic),
        reduction=reduction,
        dtype=dtype,
    )


def _check_spacing(spacing, n: int) -> tuple[float, ...]:
    values = np.atleast_1d(np.asarray(spacing, dtype=object))
    if values.ndim != 1:
        raise ValueError(f"spacing must be a scalar or a sequence, got spacing={_describe(spacing)}")
    if values.size == 1:
        values = np.repeat(values, n)
    if values.size != n:
        raise ValueError(
            f"spacing needs one value per spatial axis ({n}), got {values.size}: "
            f"spacing={_describe(spacing)}"
        )
    out = []
    for v in values:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, Real):
            raise TypeError(f"spacing must hold real numbers, got spacing={_describe(spacing)}")
        v = float(v)
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"spacing must be finite and > 0, got spacing={_describe(spacing)}")
        out.append(v)
    return tuple(out)


def as_kernel_input(u, dtype: np.dtype):
    """``u`` as ``dtype`` in native byte order, copying only when needed."""
    xp = _xp(u)
    if xp is np:
        u = np.asarray(u)
        if u.dtype == dtype and u.dtype.isnative:
            return u
        return u.astype(dtype.newbyteorder("="))
    return u if u.dtype == dtype else u.astype(dtype)


def to_canonical(a, plan: Plan, *, writable: bool = False):
    """View ``a`` (original layout) in the kernels' ``(B, C, n0, ...)`` layout.

    Returns a view whenever the memory order allows; otherwise a copy
    (``writable=True`` returns ``None`` instead, and the caller writes to a
    temporary and copies back).
    """
    t = a.transpose(plan.perm)
    shape = plan.canonical_shape
    try:
        return t.reshape(shape, copy=False) if _xp(a) is np else _reshape_view(t, shape)
    except (ValueError, AttributeError):
        if writable:
            return None
        return t.reshape(shape)


def _reshape_view(t, shape):
    v = t.reshape(shape)
    if not _shares_memory(v, t):
        raise ValueError("reshape copied")
    return v


def _shares_memory(a, b) -> bool:
    try:
        return a.data.ptr == b.data.ptr or a.base is b or a.base is b.base
    except AttributeError:  # pragma: no cover - unknown device array kind
        return False


def check_out(out, shape: tuple[int, ...], dtype: np.dtype, xp=np):
    """Validate an ``out=`` array for a gradient of ``shape`` and ``dtype``."""
    if out is None:
        return None
    if not hasattr(out, "shape") or not hasattr(out, "dtype"):
        raise TypeError(f"out must be an array, got {type(out).__name__}")
    if tuple(out.shape) != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got out.shape={tuple(out.shape)}")
    if np.dtype(out.dtype) != dtype:
        raise ValueError(f"out must have dtype {dtype}, got out.dtype={out.dtype}")
    if xp is np and not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array for NumPy input, got {type(out).__name__}")
    if isinstance(out, np.ndarray) and not out.flags.writeable:
        raise ValueError("out must be writeable, got a read-only array")
    return out
