"""GPU (CUDA): the TV kernels, one Chambolle-Pock iteration, ``denoise_tv_beta`` and the Radon
pair on device arrays, against a device copy of the same bytes, the same formula in CuPy,
cuCIM (when installed) and tvnumba on the CPU of the same machine, in the same run.

Skipped without a CUDA GPU.  (``TVNUMBA_BENCH_GPU_SIM=1`` with ``NUMBA_ENABLE_CUDASIM=1`` runs
it on tiny inputs in Numba's CUDA simulator: a check that the suite runs, not a timing.)

Times: ``kernel`` entries and the device copy are CUDA events around 10 back-to-back launches
(per launch; the kernel alone, launched the way the public call launches it, no allocation
and no copy of the per-batch value to the host); ``call`` entries are the public function
on a CuPy array (``out=`` preallocated), synchronised (wall time, with validation, launch
and the value's copy to the host); CuPy: ``benchlib.numpy_tv`` with ``xp=cupy`` (events); CPU:
tvnumba's Numba kernels on this machine's cores (wall time).  float32 uniform [0, 1) data,
β ∈ {1, 1.7}, isotropic, 4096² and 256³ (small: 1024², 64³).  ``GB/s`` = bytes that must move
(``tv``: read ``u``; ``tv_value_and_grad``: read ``u``, write the gradient) / time.

Chambolle-Pock: one iteration (dual and primal launch, no gap check) of the grey and colour
(3-channel) kernels, isotropic and anisotropic, against a device copy of the bytes an
iteration must move (3·nd + 5 arrays).  Denoising: ``denoise_tv_beta`` on a CuPy array (the
solvers on the GPU end to end) against the same call on the NumPy array, camera upsampled
to 4096² (small 1024²) plus noise σ = 0.1, float32, β ∈ {0.5, 1, 1.5, 2}; for β = 1 also
cuCIM's ``denoise_tv_chambolle``.  Radon: the projector pair on the GPU (the public call on a
device array) against the CPU and ``skimage.transform.radon``, 512² (small 128²), 180 angles,
float32.
"""

from __future__ import annotations

import os
import statistics

import numpy as np
import pytest
from benchlib import camera, measure, noisy, numpy_tv, pick, record

import tvnumba

SIM = bool(os.environ.get("TVNUMBA_BENCH_GPU_SIM"))


def _gpu() -> bool:
    try:
        import numba
        from numba import cuda
    except ImportError:
        return False
    try:
        if numba.config.ENABLE_CUDASIM:
            return SIM
        return bool(cuda.is_available())
    except Exception:  # noqa: BLE001 - no driver, no device
        return False


GPU = _gpu()
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not GPU, reason="needs a CUDA GPU (numba.cuda.is_available())")]
BATCH = 10
_CACHE: dict = {}


def shapes():
    if SIM:
        return {"2d": (32, 32), "3d": (8, 8, 8)}
    return {"2d": pick((1024, 1024), (4096, 4096)), "3d": pick((64,) * 3, (256,) * 3)}


def repeat():
    return 3 if SIM else pick(5, 20)


def event_seconds(fn) -> float:
    """Median seconds per call of ``fn`` between CUDA events around BATCH back-to-back
    calls (``fn`` called once before)."""
    from numba import cuda

    fn()
    cuda.synchronize()
    start, end = cuda.event(), cuda.event()
    times = []
    for _ in range(repeat()):
        start.record()
        for _ in range(BATCH):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / BATCH)
    return statistics.median(times)


def synced(fn):
    from numba import cuda

    def run():
        out = fn()
        cuda.synchronize()
        return out

    return run


def cupy_or_skip():
    return pytest.importorskip("cupy")


def device_data(dim):
    """(host array, device array, device gradient buffer) (CuPy when installed)."""
    if dim not in _CACHE:
        from numba import cuda

        u = np.random.default_rng(0).random(shapes()[dim], dtype=np.float32)
        try:
            import cupy

            ud = cupy.asarray(u)
            gd = cupy.empty_like(ud)
        except ImportError:
            ud = cuda.to_device(u)
            gd = cuda.device_array_like(ud)
        _CACHE[dim] = u, ud, gd
    return _CACHE[dim]


def kernel_launcher(ud, gd, beta, want_grad):
    """A zero-argument launch of the TV kernel the public call selects, on canonical
    flat views of ``ud`` / ``gd``, with a preallocated per-batch value buffer."""
    from numba import cuda

    from tvnumba._validate import make_plan
    from tvnumba.backends.cuda import _launch as L
    from tvnumba.backends.cuda.tv_kernels import select

    plan = make_plan(ud, beta)
    u5 = L.canonical(L.as_numba(ud), plan)
    B, C, D, H, W = (int(n) for n in u5.shape)
    u, ul = L.flat(u5)
    if want_grad:
        g, gl = L.flat(L.canonical(L.as_numba(gd), plan))
    else:
        g, gl = L.device_empty((1,), u5.dtype), (0,) * 6
    kernel, grid, tpb = select((B, C, D, H, W), plan, want_grad, u5.dtype)
    T = np.dtype(u5.dtype).type
    values = cuda.device_array(B + 1, np.float64)
    args = (u, ul, g, gl, (B, C, D, H, W), T(0), T(1), T(1), T(1), T(beta / 2 - 1), T(beta),
            T(1), values)
    return lambda: kernel[grid, tpb](*args)


TV_CASES = [(dim, job, beta) for dim in ("2d", "3d") for job in ("tv", "tv_value_and_grad")
            for beta in (1.0, 1.7)]
TV_IMPLS = ["kernel", "call", "copy", "cupy", "cpu"]
TV_LABELS = {"kernel": "tvnumba kernel", "call": "tvnumba call", "copy": "device copy",
             "cupy": "CuPy formula", "cpu": "tvnumba CPU"}


@pytest.mark.parametrize("impl", TV_IMPLS)
@pytest.mark.parametrize("dim,job,beta", TV_CASES,
                         ids=[f"{d}-{j}-beta{b:g}" for d, j, b in TV_CASES])
def test_tv_gpu(benchmark, dim, job, beta, impl):
    u, ud, gd = device_data(dim)
    want_grad = job != "tv"
    shape = "×".join(map(str, u.shape))
    benchmark.group = f"GPU {job} {shape} float32 β={beta:g} iso"
    nbytes = u.nbytes * (2 if want_grad else 1)
    time_s = None
    if impl == "kernel":
        launch = kernel_launcher(ud, gd, beta, want_grad)
        time_s = event_seconds(launch)
        measure(benchmark, synced(launch))
    elif impl == "call":
        call = ((lambda: tvnumba.tv_value_and_grad(ud, beta, out=gd)) if want_grad
                else (lambda: tvnumba.tv(ud, beta)))
        measure(benchmark, synced(call))
    elif impl == "copy":
        from numba import cuda

        src = cuda.device_array(nbytes // 8, np.float32)  # read + write = nbytes
        dst = cuda.device_array_like(src)
        copy = lambda: dst.copy_to_device(src)  # noqa: E731
        time_s = event_seconds(copy)
        measure(benchmark, synced(copy))
    elif impl == "cupy":
        cupy = cupy_or_skip()
        fn = lambda: numpy_tv(ud, beta, True, want_grad, xp=cupy)  # noqa: E731
        time_s = event_seconds(fn)
        measure(benchmark, synced(fn))
    else:
        g = np.empty_like(u)
        cpu = ((lambda: tvnumba.tv_value_and_grad(u, beta, out=g)) if want_grad
               else (lambda: tvnumba.tv(u, beta)))
        measure(benchmark, cpu)
    extra = {} if time_s is None else {"time_s": time_s}
    t = time_s if time_s is not None else (benchmark.stats.stats.median
                                           if getattr(benchmark, "stats", None) else None)
    record(benchmark, TV_LABELS[impl],
           role="tvnumba" if impl in ("kernel", "call") else "baseline",
           table=f"GPU TV kernels, {shape} float32", row=f"{job} β={beta:g}",
           **extra, **{"GB/s": nbytes / t / 1e9 if t else None})


CP_CASES = [(dim, ch, iso) for dim in ("2d", "3d") for ch in ((1, 3) if dim == "2d" else (1,))
            for iso in (True, False)]


@pytest.mark.parametrize("impl", ["iteration", "copy"])
@pytest.mark.parametrize("dim,channels,iso", CP_CASES,
                         ids=[f"{d}-{c}ch-{'iso' if i else 'aniso'}" for d, c, i in CP_CASES])
def test_cp_iteration(benchmark, dim, channels, iso, impl):
    from numba import cuda

    import tvnumba.backends.cuda.solver_kernels as sk
    from tvnumba._validate import make_plan

    shape = shapes()[dim]
    full = shape + (channels,) if channels > 1 else shape
    f = np.random.default_rng(0).random(full, dtype=np.float32)
    nd = len(shape)
    nbytes = (3 * nd + 5) * f.nbytes  # dual: ub, p in, p out; primal: p, f, u in, u, ub out
    benchmark.group = (f"GPU Chambolle-Pock iteration {'×'.join(map(str, full))} float32 "
                       f"{'iso' if iso else 'aniso'}")
    if impl == "iteration":
        plan = make_plan(f, 1.0, isotropic=iso, channel_axis=-1 if channels > 1 else None)
        state = sk.CPCuda(cuda.to_device(np.ascontiguousarray(plan.to_canonical(f))), 0.1, plan)

        def fn():
            state.dual_step(0.1)
            state.primal_step(0.5, 0.9, False)
    else:
        src = cuda.device_array(nbytes // 8, np.float32)
        dst = cuda.device_array_like(src)
        fn = lambda: dst.copy_to_device(src)  # noqa: E731
    time_s = event_seconds(fn)
    measure(benchmark, synced(fn))
    record(benchmark, "tvnumba CP iteration" if impl == "iteration" else "device copy",
           role="tvnumba" if impl == "iteration" else "baseline",
           table="GPU Chambolle-Pock iteration (dual + primal launch)",
           row=f"{'×'.join(map(str, full))} {'iso' if iso else 'aniso'}", time_s=time_s,
           **{"GB/s": nbytes / time_s / 1e9})


DENOISE_WEIGHTS = {0.5: 0.04, 1.0: 0.1, 1.5: 0.25, 2.0: 0.5}


DENOISE_CASES = [(b, i) for b in DENOISE_WEIGHTS for i in ("gpu", "cpu")] + [
    pytest.param(1.0, "cucim", marks=pytest.mark.peer)]  # cuCIM has β = 1 only


@pytest.mark.parametrize("beta,impl", DENOISE_CASES)
def test_denoise_gpu(benchmark, beta, impl):
    cupy = cupy_or_skip()
    n = 32 if SIM else pick(1024, 4096)
    f = noisy(camera(n), 0.1, dtype=np.float32)
    w = DENOISE_WEIGHTS[beta]
    benchmark.group = f"GPU denoise_tv_beta β={beta:g} weight {w:g}: camera {n}² float32"
    _, info_cpu = tvnumba.denoise_tv_beta(f, w, beta, return_info=True)
    if impl == "gpu":
        fd = cupy.asarray(f)
        _, info = measure(benchmark, synced(lambda: tvnumba.denoise_tv_beta(
            fd, w, beta, return_info=True)), warm=lambda: tvnumba.denoise_tv_beta(fd, w, beta),
            rounds=3)
        record(benchmark, "tvnumba on CuPy", method=info.method, iterations=info.iterations,
               **{"objective vs CPU": (info.objective - info_cpu.objective) /
                  info_cpu.objective})
    elif impl == "cpu":
        measure(benchmark, lambda: tvnumba.denoise_tv_beta(f, w, beta))
        record(benchmark, "tvnumba on NumPy (CPU)", role="baseline", method=info_cpu.method,
               iterations=info_cpu.iterations)
    else:
        restoration = pytest.importorskip("cucim.skimage.restoration")
        fd = cupy.asarray(f)
        u = measure(benchmark, synced(lambda: restoration.denoise_tv_chambolle(fd, weight=w)))
        F = 0.5 * float(((u - fd) ** 2).sum()) + w * tvnumba.tv(u)
        record(benchmark, "cuCIM denoise_tv_chambolle", role="other",
               **{"objective vs CPU": (F - info_cpu.objective) / info_cpu.objective})


RADON_CASES = [("forward", "gpu"), ("forward", "cpu"), ("forward", "skimage"),
               ("adjoint", "gpu"), ("adjoint", "cpu")]


@pytest.mark.parametrize("direction,impl", RADON_CASES, ids=[f"{d}-{i}" for d, i in RADON_CASES])
def test_radon_gpu(benchmark, direction, impl):
    from numba import cuda
    from skimage.data import shepp_logan_phantom
    from skimage.transform import radon as sk_radon
    from skimage.transform import resize

    from tvnumba.operators import radon, radon_adjoint

    n = 16 if SIM else pick(128, 512)
    theta = np.linspace(0.0, 180.0, 180, endpoint=False)
    x = resize(shepp_logan_phantom(), (n, n)).astype(np.float32)
    s = radon(x, theta)
    benchmark.group = f"GPU Radon {direction}: {n}², 180 angles, float32"
    if impl == "gpu":
        xd, sd = cuda.to_device(x), cuda.to_device(s)
        fn = ((lambda: radon(xd, theta)) if direction == "forward"
              else (lambda: radon_adjoint(sd, theta)))
        time_s = event_seconds(fn)
        measure(benchmark, synced(fn))
        record(benchmark, "tvnumba on the GPU (public call)", time_s=time_s)
    elif impl == "cpu":
        measure(benchmark, (lambda: radon(x, theta)) if direction == "forward"
                else (lambda: radon_adjoint(s, theta)))
        record(benchmark, "tvnumba on the CPU", role="baseline")
    else:
        import warnings

        with warnings.catch_warnings():  # "image must be zero outside the circle"
            warnings.simplefilter("ignore", UserWarning)
            measure(benchmark, lambda: sk_radon(x, theta))
        record(benchmark, "skimage radon (CPU)", role="baseline")
