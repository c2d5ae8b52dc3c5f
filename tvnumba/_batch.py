"""One file of a ``tvnumba denoise|deconvolve|inpaint`` batch: read, solve, write.

:func:`run_task` runs in a pool worker or in the command's own process and never raises:
every failure becomes the record's ``error``.  :func:`solve_image` is the in-memory part,
which :mod:`tvnumba._warm` also runs on small arrays to compile the same kernels.
"""

from __future__ import annotations

import functools
import time

import numpy as np

from .io import ImageMeta, InputError


def first_line(e: BaseException) -> str:
    """The first line of an exception's message (its type name when it has none)."""
    text = str(e).strip().splitlines()
    return text[0] if text and text[0] else type(e).__name__


def run_task(task: dict) -> dict:
    """Read, solve and write one file; the record says how it went."""
    record = dict(input=task["input"], output=task["output"], status="error", error=None,
                  shape=None, dtype=None, parameters=task["parameters"], method=None,
                  iterations=None, gap=None, converged=None, seconds=None)
    t0 = time.perf_counter()
    try:
        _run_file(task, record)
        record["status"] = "ok"
    except Exception as e:  # the file's problem (unreadable, NaN, wrong axes): one line
        user = isinstance(e, (InputError, ValueError, TypeError))
        record["error"] = first_line(e) if user else f"{type(e).__name__}: {first_line(e)}"
    record["seconds"] = time.perf_counter() - t0
    return record


def solver(p: dict, *, psf=None, mask=None):
    """``solve(image, **kwargs) -> (u, info)`` for the command's problem; ``psf`` and
    ``mask`` (arrays) stand for the files ``p["psf"]`` and ``p["mask"]``."""
    from .restoration import deconvolve_tv_beta, denoise_tv_beta

    if p["problem"] == "deconvolve":
        if psf is None:
            psf = read_psf(p["psf"])

        def solve(image, **kwargs):
            return deconvolve_tv_beta(image, psf, _weight(p, image), p["beta"],
                                      boundary=p["boundary"], **_noise(p), **kwargs)
        return solve
    if p["problem"] == "inpaint":
        from .restoration import inpaint_tv_beta

        if mask is None:
            mask = read_mask(p["mask"])

        def solve(image, **kwargs):
            return inpaint_tv_beta(image, mask, p["weight"], p["beta"], **kwargs)
        return solve

    def solve(image, **kwargs):
        return denoise_tv_beta(image, _weight(p, image), p["beta"], **_noise(p), **kwargs)
    return solve


def _noise(p: dict) -> dict:
    """The noise model's keywords of the command's parameters."""
    return dict(noise=p.get("noise", "gaussian"), background=p.get("background", 0.0))


def _weight(p: dict, image) -> float | str:
    """``p["weight"]``; ``"counts"`` (``--noise poisson`` without ``--weight``): the
    starting weight of the image's mean count."""
    if p["weight"] != "counts":
        return p["weight"]
    from .restoration.poisson_weight import starting_weight

    return starting_weight(float(np.mean(image)) - float(p.get("background", 0.0)), p["beta"])


@functools.lru_cache(maxsize=4)
def read_psf(path: str):
    """The PSF file as float64 normalised to sum 1, or :class:`InputError`; read once
    per process (every input of a batch uses it), returned read-only."""
    from .io import read_image

    psf, _ = read_image(path)
    psf = np.asarray(psf, dtype=np.float64)
    total = float(psf.sum())
    if not np.isfinite(psf).all() or not total > 0:
        raise InputError(f"the PSF {path} must be finite with a positive sum, got sum {total:g}")
    psf = psf / total
    psf.flags.writeable = False
    return psf


@functools.lru_cache(maxsize=4)
def read_mask(path: str):
    """The mask file as bool (nonzero = missing), or :class:`InputError`; read once per
    process, returned read-only."""
    from .io import read_image

    mask, _ = read_image(path)
    mask = np.asarray(mask)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):  # an RGB(A) drawing: any channel set
        mask = mask[..., :3].any(axis=-1)
    if not np.isfinite(mask).all():
        raise InputError(f"the mask {path} holds NaN or infinite values")
    mask = mask != 0
    mask.flags.writeable = False
    return mask


def default_channel_axis(shape, p: dict):
    """``--channel-axis``, or -1 for an RGB(A) image (three axes, the last of 3 or 4)."""
    if p["channel_axis"] is None and len(shape) == 3 and shape[-1] in (3, 4) \
            and not p["as_batch"]:
        return -1
    return p["channel_axis"]


def solve_image(img: np.ndarray, meta: ImageMeta, p: dict, record: dict, solve=None):
    """Solve the command's problem on one in-memory image (with ``solve``, else
    :func:`solver` of ``p``).

    Returns ``(u, channel_axis, written_spacing)``; ``record`` gets the solver's report
    (method, iterations, gap, converged, weight, spacing).
    """
    solve = solver(p) if solve is None else solve
    channel_axis = default_channel_axis(img.shape, p)
    spacing = p["spacing"]
    written_spacing = None
    if spacing is None:
        spacing = 1.0
        if channel_axis is None and not p["as_batch"]:
            from_meta = meta.spacing(img.ndim)
            if from_meta is not None:
                spacing = written_spacing = from_meta
    elif img.ndim == 3 and channel_axis is None and not p["as_batch"] \
            and np.ndim(spacing) == 1 and len(spacing) == 3:
        written_spacing = tuple(spacing)
    kwargs = dict(eps=p["eps"], max_num_iter=p["max_iter"], isotropic=p["isotropic"],
                  spacing=spacing, method=p["method"], device=p["device"],
                  return_info=True)
    record["spacing"] = spacing
    if p["as_batch"]:
        if img.ndim < 3:
            raise InputError(f"--as-batch needs a stack of 2-D images, got shape {img.shape}")
        if channel_axis is not None:
            channel_axis = channel_axis % img.ndim
            if channel_axis == 0:
                raise InputError("--channel-axis cannot be the batch axis 0 with --as-batch")
            channel_axis -= 1
        if img.ndim - 1 - (channel_axis is not None) != 2:
            raise InputError(f"--as-batch needs 2-D images in the stack, got shape {img.shape}")
        out = None
        infos = []
        for i in range(img.shape[0]):
            u, info = solve(img[i], channel_axis=channel_axis, **kwargs)
            if out is None:
                out = np.empty(img.shape, u.dtype)
            out[i] = u
            infos.append(info)
        record.update(method=infos[0].method, iterations=[i.iterations for i in infos],
                      gap=max(i.gap for i in infos),
                      converged=all(i.converged for i in infos),
                      weight=[getattr(i, "weight", None) for i in infos])
    else:
        out, info = solve(img, channel_axis=channel_axis, **kwargs)
        record.update(method=info.method, iterations=info.iterations, gap=info.gap,
                      converged=info.converged, weight=getattr(info, "weight", None))
    return np.asarray(out), channel_axis, written_spacing


def _run_file(task: dict, record: dict) -> None:
    from .io import read_image, to_input_dtype, write_tiff_atomic

    p = task["parameters"]
    solver(p)  # the PSF or mask first: their errors name them, not the image
    img, meta = read_image(task["input"])
    record["shape"], record["dtype"] = list(img.shape), str(img.dtype)
    out, channel_axis, written_spacing = solve_image(img, meta, p, record)
    out = (to_input_dtype(out, img.dtype, counts=p.get("noise") == "poisson")
           if p["like_input"] else out.astype(np.float32))
    record["out_dtype"] = str(out.dtype)
    rgb = (not p["as_batch"] and channel_axis is not None and out.ndim == 3
           and channel_axis % out.ndim == 2 and out.shape[-1] in (3, 4))
    write_tiff_atomic(task["output"], out, meta, spacing=written_spacing, rgb=rgb)
