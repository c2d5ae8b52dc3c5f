"""tvnumba on Dask arrays: seam error of chunked denoising, and throughput.

Modes (run from the repository root; ``NUMBA_NUM_THREADS`` caps each process)::

    python benchmarks/bench_dask.py seams [--size 256] [--vol 64] [--chunk 64] [--ulps N]
    python benchmarks/bench_dask.py throughput [--size 8192] [--vol 256]
    python benchmarks/bench_dask.py denoise [--size 8192] [--vol 512]
    python benchmarks/bench_dask.py ooc [--vol 256] [--memory-limit 200MB]

``seams``: max-abs difference between ``tvnumba.denoise_tv_beta`` on a Dask array (chunks of
``--chunk``, halo ``depth``) and the whole-image solution, on camera (2-D, [0, 1]) and
a ``binary_blobs`` volume with noise, for β = 0.5, 1, 2 and weights 0.05, 0.3; both solved
to ``eps=1e-6`` so the solver's own tolerance does not hide or fake a seam.  A depth of
``global`` (``--depths 64,global``) is ``depth=None`` for β < 1: the whole-array solve (on the
threaded scheduler one task running the in-memory solver); ``chunkwise`` the same with the
path of a ``dask.distributed`` cluster whose workers cannot hold the image, the in-memory
algorithm step for step on the chunks (both print their time beside the in-memory solve's); ``default`` is
``tvnumba.dask.default_depth``.  For β < 1 (non-convex), ``--ulps N`` adds the yardstick:
how far the in-memory solution itself moves when the input moves by one ulp.
``throughput``: ``tvnumba.tv_value_and_grad`` in memory against the Dask version on the
threaded scheduler and on a ``LocalCluster`` with 1 and 2 worker processes (1 thread
each); Mpixel/s, and the peak memory of the workers.
``denoise``: ``tvnumba.denoise_tv_beta`` in memory against the same call on a Dask array
(threaded scheduler, ``LocalCluster`` with 1 and 2 workers): seconds, Mpixel/s, the
workers' peak memory, and the largest difference to the in-memory result (the seam error of
the default halo).  The image is solved at β = 1 (Chambolle–Pock), the volume at β = 2 (the
DCT solver; β = 1 on 512³ takes minutes per run on 2 cores).
``ooc``: a volume stored as Zarr on disk, larger than the workers' ``memory_limit``,
reduced by ``tvnumba.dask.tv`` and denoised to another Zarr store.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tvnumba  # noqa: E402
import tvnumba.dask as tvd  # noqa: E402


def _images(size, vol, vol_shape=None, which=("camera", "blobs")):
    """camera resized to ``size``², and noisy blobs of side ``vol`` (or cut to
    ``vol_shape`` from blobs of its largest side)."""
    from skimage import data, transform

    images = {}
    if "camera" in which:
        cam = data.camera().astype(np.float64) / 255.0
        if size != cam.shape[0]:
            cam = transform.resize(cam, (size, size), anti_aliasing=True)
        images["camera %d²" % size] = cam
    if "blobs" in which:
        shape = (vol,) * 3 if vol_shape is None else vol_shape
        rng = np.random.default_rng(0)
        blobs = data.binary_blobs(length=max(shape), n_dim=3, volume_fraction=0.3,
                                  rng=1).astype(float)
        blobs = blobs[tuple(slice(0, n) for n in shape)]
        blobs = np.clip(blobs + 0.2 * rng.standard_normal(blobs.shape), 0, 1)
        images["blobs " + "×".join(map(str, shape)) if vol_shape else "blobs %d³" % vol] = blobs
    return images


def _ulp_spread(img, weight, beta, ref, seeds, kw):
    """The in-memory solve's own sensitivity: the largest difference between ``ref``
    and the solves of ``img`` with every value moved by −1, 0 or +1 ulp at random
    (``seeds`` draws).  β < 1 is non-convex: where this is large, no other
    implementation (or sum order) can be held to ``ref`` more closely."""
    spread = 0.0
    for seed in range(seeds):
        step = np.random.default_rng(100 + seed).choice([-1.0, 0.0, 1.0], img.shape)
        u = tvnumba.denoise_tv_beta(img + np.spacing(img) * step, weight, beta, **kw)
        spread = max(spread, float(np.abs(u - ref).max()))
    return spread


def seams(args):
    import dask
    import dask.array as da

    # "global": depth=None, which for β < 1 solves the whole array instead of chunks with
    # a halo; "chunkwise": the cluster's path of that (tvnumba._dask_mm) on the threads.
    # "default": default_depth(weight, beta) (its value printed in the cell).
    depths = [d if d in ("global", "chunkwise", "default") else int(d)
              for d in args.depths.split(",")]
    vol_shape = (tuple(int(n) for n in args.vol_shape.split("x")) if args.vol_shape
                 else None)
    print("| image | chunk | β | weight | "
          + " | ".join(d if isinstance(d, str) else f"depth {d}" for d in depths)
          + (" | in-memory, ±1 ulp input |" if args.ulps else " |"))
    print("|---" * (4 + len(depths) + bool(args.ulps)) + "|")
    images = _images(args.size, args.vol, vol_shape, args.images.split(","))
    for name, img in images.items():
        chunk = args.chunk if img.ndim == 2 else args.vol_chunk
        for beta in [float(b) for b in args.betas.split(",")]:
            for weight in [float(w) for w in args.weights.split(",")]:
                kw = dict(eps=args.eps, max_num_iter=args.max_iter)
                errs = []
                t0 = time.perf_counter()
                ref = tvnumba.denoise_tv_beta(img, weight, beta, **kw)
                t_ref = time.perf_counter() - t0
                for depth in depths:
                    chunkwise = depth == "chunkwise"
                    if depth == "default":
                        depth = tvd.default_depth(weight, beta)
                    elif depth in ("global", "chunkwise"):
                        depth = None
                    if (depth is None and beta >= 1) or (depth is not None and depth > chunk):
                        errs.append("-")
                        continue
                    x = da.from_array(img, chunks=chunk)
                    t0 = time.perf_counter()
                    fits = tvd._one_task_fits
                    if chunkwise:
                        tvd._one_task_fits = lambda x, nbytes: False
                    try:
                        with dask.config.set(scheduler="threads"):
                            u = tvnumba.denoise_tv_beta(x, weight, beta, depth=depth, **kw)
                            u = u.compute()
                    finally:
                        tvd._one_task_fits = fits
                    t_dask = time.perf_counter() - t0
                    err = np.abs(u - ref)
                    cell = f"{err.max():.1e} ({np.quantile(err, 0.999):.0e})"
                    if depths.count("default") and depth == tvd.default_depth(weight, beta):
                        cell += f" [depth {depth}]"
                    if depth is None:
                        cell += f" {t_dask:.0f} s vs {t_ref:.1f} s"
                    if beta < 1:  # local minimisers: compare objectives, not images
                        rel = _objective(u, img, weight, beta) / _objective(ref, img, weight,
                                                                            beta) - 1
                        cell += f" F {rel:+.0e}"
                    errs.append(cell)
                if args.ulps:
                    errs.append(f"{_ulp_spread(img, weight, beta, ref, args.ulps, kw):.1e}"
                                if beta < 1 else "-")
                print(f"| {name} | {chunk} | {beta:g} | {weight:g} | " + " | ".join(errs)
                      + " |", flush=True)
    print("\nentries: max |u_dask − u| (99.9th percentile); eps", args.eps,
          "; β < 1: F = relative objective difference F(u_dask)/F(u) − 1; global: the "
          "whole-array solve (depth=None; chunkwise: the cluster's path of it), its time "
          "against the in-memory solve's; "
          "last column (--ulps N, β < 1): the largest difference between u and the in-memory "
          "solves of N inputs moved by ±1 ulp at random")


def _objective(u, f, weight, beta):
    """``½‖u − f‖² + weight·TV_β(u)`` (float64)."""
    return 0.5 * float(np.sum((u - f) ** 2)) + weight * float(tvnumba.tv(u, beta=beta))


@contextlib.contextmanager
def _cluster(n_workers, memory_limit="auto"):
    """A ``LocalCluster`` of ``n_workers`` one-thread processes and its client, closed
    on exit."""
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                      memory_limit=memory_limit, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        yield client


def _peak_worker_memory(client):
    def peak():
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux)

    return client.run(peak)


def throughput(args):
    import dask
    import dask.array as da

    rng = np.random.default_rng(0)
    cases = [("image %d² f32" % args.size, (args.size, args.size), args.chunk),
             ("volume %d³ f32" % args.vol, (args.vol,) * 3, args.vol_chunk)]
    cpus = len(os.sched_getaffinity(0))
    print(f"CPUs: {cpus}; NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}")
    print("| data | run | workers × threads | s | Mpix/s | peak MiB/worker |")
    print("|---|---|---|---|---|---|")
    for name, shape, chunk in cases:
        x = rng.random(shape, dtype=np.float32)
        npix = x.size / 1e6
        t = time.perf_counter()
        v0, g0 = tvnumba.tv_value_and_grad(x)
        t_mem = time.perf_counter() - t
        t = time.perf_counter()
        v0, g0 = tvnumba.tv_value_and_grad(x)
        t_mem = min(t_mem, time.perf_counter() - t)
        print(f"| {name} | in memory | 1 × {tvnumba.get_num_threads()} | {t_mem:.2f} | "
              f"{npix / t_mem:.0f} | - |", flush=True)
        X = da.from_array(x, chunks=chunk)
        v, g = tvd.tv_value_and_grad(X)
        with tvnumba.thread_limit(1):  # warm-up: the kernels of the slab shapes load
            dask.compute(v, g, scheduler="threads", num_workers=min(2, cpus))
        t = time.perf_counter()
        with tvnumba.thread_limit(1):
            vv, gg = dask.compute(v, g, scheduler="threads", num_workers=min(2, cpus))
        dt = time.perf_counter() - t
        assert abs(vv - v0) <= 1e-9 * abs(v0) and np.abs(gg - g0).max() < 1e-5
        print(f"| {name} | dask threads, chunks {chunk} | {min(2, cpus)} threads | {dt:.2f} "
              f"| {npix / dt:.0f} | - |", flush=True)
        del gg
        for n in (1, 2):
            if n > cpus:
                continue
            with _cluster(n) as client:
                # The data are made on the workers (not shipped), like data read from disk.
                Y = da.random.default_rng(0).random(shape, dtype=np.float32, chunks=chunk)
                v, g = tvd.tv_value_and_grad(Y)
                dask.compute(v, g.sum())  # warm-up: imports and kernels in the workers
                t = time.perf_counter()
                vv, gsum = dask.compute(v, g.sum())
                dt = time.perf_counter() - t
                peak = _peak_worker_memory(client)
            print(f"| {name} | LocalCluster, chunks {chunk} | {n} × 1 | {dt:.2f} | "
                  f"{npix / dt:.0f} | {max(peak.values()):.0f} |", flush=True)


def denoise(args):
    import dask.array as da
    from skimage import data

    cpus = len(os.sched_getaffinity(0))
    rng = np.random.default_rng(0)
    cam = data.camera().astype(np.float32) / 255
    img = np.tile(cam, (args.size // 512 + 1,) * 2)[:args.size, :args.size]
    vol = data.binary_blobs(length=args.vol, n_dim=3, volume_fraction=0.3,
                            rng=1).astype(np.float32)
    cases = [(f"camera tiled {args.size}² f32", img, args.chunk, 1.0, 0.1, None),
             (f"blobs {args.vol}³ f32", vol, args.vol_chunk, 2.0, 0.1, 16)]
    print(f"CPUs: {cpus}; NUMBA_NUM_THREADS={os.environ.get('NUMBA_NUM_THREADS')}; "
          f"default depth: tvnumba.dask.default_depth")
    print("| data | β | depth | run | workers × threads | s | Mpix/s | peak MiB/worker "
          "| max \\|Δ\\| to in memory |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, clean, chunk, beta, weight, depth in cases:
        x = clean + np.float32(0.1) * rng.standard_normal(clean.shape, dtype=np.float32)
        del clean
        npix = x.size / 1e6
        shown = tvd.default_depth(weight, beta) if depth is None else depth
        row = f"| {name} | {beta:g} | {shown} |"
        small = x[:64, :64] if x.ndim == 2 else x[:32, :32, :32]
        tvnumba.denoise_tv_beta(small, weight, beta)  # compile
        t = time.perf_counter()
        ref = tvnumba.denoise_tv_beta(x, weight, beta)
        t_mem = time.perf_counter() - t
        print(f"{row} in memory | 1 × {tvnumba.get_num_threads()} | {t_mem:.2f} | "
              f"{npix / t_mem:.1f} | - | - |", flush=True)
        X = da.from_array(x, chunks=chunk)
        t = time.perf_counter()
        with tvnumba.thread_limit(1):
            u = tvnumba.denoise_tv_beta(X, weight, beta, depth=depth).compute(
                scheduler="threads", num_workers=min(2, cpus))
        dt = time.perf_counter() - t
        print(f"{row} dask threads, chunks {chunk} | {min(2, cpus)} threads | {dt:.2f} | "
              f"{npix / dt:.1f} | - | {np.abs(u - ref).max():.1e} |", flush=True)
        del u
        for n in (1, 2):
            if n > cpus:
                continue
            with _cluster(n) as client:
                warm = da.from_array(small, chunks=tuple(k // 2 for k in small.shape))
                tvnumba.denoise_tv_beta(warm, weight, beta, depth=8).compute()  # imports, kernels
                t = time.perf_counter()
                u = tvnumba.denoise_tv_beta(X, weight, beta, depth=depth).compute()
                dt = time.perf_counter() - t
                peak = _peak_worker_memory(client)
            print(f"{row} LocalCluster, chunks {chunk} | {n} × 1 | {dt:.2f} | "
                  f"{npix / dt:.1f} | {max(peak.values()):.0f} | "
                  f"{np.abs(u - ref).max():.1e} |", flush=True)
            del u
        del x, ref, X


def ooc(args):
    import tempfile

    import dask.array as da

    shape = (args.vol,) * 3
    nbytes = np.prod(shape) * 4
    with tempfile.TemporaryDirectory(dir=args.tmp) as d:
        src = os.path.join(d, "vol.zarr")
        da.random.default_rng(0).random(shape, dtype=np.float32,
                                        chunks=args.vol_chunk).to_zarr(src)
        with _cluster(2, args.memory_limit) as client:
            x = da.from_zarr(src)
            t = time.perf_counter()
            value = tvnumba.tv(x).compute()
            t_tv = time.perf_counter() - t
            t = time.perf_counter()
            tvnumba.denoise_tv_beta(x, 0.1, 2.0, depth=8).to_zarr(os.path.join(d, "out.zarr"))
            t_dn = time.perf_counter() - t
            peak = _peak_worker_memory(client)
    print(f"volume {shape} float32 = {nbytes / 2**20:.0f} MiB on disk (Zarr, chunks "
          f"{args.vol_chunk}³); 2 workers × 1 thread, memory_limit {args.memory_limit} each")
    print(f"tv: {t_tv:.1f} s (value {value:.6g}); denoise β=2 depth 8 to Zarr: {t_dn:.1f} s; "
          f"peak RSS per worker {max(peak.values()):.0f} MiB")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("mode", choices=("seams", "throughput", "denoise", "ooc"))
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--vol", type=int, default=64)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--vol-chunk", type=int, default=32)
    p.add_argument("--vol-shape", default=None, help="ZxYxX instead of --vol³ (seams)")
    p.add_argument("--images", default="camera,blobs", help="seams: camera, blobs or both")
    p.add_argument("--ulps", type=int, default=0,
                   help="seams, β < 1: in-memory solves of N inputs moved by ±1 ulp")
    p.add_argument("--depths", default="8,16,32,64")
    p.add_argument("--betas", default="0.5,1,2")
    p.add_argument("--weights", default="0.05,0.3")
    p.add_argument("--eps", type=float, default=1e-6)
    p.add_argument("--max-iter", type=int, default=20000)
    p.add_argument("--memory-limit", default="200MB")
    p.add_argument("--tmp", default=None)
    args = p.parse_args()
    {"seams": seams, "throughput": throughput, "denoise": denoise, "ooc": ooc}[args.mode](args)


if __name__ == "__main__":
    main()
