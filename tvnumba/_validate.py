"""Input checks, dtype rules and axis roles for every public entry point.

All validation lives here so that the backends and solvers can assume clean
inputs.  :func:`make_plan` checks the arguments of a TV computation once and
returns a :class:`Plan`, which owns the only moves between the caller's
layout and the kernels' canonical ``(batch, channel, n0, n1, n2)`` layout
(:meth:`Plan.to_canonical`, :meth:`Plan.from_canonical`).  Nothing here asks
what kind of array it holds: the moves are transposes and reshapes, which
NumPy and CuPy arrays share, and whether they can be views is worked out from
shapes and strides alone.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, replace
from numbers import Real

import numpy as np

REDUCTIONS = ("sum", "mean", "none")
DEVICES = (None, "cpu", "cuda")

#: Spatial dimensions handled by the specialised kernels; more use a generic path.
KERNEL_NDIM = 3


def _numpy_max_ndim() -> int:
    try:
        np.empty((1,) * 64)
    except ValueError:  # NumPy 1.x
        return 32
    return 64


#: Most spatial axes: the computations add a batch and a channel axis, and NumPy
#: arrays have at most 64 (NumPy 1.x: 32) dimensions.
MAX_SPATIAL_NDIM = _numpy_max_ndim() - 2


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
    if isinstance(axis, (bool, np.bool_)):
        raise TypeError(f"{name} must be an integer (not a bool), got {name}={_describe(axis)}")
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {name}={_describe(axis)}") from None
    if not -ndim <= axis < ndim:
        raise ValueError(
            f"{name}={axis} is out of range for an array with {ndim} dimension(s)"
        )
    return axis % ndim


def check_array(u, name: str = "u") -> None:
    """Reject what an array conversion would silently misread (masked arrays)."""
    if isinstance(u, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a numpy.ma.MaskedArray: TV would ignore its mask. Fill the masked "
            f"values first ({name}.filled(value)), or pass np.asarray({name}) to drop the mask"
        )


@dataclass(frozen=True)
class Plan:
    """Where every axis of ``u`` goes, and the parameters the kernels need.

    ``perm`` moves the batch axes first, then the channel axis, then the
    spatial axes ordered by decreasing stride, so the kernels' innermost loop
    runs over the most contiguous spatial axis.  Differences along different
    axes are independent, so any order of the spatial axes gives the same
    result once the spacings follow them.

    The canonical layout is ``(B, C, n0, ..., nk)`` with at least
    :data:`KERNEL_NDIM` spatial axes (length-1 axes in front of 1-D and 2-D
    data: their differences vanish).
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
    def n_spatial(self) -> int:
        """Number of real spatial axes."""
        return len(self.spatial_shape)

    @property
    def n_terms(self) -> int:
        """Divisor of ``reduction="mean"``: pixels times batch items."""
        return self.n_batch * math.prod(self.spatial_shape)

    @property
    def canonical_shape(self) -> tuple[int, ...]:
        """``(B, C, n0, ..., nk)`` with at least ``KERNEL_NDIM`` spatial axes."""
        return (self.n_batch, self.n_channels) + (1,) * self._pad + self.spatial_shape

    @property
    def canonical_inv_spacing(self) -> tuple[float, ...]:
        """1/h of every spatial axis of the canonical layout (1 on the padding)."""
        return (1.0,) * self._pad + self.inv_spacing

    @property
    def canonical_spatial_axes(self) -> tuple[int, ...]:
        """Axes of the canonical layout that carry differences (padding included)."""
        return tuple(range(2, 2 + self._pad + self.n_spatial))

    @property
    def _pad(self) -> int:
        return max(0, KERNEL_NDIM - self.n_spatial)

    def scale(self) -> float:
        """Factor applied to the summed value (and gradient) by the reduction."""
        return 1.0 / self.n_terms if self.reduction == "mean" else 1.0

    def reduce(self, values):
        """Per-batch float64 sums (host) -> the reduced result."""
        if self.reduction == "none":
            return np.asarray(values, dtype=np.float64).reshape(self.batch_shape)
        return float(np.sum(values)) * self.scale()

    # --- the layout moves: the only place that knows the canonical order ----------
    def canonical_strides(self, shape, strides):
        """Strides of the canonical view of an array with ``shape``/``strides``
        (any units), or ``None`` when the memory order needs a copy.

        NumPy's own stride arithmetic on a zero-size-buffer probe (no data is
        read), so the answer holds for any strided array kind.
        """
        probe = np.lib.stride_tricks.as_strided(
            np.zeros(1, np.uint8), tuple(shape), tuple(strides))
        try:
            return probe.transpose(self.perm).reshape(self.canonical_shape, copy=False).strides
        except ValueError:
            return None

    def to_canonical(self, a, *, writable: bool = False):
        """``a`` (the caller's layout) in the canonical layout: a view whenever
        the memory order allows, else a copy -- or, with ``writable=True``,
        ``None`` (the caller writes to a temporary and uses :meth:`scatter`)."""
        if self.canonical_strides(a.shape, a.strides) is None:
            if writable:
                return None
            return a.transpose(self.perm).reshape(self.canonical_shape)
        return a.transpose(self.perm).reshape(self.canonical_shape)

    def from_canonical(self, a5):
        """A canonical array back in the caller's layout (a view)."""
        return a5.reshape([self.shape[a] for a in self.perm]).transpose(np.argsort(self.perm))

    def for_block(self, block, *, reduction: str | None = None) -> "Plan":
        """The plan of ``block``, a piece of the array this plan validated: the same axis
        roles and parameters (not checked again), ``block``'s shape and memory order;
        ``reduction`` replaces this plan's when given (the parts of a reduced value
        are summed per batch item)."""
        nb, ns = len(self.batch_shape), self.n_spatial
        batch = self.perm[:nb]
        channel = self.perm[nb:len(self.perm) - ns]
        h_of = dict(zip(self.perm[len(self.perm) - ns:], self.inv_spacing))
        strides = getattr(block, "strides", None) or (0,) * len(self.shape)
        spatial = tuple(sorted(sorted(h_of), key=lambda a: -abs(strides[a])))
        shape = tuple(block.shape)
        return replace(
            self, shape=shape, perm=batch + channel + spatial,
            batch_shape=tuple(shape[a] for a in batch),
            n_channels=shape[channel[0]] if channel else 1,
            spatial_shape=tuple(shape[a] for a in spatial),
            inv_spacing=tuple(h_of[a] for a in spatial),
            reduction=self.reduction if reduction is None else reduction)

    def scatter(self, a5, out) -> None:
        """``out[...] = from_canonical(a5)`` (for an ``out`` with no canonical view)."""
        out.transpose(self.perm)[...] = a5.reshape([self.shape[a] for a in self.perm])


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
    name: str = "u",
) -> Plan:
    """Check every argument of a TV computation and work out the axis roles.

    ``u`` is any array with ``shape``, ``dtype`` and ``strides`` (NumPy, CuPy,
    a Numba device array); ``name`` is what error messages call it.
    """
    check_array(u, name)
    if not hasattr(u, "shape") or not hasattr(u, "dtype"):
        raise TypeError(f"{name} must be an array, got {type(u).__name__}")
    dtype = float_dtype(u.dtype, name)
    beta = check_beta(beta)
    smoothing = check_nonneg("smoothing", smoothing)
    reduction = check_reduction(reduction)
    check_bool("isotropic", isotropic)
    ndim = u.ndim
    if ndim == 0:
        raise ValueError(f"{name} must have at least one dimension, got a 0-d array")
    if math.prod(u.shape) == 0:
        raise ValueError(f"{name} must not be empty, got an array of shape {tuple(u.shape)}")
    for arg, value in (("axes", axes), ("channel_axis", channel_axis)):
        if isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{arg} must be an integer (not a bool), got {arg}={value!r}")

    if channel_axis is not None:
        channel_axis = normalize_axis(channel_axis, ndim, "channel_axis")
    if axes is None:
        spatial = tuple(a for a in range(ndim) if a != channel_axis)
        if not spatial:
            raise ValueError(
                f"{name} has no spatial axis: a 1-D array cannot also have a channel_axis "
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

    if len(spatial) > MAX_SPATIAL_NDIM:
        raise ValueError(
            f"{name} has {len(spatial)} spatial axes; at most {MAX_SPATIAL_NDIM} are supported "
            f"(got {name}.ndim={ndim}): reshape it or pass axes= with fewer axes"
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



def check_bool(name: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {name}={_describe(value)}")
    return bool(value)


def check_out(out, plan: Plan):
    """Validate the shape and dtype of an ``out=`` array for the gradient described by
    ``plan`` (its kind of array: :meth:`tvnumba.backends.Backend.check_out`)."""
    if out is None:
        return None
    if not hasattr(out, "shape") or not hasattr(out, "dtype"):
        raise TypeError(f"out must be an array, got {type(out).__name__}")
    if tuple(out.shape) != plan.shape:
        raise ValueError(f"out must have shape {plan.shape}, got out.shape={tuple(out.shape)}")
    if np.dtype(out.dtype) != plan.dtype:
        raise ValueError(f"out must have dtype {plan.dtype}, got out.dtype={out.dtype}")
    return out


def check_max_iter(max_num_iter) -> int:
    if isinstance(max_num_iter, (bool, np.bool_)):
        raise TypeError(f"max_num_iter must be an integer >= 1, got {max_num_iter!r}")
    try:
        n = operator.index(max_num_iter)
    except TypeError:
        raise TypeError(
            f"max_num_iter must be an integer >= 1, got {_describe(max_num_iter)}") from None
    if n < 1:
        raise ValueError(f"max_num_iter must be >= 1, got max_num_iter={n}")
    return n


def check_callback(callback):
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable or None, got {_describe(callback)}")
    return callback


def check_choice(name: str, value, choices) -> str:
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {name}={_describe(value)}")
    return value
