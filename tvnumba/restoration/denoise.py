"""β-order total-variation denoising (scikit-image style)."""

from __future__ import annotations

from .._validate import check_bool
from ..backends import is_dask_array
from ._core import check_weight, denoise

__all__ = ["denoise_tv_beta"]


def denoise_tv_beta(image, weight: float | str = 0.1, beta: float = 1.0, *, eps: float = 1e-3,
                    max_num_iter: int | None = None, channel_axis: int | None = None,
                    isotropic: bool = True, smoothing: float = 0.0, spacing=1.0,
                    method: str = "auto", device: str | None = None,
                    return_info: bool = False, callback=None, depth=None,
                    noise: str = "gaussian", background=0.0):
    r"""β-order total-variation denoising, solved to a certified tolerance.

    .. math::

        u^* = \operatorname*{argmin}_u \; \tfrac12 \|u - f\|_2^2
              + \text{weight} \cdot TV_\beta(u)

    with :math:`TV_\beta` as in :func:`tvnumba.tv`.  For ``beta=1``: the problem
    of :func:`skimage.restoration.denoise_tv_chambolle`, same ``weight`` scale.
    With ``noise="poisson"`` the data term is :math:`KL(u + b; f)`, ``u ≥ 0`` (Notes).

    Parameters
    ----------
    image : ndarray
        1-D signal, 2-D image, 3-D volume (or more axes), optionally with a
        channel axis; NumPy, CuPy or Dask.  Integer and bool images go
        through :func:`skimage.util.img_as_float` (counts with
        ``noise="poisson"``: unscaled).  Never modified.
    weight : float or "auto", optional
        Denoising weight ``>= 0``: larger removes more.  ``"auto"``: chosen
        by Stein's (Poisson: PURE) unbiased risk estimate (see Notes).
    beta : float, optional
        Order β > 0: 1 classic TV, 2 quadratic (Tikhonov), < 1 non-convex.
    eps : float, optional
        Tolerance ``> 0`` on ``SolveInfo.gap`` (β ≥ 1: bounds ``(F(u) − F*)/F*``).
    max_num_iter : int, optional
        Iteration cap ``>= 1`` (outer steps for ``"mm"``).  ``None``:
        ``max(10000, 50/√eps)`` for ``"cp"``, 3000 for ``"lbfgs"``, 200 for ``"mm"``.
    channel_axis : int, optional
        Axis of colour channels, coupled in the norm; ``None`` for grayscale.
    isotropic : bool, optional
        Isotropic (default) or anisotropic TV, as in :func:`tvnumba.tv`.
    smoothing : float, optional
        ``s >= 0`` in ``(|∇u|² + s²)^(β/2)``; for β < 1, ``0`` means a small internal value.
    spacing : float or sequence of float, optional
        Grid spacing, one value or one per spatial axis.
    method : {"auto", "cp", "lbfgs", "mm", "dct"}, optional
        ``"auto"``: ``"cp"`` for β = 1 without smoothing, ``"dct"`` for
        β = 2, ``"lbfgs"`` for other β ≥ 1, ``"mm"`` for β < 1.
    device : {None, "cpu", "cuda"}, optional
        ``None`` runs where ``image`` lives (a CuPy array: on the GPU).
        ``"cuda"`` moves a NumPy image to the GPU and the result back.
    return_info : bool, optional
        Also return a :class:`~tvnumba.SolveInfo`.
    callback : callable, optional
        ``callback(iteration, u, objective)`` at every convergence check; ``True`` stops.
    depth : int or sequence of int, optional
        Dask arrays only: each chunk's halo (default :func:`tvnumba.dask.default_depth`);
        for β < 1 without ``depth`` the whole array is solved, without seams.
    noise : {"gaussian", "poisson"}, optional
        ``"poisson"``: ``image`` holds photon counts ``>= 0`` (β ≥ 1 without smoothing,
        ``"cp"``).
    background : float or ndarray, optional
        Poisson only: the known background ``b >= 0`` in counts (dark current, offset).

    Returns
    -------
    u : ndarray
        ``image``'s shape and kind of array; float32 for float16/float32
        input, float64 otherwise; in counts with ``noise="poisson"``.
    info : SolveInfo
        Only with ``return_info=True``.

    Raises
    ------
    ValueError
        A bad ``weight``, ``beta``, ``eps``, axis, ``spacing``, ``method`` or
        ``noise``; an empty or non-finite ``image``; negative counts; ``"auto"``
        on a noise-free image.
    TypeError
        ``weight`` not a number or string; ``return_info``/``callback`` with Dask.

    See Also
    --------
    skimage.restoration.denoise_tv_chambolle : β = 1 on the same weight scale.
    tvnumba.deconvolve_tv_beta : with a blur, and the same noise models.

    Notes
    -----
    ``"cp"`` is accelerated Chambolle-Pock [1]_: its relative duality gap
    bounds the objective error.  Poisson: :math:`KL(u + b; f) = \sum u + b - f
    - f \log((u + b)/f)`, solved by preconditioned primal-dual with a duality gap
    on a set that holds the minimiser (:doc:`/maths`).  Other methods and caps:
    :doc:`/solvers`.

    ``weight="auto"`` (Gaussian) assumes white noise of level σ, estimated by
    :func:`skimage.restoration.estimate_sigma`, and minimises over :math:`\log w`
    the Monte-Carlo SURE [2]_ of the denoiser :math:`D_w`,
    :math:`\|D_w(f) - f\|^2 - N\sigma^2 + 2\sigma^2 \operatorname{div} D_w(f)`
    (about 17 solves); Poisson: PURE, its analogue for counts.  :doc:`/choosing`.

    References
    ----------
    .. [1] A. Chambolle and T. Pock, "A first-order primal-dual algorithm for
       convex problems with applications to imaging", J. Math. Imaging Vis.
       40 (2011), 120-145.
    .. [2] S. Ramani, T. Blu and M. Unser, "Monte-Carlo SURE: a black-box
       optimization of regularization parameters for general denoising
       algorithms", IEEE Trans. Image Process. 17 (2008), 1540-1554.

    Examples
    --------
    >>> import numpy as np
    >>> from tvnumba.restoration import denoise_tv_beta
    >>> rng = np.random.default_rng(0)
    >>> clean = np.zeros((64, 64)); clean[16:48, 16:48] = 1.0
    >>> noisy = clean + 0.2 * rng.standard_normal(clean.shape)
    >>> u, info = denoise_tv_beta(noisy, weight=0.2, return_info=True)
    >>> info.method, info.converged, bool(info.gap <= 1e-3)
    ('cp', True, True)
    >>> _, info = denoise_tv_beta(noisy, weight="auto", return_info=True)
    >>> round(info.sigma, 1), bool(0.05 < info.weight < 0.5)  # σ and the chosen weight
    (0.2, True)
    >>> counts = rng.poisson(5 * clean + 1)  # photons: 6 in the square, 1 outside
    >>> u, info = denoise_tv_beta(counts, weight=0.5, noise="poisson", return_info=True)
    >>> info.converged, bool(u.min() >= 0), round(float(u[32, 32]))
    (True, True, 6)
    """
    check_bool("return_info", return_info)
    kw = dict(eps=eps, max_num_iter=max_num_iter, channel_axis=channel_axis,
              isotropic=isotropic, smoothing=smoothing, spacing=spacing, method=method,
              device=device, noise=noise, background=background)
    if is_dask_array(image):
        if return_info or callback is not None:
            raise TypeError("return_info and callback are not supported for Dask arrays "
                            "(each chunk is solved separately, lazily)")
        from .. import dask as tv_dask

        return tv_dask.denoise_chunked(image, denoise, check_weight(weight), beta, depth=depth,
                                       **kw)
    if depth is not None:
        raise ValueError(f"depth applies to Dask arrays only (their chunks' halo), got "
                         f"depth={depth!r} for a {type(image).__name__}")
    u, info = denoise(image, weight, beta, callback=callback, **kw)
    return (u, info) if return_info else u
