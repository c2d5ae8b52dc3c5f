"""β-TV regularised inverse problems: any linear operator, deconvolution, inpainting."""

from __future__ import annotations

import dataclasses
import operator

import numpy as np

from .._validate import (_describe, check_bool, check_choice, check_nonneg, float_dtype,
                         make_plan)
from ..backends import is_dask_array, select
from ..operators.convolution import BOUNDARIES, Convolution, positive_blur
from ..operators.linear import LinearOperatorTerm, _is_matrix_like
from ..solvers import Diagonal, solve
from ._core import check_noise, check_weight, finish, no_auto_weight, poisson_term, prepare
from .auto_weight import choose_inverse_weight
from .poisson_weight import choose_poisson_weight, edge_taper

__all__ = ["solve_tv_beta", "deconvolve_tv_beta", "inpaint_tv_beta",
           "DECONVOLVE_WEIGHT", "INPAINT_WEIGHT"]

#: Default ``weight`` of :func:`deconvolve_tv_beta`: suits images in [0, 1] with
#: noise σ ≈ 0.01; the best weight grows roughly in proportion to σ.
DECONVOLVE_WEIGHT = 0.001

#: Default ``weight`` of :func:`inpaint_tv_beta` (noise-free known pixels,
#: which are kept exactly anyway): small, so the fill follows the known pixels.
INPAINT_WEIGHT = 0.01


def _spatial_axes(ndim: int, channel_axis) -> list[int]:
    c = None if channel_axis is None else channel_axis % ndim
    return [a for a in range(ndim) if a != c]


def _canonical_spatial(plan, spatial, a):
    """``a`` (one axis per spatial axis, the caller's order) in the kernels'
    spatial order, with the canonical layout's length-1 padding in front."""
    order = [spatial.index(ax) for ax in plan.perm[len(plan.perm) - plan.n_spatial:]]
    pad = len(plan.canonical_shape) - 2 - plan.n_spatial
    a = a.transpose(order)
    return a.reshape((1,) * pad + tuple(a.shape))


# --------------------------------------------------------------------------- general
def solve_tv_beta(A, f, weight: float = 0.1, beta: float = 1.0, *, shape=None, AT=None,
                  check_adjoint: bool = False, eps: float = 1e-3,
                  max_num_iter: int | None = None, channel_axis: int | None = None,
                  isotropic: bool = True, smoothing: float = 0.0, spacing=1.0,
                  method: str = "auto", device: str | None = None,
                  return_info: bool = False, callback=None, noise: str = "gaussian",
                  background=0.0):
    r"""Solve a linear inverse problem with a β-TV prior.

    .. math::

        u^* = \operatorname*{argmin}_u \; \tfrac12 \|A u - f\|_2^2
              + \text{weight} \cdot TV_\beta(u)

    for any linear operator :math:`A`, with :math:`TV_\beta` as in
    :func:`tvnumba.tv` on the unknown's grid.

    Parameters
    ----------
    A : ndarray, scipy.sparse matrix, scipy.sparse.linalg.LinearOperator or callable
        The forward operator.  A matrix or ``LinearOperator`` of shape
        ``(f.size, prod(shape))`` acts on the C-order flattened unknown (its
        adjoint is ``A.T`` / ``rmatvec``); a callable ``A(u)`` takes an array
        of ``shape`` and returns one with ``f.size`` elements, and needs
        ``AT``.
    f : ndarray
        The data, any shape.  Never modified.  float32 stays float32
        (the unknown has ``f``'s float dtype).
    weight : float, optional
        TV weight ``>= 0``.
    beta : float, optional
        Order β > 0 of the TV term (see :func:`tvnumba.denoise_tv_beta`).
    shape : tuple of int, optional
        Shape of the unknown.  Default ``f.shape``, which requires ``A`` to
        map ``f.size`` values to ``f.size`` values when it is a matrix or a
        ``LinearOperator``.
    AT : callable, optional
        ``AT(r)``, the adjoint of a callable ``A``: an array of ``f``'s shape
        in, one of ``shape`` out.
    check_adjoint : bool, optional
        Run a dot-product test of ``A`` against its adjoint first (random
        float64 vectors, relative tolerance ``1e-6``) and raise
        ``ValueError`` when it fails.
    eps, max_num_iter, channel_axis, isotropic, smoothing, spacing, method
        As in :func:`tvnumba.denoise_tv_beta`, on the unknown (``channel_axis``
        and ``spacing`` describe ``shape``); no ``method="dct"``.
    device : {None, "cpu", "cuda"}, optional
        As in :func:`tvnumba.denoise_tv_beta`.  Matrices and
        ``LinearOperator`` run on the host only; callables receive the
        backend's arrays (CuPy ones on the GPU).
    return_info, callback
        As in :func:`tvnumba.denoise_tv_beta`.
    noise, background
        As in :func:`tvnumba.denoise_tv_beta`: ``"poisson"`` takes ``f`` as counts and
        ``A >= 0`` (checked on matrices; ``Aᵀ1 >= 0`` and ``A1 >= 0`` otherwise).

    Returns
    -------
    u : ndarray
        The minimiser, of ``shape``.
    info : SolveInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError
        Shapes of ``A``, ``f`` and ``shape`` that do not fit, a failed
        adjoint test, non-finite ``f``, bad options.
    TypeError
        ``A`` of an unknown kind, a callable ``A`` without ``AT``.

    See Also
    --------
    deconvolve_tv_beta, inpaint_tv_beta, tvnumba.denoise_tv_beta

    Notes
    -----
    With β = 1 (no smoothing) ``method="auto"`` runs the primal-dual
    algorithm [2]_ with ``A`` dualised next to the gradient, which needs only
    ``A`` and ``Aᵀ``; it stops on the objective's decrease over the last
    quarter of the run (an estimate of the relative error, ``info.bound`` false;
    the Poisson loss: a duality gap).  Other β: as in
    :func:`tvnumba.denoise_tv_beta`, with conjugate gradients on ``AᵀA`` for
    β < 1.  The first iterate is ``Aᵀf``.  Unless ``AᵀA`` is invertible the
    minimiser need not be unique (β = 1); with ``weight=0`` it is the
    least-squares solution nearest ``Aᵀf``.  See :doc:`/solvers`.

    References
    ----------
    .. [1] L. I. Rudin, S. Osher and E. Fatemi, "Nonlinear total variation
       based noise removal algorithms", Physica D 60 (1992), 259-268.
    .. [2] A. Chambolle and T. Pock, "A first-order primal-dual algorithm for
       convex problems with applications to imaging", J. Math. Imaging Vis.
       40 (2011), 120-145.

    Examples
    --------
    A 1-D signal observed through a moving average, as a matrix, as a
    ``LinearOperator`` and as callables:

    >>> import numpy as np
    >>> from scipy.sparse.linalg import aslinearoperator
    >>> from tvnumba.restoration import solve_tv_beta
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat([0.0, 1.0, 0.3, 0.8], 16)
    >>> M = sum(np.eye(64, k=k) for k in (-1, 0, 1)) / 3
    >>> f = M @ x + 0.02 * rng.standard_normal(64)
    >>> u1 = solve_tv_beta(M, f, weight=0.02, beta=1.5)
    >>> u2 = solve_tv_beta(aslinearoperator(M), f, weight=0.02, beta=1.5)
    >>> u3 = solve_tv_beta(lambda u: M @ u, f, AT=lambda r: M.T @ r, weight=0.02,
    ...                    beta=1.5, check_adjoint=True)
    >>> bool(np.allclose(u1, u2, atol=1e-4) and np.allclose(u1, u3, atol=1e-4))
    True
    >>> bool(np.abs(u1 - x).mean() < np.abs(f - x).mean())
    True

    An adjoint that is not one is caught:

    >>> solve_tv_beta(lambda u: M @ u, f, AT=lambda r: 2 * r, check_adjoint=True)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: AT is not the adjoint of A: ...
    """
    weight = check_nonneg("weight", no_auto_weight(weight, "solve_tv_beta"))
    check_bool("return_info", return_info)
    check_bool("check_adjoint", check_adjoint)
    if not hasattr(f, "shape") or not hasattr(f, "dtype"):
        f = np.asarray(f)
    if f.size == 0:
        raise ValueError(f"f must not be empty, got an array of shape {tuple(f.shape)}")
    backend = select(f, device, solver=True)
    dtype = float_dtype(f.dtype, "f")
    matrix = _is_matrix_like(A)
    if matrix and not backend.host:
        raise ValueError("a matrix or LinearOperator A runs on the host: use device='cpu' "
                         "(NumPy f), or pass A and AT as callables on GPU arrays")
    shape = _check_shape(shape, A, f, matrix)
    f = backend.as_compute(backend.bring(f), dtype)
    plan = make_plan(np.broadcast_to(np.zeros((), dtype), shape), beta,
                     channel_axis=channel_axis, spacing=spacing, isotropic=isotropic,
                     smoothing=smoothing, name="the unknown (shape)")
    backend = backend.for_plan(plan)
    backend.check_finite(f, "f")
    term = LinearOperatorTerm(A, f, plan, AT=AT)
    term.check_nonzero(backend)
    if check_adjoint:
        term.check_adjoint()
    if check_noise(noise) == "poisson":
        term = poisson_term(term, f, None, backend, background)
        term.bind(backend).check_nonnegative()
    u5, info = solve(term, weight, backend=backend, plan=plan, method=method, eps=eps,
                     max_num_iter=max_num_iter, callback=callback)
    u = backend.result(plan.from_canonical(backend.wrap(u5)).copy())
    return (u, info) if return_info else u


def _check_shape(shape, A, f, matrix: bool) -> tuple[int, ...]:
    if shape is None:
        if matrix and len(A.shape) == 2 and A.shape[1] != f.size:
            raise ValueError(
                f"shape is required: A has {A.shape[1]} columns but f has f.size={f.size} "
                "elements, so the unknown's shape cannot default to f.shape")
        return tuple(f.shape)
    try:
        raw = (shape,) if np.ndim(shape) == 0 else tuple(shape)
        out = tuple(operator.index(n) for n in raw)
    except TypeError:
        raise TypeError(f"shape must be a tuple of integers, got shape={_describe(shape)}") from None
    if not out or any(n < 1 for n in out):
        raise ValueError(f"shape must hold integers >= 1, got shape={_describe(shape)}")
    return out


# --------------------------------------------------------------------------- deconvolution
def _check_psf(psf, n_spatial: int, image_spatial, dtype, backend, *, nonnegative=False):
    """The PSF as a host float array of ``dtype``, normalised to sum 1 (with
    ``nonnegative``: no negative entries, as photon counts need)."""
    if not hasattr(psf, "shape") or not hasattr(psf, "dtype"):
        psf = np.asarray(psf)
    float_dtype(psf.dtype, "psf")  # complex or non-numeric PSFs: TypeError naming psf
    if psf.ndim != n_spatial:
        raise ValueError(f"psf must have one axis per spatial axis of the image ({n_spatial}), "
                         f"got psf.ndim={psf.ndim} (psf.shape={tuple(psf.shape)})")
    if psf.size == 0:
        raise ValueError(f"psf must not be empty, got psf.shape={tuple(psf.shape)}")
    if any(m > n for m, n in zip(psf.shape, image_spatial)):
        raise ValueError(f"psf must not be larger than the image, got psf.shape="
                         f"{tuple(psf.shape)} for an image of spatial shape {tuple(image_spatial)}")
    host = np.asarray(backend.to_host(psf), dtype=np.float64)
    if not np.isfinite(host).all():
        raise ValueError("psf contains NaN or Inf values")
    if nonnegative and (host < 0).any():
        raise ValueError(f"psf must be >= 0 with noise='poisson' (a blur of photon counts), "
                         f"got a minimum of {float(host.min())!r}")
    # scaled by its largest magnitude first, so that no finite PSF overflows its sum
    peak = float(np.abs(host).max())
    total = float((host / peak).sum()) if peak > 0 else 0.0
    if not total > 0:
        raise ValueError(f"psf must have a positive sum (it is normalised to 1), got "
                         f"psf.sum()={float(np.sum(host / peak if peak else host)) * peak!r}")
    return (host / peak / total).astype(dtype)


def deconvolve_tv_beta(image, psf, weight: float | str = DECONVOLVE_WEIGHT, beta: float = 1.0, *,
                       boundary: str = "extend", eps: float = 1e-3,
                       max_num_iter: int | None = None, channel_axis: int | None = None,
                       isotropic: bool = True, smoothing: float = 0.0, spacing=1.0,
                       method: str = "auto", device: str | None = None,
                       return_info: bool = False, callback=None, noise: str = "gaussian",
                       background=0.0, depth=None):
    r"""β-TV deconvolution, without ringing at the image border.

    .. math::

        u^* = \operatorname*{argmin}_u \; \tfrac12 \|W (h * u) - f\|_2^2
              + \text{weight} \cdot TV_\beta(u)

    where ``h`` is the PSF and ``W`` keeps the observed window (see
    Notes); returns ``u*`` on the image's grid.  ``noise="poisson"``: photon
    counts, the data term :math:`KL(W(h * u) + b; f)` and ``u ≥ 0``.

    Parameters
    ----------
    image : ndarray
        Blurred (and noisy) 2-D image or 3-D volume, optionally with a channel
        axis; integers through :func:`skimage.util.img_as_float`.  Never modified.
    psf : ndarray
        Point-spread function, one axis per spatial axis of ``image``, not
        larger than it, finite, with a positive sum; normalised to sum 1.
        Centred like ``scipy.signal.convolve(u, psf, mode="same")``
        (element ``psf.shape // 2`` is the origin).  It blurs every channel.
    weight : float or "auto", optional
        TV weight ``>= 0``; the default 0.001 suits images in [0, 1] with noise
        σ ≈ 0.01 (scale it roughly with σ).  ``"auto"``: chosen by Stein's
        unbiased estimate of the predicted risk (see Notes).
    beta : float, optional
        Order β > 0 of the TV term (see :func:`tvnumba.denoise_tv_beta`).
    boundary : {"extend", "periodic"}, optional
        ``"extend"`` (default): the unknown extends past the border by the
        PSF's half-widths and only the observed window is compared with the
        data -- no ringing on real images.  ``"periodic"``: circular
        convolution (as :func:`skimage.restoration.wiener`), for periodic data.
    eps, max_num_iter, channel_axis, isotropic, smoothing, spacing, method, device, return_info, callback, noise, background
        As in :func:`tvnumba.denoise_tv_beta` (``method="dct"`` excepted; Poisson:
        a PSF ``>= 0``).  With ``"extend"`` the callback sees the extended iterate.
    depth : int or sequence of int, optional
        Dask arrays only: each chunk's halo (:func:`tvnumba.dask.deconvolve_chunked`).

    Returns
    -------
    u : ndarray
        The restored image, ``image``'s shape; float32 for float16/float32
        input, float64 otherwise.
    info : SolveInfo
        Only with ``return_info=True``; ``info.objective`` is that of the
        extended problem.

    Raises
    ------
    ValueError
        A PSF with the wrong number of axes, larger than the image, with NaN/Inf,
        or without a positive sum; non-finite ``image``; bad options.

    See Also
    --------
    skimage.restoration.wiener, skimage.restoration.richardson_lucy,
    solve_tv_beta, tvnumba.denoise_tv_beta

    Notes
    -----
    With ``boundary="extend"`` the unknown lives on the full support of the
    blur, the image grid grown by ``psf.shape − 1`` [1]_, and

    .. math:: A u = \text{crop}(h \circledast u),
              \qquad A^T r = \text{crop}'(\bar h \circledast \text{pad}(r)),

    circular convolutions on a zero-padded FFT grid (``A u`` equals
    ``scipy.signal.fftconvolve(u, psf, mode="valid")``).  TV fills the
    margin; the result is the extended solution cropped to the image.  For
    β = 1, ``method="auto"`` is ADMM [2]_ with one FFT division per iteration
    (``"admm"``); it stops when the objective's decrease over the second half
    of the run is at most ``eps`` relative (``info.gap``: an estimate of the
    objective's relative error, not a bound); see :doc:`/inverse_problems`.
    Poisson: preconditioned primal-dual, certified by a duality gap
    (:func:`tvnumba.denoise_tv_beta`); ``weight="auto"`` minimises a Poisson unbiased
    estimate of the error weighed by the blur (PURE of the predicted counts where the
    PSF is not symmetric with a non-negative spectrum; :doc:`/inverse_problems`).

    ``weight="auto"`` assumes ``f = A x + n`` with white Gaussian noise,
    estimates σ as :func:`tvnumba.denoise_tv_beta` does (``info.sigma``)
    and minimises the Monte-Carlo SURE of the predicted risk
    :math:`E\|A(u_w - x)\|^2` [3]_ [4]_,

    .. math:: \mathrm{SURE}(w) = \|A u_w(f) - f\|^2 - N\sigma^2
              + 2\sigma^2 \operatorname{div}(A u_w)(f),

    by the search of :func:`tvnumba.denoise_tv_beta` (about 17 solves;
    ``info.weight``).  How close it comes: :doc:`/choosing`.

    References
    ----------
    .. [1] M. S. C. Almeida and M. A. T. Figueiredo, "Deconvolving images with
       unknown boundaries using the alternating direction method of
       multipliers", IEEE Trans. Image Process. 22 (2013), 3074-3086.
    .. [2] M. V. Afonso, J. M. Bioucas-Dias and M. A. T. Figueiredo, "Fast image
       recovery using variable splitting and constrained optimization", IEEE Trans.
       Image Process. 19 (2010), 2345-2356.
    .. [3] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box
       optimization of regularization parameters for general denoising
       algorithms", IEEE Trans. Image Process. 17 (2008), 1540-1554.
    .. [4] C. R. Vogel, *Computational Methods for Inverse Problems*, SIAM
       (2002), ch. 7.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.signal import convolve
    >>> from tvnumba.restoration import deconvolve_tv_beta
    >>> rng = np.random.default_rng(0)
    >>> clean = np.zeros((48, 48)); clean[12:36, 20:40] = 1.0; clean[:, :6] = 0.5
    >>> psf = np.ones((5, 5)) / 25
    >>> blurred = convolve(np.pad(clean, 2, mode="edge"), psf, mode="valid")
    >>> noisy = blurred + 0.01 * rng.standard_normal(blurred.shape)
    >>> u, info = deconvolve_tv_beta(noisy, psf, weight=0.005, return_info=True)
    >>> u.shape, info.method, info.converged
    ((48, 48), 'admm', True)
    >>> bool(np.abs(u - clean).mean() < 0.5 * np.abs(noisy - clean).mean())
    True
    >>> u, info = deconvolve_tv_beta(noisy, psf, weight="auto", return_info=True)
    >>> round(info.sigma, 2), bool(0 < info.weight < 0.05)  # σ and the chosen weight
    (0.01, True)
    """
    weight = check_weight(weight)
    check_bool("return_info", return_info)
    check_choice("boundary", boundary, BOUNDARIES)
    if is_dask_array(image):
        if return_info or callback is not None or boundary != "extend":
            raise ValueError("a Dask array is deconvolved chunk by chunk: boundary='extend' "
                             "only, without return_info or callback")
        from .. import dask as tv_dask

        return tv_dask.deconvolve_chunked(
            image, psf, deconvolve_tv_beta, weight, beta, depth=depth, eps=eps,
            max_num_iter=max_num_iter, channel_axis=channel_axis, isotropic=isotropic,
            smoothing=smoothing, spacing=spacing, method=method, device=device, noise=noise,
            background=background)
    if depth is not None:
        raise ValueError(f"depth applies to Dask arrays only (their chunks' halo), got "
                         f"depth={depth!r} for a {type(image).__name__}")
    counts = check_noise(noise) == "poisson"
    backend, f, plan = prepare(image, beta, device=device, channel_axis=channel_axis,
                               spacing=spacing, isotropic=isotropic, smoothing=smoothing,
                               counts=counts)
    spatial = _spatial_axes(f.ndim, channel_axis)
    h = _check_psf(psf, plan.n_spatial, [f.shape[a] for a in spatial], plan.dtype, backend,
                   nonnegative=counts)
    backend.check_finite(f, "image")
    h5 = backend.bring(np.ascontiguousarray(_canonical_spatial(plan, spatial, h)))
    f5 = backend.canonical(f, plan)
    term = Convolution(h5, f5, boundary=boundary)
    if counts:
        term = poisson_term(term, f, plan, backend, background)
    u_plan = plan
    if boundary == "extend":
        grow = dict(zip(spatial, h.shape))
        u_plan = dataclasses.replace(
            plan, shape=tuple(n + grow.get(a, 1) - 1 for a, n in enumerate(plan.shape)),
            spatial_shape=term.u_shape[len(term.u_shape) - plan.n_spatial:])
    sigma, warm = None, None
    if weight == "auto" and counts:
        h64 = h5.astype(np.float64)
        weight, warm = choose_poisson_weight(
            lambda g: Convolution(h64, g, boundary=boundary).with_loss(term.loss,
                                                                       term.background),
            f5, plan, u_plan, backend, max_num_iter=max_num_iter,
            view=_tapered_view(term, f5, h5, backend) if positive_blur(h) else None)
    elif weight == "auto":
        h64 = h5.astype(np.float64)
        weight, sigma, _ = choose_inverse_weight(
            lambda g: Convolution(h64, g, boundary=boundary), f5, plan, u_plan, backend,
            method=method, max_num_iter=max_num_iter)
    u5, info = solve(term, weight, backend=backend, plan=u_plan, method=method, eps=eps,
                     max_num_iter=max_num_iter, callback=callback, warm=warm)
    u5 = term.to_image_grid(backend.wrap(u5))
    u = finish(backend, plan, backend.xp.ascontiguousarray(u5))
    info = dataclasses.replace(info, weight=weight, sigma=sigma)
    return (u, info) if return_info else u


def _tapered_view(term, f5, h5, backend):
    """``u ↦ T ⊙ W u``: the unknown on the image grid, tapered to 0 over the PSF's width
    at the image's edges, where the crop ``W`` and the blur do not commute (``u`` itself
    when periodic: the circular blur is self-adjoint on the image's grid)."""
    if term.boundary == "periodic":
        return term.to_image_grid
    window = edge_taper(backend.xp, f5.shape, h5.shape)
    return lambda u: window * term.to_image_grid(u)


# --------------------------------------------------------------------------- inpainting
class _Inpainting(Diagonal):
    """``½‖m ⊙ (u − f)‖²`` (m = 1 on known pixels), started from a fill of
    the holes rather than from zeros."""

    arrays = ("f", "m", "fill")

    def __init__(self, m, f, fill):
        super().__init__(m, f)
        self.fill = fill

    def start(self):
        return self.fill


def _check_mask(mask, image_shape, channel_axis):
    """The missing-pixel mask as a bool array of ``image_shape``."""
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        mask = np.asarray(mask)
    if mask.dtype != bool:
        if mask.dtype.kind not in "iuf":
            raise TypeError(f"mask must be a bool array (True = missing), got "
                            f"mask.dtype={mask.dtype}")
        if not ((mask == 0) | (mask == 1)).all():
            raise ValueError("mask must be bool or hold only 0 and 1 (1 = missing)")
        mask = mask != 0
    shape = tuple(image_shape)
    if tuple(mask.shape) != shape:
        spatial_shape = tuple(n for a, n in enumerate(shape)
                              if channel_axis is None or a != channel_axis % len(shape))
        if channel_axis is None or tuple(mask.shape) != spatial_shape:
            raise ValueError(
                f"mask must have the image's shape {shape}"
                + ("" if channel_axis is None else f" or its spatial shape {spatial_shape}")
                + f", got mask.shape={tuple(mask.shape)}")
        mask = mask.reshape(tuple(1 if a == channel_axis % len(shape) else n
                                  for a, n in enumerate(shape)))
    if bool(mask.all()):
        raise ValueError("mask marks every pixel as missing: nothing to inpaint from")
    return mask


def inpaint_tv_beta(image, mask, weight: float = INPAINT_WEIGHT, beta: float = 1.0, *,
                    eps: float = 1e-3, max_num_iter: int | None = None,
                    channel_axis: int | None = None, isotropic: bool = True,
                    smoothing: float = 0.0, spacing=1.0, method: str = "auto",
                    device: str | None = None, return_info: bool = False, callback=None):
    r"""β-TV inpainting: fill the masked pixels of an image.

    .. math::

        u^* = \operatorname*{argmin}_u \; \tfrac12 \sum_{p \notin \text{mask}}
              (u_p - f_p)^2 + \text{weight} \cdot TV_\beta(u)

    and returns it with the known pixels restored exactly
    (``u[~mask] = image[~mask]``).

    Parameters
    ----------
    image : ndarray
        2-D image or 3-D volume (more axes work too), optionally with a
        channel axis.  Values under the mask are ignored (they may be NaN).
        Integer and bool images are converted with
        :func:`skimage.util.img_as_float`; float32 stays float32.  Never
        modified.
    mask : ndarray of bool
        True (or 1) where a pixel is missing, as in
        :func:`skimage.restoration.inpaint_biharmonic`.  The image's shape, or,
        with ``channel_axis``, its spatial shape (the same pixels missing in
        every channel).  At least one pixel must be known.
    weight : float, optional
        TV weight ``>= 0``.  The default, :data:`INPAINT_WEIGHT` = 0.01, suits
        noise-free images in [0, 1]: the known pixels are kept, so the weight
        only sets how far the fill may pull on them while converging; raise
        it for noisy images.
    beta : float, optional
        Order β > 0 of the TV term (see :func:`tvnumba.denoise_tv_beta`).
    eps, max_num_iter, channel_axis, isotropic, smoothing, spacing, method, device, return_info, callback
        As in :func:`tvnumba.denoise_tv_beta` (``method="dct"`` excepted).

    Returns
    -------
    u : ndarray
        The inpainted image, same shape as ``image``, equal to it on the
        known pixels.
    info : SolveInfo
        Only with ``return_info=True`` (for the solve, before the known
        pixels are restored).

    Raises
    ------
    ValueError
        A mask of the wrong shape, with values other than 0/1, or with every
        pixel missing; NaN/Inf on a known pixel; bad options.
    TypeError
        A mask that is not boolean or numeric.

    See Also
    --------
    skimage.restoration.inpaint_biharmonic, solve_tv_beta

    Notes
    -----
    The data term is ``A = diag(m)``, ``m = ~mask``, whose proximal step is
    a division per pixel: with β = 1 ``method="auto"`` runs primal-dual with
    it, stopping on the duality gap on the box ``[min f, max f]`` of the
    known pixels that holds the minimiser (a bound), other β as in
    :func:`solve_tv_beta`.  The first iterate fills the holes by pull-push
    [2]_, a smooth fill from the nearest known pixels.

    With β = 1 the minimiser is not unique in general: where a hole leaves
    the level lines free, every monotone fill has the same TV.  β > 1 (or
    ``smoothing > 0``) makes the fill unique and smoother; β < 1 favours
    sharp, straight edges across holes.  See :doc:`/inverse_problems`.

    References
    ----------
    .. [1] T. F. Chan and J. Shen, "Mathematical models for local nontexture
       inpaintings", SIAM J. Appl. Math. 62 (2002), 1019-1043.
    .. [2] S. J. Gortler, R. Grzeszczuk, R. Szeliski and M. F. Cohen, "The
       lumigraph", Proc. SIGGRAPH 1996, 43-54 (the pull-push fill).

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.restoration import inpaint_tv_beta
    >>> rng = np.random.default_rng(0)
    >>> clean = np.zeros((40, 40)); clean[10:30, 5:25] = 1.0
    >>> mask = rng.random(clean.shape) < 0.5
    >>> damaged = np.where(mask, np.nan, clean)
    >>> u, info = inpaint_tv_beta(damaged, mask, return_info=True)
    >>> info.method, bool(np.array_equal(u[~mask], clean[~mask]))
    ('cp', True)
    >>> bool(np.abs(u - clean)[mask].mean() < 0.05)
    True
    """
    weight = check_nonneg("weight", no_auto_weight(weight, "inpaint_tv_beta"))
    check_bool("return_info", return_info)
    backend, f, plan = prepare(image, beta, device=device, channel_axis=channel_axis,
                               spacing=spacing, isotropic=isotropic, smoothing=smoothing)
    missing = backend.bring(_check_mask(mask, f.shape, channel_axis))
    xp = backend.xp
    known = xp.broadcast_to(~missing, f.shape)
    f = xp.where(known, f, f.dtype.type(0))  # a copy: the holes' values never matter
    backend.check_finite(f, "image (on the known pixels)")
    f5 = backend.canonical(f, plan)
    known5 = backend.canonical(xp.ascontiguousarray(known), plan)
    m5 = known5.astype(plan.dtype)
    term = _Inpainting(m5, f5, backend.ops.pull_push_fill(f5, known5))
    u5, info = solve(term, weight, backend=backend, plan=plan, method=method, eps=eps,
                     max_num_iter=max_num_iter, callback=callback)
    u = finish(backend, plan, xp.where(known5, f5, backend.wrap(u5)))
    return (u, info) if return_info else u

