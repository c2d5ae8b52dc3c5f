"""Peak memory of each solver, as a multiple of the input's size.

Measured with :mod:`tracemalloc` (NumPy registers its allocations with it), after a warm
call on a small image so that compilation is excluded; the input itself is not counted.
The Numba kernels' per-row scratch buffers are not seen by tracemalloc; they are a few rows
per work unit, negligible at these sizes.

    python benchmarks/bench_memory.py                 # 2048² float32 and float64
    python benchmarks/bench_memory.py --shape 4096x4096
"""

from __future__ import annotations

import argparse
import os
import sys
import tracemalloc

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import tvnumba  # this checkout's, whatever is installed

CASES = [("cp", 1.0, 0.1, {}), ("lbfgs", 1.5, 0.25, {}), ("lbfgs", 1.2, 0.15, {}),
         ("mm", 0.5, 0.04, {}), ("dct", 2.0, 0.5, {}), ("lbfgs", 1.0, 0.1, {"smoothing": 0.01})]


def peak_ratio(f, method, beta, weight, kw):
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    u = tvnumba.denoise_tv_beta(f, weight, beta, method=method, **kw)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    del u
    return peak / f.nbytes


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="2048x2048")
    args = ap.parse_args(argv)
    shape = tuple(int(n) for n in args.shape.split("x"))
    rng = np.random.default_rng(0)
    print(f"| solver | β | {shape} float32: peak / input | float64: peak / input |")
    print("| --- | --- | --- | --- |")
    for method, beta, weight, kw in CASES:
        cells = []
        for dtype in (np.float32, np.float64):
            small = rng.random((64, 64)).astype(dtype)
            tvnumba.denoise_tv_beta(small, weight, beta, method=method, **kw)  # compile
            f = rng.random(shape).astype(dtype)
            cells.append(f"{peak_ratio(f, method, beta, weight, kw):.1f}×")
        label = method + (" (smoothing)" if kw else "")
        print(f"| {label} | {beta} | {cells[0]} | {cells[1]} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
