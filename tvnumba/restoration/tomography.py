"""Parallel-beam tomographic reconstruction with a β-TV prior (sparse-angle CT)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from .._validate import check_bool, make_plan
from ..backends import select
from ..operators.radon import (
    RadonGeometry,
    RadonTerm,
    _adjoint_shape,
    _check_theta,
    _device_float_array,
    _float_array,
)
from ..solvers import solve
from ._core import check_weight
from .auto_weight import choose_inverse_weight

__all__ = ["reconstruct_tv_beta"]

#: Default ``weight``: the best PSNR for a 64² Shepp-Logan phantom with 1 % noise
#: at 30-60 angles (see the docstring's Notes and benchmarks/bench_ct.py).
DEFAULT_WEIGHT = 0.01


def reconstruct_tv_beta(sinogram, theta=None, weight: float = DEFAULT_WEIGHT,
                        beta: float = 1.0, *, circle: bool = True, eps: float = 1e-3,
                        max_num_iter: int | None = None, isotropic: bool = True,
                        smoothing: float = 0.0, method: str = "auto",
                        device: str | None = None, return_info: bool = False, callback=None):
    r"""Reconstruct an image from a parallel-beam sinogram with a β-TV prior.

    Finds

    .. math::

        u^* = \operatorname*{argmin}_u \; \frac{1}{2\,n_\theta}
              \|A u - f\|_2^2 + \text{weight} \cdot TV_\beta(u)

    where :math:`A` is :func:`tvnumba.operators.radon` (the geometry of
    :func:`skimage.transform.radon`), :math:`f` the sinogram,
    :math:`n_\theta` the number of angles and :math:`TV_\beta` as in
    :func:`tvnumba.tv`.  Few angles or noisy projections make filtered back
    projection streaky; a TV prior recovers piecewise-constant images from
    far less data.

    Parameters
    ----------
    sinogram : (P, n_angles) ndarray
        Projections, detector bins along axis 0 (the output of
        :func:`skimage.transform.radon`).  float32 stays float32; integers
        become float64 (unscaled).  Never modified.  A device array (CuPy,
        Numba, anything with ``__cuda_array_interface__``; float32 or
        float64) is reconstructed on the GPU (see ``device``).
    theta : array_like, optional
        Angles in degrees, one per column.  ``None``:
        ``np.linspace(0, 180, n_angles, endpoint=False)``, as
        :func:`skimage.transform.iradon`.
    weight : float or "auto", optional
        TV weight ``>= 0`` on the angle-normalised data term (see Notes).
        ``"auto"`` estimates the sinogram's noise level and picks the weight
        by generalised cross-validation of the predicted sinogram (see
        Notes); the choice is reported in ``info.weight`` and ``info.sigma``.
    beta : float, optional
        Order β > 0 of the TV term, as in :func:`tvnumba.denoise_tv_beta`.
    circle : bool, optional
        As in :func:`skimage.transform.radon`: ``True`` when the sinogram was
        taken with ``circle=True`` (image of side ``P``), ``False`` when the
        image was padded to its diagonal (the image side is recovered from
        ``P``).
    eps : float, optional
        Stopping tolerance ``> 0`` on ``info.gap`` (see Notes).
    max_num_iter : int, optional
        Iteration cap ``>= 1``.  ``None``: as in
        :func:`tvnumba.denoise_tv_beta` (``max(10000, 50/√eps)`` for ``"cp"``,
        3000 for ``"lbfgs"``, 200 for ``"mm"``).
    isotropic : bool, optional
        Isotropic (default) or anisotropic TV.
    smoothing : float, optional
        ``s >= 0`` in ``(|∇u|² + s²)^(β/2)``, as in :func:`tvnumba.denoise_tv_beta`.
    method : {"auto", "cp", "lbfgs", "mm"}, optional
        ``"auto"``: ``"cp"`` for β = 1 without smoothing, ``"lbfgs"`` for
        other β ≥ 1, ``"mm"`` for β < 1.
    device : {None, "cpu", "cuda"}, optional
        ``None`` runs where the sinogram lives.  A device sinogram is
        reconstructed on the GPU end to end: the projector pair is the CUDA
        kernels of :func:`tvnumba.operators.radon` (the CPU pair to rounding),
        the solvers' vector work runs in CuPy and the TV terms in the CUDA
        kernels; only scalars come to the host.  The image is a CuPy array (a
        Numba device array in gives one out).  ``"cuda"`` moves a NumPy
        sinogram to the GPU and the image back; ``"cpu"`` refuses device
        arrays.  The GPU path needs CuPy (the ``cuda`` extra).
    return_info : bool, optional
        Also return a :class:`tvnumba.SolveInfo`.
    callback : callable, optional
        ``callback(iteration, u, objective)`` at every convergence check, with
        the current image (do not modify it); returning ``True`` stops.

    Returns
    -------
    image : (N, N) ndarray
        The reconstruction; float32 for float32 input, float64 otherwise; the
        kind of array of ``sinogram`` (NumPy with ``device="cuda"``).
    info : SolveInfo
        Only with ``return_info=True``; ``info.objective`` is the objective
        above, with the :math:`1/n_\theta` factor; ``info.weight`` the weight
        used, ``info.sigma`` the estimated noise level of the sinogram (per
        bin, unscaled) with ``weight="auto"`` (else ``None``).

    Raises
    ------
    ValueError
        ``sinogram`` not 2-D, empty or not finite; ``len(theta)`` not
        ``sinogram.shape[1]``; ``circle=False`` with a number of detector
        bins no square image has; a bad ``weight``, ``beta``, ``eps``,
        ``method`` (or one that cannot solve the problem, e.g. ``"dct"``);
        a device array with ``device="cpu"``.
    TypeError
        Non-numeric arguments; a device sinogram that is not float32 or
        float64.
    RuntimeError
        The GPU path without a CUDA GPU or without CuPy.

    See Also
    --------
    skimage.transform.iradon : filtered back projection.
    skimage.transform.iradon_sart : algebraic reconstruction.
    tvnumba.operators.radon_adjoint : the adjoint of the projector.

    Notes
    -----
    The data term is divided by the number of angles: :math:`A^T A / n_\theta`
    is a Riemann sum over the angles of the continuous normal operator of the
    Radon transform, which does not depend on how many angles sample it, so
    the best ``weight`` for a given image and per-bin noise level moves little
    with :math:`n_\theta`.  Measured on Shepp-Logan with Gaussian noise of
    1 % of the sinogram's maximum (best of a coarse grid, PSNR): at 64², 0.003-0.01
    for 30, 60 and 120 angles (the default, 0.01, is within 0.1 dB of the best
    at 30 and 60 angles); at 128² and 30 angles 0.03; at 256², 0.06 (60 angles)
    to 0.12 (30 angles, the top of the grid tried).
    The best weight grows with the noise level and with the image side ``N``
    (each bin sums ``N`` pixels, and this noise is relative to the sinogram's
    maximum, so it grows with ``N`` too): scale it up for larger images.

    ``weight="auto"`` assumes additive white Gaussian noise on the sinogram.
    σ is estimated from it by finest-scale wavelet MAD, as in
    :func:`tvnumba.denoise_tv_beta`; the phantom's edges leave signal in those
    coefficients, so σ̂ is high (by 16-19 % on Shepp-Logan 128², 1 % noise).
    The weight minimises the generalised cross-validation of the predicted
    data, :math:`\mathrm{GCV}(w) = (\|A u_w - f\|^2/M) / (1 - \mathrm{df}_w/M)^2`
    on the angle-normalised data (:math:`M` bins), the degrees of freedom
    :math:`\mathrm{df}_w = \operatorname{div}(A u_w)` estimated with one fixed
    Gaussian probe as in :func:`tvnumba.deconvolve_tv_beta` (step 0.01 σ̂),
    by the same search (a grid of ratio 2 walked downhill from the
    denoising starting weight at the noise level of the scaled data
    :math:`\hat\sigma/\sqrt{n_\theta}` and the range of the first iterate,
    then bounded Brent; 16 solves at ``eps=1e-3`` plus the final one).  GCV
    does not use σ̂, so its bias does not move the weight: the predicted-risk
    SURE of :func:`tvnumba.deconvolve_tv_beta` with σ̂ chose twice the best
    weight and lost 0.5 dB on the 128² cases below (with the true σ it was
    within 0.1 dB).  Measured (``benchmarks/bench_auto_ct.py``; Shepp-Logan,
    noise 1 % of the sinogram's maximum, β = 1): at 128² the PSNR is 0.01 dB
    (30 angles) and 0.00 dB (60 angles) below the best weight's (sweep refined
    by Brent, same ``eps``), at 15-20 times the cost of one solve.

    The operator :math:`A` is a sum of bilinear samples along each ray (the
    rotation-and-sum of :func:`skimage.transform.radon`), and the solvers use
    it and its exact transpose only:

    ``"cp"``
        Chambolle-Pock with both the TV term and the data term dualised
        (:math:`K = [D; A/\sqrt{n_\theta}]`, ``‖A‖`` by power iteration).
        ``info.gap`` is the relative primal step
        :math:`\|u_k - u_{k-1}\| / \|u_k\|` (checked every 5 iterations), a
        residual: the data term is not strongly convex, so no cheap bound on
        the objective error exists.
    ``"lbfgs"``
        L-BFGS with a float64 iterate; ``info.gap`` is
        :math:`\tfrac12\|\nabla F\|^2 / (F - \tfrac12\|\nabla F\|^2)`, a
        relative stationarity measure (not a bound, for the same reason).
    ``"mm"``
        Majorize-minimize with conjugate gradients on the normal equations,
        for β < 1 (non-convex: a local minimiser near the first iterate).

    Every method starts from the back projection :math:`A^T f`, rescaled to
    fit the data in the least-squares sense.

    On the GPU the iterates follow the CPU's: the projector pair agrees with
    the CPU pair to rounding (the adjoint is a deterministic gather, no
    atomics) and the solvers run the same steps, so the results differ by
    rounding amplified by the iterations (well below ``eps``), not by method.

    References
    ----------
    .. [1] E. Y. Sidky and X. Pan, "Image reconstruction in circular cone-beam
       computed tomography by constrained, total-variation minimization",
       Phys. Med. Biol. 53 (2008), 4777-4807.
    .. [2] A. Chambolle and T. Pock, "A first-order primal-dual algorithm for
       convex problems with applications to imaging" (2011): the β = 1
       solver, as in :func:`tvnumba.solve_tv_beta`.

    Examples
    --------
    >>> import numpy as np
    >>> from skimage.data import shepp_logan_phantom
    >>> from skimage.transform import rescale
    >>> from tvnumba.operators import radon
    >>> from tvnumba.restoration import reconstruct_tv_beta
    >>> image = rescale(shepp_logan_phantom(), 0.1)  # 40 x 40
    >>> theta = np.linspace(0.0, 180.0, 20, endpoint=False)
    >>> sinogram = radon(image, theta)
    >>> u, info = reconstruct_tv_beta(sinogram, theta, return_info=True)
    >>> u.shape, info.method, info.converged
    ((40, 40), 'cp', True)
    >>> bool(np.abs(u - image).mean() < 0.05)
    True
    """
    weight = check_weight(weight)
    check_bool("return_info", return_info)
    backend = select(sinogram, device, solver=True)
    if backend.name == "cuda" and not backend.host:
        sino = _device_float_array(sinogram, "sinogram", 2)
    else:
        sino = _float_array(sinogram, "sinogram", 2, scale_ints=False)
    n_det, n_ang = sino.shape
    theta = _check_theta(np.linspace(0.0, 180.0, n_ang, endpoint=False)
                         if theta is None else theta)
    if len(theta) != n_ang:
        raise ValueError(f"theta must have one angle per sinogram column: len(theta)="
                         f"{len(theta)} but sinogram.shape[1]={n_ang}")
    geom = RadonGeometry.create(_adjoint_shape(None, n_det, circle), theta, circle)
    shell = np.empty(geom.shape, sino.dtype)
    plan = make_plan(shell, beta, isotropic=isotropic, smoothing=smoothing, name="image")
    backend = backend.for_plan(plan)
    scale = 1.0 / math.sqrt(n_ang)
    term = RadonTerm(geom, backend.bring(sino), scale=scale)
    sigma = None
    if weight == "auto":
        weight, sigma = _auto_weight(geom, sino, scale, plan, backend, method=method,
                                     max_num_iter=max_num_iter)
    u5, info = solve(term, weight, backend=backend, plan=plan, method=method, eps=eps,
                     max_num_iter=max_num_iter, callback=callback)
    info = dataclasses.replace(info, weight=weight, sigma=sigma)
    if backend.name == "cuda":
        u = backend.result(backend.as_compute(plan.from_canonical(backend.wrap(u5)),
                                              sino.dtype).copy())
    else:
        u = np.array(plan.from_canonical(u5), dtype=sino.dtype, copy=True)
    return (u, info) if return_info else u


#: The starting weight of ``weight="auto"`` relative to denoising's
#: (:func:`~tvnumba.restoration.auto_weight.initial_guess` at the noise level of the
#: angle-normalised data, ``σ̂/√n_angles``, and the range of the first iterate):
#: 1, because that guess was already within a factor 1.5 of the best weights of
#: benchmarks/bench_auto_ct.py (Shepp-Logan 128², 30 and 60 angles, 1 % noise),
#: which the search's downhill walk absorbs.
CT_GUESS_SCALE = 1.0


def _auto_weight(geom, sino, scale, plan, backend, *, method, max_num_iter):
    """``(weight, sigma)`` for ``weight="auto"``: σ of the sinogram (white noise
    per bin) by wavelet MAD, the weight by predicted-risk SURE on the
    angle-normalised data (:func:`~tvnumba.restoration.auto_weight.choose_inverse_weight`)."""
    sino_plan = make_plan(np.empty(sino.shape, np.float64), plan.beta, name="sinogram")
    f5 = backend.xp.ascontiguousarray(backend.bring(sino).reshape((1, 1, 1) + sino.shape))
    shape = sino.shape

    def make_term(g):
        return RadonTerm(geom, g.reshape(shape), scale=scale)

    start = make_term(f5.astype(np.float64)).bind(backend)
    weight, sigma, _ = choose_inverse_weight(
        make_term, f5, sino_plan, plan, backend, method=method, max_num_iter=max_num_iter,
        guess_scale=CT_GUESS_SCALE, data_scale=scale, value_range=start.range_hint(),
        gcv=True)
    return weight, sigma
