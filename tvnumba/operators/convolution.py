"""The FFT convolution data term ``½‖h * u − f‖²`` of deconvolution.

Two boundary models (:class:`Convolution`):

``"extend"`` (default)
    The unknown ``u`` covers the full support of the blur: the image grid
    grown by ``psf.shape − 1`` (``psf.shape // 2`` before, ``(psf.shape − 1)
    // 2`` after, the centring of ``scipy.signal.convolve(..., mode="same")``).
    ``A`` is the circular convolution on a zero-padded FFT grid followed by a
    crop to the observed window -- ``scipy.signal.fftconvolve(u, h,
    mode="valid")`` -- so no pixel outside the image is ever compared with
    data and nothing wraps around: no ringing at the border of a real,
    non-periodic image.  ``Aᵀ`` is its exact adjoint (zero-pad the residual
    into the grid, correlate with ``h``, crop to ``u``'s extent).
``"periodic"``
    ``u`` has the image's shape and ``A`` is the circular convolution (the
    model of :func:`skimage.restoration.wiener`): ``AᵀA`` is diagonal in
    Fourier space, so the data term has an exact proximal step, but a
    non-periodic image rings at its border.

All arrays are in the canonical layout of the problem's plan; the spectra
are real FFTs (``backend.fft``) over the canonical spatial axes, on grids of
5-smooth sizes (:func:`smooth5`).
"""

from __future__ import annotations

import functools

import numpy as np

from ..solvers import DataTerm
from ..solvers.unregularised import nearest_pinv

__all__ = ["Convolution", "BOUNDARIES", "extended_shape", "positive_blur", "smooth5"]

BOUNDARIES = ("extend", "periodic")
#: The most negative spectrum value, relative to the PSF's sum, that
#: :func:`positive_blur` accepts (a Gaussian truncated at 2σ reaches −0.014).
SPECTRUM_TOL = 0.05


def extended_shape(shape, psf_shape) -> tuple[int, ...]:
    """The spatial shape of the unknown of an ``"extend"`` problem:
    ``shape + psf_shape − 1``."""
    return tuple(int(n) + int(m) - 1 for n, m in zip(shape, psf_shape))


def positive_blur(psf) -> bool:
    """Whether ``⟨v, h * v⟩ ≥ 0`` for every image ``v``, up to :data:`SPECTRUM_TOL` of
    the sum of ``h`` (a NumPy array, centred as :class:`Convolution` takes it): ``h`` of odd
    sizes, equal to its point reflection about the centre, with a spectrum that is not
    negative (Gaussian PSFs truncated at 2σ or more; not boxes, disks or lines)."""
    h = np.asarray(psf, dtype=np.float64)
    scale = float(h.sum())
    if any(m % 2 == 0 for m in h.shape) or not scale > 0:
        return False
    if not np.allclose(h, h[(slice(None, None, -1),) * h.ndim], rtol=0,
                       atol=1e-6 * float(np.abs(h).max())):
        return False
    grid = [max(4 * m, 32) if m > 1 else 1 for m in h.shape]
    centred = np.roll(np.pad(h, [(0, n - m) for n, m in zip(grid, h.shape)]),
                      [-(m // 2) for m in h.shape], axis=tuple(range(h.ndim)))
    return float(np.fft.rfftn(centred).real.min()) >= -SPECTRUM_TOL * scale


@functools.lru_cache(maxsize=256)
def smooth5(n: int) -> int:
    """The smallest ``2^a 3^b 5^c >= n`` (the fastest FFT lengths of pocketfft
    and cuFFT); remembered, as every convolution asks for its grid."""
    best = 2 * n
    p2 = 1
    while p2 < best:
        p3 = p2
        while p3 < best:
            p5 = p3
            while p5 < n:
                p5 *= 5
            best = min(best, p5)
            p3 *= 3
        p2 *= 2
    return best


class Convolution(DataTerm):
    """``½‖A u − f‖²`` with ``A`` a convolution by ``psf``.

    Parameters
    ----------
    psf : array
        The point-spread function with one axis per canonical spatial axis
        (the plan's spatial axes in kernel order, length-1 axes in front), in
        the problem's float dtype.  Used as given (no normalisation here).
    f : array
        The observed image, canonical layout ``(B, C, n0, n1, n2)``.
    boundary : {"extend", "periodic"}
        See the module docstring.  With ``"extend"`` the unknown has the
        spatial shape :func:`extended_shape` ``(f's, psf.shape)``.
    """

    arrays = ("f", "psf")
    separable = True

    def __init__(self, psf, f, *, boundary: str = "extend"):
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got boundary={boundary!r}")
        super().__init__(f)
        self.psf = psf
        self.boundary = boundary
        self.has_prox = boundary == "periodic"
        nd = psf.ndim
        self._axes = tuple(range(-nd, 0))
        self._image = tuple(f.shape[-nd:])
        if boundary == "extend":
            self._u = extended_shape(self._image, psf.shape)
        else:
            self._u = self._image
        self._spectra = {}
        self.fft = None
        self._ndimage = None

    # --- set-up -------------------------------------------------------------------
    def bind(self, backend) -> "Convolution":
        super().bind(backend)
        self.fft = backend.fft
        self._ndimage = backend.ndimage
        self._spectra = {}
        return self

    @property
    def u_shape(self) -> tuple[int, ...]:
        """Canonical shape of the unknown."""
        return tuple(self.f.shape[:-len(self._axes)]) + self._u

    def _grid(self) -> tuple[int, ...]:
        if self.boundary == "periodic":
            return self._u
        # Any grid ≥ u's extent keeps the observed window free of wrap-around,
        # so take a fast length: 526 = 2·263 (a 512² image, a 15² PSF) costs
        # 41 ms per rfft/irfft pair, next_fast_len's 528 = 2⁴·3·11 11 ms, the
        # 5-smooth 540 7 ms (scipy 1.17, one core).
        return tuple(smooth5(n) for n in self._u)

    def _spectrum(self, kernel, key):
        """rfft of ``kernel`` (a PSF-shaped real array) on the grid, cached per dtype."""
        dtype = self.f.dtype
        hit = self._spectra.get((key, dtype.str))
        if hit is not None:
            return hit
        xp = self.xp
        grid = self._grid()
        k = xp.asarray(kernel, dtype=dtype)
        if self.boundary == "periodic":
            # Circular convolution centred like ``mode="same"``: the PSF's
            # element (m − 1) // 2 goes to the origin.
            pad = xp.zeros(grid, dtype)
            pad[tuple(slice(0, m) for m in k.shape)] = k
            k = xp.roll(pad, tuple(-((m - 1) // 2) for m in kernel.shape), axis=tuple(range(k.ndim)))
        spec = self.fft.rfftn(k, s=grid, axes=tuple(range(k.ndim)))
        spec = spec.astype(np.result_type(dtype, np.complex64), copy=False)
        self._spectra[(key, dtype.str)] = spec
        return spec

    # --- the operator -------------------------------------------------------------
    def _conv(self, u, spec, conj=False):
        fft, grid = self.fft, self._grid()
        U = fft.rfftn(u, s=grid, axes=self._axes)
        if conj:
            key = ("conj", id(spec))
            if key not in self._spectra:
                self._spectra[key] = spec.conj()
            spec = self._spectra[key]
        U *= spec
        return fft.irfftn(U, s=grid, axes=self._axes)

    def forward(self, u):
        out = self._conv(u, self._spectrum(self.psf, "h"))
        if self.boundary == "extend":
            # the "valid" window: output i sees u[i − m + 1 .. i], no wrap
            out = out[(Ellipsis,) + tuple(slice(m - 1, m - 1 + n)
                                         for m, n in zip(self.psf.shape, self._image))]
        return self.xp.ascontiguousarray(out, dtype=u.dtype)

    def adjoint(self, r):
        return self._adjoint(r, self._spectrum(self.psf, "h"))

    def _adjoint(self, r, spec):
        xp = self.xp
        if self.boundary == "extend":
            pad = xp.zeros(r.shape[:-len(self._axes)] + self._grid(), r.dtype)
            pad[(Ellipsis,) + tuple(slice(m - 1, m - 1 + n)
                                    for m, n in zip(self.psf.shape, self._image))] = r
            r = pad
        out = self._conv(r, spec, conj=True)
        out = out[(Ellipsis,) + tuple(slice(0, n) for n in self._u)]
        return xp.ascontiguousarray(out, dtype=self.f.dtype)

    # --- what the solvers call ----------------------------------------------------
    def normal(self, x, out) -> None:
        if self.boundary == "periodic":  # AᵀA = F⁻¹ |H|² F
            spec = self._spectrum(self.psf, "h")
            out[...] = self._conv(x, spec * spec.conj())
            return
        out[...] = self.adjoint(self.forward(x))

    def normal_diag(self):
        """``(AᵀA)_ii = Σ_k h[k − i]²`` over the observed ``k``: the adjoint of
        ``h²`` applied to ones (a constant ``Σh²`` when periodic)."""
        xp = self.xp
        ones = xp.ones(self.f.shape, self.f.dtype)
        h2 = self.psf * self.psf
        if self.boundary == "periodic":
            return ones * self.f.dtype.type(float(xp.sum(h2)))
        return xp.maximum(self._adjoint(ones, self._spectrum(h2, "h2")), 0)

    def least_squares(self, u0):
        """Periodic: the spectral pseudo-inverse from ``u0`` (one FFT pair); None for
        ``"extend"`` (a window of the grid: conjugate gradients)."""
        if self.boundary != "periodic":
            return None
        fft, grid, axes = self.fft, self._grid(), self._axes
        H = self._spectrum(self.psf, "h")
        U = nearest_pinv(self.xp, fft.rfftn(u0, s=grid, axes=axes), H,
                         fft.rfftn(self.f, s=grid, axes=axes))
        return self.xp.ascontiguousarray(fft.irfftn(U, s=grid, axes=axes), dtype=self.f.dtype)

    def start(self):
        """The observed image; with ``"extend"`` continued past its border by
        edge replication (``Aᵀf`` would fade to zero there)."""
        if self.boundary == "periodic":
            return self.f.copy()
        lead = [(0, 0)] * (self.f.ndim - len(self._axes))
        width = [(m // 2, (m - 1) // 2) for m in self.psf.shape]
        return self.xp.pad(self.f, lead + width, mode="edge")

    def f_shape(self):
        return self.u_shape

    def fft_split(self) -> dict:
        """What the ADMM solver needs of ``A``: the FFT ``grid`` and ``axes``, the
        ``spectrum`` of ``h`` there, the unknown's ``extent`` in the grid, the observed
        ``window`` (None when periodic: the data fill the grid) and the PSF's ``rim``, its
        smallest non-zero magnitude over its largest."""
        window = None
        if self.boundary == "extend":
            window = tuple(slice(m - 1, m - 1 + n) for m, n in zip(self.psf.shape, self._image))
        a = abs(self.psf)
        nz = a[a > 0]
        rim = float(nz.min() / nz.max()) if nz.size else 1.0
        return dict(grid=self._grid(), axes=self._axes, spectrum=self._spectrum(self.psf, "h"),
                    extent=self._u, window=window, rim=rim)

    def to_unknown_grid(self, x):
        """``x`` of the image grid continued as :meth:`start` continues ``f``."""
        if self.boundary == "periodic":
            return x.copy()
        lead = [(0, 0)] * (x.ndim - len(self._axes))
        width = [(m // 2, (m - 1) // 2) for m in self.psf.shape]
        return self.xp.pad(x, lead + width, mode="edge")

    def to_image_grid(self, u):
        """The unknown on the observed grid: ``u`` cropped by ``psf.shape // 2`` before
        (``"extend"``; the pixels whose blur the data see whole), ``u`` itself
        (``"periodic"``)."""
        if self.boundary == "periodic":
            return u
        return u[(Ellipsis,) + tuple(slice(m // 2, m // 2 + n)
                                     for m, n in zip(self.psf.shape, self._image))]

    def dilate(self, v):
        """``δ_i = max v_j`` over the pixels ``j`` that datum ``i`` sees (``h > 0``): a
        maximum filter over the PSF's support, cropped to the observed window
        (``"extend"``) or wrapped (``"periodic"``)."""
        xp = self.xp
        support = xp.asarray(self.psf > 0)[(slice(None, None, -1),) * self.psf.ndim]
        footprint = support.reshape((1,) * (v.ndim - support.ndim) + support.shape)
        ndimage = self._ndimage
        if self.boundary == "periodic":
            return ndimage.maximum_filter(v, footprint=footprint, mode="wrap")
        out = ndimage.maximum_filter(v, footprint=footprint, mode="constant", cval=0.0)
        # out[x] = max over v[x − m//2 + t]: datum i sees v[i .. i + m − 1] from x = i + m//2
        return xp.ascontiguousarray(self.to_image_grid(out))

    def ring_widths(self):
        """The outer band of the extended grid that the data sees partly (``psf.shape − 1``
        per canonical spatial axis), or None when periodic."""
        if self.boundary == "periodic":
            return None
        nd = self.psf.ndim
        return {self.f.ndim - nd + k: m - 1 for k, m in enumerate(self.psf.shape)}

    def prox(self, v, tau, out) -> None:
        """Periodic only: ``(I + τ HᵀH)⁻¹ (v + τ Hᵀf)``, one FFT pair."""
        if self.boundary != "periodic":
            raise NotImplementedError("the 'extend' convolution has no cheap proximal step")
        fft, grid, axes = self.fft, self._grid(), self._axes
        spec = self._spectrum(self.psf, "h")
        T = self.f.dtype.type
        V = fft.rfftn(v, s=grid, axes=axes)
        V += T(tau) * spec.conj() * fft.rfftn(self.f, s=grid, axes=axes)
        V /= 1 + T(tau) * (spec * spec.conj()).real
        out[...] = fft.irfftn(V, s=grid, axes=axes)

    @property
    def mu(self) -> float:
        if self.boundary != "periodic" or self.fft is None:
            return 0.0  # the extension is not seen by the data: not strongly convex
        spec = self._spectrum(self.psf, "h")
        return float(self.xp.min(self.xp.abs(spec))) ** 2

    def op_norm(self, iters=0, seed=0) -> float:
        """``max |ĥ|`` over the grid: the norm of the circular convolution there,
        which the zero-padding and the crop can only lower (1 % margin, as the
        power iteration's)."""
        return 1.01 * float(self.xp.max(self.xp.abs(self._spectrum(self.psf, "h"))))
