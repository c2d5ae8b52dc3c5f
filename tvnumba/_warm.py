"""Compiling the kernels before the work: ``tvnumba warm``, and the parent of a ``--jobs``
pool before it starts its workers.

Numba compiles a kernel once per signature (its dtypes and array ranks) and, with
``cache=True``, stores the machine code in its cache, ``NUMBA_CACHE_DIR`` or else the
``__pycache__`` folders next to tvnumba's modules.  A process that finds a kernel there
loads it in a fraction of a second instead of compiling it again.  Solving a small array
of the same dtype, rank and problem as the real input compiles the same kernels as the
real solve, because the kernels' signatures do not depend on the sizes.
"""

from __future__ import annotations

import time

import numpy as np

from .io import ImageMeta

#: Side of the small arrays solved to compile the kernels (pixels per spatial axis).
SIDE = 16


def small_image(shape, dtype, p: dict, *, side: int = SIDE, seed: int = 0) -> np.ndarray:
    """An array of ``dtype`` shaped like ``shape`` cut to ``side`` pixels per spatial
    axis (a channel axis keeps its length, a stack keeps one image)."""
    from ._batch import default_channel_axis

    shape = tuple(shape)
    channel = default_channel_axis(shape, p)
    channel = None if channel is None else channel % len(shape)
    small = tuple(n if a == channel else (1 if (a == 0 and p["as_batch"]) else min(n, side))
                  for a, n in enumerate(shape))
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return rng.random(small) < 0.5
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, 0), info.max, small, dtype=dtype, endpoint=True)
    return rng.random(small).astype(dtype)


def case_key(shape, dtype, p: dict) -> tuple:
    """What decides which kernels a solve compiles: the float type the image is solved
    in, its rank and its channel axis."""
    from ._batch import default_channel_axis

    dtype = np.dtype(dtype)
    solved = "float32" if dtype in (np.float16, np.float32) else "float64"
    return solved, len(shape), default_channel_axis(tuple(shape), p) is not None


def solve_small(shape, dtype, p: dict, *, psf=None, mask=None) -> dict:
    """Solve a :func:`small_image` like the real input with the batch's parameters;
    returns the solver's record (method, iterations, ...)."""
    from ._batch import read_psf, solve_image, solver

    side = SIDE
    if p["problem"] == "deconvolve":
        psf = read_psf(p["psf"]) if psf is None else psf
        side = max(SIDE, 2 * max(psf.shape))  # room for the PSF's support
    image = small_image(shape, dtype, p, side=side)
    if p["problem"] == "inpaint":
        from ._batch import read_mask

        full = read_mask(p["mask"]) if mask is None else mask
        spatial = image.shape[1:] if p["as_batch"] else image.shape
        mask = full[tuple(slice(0, n) for n in spatial[:full.ndim])]
    record: dict = {}
    solve_image(image, ImageMeta(), p, record, solve=solver(p, psf=psf, mask=mask))
    return record


def warm_for_tasks(tasks) -> int:
    """Compile, in this process, what the tasks' solves need: one small solve per
    :func:`case_key` among their inputs.  Inputs whose header cannot be read are left to
    the task, which reports them.  Returns the number of small solves."""
    from .io import InputError, image_props

    seen = set()
    for t in tasks:
        try:
            shape, dtype = image_props(t["input"])
        except InputError:
            continue
        p = t["parameters"]
        key = case_key(shape, dtype, p)
        if key in seen:
            continue
        seen.add(key)
        try:
            solve_small(shape, dtype, p)
        except Exception:  # the input's own problem: its task reports it in full
            pass
    return len(seen)


def cache_location() -> str:
    """Where Numba stores the compiled kernels."""
    import os

    from numba import config

    if config.CACHE_DIR:
        return os.path.abspath(config.CACHE_DIR)
    from .backends import kernel_cache_dir

    return kernel_cache_dir() or "__pycache__ next to tvnumba's modules"


def common_cases(problems, betas, dtypes, ndims) -> list[tuple]:
    """``(problem, beta, dtype, shape)`` for ``tvnumba warm``: 2-D gray and RGB images
    and 3-D gray volumes of each dtype."""
    shapes = {1: [(SIDE,)], 2: [(SIDE, SIDE), (SIDE, SIDE, 3)], 3: [(8, SIDE, SIDE)]}
    return [(problem, beta, dtype, shape) for problem in problems for beta in betas
            for dtype in dtypes for nd in ndims for shape in shapes[nd]]


def warm_case(problem: str, beta: float, dtype: str, shape, p: dict) -> dict:
    """Compile one of :func:`common_cases` (parameters ``p`` of the command's defaults);
    returns what ran and how long it took."""
    p = dict(p, problem=problem, beta=beta)
    nd = len(shape) - (1 if len(shape) == 3 and shape[-1] == 3 else 0)
    psf = mask = None
    if problem == "deconvolve":
        g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
        psf = g
        for _ in range(nd - 1):
            psf = np.multiply.outer(psf, g)
        psf = psf / psf.sum()
    if problem == "inpaint":
        mask = np.random.default_rng(1).random(shape[:nd]) < 0.1
    t0 = time.perf_counter()
    record = solve_small(shape, dtype, p, psf=psf, mask=mask)
    return dict(problem=problem, beta=beta, dtype=dtype, shape=list(shape),
                method=record.get("method"), seconds=time.perf_counter() - t0)
