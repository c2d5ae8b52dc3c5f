"""Volumes larger than memory from the command line: ``tvnumba denoise VOLUME -o OUTDIR``.

The input (a Zarr store, an OME-Zarr image, or a TIFF read through tifffile's Zarr
interface) becomes a lazy Dask array (:mod:`tvnumba._zarr_io`); the public
:func:`tvnumba.denoise_tv_beta` denoises it chunk by chunk with a halo
(:mod:`tvnumba.dask`), and every chunk of the result is stored by the task that computed
it (:mod:`tvnumba._chunked`), on a ``dask.distributed`` cluster: an existing one
(``--scheduler``) or one started here (``--workers``, ``--threads``, ``--memory-limit``).
Each local worker runs one chunk at a time, so its memory holds a few chunks whatever
the volume's size.
"""

from __future__ import annotations

import math
import os
import time
import warnings

import numpy as np

from .io import InputError

#: Bytes of worker memory per byte of a chunk and its halo in the solver's float type.
#: The solvers peak at about 11 arrays of their input; a worker also holds the chunk as
#: read, its neighbours' halos and freed memory that the allocator keeps.  Measured peaks
#: above the worker's baseline: 20 for β = 2 on 160³ chunks, 29-39 for β = 1 on chunks of
#: 96 x 103 x 108 (float32, halo 16).
MEMORY_FACTOR = 32
#: The part of a worker's ``memory_limit`` that chunks may use: Dask starts moving data
#: to disk at 60 % of it and stops giving the worker tasks at 80 %.
USABLE_FRACTION = 0.6
#: What a worker holds before its first chunk (the interpreter, NumPy, SciPy, Numba,
#: Dask and tvnumba with its compiled kernels: 214 MiB measured on Linux x86-64).
WORKER_BASELINE = 256 * 2**20
#: Smallest chunk side chosen from the memory limit (voxels).
MIN_SIDE = 16
#: Seconds to wait for the first worker of an existing cluster.
WAIT_FOR_WORKERS = 600


def memory_budget(memory_limit: int, itemsize: int, channels: int = 1) -> int:
    """Voxels of one chunk with its halo that a worker of ``memory_limit`` bytes solves
    (0 when the worker's own baseline leaves no room)."""
    usable = USABLE_FRACTION * memory_limit - WORKER_BASELINE
    return max(0, int(usable // (MEMORY_FACTOR * itemsize * channels)))


def choose_chunks(shape, *, spatial, channel, batch, itemsize: int, depth: dict,
                  memory_limit: int, storage=None, requested=None,
                  workers: int = 1) -> tuple[int, ...]:
    """The chunk shape the volume is computed in.

    ``requested`` (one length per spatial axis) wins.  Otherwise the largest cube-like
    chunk that, with its halo of ``depth`` voxels per side, fits a worker's memory
    (:func:`memory_budget`), rounded down to whole input chunks (``storage``) where that
    loses under a quarter of it, and small
    enough that each of the ``workers`` gets one.  The channel axis stays whole, batch
    axes one index at a time.
    """
    shape = tuple(int(n) for n in shape)
    chunks = list(shape)
    for a in batch:
        chunks[a] = 1
    if requested is not None:
        for a, c in zip(spatial, requested):
            chunks[a] = max(1, min(int(c), shape[a]))
        return tuple(chunks)
    channels = shape[channel] if channel is not None else 1
    budget = memory_budget(memory_limit, itemsize, channels)
    halo = max((depth.get(a, 0) for a in spatial), default=0)

    def sides(side):
        return {a: _axis_chunk(shape[a], side, int(storage[a]) if storage is not None else 1,
                               depth.get(a, 0)) for a in spatial}

    def extended(side) -> int:
        total = 1
        for a, c in sides(side).items():
            total *= c + (2 * depth.get(a, 0) if c < shape[a] else 0)
        return total

    def count(side) -> int:
        return math.prod(-(-shape[a] // c) for a, c in sides(side).items())

    if budget < MIN_SIDE ** len(spatial):
        raise InputError(
            f"a worker's memory limit of {memory_limit / 2**30:.3g} GiB leaves no room for "
            f"a chunk beside the worker's own {WORKER_BASELINE // 2**20} MiB: give a larger "
            "--memory-limit (1GB or more)")
    lo, hi = 1, max(shape[a] for a in spatial)
    while lo < hi:  # the largest side whose chunk, with its halo, fits the budget
        mid = (lo + hi + 1) // 2
        if extended(mid) <= budget:
            lo = mid
        else:
            hi = mid - 1
    side = lo
    if side < max(MIN_SIDE, halo) and any(shape[a] > side for a in spatial):
        raise InputError(
            f"a worker's memory ({memory_limit / 2**30:.3g} GiB) holds chunks of {side} "
            f"voxels per side with a halo of {halo}: give a larger --memory-limit, a smaller "
            "--depth or explicit --chunks")
    floor = max(MIN_SIDE, 2 * halo)
    while count(side) < workers and side > floor:  # every worker gets a chunk
        side = max(floor, side * 4 // 5)
    for a, c in sides(side).items():
        chunks[a] = c
    return tuple(chunks)


def _axis_chunk(n: int, side: int, storage: int, depth: int) -> int:
    """The chunk length along an axis of ``n`` voxels for chunks of at most ``side``:
    ``n`` split evenly (a short last chunk would cut the halo of every chunk to its
    length), in whole input chunks of ``storage`` voxels where that costs under a quarter
    of the length and leaves a last chunk of at least ``depth``."""
    if side >= n:
        return n
    even = -(-n // -(-n // side))
    if 1 < storage <= even and even // storage * storage * 4 >= even * 3:
        aligned = even // storage * storage
        last = n - (-(-n // aligned) - 1) * aligned
        if last >= min(depth, aligned):
            return aligned
    return even


def output_chunks(volume, chunks) -> tuple[int, ...]:
    """The result's stored chunks: the input's where they divide the computed ones (a
    Zarr input keeps its layout), else the computed ones.  Either way no two computed
    chunks share a stored one, so the workers never write the same file."""
    if volume.kind == "tiff":
        return tuple(chunks)
    return tuple(s if 0 < s <= c and c % s == 0 else c
                 for s, c in zip(volume.storage_chunks, chunks))


# --------------------------------------------------------------------------- cluster
class Cluster:
    """The ``dask.distributed`` client of the run, started at the first volume."""

    def __init__(self, *, scheduler=None, workers=None, threads=None, memory_limit=None):
        self.scheduler = scheduler
        self.workers = workers
        self.threads = threads
        self.memory_limit = memory_limit
        self.client = None
        self._cluster = None

    def get(self):
        if self.client is None:
            import logging

            from distributed import Client, LocalCluster

            if self.scheduler:
                self.client = Client(self.scheduler, timeout="60s")
                # The chunks are sized from the workers' memory: wait for one to join
                # (a batch system may still be starting them).
                self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS)
            else:
                workers = self.workers or 1
                threads = self.threads or max(1, _cpu_count() // workers)
                # One task per worker (one chunk in memory); its kernels get the threads.
                self._cluster = LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    memory_limit=self.memory_limit or "auto", dashboard_address=":0",
                    silence_logs=logging.CRITICAL,
                    env={"NUMBA_NUM_THREADS": str(threads)})
                self.client = Client(self._cluster)
        return self.client

    def memory_limit_bytes(self) -> int:
        """The smallest worker ``memory_limit`` (the machine's memory where none is set)."""
        info = self.get().scheduler_info(n_workers=-1) if _takes_n_workers() \
            else self.get().scheduler_info()
        limits = [w.get("memory_limit") or 0 for w in info.get("workers", {}).values()]
        limits = [m for m in limits if m > 0]
        if limits:
            return int(min(limits))
        from distributed.system import MEMORY_LIMIT

        return int(MEMORY_LIMIT)

    def worker_count(self) -> int:
        info = self.get().scheduler_info(n_workers=-1) if _takes_n_workers() \
            else self.get().scheduler_info()
        return max(1, len(info.get("workers", {})))

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()
        self.client = self._cluster = None


def _takes_n_workers() -> bool:
    import inspect

    from distributed import Client

    return "n_workers" in inspect.signature(Client.scheduler_info).parameters


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- run
def plan_volume(volume, p: dict):
    """The roles of the volume's axes and the spacing to solve with:
    ``(channel_axis, batch_axes, spatial_axes, spacing, spacing_to_write)``.

    The channels of an RGB TIFF are coupled (colour TV, as for image files); an
    OME-Zarr channel axis holds independent stains, solved one at a time like time
    points, unless ``--channel-axis`` names it.
    """
    ndim = len(volume.shape)
    channel = p["channel_axis"]
    if channel is not None:
        if not -ndim <= channel < ndim:
            raise InputError(f"--channel-axis {channel} is out of range for shape "
                             f"{volume.shape}")
        channel %= ndim
    elif volume.kind == "tiff":
        channel = volume.channel_axis
    batch = tuple(i for i, a in enumerate(volume.axes)
                  if a.get("type") != "space" and i != channel)
    spatial = tuple(a for a in range(ndim) if a != channel and a not in batch)
    if p["spacing"] is not None:
        spacing = p["spacing"]
        written = tuple(float(h) for h in
                        np.broadcast_to(np.asarray(spacing, float), (len(spatial),)))
    else:
        written = volume.spacing
        spacing = written if written is not None else 1.0
    return channel, batch, spatial, spacing, written


def _per_batch(x, batch, channel, solve):
    """``solve(array, channel_axis)`` on every index of the batch axes, stacked back."""
    import dask.array as da

    if not batch:
        return solve(x, channel)
    b, rest = batch[0], tuple(a - 1 for a in batch[1:])
    c = None if channel is None else channel - (channel > b)
    return da.stack([_per_batch(x[(slice(None),) * b + (i,)], rest, c, solve)
                     for i in range(x.shape[b])], axis=b)


def _depths(p: dict, spatial, spacing, psf=None) -> tuple[dict, object]:
    """``(depth per spatial axis for the chunk choice, depth= for the library)``; a
    deconvolution's default grows by the PSF's extent
    (:func:`tvnumba.dask.deconvolve_chunked`)."""
    from .dask import deconvolve_depth, default_depth

    if p["depth"] is not None:
        values = p["depth"]
        if len(values) == 1:
            values = values * len(spatial)
        if len(values) != len(spatial):
            raise InputError(f"--depth needs one value or one per spatial axis "
                             f"({len(spatial)}), got {len(values)}")
        return dict(zip(spatial, values)), tuple(values)
    if psf is not None:
        values = deconvolve_depth(p["weight"], p["beta"], spacing, psf.shape)
        return dict(zip(spatial, values)), values
    d = default_depth(p["weight"], p["beta"], spacing)
    return {a: d for a in spatial}, None


def run_volume(task: dict, cluster: Cluster, *, progress=None, say=None) -> dict:
    """Denoise one volume into ``task["output"]``; the record says how it went (never
    raises for the input's own problems)."""
    record = dict(input=task["input"], output=task["output"], status="error", error=None,
                  shape=None, dtype=None, parameters=task["parameters"], method=None,
                  iterations=None, gap=None, converged=None, seconds=None,
                  chunks_total=None, chunks_skipped=None)
    t0 = time.perf_counter()
    try:
        _run(task, record, cluster, progress, say)
    except Exception as e:  # the volume's problem (unreadable, NaN, memory): one line
        record["status"] = "error"
        record["error"] = _chunk_error(e)
    record["seconds"] = time.perf_counter() - t0
    return record


def _chunk_error(e: BaseException) -> str:
    from ._batch import first_line

    name = type(e).__name__
    if name == "KilledWorker":
        return ("a worker died computing a chunk (out of memory?): use smaller --chunks "
                "or a larger --memory-limit")
    if isinstance(e, (InputError, ValueError, TypeError)):
        return first_line(e)
    return f"{name}: {first_line(e)}"


def _run(task, record, cluster: Cluster, progress, say) -> None:
    from . import __version__
    from ._chunked import ChunkedStore, block_name, store_block
    from ._zarr_io import create_output, input_signature, ome_problem, open_volume, to_dask
    from .io import to_input_dtype
    from .restoration import deconvolve_tv_beta, denoise_tv_beta  # on Dask: tvnumba.dask

    p = task["parameters"]
    if p["problem"] not in ("denoise", "deconvolve"):
        raise InputError(f"{p['problem']} reads images whole; Zarr volumes and TIFFs read "
                         "chunk by chunk go through tvnumba denoise or deconvolve")
    volume = open_volume(task["input"])
    record["shape"], record["dtype"] = list(volume.shape), str(volume.dtype)
    if volume.dtype.kind not in "biuf":
        raise InputError(f"not an image: dtype {volume.dtype}")
    channel, batch, spatial, spacing, written = plan_volume(volume, p)
    if not spatial:
        raise InputError(f"no spatial axis in shape {volume.shape}")
    if channel is not None and volume.channel_axis != channel:
        axes = tuple(dict(a, type="channel") if i == channel else a
                     for i, a in enumerate(volume.axes))
        volume = _replace(volume, axes=axes)
    ome = task["ome"]
    if ome and ome_problem(volume):
        raise InputError(ome_problem(volume))
    solve_dtype = np.float32 if volume.dtype in (np.float16, np.float32) else np.float64
    psf = None
    if p["problem"] == "deconvolve":
        from ._batch import read_psf

        psf = read_psf(p["psf"])
        if psf.ndim != len(spatial):
            raise InputError(f"the PSF has {psf.ndim} axes, the volume {len(spatial)} "
                             f"spatial axes (shape {volume.shape})")
        if p["boundary"] != "extend":
            raise InputError("a volume is deconvolved chunk by chunk with --boundary extend "
                             f"only, got --boundary {p['boundary']}")
    depth_of, depth = _depths(p, spatial, spacing, psf)
    memory = cluster.memory_limit_bytes() if p["chunks"] is None else 0
    chunks = choose_chunks(volume.shape, spatial=spatial, channel=channel, batch=batch,
                           itemsize=np.dtype(solve_dtype).itemsize, depth=depth_of,
                           memory_limit=memory, storage=volume.storage_chunks,
                           requested=p["chunks"], workers=cluster.worker_count()
                           if p["chunks"] is None else 1)
    for a in spatial:
        if p["depth"] is not None and chunks[a] < volume.shape[a] and chunks[a] < depth_of[a]:
            raise InputError(f"chunks of {chunks[a]} along axis {a} are shorter than the "
                             f"halo --depth {depth_of[a]}: give longer --chunks or a "
                             "smaller --depth")
    if psf is not None and p["depth"] is None:  # the default halo, cut to the chunks
        depth = tuple(min(d, chunks[a]) for a, d in zip(spatial, depth))
    x = to_dask(volume, chunks)
    kw = dict(depth=depth, eps=p["eps"], max_num_iter=p["max_iter"],
              isotropic=p["isotropic"], spacing=spacing, method=p["method"],
              device=p["device"], noise=p.get("noise", "gaussian"),
              background=p.get("background", 0.0))
    weight = p["weight"]
    if weight == "counts":  # --noise poisson without --weight: from the mean count (a pass)
        from .restoration.poisson_weight import starting_weight

        weight = starting_weight(float(x.mean().compute()) - float(p.get("background", 0.0)),
                                 p["beta"])
    if psf is not None:
        def solve(a, c):
            return deconvolve_tv_beta(a, psf, weight, p["beta"], channel_axis=c, **kw)
    else:
        def solve(a, c):
            return denoise_tv_beta(a, weight, p["beta"], channel_axis=c, **kw)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        u = _per_batch(x, batch, channel, solve)
    for w in caught:
        if say is not None:
            say(f"warning: {task['input']}: {w.message}")
    u = u.rechunk(chunks)
    out_dtype = volume.dtype if p["like_input"] else np.dtype(np.float32)
    if p["like_input"]:
        u = u.map_blocks(to_input_dtype, volume.dtype, dtype=volume.dtype)
    else:
        u = u.astype(np.float32)
    run = dict(input=os.path.abspath(task["input"]), signature=input_signature(task["input"]),
               parameters={k: v for k, v in p.items() if k != "overwrite"},
               chunks=list(chunks), dtype=str(out_dtype), ome=ome, version=__version__)
    store = ChunkedStore(task["output"], run)
    if p["overwrite"]:
        store.discard()
    out_chunks = output_chunks(volume, chunks)
    attributes = {"tvnumba": {"input": os.path.basename(os.path.normpath(task["input"])),
                              "weight": p["weight"], "beta": p["beta"], "eps": p["eps"],
                              "spacing": None if written is None else list(written),
                              "version": __version__}}

    def create(path):
        return create_output(path, shape=volume.shape, chunks=out_chunks, dtype=out_dtype,
                             volume=volume, ome=ome, spacing=written, attributes=attributes)

    done = store.open(create)
    if store.restarted and say is not None:
        say(f"warning: {task['input']}: the unfinished {task['output']} was for other "
            "parameters or another input; started again")
    numblocks = u.numblocks
    blocks = list(np.ndindex(*numblocks))
    pending = [i for i in blocks if block_name(i) not in done]
    record.update(chunks=list(chunks), depth=None if depth is None else list(depth),
                  spacing=spacing, chunks_total=len(blocks),
                  chunks_skipped=len(blocks) - len(pending), out_dtype=str(out_dtype),
                  format="ome-zarr" if ome else "zarr", restarted=store.restarted)
    if pending:
        written_blocks = u.map_blocks(
            store_block, target=store.target(), dtype=np.int8,
            chunks=tuple((1,) * n for n in numblocks),
            meta=np.empty((0,) * u.ndim, np.int8))
        parts = written_blocks.to_delayed(optimize_graph=True)
        _compute(cluster.get(), [parts[i] for i in pending], progress,
                 total=len(blocks), initial=len(blocks) - len(pending),
                 desc=os.path.basename(os.path.normpath(task["input"])))
    if not store.finish(numblocks):
        missing = len(blocks) - store.finished(numblocks)
        raise InputError(f"{missing} of {len(blocks)} chunks were not written; run again "
                         "to finish them")
    record["status"] = "ok"


def _replace(volume, **changes):
    import dataclasses

    return dataclasses.replace(volume, **changes)


def _compute(client, parts, progress, *, total: int, initial: int, desc: str) -> None:
    """Compute the chunks' store tasks, updating ``progress(total, initial, desc)`` (a
    tqdm bar) as each one ends; the first failure cancels the rest and is raised."""
    from distributed import as_completed

    futures = client.compute(parts)
    bar = progress(total, initial, desc) if progress is not None else None
    try:
        for fut in as_completed(futures):
            fut.result()
            if bar is not None:
                bar.update(1)
    except BaseException:
        client.cancel(futures)
        raise
    finally:
        if bar is not None:
            bar.close()


def wants_volume(path: str, p: dict, volume_options: bool) -> bool:
    """Whether an input goes through the chunked path: Zarr stores always, TIFFs when a
    volume option is given or when solving them in memory would not fit (the solvers
    need about 12 times the image in its float type)."""
    from .io import is_zarr_store

    if is_zarr_store(path):
        return True
    if not path.lower().endswith((".tif", ".tiff")) or p["as_batch"]:
        return False
    if volume_options:
        return True
    try:
        from .io import read_tiff_meta

        shape, dtype, _ = read_tiff_meta(path)
    except InputError:
        return False  # the file path reports it
    itemsize = 4 if np.dtype(dtype) in (np.float16, np.float32) else 8
    return 12 * math.prod(shape) * itemsize > _available_memory()


def _available_memory() -> int:
    try:
        import psutil

        return int(psutil.virtual_memory().available)
    except ImportError:  # psutil comes with distributed; without it, the page count
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
