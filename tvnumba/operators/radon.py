"""Parallel-beam Radon projector and its exact adjoint (Numba, CPU and CUDA),
on :func:`skimage.transform.radon`'s geometry.

scikit-image computes a projection by rotating the image with
:func:`skimage.transform.warp` (bilinear interpolation, zeros outside) and
summing its rows: detector bin ``x`` of angle θ is

.. math::

    (A u)_{x,θ} = \\sum_{y=0}^{P-1} \\operatorname{bilin}(u)\\bigl(
        c + \\cos θ (y - c) - \\sin θ (x - c),\\;
        c + \\sin θ (y - c) + \\cos θ (x - c)\\bigr)

(row, column coordinates in the square, padded or cropped image of side
``P``, ``c = P // 2``).  The forward kernel gathers exactly these samples
(ray-driven, one detector bin per work item); the adjoint applies the same
bilinear weights transposed, so it is the transpose of the same matrix (not
a filtered back projection), to summation rounding.

Where it runs is a backend operation (:meth:`tvnumba.backends.Backend.radon`): NumPy
arrays on the CPU (``prange`` over rays; the adjoint scatters into per-thread images);
device arrays -- CuPy, Numba device arrays, anything with ``__cuda_array_interface__``
-- on the GPU (one thread per ray; the adjoint gathers, one thread per pixel, without
atomics), with the result in the input's kind of array and no host round trip.
``device="cuda"`` moves NumPy input there and back.  Both targets compile one
plain-Python source of the sampling arithmetic (:mod:`tvnumba.backends.radon_rays`), so
the GPU pair is the CPU pair to rounding and its adjoint the exact transpose of its
forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .._validate import _describe, check_bool
from ..backends import select
from ..solvers.data_terms import DataTerm

__all__ = ["radon", "radon_adjoint", "RadonGeometry", "RadonTerm"]


# --- geometry -----------------------------------------------------------------------
@dataclass(frozen=True)
class RadonGeometry:
    """Image shape, angles and how the image sits in the square that is rotated.

    ``circle=True``: the centred ``min(shape)`` square (scikit-image crops a
    non-square image the same way); ``circle=False``: the image zero-padded to
    ``ceil(√2 · max(shape))``.  Build it with :meth:`create`.
    """

    shape: tuple[int, int]
    theta: np.ndarray
    circle: bool
    size: int  # P, the side of the rotated square = the number of detector bins
    offset: tuple[int, int]  # where the image (circle=False) or the square (True) starts
    #: What a backend keeps per geometry (e.g. the angles' cosines on a device).
    cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def create(cls, shape, theta, circle: bool = True) -> "RadonGeometry":
        circle = check_bool("circle", circle)
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ValueError(f"the image must be 2-D and non-empty, got shape={shape}")
        theta = _check_theta(theta)
        if circle:
            size = min(shape)
            offset = tuple(int(math.ceil((s - size) / 2)) for s in shape)
        else:
            # scikit-image's padding, rounding included.
            diagonal = np.sqrt(2) * max(shape)
            pad = [int(np.ceil(diagonal - s)) for s in shape]
            offset = tuple((s + p) // 2 - s // 2 for s, p in zip(shape, pad))
            size = shape[0] + pad[0]
        return cls(shape, theta, circle, size, offset)

    @property
    def sinogram_shape(self) -> tuple[int, int]:
        return (self.size, len(self.theta))

    def trig(self):
        rad = np.deg2rad(self.theta)
        return np.cos(rad), np.sin(rad)

    def square(self, image):
        """The P×P array the projector rotates."""
        (o0, o1), P = self.offset, self.size
        if self.circle:
            return image[o0:o0 + P, o1:o1 + P]
        sq = np.zeros((P, P), image.dtype)
        sq[o0:o0 + self.shape[0], o1:o1 + self.shape[1]] = image
        return sq

    def unsquare(self, sq):
        """The adjoint of :meth:`square`: crop (padded) or embed (cropped)."""
        (o0, o1), P = self.offset, self.size
        if self.circle:
            if sq.shape == self.shape:
                return sq
            img = np.zeros(self.shape, sq.dtype)
            img[o0:o0 + P, o1:o1 + P] = sq
            return img
        return np.ascontiguousarray(sq[o0:o0 + self.shape[0], o1:o1 + self.shape[1]])


# --- validation ---------------------------------------------------------------------
def _check_theta(theta) -> np.ndarray:
    try:
        t = np.asarray(theta, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"theta must be a 1-D sequence of angles in degrees, got "
                        f"{_describe(theta)}") from None
    if t.ndim != 1 or t.size == 0:
        raise ValueError(f"theta must be a non-empty 1-D sequence of angles in degrees, got "
                         f"theta.shape={t.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError("theta contains NaN or Inf values")
    return t


def _adjoint_shape(shape, n_det: int, circle: bool):
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2:
            raise ValueError(f"shape must be (rows, columns), got shape={shape}")
        return shape
    if circle:
        return (n_det, n_det)
    for n in range(max(1, int(n_det / np.sqrt(2)) - 2), int(n_det / np.sqrt(2)) + 3):
        if n + int(np.ceil(np.sqrt(2) * n - n)) == n_det:
            return (n, n)
    raise ValueError(f"no square image has a circle=False sinogram with {n_det} detector "
                     f"bins (sinogram.shape[0]); pass shape=")


# --- public functions ---------------------------------------------------------------
def radon(image, theta=None, circle: bool = True, *, device=None):
    """Parallel-beam Radon transform, on :func:`skimage.transform.radon`'s geometry.

    Parameters
    ----------
    image : (M, N) ndarray
        The image.  Integer and bool images are converted with
        :func:`skimage.util.img_as_float` (as scikit-image does); float32 stays
        float32.  The rotation centre is pixel ``(P // 2, P // 2)`` of the
        rotated square (see ``circle``).
    theta : array_like, optional
        Projection angles in degrees; ``None``: ``np.arange(180)``.
    circle : bool, optional
        ``True``: the image is assumed zero outside its inscribed circle and
        the sinogram has ``min(image.shape)`` detector bins (a non-square image
        is cropped to its centred square, as in scikit-image).  ``False``: the
        image is zero-padded to ``ceil(√2 · max(image.shape))`` bins.
    device : {None, "cpu", "cuda"}, optional
        ``None`` runs where ``image`` lives: a device array (CuPy, Numba,
        anything with ``__cuda_array_interface__``; float32 or float64) is
        projected by the CUDA kernel and gives a device array of its kind
        (CuPy is not needed).  ``"cuda"`` moves a NumPy image to the GPU and
        the sinogram back; ``"cpu"`` refuses device arrays.

    Returns
    -------
    sinogram : (P, len(theta)) ndarray
        Column ``i`` is the projection at ``theta[i]``; the rotation axis is
        at detector bin ``P // 2``.  Same kind of array as ``image``.

    Raises
    ------
    ValueError
        ``image`` not 2-D, empty, or not finite; ``theta`` not 1-D or not
        finite; a device array with ``device="cpu"``.
    TypeError
        A device array that is not float32 or float64.
    RuntimeError
        The GPU path without a CUDA GPU.

    See Also
    --------
    radon_adjoint : the exact transpose (back projection).

    Notes
    -----
    Each sample of scikit-image's rotated image is a bilinear interpolation of
    the input, with zeros outside; the projection sums them.  This function
    computes the same sums with the rotation folded into the sampling
    coordinates, in parallel over detector bins, instead of one ``warp`` per
    angle.  Unlike scikit-image it does not warn when a ``circle=True`` image
    is non-zero outside the circle: the corners are projected the same way
    (partially, as scikit-image does).

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.data import shepp_logan_phantom
    >>> from skimage.transform import radon as sk_radon, rescale
    >>> from tvnumba.operators import radon
    >>> image = rescale(shepp_logan_phantom(), 0.1)
    >>> theta = np.linspace(0.0, 180.0, 20, endpoint=False)
    >>> sino = radon(image, theta, circle=False)
    >>> sino.shape
    (57, 20)
    >>> bool(np.allclose(sino, sk_radon(image, theta, circle=False), atol=1e-9))
    True
    """
    backend = select(image, device)
    image = backend.float_input(image, "image", 2, scale_ints=True)
    geom = RadonGeometry.create(image.shape, np.arange(180) if theta is None else theta, circle)
    return backend.radon(geom, image)


def radon_adjoint(sinogram, theta=None, circle: bool = True, *, shape=None, device=None):
    """The adjoint (transpose) of :func:`radon`: unfiltered back projection.

    ``<radon(x), y> == <x, radon_adjoint(y)>`` for all ``x`` and ``y``, to
    rounding.  This is not :func:`skimage.transform.iradon` with
    ``filter_name=None``, which interpolates the sinogram at the pixels
    instead of transposing the projector.

    Parameters
    ----------
    sinogram : (P, n_angles) ndarray
        Detector bins along axis 0, one column per angle.  float32 stays float32;
        integers become float64 (unscaled).
    theta : array_like, optional
        Angles in degrees, one per column; ``None``:
        ``np.linspace(0, 180, n_angles, endpoint=False)`` (as
        :func:`skimage.transform.iradon`).
    circle : bool, optional
        As in :func:`radon`.
    shape : (int, int), optional
        Shape of the image :func:`radon` was applied to.  ``None``: the square
        image that gives ``P`` bins.
    device : {None, "cpu", "cuda"}, optional
        As in :func:`radon`: a device ``sinogram`` is back-projected on the
        GPU (a gather, one thread per pixel, deterministic) into a device
        array of its kind.

    Returns
    -------
    image : ndarray of shape ``shape``
        Same kind of array as ``sinogram``.

    Raises
    ------
    ValueError
        ``sinogram`` not 2-D or not finite; ``len(theta) != sinogram.shape[1]``;
        ``shape`` inconsistent with ``sinogram.shape[0]``; a device array with
        ``device="cpu"``.
    TypeError
        A device array that is not float32 or float64.
    RuntimeError
        The GPU path without a CUDA GPU.

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.operators import radon, radon_adjoint
    >>> rng = np.random.default_rng(0)
    >>> x = rng.standard_normal((16, 16)); y = rng.standard_normal((16, 7))
    >>> theta = np.linspace(0.0, 180.0, 7, endpoint=False)
    >>> lhs = np.vdot(radon(x, theta), y); rhs = np.vdot(x, radon_adjoint(y, theta))
    >>> bool(abs(lhs - rhs) <= 1e-12 * abs(lhs))
    True
    """
    backend = select(sinogram, device)
    sinogram = backend.float_input(sinogram, "sinogram", 2, scale_ints=False)
    n_det, n_ang = sinogram.shape
    if theta is None:
        theta = np.linspace(0.0, 180.0, n_ang, endpoint=False)
    theta = _check_theta(theta)
    if len(theta) != n_ang:
        raise ValueError(f"theta must have one angle per sinogram column: len(theta)="
                         f"{len(theta)} but sinogram.shape[1]={n_ang}")
    geom = RadonGeometry.create(_adjoint_shape(shape, n_det, circle), theta, circle)
    if geom.size != n_det:
        raise ValueError(f"an image of shape={geom.shape} with circle={circle} has "
                         f"{geom.size} detector bins, but sinogram.shape[0]={n_det}")
    return backend.radon(geom, sinogram, adjoint=True)


# --- data term ----------------------------------------------------------------------
class RadonTerm(DataTerm):
    """``½‖s·(A u − f)‖²`` for the projector ``A`` of ``geom`` and a sinogram
    ``f``, on canonical arrays ``(1, 1, 1, M, N)`` (one 2-D image).

    ``scale`` multiplies the operator and the data (``1/√n_angles`` in
    :func:`tvnumba.restoration.reconstruct_tv_beta`); :meth:`op_norm` is
    computed by power iteration once and cached.  The projections are the bound
    backend's (:meth:`tvnumba.backends.Backend.radon`): on the CUDA backend ``f`` and
    the iterates are CuPy arrays and the projections run on the GPU.
    """

    def __init__(self, geom: RadonGeometry, f, scale: float = 1.0):
        super().__init__(f * f.dtype.type(scale))  # a new, contiguous array
        self.geom = geom
        self.scale = float(scale)
        self.backend = None
        self._norm = None
        self._start = None

    def bind(self, backend) -> "RadonTerm":
        super().bind(backend)
        self.backend = backend
        return self

    def _canon(self, img):
        return img.reshape((1, 1, 1) + self.geom.shape)

    def forward(self, u):
        out = self.backend.radon(self.geom, u.reshape(self.geom.shape))
        if self.scale != 1.0:
            out *= out.dtype.type(self.scale)
        return out

    def adjoint(self, r):
        out = self.backend.radon(self.geom, r, adjoint=True)
        if self.scale != 1.0:
            out *= out.dtype.type(self.scale)
        return self._canon(out)

    def start(self):
        """The back projection ``Aᵀf`` rescaled by the ``c`` that minimises
        ``‖c·AAᵀf − f‖``: of the image's scale, unlike ``Aᵀf`` itself."""
        if self._start is None or self._start.dtype != self.f.dtype:
            xp = self.xp
            b = self.adjoint(self.f)
            ab = self.forward(b).astype(np.float64)
            den = float(xp.vdot(ab, ab))
            c = float(xp.vdot(ab, self.f.astype(np.float64))) / den if den > 0 else 0.0
            self._start = xp.ascontiguousarray(b * b.dtype.type(c))
        return self._start

    def f_shape(self):
        return (1, 1, 1) + self.geom.shape

    def abs_sums(self):
        """The projector's entries are bilinear weights ``>= 0``: ``(A·1, Aᵀ·1)``."""
        xp = self.xp
        return (self.forward(xp.ones(self.f_shape(), self.f.dtype)),
                self.adjoint(xp.ones_like(self.f)))

    def range_hint(self) -> float:
        # The internal smoothing of "mm" is relative to the image's range, and f
        # is a sinogram: use the first iterate's.
        s = self.start()
        return float(self.xp.max(s)) - float(self.xp.min(s))

    def op_norm(self, iters: int = 30, seed: int = 0) -> float:
        if self._norm is None:
            self._norm = super().op_norm(iters, seed)
        return self._norm
