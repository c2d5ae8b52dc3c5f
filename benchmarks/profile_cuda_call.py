"""Where the time of one small public CUDA call goes (host side), and an Nsight
Compute target.

``python benchmarks/profile_cuda_call.py``: times ``tv`` and ``tv_value_and_grad``
on a small CuPy array (the Python layer dominates there), then prints cProfile's
top entries by own time.  ``--ncu``: a few calls on a 4096² float32 array and nothing
else, for ``ncu --kernel-name regex:kernel --launch-skip 2 --launch-count 2``.
``--parts``: the host time of each step of the call on its own (views of a CuPy
array, the stream, the per-batch value buffer there and back, the launch).
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cupy  # noqa: E402

import tvnumba  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ncu", action="store_true")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--parts", action="store_true")
    args = ap.parse_args()
    if args.parts:
        parts(args.n)
        return
    if args.ncu:
        u = cupy.random.default_rng(0).random((4096, 4096), dtype=cupy.float32)
        g = cupy.empty_like(u)
        for _ in range(3):
            tvnumba.tv(u)
            tvnumba.tv_value_and_grad(u, out=g)
        cupy.cuda.Device().synchronize()
        return
    u = cupy.random.default_rng(0).random((args.n, args.n), dtype=cupy.float32)
    g = cupy.empty_like(u)
    for f, kw in ((tvnumba.tv, {}), (tvnumba.tv_value_and_grad, {"out": g})):
        for _ in range(20):
            f(u, **kw)
        t = time.perf_counter()
        for _ in range(500):
            f(u, **kw)
        dt = (time.perf_counter() - t) / 500
        print(f"{f.__name__} {args.n}x{args.n} float32: {dt * 1e6:.1f} us per call")
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(300):
        tvnumba.tv_value_and_grad(u, out=g)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(28)


def parts(n: int) -> None:
    import numpy as np
    from numba import cuda

    from tvnumba._validate import make_plan
    from tvnumba.backends.cuda import _launch as L
    from tvnumba.backends.cuda import tv_kernels as K

    u = cupy.random.default_rng(0).random((n, n), dtype=cupy.float32)
    g = cupy.empty_like(u)
    plan = make_plan(u, 1.0)
    ud = L.as_numba(u)
    u5 = L.canonical(ud, plan)
    g5 = L.canonical(L.as_numba(g), plan)
    uf, ul = L.flat(u5)
    gf, gl = L.flat(g5)
    kernel, grid, tpb = K.select(tuple(u5.shape), plan, True, u5.dtype)
    T = np.float32
    vals = cuda.device_array(2, np.float64)
    pinned = cuda.pinned_array(2, np.float64)
    args = (uf, ul, gf, gl, tuple(u5.shape), T(0), T(1), T(1), T(1), T(-0.5), T(1), T(1), vals)
    steps = {
        "make_plan": lambda: make_plan(u, 1.0),
        "as_cuda_array(cupy) sync=True": lambda: cuda.as_cuda_array(u),
        "as_cuda_array(cupy) sync=False": lambda: cuda.as_cuda_array(u, sync=False),
        "stream_of": lambda: L.stream_of(u),
        "canonical view": lambda: L.canonical(ud, plan),
        "flat view": lambda: L.flat(u5),
        "may_overlap": lambda: L.may_overlap(ud, ud),
        "to_device(zeros(2))": lambda: L.to_device(np.zeros(2)),
        "device_array(2)": lambda: cuda.device_array(2, np.float64),
        "_launch.zeros(2) (alloc + memset)": lambda: L.zeros(2, np.float64),
        "cupy.zeros(2)": lambda: cupy.zeros(2),
        "copy_to_host(2)": lambda: vals.copy_to_host(),
        "copy_to_host(2, pinned)": lambda: vals.copy_to_host(pinned),
        "kernel launch (async)": lambda: kernel[grid, tpb](*args),
        "kernel launch + sync": lambda: (kernel[grid, tpb](*args), cuda.synchronize()),
        "public tv_value_and_grad": lambda: tvnumba.tv_value_and_grad(u, out=g),
        "public tv": lambda: tvnumba.tv(u),
    }
    for name, fn in steps.items():
        for _ in range(20):
            fn()
        cuda.synchronize()
        t = time.perf_counter()
        for _ in range(300):
            fn()
        cuda.synchronize()
        print(f"{name:34s} {(time.perf_counter() - t) / 300 * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
