"""Parallel-beam Radon projector and its exact adjoint (Numba), on
:func:`skimage.transform.radon`'s geometry.

scikit-image computes a projection by rotating the image with
:func:`skimage.transform.warp` (bilinear interpolation, zeros outside) and
summing its rows: detector bin ``x`` of angle θ is

.. math::

    (A u)_{x,θ} = \\sum_{y=0}^{P-1} \\operatorname{bilin}(u)\\bigl(
        c + \\cos θ (y - c) - \\sin θ (x - c),\\;
        c + \\sin θ (y - c) + \\cos θ (x - c)\\bigr)

(row, column coordinates in the square, padded or cropped image of side
``P``, ``c = P // 2``).  The forward kernel gathers exactly these samples
(ray-driven, one detector bin per work item); the adjoint scatters the same
bilinear weights back, so it is the transpose of the same matrix (not a
filtered back projection), to summation rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numba import njit, prange

from .._validate import _describe, check_bool, float_dtype
from ..solvers.data_terms import DataTerm

__all__ = ["radon", "radon_adjoint", "RadonGeometry", "RadonTerm"]


# --- kernels ------------------------------------------------------------------------
@njit(cache=True, inline="always")
def _coords(x, y, cos_a, sin_a, c):
    """Input (row, column) of rotated-image pixel (row y, column x): the inverse
    map that :func:`skimage.transform.radon` hands to ``warp``."""
    col = cos_a * x + sin_a * y - c * (cos_a + sin_a - 1.0)
    row = -sin_a * x + cos_a * y - c * (cos_a - sin_a - 1.0)
    return row, col


@njit(cache=True, inline="always")
def _span(v0, k, hi, lo_y, hi_y):
    """The ``y`` range where ``v0 + k·y`` stays in ``[m, hi − m]`` (``m`` a margin
    far above rounding), intersected with ``[lo_y, hi_y]``: there all four
    bilinear neighbours are inside and no check is needed."""
    m = 1e-6
    if abs(k) < 1e-12:
        if v0 < m or v0 > hi - m:
            return 1, 0
        return lo_y, hi_y
    a = (m - v0) / k
    b = (hi - m - v0) / k
    if a > b:
        a, b = b, a
    ya = max(lo_y, int(math.ceil(a)))
    yb = min(hi_y, int(math.floor(b)))
    return ya, yb


@njit(inline="always", cache=True)
def _interior(x, ca, sa, c, top, P):
    """The ray positions ``ya ... yb`` of detector ``x`` whose four bilinear
    neighbours all lie in the image."""
    r0, q0 = _coords(x, 0.0, ca, sa, c)
    ya, yb = _span(r0, ca, top, 0, P - 1)
    return _span(q0, sa, top, ya, yb)


@njit(inline="always", cache=True)
def _cell(x, y, ca, sa, c):
    """``(i0, j0, dr, dq)`` of an interior sample (coordinates >= 0: truncation
    is the floor)."""
    r, q = _coords(x, y, ca, sa, c)
    i0 = int(r)
    j0 = int(q)
    return i0, j0, r - i0, q - j0


@njit(inline="always", cache=True)
def _edge_cell(x, y, ca, sa, c, P):
    """``(inside, i0, j0, dr, dq)`` of a sample near the image's edge: its cell
    (floor, may be -1 or P-1) and the bilinear fractions; ``inside`` is False
    when no neighbour of the sample lies in the image."""
    r, q = _coords(x, y, ca, sa, c)
    if r <= -1.0 or q <= -1.0 or r >= P or q >= P:
        return False, 0, 0, 0.0, 0.0
    r0 = math.floor(r)
    q0 = math.floor(q)
    return True, int(r0), int(q0), r - r0, q - q0


@njit(parallel=True, cache=True)
def _forward(img, cos_t, sin_t, out):
    """``out[x, a] = Σ_y bilin(img)(coords(x, y, θ_a))``; ``img`` square P×P."""
    P = img.shape[0]
    n_ang = cos_t.shape[0]
    c = float(P // 2)
    top = P - 1.0
    for k in prange(n_ang * P):
        a = k // P
        x = k - a * P
        ca = cos_t[a]
        sa = sin_t[a]
        ya, yb = _interior(float(x), ca, sa, c, top, P)
        acc = 0.0
        # The interior run: all four neighbours inside, no branches.
        for y in range(ya, yb + 1):
            i0, j0, dr, dq = _cell(float(x), float(y), ca, sa, c)
            acc += ((1.0 - dr) * ((1.0 - dq) * img[i0, j0] + dq * img[i0, j0 + 1])
                    + dr * ((1.0 - dq) * img[i0 + 1, j0] + dq * img[i0 + 1, j0 + 1]))
        for y in range(P):
            if ya <= y <= yb:
                continue
            inside, i0, j0, dr, dq = _edge_cell(float(x), float(y), ca, sa, c, P)
            if not inside:
                continue
            v = 0.0
            if i0 >= 0:
                if j0 >= 0:
                    v += (1.0 - dr) * (1.0 - dq) * img[i0, j0]
                if j0 + 1 < P:
                    v += (1.0 - dr) * dq * img[i0, j0 + 1]
            if i0 + 1 < P:
                if j0 >= 0:
                    v += dr * (1.0 - dq) * img[i0 + 1, j0]
                if j0 + 1 < P:
                    v += dr * dq * img[i0 + 1, j0 + 1]
            acc += v
        out[x, a] = acc


@njit(parallel=True, cache=True)
def _adjoint(sino, cos_t, sin_t, P, n_chunks, out):
    """The transpose of :func:`_forward`: every sample's bilinear weights scatter
    ``sino[x, a]`` back.  Scattering from parallel work items would race, so each
    of ``n_chunks`` items owns a slab of a private float64 buffer, summed last."""
    n_ang = cos_t.shape[0]
    n_lines = n_ang * P
    c = float(P // 2)
    top = P - 1.0
    buf = np.zeros((n_chunks, P, P))
    for t in prange(n_chunks):
        lo = t * n_lines // n_chunks
        hi = (t + 1) * n_lines // n_chunks
        img = buf[t]
        for k in range(lo, hi):
            a = k // P
            x = k - a * P
            s = float(sino[x, a])
            if s == 0.0:
                continue
            ca = cos_t[a]
            sa = sin_t[a]
            ya, yb = _interior(float(x), ca, sa, c, top, P)
            for y in range(ya, yb + 1):
                i0, j0, dr, dq = _cell(float(x), float(y), ca, sa, c)
                w = (1.0 - dr) * s
                img[i0, j0] += (1.0 - dq) * w
                img[i0, j0 + 1] += dq * w
                w = dr * s
                img[i0 + 1, j0] += (1.0 - dq) * w
                img[i0 + 1, j0 + 1] += dq * w
            for y in range(P):
                if ya <= y <= yb:
                    continue
                inside, i0, j0, dr, dq = _edge_cell(float(x), float(y), ca, sa, c, P)
                if not inside:
                    continue
                if i0 >= 0:
                    if j0 >= 0:
                        img[i0, j0] += (1.0 - dr) * (1.0 - dq) * s
                    if j0 + 1 < P:
                        img[i0, j0 + 1] += (1.0 - dr) * dq * s
                if i0 + 1 < P:
                    if j0 >= 0:
                        img[i0 + 1, j0] += dr * (1.0 - dq) * s
                    if j0 + 1 < P:
                        img[i0 + 1, j0 + 1] += dr * dq * s
    for i in prange(P):
        for j in range(P):
            acc = 0.0
            for t in range(n_chunks):
                acc += buf[t, i, j]
            out[i, j] = acc


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

    def forward(self, image, out=None):
        """Sinogram of a validated float image of :attr:`shape`."""
        if out is None:
            out = np.empty(self.sinogram_shape, image.dtype)
        cos_t, sin_t = self.trig()
        _forward(np.ascontiguousarray(self.square(image)), cos_t, sin_t, out)
        return out

    def adjoint(self, sinogram):
        """Back projection (the exact transpose of :meth:`forward`) of a validated
        float sinogram of :attr:`sinogram_shape`."""
        P = self.size
        cos_t, sin_t = self.trig()
        n_chunks = max(1, min(numba.get_num_threads(), len(self.theta) * P))
        sq = np.empty((P, P), sinogram.dtype)
        _adjoint(np.ascontiguousarray(sinogram), cos_t, sin_t, P, n_chunks, sq)
        return self.unsquare(sq)


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


def _float_array(a, name: str, ndim: int, scale_ints: bool):
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
def radon(image, theta=None, circle: bool = True):
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

    Returns
    -------
    sinogram : (P, len(theta)) ndarray
        Column ``i`` is the projection at ``theta[i]``; the rotation axis is
        at detector bin ``P // 2``.

    Raises
    ------
    ValueError
        ``image`` not 2-D, empty, or not finite; ``theta`` not 1-D or not finite.

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
    image = _float_array(image, "image", 2, scale_ints=True)
    geom = RadonGeometry.create(image.shape, np.arange(180) if theta is None else theta, circle)
    return geom.forward(image)


def radon_adjoint(sinogram, theta=None, circle: bool = True, *, shape=None):
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

    Returns
    -------
    image : ndarray of shape ``shape``

    Raises
    ------
    ValueError
        ``sinogram`` not 2-D or not finite; ``len(theta) != sinogram.shape[1]``;
        ``shape`` inconsistent with ``sinogram.shape[0]``.

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
    sinogram = _float_array(sinogram, "sinogram", 2, scale_ints=False)
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
    return geom.adjoint(sinogram)


# --- data term ----------------------------------------------------------------------
class RadonTerm(DataTerm):
    """``½‖s·(A u − f)‖²`` for the projector ``A`` of ``geom`` and a sinogram
    ``f``, on canonical arrays ``(1, 1, 1, M, N)`` (one 2-D image).

    ``scale`` multiplies the operator and the data (``1/√n_angles`` in
    :func:`tvnumba.restoration.reconstruct_tv_beta`); :meth:`op_norm` is
    computed by power iteration once and cached.
    """

    def __init__(self, geom: RadonGeometry, f, scale: float = 1.0):
        f = np.ascontiguousarray(f)
        super().__init__(f * f.dtype.type(scale) if scale != 1.0 else f)
        self.geom = geom
        self.scale = float(scale)
        self._norm = None
        self._start = None

    def bind(self, backend):
        if not getattr(backend, "host", True):
            raise ValueError("the Radon data term runs on the CPU only (NumPy arrays)")
        return super().bind(backend)

    def _canon(self, img):
        return img.reshape((1, 1, 1) + self.geom.shape)

    def forward(self, u):
        out = self.geom.forward(np.ascontiguousarray(u.reshape(self.geom.shape)))
        if self.scale != 1.0:
            out *= out.dtype.type(self.scale)
        return out

    def adjoint(self, r):
        out = self.geom.adjoint(r)
        if self.scale != 1.0:
            out *= out.dtype.type(self.scale)
        return self._canon(out)

    def start(self):
        """The back projection ``Aᵀf`` rescaled by the ``c`` that minimises
        ``‖c·AAᵀf − f‖``: of the image's scale, unlike ``Aᵀf`` itself."""
        if self._start is None or self._start.dtype != self.f.dtype:
            b = self.adjoint(self.f)
            ab = self.forward(b)
            den = float(np.vdot(ab.astype(np.float64), ab))
            c = float(np.vdot(ab.astype(np.float64), self.f)) / den if den > 0 else 0.0
            self._start = np.ascontiguousarray(b * b.dtype.type(c))
        return self._start

    def f_shape(self):
        return (1, 1, 1) + self.geom.shape

    def range_hint(self) -> float:
        # The internal smoothing of "mm" is relative to the image's range, and f
        # is a sinogram: use the first iterate's.
        s = self.start()
        return float(np.max(s)) - float(np.min(s))

    def op_norm(self, iters: int = 30, seed: int = 0) -> float:
        if self._norm is None:
            self._norm = super().op_norm(iters, seed)
        return self._norm
