"""Where the time of one small public CUDA call goes (host side), and an Nsight
Compute target.

``python benchmarks/profile_cuda_call.py``: times ``tv`` and ``tv_value_and_grad``
on a small CuPy array (the Python layer dominates there), then prints cProfile's
top entries by own time.  ``--ncu``: a few calls on a 4096² float32 array and nothing
else, for ``ncu --kernel-name regex:kernel --launch-skip 2 --launch-count 2``.
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
    args = ap.parse_args()
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


if __name__ == "__main__":
    main()
