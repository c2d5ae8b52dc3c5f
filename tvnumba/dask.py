"""β-TV, TV denoising and deconvolution of Dask arrays, chunk by chunk (``pip install
tvnumba[dask]``).

:func:`tvnumba.tv`, :func:`~tvnumba.tv_grad` and :func:`~tvnumba.tv_value_and_grad` on Dask
arrays are **exact**: they give the in-memory result (to float64 rounding in the sum of the chunks' parts).  Each chunk is
extended by one pixel on every spatial side that has a neighbour (``depth=1``,
``boundary="none"``: the array's own edges keep their Neumann boundary), then

* the value: a chunk counts the terms of the pixels it owns -- each pixel's term uses
  its forward differences, so it needs the next pixel, which the high-side halo holds.
  Running the kernel on (owned pixels + high halo) also counts the halo's own terms;
  those sit on the "upper faces" of that box, and a face's terms are exactly the TV of
  the face alone (its differences across the face are zero in both), so they are
  removed by inclusion-exclusion over the faces (2^k kernel calls for k halo axes,
  all but one on slabs);
* the gradient at a pixel ``p`` is ``Σ_d (w D_d u)(p − e_d) − (w D_d u)(p)`` (divided
  by ``h_d``): it reads the weight ``w`` of the previous pixel along each axis, which
  needs that pixel's forward neighbours -- all inside the depth-1 halo, corners
  included -- so the kernel on the extended chunk is exact on the owned pixels, and
  the halo is cut off.

:func:`denoise_tv_beta` is not separable: the solution at a pixel depends on the whole
image, with an influence that decays with distance.  Each chunk is solved with a halo of
``depth`` pixels and cut back.  The seam error -- the largest difference to the
whole-image solution on [0, 1] images, both solved to ``eps=1e-6`` (the Dask suite of
``benchmarks/``):

* β = 2 (linear): the influence decays like ``exp(−r/ℓ)`` with ``ℓ = √(2·weight)/h``;
  < 1e-9 from depth 16 at weights 0.05-0.3;
* β = 1: TV's influence is long-range (a flat region's level depends on the whole
  region), so the depth must grow with the weight: on camera 1024² in chunks of 256,
  depth 64 gives 6e-4 at weight 0.05 but 6e-3 at weight 0.3, which needs depth 160
  (7e-4);
* β < 1 (non-convex): no depth brings it below 1e-3, because each chunk's solver
  reaches another local minimiser near the input (camera 1024², weight 0.05: pixels
  differ by up to 0.2 while the objective is within 0.1 %: as good, not the same).
  So, unless ``depth`` is given, β < 1 solves the whole array as one lazy task that
  concatenates the chunks and runs the in-memory solver: its result bit for bit.  That
  needs one process that holds the image: always on a local scheduler (threads, sync,
  processes; the image must fit this process's memory), and on a ``dask.distributed``
  cluster when a worker's ``memory_limit`` holds 20× the image (:func:`_one_task_fits`).
  Where no worker can, it raises ``ValueError``: pass ``depth=`` to solve chunk by chunk
  (each chunk's own local minimiser), or give the workers more memory.

:func:`deconvolve_chunked` (``tvnumba.deconvolve_tv_beta`` of a Dask array) solves each chunk
with its halo under the ``"extend"`` boundary; its default halo is the denoising one plus the
PSF's extent (camera 512², a 15×15 Gaussian PSF, weight 0.001: within 3.2e-3 of the whole
image's result at eps = 1e-6, where the whole image's own results at eps 1e-5 and 1e-6
differ by 4.6e-2).

The default depth (:func:`default_depth`) follows these measurements: ``16 ∨ ⌈8ℓ⌉`` for
β ≥ 2 and ``32 ∨ ⌈64 √(weight / (0.05 h))⌉`` below (about 91 at weight 0.1, 157 at 0.3),
for data on a [0, 1] scale; where a chunk is shorter than that, the chunk's length is
used, with a warning.

Everything is lazy: the functions return Dask arrays (the value a 0-d one, or one value
per batch item with ``reduction="none"``), so ``dask.compute(value, grad)`` shares the
halo exchange.  Every chunk runs the tvnumba kernels with the worker's threads; on a
``distributed`` cluster, keep ``workers × threads per worker × tvnumba threads`` within
the cores (``tvnumba.set_num_threads`` or ``NUMBA_NUM_THREADS`` in the workers).
"""

from __future__ import annotations

import itertools
import numbers
from dataclasses import replace

import numpy as np

from ._validate import float_dtype, make_plan, normalize_axis
from ._tv_core import tv_planned
from .backends import is_dask_array
from .solvers import smoothing_for_range

__all__ = ["tv_value_and_grad", "denoise_chunked", "deconvolve_chunked", "is_dask_array",
           "default_depth", "deconvolve_depth"]

#: The weight :func:`default_depth` assumes for ``weight="auto"`` (noise σ ≈ 0.1 on [0, 1]).
AUTO_WEIGHT_FOR_DEPTH = 0.1

#: ``weight="auto"`` chooses one weight for the whole array: the in-memory choice on a
#: central sample of at most this many values (1024², or about 101³).
AUTO_SAMPLE_SIZE = 2**20


def default_depth(weight, beta: float, spacing=1.0) -> int:
    """The halo (pixels per chunk side) that :func:`tvnumba.denoise_tv_beta` gives a Dask
    array's chunks by default: the seam error stays below 1e-3 on [0, 1] data.

    ``max(16, ⌈8 √(2·weight) / h⌉)`` for β ≥ 2 (the decay length of the linear
    problem, 8 times), ``max(32, ⌈64 √(weight / (0.05·h))⌉)`` for β < 2 (measured at
    β = 1: 64 pixels at weight 0.05, 160 at 0.3, on camera 1024² in chunks of 256);
    ``h`` is the smallest spacing.  β < 1 has no such bound (see the module docstring).

    Examples
    --------
    >>> from tvnumba.dask import default_depth
    >>> default_depth(0.1, 1.0), default_depth(0.3, 1.0), default_depth(0.1, 2.0)
    (91, 157, 16)
    """
    w = AUTO_WEIGHT_FOR_DEPTH if isinstance(weight, str) else float(weight)
    h = float(np.min(spacing))
    if beta >= 2:
        return max(16, int(np.ceil(8 * np.sqrt(2 * w) / h)))
    return max(32, int(np.ceil(64 * np.sqrt(w / (0.05 * h)))))


def _roles(x, axes, channel_axis) -> tuple[tuple[int, ...], int | None]:
    """The spatial axes and the channel axis of ``x`` (already validated by make_plan)."""
    ndim = x.ndim
    if channel_axis is not None:
        channel_axis = normalize_axis(channel_axis, ndim, "channel_axis")
    if axes is None:
        spatial = tuple(a for a in range(ndim) if a != channel_axis)
    else:
        raw = (axes,) if np.ndim(axes) == 0 else tuple(axes)
        spatial = tuple(sorted(normalize_axis(a, ndim, "axes") for a in raw))
    return spatial, channel_axis


def _prepare(u, beta, axes, channel_axis, spacing, isotropic, smoothing, reduction):
    import dask.array as da

    if not isinstance(u, da.Array):
        u = da.asarray(u)
    plan = make_plan(u, beta, axes=axes, channel_axis=channel_axis, spacing=spacing,
                     isotropic=isotropic, smoothing=smoothing, reduction=reduction)
    spatial, channel = _roles(u, axes, channel_axis)
    if channel is not None and u.numblocks[channel] > 1:
        u = u.rechunk({channel: -1})  # channels are coupled inside the norm
    return u, plan, spatial, channel


def _extended(u, spatial):
    import dask.array as da

    return da.overlap.overlap(u, depth={d: 1 for d in spatial},
                              boundary={d: "none" for d in spatial}, allow_rechunk=False)


def _block_value(block, block_info=None, *, spatial, batch, plan, device):
    """This chunk's share of the per-batch TV (keepdims on every non-batch axis)."""
    info = block_info[0]
    loc, nblocks = info["chunk-location"], info["num-chunks"]
    low = tuple(slice(1, None) if d in spatial and loc[d] > 0 else slice(None)
                for d in range(block.ndim))
    e = block[low]  # owned pixels + the high-side halo
    high = [d for d in spatial if loc[d] < nblocks[d] - 1]
    total = 0.0
    for k in range(len(high) + 1):
        for faces in itertools.combinations(high, k):
            sub = e[tuple(slice(-1, None) if d in faces else slice(None)
                          for d in range(e.ndim))]
            value, _ = tv_planned(sub, plan.for_block(sub, reduction="none"),
                                  want_grad=False, device=device)
            total = total + (-1) ** k * value
    shape = tuple(block.shape[d] if d in batch else 1 for d in range(block.ndim))
    return np.asarray(total, dtype=np.float64).reshape(shape)


def _lazy_value(ext, u, plan, spatial, channel, device):
    batch = tuple(d for d in range(u.ndim) if d not in spatial and d != channel)
    chunks = tuple(u.chunks[d] if d in batch else (1,) * u.numblocks[d]
                   for d in range(u.ndim))
    parts = ext.map_blocks(_block_value, spatial=spatial, batch=batch, plan=plan,
                           device=device, chunks=chunks, dtype=np.float64,
                           meta=np.empty((0,) * u.ndim, np.float64))
    per_batch = parts.sum(axis=tuple(d for d in range(u.ndim) if d not in batch))
    if plan.reduction == "none":
        return per_batch
    return per_batch.sum() * plan.scale()


def _block_grad(block, *, plan, device, scale):
    _, g = tv_planned(block, plan.for_block(block, reduction="sum"), want_grad=True,
                      device=device)
    if scale != 1.0:
        g = g * plan.dtype.type(scale)
    return g.astype(plan.dtype, copy=False)


def _lazy_grad(ext, plan, spatial, device):
    import dask.array as da

    g = ext.map_blocks(_block_grad, plan=plan, device=device, scale=plan.scale(),
                       dtype=plan.dtype,
                       meta=np.empty((0,) * ext.ndim, plan.dtype))
    return da.overlap.trim_internal(g, {d: 1 for d in spatial},
                                    boundary={d: "none" for d in spatial})


def tv_value_and_grad(u, beta: float = 1.0, *, axes=None, channel_axis: int | None = None,
                      spacing=1.0, isotropic: bool = True, smoothing: float = 0.0,
                      reduction: str = "sum", device: str | None = None, _want=(True, True)):
    """:func:`tvnumba.tv` and :func:`tvnumba.tv_grad` of a Dask array from one halo
    exchange, exact and lazy.  The public functions call it for Dask arrays
    (``tvnumba.tv(dask_array)`` is this, lazily).

    Parameters
    ----------
    u : dask.array.Array
        Any chunking; the channel axis is rechunked to one chunk.
    beta, axes, channel_axis, spacing, isotropic, smoothing, reduction, device
        As in :func:`tvnumba.tv_value_and_grad`.

    Returns
    -------
    value : dask.array.Array
        0-d float64 (``"sum"``, ``"mean"``) or one value per batch item (``"none"``).
    grad : dask.array.Array
        The gradient, ``u``'s shape and chunks, float32 for float16/float32 input,
        else float64.

    Examples
    --------
    >>> import dask.array as da, numpy as np, tvnumba
    >>> x = np.random.default_rng(0).random((64, 64))
    >>> v = tvnumba.tv(da.from_array(x, chunks=16)).compute()
    >>> bool(abs(v - tvnumba.tv(x)) < 1e-9 * v)
    True
    """
    u, plan, spatial, channel = _prepare(u, beta, axes, channel_axis, spacing, isotropic,
                                         smoothing, reduction)
    ext = _extended(u, spatial)
    value = _lazy_value(ext, u, plan, spatial, channel, device) if _want[0] else None
    grad = _lazy_grad(ext, plan, spatial, device) if _want[1] else None
    return value, grad


def _as_float(image):
    """Integer and boolean images on [0, 1] (``img_as_float``, lazily), as in memory."""
    from skimage.util import img_as_float

    if image.dtype.kind in "biu":
        return image.map_blocks(img_as_float, dtype=np.float64)
    return image


def _internal_smoothing(f, plan):
    """The in-memory solver's smoothing for ``smoothing=0`` and β < 1, from the whole
    array's range (a lazy 0-d Dask array)."""
    import dask.array as da

    return smoothing_for_range(da.maximum(f.max() - f.min(), 1e-12), plan.inv_spacing)


#: The whole-array β < 1 solve runs as one task where a process can hold this many
#: times the image (the majorize–minimize solver peaks at 11× its input; a Dask worker
#: starts spilling at 60 % of its ``memory_limit``): ``12 · nbytes ≤ 0.6 · limit``.
ONE_TASK_MEMORY_FACTOR = 12 / 0.6


def _one_task_fits(x, nbytes: int) -> bool:
    """Whether the in-memory solve of an image of ``nbytes`` (its float dtype) fits one
    task of the scheduler that would compute ``x``: always in this process (threads,
    sync, processes), and on a ``dask.distributed`` cluster when the smallest
    ``memory_limit`` of its workers holds :data:`ONE_TASK_MEMORY_FACTOR` × the image
    (no limit: it fits)."""
    from dask.base import get_scheduler

    owner = getattr(get_scheduler(collections=[x]), "__self__", None)
    if owner is None or not type(owner).__module__.startswith("distributed"):
        return True
    workers = owner.scheduler_info().get("workers", {}).values()
    limits = [w.get("memory_limit") or 0 for w in workers]
    limit = min((m for m in limits if m > 0), default=0)
    return limit == 0 or ONE_TASK_MEMORY_FACTOR * nbytes <= limit


def _central_sample(image, spatial, channel):
    """The central part of ``image`` with at most :data:`AUTO_SAMPLE_SIZE` values: the
    middle item of every batch axis, then the centre of the spatial axes, cut by the
    same factor each."""
    index = [slice(None)] * image.ndim
    for d in range(image.ndim):
        if d not in spatial and d != channel:
            index[d] = slice(image.shape[d] // 2, image.shape[d] // 2 + 1)
    sample = image[tuple(index)]
    if sample.size > AUTO_SAMPLE_SIZE:
        factor = (AUTO_SAMPLE_SIZE / sample.size) ** (1.0 / len(spatial))
        for d in spatial:
            n = image.shape[d]
            m = max(1, min(n, int(n * factor)))
            index[d] = slice((n - m) // 2, (n - m) // 2 + m)
        sample = image[tuple(index)]
    return sample


def _sample_weight(sample, *, solve, plan, kw):
    """The weight the in-memory ``weight="auto"`` chooses for ``sample``."""
    _, info = solve(sample, "auto", plan.beta, smoothing=plan.smoothing, plan=plan, **kw)
    return info.weight


def _block_denoise(block, *, solve, weight, plan, smoothing, kw):
    """One block through the in-memory solver, on the plan validated for the whole array
    (with the smoothing every block shares)."""
    plan = replace(plan, smoothing=float(smoothing))
    return solve(block, weight, plan.beta, smoothing=plan.smoothing, plan=plan, **kw)[0]


def _check_depth(depth, spatial) -> dict[int, int]:
    if np.ndim(depth) == 0:
        depth = (depth,) * len(spatial)
    depth = tuple(depth)
    if len(depth) != len(spatial):
        raise ValueError(f"depth needs one value or one per spatial axis ({len(spatial)}), "
                         f"got depth={depth!r}")
    out = {}
    for d, k in zip(spatial, depth):
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
            raise ValueError(f"depth must be integers >= 0, got depth={depth!r}")
        out[d] = int(k)
    return out


def denoise_chunked(image, solve, weight=0.1, beta: float = 1.0, *, depth=None,
                    eps: float = 1e-3, max_num_iter: int | None = None,
                    channel_axis: int | None = None, isotropic: bool = True,
                    smoothing: float = 0.0, spacing=1.0, method: str = "auto",
                    device: str | None = None, noise: str = "gaussian", background=0.0):
    """:func:`tvnumba.denoise_tv_beta` of a Dask array, chunk by chunk with a halo (lazy).

    The public function calls this for Dask arrays (``tvnumba.denoise_tv_beta(x,
    depth=...)``), handing it its in-memory solver ``solve`` (so that this module
    imports nothing from the restoration package).

    Parameters
    ----------
    image : dask.array.Array
        Image or volume; the channel axis is rechunked to one chunk.  Every chunk along
        an axis with several chunks must be at least ``depth`` pixels long.
    solve : callable
        ``solve(block, weight, beta, smoothing=..., plan=..., eps=..., max_num_iter=...,
        method=..., device=...) -> (u, info)`` for one in-memory block, on the plan this
        function validated for the whole array.
    weight, beta, eps, max_num_iter, channel_axis, isotropic, smoothing, spacing, method, device
        As in :func:`tvnumba.denoise_tv_beta` (each chunk is solved to ``eps``).
    noise, background
        As in :func:`tvnumba.denoise_tv_beta`; ``noise="poisson"`` needs ``depth`` (the
        default halo is measured on Gaussian data on [0, 1]) and a number ``background``.
    depth : int or sequence of int, optional
        Halo in pixels on each side of a chunk, one value or one per spatial axis
        (default :func:`default_depth` of ``weight``, ``beta`` and ``spacing``: seam error
        < 1e-3 on [0, 1] data, e.g. 91 pixels for β = 1 at weight 0.1, 16 for β = 2; cut
        to the chunk length, with a warning, where a chunk is shorter).  β < 1 without
        ``depth``: the in-memory solve of the whole array as one task (see the module
        docstring); with ``depth``, chunks with a halo, each reaching its own local
        minimiser.

    Returns
    -------
    dask.array.Array
        The denoised image, ``image``'s chunks; float32 for float16/float32 input, else
        float64.

    Raises
    ------
    ValueError
        A chunk shorter than ``depth`` along an axis with several chunks; β < 1 without
        ``depth`` on a cluster whose workers cannot hold the image; any argument the
        in-memory function rejects.

    Notes
    -----
    ``weight="auto"`` chooses one weight for the whole array, lazily: the in-memory
    choice (noise σ by wavelet MAD, then the SURE search) on the central part of the
    array, at most :data:`AUTO_SAMPLE_SIZE` values (the middle item of each batch
    axis).  Where the noise or the content differs across the array, the weight is
    that of its centre; pass a number to choose it yourself.

    With β < 1 and ``smoothing=0`` the in-memory function uses an internal smoothing
    from the data range (``1e-3 (max f − min f) / min h``); here it is computed from the
    whole array (a lazy reduction) so that every chunk solves the same problem.

    Examples
    --------
    >>> import dask.array as da, numpy as np, tvnumba
    >>> x = np.random.default_rng(0).random((128, 128))
    >>> u = tvnumba.denoise_tv_beta(da.from_array(x, chunks=64), 0.1, 2.0, depth=16)
    >>> bool(np.abs(u.compute() - tvnumba.denoise_tv_beta(x, 0.1, 2.0)).max() < 1e-6)
    True
    """
    import dask.array as da

    if not isinstance(image, da.Array):
        image = da.asarray(image)
    plan = make_plan(image, beta, channel_axis=channel_axis, spacing=spacing,
                     isotropic=isotropic, smoothing=smoothing, name="image")
    spatial, channel = _roles(image, None, channel_axis)
    if channel is not None and image.numblocks[channel] > 1:
        image = image.rechunk({channel: -1})
    if noise == "poisson" and (depth is None or getattr(background, "ndim", 0) > 0):
        raise ValueError(
            "noise='poisson' on a Dask array needs depth= (the default halo is measured on "
            "Gaussian data on [0, 1], not on counts) and a number for background, got "
            f"depth={depth!r}")
    # β < 1: no halo makes the chunks agree with the whole image (non-convex); unless
    # a depth is asked for, the in-memory solver runs on the whole array in one task.
    whole = depth is None and plan.beta < 1 and method in ("auto", "mm")
    if whole:
        depths = {}
    elif depth is None:
        depths = {d: default_depth(weight, plan.beta, spacing) for d in spatial}
        short = {d: min(image.chunks[d]) for d in spatial
                 if image.numblocks[d] > 1 and min(image.chunks[d]) < depths[d]}
        if short:
            import warnings

            warnings.warn(
                f"the default halo for weight={weight!r}, beta={plan.beta:g} is "
                f"{max(depths.values())} pixels, longer than image's chunks along axes "
                f"{sorted(short)} ({sorted(short.values())}): using the chunk lengths, so the "
                f"seams may exceed 1e-3; rechunk to larger chunks or pass depth=",
                stacklevel=3)
            depths.update(short)
    else:
        depths = _check_depth(depth, spatial)
    for d in spatial if not whole else ():
        if image.numblocks[d] > 1 and depths[d] > 0 and min(image.chunks[d]) < depths[d]:
            raise ValueError(
                f"image has a chunk of {min(image.chunks[d])} pixels along axis {d}, smaller "
                f"than depth={depths[d]}: rechunk (image.rechunk(...)) to chunks of at least "
                f"{depths[d]} pixels, or pass a smaller depth=")
        if image.numblocks[d] == 1:
            depths[d] = 0  # no neighbour: the array's edge keeps its Neumann boundary
    ftype = float_dtype(image.dtype, "image")
    kw = dict(eps=eps, max_num_iter=max_num_iter, method=method, device=device, noise=noise,
              background=background)
    if whole:
        nbytes = image.size * np.dtype(ftype).itemsize
        if not _one_task_fits(image, nbytes):
            raise ValueError(
                f"denoise_tv_beta with beta={plan.beta:g} < 1 solves the whole image in one "
                f"task (a non-convex problem: chunks solved apart settle in other local "
                f"minima), which needs {ONE_TASK_MEMORY_FACTOR:g}x the image "
                f"({nbytes / 2**20:.0f} MiB) in one worker's memory_limit; give the workers "
                f"more memory, or pass depth= to solve chunk by chunk with halos (each "
                f"chunk then reaches its own local minimiser: seams up to ~0.2 on [0, 1] "
                f"data at an objective within 0.1 %)")
        import dask

        task = dask.delayed(_block_denoise, pure=True)(
            image, solve=solve, weight=weight, plan=plan, smoothing=plan.smoothing, kw=kw)
        u = da.from_delayed(task, image.shape, dtype=ftype,
                            meta=np.empty((0,) * image.ndim, ftype))
        return u.rechunk(image.chunks)
    if isinstance(weight, str):  # "auto": one weight for every chunk (lazy)
        import dask

        weight = dask.delayed(_sample_weight, pure=True)(
            _central_sample(image, spatial, channel), solve=solve, plan=plan, kw=kw)
    s = plan.smoothing
    if plan.beta < 1 and s == 0:
        # One smoothing for every chunk, from the whole data range (lazy).
        s = _internal_smoothing(_as_float(image), plan)
    depth_all = {d: depths.get(d, 0) for d in range(image.ndim)}
    return image.map_overlap(_block_denoise, depth=depth_all, boundary="none",
                             trim=True, allow_rechunk=False, dtype=ftype,
                             meta=np.empty((0,) * image.ndim, ftype),
                             solve=solve, weight=weight, plan=plan, smoothing=s, kw=kw)


#: Halo of a chunk's deconvolution beyond the denoising one, in PSF widths.  Camera 512²,
#: Gaussian PSF 15×15 (σ = 2), weight 0.001, chunks of 128, eps = 1e-6: the chunked result
#: is within 3.2e-3 of the whole image's (mean 8e-7), where the whole image's own answers
#: at eps 1e-5 and 1e-6 differ by 4.6e-2.
DECONVOLVE_PSF_WIDTHS = 1


def deconvolve_depth(weight: float, beta: float, spacing, psf_shape) -> tuple[int, ...]:
    """The default halo of :func:`deconvolve_chunked`, per spatial axis: the denoising one
    (:func:`default_depth`) plus :data:`DECONVOLVE_PSF_WIDTHS` times the PSF's extent."""
    base = default_depth(weight, beta, spacing)
    return tuple(base + DECONVOLVE_PSF_WIDTHS * m for m in psf_shape)


def _block_deconvolve(block, *, psf, solve, weight, beta, kw):
    """One block (with its halo) deconvolved with the ``extend`` boundary: beyond the halo
    the scene is unknown, as beyond the image's own border."""
    return solve(block, psf, weight, beta, boundary="extend", **kw)


def deconvolve_chunked(image, psf, solve, weight=0.001, beta: float = 1.0, *, depth=None,
                       channel_axis: int | None = None, spacing=1.0, **kw):
    """:func:`tvnumba.deconvolve_tv_beta` of a Dask array, chunk by chunk with a halo (lazy).

    The public function calls this for Dask arrays, handing it its in-memory function
    ``solve``.  Each chunk with its halo is deconvolved with ``boundary="extend"`` (the
    scene past the halo is unknown, as past the image's border), and the halo is cut off.

    Parameters
    ----------
    image : dask.array.Array
        Blurred image or volume; the channel axis is rechunked to one chunk.  Every chunk
        along an axis with several chunks must be at least ``depth`` pixels long.
    psf : ndarray
        As in :func:`tvnumba.deconvolve_tv_beta` (in memory).
    solve : callable
        The in-memory :func:`tvnumba.deconvolve_tv_beta`.
    weight : float
        A number (``"auto"`` would choose a weight per chunk: refused).
    depth : int or sequence of int, optional
        Halo on each side of a chunk, one value or one per spatial axis; default
        :func:`deconvolve_depth` (the denoising halo plus the PSF's extent along the
        axis), cut to the chunk length.
    beta, channel_axis, spacing, **kw
        As in :func:`tvnumba.deconvolve_tv_beta`.

    Returns
    -------
    dask.array.Array
        The deconvolved image, ``image``'s chunks; float32 for float16/float32 input,
        else float64.

    Examples
    --------
    >>> import dask.array as da, numpy as np, tvnumba
    >>> x = np.random.default_rng(0).random((96, 96))
    >>> psf = np.full((3, 3), 1 / 9)
    >>> u = tvnumba.deconvolve_tv_beta(da.from_array(x, chunks=48), psf, 0.01, depth=24)
    >>> bool(np.abs(u.compute() - tvnumba.deconvolve_tv_beta(x, psf, 0.01)).max() < 1e-2)
    True
    """
    import dask.array as da

    if not isinstance(image, da.Array):
        image = da.asarray(image)
    if isinstance(weight, str):
        raise ValueError("weight='auto' on a Dask array would choose a weight per chunk; "
                         "pass a number (e.g. the in-memory choice on a central crop)")
    plan = make_plan(image, beta, channel_axis=channel_axis, spacing=spacing,
                     name="image")
    spatial, channel = _roles(image, None, channel_axis)
    if channel is not None and image.numblocks[channel] > 1:
        image = image.rechunk({channel: -1})
    psf = np.asarray(psf)
    if psf.ndim != len(spatial):
        raise ValueError(f"psf must have one axis per spatial axis of the image "
                         f"({len(spatial)}), got psf.ndim={psf.ndim}")
    if depth is None:
        depths = dict(zip(spatial, deconvolve_depth(weight, plan.beta, spacing, psf.shape)))
        depths = {d: min(k, min(image.chunks[d])) if image.numblocks[d] > 1 else 0
                  for d, k in depths.items()}
    else:
        depths = _check_depth(depth, spatial)
    for d in spatial:
        if image.numblocks[d] > 1 and min(image.chunks[d]) < depths[d]:
            raise ValueError(
                f"image has a chunk of {min(image.chunks[d])} pixels along axis {d}, smaller "
                f"than depth={depths[d]}: rechunk to chunks of at least {depths[d]} "
                "pixels, or pass a smaller depth=")
        if image.numblocks[d] == 1:
            depths[d] = 0
    ftype = float_dtype(image.dtype, "image")
    depth_all = {d: depths.get(d, 0) for d in range(image.ndim)}
    return image.map_overlap(_block_deconvolve, depth=depth_all, boundary="none", trim=True,
                             allow_rechunk=False, dtype=ftype,
                             meta=np.empty((0,) * image.ndim, ftype), psf=psf, solve=solve,
                             weight=weight, beta=plan.beta,
                             kw=dict(kw, channel_axis=channel_axis, spacing=spacing))
