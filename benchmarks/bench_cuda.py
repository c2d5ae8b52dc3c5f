"""Benchmark of the CUDA β-TV kernels on a real GPU, with baselines from the same run.

Columns
-------
* ``kernel ms``: the TV kernel alone (CUDA events around ten back-to-back launches on
  canonical device arrays: no Python layer, no allocation); ``per-pixel ms`` the same for
  the one-thread-per-pixel kernel that the strip kernel replaced for one channel and 2-3
  spatial axes (the A/B in one run).  Its bandwidth ``GB/s`` = bytes that must move
  (``tv``: read ``u``; ``tv_value_and_grad``: read ``u`` + write the gradient) ÷ time, and
  ``% peak`` = that ÷ the card's peak memory bandwidth (``--peak-gbs``, else computed from
  the device's memory clock and bus width).
* ``call ms``: the public call end to end (``tvnumba.tv`` / ``tv_value_and_grad`` on a
  device array with a preallocated ``out=``): validation, views, launch and the copy of the
  per-batch value to the host, which synchronises.
* ``copy ms``: a device-to-device copy of the same bytes (``tv_value_and_grad``) or half of
  one (``tv``): the memory floor the card actually reaches.
* ``CuPy ms``: a vectorised CuPy implementation of the same formula (whole-array
  operations, as one would write it by hand), same dtype, value reduced to a Python float.
* ``CPU ms``: the Numba CPU kernel (``device="cpu"``) on the same data in host memory,
  best of fewer repeats, on this machine's cores.

Times are medians of ``--repeat`` warm calls (compilation excluded: the first call of each
specialisation is timed separately and reported as ``first call s``).  GPU times use CUDA
events; the CPU uses ``time.perf_counter``.

Run (needs a CUDA GPU; CuPy optional but needed for the CuPy column and CuPy input)::

    python benchmarks/bench_cuda.py                   # 4096², 8192², 256³, 512³ float32
    python benchmarks/bench_cuda.py --peak-gbs 3350   # H100 SXM: 3.35 TB/s
    python benchmarks/bench_cuda.py --quick           # small shapes, quick check
    python benchmarks/bench_cuda.py --no-cpu --aniso  # skip the CPU column; add anisotropic
    python benchmarks/bench_cuda.py --denoise         # denoise_tv_beta on CuPy vs the CPU

``--denoise`` (needs CuPy): ``denoise_tv_beta`` on a CuPy array (every solver runs on the
GPU end to end) against the same call on the NumPy array, camera upsampled to 2048² and
4096² + noise (σ = 0.1), float32, β ∈ {0.5, 1, 1.5, 2} with the demo's weights; wall
time of the whole call (it returns after the solve: scalars come to the host every
iteration), iterations, and the relative difference of the two objectives.

``--ct`` (CuPy optional): the Radon projector pair of :mod:`tvnumba.operators.radon` on
the GPU (the CUDA kernels on a device array, as the solvers call them: no validation)
against the CPU pair (same call on NumPy, this machine's threads) and
``skimage.transform.radon`` (CPU, one ``warp`` per angle), at 256² and 512², 60 and 180
angles, float64 and float32; with the relative difference of the GPU and CPU results
and the GPU pair's dot-product test.  Then (needs CuPy) ``reconstruct_tv_beta`` on a
CuPy sinogram against the NumPy one (Shepp-Logan, 60 angles, 1 % noise, float32):
wall time, iterations, objective difference and max image difference::

    python benchmarks/bench_cuda.py --ct            # 256², 512²
    python benchmarks/bench_cuda.py --ct --quick    # 128² only
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # this checkout
from bench_common import median_of  # noqa: E402  (benchmarks/ is the script's folder)


# --------------------------------------------------------------------------- baselines
def xp_tv_value_and_grad(xp, u, beta, want_grad=True):
    """Vectorised β-TV (isotropic, unit spacing, no smoothing) with array module ``xp``."""
    nd = u.ndim
    diffs = []
    for ax in range(nd):
        d = xp.zeros_like(u)
        hi = [slice(None)] * nd
        lo = [slice(None)] * nd
        hi[ax] = slice(1, None)
        lo[ax] = slice(None, -1)
        d[tuple(lo)] = u[tuple(hi)] - u[tuple(lo)]
        diffs.append(d)
    m = sum(d * d for d in diffs)
    pos = m > 0
    t = xp.where(pos, xp.where(pos, m, 1) ** (beta / 2 - 1), 0).astype(u.dtype)
    value = float((m * t).sum(dtype=np.float64))
    if not want_grad:
        return value, None
    w = beta * t
    g = xp.zeros_like(u)
    for ax, d in enumerate(diffs):
        f = w * d
        g -= f
        hi = [slice(None)] * nd
        lo = [slice(None)] * nd
        hi[ax] = slice(1, None)
        lo[ax] = slice(None, -1)
        g[tuple(hi)] += f[tuple(lo)]
    return value, g


# --------------------------------------------------------------------------- timing
def gpu_time(fn, repeat, cuda, batch=10):
    """Median seconds per call of ``fn`` between two CUDA events around ``batch``
    back-to-back calls (fn warmed up first): with one call per pair of events the
    host-side launch time (~60 µs for a Numba kernel) sits between them and was
    counted as kernel time (the H100 table of the fourth session: 0.186 ms against
    Nsight Compute's 0.109 ms for the same kernel)."""
    fn()
    cuda.synchronize()
    start, end = cuda.event(), cuda.event()
    times = []
    for _ in range(repeat):
        start.record()
        for _ in range(batch):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / batch)
    return statistics.median(times)


def peak_bandwidth(dev):
    """Peak DRAM bandwidth in GB/s from the device attributes (None if unavailable)."""
    try:
        clock_khz = dev.MEMORY_CLOCK_RATE  # kHz, data rate is twice the clock
        bus_bits = dev.GLOBAL_MEMORY_BUS_WIDTH
    except Exception:
        return None
    if not clock_khz or not bus_bits:
        return None
    return 2 * clock_khz * 1e3 * bus_bits / 8 / 1e9


# --------------------------------------------------------------------------- runs
def kernel_launcher(ud, gd, beta, isotropic, want_grad, cuda, per_pixel=False):
    """A zero-argument callable that launches the TV kernel alone on ``ud``/``gd``
    (the kernel the public call selects for this layout, or with ``per_pixel`` the
    one-thread-per-pixel kernel, for the A/B column)."""
    from tvnumba._validate import make_plan
    from tvnumba.backends.cpu.tv_kernels import beta_mode
    from tvnumba.backends.cuda import _launch as L
    from tvnumba.backends.cuda.tv_kernels import make_kernel, select

    plan = make_plan(ud, beta, isotropic=isotropic)
    u5 = L.canonical(ud, plan)
    B, C, D, H, W = u5.shape
    u, ul = L.flat(u5)
    if want_grad:
        g, gl = L.flat(L.canonical(gd, plan))
    else:
        g, gl = L.device_empty((1,), plan.dtype), (0,) * 6
    kernel, grid, tpb = select((B, C, D, H, W), plan, want_grad, plan.dtype)
    if per_pixel:
        kernel = make_kernel(min(plan.n_spatial, 3), beta_mode(beta), isotropic, want_grad,
                             tpb, C == 1)
        grid = L.grid(B, D * H * W, tpb)
    T = plan.dtype.type
    values = cuda.device_array(B + 1, np.float64)
    args = (u, ul, g, gl, (B, C, D, H, W), T(0), T(1), T(1), T(1), T(beta / 2 - 1), T(beta),
            T(1), values)

    def launch():
        kernel[grid, tpb](*args)

    return launch, grid, tpb


def bench(shapes, betas, aniso, repeat, cpu_repeat, use_cpu, peak):
    from numba import cuda

    import tvnumba

    try:
        import cupy
    except ImportError:
        cupy = None
        print("CuPy not installed: no CuPy column, Numba device arrays as input",
              file=sys.stderr)

    rows = []
    rng = np.random.default_rng(0)
    for shape in shapes:
        u = rng.random(shape, dtype=np.float32)
        nbytes = u.nbytes
        if cupy is not None:
            ud = cupy.asarray(u)
            gd = cupy.empty_like(ud)
            ud_nb, gd_nb = cuda.as_cuda_array(ud), cuda.as_cuda_array(gd)
            copy_fn = lambda: cupy.copyto(gd, ud)  # noqa: E731
        else:
            ud_nb = ud = cuda.to_device(u)
            gd_nb = gd = cuda.device_array_like(ud)
            copy_fn = lambda: gd.copy_to_device(ud)  # noqa: E731
        t_copy = gpu_time(copy_fn, repeat, cuda)
        g_host = np.empty_like(u)
        for beta in betas:
            for iso in ((True, False) if aniso else (True,)):
                for job in ("tv", "tv_value_and_grad"):
                    want_grad = job != "tv"
                    if want_grad:
                        call = lambda: tvnumba.tv_value_and_grad(  # noqa: E731
                            ud, beta, isotropic=iso, out=gd)
                        cpu = lambda: tvnumba.tv_value_and_grad(  # noqa: E731
                            u, beta, isotropic=iso, out=g_host, device="cpu")
                        moved, floor = 2 * nbytes, t_copy
                    else:
                        call = lambda: tvnumba.tv(ud, beta, isotropic=iso)  # noqa: E731
                        cpu = lambda: tvnumba.tv(u, beta, isotropic=iso, device="cpu")  # noqa: E731
                        moved, floor = nbytes, t_copy / 2
                    t0 = time.perf_counter()
                    call()  # compiles this specialisation (or loads it from the cache)
                    cuda.synchronize()
                    first = time.perf_counter() - t0
                    launch, grid, tpb = kernel_launcher(ud_nb, gd_nb, beta, iso, want_grad,
                                                        cuda)
                    t_kernel = gpu_time(launch, repeat, cuda)
                    t_pixel = gpu_time(kernel_launcher(ud_nb, gd_nb, beta, iso, want_grad, cuda,
                                                       per_pixel=True)[0], repeat, cuda)
                    t_call = gpu_time(call, repeat, cuda)
                    t_cupy = t_cpu = math.nan
                    if cupy is not None and iso:
                        t_cupy = gpu_time(lambda: xp_tv_value_and_grad(cupy, ud, beta, want_grad),
                                          max(3, repeat // 4), cuda)
                    if use_cpu:
                        t_cpu = median_of(cpu, cpu_repeat)
                    gbs = moved / t_kernel / 1e9
                    rows.append(dict(
                        shape="×".join(map(str, shape)), beta=beta,
                        norm="iso" if iso else "aniso", job=job, first=first,
                        kernel=1e3 * t_kernel, pixel=1e3 * t_pixel, call=1e3 * t_call, gbs=gbs,
                        peak=100 * gbs / peak if peak else math.nan,
                        copy=1e3 * floor, cupy=1e3 * t_cupy, vs_cupy=t_cupy / t_kernel,
                        cpu=1e3 * t_cpu, vs_cpu=t_cpu / t_kernel, grid=grid, tpb=tpb))
                    r = rows[-1]
                    print(f"  {r['shape']} β={beta} {r['norm']} {job}: kernel {r['kernel']:.3f} ms "
                          f"(per-pixel kernel {r['pixel']:.3f} ms, {gbs:.0f} GB/s, {r['peak']:.0f}% peak), call {r['call']:.3f} ms, "
                          f"CuPy {r['cupy']:.2f} ms, CPU {r['cpu']:.1f} ms",
                          file=sys.stderr, flush=True)
        del ud, gd, ud_nb, gd_nb
        if cupy is not None:
            cupy.get_default_memory_pool().free_all_blocks()
    return rows


def machine(cuda, peak, peak_source):
    import numba

    dev = cuda.get_current_device()
    name = getattr(dev, "name", "CUDA simulator")
    name = name.decode() if isinstance(name, bytes) else str(name)
    cc = ".".join(map(str, dev.compute_capability))
    sms = getattr(dev, "MULTIPROCESSOR_COUNT", "?")
    try:
        import numba_cuda

        nbc = numba_cuda.__version__
    except Exception:
        nbc = "?"
    try:
        import cupy

        cp = f", CuPy {cupy.__version__}"
    except ImportError:
        cp = ""
    peak_s = f"{peak:.0f} GB/s ({peak_source})" if peak else "unknown (pass --peak-gbs)"
    return (f"{name} (compute capability {cc}, {sms} SMs), "
            f"peak memory bandwidth {peak_s}; numba {numba.__version__}, numba-cuda {nbc}"
            f"{cp}, numpy {np.__version__}, Python {platform.python_version()}, "
            f"CPU column on {numba.get_num_threads()} threads")


DENOISE_WEIGHTS = {0.5: 0.04, 1.0: 0.1, 1.5: 0.25, 2.0: 0.5}


def bench_denoise(xp, sizes, cpu_repeat, use_cpu):
    """Rows comparing denoise_tv_beta on arrays of module ``xp`` with NumPy input."""
    from skimage import data, img_as_float
    from skimage.transform import resize

    from tvnumba.restoration import denoise_tv_beta

    rng = np.random.default_rng(0)
    cam = img_as_float(data.camera())
    rows = []
    for n in sizes:
        clean = resize(cam, (n, n), order=1)
        noisy = (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)
        dev = xp.asarray(noisy)
        for beta, w in DENOISE_WEIGHTS.items():
            denoise_tv_beta(dev[:64, :64], w, beta)  # compile / warm
            t0 = time.perf_counter()
            _, info = denoise_tv_beta(dev, w, beta, return_info=True)
            t_gpu = time.perf_counter() - t0
            row = dict(shape=f"{n}×{n}", beta=beta, method=info.method,
                       iters=info.iterations, gap=info.gap, gpu=t_gpu, cpu=math.nan,
                       rel=math.nan)
            if use_cpu:
                denoise_tv_beta(noisy[:64, :64], w, beta)
                t_cpu = min(_wall(lambda: denoise_tv_beta(noisy, w, beta, return_info=True))
                            for _ in range(cpu_repeat))
                info_cpu = denoise_tv_beta(noisy, w, beta, return_info=True)[1]
                row.update(cpu=t_cpu,
                           rel=(info.objective - info_cpu.objective) / info_cpu.objective)
            rows.append(row)
    return rows


def _wall(fn):
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def print_denoise(rows):
    print("| shape | β | method | iterations | gap | GPU s | CPU s | CPU / GPU "
          "| objective GPU vs CPU |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['beta']:g} | {r['method']} | {r['iters']} "
              f"| {r['gap']:.1e} | {r['gpu']:.3f} | {r['cpu']:.3f} "
              f"| {r['cpu'] / r['gpu']:.1f} | {r['rel']:+.1e} |")


# --------------------------------------------------------------------------- CT
CT_WEIGHTS = {128: 0.03, 256: 0.06, 512: 0.12}  # bench_ct.py's best weights, extrapolated


def _phantom(n):
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    return resize(shepp_logan_phantom(), (n, n), order=1, anti_aliasing=False)


def bench_ct_projectors(sizes, angle_counts, repeat, cpu_repeat, use_cpu, cuda):
    """Rows: the GPU projector pair against the CPU pair and skimage.transform.radon."""
    from skimage.transform import radon as sk_radon

    from tvnumba.operators import RadonGeometry

    try:
        import cupy
    except ImportError:
        cupy = None
    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        image = _phantom(n)
        for n_ang in angle_counts:
            theta = np.linspace(0.0, 180.0, n_ang, endpoint=False)
            geom = RadonGeometry.create(image.shape, theta, True)
            for dtype in (np.float64, np.float32):
                x = image.astype(dtype)
                s = rng.standard_normal(geom.sinogram_shape).astype(dtype)
                xd = cupy.asarray(x) if cupy is not None else cuda.to_device(x)
                sd = cupy.asarray(s) if cupy is not None else cuda.to_device(s)
                t0 = time.perf_counter()
                geom.forward(xd)
                geom.adjoint(sd)
                cuda.synchronize()
                first = time.perf_counter() - t0
                t_fwd = gpu_time(lambda: geom.forward(xd), repeat, cuda)
                t_adj = gpu_time(lambda: geom.adjoint(sd), repeat, cuda)
                host = (cupy.asnumpy if cupy is not None else lambda a: a.copy_to_host())
                au, ats = host(geom.forward(xd)), host(geom.adjoint(sd))
                lhs = float(np.vdot(au.astype(np.float64), s))
                rhs = float(np.vdot(x.astype(np.float64), ats))
                row = dict(shape=f"{n}×{n}", angles=n_ang, dtype=np.dtype(dtype).name,
                           gpu_fwd=1e3 * t_fwd, gpu_adj=1e3 * t_adj, first=first,
                           dot=abs(lhs - rhs) / abs(lhs), cpu_fwd=math.nan,
                           cpu_adj=math.nan, sk=math.nan, diff=math.nan)
                if use_cpu:
                    geom.forward(x)
                    geom.adjoint(s)
                    row.update(cpu_fwd=1e3 * median_of(lambda: geom.forward(x), cpu_repeat),
                               cpu_adj=1e3 * median_of(lambda: geom.adjoint(s), cpu_repeat))
                    ref = geom.forward(x)
                    row["diff"] = float(np.abs(au - ref).max() / np.abs(ref).max())
                    if dtype == np.float64:
                        row["sk"] = 1e3 * median_of(lambda: sk_radon(x, theta), cpu_repeat)
                rows.append(row)
                print(f"  CT {row['shape']} {n_ang} angles {row['dtype']}: GPU forward "
                      f"{row['gpu_fwd']:.3f} ms adjoint {row['gpu_adj']:.3f} ms, CPU "
                      f"{row['cpu_fwd']:.1f} / {row['cpu_adj']:.1f} ms, skimage {row['sk']:.1f} ms",
                      file=sys.stderr, flush=True)
    return rows


def print_ct_projectors(rows):
    print("| shape | angles | dtype | GPU forward ms | GPU adjoint ms | CPU forward ms "
          "| CPU adjoint ms | skimage radon ms | × CPU (fwd) | × skimage | GPU vs CPU "
          "| dot test | first call s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['angles']} | {r['dtype']} | {r['gpu_fwd']:.3f} "
              f"| {r['gpu_adj']:.3f} | {r['cpu_fwd']:.1f} | {r['cpu_adj']:.1f} | {r['sk']:.1f} "
              f"| {r['cpu_fwd'] / r['gpu_fwd']:.0f} | {r['sk'] / r['gpu_fwd']:.0f} "
              f"| {r['diff']:.1e} | {r['dot']:.1e} | {r['first']:.2f} |")


def bench_ct_reconstruct(sizes, use_cpu, n_ang=60):
    """Rows: reconstruct_tv_beta on a CuPy sinogram against the NumPy one."""
    import cupy

    from tvnumba.operators import radon
    from tvnumba.restoration import reconstruct_tv_beta

    rng = np.random.default_rng(0)
    rows = []
    for n in sizes:
        image = _phantom(n)
        theta = np.linspace(0.0, 180.0, n_ang, endpoint=False)
        clean = radon(image, theta)
        sino = (clean + 0.01 * clean.max() * rng.standard_normal(clean.shape)).astype(
            np.float32)
        kw = dict(weight=CT_WEIGHTS.get(n, 0.06), return_info=True)
        small = radon(image[::4, ::4], theta[::4]).astype(np.float32)
        reconstruct_tv_beta(cupy.asarray(small), theta[::4], **kw)  # compile / warm
        t0 = time.perf_counter()
        u_gpu, info = reconstruct_tv_beta(cupy.asarray(sino), theta, **kw)
        t_gpu = time.perf_counter() - t0
        row = dict(shape=f"{n}×{n}", angles=n_ang, iters=info.iterations, gpu=t_gpu,
                   cpu=math.nan, cpu_iters=0, rel=math.nan, diff=math.nan)
        if use_cpu:
            reconstruct_tv_beta(small, theta[::4], **kw)
            t0 = time.perf_counter()
            u_cpu, info_cpu = reconstruct_tv_beta(sino, theta, **kw)
            row.update(cpu=time.perf_counter() - t0, cpu_iters=info_cpu.iterations,
                       rel=(info.objective - info_cpu.objective) / info_cpu.objective,
                       diff=float(np.abs(cupy.asnumpy(u_gpu) - u_cpu).max()))
        rows.append(row)
        print(f"  CT reconstruct {row['shape']}: GPU {t_gpu:.2f} s ({info.iterations} it), "
              f"CPU {row['cpu']:.2f} s", file=sys.stderr, flush=True)
    return rows


def print_ct_reconstruct(rows):
    print("| shape | angles | GPU s | GPU iterations | CPU s | CPU iterations | CPU / GPU "
          "| objective GPU vs CPU | max image diff |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['angles']} | {r['gpu']:.2f} | {r['iters']} | {r['cpu']:.2f} "
              f"| {r['cpu_iters']} | {r['cpu'] / r['gpu']:.1f} | {r['rel']:+.1e} "
              f"| {r['diff']:.1e} |")


def bench_cp(shapes, repeat, cuda, peak):
    """One Chambolle-Pock iteration (dual + primal launch, no gap check), grey and (2-D)
    3-channel, against a device copy of the bytes an iteration must move (its floor)."""
    import tvnumba.backends.cuda.solver_kernels as sk
    from tvnumba._validate import make_plan

    rows = []
    for shape in shapes:
        nd = len(shape)
        for channels in (1, 3) if nd == 2 else (1,):
            full = shape + (channels,) if channels > 1 else shape
            f = np.random.default_rng(0).random(full, dtype=np.float32)
            for iso in (True, False):
                plan = make_plan(f, 1.0, isotropic=iso,
                                 channel_axis=-1 if channels > 1 else None)
                f5 = cuda.to_device(np.ascontiguousarray(plan.to_canonical(f)))
                state = sk.CPCuda(f5, 0.1, plan)

                def step(state=state):
                    state.dual_step(0.1)
                    state.primal_step(0.5, 0.9, False)

                t = gpu_time(step, repeat, cuda)
                # dual: ub, p (nd) in, p out; primal: p, f, u in, u, ub out
                nbytes = (3 * nd + 5) * f.nbytes
                src = cuda.device_array(nbytes // 8, np.float32)
                dst = cuda.device_array_like(src)
                copy = gpu_time(lambda: dst.copy_to_device(src), repeat, cuda)  # nbytes moved
                gbs = nbytes / t / 1e9
                rows.append(dict(shape="×".join(map(str, full)), norm="iso" if iso else "aniso",
                                 ms=t * 1e3, gbs=gbs, copy=copy * 1e3,
                                 peak=100 * gbs / peak if peak else float("nan")))
    print("| shape | norm | ms / iteration | GB/s | % peak | copy of the same bytes ms "
          "| × copy |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['norm']} | {r['ms']:.3f} | {r['gbs']:.0f} | {r['peak']:.0f} "
              f"| {r['copy']:.3f} | {r['ms'] / r['copy']:.2f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small shapes, few repeats")
    ap.add_argument("--repeat", type=int, default=None, help="GPU repeats (median)")
    ap.add_argument("--peak-gbs", type=float, default=None,
                    help="the card's peak memory bandwidth in GB/s (default: from the device)")
    ap.add_argument("--aniso", action="store_true", help="also the anisotropic kernels")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU column")
    ap.add_argument("--tpb", type=int, default=None, help="threads per block")
    ap.add_argument("--denoise", action="store_true",
                    help="denoise_tv_beta on CuPy arrays against the CPU instead")
    ap.add_argument("--shape", action="append", default=None, metavar="NxN[xN]",
                    help="benchmark this shape instead of the defaults (repeatable)")
    ap.add_argument("--ct", action="store_true",
                    help="the Radon projector pair and reconstruct_tv_beta instead")
    ap.add_argument("--cp", action="store_true",
                    help="one Chambolle-Pock iteration against the copy floor")
    args = ap.parse_args(argv)

    from numba import cuda

    if not cuda.is_available():
        sys.exit("bench_cuda.py needs a CUDA GPU (numba.cuda.is_available() is False)")
    from tvnumba.backends.cuda import _launch

    if args.tpb:
        _launch.THREADS_PER_BLOCK = args.tpb
    if args.shape:
        shapes = [tuple(int(n) for n in s.split("x")) for s in args.shape]
        repeat, cpu_repeat = args.repeat or 50, 3
    elif args.quick:
        shapes = [(1024, 1024), (64, 64, 64)]
        repeat, cpu_repeat = args.repeat or 10, 2
    else:
        shapes = [(4096, 4096), (8192, 8192), (256, 256, 256), (512, 512, 512)]
        repeat, cpu_repeat = args.repeat or 50, 3
    peak, source = args.peak_gbs, "given"
    if peak is None:
        peak, source = peak_bandwidth(cuda.get_current_device()), "from device attributes"

    print(f"Machine: {machine(cuda, peak, source)}\n")
    cmd = " ".join(["python", "benchmarks/bench_cuda.py", *(argv or sys.argv[1:])])
    if args.denoise:
        import cupy

        print(f"Command: `{cmd}` (float32)\n")
        sizes = (1024,) if args.quick else (2048, 4096)
        print_denoise(bench_denoise(cupy, sizes, cpu_repeat, not args.no_cpu))
        return
    if args.cp:
        print(f"Command: `{cmd}` (float32, threads per block {_launch.THREADS_PER_BLOCK})\n")
        bench_cp(shapes, repeat, cuda, peak)
        return
    if args.ct:
        sizes = (128,) if args.quick else (256, 512)
        print(f"Command: `{cmd}` (threads per block {_launch.THREADS_PER_BLOCK})\n")
        print_ct_projectors(bench_ct_projectors(sizes, (60, 180), repeat, cpu_repeat,
                                                not args.no_cpu, cuda))
        try:
            import cupy  # noqa: F401
        except ImportError:
            print("\nCuPy not installed: no reconstruct_tv_beta rows", file=sys.stderr)
            return
        print()
        print_ct_reconstruct(bench_ct_reconstruct(sizes, not args.no_cpu))
        return
    print(f"Command: `{cmd}` (float32, threads per block {_launch.THREADS_PER_BLOCK})\n")
    rows = bench(shapes, (1.0, 1.7), args.aniso, repeat, cpu_repeat, not args.no_cpu, peak)
    print("| shape | β | norm | job | kernel ms | per-pixel ms | GB/s | % peak | call ms "
          "| copy ms | CuPy ms | × CuPy | CPU ms | × CPU | first call s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['shape']} | {r['beta']:g} | {r['norm']} | {r['job']} | {r['kernel']:.3f} "
              f"| {r['pixel']:.3f} | {r['gbs']:.0f} | {r['peak']:.0f} | {r['call']:.3f} | {r['copy']:.3f} "
              f"| {r['cupy']:.2f} | {r['vs_cupy']:.1f} | {r['cpu']:.1f} | {r['vs_cpu']:.0f} "
              f"| {r['first']:.2f} |")


if __name__ == "__main__":
    main()
